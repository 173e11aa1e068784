"""Argument checks shared by the reparameterisable samplers of :mod:`.samplers`
and :mod:`.implicit`, and the options dicts of posteriors and priors (:func:`options`).

Each raises a ``ValueError`` naming the argument and the problem; those that
convert return the argument as a finite floating ndarray, :func:`fits` and
:func:`vector_param` only check a shape.
"""
from __future__ import annotations

import numpy as np

__all__ = ["as_float", "positive", "uniform", "fits", "vector_noise", "vector_param",
           "check_dx", "open_unit", "simplex", "options"]

_SIMPLEX_ATOL = 1e-6


def options(params, defaults, what, owner):
    """``defaults`` updated by the dict ``params`` (None: no change), any other key refused:
    the options ``what`` (``"posterior_params"``) of ``owner`` (``"posterior='concrete'"``)."""
    if params is not None and not isinstance(params, dict):
        raise ValueError(f"{what} must be a dict, got {type(params).__name__}")
    unknown = set(params or {}) - set(defaults)
    if unknown:
        raise ValueError(f"unknown {what} {sorted(unknown)} for {owner}; "
                         f"choose from {sorted(defaults)}")
    return {**defaults, **(params or {})}


def as_float(value, name):
    """``value`` as a finite floating ndarray."""
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def positive(value, name):
    arr = as_float(value, name)
    if not np.all(arr > 0):
        raise ValueError(f"{name} must be > 0, got minimum {arr.min()!r}")
    return arr


def uniform(u, name="u"):
    """Noise strictly inside ``(0, 1)``: the inverse CDFs are infinite at 0 and 1."""
    u = as_float(u, name)
    if not np.all((u > 0) & (u < 1)):
        raise ValueError(f"{name} must lie strictly inside (0, 1), got values in "
                         f"[{u.min()!r}, {u.max()!r}]")
    return u


def fits(param, name, shape):
    """``param`` must broadcast to the sample shape ``shape`` (no bigger)."""
    try:
        out = np.broadcast_shapes(param.shape, shape)
    except ValueError:
        out = None
    if out != tuple(shape):
        raise ValueError(f"{name} of shape {param.shape} does not broadcast to the "
                         f"noise/sample shape {tuple(shape)}")


def vector_noise(u, n_min=2):
    u = uniform(u)
    if u.ndim < 1 or u.shape[-1] < n_min:
        raise ValueError(f"u must have shape (..., K) with K >= {n_min}, got {u.shape}")
    return u


def vector_param(param, name, u_shape):
    if param.ndim < 1 or param.shape[-1] != u_shape[-1]:
        raise ValueError(f"{name} must have shape (..., K) with K = {u_shape[-1]} "
                         f"(the noise's last axis), got {param.shape}")
    fits(param, name, u_shape)


def check_dx(dx, x):
    dx = as_float(dx, "dx")
    if dx.shape != x.shape:
        raise ValueError(f"dx must have the sample's shape {x.shape}, got {dx.shape}")
    return dx


def open_unit(x, name="x"):
    x = as_float(x, name)
    if not np.all((x > 0) & (x < 1)):
        raise ValueError(f"{name} must lie in (0, 1), the support")
    return x


def simplex(x, name="x"):
    x = as_float(x, name)
    if x.ndim < 1 or x.shape[-1] < 2:
        raise ValueError(f"{name} must have shape (..., K) with K >= 2, got {x.shape}")
    if not np.all(x > 0):
        raise ValueError(f"{name} must be > 0 (the open simplex)")
    if not np.allclose(x.sum(axis=-1), 1.0, rtol=0, atol=_SIMPLEX_ATOL):
        raise ValueError(f"{name} must sum to 1 over its last axis (the simplex)")
    return x
