# %% [markdown]
# # Reparameterised samplers: pathwise gradients and moments
#
# Companion to chapter 9, "Reparameterisable distributions beyond the Gaussian".
# For each sampler (Gumbel, Kumaraswamy, Gamma, Dirichlet, Concrete) this
# notebook checks two things at fixed uniform noise `u`:
#
# 1. the pathwise derivative of the backward function against a central
#    difference of the sample itself, `(x(θ + h, u) − x(θ − h, u)) / 2h`;
# 2. the sample moments against `scipy.stats` (or, where SciPy has no such
#    distribution, against closed-form moments and a Kolmogorov–Smirnov test).
#
# It writes two figures to `docs/figures/notebooks/`. Run it with
# `python docs/notebooks/05_distributions.py`; every claim is an `assert`.

# %%
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import special, stats  # noqa: E402

from npvae.distributions.implicit import (  # noqa: E402
    dirichlet_sample_backward,
    dirichlet_sample_forward,
    gamma_sample_backward,
    gamma_sample_forward,
    gamma_shape_derivative,
)
from npvae.distributions.samplers import (  # noqa: E402
    concrete_sample_backward,
    concrete_sample_forward,
    gumbel_sample_backward,
    gumbel_sample_forward,
    kumaraswamy_sample_backward,
    kumaraswamy_sample_forward,
)
from npvae.gradcheck import numerical_gradient, relative_error  # noqa: E402

START = time.perf_counter()
FIG_DIR = Path(__file__).resolve().parent.parent / "figures" / "notebooks"
FIG_DIR.mkdir(parents=True, exist_ok=True)
STEM = Path(__file__).stem
rng = np.random.default_rng(0)


def uniform(shape):
    """Noise strictly inside (0, 1), as every inverse CDF needs."""
    return rng.uniform(1e-12, 1 - 1e-12, size=shape)


def elementwise_fd(sample, theta, h):
    """Central difference of ``sample(theta)`` elementwise (each x_i depends on theta_i only)."""
    return (sample(theta + h) - sample(theta - h)) / (2 * h)


def check_moments(name, x, dist, n_se=5.0):
    """Sample mean and variance of ``x`` against a frozen scipy distribution,
    within ``n_se`` standard errors (the variance's from the excess kurtosis)."""
    mean, var, _, kurt = (float(v) for v in dist.stats(moments="mvsk"))
    n = x.size
    se_mean = np.sqrt(var / n)
    se_var = var * np.sqrt((kurt + 2) / n)
    z_mean = (x.mean() - mean) / se_mean
    z_var = (x.var() - var) / se_var
    print(f"{name:28s} mean {x.mean():9.5f} vs {mean:9.5f} ({z_mean:+.2f} se)   "
          f"var {x.var():9.5f} vs {var:9.5f} ({z_var:+.2f} se)")
    assert abs(z_mean) < n_se and abs(z_var) < n_se, name


def report_gradient(name, err, tol):
    print(f"{name:40s} max relative error {err:.2e}  (tolerance {tol:.0e})")
    assert err < tol, name


# %% [markdown]
# ## Gumbel
#
# `x = μ + β g`, `g = −log(−log u)`: `∂x/∂μ = 1`, `∂x/∂β = g`. The backward
# function returns vector-Jacobian products; with parameters of the sample's
# shape and an upstream gradient of ones they are the elementwise derivatives.

# %%
shape = (50,)
u = uniform(shape)
loc = rng.normal(size=shape)
scale = rng.uniform(0.3, 3.0, size=shape)
x, cache = gumbel_sample_forward(loc, scale, u)
grads = gumbel_sample_backward(np.ones(shape), cache)
h = 1e-6
fd_loc = elementwise_fd(lambda m: gumbel_sample_forward(m, scale, u)[0], loc, h)
fd_scale = elementwise_fd(lambda s: gumbel_sample_forward(loc, s, u)[0], scale, h)
report_gradient("Gumbel dx/dloc", np.max(np.abs(grads["loc"] - fd_loc)), 1e-8)
report_gradient("Gumbel dx/dscale",
                np.max(np.abs(grads["scale"] - fd_scale) / np.abs(fd_scale)), 1e-6)

