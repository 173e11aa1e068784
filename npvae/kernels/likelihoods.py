"""Log-likelihood kernels ``log p(x|z)`` and their gradients (MATH §4).

Decoder outputs carry a leading sample axis: ``(S, N, D)`` (``(S, N, D, V)``
for the categorical); the data ``x (N, D)`` broadcasts over ``S``.  Each
forward returns the log-likelihood per sample and example, ``(S, N)``.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit, log_softmax, softmax

from .. import backend
from .gaussian import LOG_2PI, _reduce_to


def _nb():
    from . import _numba

    return _numba


# ------------------------------------------------------------------ Bernoulli
def bernoulli_forward(logits, x):
    """``log p(x|z) = −Σ_d [max(η_d, 0) − x_d η_d + log(1 + e^{−|η_d|})]`` (MATH §4).

    Stable for any logit (no overflow for ``|η| > 100``).
    ``logits (S, N, D)``, ``x (N, D)``; returns ``(log_p (S, N), cache)``.
    """
    if backend.use_numba():
        return _nb().bernoulli_forward(logits, x)
    log_p = -(np.maximum(logits, 0) - x * logits + np.log1p(np.exp(-np.abs(logits)))).sum(axis=-1)
    return log_p, (logits, x)


def bernoulli_backward(dlog_p, cache):
    """``∂ log p / ∂η = x − sigmoid(η)`` (MATH §4).  Returns ``dlogits (S, N, D)``."""
    if backend.use_numba():
        return _nb().bernoulli_backward(dlog_p, cache)
    logits, x = cache
    return dlog_p[..., None] * (x - expit(logits))


# ------------------------------------------------------------------- Gaussian
def gaussian_forward(mean, logvar_x, x):
    """``log p(x|z) = −½ Σ_d (log 2π + λx_d + (x_d − m_d)² e^{−λx_d})`` (MATH §4).

    ``mean (S, N, D)``; ``logvar_x`` a scalar ``()`` or per output ``(D,)``;
    ``x (N, D)``.  Returns ``(log_p (S, N), cache)``.
    """
    logvar_x = np.asarray(logvar_x, dtype=mean.dtype)
    if backend.use_numba():
        return _nb().gaussian_forward(mean, logvar_x, x)
    inv_var = np.exp(-logvar_x)                               # () or (D,)
    diff = x - mean                                           # (S, N, D)
    D = mean.shape[-1]
    log_p = -0.5 * (D * LOG_2PI + np.broadcast_to(logvar_x, (D,)).sum()
                    + (diff * diff * inv_var).sum(axis=-1))   # (S, N)
    return log_p, (diff, inv_var, logvar_x.shape)


def gaussian_backward(dlog_p, cache):
    """``∂/∂m = (x − m) e^{−λx}``, ``∂/∂λx = ½ ((x − m)² e^{−λx} − 1)`` (MATH §4).

    Returns ``(dmean (S, N, D), dlogvar_x)`` with ``dlogvar_x`` shaped like ``logvar_x``.
    """
    if backend.use_numba():
        return _nb().gaussian_backward(dlog_p, cache)
    diff, inv_var, logvar_shape = cache
    d = dlog_p[..., None]                                     # (S, N, 1)
    dmean = d * diff * inv_var
    dlogvar = d * 0.5 * (diff * diff * inv_var - 1)
    return dmean, _reduce_to(dlogvar, logvar_shape)


# ---------------------------------------------------------------- categorical
def categorical_forward(logits, x):
    """``log p(x|z) = Σ_d log softmax(η_d)[x_d]`` over ``V`` levels (MATH §4).

    ``logits (S, N, D, V)``, ``x (N, D)`` integers in ``[0, V)``.
    Returns ``(log_p (S, N), cache)``.
    """
    if backend.use_numba():
        return _nb().categorical_forward(logits, x)
    log_probs = log_softmax(logits, axis=-1)                          # (S, N, D, V)
    picked = np.take_along_axis(log_probs, x[None, :, :, None], axis=-1)[..., 0]  # (S, N, D)
    return picked.sum(axis=-1), (logits, x)


def categorical_backward(dlog_p, cache):
    """``∂ log p / ∂η_{dv} = [x_d = v] − softmax(η_d)_v`` (MATH §4).  Returns ``dlogits``."""
    if backend.use_numba():
        return _nb().categorical_backward(dlog_p, cache)
    logits, x = cache
    one_hot = np.arange(logits.shape[-1]) == x[..., None]            # (N, D, V)
    return dlog_p[..., None, None] * (one_hot - softmax(logits, axis=-1))
