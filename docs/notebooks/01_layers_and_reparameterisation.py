# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Notebook 1: dense layers and the reparameterisation trick
#
# Companion to [chapter 1](../01-dense-layers.md) and
# [chapter 2](../02-reparameterisation.md). It checks, with npvae's own kernels:
#
# 1. the backward of a dense layer, for every activation, and of a small MLP,
#    against centred finite differences in float64, on both backends;
# 2. the backward of the reparameterised sample, of $\log q$ and of the
#    diagonal Gaussian log-density, the same way;
# 3. the variances of the score-function and pathwise estimators of
#    $\nabla_\phi \mathbb{E}_{N(\phi, 1)}[x^2]$ against the closed forms of chapter 2.
#
# Run it from the repository root: `python docs/notebooks/01_layers_and_reparameterisation.py`.
# Every claim is asserted, so the script fails loudly if the code is wrong.

# %%
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import npvae  # noqa: E402
from npvae.distributions.diagonal_gaussian import (  # noqa: E402
    log_normal_backward,
    log_normal_forward,
    log_q_backward,
    log_q_forward,
    reparameterize_backward,
    reparameterize_forward,
)
from npvae.gradcheck import numerical_gradient, relative_error  # noqa: E402
from npvae.layers.activations import ACTIVATIONS  # noqa: E402
from npvae.layers.dense import dense_backward, dense_forward, mlp_backward, mlp_forward  # noqa: E402

try:
    HERE = Path(__file__).resolve().parent
except NameError:  # inside Jupyter, run from docs/notebooks
    HERE = Path.cwd()
FIGURES = HERE.parent / "figures" / "notebooks"
FIGURES.mkdir(parents=True, exist_ok=True)
STEM = "01_layers_and_reparameterisation"

T0 = time.perf_counter()
rng = np.random.default_rng(0)
BACKENDS = ("numpy", "numba")   # the NumPy reference and the compiled twins
TOL = 1e-7          # relative error allowed between a backward pass and centred differences

# %% [markdown]
# ## 1. A dense layer, every activation
#
# The scalar checked is $\ell = \sum_{n,k} h_{nk} G_{nk}$ for a fixed random
# $G$, so that $\mathrm{d}h = G$. ReLU-type units have a kink at $a = 0$: a
# finite difference whose step crosses it measures nothing, so the inputs are
# redrawn until every pre-activation is at least $10^{-3}$ away from $0$.


# %%
def away_from_kinks(x, W, b, margin=1e-3):
    return np.min(np.abs(x @ W + b)) > margin


def check_dense(activation, rng, N=4, n_in=5, n_out=3):
    while True:
        x = rng.standard_normal((N, n_in))
        W = rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)
        b = rng.standard_normal(n_out) * 0.5
        if away_from_kinks(x, W, b):
            break
    G = rng.standard_normal((N, n_out))

    def loss():
        return float(np.sum(dense_forward(x, W, b, activation)[0] * G))

    _, cache = dense_forward(x, W, b, activation)
    dx, dW, db = dense_backward(G, cache)
    return {name: relative_error(analytic, numerical_gradient(loss, arr))
            for name, analytic, arr in (("dx", dx, x), ("dW", dW, W), ("db", db, b))}


print(f"{'backend':8s} {'activation':11s} {'dx':>9s} {'dW':>9s} {'db':>9s}")
for backend in BACKENDS:
    with npvae.use_backend(backend):
        for act in ACTIVATIONS:
            err = check_dense(act, rng)
            print(f"{backend:8s} {act:11s} " + " ".join(f"{e:9.1e}" for e in err.values()))
            assert max(err.values()) < TOL, (backend, act, err)

# %% [markdown]
# ## 2. An MLP as a composition
#
# Three layers, $5 \to 8 \to 7 \to 4$, with tanh, softplus and identity: the
# backward of [`mlp_backward`](../../npvae/layers/dense.py) runs the layers in
# reverse, each passing $\mathrm{d}h_{i-1} = \mathrm{d}a_i W_i^\top$ down.

# %%
sizes, acts = (5, 8, 7, 4), ("tanh", "softplus", "identity")
x = rng.standard_normal((6, sizes[0]))
weights = [(rng.standard_normal((a, b)) / np.sqrt(a), rng.standard_normal(b) * 0.1)
           for a, b in zip(sizes[:-1], sizes[1:])]
G = rng.standard_normal((6, sizes[-1]))
for backend in BACKENDS:
    with npvae.use_backend(backend):
        def loss():
            return float(np.sum(mlp_forward(x, weights, acts)[0] * G))

        _, caches = mlp_forward(x, weights, acts)
        dx, grads = mlp_backward(G, caches)
        errs = [relative_error(dx, numerical_gradient(loss, x))]
        for (W, b), (dW, db) in zip(weights, grads):
            errs += [relative_error(dW, numerical_gradient(loss, W)),
                     relative_error(db, numerical_gradient(loss, b))]
        print(f"{backend:8s} MLP {'-'.join(map(str, sizes))}: largest relative error "
              f"over dx and all dW, db: {max(errs):.1e}")
        assert max(errs) < TOL

