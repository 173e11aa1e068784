"""exp, expm1, log1p and tanh for the compiled kernels: vectorisable polynomials in
float32, libm in float64 (docs/01-dense-layers.md#elementary-functions-in-float32).

Numba compiles ``math.exp``/``math.tanh`` to one scalar libm call per element
(its SVML path is gone), so a loop that calls them never becomes a SIMD loop:
1024 x 400 float32 tanh took ~7 ms, over a hundred times a copy of the bytes.
The functions here are plain arithmetic — Cody-Waite range reduction, a
polynomial, ``2^n`` assembled from exponent bits — which LLVM vectorises for the
CPU it compiles on (AVX2 or AVX-512 alike).

Each is a Numba function with two implementations, chosen when a kernel is
compiled: for float32 arguments the polynomial (maximum error over *every*
finite float32 input, measured exhaustively by ``benchmarks/fastmath_error.py``:
exp 0.96 ulp, expm1 1.48, log1p on [0, 1] 1.97, tanh 1.33), for float64 the libm function itself, so the float64
kernels still match the NumPy reference to 1e-12.  Kernels that divide must be
compiled with ``error_model="numpy"`` (no ZeroDivisionError branch: that branch,
too, keeps a loop scalar).

Coefficients: near-minimax fits of ``(e^r − 1 − r)/r²`` on ``|r| ≤ ln 2/2``,
``(tanh t − t)/t³`` in ``t²`` on ``t ≤ 0.625`` and ``atanh(s)/s − 1`` in ``s²`` on
``s ≤ 1/3``, by iteratively reweighted least squares on Chebyshev nodes.
"""
from __future__ import annotations

import math
import os

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

_f = np.float32
#: debug builds: assert the domains the polynomials were fitted on (read once, at import;
#: a global is a compile-time constant to Numba)
_CHECK_DOMAIN = os.environ.get("NPVAE_FASTMATH_CHECKS", "") not in ("", "0")
_LOG2E = _f(1.4426950408889634)
_LN2_HI = _f(0.693359375)                  # ln 2 = HI + LO, HI with 9 significant bits,
_LN2_LO = _f(-2.12194440e-4)               # so n·HI is exact for |n| < 2^15
_ROUND = _f(12582912.0)                    # 1.5·2^23: (v + R) − R rounds v to an integer
_EXP_MIN, _EXP_MAX = _f(-104.0), _f(89.0)     # e^x below: 0; above: inf in float32
_ZERO, _ONE, _TWO = _f(0.0), _f(1.0), _f(2.0)
_E2, _E3, _E4, _E5, _E6, _E7 = (_f(c) for c in (
    0.5000000013379488, 0.16666666532287916, 0.041666465527968724, 0.00833336074093427,
    0.001393359755544878, 0.00019857781867831003))
_T3, _T5, _T7, _T9, _T11, _T13 = (_f(c) for c in (
    -0.3333333311950648, 0.13333298170796343, -0.053958258606449594, 0.021762166202693653,
    -0.008325012550458175, 0.002273963419708905))
_TANH_SMALL, _TANH_CLAMP = _f(0.625), _f(9.2)   # tanh(9.2) rounds to 1 in float32
_EXPM1_SMALL = _f(0.34657359)                   # ln 2 / 2
_L1, _L3, _L5, _L7, _L9 = (_f(c) for c in (
    0.33333333665567266, 0.19999851616791717, 0.1429624931271384, 0.1085226949057515,
    0.11616766465482822))


