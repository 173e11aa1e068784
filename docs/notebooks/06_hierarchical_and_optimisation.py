# %% [markdown]
# # The hierarchical VAE's gradient, its initial KL terms, and Adam
#
# Companion to chapters 7 ("The hierarchical VAE") and 11 ("Optimisation").
#
# 1. The whole backward pass of a small two-level `HierarchicalVAE`, for both
#    inference variants, against a central finite difference of the loss along
#    a random direction of parameter space, at fixed noise.
# 2. The initial KL terms of a markov model with ReLU units, with the
#    log-variance heads of the networks that read a latent sample at zero
#    weights (as npvae initialises them) and with Glorot weights instead.
# 3. `npvae.optim.adam_update` (the folded update) against Algorithm 1 of
#    Kingma & Ba (2015) written out with the bias-corrected `m̂, v̂`.
# 4. STL and DReG across the levels ("Sticking the landing with several
#    levels"): the score and path seeds add up to the change of variables, the
#    markov input path is not zero, and the means over noise draws agree with
#    the standard estimator's.
#
# Run it with `python docs/notebooks/06_hierarchical_and_optimisation.py`;
# every claim is an `assert`, and the figures go to `docs/figures/notebooks/`.

# %%
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import npvae  # noqa: E402
from npvae.gradcheck import directional_derivative  # noqa: E402
from npvae.optim import adam_update  # noqa: E402

START = time.perf_counter()
FIG_DIR = Path(__file__).resolve().parent.parent / "figures" / "notebooks"
FIG_DIR.mkdir(parents=True, exist_ok=True)
STEM = Path(__file__).stem
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The gradient along a random direction
#
# For fixed data `X` and noise `eps` the loss `ℓ(θ)` is a deterministic function
# of the flat parameter vector `θ` (`model.flat_params_`; every array of
# `model.params_` is a view into it). For a random direction `v`, the
# hand-written gradient gives the directional derivative `Σ_k ⟨grads[k], v_k⟩`,
# and a central difference gives `(ℓ(θ + h v) − ℓ(θ − h v)) / 2h`. The
# difference between the two falls as `h²` (truncation) until rounding error,
# which grows as `1/h`, takes over. Three Monte Carlo samples per example
# exercise the sums over samples; tanh units keep the loss smooth.

# %%
N, D = 6, 12
X = (rng.random((N, D)) < 0.4).astype(np.float64)
steps = np.geomspace(1e-1, 1e-9, 33)
curves = {}
for inference in ("independent", "markov"):
    model = npvae.HierarchicalVAE(latent_sizes=(4, 2), hidden_sizes=(8,), inference=inference,
                                  n_samples=3, dtype="float64", random_state=0).initialize(D)
    eps = model.draw_noise(N)                                    # [(3, N, 4), (3, N, 2)]
    loss, grads = model.loss_and_grads(X, eps)
    theta = model.flat_params_
    v = rng.standard_normal(theta.shape)
    v_views = model.layout_.views(v)                             # the direction, by name
    analytic = sum(float(np.sum(grads[name] * v_views[name])) for name in grads)

    def f():
        return model.loss_and_grads(X, eps)[0]

    errors = np.array([abs(directional_derivative(f, theta, v, h) - analytic) / abs(analytic)
                       for h in steps])
    curves[inference] = errors
    best = errors.min()
    at_1e5 = errors[np.argmin(np.abs(steps - 1e-5))]
    print(f"{inference:12s} {len(grads)} parameter arrays, {theta.size} parameters; "
          f"loss {loss:.4f}; directional derivative {analytic:+.6f}; relative error "
          f"{at_1e5:.1e} at h = 1e-5, best {best:.1e}")
    assert best < 1e-9 and at_1e5 < 1e-8, (inference, best, at_1e5)