# %% [markdown]
# ## 3. The reparameterised sample and the Gaussian log-densities
#
# Shapes: $\mu, \lambda$ $(N, Z)$, $\varepsilon$ and $z$ $(S, N, Z)$. For
# $\log q$ at its own sample the chapter derives a total derivative along the
# path: $\mathrm{d}\lambda = -\tfrac12 \sum_s \mathrm{d}\log q$ and
# $\mathrm{d}\mu = 0$. The last check composes the sample with the general
# log-density, $\log N(z(\mu, \lambda, \varepsilon); \mu, e^{\lambda})$, and
# confirms both numbers by finite differences of that composition.

# %%
S, N, Z = 5, 3, 4
mu = rng.standard_normal((N, Z))
logvar = rng.standard_normal((N, Z)) * 0.5
eps = rng.standard_normal((S, N, Z))
Gz = rng.standard_normal((S, N, Z))
Gs = rng.standard_normal((S, N))

for backend in BACKENDS:
    with npvae.use_backend(backend):
        _, cache = reparameterize_forward(mu, logvar, eps)
        dmu, dlogvar = reparameterize_backward(Gz, cache)

        def loss():
            return float(np.sum(reparameterize_forward(mu, logvar, eps)[0] * Gz))

        e_mu = relative_error(dmu, numerical_gradient(loss, mu))
        e_lv = relative_error(dlogvar, numerical_gradient(loss, logvar))
        print(f"{backend:8s} reparameterize_backward: dmu {e_mu:.1e}, dlogvar {e_lv:.1e}")
        assert max(e_mu, e_lv) < TOL

# log N(z; mu, e^lambda) at an arbitrary z, mu and lambda broadcast over the S samples
z = rng.standard_normal((S, N, Z))
_, cache = log_normal_forward(z, mu, logvar)
dz, dmu, dlogvar = log_normal_backward(Gs, cache)


def loss():
    return float(np.sum(log_normal_forward(z, mu, logvar)[0] * Gs))


errs = {name: relative_error(g, numerical_gradient(loss, arr))
        for name, g, arr in (("dz", dz, z), ("dmu", dmu, mu), ("dlogvar", dlogvar, logvar))}
print("log_normal_backward: " + ", ".join(f"{k} {v:.1e}" for k, v in errs.items()))
assert max(errs.values()) < TOL

# log q at its own sample: a function of lambda and eps only
_, cache = log_q_forward(logvar, eps)
dlogvar = log_q_backward(Gs, cache)


def loss():
    return float(np.sum(log_q_forward(logvar, eps)[0] * Gs))


e = relative_error(dlogvar, numerical_gradient(loss, logvar))
print(f"log_q_backward: dlogvar {e:.1e}")
assert e < TOL


# the total derivative along the path, through the general density
def loss():
    z, _ = reparameterize_forward(mu, logvar, eps)
    return float(np.sum(log_normal_forward(z, mu, logvar)[0] * Gs))


num_mu, num_lv = numerical_gradient(loss, mu), numerical_gradient(loss, logvar)
e = relative_error(dlogvar, num_lv)
print(f"log N(mu + sigma eps; mu, e^lambda): d/dlambda against log_q_backward {e:.1e}, "
      f"largest |d/dmu| {np.abs(num_mu).max():.1e} (exactly 0 in theory)")
assert e < TOL and np.abs(num_mu).max() < 1e-7
assert np.allclose(dlogvar, -0.5 * Gs.sum(axis=0)[:, None])

# %% [markdown]
# ## 4. Score function against pathwise: the gradient of E[x²]
#
# $x \sim N(\phi, 1)$, true gradient $2\phi$. Both estimators use npvae's
# kernels: the sample is $x = \mu + \sigma \varepsilon$ with $\mu = \phi$,
# $\lambda = 0$ from `reparameterize_forward`;
#
# * pathwise: $\mathrm{d}x = 2x/S$ for the $S$-sample mean of $x^2$, pulled
#   back to $\mathrm{d}\mu$ by `reparameterize_backward`;
# * score function: $\frac1S \sum_s f(x_s) \nabla_\mu \log N(x_s; \mu, 1)$,
#   which is `log_normal_backward` with upstream gradient $f(x_s)/S$;
# * score function with the baseline $b = \phi^2 + 1$: upstream $(f(x_s) - b)/S$.
#
# Chapter 2 derives the one-sample variances $\phi^4 + 14\phi^2 + 15$,
# $8\phi^2 + 10$ and $4$; an $S$-sample mean divides them by $S$.

# %%
def closed_form(phi):
    return {"score": phi ** 4 + 14 * phi ** 2 + 15, "baseline": 8 * phi ** 2 + 10,
            "pathwise": 4.0 + 0 * phi}


