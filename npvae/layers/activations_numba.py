"""Compiled (Numba) twins of the bias + activation kernels of :mod:`npvae.layers.activations`.

Same arguments, same return values and the same cache ``(h, name, has_bias)``
as the NumPy reference, so the backends are interchangeable and the tests run
both.  Loops are nopython, compiled once and cached on disk (``cache=True``).
No LLVM fast-math flags: the results must match the reference to 1e-12 in
float64.  exp, expm1, log1p and tanh come from :mod:`npvae.fastmath`: libm in
float64, vectorisable polynomials in float32 (at most a few ulp; see there);
``error_model="numpy"`` drops the ZeroDivisionError branch that kept the
sigmoid's loop scalar.
Arithmetic stays in the input's precision (constants are built from the data,
``zero = a - a``, ``one = zero + np.float32(1)``), so float32 loops do not round-trip
through float64.  Large
arrays use ``prange`` versions that split rows over threads; each output row is
written by exactly one thread.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .. import fastmath
from .activations import ACTIVATION_CODES, LEAKY_SLOPE

#: arrays at least this large use the ``prange`` kernels (rows split over threads;
#: each row is written by one thread only, so there is no race)
PARALLEL_MIN_ELEMENTS = 1 << 16
#: rows per partial sum of the parallel bias gradient (a function of the shape, not
#: of the thread count, so that the sum's rounding is the same on any number of threads)
DB_BLOCK_ROWS = 64
#: 1 as a float32: float32 + float32 stays float32, float64 + float32 is float64
_ONE = np.float32(1.0)

# ---------------------------------------------------------------- activations
# f(a) per code (docs/01-dense-layers.md#forward-pass); the NumPy reference is
# activations.activation
@njit(cache=True, inline="always", error_model="numpy")
def _act(a, code):
    zero = a - a                          # 0 in a's own precision (no float64 promotion)
    one = zero + _ONE                     # (zero + 1 would be float64: an int promotes float32)
    if code == 0:      # identity
        return a
    if code == 1:      # relu
        return a if a > zero else zero
    if code == 2:      # leaky relu
        return a if a > zero else a * LEAKY_SLOPE
    if code == 3:      # tanh
        return fastmath.tanh(a)
    if code == 4:      # sigmoid, stable on both sides: e = e^{-|a|} never overflows
        e = fastmath.exp(-abs(a))
        return one / (one + e) if a >= zero else e / (one + e)
    # softplus: max(a, 0) + log1p(exp(-|a|))
    return max(a, zero) + fastmath.log1p(fastmath.exp(-abs(a)))


@njit(cache=True, inline="always", error_model="numpy")
def _dact(h, code):
    """f'(a) from h = f(a) alone (docs/01-dense-layers.md#activation-derivatives-from-the-output;
    NumPy reference: activations.activation_derivative)."""
    zero = h - h
    one = zero + _ONE
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
    return -fastmath.expm1(-h)             # softplus' = 1 - exp(-h)


@njit(cache=True, inline="always", error_model="numpy")
def _bias_act_row(a, b, has_bias, code, h, i):
    """Row ``i`` of ``h = f(a + b)`` (docs/01-dense-layers.md#why-the-cache-keeps-only-h)."""
    for j in range(a.shape[1]):
        v = a[i, j] + b[j] if has_bias else a[i, j]
        h[i, j] = _act(v, code)


@njit(cache=True, inline="always", error_model="numpy")
def _bias_act_bwd_rows(dh, h, code, da, start, stop, acc, has_bias):
    """Rows ``start:stop`` of ``da = dh ⊙ f'``, added into ``acc`` (a partial ``db``) as
    they go (docs/01-dense-layers.md#backward-through-the-activation)."""
    for i in range(start, stop):
        for j in range(dh.shape[1]):
            v = dh[i, j] * _dact(h[i, j], code)
            da[i, j] = v
            if has_bias:
                acc[j] += v


def _kernels(code):
    """The four compiled loops of one activation: forward and backward, serial and
    ``prange`` (docs/01-dense-layers.md#why-the-cache-keeps-only-h and
    #backward-through-the-activation, as :func:`activations.bias_activation_forward`
    and ``_backward``).

    ``code`` is a closure constant, so the branch on it folds away and the row loops
    vectorise.  (Passed at run time, the code kept LLVM from vectorising: the ReLU
    backward on 1024 x 400 float32 took 2.7 ms, 77 times a copy of the same bytes;
    specialised, ~0.1 ms.)  Numba caches each closure on disk under the hash of its
    cell contents, one entry per code.  Each output row is written by one thread;
    the serial backward is the parallel one with a single block (``partial`` of
    shape ``(1, H)``), so both sum ``db`` block by block.
    """
    # h = f(a + b) row by row (docs/01-dense-layers.md#why-the-cache-keeps-only-h)
    @njit(cache=True, error_model="numpy")
    def forward(a, b, has_bias, h):
        for i in range(a.shape[0]):
            _bias_act_row(a, b, has_bias, code, h, i)

    # the same, rows split over threads (docs/01-dense-layers.md#why-the-cache-keeps-only-h)
    @njit(cache=True, parallel=True, error_model="numpy")
    def forward_parallel(a, b, has_bias, h):
        for i in prange(a.shape[0]):
            _bias_act_row(a, b, has_bias, code, h, i)

    # da = dh ⊙ f'(a), db = Σ_n da[n] per block of rows
    # (docs/01-dense-layers.md#backward-through-the-activation)
    @njit(cache=True, error_model="numpy")
    def backward(dh, h, da, partial, has_bias):
        T = partial.shape[0]
        rows = (dh.shape[0] + T - 1) // T
        for t in range(T):
            _bias_act_bwd_rows(dh, h, code, da, t * rows, min(dh.shape[0], (t + 1) * rows),
                               partial[t], has_bias)

    # the same, one block per thread (docs/01-dense-layers.md#backward-through-the-activation)
    @njit(cache=True, parallel=True, error_model="numpy")
    def backward_parallel(dh, h, da, partial, has_bias):
        T = partial.shape[0]
        rows = (dh.shape[0] + T - 1) // T
        for t in prange(T):                # block t: its rows and partial[t]
            _bias_act_bwd_rows(dh, h, code, da, t * rows, min(dh.shape[0], (t + 1) * rows),
                               partial[t], has_bias)

    return forward, forward_parallel, backward, backward_parallel


#: name -> (forward, forward in parallel, backward, backward in parallel); the identity's
#: backward is ``da = dh`` and never compiled
_KERNELS = {name: _kernels(code) for name, code in ACTIVATION_CODES.items()}


def bias_activation_forward(a, b, name, out=None):
    has_bias = b is not None
    code = ACTIVATION_CODES[name]
    h = np.empty_like(a) if out is None else out
    if code == 0 and not has_bias:
        if h is not a:
            h[...] = a
    else:
        bias = b if has_bias else a[0]     # any 1-D array of the right dtype; unused
        serial, parallel, _, _ = _KERNELS[name]
        (parallel if _parallel(a.size) else serial)(a, bias, has_bias, h)
    return h, (h, name, has_bias)


def bias_activation_backward(dh, cache, out=None):
    h, name, has_bias = cache
    code = ACTIVATION_CODES[name]
    if code == 0:                           # identity: da = dh
        da = dh
        if out is not None and out is not dh:
            out[...] = dh
            da = out
        return da, (da.sum(axis=0) if has_bias else None)
    da = np.empty_like(h) if out is None else out
    _, _, serial, parallel = _KERNELS[name]
    H = h.shape[1]
    if not _parallel(h.size):
        db = np.zeros((1, H), h.dtype)       # db = Σ_n da[n], summed as the rows are made
        serial(dh, h, da, db, has_bias)
        return da, (db[0] if has_bias else None)
    # partial sums of db over blocks of about DB_BLOCK_ROWS rows, added at the end: one
    # thread writes each block, and the blocks depend on the shape alone, so db is the
    # same to the bit at any thread count (npvae.threads may change it during training)
    blocks = -(-h.shape[0] // DB_BLOCK_ROWS)
    partial = np.zeros((blocks, H), h.dtype)
    parallel(dh, h, da, partial, has_bias)
    return da, (partial.sum(axis=0) if has_bias else None)


def _parallel(n_elements):
    """Use the prange version above this size: below it, thread start-up costs more."""
    return n_elements >= PARALLEL_MIN_ELEMENTS