@intrinsic
def _float32_from_bits(typingctx, bits):
    """The float32 whose IEEE bits are the int32 ``bits`` (an LLVM bitcast)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


# 2^n from exponent bits (docs/01-dense-layers.md#elementary-functions-in-float32)
@njit(inline="always", error_model="numpy")
def _pow2(k):
    """``2^k`` for an int32 ``k`` in [−126, 127], from its exponent bits."""
    return _float32_from_bits((k + 127) << 23)


# e^r − 1 = r + r² P(r) (docs/01-dense-layers.md#elementary-functions-in-float32)
@njit(inline="always", error_model="numpy")
def _expm1_reduced(r):
    """``e^r − 1`` for ``|r| ≤ ln 2/2``: ``r + r² P(r)``."""
    return r + r * r * (_E2 + r * (_E3 + r * (_E4 + r * (_E5 + r * (_E6 + r * _E7)))))


# e^x = 2^n e^r (docs/01-dense-layers.md#elementary-functions-in-float32)
@njit(inline="always", error_model="numpy")
def _exp32(x):
    x = min(max(x, _EXP_MIN), _EXP_MAX)
    n = (x * _LOG2E + _ROUND) - _ROUND              # nearest integer to x / ln 2
    r = (x - n * _LN2_HI) - n * _LN2_LO             # x − n ln 2, |r| ≤ ln 2 / 2
    k = np.int32(n)                                 # in [−150, 128]
    k1 = k >> 1
    # e^r · 2^k1 · 2^(k−k1): both powers normal, and a result near the overflow or
    # in the subnormal range is rounded once, by the last product
    return ((_ONE + _expm1_reduced(r)) * _pow2(k1)) * _pow2(k - k1)


# docs/01-dense-layers.md#elementary-functions-in-float32
@njit(inline="always", error_model="numpy")
def _expm1_32(x):
    """``e^x − 1 = 2^k (e^r − 1) + (2^k − 1)``: for ``k ≤ 24`` the second term is exact,
    so only ``e^r − 1`` (small, accurate) carries error; above, ``e^x − 1`` loses nothing."""
    x = min(max(x, _EXP_MIN), _EXP_MAX)
    n = (x * _LOG2E + _ROUND) - _ROUND
    r = (x - n * _LN2_HI) - n * _LN2_LO
    q = _expm1_reduced(r)
    k = np.int32(n)
    k1 = k >> 1
    p1, p2 = _pow2(k1), _pow2(k - k1)
    s = p1 * p2
    small_k = s * q + (s - _ONE)
    large_k = ((q + _ONE) * p1) * p2 - _ONE
    if x == _ZERO:
        return x                                    # ±0 keeps its sign (q would be +0)
    return small_k if k <= 24 else large_k


# docs/01-dense-layers.md#elementary-functions-in-float32
@njit(inline="always", error_model="numpy")
def _log1p32(y):
    """``log(1 + y)`` for ``0 ≤ y ≤ 1`` only, the kernels' use (``y = e^{−|η|}``):
    ``2 atanh(s)`` with ``s = y/(2 + y) ≤ 1/3``, a series in ``s²`` fitted on that
    interval.  There is no range reduction: outside ``[0, 1]`` the series is used
    beyond its fit and loses accuracy.  A debug build asserts the domain: set
    ``NPVAE_FASTMATH_CHECKS=1`` before the kernels are compiled (with an empty Numba
    cache; a cached kernel keeps the build it was compiled in).  Otherwise the check
    is a compile-time ``False`` and costs nothing."""
    if _CHECK_DOMAIN:
        assert y >= _ZERO and y <= _ONE, "fastmath._log1p32: y outside [0, 1]"
    s = y / (_TWO + y)
    s2 = s * s
    return _TWO * s + _TWO * s * s2 * (_L1 + s2 * (_L3 + s2 * (_L5 + s2 * (_L7 + s2 * _L9))))


# docs/01-dense-layers.md#elementary-functions-in-float32
@njit(inline="always", error_model="numpy")
def _tanh32(x):
    t = min(abs(x), _TANH_CLAMP)
    u = t * t
    small = t + t * u * (_T3 + u * (_T5 + u * (_T7 + u * (_T9 + u * (_T11 + u * _T13)))))
    large = _ONE - _TWO / (_exp32(t + t) + _ONE)   # 1 − 2/(e^{2t} + 1), no cancellation here
    y = small if t < _TANH_SMALL else large
    return math.copysign(y, x)


# Public names: the kernels call these; the implementation is chosen by the argument type.
def exp(x):
    """e^x: polynomial in float32, libm in float64."""
    return math.exp(x)


def expm1(x):
    """e^x − 1, accurate near 0."""
    return math.expm1(x)


def log1p(y):
    """log(1 + y) for 0 ≤ y ≤ 1."""
    return math.log1p(y)


def tanh(x):
    """tanh x."""
    return math.tanh(x)


def _choose(fast, exact):
    def typer(x):
        if isinstance(x, types.Float) and x.bitwidth == 32:
            return lambda x: fast(x)
        return lambda x: exact(x)
    return typer


def _libm(f):
    """The float64 branch: ``f`` itself, the C library's
    (docs/01-dense-layers.md#elementary-functions-in-float32)."""
    return njit(inline="always")(lambda x: f(x))


_libm_exp, _libm_expm1, _libm_log1p, _libm_tanh = (
    _libm(f) for f in (math.exp, math.expm1, math.log1p, math.tanh))
overload(exp, inline="always")(_choose(_exp32, _libm_exp))
overload(expm1, inline="always")(_choose(_expm1_32, _libm_expm1))
overload(log1p, inline="always")(_choose(_log1p32, _libm_log1p))
overload(tanh, inline="always")(_choose(_tanh32, _libm_tanh))
