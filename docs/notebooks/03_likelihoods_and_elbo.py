# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Likelihood kernels and the ELBO identity
#
# Companion to [chapter 4](../04-likelihoods.md) and [chapter 5](../05-elbo.md).
#
# 1. Every likelihood kernel's hand-written gradient against centred finite
#    differences, in float64, on both backends.
# 2. The Bernoulli kernel at logits of $\pm 200$, where the textbook formula fails.
# 3. The identity $\log p(x) = \mathrm{ELBO} + \mathrm{KL}(q \,\Vert\, p(z \mid x))$
#    on a linear Gaussian model, where every term has a closed form.
#
# Run as a script: `python docs/notebooks/03_likelihoods_and_elbo.py`.

# %%
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import npvae
from npvae.backend import HAVE_NUMBA
from npvae.distributions.diagonal_gaussian import kl_standard_normal_forward
from npvae.distributions.likelihoods.bernoulli import bernoulli_backward, bernoulli_forward
from npvae.distributions.likelihoods.beta import beta_backward, beta_forward
from npvae.distributions.likelihoods.categorical import (categorical_backward,
                                                         categorical_forward)
from npvae.distributions.likelihoods.gaussian import gaussian_backward, gaussian_forward
from npvae.gradcheck import numerical_gradient, relative_error

FIGURES = Path(__file__).resolve().parent.parent / "figures" / "notebooks"
FIGURES.mkdir(parents=True, exist_ok=True)
STEM = Path(__file__).stem
rng = np.random.default_rng(0)
BACKENDS = ["numpy", "numba"] if HAVE_NUMBA else ["numpy"]
TOL = 1e-7

# %% [markdown]
# ## 1. Kernel gradients against finite differences
#
# A backward kernel returns $g_{sn}\, \partial \log p(x_n \mid z_{sn}) / \partial o$
# for an upstream gradient $g$ of shape $(S, N)$. So the scalar to
# differentiate is $f(o) = \sum_{s,n} g_{sn} \log p(x_n \mid o_{sn})$, and the
# backward of $g$ must equal $\nabla_o f$. The error is
# $\lVert a - n \rVert / (\lVert a \rVert + \lVert n \rVert)$ between the
# analytic gradient $a$ and the centred difference $n$.

# %%
S, N, D, V = 2, 3, 5, 4
g = rng.normal(size=(S, N))


def check(name, forward, backward, inputs, wrt, pick=lambda grads, i: grads[i]):
    """Compare each gradient the backward returns with centred differences of f."""
    def f():
        return float(np.sum(g * forward(*inputs)[0]))

    _, cache = forward(*inputs)
    grads = backward(g, cache)
    errors = []
    for i, arg in enumerate(wrt):
        analytic = pick(grads, i)
        numeric = numerical_gradient(f, inputs[arg])
        errors.append(relative_error(analytic, numeric))
    print(f"  {name:<34s} " + "  ".join(f"{e:.1e}" for e in errors))
    assert max(errors) < TOL, (name, errors)
    return max(errors)


worst = 0.0
for backend in BACKENDS:
    print(f"backend {backend}: relative error of each gradient")
    with npvae.use_backend(backend):
        x_bin = (rng.random((N, D)) < 0.5).astype(float)
        worst = max(worst, check("bernoulli  d/d eta", bernoulli_forward, bernoulli_backward,
                                 [rng.normal(size=(S, N, D)) * 3, x_bin], [0],
                                 pick=lambda gr, i: gr))
        x_real = rng.normal(size=(N, D))
        for label, lv in [("scalar", np.array(0.3)), ("per output", rng.normal(size=D) * 0.5)]:
            worst = max(worst, check(f"gaussian {label:<10s} d/dm, d/dlv", gaussian_forward,
                                     gaussian_backward,
                                     [rng.normal(size=(S, N, D)), lv.copy(), x_real], [0, 1]))
        levels = rng.integers(0, V, size=(N, D))
        worst = max(worst, check("categorical d/d eta", categorical_forward,
                                 categorical_backward,
                                 [rng.normal(size=(S, N, D, V)) * 2, levels], [0],
                                 pick=lambda gr, i: gr))
        x_unit = (rng.integers(0, 256, size=(N, D)) + 0.5) / 256
        worst = max(worst, check("beta d/du, d/dv", beta_forward, beta_backward,
                                 [rng.normal(size=(S, N, D, 2)), x_unit], [0],
                                 pick=lambda gr, i: gr))