n = 200_000
x = gumbel_sample_forward(1.5, 2.0, uniform(n))[0]
check_moments("Gumbel(1.5, 2)", x, stats.gumbel_r(loc=1.5, scale=2.0))

# %% [markdown]
# ## Kumaraswamy
#
# `x = (1 − u^{1/b})^{1/a}`: `∂x/∂a = −x log w / a²`,
# `∂x/∂b = x u^{1/b} log u / (a w b²)` with `w = 1 − u^{1/b}`. SciPy has no
# Kumaraswamy distribution, so the moments are checked against the raw moments
# `E[x^k] = b B(1 + k/a, b)` and the whole distribution by a
# Kolmogorov–Smirnov test against the CDF `1 − (1 − x^a)^b`.

# %%
u = uniform(shape)
a = rng.uniform(0.5, 5.0, size=shape)
b = rng.uniform(0.5, 5.0, size=shape)
x, cache = kumaraswamy_sample_forward(a, b, u)
grads = kumaraswamy_sample_backward(np.ones(shape), cache)
fd_a = elementwise_fd(lambda t: kumaraswamy_sample_forward(t, b, u)[0], a, 1e-6)
fd_b = elementwise_fd(lambda t: kumaraswamy_sample_forward(a, t, u)[0], b, 1e-6)
report_gradient("Kumaraswamy dx/da", relative_error(grads["a"], fd_a), 1e-8)
report_gradient("Kumaraswamy dx/db", relative_error(grads["b"], fd_b), 1e-8)

a0, b0 = 2.0, 5.0
x = kumaraswamy_sample_forward(a0, b0, uniform(n))[0]
m1 = b0 * special.beta(1 + 1 / a0, b0)
m2 = b0 * special.beta(1 + 2 / a0, b0)
m4 = b0 * special.beta(1 + 4 / a0, b0)
se_m1 = np.sqrt((m2 - m1**2) / n)
se_m2 = np.sqrt((m4 - m2**2) / n)
print(f"{'Kumaraswamy(2, 5)':28s} E[x] {x.mean():.5f} vs {m1:.5f}   "
      f"E[x^2] {np.mean(x**2):.5f} vs {m2:.5f}")
assert abs(x.mean() - m1) < 5 * se_m1 and abs(np.mean(x**2) - m2) < 5 * se_m2
ks = stats.kstest(x, lambda t: 1 - (1 - t**a0) ** b0)
print(f"{'':28s} Kolmogorov-Smirnov p-value {ks.pvalue:.3f}")
assert ks.pvalue > 1e-3

# %% [markdown]
# ## Gamma: implicit shape derivative and rate scaling
#
# `x = P⁻¹(α, u) / r`. The rate derivative `−x/r` is exact; the shape
# derivative is the implicit one, `∂x/∂α = −(∂P/∂α)(α, r x) / (r p_α(r x))`,
# with `∂P/∂α` itself a central difference of the incomplete gamma function.
# Here it is compared with a central difference of the *sample*, which goes
# through SciPy's numerical inverse `gammaincinv` instead: two independent
# routes to the same number.


# %%
def gamma_x(alpha, rate, u):
    return gamma_sample_forward(alpha, rate, u)[0]


def gamma_fd_step(alpha):
    return 2e-6 * np.minimum(alpha, np.sqrt(alpha))


u = uniform(shape)
alpha = np.exp(rng.uniform(np.log(0.1), np.log(100.0), size=shape))
rate = rng.uniform(0.5, 3.0, size=shape)
x, cache = gamma_sample_forward(alpha, rate, u)
grads = gamma_sample_backward(np.ones(shape), cache)
fd_alpha = elementwise_fd(lambda t: gamma_x(t, rate, u), alpha, gamma_fd_step(alpha))
fd_rate = elementwise_fd(lambda t: gamma_x(alpha, t, u), rate, 1e-6)
report_gradient("Gamma dx/dalpha (implicit)",
                np.max(np.abs(grads["alpha"] - fd_alpha) / np.abs(fd_alpha)), 1e-7)
report_gradient("Gamma dx/drate", np.max(np.abs(grads["rate"] - fd_rate) / np.abs(fd_rate)),
                1e-7)

