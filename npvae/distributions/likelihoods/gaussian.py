"""The Gaussian likelihood for real-valued data (docs/04-likelihoods.md).

The decoder outputs the mean ``m (S, N, D)``; the log-variance ``λx`` is fixed,
one learned scalar, or one learned value per output dimension.
"""
from __future__ import annotations

import numpy as np

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


class Gaussian(Likelihood):
    """Gaussian on real data with the mean from the decoder.

    ``variance``: ``"fixed"`` (``λx = logvar`` is a hyperparameter),
    ``"scalar"`` (one learned log-variance) or ``"per_output"`` (one per
    dimension ``D``), learned as ``params_["obs_logvar"]`` and started at
    ``logvar``.
    """

    name = "gaussian"
    VARIANCES = ("fixed", "scalar", "per_output")

    def __init__(self, variance="fixed", logvar=0.0):
        if variance not in self.VARIANCES:
            raise ValueError(f"unknown Gaussian variance {variance!r}; choose one of "
                             f"{self.VARIANCES}")
        logvar = float(logvar)
        if not np.isfinite(logvar):
            raise ValueError(f"the Gaussian log-variance must be finite, got {logvar}")
        self.variance = variance
        self.logvar = logvar

    def options(self):
        return {"variance": self.variance, "logvar": self.logvar}

    def output_shape(self, n_features):
        return (n_features,)

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
        pass

    def _logvar(self, params, dtype):
        return params["obs_logvar"] if "obs_logvar" in params else np.asarray(self.logvar, dtype)

    def log_prob_forward(self, out, x, params):
        return gaussian_forward(out, self._logvar(params, out.dtype), x)

    def log_prob_backward(self, dlog_p, cache):
        dmean, dlogvar = gaussian_backward(dlog_p, cache)
        return dmean, ({"obs_logvar": dlogvar} if self.variance != "fixed" else {})

    def mean(self, out, params):
        return out.copy()

    def output_bias(self, X):
        return np.mean(X, axis=0, dtype=np.float64)
