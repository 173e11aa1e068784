"""Activations and the fused bias + activation kernel (docs/01-dense-layers.md).

Forward ``h = f(a + b)``; backward, given ``dh``: ``da = dh ⊙ f'(a + b)`` and
``db = Σ_n da``.  Every derivative is written from the output ``h`` alone
(:func:`activation_derivative`), so the cache keeps one array.

Shapes: ``a (N, Out)``, ``b (Out,)``, ``h (N, Out)``.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from ..backend import compiled_in

ACTIVATIONS = ("identity", "relu", "leaky_relu", "tanh", "sigmoid", "softplus")
#: integer codes used by the Numba kernels (one branch per code inside the loop)
ACTIVATION_CODES = {name: i for i, name in enumerate(ACTIVATIONS)}
LEAKY_SLOPE = 0.01


def check_activation(name: str) -> str:
    if name not in ACTIVATION_CODES:
        raise ValueError(f"unknown activation {name!r}; choose one of {ACTIVATIONS}")
    return name


def activation_value(a: np.ndarray, name: str) -> np.ndarray:
    """``f(a)`` for the named activation (NumPy reference, docs/01-dense-layers.md#forward-pass)."""
    if name == "identity":
        return a.copy()
    if name == "relu":
        return np.maximum(a, 0)
    if name == "leaky_relu":
        return np.where(a > 0, a, LEAKY_SLOPE * a)
    if name == "tanh":
        return np.tanh(a)
    if name == "sigmoid":
        return expit(a)
    if name == "softplus":
        return np.logaddexp(0, a)          # log(1 + e^a), stable for any a
    raise ValueError(f"unknown activation {name!r}")


def activation_derivative(h: np.ndarray, name: str) -> np.ndarray:
    """``f'(a)`` written from the output ``h = f(a)`` alone, so that only ``h`` is
    kept for the backward pass: relu ``[h > 0]``; leaky relu ``1`` or the slope;
    tanh ``1 − h²``; sigmoid ``h (1 − h)``; softplus ``σ(a) = 1 − e^{−h}``."""
    if name == "identity":
        return np.ones_like(h)
    if name == "relu":
        return (h > 0).astype(h.dtype)
    if name == "leaky_relu":
        return np.where(h > 0, 1, LEAKY_SLOPE).astype(h.dtype)
    if name == "tanh":
        return 1 - h * h                     # tanh' = 1 - tanh²
    if name == "sigmoid":
        return h * (1 - h)                   # σ' = σ (1 - σ)
    if name == "softplus":
        return -np.expm1(-h)                 # softplus' = σ(a) = 1 - exp(-softplus(a))
    raise ValueError(f"unknown activation {name!r}")


def activation_forward(a, name):
    """``h = f(a)``; returns ``(h, cache)`` (docs/01-dense-layers.md#forward-pass)."""
    return bias_activation_forward(a, None, name)


def activation_backward(dh, cache):
    """``da = dh ⊙ f'(a)`` (docs/01-dense-layers.md#backward-through-the-activation)."""
    da, _ = bias_activation_backward(dh, cache)
    return da


@compiled_in("npvae.layers.activations_numba")
def bias_activation_forward(a, b, name, out=None):
    """Fused ``h = f(a + b)`` (docs/01-dense-layers.md#why-the-cache-keeps-only-h).  ``b=None`` means no bias.

    Parameters
    ----------
    a : (N, Out) the matrix product ``x W``.
    b : (Out,) or None.
    name : activation name, one of :data:`ACTIVATIONS`.
    out : optional (N, Out) array to write ``h`` into (may be ``a`` itself).

    Returns ``(h (N, Out), cache)``; the cache keeps only ``h``.
    """
    check_activation(name)
    pre = a if b is None else a + b          # (N, Out) pre-activation
    h = activation_value(pre, name)          # (N, Out)
    if out is not None:
        out[...] = h
        h = out
    return h, (h, name, b is not None)


@compiled_in("npvae.layers.activations_numba")
def bias_activation_backward(dh, cache, out=None):
    """Returns ``(da (N, Out), db (Out,) or None)``: ``da = dh ⊙ f'(a+b)``, ``db = Σ_n da``.

    ``out`` optionally receives ``da`` (may be ``dh`` itself).
    """
    h, name, has_bias = cache
    da = dh * activation_derivative(h, name)        # (N, Out)
    if out is not None:
        out[...] = da
        da = out
    db = da.sum(axis=0) if has_bias else None       # (Out,)
    return da, db