for alpha0, rate0 in ((0.3, 1.0), (4.0, 2.5)):
    x = gamma_x(alpha0, rate0, uniform(n))
    check_moments(f"Gamma({alpha0}, rate {rate0})", x, stats.gamma(a=alpha0, scale=1 / rate0))

# %% [markdown]
# The figure: `∂x/∂α` of a standard Gamma draw across shapes, for three noise
# values, by the implicit formula (lines) and by finite differences of the
# sample (markers), and their relative difference.

# %%
alphas = np.geomspace(0.2, 50.0, 41)
us = (0.1, 0.5, 0.9)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.5, 3.8))
worst = 0.0
for k, u0 in enumerate(us):
    uu = np.full_like(alphas, u0)
    y = gamma_x(alphas, 1.0, uu)
    implicit = gamma_shape_derivative(alphas, y)
    fd = elementwise_fd(lambda t: gamma_x(t, 1.0, uu), alphas, gamma_fd_step(alphas))
    rel = np.abs(implicit - fd) / np.abs(fd)
    worst = max(worst, rel.max())
    ax1.plot(alphas, implicit, color=f"C{k}", lw=1.6, label=f"implicit, u = {u0}")
    ax1.plot(alphas[::3], fd[::3], "o", color=f"C{k}", ms=4, mfc="none",
             label=f"finite difference, u = {u0}")
    ax2.plot(alphas, np.maximum(rel, 1e-16), color=f"C{k}", lw=1.2, label=f"u = {u0}")
assert worst < 1e-7, worst
ax1.set_xscale("log")
ax1.set_yscale("log")
ax1.set_xlabel("shape α")
ax1.set_ylabel("∂x/∂α at fixed u")
ax1.set_title("Gamma(α, 1) draw: shape derivative", fontsize="medium")
ax1.legend(fontsize="x-small", ncol=2, loc="lower right")
ax2.set_xscale("log")
ax2.set_yscale("log")
ax2.set_ylim(1e-13, 1e-5)
ax2.set_xlabel("shape α")
ax2.set_ylabel("relative difference")
ax2.set_title("Relative difference", fontsize="medium")
ax2.legend(fontsize="x-small")
for ax in (ax1, ax2):
    ax.grid(True, which="major", alpha=0.3)
fig.tight_layout()
path = FIG_DIR / f"{STEM}-gamma-shape.png"
fig.savefig(path, dpi=100)
plt.close(fig)
print(f"wrote {path.name}; worst relative difference {worst:.1e}")

# %% [markdown]
# ## Dirichlet
#
# `y_k = P⁻¹(α_k, u_k)`, `x = y / Σ y`. The backward function chains the
# normalisation's vector-Jacobian product `dy = (dx − Σ dx x) / Σy` with the
# Gamma shape derivative. Each `x_k` depends on every `α_j`, so the check is on
# the scalar `Σ dx ⊙ x` for a random upstream gradient `dx`, perturbing one `α_j`
# at a time.

# %%
K = 4
u = uniform((3, K))
alpha = rng.uniform(0.3, 5.0, size=(3, K))
x, cache = dirichlet_sample_forward(alpha, u)
dx = rng.normal(size=x.shape)
analytic = dirichlet_sample_backward(dx, cache)["alpha"]
numeric = numerical_gradient(lambda: float(np.sum(dirichlet_sample_forward(alpha, u)[0] * dx)),
                             alpha, h=1e-6)
report_gradient("Dirichlet d(sum dx*x)/dalpha", relative_error(analytic, numeric), 1e-6)

alpha0 = np.array([0.5, 1.0, 2.0, 4.0])
x = dirichlet_sample_forward(alpha0, uniform((n, K)))[0]
dist = stats.dirichlet(alpha0)
se_mean = np.sqrt(dist.var() / n)
print(f"{'Dirichlet(0.5, 1, 2, 4)':28s} mean {np.round(x.mean(0), 4)} vs "
      f"{np.round(dist.mean(), 4)}   var {np.round(x.var(0), 5)} vs {np.round(dist.var(), 5)}")
assert np.all(np.abs(x.mean(0) - dist.mean()) < 5 * se_mean)
assert np.allclose(x.var(0), dist.var(), rtol=0.02)

