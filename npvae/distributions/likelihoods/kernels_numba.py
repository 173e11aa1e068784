"""Compiled (Numba) twins of the likelihood kernels of :mod:`npvae.distributions.likelihoods`.

Same arguments, same return values and the same cache layouts as the NumPy
references (the Bernoulli cache holds ``x − σ(η)`` in both).  No LLVM fast-math
flags; in float32 the Bernoulli kernel takes its exp and log1p from
:mod:`npvae.fastmath` (vectorisable polynomials, a few ulp).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ... import fastmath
from ...layers.activations_numba import _parallel
from ..diagonal_gaussian import LOG_2PI as _LOG_2PI
from .categorical import LEVEL_ERROR

# ---------------------------------------------------------------- likelihoods
# docs/04-likelihoods.md#fused-forward-and-gradient
@njit(cache=True, inline="always")
def _bernoulli_row(logits, x, e, grad, log_p, r, N):
    """One row (s, n): log p and ∂ log p/∂η = x − σ(η), given ``e = e^{−|η|}`` and,
    in ``grad`` on entry, ``log1p(e)`` (each entry is read before it is overwritten)."""
    s, n = r // N, r % N
    acc = 0.0
    for d in range(logits.shape[2]):
        eta = logits[s, n, d]
        zero = eta - eta
        one = zero + 1
        ed = e[s, n, d]
        acc += max(eta, zero) - x[n, d] * eta + grad[s, n, d]      # + log(1 + e^{−|η|})
        sig = one / (one + ed) if eta >= zero else ed / (one + ed)
        grad[s, n, d] = x[n, d] - sig
    log_p[s, n] = -acc


# log p = Σ_d (x η − softplus η) and x − σ(η), row by row (docs/04-likelihoods.md#fused-forward-and-gradient)
@njit(cache=True)
def _bernoulli_fwd(logits, x, e, grad, log_p):
    S, N = logits.shape[0], logits.shape[1]
    for r in range(S * N):
        _bernoulli_row(logits, x, e, grad, log_p, r, N)


# the same, rows over threads (docs/04-likelihoods.md#fused-forward-and-gradient)
@njit(cache=True, parallel=True)
def _bernoulli_fwd_par(logits, x, e, grad, log_p):
    S, N = logits.shape[0], logits.shape[1]
    for r in prange(S * N):
        _bernoulli_row(logits, x, e, grad, log_p, r, N)


# ∂/∂η = dlog p · (x − σ(η)) (docs/04-likelihoods.md#bernoulli-gradient)
@njit(cache=True, parallel=True)
def _scale_rows(grad, dlog_p, out):
    S, N, D = grad.shape
    for r in prange(S * N):
        s, n = r // N, r % N
        g = dlog_p[s, n]
        for d in range(D):
            out[s, n, d] = g * grad[s, n, d]


_ZERO32 = np.float32(0.0)
_ONE32 = np.float32(1.0)
#: rows per ``prange`` task of the float32 kernel (each task owns one scratch row)
_ROWS_PER_TASK = 16


# the row sum of log p (docs/04-likelihoods.md#bernoulli-log-likelihood-on-logits)
@njit(cache=True, inline="always")
def _sum8(buf, D):
    """Σ_d buf[d] in float64 with eight running sums (independent adds: LLVM packs
    them into one vector add per step, where a single running sum waits on each add)."""
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
    D8 = D - D % 8
    for d in range(0, D8, 8):
        a0 += buf[d]
        a1 += buf[d + 1]
        a2 += buf[d + 2]
        a3 += buf[d + 3]
        a4 += buf[d + 4]
        a5 += buf[d + 5]
        a6 += buf[d + 6]
        a7 += buf[d + 7]
    for d in range(D8, D):
        a0 += buf[d]
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))


# docs/04-likelihoods.md#stable-softplus, docs/01-dense-layers.md#elementary-functions-in-float32
@njit(cache=True, inline="always", error_model="numpy")
def _bernoulli_row32(logits, x, grad, log_p, buf, r, N):
    """One float32 row (s, n) in one vectorisable pass: −log p per element into
    ``buf``, ``x − σ(η)`` into ``grad``; then ``log p = −Σ buf``."""
    s, n = r // N, r % N
    D = logits.shape[2]
    for d in range(D):
        eta = logits[s, n, d]
        e = fastmath.exp(-abs(eta))                                    # e^{−|η|}
        buf[d] = max(eta, _ZERO32) - x[n, d] * eta + fastmath.log1p(e)
        sig = _ONE32 / (_ONE32 + e) if eta >= _ZERO32 else e / (_ONE32 + e)
        grad[s, n, d] = x[n, d] - sig
    log_p[s, n] = -_sum8(buf, D)


# float32, one pass (docs/04-likelihoods.md#fused-forward-and-gradient)
@njit(cache=True, error_model="numpy")
def _bernoulli_fwd32(logits, x, grad, log_p):
    S, N, D = logits.shape
    buf = np.empty(D, np.float32)
    for r in range(S * N):
        _bernoulli_row32(logits, x, grad, log_p, buf, r, N)


# the same, blocks of rows over threads (docs/04-likelihoods.md#fused-forward-and-gradient)
@njit(cache=True, parallel=True, error_model="numpy")
def _bernoulli_fwd32_par(logits, x, grad, log_p):
    S, N, D = logits.shape
    rows = S * N
    for task in prange((rows + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK):
        buf = np.empty(D, np.float32)
        for r in range(task * _ROWS_PER_TASK, min(rows, (task + 1) * _ROWS_PER_TASK)):
            _bernoulli_row32(logits, x, grad, log_p, buf, r, N)


def bernoulli_forward(logits, x):
    """Fused: the forward pass also keeps ``x − σ(η)`` for the backward.

    float32: one compiled pass (:func:`_bernoulli_fwd32`), exp and log1p from
    :mod:`npvae.fastmath`.  float64: the two transcendentals, ``e = e^{−|η|}`` and ``log1p(e)``, come from NumPy's
    SIMD ufuncs: Numba compiles ``math.exp``/``math.log1p`` to one scalar libm
    call per element (no SVML here), ~15x slower than NumPy's vector loops
    (1024x784 float32: 10 ms against 0.75 ms).  The Numba loop does the rest.
    """
    if logits.dtype == np.float32 and x.dtype == np.float32:
        grad = np.empty_like(logits)
        log_p = np.empty(logits.shape[:2], logits.dtype)
        (_bernoulli_fwd32_par if _parallel(logits.size) else _bernoulli_fwd32)(
            logits, x, grad, log_p)
        return log_p, grad
    e = np.abs(logits)
    np.negative(e, out=e)
    np.exp(e, out=e)                                   # e^{−|η|}
    grad = np.log1p(e)                                 # log(1 + e^{−|η|}), overwritten below
    log_p = np.empty(logits.shape[:2], logits.dtype)
    kernel = _bernoulli_fwd_par if _parallel(logits.size) else _bernoulli_fwd
    kernel(logits, x, e, grad, log_p)
    return log_p, grad


def bernoulli_backward(dlog_p, cache):
    grad = cache
    out = np.empty_like(grad)
    if _parallel(grad.size):
        _scale_rows(grad, dlog_p, out)
    else:
        np.multiply(dlog_p[..., None], grad, out=out)
    return out


# log p = −½ Σ_d (log 2π + λx_d + (x_d − m_d)² e^{−λx_d}) (docs/04-likelihoods.md#gaussian-log-density)
@njit(cache=True)
def _gaussian_fwd(mean, lv, x, diff, inv_var, log_p):
    S, N, D = mean.shape
    const = 0.0
    for d in range(D):
        inv_var[d] = math.exp(-lv[d])
        const += _LOG_2PI + lv[d]
    for s in range(S):
        for n in range(N):
            acc = 0.0
            for d in range(D):
                r = x[n, d] - mean[s, n, d]
                diff[s, n, d] = r
                acc += r * r * inv_var[d]
            log_p[s, n] = -0.5 * (const + acc)


# ∂/∂m = (x − m) e^{−λx}, ∂/∂λx = ½ ((x − m)² e^{−λx} − 1) (docs/04-likelihoods.md#gaussian-gradient)
@njit(cache=True)
def _gaussian_bwd(dlog_p, diff, inv_var, dmean, dlv):
    S, N, D = diff.shape
    for d in range(D):
        dlv[d] = 0.0
    for s in range(S):
        for n in range(N):
            g = dlog_p[s, n]
            for d in range(D):
                r = diff[s, n, d]
                dmean[s, n, d] = g * r * inv_var[d]
                dlv[d] += g * 0.5 * (r * r * inv_var[d] - 1.0)


def gaussian_forward(mean, logvar_x, x):
    D = mean.shape[-1]
    lv = np.ascontiguousarray(np.broadcast_to(logvar_x, (D,)), dtype=mean.dtype)
    diff = np.empty_like(mean)
    inv_var = np.empty(D, mean.dtype)
    log_p = np.empty(mean.shape[:2], mean.dtype)
    _gaussian_fwd(mean, lv, x, diff, inv_var, log_p)
    return log_p, (diff, inv_var, np.shape(logvar_x))


def gaussian_backward(dlog_p, cache):
    diff, inv_var, logvar_shape = cache
    dmean = np.empty_like(diff)
    dlv = np.empty(diff.shape[-1], diff.dtype)
    _gaussian_bwd(dlog_p, diff, inv_var, dmean, dlv)
    if logvar_shape == ():
        return dmean, np.asarray(dlv.sum(), diff.dtype)
    return dmean, dlv


# levels in [0, V) (docs/04-likelihoods.md#categorical-likelihood)
@njit(cache=True)
def _check_levels(x, V):
    """The bound test of the categorical kernels: every level in ``[0, V)``, else a
    ``ValueError`` (``O(N·D)`` against the kernels' ``O(S·N·D·V)``).  The kernels index
    the logits with ``x`` and Numba checks no bounds, so no flag of the caller skips it."""
    N, D = x.shape
    for n in range(N):
        for d in range(D):
            if x[n, d] < 0 or x[n, d] >= V:
                raise ValueError(LEVEL_ERROR)


# m = max_v η_dv, subtracted before exp so that no e^η overflows (docs/04-likelihoods.md#log-softmax)
@njit(cache=True, inline="always")
def _max_level(logits, s, n, d):
    m = logits[s, n, d, 0]
    for v in range(1, logits.shape[3]):
        m = max(m, logits[s, n, d, v])
    return m


# log p = Σ_d log softmax(η_d)[x_d] (docs/04-likelihoods.md#log-softmax)
@njit(cache=True)
def _categorical_fwd(logits, x, log_p):
    S, N, D, V = logits.shape
    _check_levels(x, V)
    for s in range(S):
        for n in range(N):
            acc = 0.0
            for d in range(D):
                m = _max_level(logits, s, n, d)
                tot = 0.0
                for v in range(V):
                    tot += math.exp(logits[s, n, d, v] - m)
                acc += logits[s, n, d, x[n, d]] - m - math.log(tot)
            log_p[s, n] = acc


# ∂ log p / ∂η_dv = [x_d = v] − softmax(η_d)_v (docs/04-likelihoods.md#categorical-gradient)
@njit(cache=True)
def _categorical_bwd(dlog_p, logits, x, dlogits):
    S, N, D, V = logits.shape
    _check_levels(x, V)
    for s in range(S):
        for n in range(N):
            g = dlog_p[s, n]
            for d in range(D):
                m = _max_level(logits, s, n, d)
                tot = 0.0
                for v in range(V):
                    e = math.exp(logits[s, n, d, v] - m)
                    dlogits[s, n, d, v] = e
                    tot += e
                for v in range(V):
                    dlogits[s, n, d, v] = -g * dlogits[s, n, d, v] / tot
                dlogits[s, n, d, x[n, d]] += g


def categorical_forward(logits, x):
    """Contract of :func:`npvae.distributions.likelihoods.categorical.categorical_forward`;
    levels outside ``[0, V)`` raise ``ValueError`` inside the compiled loop
    (:func:`_check_levels`), whatever the caller checked."""
    log_p = np.empty(logits.shape[:2], logits.dtype)
    _categorical_fwd(logits, x, log_p)
    return log_p, (logits, x)


def categorical_backward(dlog_p, cache):
    logits, x = cache
    dlogits = np.empty_like(logits)
    _categorical_bwd(dlog_p, logits, x, dlogits)
    return dlogits