fig, ax = plt.subplots(figsize=(6.2, 3.9))
for k, (inference, errors) in enumerate(curves.items()):
    ax.loglog(steps, np.maximum(errors, 1e-17), "o-", ms=3, lw=1.2, color=f"C{k}",
              label=f'inference="{inference}"')
ref = curves["independent"][0] * (steps / steps[0]) ** 2
ax.loglog(steps, ref, "k--", lw=0.8, label="slope 2 (truncation, h²)")
ax.set_ylim(1e-13, 1e-1)
ax.set_xlabel("step h")
ax.set_ylabel("relative error of the\ndirectional derivative")
ax.set_title("Two-level HierarchicalVAE: hand-written gradient\n"
             "against a central difference along a random direction", fontsize="medium")
ax.grid(True, which="major", alpha=0.3)
ax.legend(fontsize="small")
fig.tight_layout()
path = FIG_DIR / f"{STEM}-gradcheck.png"
fig.savefig(path, dpi=100)
plt.close(fig)
print(f"wrote {path.name}")

# %% [markdown]
# ## 2. Zero log-variance heads at initialisation
#
# npvae starts the log-variance heads of the networks that read a latent
# sample (every prior network; for "markov" also the encoders above level 1)
# at zero weights, so those Gaussians start with unit variances. Here the
# two-level architecture of Burda et al. (2016) with ReLU units and markov
# inference is initialised as npvae does, and then with those heads redrawn
# from the Glorot uniform distribution `U(−r, r)`, `r = √(6 / (In + Out))`,
# that every other head uses. The KL terms are averaged over a batch of
# random binary images.

# %%
D_big, N_big = 784, 100
X_big = (rng.random((N_big, D_big)) < 0.13).astype(np.float64)
model = npvae.HierarchicalVAE(latent_sizes=(100, 50), hidden_sizes=((200, 200), (100, 100)),
                              inference="markov", activation="relu", dtype="float64",
                              random_state=0).initialize(D_big)
eps = model.draw_noise(N_big)
zero_heads = {k: float(np.mean(t)) for k, t in model.elbo_terms(X_big, eps).items()
              if k.startswith("kl")}
reads_a_sample = [name for name in model.params_ if name.endswith("_logvar_W")
                  and (name.startswith("prior") or not name.startswith("enc1_"))]
for name in reads_a_sample:
    W = model.params_[name]
    assert np.all(W == 0), name
    r = np.sqrt(6.0 / sum(W.shape))
    W[...] = rng.uniform(-r, r, size=W.shape)
glorot_heads = {k: float(np.mean(t)) for k, t in model.elbo_terms(X_big, eps).items()
                if k.startswith("kl")}
print(f"heads reading a latent sample: {', '.join(reads_a_sample)}")
print(f"{'term':8s} {'zero heads':>12s} {'Glorot heads':>14s}")
for k in zero_heads:
    print(f"{k:8s} {zero_heads[k]:12.1f} {glorot_heads[k]:14.1f}")
assert glorot_heads["kl"] > 10 * zero_heads["kl"]

# %% [markdown]
# ## 3. Adam: the folded update against Algorithm 1
#
# Algorithm 1 of Kingma & Ba (2015), written out:
#
# ```
# m ← β1 m + (1 − β1) g;   v ← β2 v + (1 − β2) g²
# m̂ = m / (1 − β1^t);     v̂ = v / (1 − β2^t)
# θ ← θ − α m̂ / (√v̂ + ε)
# ```
#
# `adam_update` folds the corrections into `α_t = α √(1 − β2^t) / (1 − β1^t)`
# and `ε̂ = ε √(1 − β2^t)` and applies `θ ← θ − α_t m / (√v + ε̂)`, which is the
# same update in exact arithmetic (chapter 11). Both minimise the quadratic
# `f(θ) = ½ (θ − c)ᵀ A (θ − c)` from the same start for 100 steps, on both
# backends (the NumPy reference and the compiled kernel).

