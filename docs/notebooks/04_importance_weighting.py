# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Importance weighting: the bound L_K, its gradient, and the bias of log p-hat
#
# Companion to [chapter 6](../06-importance-weighting.md).
#
# 1. On a small VAE trained on the 8x8 digits (binarised), the bound
#    $\mathcal{L}_K$ for $K = 1 \dots 1000$: $\mathcal{L}_1$ equals the ELBO and
#    the bound grows with $K$.
# 2. On a linear Gaussian VAE, where $\log p(x)$ is exact, the bias
#    $\log p(x) - \mathcal{L}_K$ of the estimator $\log \hat p(x)$ shrinks like
#    $\nu^2 / (2K)$.
# 3. The IWAE gradient equals the softmax-weighted sum of the per-sample
#    gradients $\nabla \log w_k$.
#
# Only the public API is used: `model.log_weights(X, eps)` gives the $(K, N)$
# log-weights at the noise `eps`, and `model.loss_and_grads(X, eps)` the loss
# and its gradient. Run as a script: `python docs/notebooks/04_importance_weighting.py`.

# %%
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy.special import logsumexp, softmax

from npvae import VAE
from npvae.data import binarize_static, load_dataset

FIGURES = Path(__file__).resolve().parent.parent / "figures" / "notebooks"
FIGURES.mkdir(parents=True, exist_ok=True)
STEM = Path(__file__).stem
rng = np.random.default_rng(0)


def pooled_log_weights(model, X, n_weights, chunk=500, seed=1, with_elbo=False):
    """``n_weights`` log-weights per example, ``(n_weights, N)``, drawn in chunks.

    With ``with_elbo``, also the ELBO per example (closed-form KL) on the same noise,
    one row per chunk ``(n_chunks, N)``."""
    noise = np.random.default_rng(seed)
    parts, elbos = [], []
    for start in range(0, n_weights, chunk):
        eps = model.draw_noise(X.shape[0], n_samples=min(chunk, n_weights - start),
                               random_state=noise)
        parts.append(model.log_weights(X, eps))
        if with_elbo:
            elbos.append(model.elbo_terms(X, eps)["elbo"])
    log_w = np.concatenate(parts, axis=0)
    return (log_w, np.array(elbos)) if with_elbo else log_w


def bound_estimates(log_w, Ks):
    """Estimate L_K for each K from a pool of log-weights (M, N): split the pool into
    M // K disjoint groups of K; each group gives one draw of log (1/K) sum_k w_k.
    Returns the mean over groups and examples, and its standard error."""
    M, N = log_w.shape
    means, ses = [], []
    for K in Ks:
        G = M // K
        groups = log_w[:G * K].reshape(G, K, N)
        est = logsumexp(groups, axis=1) - np.log(K)             # (G, N)
        per_example = est.mean(axis=0)                           # (N,)
        means.append(per_example.mean())
        # standard error of the mean over examples of the per-example Monte Carlo means
        ses.append(np.sqrt(np.sum(est.var(axis=0, ddof=1) / G)) / N if G > 1 else np.nan)
    return np.array(means), np.array(ses)


# %% [markdown]
# ## 1. L_K on a small VAE trained on the digits
#
# The 8x8 digits (binarised at 128), a 64-32-4 VAE trained for a few epochs.
# From a pool of $M = 5000$ log-weights per test image, $\mathcal{L}_K$ is
# estimated by splitting the pool into $M/K$ disjoint groups of $K$.

# %%
data = load_dataset("digits", binarization="static")
X_train = binarize_static(data.x_train).astype(np.float64)
X_test = binarize_static(data.x_test).astype(np.float64)[:100]
model = VAE(n_latent=4, hidden_sizes=(32,), activation="tanh", batch_size=50,
            learning_rate=3e-3, epochs=40, random_state=0)
model.fit(X_train)
print(f"trained on {X_train.shape[0]} images of D = {X_train.shape[1]}; "
      f"test ELBO {model.score(X_test, random_state=0):.2f} nats")

M = 5000
log_w, elbo_chunks = pooled_log_weights(model, X_test, M, with_elbo=True)   # (M, N), (10, N)
Ks = np.array([1, 2, 5, 10, 20, 50, 100, 200, 500, 1000])
L, L_se = bound_estimates(log_w, Ks)
log_p_hat = (logsumexp(log_w, axis=0) - np.log(M)).mean()       # log p-hat with K = M
elbo = elbo_chunks.mean()                                        # the ELBO, closed-form KL
print(" K     L_K (nats)   s.e.")
for K, l, se in zip(Ks, L, L_se):
    print(f"{K:4d}  {l:10.3f}   {se:.3f}")
