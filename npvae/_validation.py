"""Input checks shared by the models: clear ``ValueError``s naming the problem."""
from __future__ import annotations

import numpy as np

DTYPES = ("float32", "float64")


def check_dtype(dtype):
    name = np.dtype(dtype).name
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return np.dtype(name)


def check_data(X, n_features=None, name="X"):
    """A finite, non-empty, numeric 2-D array ``(N, D)``; returns it as an ndarray."""
    X = np.asarray(X)
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D with shape (N, D), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {X.shape})")
    if np.issubdtype(X.dtype, np.floating) and not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or inf")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features, but the model expects "
                         f"{n_features} (n_features_in_)")
    return X


def check_noise(eps, shape_tail, dtype, name="eps"):
    """Noise ``(S, *shape_tail)`` of finite values, converted to ``dtype``."""
    eps = np.asarray(eps)
    expected = ("S",) + tuple(shape_tail)
    if eps.ndim != len(expected) or tuple(eps.shape[1:]) != tuple(shape_tail) or eps.shape[0] < 1:
        raise ValueError(f"{name} must have shape {expected} (S samples, N examples, Z latents), "
                         f"got {eps.shape}")
    if not np.all(np.isfinite(eps)):
        raise ValueError(f"{name} contains NaN or inf")
    return np.asarray(eps, dtype=dtype)


def check_positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
