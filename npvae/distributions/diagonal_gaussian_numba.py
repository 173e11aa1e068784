"""Compiled (Numba) twins of the kernels of :mod:`npvae.distributions.diagonal_gaussian`.

Same arguments, same return values and the same cache layouts as the NumPy
references.  No LLVM fast-math flags; arithmetic in the input's precision
where it matters (see :mod:`npvae.layers.activations_numba`), and ``exp`` from
:mod:`npvae.fastmath` (libm in float64, a vectorisable polynomial in float32).
"""
from __future__ import annotations


import numpy as np
from numba import njit

from .. import fastmath

# ---------------------------------------------------------------- Gaussian
# z = μ + σ ⊙ ε (docs/02-reparameterisation.md#the-reparameterised-sample)
@njit(cache=True)
def _reparam_fwd(mu, logvar, eps, sigma, z, half):
    S, N, Z = eps.shape
    for n in range(N):
        for j in range(Z):
            sigma[n, j] = fastmath.exp(half * logvar[n, j])     # half: 0.5 in logvar's dtype
    for s in range(S):
        for n in range(N):
            for j in range(Z):
                z[s, n, j] = mu[n, j] + sigma[n, j] * eps[s, n, j]


# dμ = Σ_s dz, dλ = Σ_s dz ⊙ ε ⊙ σ / 2 (docs/02-reparameterisation.md#backward-of-the-sample)
@njit(cache=True)
def _reparam_bwd(dz, sigma, eps, dmu, dlogvar):
    S, N, Z = dz.shape
    for n in range(N):
        for j in range(Z):
            a = 0.0
            b = 0.0
            for s in range(S):
                a += dz[s, n, j]
                b += dz[s, n, j] * eps[s, n, j]
            dmu[n, j] = a
            dlogvar[n, j] = b * sigma[n, j] / 2


def reparameterize_forward(mu, logvar, eps):
    sigma = np.empty_like(mu)
    z = np.empty(eps.shape, mu.dtype)
    _reparam_fwd(mu, logvar, eps, sigma, z, logvar.dtype.type(0.5))
    return z, (sigma, eps)


def _into_dmu_dlogvar(kernel, like, *args):
    """``(dμ, dλ)``: fresh arrays shaped like ``like`` that ``kernel(*args, dμ, dλ)`` fills."""
    dmu, dlogvar = np.empty_like(like), np.empty_like(like)
    kernel(*args, dmu, dlogvar)
    return dmu, dlogvar


def reparameterize_backward(dz, cache):
    sigma, eps = cache
    return _into_dmu_dlogvar(_reparam_bwd, sigma, dz, sigma, eps)


# KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² − 1 − λ_j) (docs/03-kl-divergences.md#kl-to-the-standard-normal)
@njit(cache=True)
def _kl_std_fwd(mu, logvar, var, kl):
    N, Z = mu.shape
    for n in range(N):                     # the exponentials in a loop of their own: SIMD
        for j in range(Z):
            var[n, j] = fastmath.exp(logvar[n, j])
    for n in range(N):
        acc = 0.0
        for j in range(Z):
            acc += mu[n, j] * mu[n, j] + var[n, j] - 1.0 - logvar[n, j]
        kl[n] = 0.5 * acc


# ∂KL/∂μ = μ, ∂KL/∂λ = ½ (σ² − 1) (docs/03-kl-divergences.md#gradients-of-the-kl-to-the-standard-normal)
@njit(cache=True)
def _kl_std_bwd(dkl, mu, var, dmu, dlogvar):
    N, Z = mu.shape
    for n in range(N):
        for j in range(Z):
            dmu[n, j] = dkl[n] * mu[n, j]
            dlogvar[n, j] = dkl[n] * 0.5 * (var[n, j] - 1.0)


def kl_standard_normal_forward(mu, logvar):
    var = np.empty_like(mu)
    kl = np.empty(mu.shape[0], mu.dtype)
    _kl_std_fwd(mu, logvar, var, kl)
    return kl, (mu, var)


def kl_standard_normal_backward(dkl, cache):
    mu, var = cache
    return _into_dmu_dlogvar(_kl_std_bwd, mu, dkl, mu, var)


# KL(q‖p) between diagonals (docs/03-kl-divergences.md#kl-between-two-diagonal-gaussians)
@njit(cache=True)
def _kl_diag_fwd(mu_q, lv_q, mu_p, lv_p, var_q, inv_var_p, diff, kl):
    R, Z = mu_q.shape
    for r in range(R):                     # the exponentials in a loop of their own: SIMD
        for j in range(Z):
            var_q[r, j] = fastmath.exp(lv_q[r, j])
            inv_var_p[r, j] = fastmath.exp(-lv_p[r, j])
            diff[r, j] = mu_q[r, j] - mu_p[r, j]
    for r in range(R):
        acc = 0.0
        for j in range(Z):
            d = diff[r, j]
            acc += lv_p[r, j] - lv_q[r, j] + (var_q[r, j] + d * d) * inv_var_p[r, j] - 1.0
        kl[r] = 0.5 * acc


# its four gradients (docs/03-kl-divergences.md#gradients-of-the-kl-between-diagonals)
@njit(cache=True)
def _kl_diag_bwd(dkl, var_q, inv_var_p, diff, dmu_q, dlv_q, dmu_p, dlv_p):
    R, Z = var_q.shape
    for r in range(R):
        for j in range(Z):
            g = dkl[r] * diff[r, j] * inv_var_p[r, j]
            dmu_q[r, j] = g
            dmu_p[r, j] = -g
            dlv_q[r, j] = dkl[r] * 0.5 * (var_q[r, j] * inv_var_p[r, j] - 1.0)
            dlv_p[r, j] = dkl[r] * 0.5 * (1.0 - (var_q[r, j] + diff[r, j] * diff[r, j]) * inv_var_p[r, j])


def kl_diagonal_forward(mu_q, logvar_q, mu_p, logvar_p):
    shape = np.broadcast_shapes(mu_q.shape, logvar_q.shape, mu_p.shape, logvar_p.shape)
    Z = shape[-1]
    # read-only broadcast views, copied only where they repeat entries
    flat = [np.ascontiguousarray(np.broadcast_to(a, shape)).reshape(-1, Z)
            for a in (mu_q, logvar_q, mu_p, logvar_p)]                  # (R, Z)
    var_q = np.empty_like(flat[0])
    inv_var_p = np.empty_like(flat[0])
    diff = np.empty_like(flat[0])
    kl = np.empty(flat[0].shape[0], flat[0].dtype)
    _kl_diag_fwd(*flat, var_q, inv_var_p, diff, kl)
    return kl.reshape(shape[:-1]), (var_q.reshape(shape), inv_var_p.reshape(shape),
                                    diff.reshape(shape))


def kl_diagonal_backward(dkl, cache):
    var_q, inv_var_p, diff = cache
    shape = var_q.shape
    Z = shape[-1]
    flat = [a.reshape(-1, Z) for a in (var_q, inv_var_p, diff)]
    outs = [np.empty_like(flat[0]) for _ in range(4)]
    _kl_diag_bwd(np.ascontiguousarray(np.broadcast_to(dkl, shape[:-1])).reshape(-1), *flat, *outs)
    dmu_q, dlv_q, dmu_p, dlv_p = (o.reshape(shape) for o in outs)
    return dmu_q, dlv_q, dmu_p, dlv_p