print(f"largest relative error: {worst:.1e} (< {TOL:g})")

# %% [markdown]
# The Gaussian check includes the scalar log-variance: its gradient is the
# per-output gradient summed over samples, examples **and** dimensions, and the
# finite difference of the scalar agrees.

# %% [markdown]
# ## 2. Bernoulli at logits of ±200
#
# Exact values: $\log p = x\eta - \operatorname{softplus}(\eta)$, so for
# $\eta = 200$ it is $-e^{-200} \approx -1.4 \times 10^{-87}$ when $x = 1$ and
# $-200$ when $x = 0$ (and mirrored for $\eta = -200$). The textbook form
# $x \log\sigma(\eta) + (1 - x)\log(1 - \sigma(\eta))$ is evaluated beside it.

# %%
eta = np.array([200.0, 200.0, -200.0, -200.0])
xs = np.array([1.0, 0.0, 1.0, 0.0])
e = np.exp(-np.abs(eta))                                   # 1.4e-87, fine in float64
exact = (xs * eta - np.maximum(eta, 0)) - e                # log1p(e) = e to 1e-174
exact_grad = xs - np.where(eta > 0, 1 / (1 + e), e / (1 + e))
with np.errstate(all="ignore"):
    sig = 1 / (1 + np.exp(-eta))
    textbook = xs * np.log(sig) + (1 - xs) * np.log(1 - sig)

results = {}
for backend in BACKENDS:
    with npvae.use_backend(backend):
        for dtype in (np.float64, np.float32):
            lp, cache = bernoulli_forward(eta.astype(dtype).reshape(1, 4, 1),
                                          xs.astype(dtype).reshape(4, 1))
            grad = bernoulli_backward(np.ones((1, 4), dtype), cache).ravel()
            assert np.all(np.isfinite(lp)) and np.all(np.isfinite(grad))
            assert np.allclose(lp.ravel(), exact, rtol=1e-6, atol=1e-30), (backend, dtype)
            assert np.allclose(grad, exact_grad, rtol=0, atol=1e-30), (backend, dtype)
            results[backend, np.dtype(dtype).name] = lp.ravel()

print("  eta   x   exact log p     textbook     " + "  ".join(f"{b}/{d:<8s}" for b, d in results))
for i in range(4):
    row = "  ".join(f"{results[k][i]:<14.4g}" for k in results)
    print(f"{eta[i]:5.0f}  {xs[i]:.0f}   {exact[i]:<14.4g}  {textbook[i]:<11.4g}  {row}")
print("gradient x - sigma(eta):", exact_grad)
assert not np.any(np.isfinite(textbook[:2]))    # textbook form: NaN and -inf at eta = 200

# %% [markdown]
# ## 3. The ELBO identity on a linear Gaussian model
#
# $p(z) = \mathcal{N}(0, 1)$ and $p(x \mid z) = \mathcal{N}(wz + b, s^2)$ in one
# dimension. Everything is exact:
#
# - evidence: $x = wz + b + \text{noise}$ is Gaussian, $p(x) = \mathcal{N}(b, w^2 + s^2)$;
# - posterior: $p(z \mid x) = \mathcal{N}(m_\star, v_\star)$ with
#   $v_\star = s^2/(w^2 + s^2)$ and $m_\star = w(x - b)/(w^2 + s^2)$ (complete the square);
# - for $q = \mathcal{N}(m, v)$, the reconstruction term is
#   $E_q[\log p(x \mid z)] = -\tfrac12\log(2\pi s^2) - \big((x - b - wm)^2 + w^2 v\big)/(2s^2)$,
#   and $\mathrm{KL}(q \,\Vert\, p(z))$ is the closed form of chapter 3,
#   here computed by npvae's own kernel.
#
# The ELBO is their difference, and $\log p(x) - \mathrm{ELBO}$ must equal
# $\mathrm{KL}(q \,\Vert\, p(z \mid x)) = \tfrac12\big(\log(v_\star/v) + (v + (m - m_\star)^2)/v_\star - 1\big)$
# for every $q$.

# %%
w, b, s2, x = 1.5, 0.3, 0.4, 2.0
log_px = -0.5 * (np.log(2 * np.pi * (w * w + s2)) + (x - b) ** 2 / (w * w + s2))
v_star = s2 / (w * w + s2)
m_star = w * (x - b) / (w * w + s2)