print(f"ELBO (closed-form KL, same {M} samples): {elbo:.3f};  "
      f"log p-hat with K = {M}: {log_p_hat:.3f}")

# %% [markdown]
# $\mathcal{L}_1$ and the ELBO estimate the same number in two ways (Monte Carlo
# KL against the closed form); they agree within their standard errors. The
# estimates of $\mathcal{L}_K$ increase with $K$ (the small margin allows for
# Monte Carlo noise between neighbouring $K$, which share the pool).

# %%
# L_1 - ELBO on the same noise, one value per chunk of 500 samples: the chunks are
# independent, so their spread gives the standard error of the difference
chunk_diff = log_w.reshape(len(elbo_chunks), -1, log_w.shape[1]).mean(axis=1) - elbo_chunks
diff, diff_se = chunk_diff.mean(), chunk_diff.mean(axis=1).std(ddof=1) / np.sqrt(len(chunk_diff))
print(f"L_1 - ELBO = {diff:+.4f} (standard error {diff_se:.4f})")
assert abs(diff) < 4 * diff_se + 1e-3
assert np.all(np.diff(L) > -0.02), L
assert L[-1] - L[0] > 0.2                                        # a clear gain from K = 1 to 1000
assert L[-1] <= log_p_hat + 0.05

# %% [markdown]
# ## 2. The bias of log p-hat, where log p(x) is exact
#
# With no hidden layers, identity activations and a Gaussian likelihood of fixed
# variance $s^2$, the decoder is linear, $m = z W + b$, and the model is a factor
# analyser: $x = zW + b + \text{noise}$ with $z \sim \mathcal{N}(0, I)$, so
# $p(x) = \mathcal{N}(b, W^\top W + s^2 I)$ exactly. The encoder is a diagonal
# Gaussian, while the true posterior has a full covariance, so $q$ is not exact and
# the weights vary. Chapter 6 predicts the bias
# $\log p(x) - \mathcal{L}_K \approx \nu^2/(2K)$ with $\nu^2 = \operatorname{Var}[w]/p(x)^2$.
#
# Measuring a bias of $10^{-4}$ nats at $K = 1000$ needs care: the plain estimate
# $\log p(x) - \log \hat p_K$ has a Monte Carlo spread of about $\sqrt{\nu^2/K}$ per
# draw, far larger than the bias. Because $p(x)$ is known here, write
# $\bar Y_K = \hat p_K / p(x)$, whose mean is exactly $1$. Then
# $\log p(x) - \mathcal{L}_K = -E[\log \bar Y_K] = E[(\bar Y_K - 1) - \log \bar Y_K]$,
# and the term added, of mean zero, cancels the first-order noise (a control variate);
# every summand is $\ge 0$ since $t - 1 \ge \log t$.

# %%
Z, D, N_lin = 2, 6, 200
W_true = rng.normal(size=(Z, D))
X_lin = rng.normal(size=(N_lin, Z)) @ W_true + 0.3 * rng.normal(size=(N_lin, D))
lin = VAE(n_latent=Z, hidden_sizes=(), activation="identity", likelihood="gaussian",
          likelihood_params={"variance": "fixed", "logvar": float(np.log(0.3))},
          batch_size=50, learning_rate=1e-2, epochs=150, random_state=0)
lin.fit(X_lin)
X_eval = X_lin[:50]

W = lin.params_["dec_out_W"]                                     # (Z, D)
b = lin.params_["dec_out_b"]                                     # (D,)
cov = W.T @ W + 0.3 * np.eye(D)
diff = X_eval - b
_, logdet = np.linalg.slogdet(cov)
log_px = -0.5 * (D * np.log(2 * np.pi) + logdet + np.sum(diff @ np.linalg.inv(cov) * diff, axis=1))

M_lin = 20000
log_w_lin = pooled_log_weights(lin, X_eval, M_lin, chunk=5000, seed=3)   # (M, N)
Ks_lin = Ks
L_lin, L_lin_se = bound_estimates(log_w_lin, Ks_lin)
plain_bias = log_px.mean() - L_lin
cv_bias = []
for K in Ks_lin:
    G = M_lin // K
    groups = (log_w_lin[:G * K] - log_px).reshape(G, K, -1)      # log(w / p(x))
    log_Y = logsumexp(groups, axis=1) - np.log(K)                # log Y-bar, (G, N)
    cv_bias.append(np.mean(np.expm1(log_Y) - log_Y))