# %%
A = np.array([[3.0, 1.2], [1.2, 1.0]])
c = np.array([1.0, -0.5])
theta0 = np.array([-2.0, 2.0])
alpha, beta1, beta2, eps_adam = 0.1, 0.9, 0.999, 1e-8
T = 100


def grad_f(theta):
    return A @ (theta - c)


def adam_algorithm_1(theta0):
    theta, m, v = theta0.copy(), np.zeros(2), np.zeros(2)
    path = [theta.copy()]
    for t in range(1, T + 1):
        g = grad_f(theta)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        theta = theta - alpha * m_hat / (np.sqrt(v_hat) + eps_adam)
        path.append(theta.copy())
    return np.array(path)


def adam_npvae(theta0):
    theta, m, v = theta0.copy(), np.zeros(2), np.zeros(2)
    path = [theta.copy()]
    for t in range(1, T + 1):
        adam_update(theta, grad_f(theta), m, v, t, alpha, beta1, beta2, eps_adam)   # in place
        path.append(theta.copy())
    return np.array(path)


reference = adam_algorithm_1(theta0)
paths, gaps = {}, {}
for backend in ("numpy", "numba"):
    with npvae.use_backend(backend):
        paths[backend] = adam_npvae(theta0)
    gaps[backend] = np.abs(paths[backend] - reference).max(axis=1)       # (T + 1,)
    print(f"backend {backend:6s}: max |θ_npvae − θ_algorithm1| over {T} steps "
          f"{gaps[backend].max():.1e}")
    assert gaps[backend].max() < 1e-12, backend
