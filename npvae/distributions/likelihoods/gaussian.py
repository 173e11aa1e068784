"""The Gaussian likelihood for real-valued data (docs/04-likelihoods.md).

The decoder outputs the mean ``m (S, N, D)``; the log-variance ``λx`` is fixed,
one learned scalar, one learned value per output dimension, or — the Gaussian
MLP decoder of Kingma & Welling (2014, appendix C.2) — output by the decoder
beside the mean, ``out (S, N, D, 2)`` holding ``(m, λx)`` per dimension.  The mean
may be squashed into ``(0, 1)`` by a sigmoid, as in their Frey Face experiments.
A learned log-variance may be floored smoothly, ``λ = λ_min + softplus(b − λ_min)``,
so that it cannot run to −∞ on quantised data
(docs/04-likelihoods.md#a-floor-under-the-variance).
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

from ...backend import compiled_in
from ..diagonal_gaussian import LOG_2PI
from .base import Likelihood

_COMPILED = "npvae.distributions.likelihoods.kernels_numba"


@compiled_in(_COMPILED)
def gaussian_forward(mean, logvar_x, x):
    """``log p(x|z) = −½ Σ_d (log 2π + λx_d + (x_d − m_d)² e^{−λx_d})`` (docs/04-likelihoods.md).

    ``mean (S, N, D)``; ``logvar_x`` a scalar ``()`` or per output ``(D,)``;
    ``x (N, D)``.  Returns ``(log_p (S, N), cache)``; the cache is
    ``(x − m (S, N, D), e^{−λx} (D,), shape of logvar_x)``.
    """
    D = mean.shape[-1]
    logvar_d = np.broadcast_to(logvar_x, (D,))                # (D,)
    inv_var = np.exp(-logvar_d)                               # (D,)
    diff = x - mean                                           # (S, N, D)
    log_p = -0.5 * (D * LOG_2PI + logvar_d.sum()
                    + (diff * diff * inv_var).sum(axis=-1))   # (S, N)
    return log_p, (diff, inv_var, np.shape(logvar_x))


@compiled_in(_COMPILED)
def gaussian_backward(dlog_p, cache):
    """``∂/∂m = (x − m) e^{−λx}``, ``∂/∂λx = ½ ((x − m)² e^{−λx} − 1)`` (docs/04-likelihoods.md).

    Returns ``(dmean (S, N, D), dlogvar_x)``, ``dlogvar_x`` shaped like ``logvar_x``
    (a scalar log-variance collects the gradient of every dimension).
    """
    diff, inv_var, logvar_shape = cache
    d = dlog_p[..., None]                                     # (S, N, 1)
    dmean = d * diff * inv_var                                # (S, N, D)
    dlogvar = (d * 0.5 * (diff * diff * inv_var - 1)).sum(axis=(0, 1))   # (D,)
    if logvar_shape == ():
        return dmean, np.asarray(dlogvar.sum(), diff.dtype)
    return dmean, dlogvar


def floored_logvar(b, min_logvar):
    """``λ = λ_min + softplus(b − λ_min) > λ_min`` and ``∂λ/∂b = σ(b − λ_min)``
    (docs/04-likelihoods.md#a-floor-under-the-variance); ``min_logvar=None``: ``λ = b``.

    ``b`` any shape; returns ``(λ, ∂λ/∂b)`` of its shape and dtype (``∂λ/∂b`` is None
    without a floor).
    """
    if min_logvar is None:
        return b, None
    floor = np.asarray(min_logvar, b.dtype)
    t = b - floor
    return np.asarray(floor + np.logaddexp(t, np.zeros((), b.dtype))), np.asarray(expit(t))


def _floor_from_logvar(logvar, min_logvar):
    """The inverse of :func:`floored_logvar`: ``b`` with ``λ(b) = logvar`` (``logvar`` is
    kept a little above the floor, where the inverse exists)."""
    if min_logvar is None:
        return logvar
    t = np.maximum(logvar - min_logvar, 1e-3)
    return min_logvar + t + np.log(-np.expm1(-t))            # softplus⁻¹(t) = log(eᵗ − 1)


def gaussian_decoder_forward(out, x, sigmoid_mean=False, min_logvar=None):
    """The Gaussian MLP decoder's ``log p(x|z) = −½ Σ_d (log 2π + λ_d + (x_d − m_d)² e^{−λ_d})``
    with ``(a, λ)`` from the decoder, ``m = σ(a)`` or ``m = a``
    (docs/04-likelihoods.md#the-gaussian-mlp-decoder).

    ``out (S, N, D, 2)``, ``x (N, D)``.  Returns ``(log_p (S, N), cache)``; the cache
    is the gradient per unit ``dlog_p``, ``∂ log p/∂(a, λ)`` ``(S, N, D, 2)``:
    ``(x − m) e^{−λ}`` (times ``m (1 − m)`` through the sigmoid) and
    ``½ ((x − m)² e^{−λ} − 1)`` (times ``σ(b − λ_min)`` under a floor: the decoder's
    second output is then ``b`` and ``λ = λ_min + softplus(b − λ_min)``).
    """
    a, logvar = out[..., 0], out[..., 1]                                # (S, N, D)
    logvar, dlogvar = floored_logvar(logvar, min_logvar)
    mean = expit(a) if sigmoid_mean else a
    inv_var = np.exp(-logvar)
    diff = x - mean
    r2 = diff * diff * inv_var                                          # (x − m)² e^{−λ}
    log_p = -0.5 * (LOG_2PI + logvar + r2).sum(axis=-1)                 # (S, N)
    grad = np.empty_like(out)
    dmean = diff * inv_var                                              # ∂/∂m
    grad[..., 0] = dmean * mean * (1 - mean) if sigmoid_mean else dmean
    grad[..., 1] = 0.5 * (r2 - 1)                                       # ∂/∂λ
    if dlogvar is not None:
        grad[..., 1] *= dlogvar                                         # ∂/∂b
    return log_p, grad


def gaussian_decoder_backward(dlog_p, cache):
    """``dout (S, N, D, 2)``: the cached gradient per unit times ``dlog_p (S, N)``."""
    grad = cache
    return dlog_p[..., None, None] * grad


class Gaussian(Likelihood):
    """Gaussian on real data with the mean from the decoder.

    ``variance``: ``"fixed"`` (``λx = logvar`` is a hyperparameter),
    ``"scalar"`` (one learned log-variance) or ``"per_output"`` (one per
    dimension ``D``), learned as ``params_["obs_logvar"]`` and started at
    ``logvar``; or ``"decoder"``: the decoder outputs a log-variance per dimension
    beside the mean (Kingma & Welling 2014, appendix C.2).  ``sigmoid_mean``
    squashes the mean into ``(0, 1)`` (data in ``[0, 1]``, e.g. Frey faces).
    ``min_logvar``: a floor under a learned log-variance (None: none), reached
    smoothly, ``λ = λ_min + softplus(b − λ_min)``; ``log(Δ²/12)`` for data on a grid of
    step ``Δ`` (docs/04-likelihoods.md#a-floor-under-the-variance).
    """

    name = "gaussian"
    VARIANCES = ("fixed", "scalar", "per_output", "decoder")

    def __init__(self, variance="fixed", logvar=0.0, sigmoid_mean=False, min_logvar=None):
        if variance not in self.VARIANCES:
            raise ValueError(f"unknown Gaussian variance {variance!r}; choose one of "
                             f"{self.VARIANCES}")
        logvar = float(logvar)
        if not np.isfinite(logvar):
            raise ValueError(f"the Gaussian log-variance must be finite, got {logvar}")
        if not isinstance(sigmoid_mean, (bool, np.bool_)):
            raise ValueError(f"sigmoid_mean must be True or False, got {sigmoid_mean!r}")
        if min_logvar is not None:
            if (isinstance(min_logvar, (bool, np.bool_, str))
                    or not np.isfinite(float(min_logvar))):
                raise ValueError(f"min_logvar must be a finite number or None, got "
                                 f"{min_logvar!r}")
            min_logvar = float(min_logvar)
            if variance == "fixed":
                raise ValueError("min_logvar floors a learned variance; with "
                                 "variance='fixed' give logvar itself")
        self.variance = variance
        self.logvar = logvar
        self.sigmoid_mean = bool(sigmoid_mean)
        self.min_logvar = min_logvar

    def options(self):
        options = {"variance": self.variance, "logvar": self.logvar,
                   "sigmoid_mean": self.sigmoid_mean}
        if self.min_logvar is not None:          # absent: the checkpoints written before it
            options["min_logvar"] = self.min_logvar
        return options

    def output_shape(self, n_features):
        return (n_features, 2) if self.variance == "decoder" else (n_features,)

    def param_shapes(self, n_features):
        if self.variance == "scalar":
            return {"obs_logvar": ()}
        if self.variance == "per_output":
            return {"obs_logvar": (n_features,)}
        return {}

    def init_params(self, params):
        if "obs_logvar" in params:                           # λ(b) = logvar
            params["obs_logvar"][...] = _floor_from_logvar(self.logvar, self.min_logvar)

    def check_data(self, X, name="X"):
        if self.sigmoid_mean and (X.min() < 0 or X.max() > 1):
            raise ValueError(f"{name} must lie in [0, 1] for a Gaussian whose mean is a "
                             "sigmoid (sigmoid_mean=True)")

    def _logvar(self, params, dtype):
        return params["obs_logvar"] if "obs_logvar" in params else np.asarray(self.logvar, dtype)

    def log_prob_forward(self, out, x, params):
        if self.variance == "decoder":
            return gaussian_decoder_forward(out, x, self.sigmoid_mean, self.min_logvar)
        mean = expit(out) if self.sigmoid_mean else out
        logvar, dfloor = floored_logvar(self._logvar(params, out.dtype), self.min_logvar)
        log_p, cache = gaussian_forward.impl(mean, logvar, x)    # the backend's kernel
        return log_p, (cache, mean if self.sigmoid_mean else None, dfloor)

    def log_prob_backward(self, dlog_p, cache):
        if self.variance == "decoder":
            return gaussian_decoder_backward(dlog_p, cache), {}
        cache, mean, dfloor = cache
        dmean, dlogvar = gaussian_backward.impl(dlog_p, cache)
        if mean is not None:
            dmean = dmean * mean * (1 - mean)                 # through m = σ(a)
        if dfloor is not None:
            dlogvar = dlogvar * dfloor                        # through λ = λ_min + softplus
        return dmean, ({"obs_logvar": dlogvar} if self.variance != "fixed" else {})

    def mean(self, out, params):
        a = out[..., 0] if self.variance == "decoder" else out
        return expit(a) if self.sigmoid_mean else a.copy()

    def output_bias(self, X):
        """The mean at the data mean (its logit under a sigmoid); with the decoder's
        variance, the log-variance at the data's variance per dimension."""
        m = np.mean(X, axis=0, dtype=np.float64)
        if self.sigmoid_mean:
            m = logit(np.clip(m, 1e-3, 1 - 1e-3))
        if self.variance != "decoder":
            return m
        logvar = np.log(np.maximum(np.var(X, axis=0, dtype=np.float64), 1e-4))
        logvar = _floor_from_logvar(logvar, self.min_logvar)      # the output b with λ(b) = logvar
        return np.stack([m, logvar], axis=-1).ravel()