cv_bias = np.array(cv_bias)
nu2 = np.mean(np.expm1(2 * (log_w_lin - log_px)) , axis=0)     # E[(w/p)^2] - 1 per example
predicted = nu2.mean() / (2 * Ks_lin)
print(f"exact mean log p(x) {log_px.mean():.4f}; log p-hat with K = {M_lin}: "
      f"{np.mean(logsumexp(log_w_lin, axis=0) - np.log(M_lin)):.4f}; nu^2 = {nu2.mean():.3f}")
print(" K     plain log p - L_K (s.e.)    control variate    nu^2/(2K)")
for K, pb, se, cb, pp in zip(Ks_lin, plain_bias, L_lin_se, cv_bias, predicted):
    print(f"{K:4d}  {pb:10.5f} ({se:.5f})       {cb:.6f}          {pp:.6f}")
assert np.all(plain_bias > -3 * L_lin_se), "L_K must lie below log p(x)"
assert np.all(np.diff(cv_bias) < 0) and cv_bias[0] > 100 * cv_bias[-1]   # shrinks with K
assert np.all(np.abs(cv_bias[2:] / predicted[2:] - 1) < 0.25)            # ~ nu^2 / 2K, K >= 5

# %% [markdown]
# ## 3. The IWAE gradient is the softmax-weighted per-sample gradient
#
# With `objective="iwae"` the loss is $-\frac1N\sum_n \mathcal{L}_K(x_n)$ on the
# sampled weights. For one example and one noise vector ($K = N = 1$) it is
# $-\log w$, so `loss_and_grads` on a single $(x_n, \varepsilon_{kn})$ gives
# $-\nabla \log w_{kn}$. The chapter's formula says the batch gradient is
# $-\frac1N\sum_n\sum_k \tilde w_{kn} \nabla \log w_{kn}$ with
# $\tilde w = \operatorname{softmax}_k(\log w)$.

# %%
model.set_params(objective="iwae")
K, N = 8, 3
xb = X_test[:N]
eps = model.draw_noise(N, n_samples=K, random_state=4)           # (K, N, Z)
loss, grads = model.loss_and_grads(xb, eps)
w_tilde = softmax(model.log_weights(xb, eps), axis=0)             # (K, N)
combined = {name: np.zeros_like(g) for name, g in grads.items()}
for n in range(N):
    for k in range(K):
        _, g_kn = model.loss_and_grads(xb[n:n + 1], eps[k:k + 1, n:n + 1])   # -grad log w_kn
        for name in combined:
            combined[name] += w_tilde[k, n] * g_kn[name] / N
flat = np.concatenate([grads[name].ravel() for name in grads])
flat_sum = np.concatenate([combined[name].ravel() for name in grads])
err = np.linalg.norm(flat - flat_sum) / np.linalg.norm(flat)
print(f"IWAE gradient vs softmax-weighted per-sample gradients: relative error {err:.1e}")
print("normalised weights of example 0:", np.round(w_tilde[:, 0], 3))
assert err < 1e-10

# %% [markdown]
# The figure: left, $\mathcal{L}_K$ rising from the ELBO towards
# $\log \hat p$ on the digits; right, the bias on the linear Gaussian model,
# falling like $1/K$.

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.5, 3.6), dpi=100)
ax1.errorbar(Ks, L, yerr=2 * L_se, fmt="o-", color="C0", ms=4, capsize=2,
             label="$\\mathcal{L}_K$ (±2 s.e.)")
ax1.axhline(elbo, color="C1", ls="--", label="ELBO (closed-form KL)")
ax1.axhline(log_p_hat, color="k", lw=1, label=f"$\\log \\hat p$, $K = {M}$")
ax1.set_xscale("log")
ax1.set_xlabel("$K$")
ax1.set_ylabel("nats per image")
ax1.set_title("digits 8x8, 64-32-4 VAE")
ax1.set_ylim(elbo - 0.06, log_p_hat + 0.04)
ax1.legend(fontsize=8, loc="center right")
ax2.loglog(Ks_lin, cv_bias, "o-", color="C0", ms=4, label="$\\log p(x) - \\mathcal{L}_K$ (control variate)")
ax2.loglog(Ks_lin, predicted, "--", color="C3", label="$\\nu^2 / 2K$")
ax2.set_xlabel("$K$")
ax2.set_ylabel("nats per example")
ax2.set_title("linear Gaussian VAE: exact $\\log p(x)$")
ax2.legend(fontsize=8)
fig.tight_layout()
out = FIGURES / f"{STEM}-bound_vs_k.png"
fig.savefig(out, dpi=100)
plt.close(fig)
print("wrote", out.name, f"{out.stat().st_size / 1024:.0f} KB")
assert out.stat().st_size < 150 * 1024
