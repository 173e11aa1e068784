"""Compiled (Numba) twin of :func:`npvae.optim.adam_folded_step` (same contract):
one parallel pass over the flat parameter vector, every constant in ``theta``'s
dtype so that float32 stays float32."""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


# one entry of Adam's folded update, inlined into both kernels
# (docs/11-optimisation.md#the-folded-update)
@njit(inline="always")
def _adam_entry(gi, mi, vi, lr_t, beta1, one_minus_beta1, beta2, one_minus_beta2, eps_hat):
    mi = beta1 * mi + one_minus_beta1 * gi
    vi = beta2 * vi + one_minus_beta2 * gi * gi
    return mi, vi, lr_t * mi / (math.sqrt(vi) + eps_hat)


# Adam's folded update θ ← θ − α_t m / (√v + ε̂) (docs/11-optimisation.md#the-folded-update)
@njit(cache=True, parallel=True)
def _adam_kernel(theta, g, m, v, lr_t, beta1, one_minus_beta1, beta2, one_minus_beta2,
                 eps_hat):
    # a prange loop even on one Numba thread: as a parfor LLVM knows that the arrays
    # do not overlap and vectorises it; as a plain range loop it stayed scalar, 7x slower
    # (1.88 ms against 0.27 ms for 652,824 float32 parameters; docs/11-optimisation.md#threads)
    for i in prange(theta.shape[0]):
        m[i], v[i], step = _adam_entry(g[i], m[i], v[i], lr_t, beta1, one_minus_beta1, beta2,
                                       one_minus_beta2, eps_hat)
        theta[i] -= step


def adam_folded_step(theta, g, m, v, lr_t, beta1, beta2, eps_hat):
    dt = theta.dtype.type
    _adam_kernel(theta, g, m, v, dt(lr_t), dt(beta1), dt(1 - beta1), dt(beta2), dt(1 - beta2),
                 dt(eps_hat))


# the folded update with the gradient of W (I, J) formed inside it, g_ij = Σ_r a_ri da_rj
# (docs/11-optimisation.md#fusing-the-weight-gradient-into-adam): at a small batch the
# gradient of a big weight matrix is a sum of R outer products, and forming it here
# instead of in the flat gradient saves writing it and reading it twice (npvae/fused_step.py)
@njit(cache=True, parallel=True)
def _adam_outer_kernel(theta, a, da, m, v, lr_t, beta1, one_minus_beta1, beta2,
                       one_minus_beta2, eps_hat):
    R, I = a.shape
    J = da.shape[1]
    n_chunks = min(I, 64)
    # prange over blocks of rows (one row buffer per block), plain loops over a row so
    # that LLVM vectorises them; r summed in order 0..R-1
    for c in prange(n_chunks):
        g = np.empty(J, theta.dtype)
        for i in range(c * I // n_chunks, (c + 1) * I // n_chunks):
            a0 = a[0, i]
            d0 = da[0]
            for j in range(J):
                g[j] = a0 * d0[j]
            for r in range(1, R):
                ar = a[r, i]
                dr = da[r]
                for j in range(J):
                    g[j] += ar * dr[j]
            t = theta[i * J:(i + 1) * J]
            mm = m[i * J:(i + 1) * J]
            vv = v[i * J:(i + 1) * J]
            for j in range(J):
                mm[j], vv[j], step = _adam_entry(g[j], mm[j], vv[j], lr_t, beta1,
                                                 one_minus_beta1, beta2, one_minus_beta2, eps_hat)
                t[j] -= step


def adam_outer_step(theta, a, da, m, v, lr_t, beta1, beta2, eps_hat):
    dt = theta.dtype.type
    _adam_outer_kernel(theta, a, da, m, v, dt(lr_t), dt(beta1), dt(1 - beta1), dt(beta2),
                       dt(1 - beta2), dt(eps_hat))