# %% [markdown]
# ## Concrete (Gumbel-softmax)
#
# `y = softmax((η + g)/τ)`. The backward function gives `dη = ds/τ` and
# `dτ = −Σ ds ⊙ s / τ` with `ds = y ⊙ (dy − Σ dy ⊙ y)`. Moments: the Concrete
# distribution has none in closed form, but its `argmax` is exactly
# categorical with probabilities `softmax(η)` (the Gumbel-max trick), which is
# checked against `scipy.stats.multinomial` counts.

# %%
u = uniform((5, K))
logits = rng.normal(size=(5, K))
tau = rng.uniform(0.3, 2.0, size=5)
y, cache = concrete_sample_forward(logits, tau, u)
dy = rng.normal(size=y.shape)
grads = concrete_sample_backward(dy, cache)


def concrete_scalar():
    return float(np.sum(concrete_sample_forward(logits, tau, u)[0] * dy))


report_gradient("Concrete d(sum dy*y)/dlogits",
                relative_error(grads["logits"], numerical_gradient(concrete_scalar, logits)),
                1e-7)
report_gradient("Concrete d(sum dy*y)/dtemperature",
                relative_error(grads["temperature"], numerical_gradient(concrete_scalar, tau)),
                1e-7)

pi = np.array([0.5, 0.3, 0.15, 0.05])
y = concrete_sample_forward(np.log(pi), 0.5, uniform((n, K)))[0]
counts = np.bincount(y.argmax(axis=1), minlength=K)
expected = stats.multinomial(n, pi).mean()
chi2 = stats.chisquare(counts, expected)
print(f"{'Concrete argmax, pi = ' + str(pi.tolist()):28s} frequencies {np.round(counts / n, 4)}   "
      f"chi-square p-value {chi2.pvalue:.3f}")
assert chi2.pvalue > 1e-3

# %% [markdown]
# The figure: Concrete samples over three categories at four temperatures,
# drawn on the triangle of the simplex (each corner is a one-hot vector). At
# low temperature the samples crowd into the corners in proportion to `π`; at
# high temperature they gather near the centre. Next to each corner: the
# fraction of samples with `y_k > 0.9`.

# %%
pi3 = np.array([0.6, 0.3, 0.1])
corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])
offsets = ((-0.05, -0.13), (-0.05, -0.13), (0.07, -0.03))
u3 = uniform((600, 3))
temps = (0.1, 0.5, 1.0, 5.0)
fig, axes = plt.subplots(1, 4, figsize=(10, 2.6))
near_corner = {}
for ax, t in zip(axes, temps):
    y = concrete_sample_forward(np.log(pi3), t, u3)[0]
    pts = y @ corners
    near_corner[t] = (y > 0.9).mean(axis=0)
    ax.fill(corners[:, 0], corners[:, 1], color="0.94", zorder=0)
    ax.plot(*np.vstack([corners, corners[:1]]).T, color="0.5", lw=0.8)
    ax.scatter(pts[:, 0], pts[:, 1], s=5, alpha=0.35, color="C0", lw=0)
    for k, (c, (ox, oy)) in enumerate(zip(corners, offsets)):
        ax.text(c[0] + ox, c[1] + oy, f"{k + 1}: {near_corner[t][k]:.2f}", fontsize="small")
    ax.set_title(f"τ = {t}", fontsize="medium", pad=12)
    ax.set_xlim(-0.12, 1.12)
    ax.set_ylim(-0.15, 0.92)
    ax.set_aspect("equal")
    ax.axis("off")
fig.suptitle(f"Concrete samples for π = {pi3.tolist()}; next to each corner k, the fraction "
             "of samples with y_k > 0.9", fontsize="medium")
fig.tight_layout()
path = FIG_DIR / f"{STEM}-concrete.png"
fig.savefig(path, dpi=100)
plt.close(fig)
# at τ = 0.1 most samples are within 0.1 of a corner, shared in proportion to π
share = near_corner[0.1] / near_corner[0.1].sum()
assert near_corner[0.1].sum() > 0.8 and np.allclose(share, pi3, atol=0.06)
assert near_corner[5.0].sum() == 0
print(f"wrote {path.name}; fraction near each corner at tau = 0.1: {near_corner[0.1]}")

# %%
print(f"run time {time.perf_counter() - START:.1f} s")
