# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # The Ladder VAE, checked
#
# Companion to [chapter 16](../16-ladder-vae.md).
#
# 1. The precision-weighted merge is the normalised product of the two Gaussian
#    densities: numerical integration of $\hat{\mathcal N}(z)\,p(z)$ against
#    $\mathcal N(\mu_q, \sigma_q^2)$.
# 2. Batch normalisation's backward against central differences, and its gradient
#    orthogonal to the constant column and, at $\epsilon = 0$, to $\hat a$ (shift and
#    scale invariance).
# 3. The running statistics after many steps on batches from one distribution
#    approach that distribution's mean and variance.
#
# Run as a script: `python docs/notebooks/08_ladder_vae.py`.

# %%
import numpy as np
from scipy import integrate, stats

from npvae.distributions.precision import precision_merge_forward
from npvae.gradcheck import check_kernel
from npvae.layers.batchnorm import batchnorm_backward, batchnorm_forward, update_running

rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The merge is a product of Gaussians

# %%
mu_hat, lv_hat, mu_p, lv_p = 1.5, np.log(0.3), -0.5, np.log(2.0)
mu_q, lv_q, _ = precision_merge_forward(np.array([[mu_hat]]), np.array([[lv_hat]]),
                                        np.array([[[mu_p]]]), np.array([[[lv_p]]]))
mu_q, var_q = float(mu_q.ravel()[0]), float(np.exp(lv_q).ravel()[0])
product = lambda z: (stats.norm.pdf(z, mu_hat, np.exp(lv_hat / 2))
                     * stats.norm.pdf(z, mu_p, np.exp(lv_p / 2)))
Z = integrate.quad(product, -20, 20)[0]
mean = integrate.quad(lambda z: z * product(z), -20, 20)[0] / Z
var = integrate.quad(lambda z: (z - mean) ** 2 * product(z), -20, 20)[0] / Z
print(f"merge: mu_q = {mu_q:.6f}, var_q = {var_q:.6f}; quadrature: {mean:.6f}, {var:.6f}")
assert abs(mean - mu_q) < 1e-8 and abs(var - var_q) < 1e-8

# %% [markdown]
# ## 2. Batch normalisation's backward

# %%
a = rng.standard_normal((16, 4)) * [1, 3, 0.2, 5] + [0, 2, -1, 10]
gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
errors = check_kernel(batchnorm_forward, batchnorm_backward, [a, gamma, beta],
                      {0: 0, 1: 1, 2: 2}, rng)
print("relative errors (a, gamma, beta):", {k: f"{v:.1e}" for k, v in errors.items()})
assert max(errors.values()) < 1e-7
_, cache = batchnorm_forward(a, gamma, beta, eps=0.0)      # exact invariances at eps = 0
da, _, _ = batchnorm_backward(rng.standard_normal(a.shape), cache)
a_hat = cache[0]
print("column sums of da:", np.abs(da.sum(axis=0)).max(),
      " columns of da . a_hat:", np.abs((da * a_hat).sum(axis=0)).max())
assert np.abs(da.sum(axis=0)).max() < 1e-12 and np.abs((da * a_hat).sum(axis=0)).max() < 1e-12

# %% [markdown]
# ## 3. Running statistics

# %%
running_mean, running_var = np.zeros(3), np.ones(3)
true_mean, true_var = np.array([2.0, -1.0, 0.0]), np.array([0.5, 4.0, 9.0])
for _ in range(400):
    batch = true_mean + np.sqrt(true_var) * rng.standard_normal((64, 3))
    _, c = batchnorm_forward(batch, np.ones(3), np.zeros(3))
    update_running(running_mean, running_var, *c[-1], 64)
print("running mean", running_mean.round(2), " running variance", running_var.round(2))
assert np.allclose(running_mean, true_mean, atol=0.3)
assert np.allclose(running_var, true_var, rtol=0.25)