def elbo(m, v):
    m, v = np.broadcast_arrays(np.asarray(m, float), np.asarray(v, float))
    recon = -0.5 * np.log(2 * np.pi * s2) - ((x - b - w * m) ** 2 + w * w * v) / (2 * s2)
    kl_prior, _ = kl_standard_normal_forward(m.reshape(-1, 1), np.log(v).reshape(-1, 1))
    return recon - kl_prior.reshape(m.shape)


def kl_to_posterior(m, v):
    return 0.5 * (np.log(v_star / v) + (v + (m - m_star) ** 2) / v_star - 1)


means = np.linspace(m_star - 1.5, m_star + 1.5, 201)
variances = {"$v = v_\\star$": v_star, "$v = v_\\star / 8$": v_star / 8, "$v = 3 v_\\star$": 3 * v_star}
gap_error = 0.0
for v in variances.values():
    gap_error = max(gap_error, np.max(np.abs((log_px - elbo(means, v)) - kl_to_posterior(means, v))))
print(f"log p(x) = {log_px:.6f}; posterior N({m_star:.4f}, {v_star:.4f})")
print(f"max |log p(x) - ELBO - KL(q || p(z|x))| over the grid: {gap_error:.1e}")
assert gap_error < 1e-12
assert abs(elbo(m_star, v_star) - log_px) < 1e-12          # the bound is tight at q = p(z|x)
assert np.all(elbo(means, v_star / 8) < log_px)            # and strict elsewhere

# %% [markdown]
# A Monte Carlo check of the reconstruction term with npvae's Gaussian kernel
# (the form the model uses), at one $q$: the sampled average agrees with the
# closed form within a few standard errors.

# %%
m_q, v_q = 0.5, 0.2
z = m_q + np.sqrt(v_q) * rng.standard_normal((200_000, 1, 1))
log_lik, _ = gaussian_forward(w * z + b, np.array(np.log(s2)), np.array([[x]]))
recon_exact = -0.5 * np.log(2 * np.pi * s2) - ((x - b - w * m_q) ** 2 + w * w * v_q) / (2 * s2)
se = log_lik.std() / np.sqrt(log_lik.size)
print(f"E_q[log p(x|z)]: Monte Carlo {log_lik.mean():.4f} +- {se:.4f}, exact {recon_exact:.4f}")
assert abs(log_lik.mean() - recon_exact) < 4 * se

# %% [markdown]
# The figure: as the mean of $q$ moves, the ELBO stays below $\log p(x)$;
# with the posterior's variance it touches $\log p(x)$ at $m = m_\star$. The
# right panel shows that the gap is exactly the KL to the posterior.

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.5, 3.6), dpi=100)
ax1.axhline(log_px, color="k", lw=1.5, label="$\\log p(x)$")
colours = ["C0", "C1", "C2"]
for (label, v), c in zip(variances.items(), colours):
    ax1.plot(means, elbo(means, v), color=c, label=f"ELBO, {label}")
    ax2.plot(means, log_px - elbo(means, v), color=c, lw=3, alpha=0.35)
    ax2.plot(means, kl_to_posterior(means, v), color=c, ls="--", lw=1.2)
ax1.axvline(m_star, color="0.6", lw=0.8, ls=":")
ax1.set_ylim(log_px - 4, log_px + 0.5)
ax1.text(m_star + 0.04, log_px + 0.2, "$m_\\star$", color="0.4")
ax1.set_xlabel("mean $m$ of $q$")
ax1.set_ylabel("nats")
ax1.set_title("ELBO $\\leq \\log p(x)$")
ax1.legend(fontsize=8, loc="lower center")
ax2.axvline(m_star, color="0.6", lw=0.8, ls=":")
ax2.set_ylim(-0.1, 4)
ax2.set_xlabel("mean $m$ of $q$")
ax2.set_title("$\\log p(x) - $ELBO (thick) $=$ KL$(q \\,\\|\\, p(z|x))$ (dashed)", fontsize=10)
fig.tight_layout()
out = FIGURES / f"{STEM}-elbo_gap.png"
fig.savefig(out, dpi=100)
plt.close(fig)
print("wrote", out.name, f"{out.stat().st_size / 1024:.0f} KB")
assert out.stat().st_size < 150 * 1024
