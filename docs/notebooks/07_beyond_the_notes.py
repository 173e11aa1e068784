# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Beyond the notes: EM, baselines, STL/DReG and the Fisher autoencoder, checked
#
# Companion to [chapter 13](../13-em-and-variance-reduction.md),
# [chapter 14](../14-fisher-autoencoder.md) and the sections on
# [sticking the landing](../05-elbo.md#sticking-the-landing) and
# [doubly reparameterised gradients](../06-importance-weighting.md#doubly-reparameterised-gradients).
#
# 1. EM's E-step sets the ELBO equal to $\log p(x)$; the M-step never lowers it;
#    the fixed point is scikit-learn's `GaussianMixture`'s from the same start.
# 2. The score-function estimator's variance with a constant baseline $b$ is
#    $8\varphi^2 + 6 + (b - \varphi^2 - 3)^2$ per draw for $\nabla_\varphi \mathbb{E}_{N(\varphi,1)}[x^2]$:
#    Monte Carlo against the closed form.
# 3. STL and DReG change only the encoder's gradient, and leave its mean alone
#    (DReG for IWAE; STL for the ELBO).
# 4. The Fisher autoencoder's hand-written gradient against central differences
#    in a random direction.
#
# Run as a script: `python docs/notebooks/07_beyond_the_notes.py`.

# %%
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

import npvae
from npvae.score_function import score_function_gradient, x_squared_variance
from npvae.mixture import Mixture, e_step, log_marginal, m_step, mixture_elbo

rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. EM as coordinate ascent on the ELBO
#
# Three overlapping Gaussians in 2-D; start from three data points as means,
# identity covariances and equal weights.

# %%
centres = np.array([[0.0, 0.0], [2.5, 1.0], [0.5, 3.0]])
x = np.concatenate([rng.multivariate_normal(c, 0.6 * np.eye(2), 300) for c in centres])
start = Mixture(np.full(3, 1 / 3), x[[0, 300, 600]].copy(), np.stack([np.eye(2)] * 3))

theta, trace = start, []
for it in range(30):
    q, log_px = e_step(x, theta)
    after_e = mixture_elbo(x, q, theta).mean()
    assert abs(after_e - log_px.mean()) < 1e-12            # the bound touches log p(x)
    theta = m_step(x, q, reg_covar=1e-6)
    after_m = mixture_elbo(x, q, theta).mean()
    assert after_m >= after_e - 1e-12                       # the M-step never lowers it
    trace.append((after_e, after_m))
print("mean log p(x) after 1, 10, 30 iterations:",
      ", ".join(f"{trace[i][0]:.6f}" for i in (0, 9, 29)))

warnings.simplefilter("ignore", ConvergenceWarning)   # 30 iterations on purpose, tol 0
gm = GaussianMixture(3, covariance_type="full", max_iter=30, tol=0.0, reg_covar=1e-6,
                     weights_init=start.weights, means_init=start.means,
                     precisions_init=np.linalg.inv(start.covariances)).fit(x)
# scikit-learn runs E then M from the same start: 30 of its iterations are our 30
gap = np.abs(gm.means_ - theta.means).max()
print(f"largest difference of the means from scikit-learn's: {gap:.1e}")
assert gap < 1e-8
assert abs(log_marginal(x, theta).mean() - gm.score(x)) < 1e-8

# %% [markdown]
# ## 2. A baseline's variance in closed form
#
# With $x = \varphi + \varepsilon$ the score is $x - \varphi$; one draw of
# $(x^2 - b)(x - \varphi)$ has variance $8\varphi^2 + 6 + (b - \varphi^2 - 3)^2$.

# %%
phi, S, R = 1.5, 10, 200_000
eps = rng.standard_normal((R, S))
f, score = (phi + eps) ** 2, eps[..., None]                 # (R, S), (R, S, 1)
for name, b in [("score", 0.0), ("mean_baseline", phi ** 2 + 1), ("optimal", phi ** 2 + 3)]:
    g = score_function_gradient(f, score, baseline=b)[:, 0]  # (R,)
    theory = float(x_squared_variance(phi, S, name))
    print(f"{name:14s} mean {g.mean():.4f} (2φ = {2 * phi}), variance {g.var():.4f}, "
          f"closed form {theory:.4f}")
    assert abs(g.mean() - 2 * phi) < 5 * np.sqrt(theory / R)
    assert abs(g.var() / theory - 1) < 0.02

# %% [markdown]
# ## 3. STL and DReG: the decoder's gradient unchanged, the encoder's mean unchanged
#
# One small VAE on random binary data; for each noise draw the three estimators'
# gradients, then the mean over draws of the encoder part.

# %%
X = (rng.random((16, 12)) < 0.4).astype(np.float64)


def grads(estimator, objective, k, eps):
    m = npvae.VAE(n_latent=3, hidden_sizes=(8,), activation="tanh", objective=objective, k=k,
                  gradient_estimator=estimator, random_state=0)
    m.initialize(X.shape[1])
    loss, g = m.loss_and_grads(X, eps)
    enc = np.concatenate([g[n].ravel() for n in sorted(g) if n.startswith("enc")])
    dec = np.concatenate([g[n].ravel() for n in sorted(g) if n.startswith("dec")])
    return loss, enc, dec


for objective, k, other in [("iwae", 5, "dreg"), ("elbo", 1, "stl")]:
    probe = npvae.VAE(n_latent=3, hidden_sizes=(8,), objective=objective, k=k, random_state=0)
    probe.initialize(X.shape[1])
    draws = [probe.draw_noise(len(X), random_state=s) for s in range(400)]
    std = [grads("standard", objective, k, e) for e in draws]
    alt = [grads(other, objective, k, e) for e in draws]
    assert all(a[0] == s[0] and np.array_equal(a[2], s[2]) for a, s in zip(alt, std))
    d = np.array([a[1] - s[1] for a, s in zip(alt, std)])          # (draws, P_enc)
    z = d.mean(0) / (d.std(0, ddof=1) / np.sqrt(len(d)) + 1e-300)
    print(f"{other} ({objective}, K={k}): decoder gradients identical; encoder mean "
          f"difference, largest |z| over parameters {np.abs(z).max():.2f}, mean z² "
          f"{np.mean(z ** 2):.2f}")
    assert np.mean(z ** 2) < 2.0

# %% [markdown]
# ## 4. The Fisher autoencoder's gradient by finite differences

# %%
fae = npvae.FisherAutoencoder(n_latent=2, hidden_sizes=(5,), activation="tanh", random_state=0)
Xg = rng.random((6, 7))
fae.initialize(Xg.shape[1])
noise = fae.draw_noise(len(Xg), random_state=1)
loss, g = fae.loss_and_grads(Xg, noise)
direction = {n: rng.standard_normal(v.shape) for n, v in fae.params_.items()}
analytic = sum(np.sum(g[n] * direction[n]) for n in direction)
h = 1e-6
base = {n: v.copy() for n, v in fae.params_.items()}


def loss_at(t):
    for n in direction:
        fae.params_[n][...] = base[n] + t * direction[n]
    return fae.loss_and_grads(Xg, noise)[0]


numeric = (loss_at(h) - loss_at(-h)) / (2 * h)
loss_at(0.0)
rel = abs(analytic - numeric) / max(abs(numeric), 1e-12)
print(f"Fisher loss {loss:.4f}; directional derivative {analytic:.8f} by the backward pass, "
      f"{numeric:.8f} by central differences (relative error {rel:.1e})")
assert rel < 1e-6
