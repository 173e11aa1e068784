"""Compiled (Numba) twins of the bias + activation kernels of :mod:`npvae.layers.activations`.

Same arguments, same return values and the same cache ``(h, name, has_bias)``
as the NumPy reference, so the backends are interchangeable and the tests run
both.  Loops are nopython, compiled once and cached on disk (``cache=True``).
No ``fastmath``: the results must match the reference to 1e-12 in float64.
Arithmetic stays in the input's precision (constants are built from the data,
``zero = a - a``), so float32 loops do not round-trip through float64.  Large
arrays use ``prange`` versions that split rows over threads; each output row is
written by exactly one thread.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .activations import ACTIVATION_CODES, LEAKY_SLOPE

#: arrays at least this large use the ``prange`` kernels (rows split over threads;
#: each row is written by one thread only, so there is no race)
PARALLEL_MIN_ELEMENTS = 1 << 16

# ---------------------------------------------------------------- activations
@njit(cache=True, inline="always")
def _act(a, code):
    zero = a - a                          # 0 in a's own precision (no float64 promotion)
    one = zero + 1
    if code == 0:      # identity
        return a
    if code == 1:      # relu
        return a if a > zero else zero
    if code == 2:      # leaky relu
        return a if a > zero else a * LEAKY_SLOPE
    if code == 3:      # tanh
        return math.tanh(a)
    if code == 4:      # sigmoid, stable on both sides
        if a >= zero:
            return one / (one + math.exp(-a))
        e = math.exp(a)
        return e / (one + e)
    # softplus: max(a, 0) + log1p(exp(-|a|))
    return max(a, zero) + math.log1p(math.exp(-abs(a)))


@njit(cache=True, inline="always")
def _dact(h, code):
    """f'(a) from h = f(a) alone (see activations.activation_derivative)."""
    zero = h - h
    one = zero + 1
    if code == 0:
        return one
    if code == 1:
        return one if h > zero else zero
    if code == 2:
        return one if h > zero else zero + LEAKY_SLOPE
    if code == 3:
        return one - h * h
    if code == 4:
        return h * (one - h)
    return -math.expm1(-h)                 # softplus' = 1 - exp(-h)


@njit(cache=True, inline="always")
def _bias_act_row(a, b, has_bias, code, h, i):
    for j in range(a.shape[1]):
        v = a[i, j] + b[j] if has_bias else a[i, j]
        h[i, j] = _act(v, code)


@njit(cache=True)
def _bias_act_fwd(a, b, has_bias, code, h):
    for i in range(a.shape[0]):
        _bias_act_row(a, b, has_bias, code, h, i)


@njit(cache=True, parallel=True)
def _bias_act_fwd_par(a, b, has_bias, code, h):
    for i in prange(a.shape[0]):
        _bias_act_row(a, b, has_bias, code, h, i)


@njit(cache=True, inline="always")
def _bias_act_bwd_row(dh, h, code, da, i):
    for j in range(dh.shape[1]):
        da[i, j] = dh[i, j] * _dact(h[i, j], code)


@njit(cache=True)
def _bias_act_bwd(dh, h, code, da):
    for i in range(dh.shape[0]):
        _bias_act_bwd_row(dh, h, code, da, i)


@njit(cache=True, parallel=True)
def _bias_act_bwd_par(dh, h, code, da):
    for i in prange(dh.shape[0]):
        _bias_act_bwd_row(dh, h, code, da, i)


def bias_activation_forward(a, b, name, out=None):
    has_bias = b is not None
    code = ACTIVATION_CODES[name]
    h = np.empty_like(a) if out is None else out
    if code == 0 and not has_bias:
        if h is not a:
            h[...] = a
    else:
        bias = b if has_bias else a[0]     # any 1-D array of the right dtype; unused
        kernel = _bias_act_fwd_par if _parallel(a.size) else _bias_act_fwd
        kernel(a, bias, has_bias, code, h)
    return h, (h, name, has_bias)


def bias_activation_backward(dh, cache, out=None):
    h, name, has_bias = cache
    code = ACTIVATION_CODES[name]
    if code == 0:                           # identity: da = dh
        da = dh
        if out is not None and out is not dh:
            out[...] = dh
            da = out
    else:
        da = np.empty_like(h) if out is None else out
        kernel = _bias_act_bwd_par if _parallel(h.size) else _bias_act_bwd
        kernel(dh, h, code, da)
    return da, (da.sum(axis=0) if has_bias else None)



def _parallel(n_elements):
    """Use the prange version above this size: below it, thread start-up costs more."""
    return n_elements >= PARALLEL_MIN_ELEMENTS
