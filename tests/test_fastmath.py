"""npvae.fastmath: float32 polynomials within a few ulp of libm, float64 exactly libm.

The exhaustive scan over every float32 input lives in benchmarks/fastmath_error.py
(minutes); here a dense sample of each range, the edges and special values."""
from __future__ import annotations

import math

import numpy as np
import pytest
from numba import njit

from npvae import fastmath as F


@njit(error_model="numpy")
def _apply(which, a, out):
    for i in range(a.size):
        if which == 0:
            out[i] = F.exp(a[i])
        elif which == 1:
            out[i] = F.expm1(a[i])
        elif which == 2:
            out[i] = F.log1p(a[i])
        else:
            out[i] = F.tanh(a[i])


NAMES = {"exp": (0, np.exp), "expm1": (1, np.expm1), "log1p": (2, np.log1p), "tanh": (3, np.tanh)}
RANGES = {"exp": (-104.0, 89.0), "expm1": (-20.0, 20.0), "log1p": (0.0, 1.0), "tanh": (-12.0, 12.0)}


def run(name, x):
    out = np.empty_like(x)
    _apply(NAMES[name][0], x, out)
    return out


def ulp_error(y32, x32, ref):
    """|y − f(x)| in units of the float32 spacing at f(x) (normal results only)."""
    r = ref(x32.astype(np.float64))
    normal = (np.abs(r) >= np.finfo(np.float32).tiny) & (np.abs(r) <= np.finfo(np.float32).max)
    spacing = np.ldexp(1.0, np.frexp(np.abs(r[normal]))[1] - 24)
    return np.abs(y32[normal].astype(np.float64) - r[normal]) / spacing


@pytest.mark.parametrize("name", sorted(NAMES))
def test_float32_within_two_ulp(name):
    lo, hi = RANGES[name]
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(lo, hi, 200_000),
                        np.sign(rng.standard_normal(50_000)) * 10.0 ** rng.uniform(-30, 0, 50_000)])
    if name == "log1p":
        x = np.abs(x)
    x = x[(x >= lo) & (x <= hi)].astype(np.float32)
    err = ulp_error(run(name, x), x, NAMES[name][1])
    assert err.max() < 2.5, (name, err.max())
    # the polynomial is not libm: it must differ somewhere (else the test checks nothing)
    with np.errstate(over="ignore"):
        assert np.any(run(name, x) != NAMES[name][1](x))


@pytest.mark.parametrize("name", sorted(NAMES))
def test_float64_is_libm(name):
    x = np.random.default_rng(1).uniform(*RANGES[name], 10_000)
    ref = np.array([getattr(math, name)(v) for v in x])
    np.testing.assert_array_equal(run(name, x), ref)


def test_edges_float32():
    f32 = np.float32
    x = np.array([0.0, -0.0, 89.0, 88.7, 100.0, -104.0, -200.0, np.inf, -np.inf], f32)
    y = run("exp", x)
    assert y[0] == 1 and y[1] == 1
    assert np.isinf(y[2]) and np.isinf(y[4]) and np.isinf(y[7])     # overflow → inf
    assert np.isfinite(y[3]) and y[3] == pytest.approx(math.exp(float(f32(88.7))), rel=3e-7)
    assert y[5] >= 0 and y[6] == 0 and y[8] == 0                    # underflow → 0
    sub = run("exp", np.array([-100.0], f32))[0]                      # a subnormal result
    assert abs(float(sub) - math.exp(-100.0)) <= 2.0 ** -149
    t = run("tanh", np.array([0.0, -0.0, 1e-30, -1e-30, 9.5, -50.0, np.inf, -np.inf], f32))
    assert list(t[[0, 2]]) == [0.0, f32(1e-30)] and t[3] == f32(-1e-30)
    assert np.signbit(t[1])
    assert list(t[4:]) == [1.0, -1.0, 1.0, -1.0]
    assert run("expm1", np.array([1e-30], f32))[0] == f32(1e-30)
    assert run("log1p", np.array([0.0, 1e-30], f32)).tolist() == [0.0, f32(1e-30)]
