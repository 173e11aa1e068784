"""The Gaussian likelihood for real-valued data (docs/04-likelihoods.md).

The decoder outputs the mean ``m (S, N, D)``; the log-variance ``λx`` is fixed,
one learned scalar, one learned value per output dimension, or — the Gaussian
MLP decoder of Kingma & Welling (2014, appendix C.2) — output by the decoder
beside the mean, ``out (S, N, D, 2)`` holding ``(m, λx)`` per dimension.  The mean
may be squashed into ``(0, 1)`` by a sigmoid, as in their Frey Face experiments.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

from ...backend import compiled_in
from ..gaussian import LOG_2PI
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


def gaussian_decoder_forward(out, x, sigmoid_mean=False):
    """The Gaussian MLP decoder's ``log p(x|z) = −½ Σ_d (log 2π + λ_d + (x_d − m_d)² e^{−λ_d})``
    with ``(a, λ)`` from the decoder, ``m = σ(a)`` or ``m = a``
    (docs/04-likelihoods.md#the-gaussian-mlp-decoder).

    ``out (S, N, D, 2)``, ``x (N, D)``.  Returns ``(log_p (S, N), cache)``; the cache
    is the gradient per unit ``dlog_p``, ``∂ log p/∂(a, λ)`` ``(S, N, D, 2)``:
    ``(x − m) e^{−λ}`` (times ``m (1 − m)`` through the sigmoid) and
    ``½ ((x − m)² e^{−λ} − 1)``.
    """
    a, logvar = out[..., 0], out[..., 1]                                # (S, N, D)
    mean = expit(a) if sigmoid_mean else a
    inv_var = np.exp(-logvar)
    diff = x - mean
    r2 = diff * diff * inv_var                                          # (x − m)² e^{−λ}
    log_p = -0.5 * (LOG_2PI + logvar + r2).sum(axis=-1)                 # (S, N)
    grad = np.empty_like(out)
    dmean = diff * inv_var                                              # ∂/∂m
    grad[..., 0] = dmean * mean * (1 - mean) if sigmoid_mean else dmean
    grad[..., 1] = 0.5 * (r2 - 1)                                       # ∂/∂λ
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
    """

    name = "gaussian"
    VARIANCES = ("fixed", "scalar", "per_output", "decoder")

    def __init__(self, variance="fixed", logvar=0.0, sigmoid_mean=False):
        if variance not in self.VARIANCES:
            raise ValueError(f"unknown Gaussian variance {variance!r}; choose one of "
                             f"{self.VARIANCES}")
        logvar = float(logvar)
        if not np.isfinite(logvar):
            raise ValueError(f"the Gaussian log-variance must be finite, got {logvar}")
        if not isinstance(sigmoid_mean, (bool, np.bool_)):
            raise ValueError(f"sigmoid_mean must be True or False, got {sigmoid_mean!r}")
        self.variance = variance
        self.logvar = logvar
        self.sigmoid_mean = bool(sigmoid_mean)

    def options(self):
        return {"variance": self.variance, "logvar": self.logvar,
                "sigmoid_mean": self.sigmoid_mean}

    def output_shape(self, n_features):
        return (n_features, 2) if self.variance == "decoder" else (n_features,)

    def param_shapes(self, n_features):
        if self.variance == "scalar":
            return {"obs_logvar": ()}
        if self.variance == "per_output":
            return {"obs_logvar": (n_features,)}
        return {}

    def init_params(self, params):
        if "obs_logvar" in params:
            params["obs_logvar"][...] = self.logvar

    def check_data(self, X, name="X"):
        if self.sigmoid_mean and (X.min() < 0 or X.max() > 1):
            raise ValueError(f"{name} must lie in [0, 1] for a Gaussian whose mean is a "
                             "sigmoid (sigmoid_mean=True)")

    def _logvar(self, params, dtype):
        return params["obs_logvar"] if "obs_logvar" in params else np.asarray(self.logvar, dtype)

    def log_prob_forward(self, out, x, params):
        if self.variance == "decoder":
            return gaussian_decoder_forward(out, x, self.sigmoid_mean)
        mean = expit(out) if self.sigmoid_mean else out
        log_p, cache = gaussian_forward(mean, self._logvar(params, out.dtype), x)
        return log_p, (cache, mean if self.sigmoid_mean else None)

    def log_prob_backward(self, dlog_p, cache):
        if self.variance == "decoder":
            return gaussian_decoder_backward(dlog_p, cache), {}
        cache, mean = cache
        dmean, dlogvar = gaussian_backward(dlog_p, cache)
        if mean is not None:
            dmean = dmean * mean * (1 - mean)                 # through m = σ(a)
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
        return np.stack([m, logvar], axis=-1).ravel()