print(f"after {T} steps θ = {reference[-1]}, minimiser c = {c}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.0), width_ratios=[1.15, 1])
g1, g2 = np.meshgrid(np.linspace(-2.5, 2.0, 200), np.linspace(-1.0, 3.0, 200))
d1, d2 = g1 - c[0], g2 - c[1]
fvals = 0.5 * (A[0, 0] * d1**2 + 2 * A[0, 1] * d1 * d2 + A[1, 1] * d2**2)
ax1.contour(g1, g2, fvals, levels=np.geomspace(0.02, 20, 12), colors="0.7", linewidths=0.7)
ax1.plot(reference[:, 0], reference[:, 1], "-", color="C1", lw=5, alpha=0.35,
         label="Algorithm 1 (m̂, v̂)")
ax1.plot(paths["numpy"][:, 0], paths["numpy"][:, 1], ".", color="C0", ms=3.5,
         label="adam_update (folded)")
ax1.plot(*theta0, "k^", ms=6, label="start")
ax1.plot(*c, "k*", ms=9, label="minimum")
ax1.set_aspect("equal")
ax1.set_xlabel("θ₁")
ax1.set_ylabel("θ₂")
ax1.set_title(f"Adam on a quadratic, α = {alpha}, {T} steps", fontsize="medium")
ax1.legend(fontsize="x-small", loc="upper right")
styles = {"numpy": dict(color="C2", lw=3.0, alpha=0.5, label="NumPy reference kernel"),
          "numba": dict(color="C3", lw=1.0, ls="--", label="compiled (Numba) kernel")}
for backend, gap in gaps.items():
    ax2.semilogy(np.arange(T + 1), np.maximum(gap, 1e-18), **styles[backend])
ax2.axhline(1e-12, color="k", ls=":", lw=1.0, label="tolerance 1e-12")
ax2.set_ylim(1e-18, 1e-10)
ax2.set_xlabel("step t")
ax2.set_ylabel("max |θ_npvae − θ_Algorithm 1|")
ax2.set_title("Difference between the two updates\n(exact zeros drawn at 1e-18)",
              fontsize="medium")
ax2.legend(fontsize="x-small")
ax2.grid(True, which="major", alpha=0.3)
fig.tight_layout()
path = FIG_DIR / f"{STEM}-adam.png"
fig.savefig(path, dpi=100)
plt.close(fig)
print(f"wrote {path.name}")

# %% [markdown]
# ## 4. STL and DReG across the levels
#
# The bookkeeping check of chapter 7: the score seeds `(ε/σ, ½(ε² − 1))` on
# `(μ, λ)` plus the path seed `−ε/σ` on `z` pushed through the
# reparameterisation give the change of variables' `(0, −½)`. Then, on a small
# two-level markov model, the gradient that the encoder receives from
# `log q(z_2|z_1)` through its input `z_1` (weights fixed) is not zero, so the
# new path matters; and over 2,000 noise draws the encoders' gradient of DReG
# (IWAE, K = 4) and of STL (ELBO) has the standard estimator's mean: the paired
# differences, in standard errors, look like standard normal draws.

# %%
from npvae.distributions.diagonal_gaussian import (  # noqa: E402
    log_q_backward, log_q_dparams, log_q_dz, log_q_forward, reparameterize_backward,
    reparameterize_forward)

mu, lam = rng.standard_normal((2, 5, 3))                                  # (N, Z)
e = rng.standard_normal((4, 5, 3))                                        # (S, N, Z)
c = rng.standard_normal((4, 5))                                           # seeds (S, N)
_, z_c = reparameterize_forward(mu, lam, e)
dmu_path, dlam_path = reparameterize_backward(log_q_dz(c, z_c), z_c)
dmu_score, dlam_score = log_q_dparams(c, z_c)
cov = log_q_backward(c, log_q_forward(lam, e)[1])
gap = max(np.abs(dmu_path + dmu_score.sum(0)).max(),
          np.abs(dlam_path + dlam_score.sum(0) - cov).max())
print(f"score + path - change of variables: {gap:.1e}")
assert gap < 1e-12

X4 = (rng.random((4, D)) < 0.4).astype(np.float64)


def hvae(estimator, objective, k):
    return npvae.HierarchicalVAE(latent_sizes=(3, 2), hidden_sizes=(6,), inference="markov",
                                 activation="tanh", objective=objective, k=k, n_samples=2,
                                 gradient_estimator=estimator, dtype="float64",
                                 random_state=1).initialize(D)


m = hvae("stl", "iwae", 4)
m.flat_params_[...] += 0.3 * rng.standard_normal(m.flat_params_.shape)
log_w, _, cache = m.log_weights_forward(X4, m.draw_noise(4, random_state=0))
dzs = [np.zeros_like(zz) for zz in cache[1]]
m._log_q_path_backward(dzs, [np.ones_like(log_w)] * 2, cache[0])
through_input = np.abs(dzs[0] - m._post.log_q_dz(np.ones_like(log_w), cache[0][1][0])).max()
print(f"largest gradient on z_1 through encoder 2's input: {through_input:.3f}")
assert through_input > 1e-3

names = [n for n in m.layout_.shapes if n.startswith("enc")]             # the encoders'


def encoder_grad(model, eps):
    grads = model.loss_and_grads(X4, eps)[1]
    return np.concatenate([grads[n].ravel() for n in names])


for estimator, objective, k in (("dreg", "iwae", 4), ("stl", "elbo", 1)):
    a, b = hvae(estimator, objective, k), hvae("standard", objective, k)
    a.flat_params_[...] = b.flat_params_[...] = m.flat_params_
    d = np.array([encoder_grad(a, ee) - encoder_grad(b, ee)                 # (R, P_enc)
                  for ee in (a.draw_noise(4, random_state=i) for i in range(2000))])
    se = d.std(axis=0, ddof=1) / np.sqrt(len(d))
    zscore = d.mean(axis=0)[se > 0] / se[se > 0]
    print(f"{estimator} ({objective}): mean z² {np.mean(zscore ** 2):.2f} over "
          f"{zscore.size} encoder parameters, largest |z| {np.abs(zscore).max():.2f}")
    assert np.mean(zscore ** 2) < 2.0 and np.abs(zscore).max() < 5.0

# %%
print(f"run time {time.perf_counter() - START:.1f} s")