def estimates(phi, S, R, rng):
    """``R`` independent ``S``-sample estimates of d/dphi E[x^2] by each estimator."""
    out = {key: np.empty(R) for key in ("score", "baseline", "pathwise")}
    block = max(1, 2_000_000 // S)                       # bound the memory of one draw
    for r0 in range(0, R, block):
        r = min(block, R - r0)
        mu, logvar = np.full((r, 1), phi), np.zeros((r, 1))
        eps = rng.standard_normal((S, r, 1))
        x, rep_cache = reparameterize_forward(mu, logvar, eps)      # (S, r, 1)
        f = x[..., 0] ** 2                                          # (S, r)
        out["pathwise"][r0:r0 + r] = reparameterize_backward(2 * x / S, rep_cache)[0][:, 0]
        _, ln_cache = log_normal_forward(x, mu, logvar)
        out["score"][r0:r0 + r] = log_normal_backward(f / S, ln_cache)[1][:, 0]
        out["baseline"][r0:r0 + r] = log_normal_backward((f - phi ** 2 - 1) / S, ln_cache)[1][:, 0]
    return out


PHI = 2.0
S_values = np.array([1, 3, 10, 30, 100, 300, 1000, 3000, 10000])
var_S = {key: [] for key in ("score", "baseline", "pathwise")}
print(f"phi = {PHI:g}: variance of S-sample estimates over R repeats (measured / closed form)")
print(f"{'S':>6s} {'R':>8s} {'score':>18s} {'baseline':>18s} {'pathwise':>18s}")
for S in S_values:
    R = int(max(2000, 4_000_000 // S))                  # more repeats where they are cheap
    est = estimates(PHI, int(S), R, rng)
    row = []
    for key, values in est.items():
        v, theory = values.var(ddof=1), closed_form(PHI)[key] / S
        var_S[key].append(v)
        row.append(f"{v:10.3g} ({v / theory:5.3f})")
        assert abs(values.mean() - 2 * PHI) < 6 * np.sqrt(theory / R), (S, key)   # unbiased
        assert abs(v / theory - 1) < 0.15, (S, key, v, theory)
    print(f"{S:6d} {R:8d} " + " ".join(row))

# %% [markdown]
# The same one-sample variances across $\phi$: the score function's grows
# like $\phi^4$, the pathwise one stays at 4.

# %%
phis = np.linspace(-3, 3, 13)
R1 = 200_000
var_phi = {key: [] for key in ("score", "baseline", "pathwise")}
for phi in phis:
    est = estimates(phi, 1, R1, rng)
    for key, values in est.items():
        v = values.var(ddof=1)
        var_phi[key].append(v)
        assert abs(v / closed_form(phi)[key] - 1) < 0.1, (phi, key, v)
print(f"one-sample variances at {len(phis)} values of phi in [-3, 3] agree with the "
      f"closed forms to 10% ({R1:,} draws each)")
ratio = closed_form(phis)["score"] / closed_form(phis)["pathwise"]
assert ratio.min() >= 15 / 4 - 1e-12
print(f"score / pathwise variance: {ratio.min():.2f} at phi = 0 (= 15/4), "
      f"{closed_form(2.0)['score'] / 4:.2f} at phi = 2, {ratio.max():.1f} at |phi| = 3")

# %%
colours = {"score": "C3", "baseline": "C1", "pathwise": "C0"}
labels = {"score": r"score function $x^2(x-\phi)$",
          "baseline": r"score function, baseline $\phi^2+1$",
          "pathwise": r"pathwise $2(\phi+\varepsilon)$"}
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
for key in colours:
    ax1.plot(S_values, closed_form(PHI)[key] / S_values, color=colours[key], lw=1.2)
    ax1.plot(S_values, var_S[key], "o", color=colours[key], ms=5, label=labels[key])
ax1.set(xscale="log", yscale="log", xlabel="samples per estimate S",
        ylabel="variance of the S-sample estimate")
ax1.set_title(rf"$\phi = {PHI:g}$: measured (dots), closed form / S (lines)", fontsize="medium")
ax1.legend(fontsize="small", loc="lower left")
ax1.grid(True, which="major", alpha=0.3)

fine = np.linspace(-3, 3, 200)
formulas = {"score": r"$\phi^4 + 14\phi^2 + 15$", "baseline": r"$8\phi^2 + 10$", "pathwise": "$4$"}
for key in colours:
    ax2.plot(fine, closed_form(fine)[key], color=colours[key], lw=1.2, label=formulas[key])
    ax2.plot(phis, var_phi[key], "o", color=colours[key], ms=4)
ax2.legend(fontsize="small", loc="upper center", title="closed forms", title_fontsize="small")
ax2.set(yscale="log", xlabel=r"$\phi$", ylabel="variance of a one-sample estimate")
ax2.set_title("S = 1, across $\\phi$: the score function grows like $\\phi^4$", fontsize="medium")
ax2.grid(True, which="major", alpha=0.3)
fig.suptitle(r"Gradient of $E[x^2]$, $x \sim N(\phi, 1)$: score function against pathwise")
path = FIGURES / f"{STEM}-estimator-variance.png"
fig.savefig(path, dpi=100)
plt.close(fig)
print(f"wrote {path.relative_to(HERE.parent.parent)}")

# %%
print(f"all checks passed in {time.perf_counter() - T0:.1f} s")
