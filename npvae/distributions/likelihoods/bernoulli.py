"""The Bernoulli likelihood on logits, for binary data (docs/04-likelihoods.md).

Shapes: ``logits (S, N, D)``, ``x (N, D)``, ``log_p (S, N)``.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

from ...backend import compiled_in
from .base import Likelihood

_COMPILED = "npvae.distributions.likelihoods.kernels_numba"


@compiled_in(_COMPILED)
def bernoulli_forward(logits, x):
    """``log p(x|z) = −Σ_d [max(η_d, 0) − x_d η_d + log(1 + e^{−|η_d|})]``, stable for
    any logit (docs/04-likelihoods.md).

    Returns ``(log_p (S, N), cache)``; the cache is ``x − σ(η)`` ``(S, N, D)``, the
    gradient per unit ``dlog_p``, formed here while ``η`` is at hand (the compiled
    kernel fuses both in one pass from one ``e^{−|η|}``).
    """
    log_p = -(np.maximum(logits, 0) - x * logits
              + np.log1p(np.exp(-np.abs(logits)))).sum(axis=-1)          # (S, N)
    return log_p, x - expit(logits)                                      # (S, N, D)


@compiled_in(_COMPILED)
def bernoulli_backward(dlog_p, cache):
    """``∂ log p / ∂η = x − σ(η)``, times ``dlog_p (S, N)``; returns ``dlogits (S, N, D)``."""
    x_minus_sigma = cache
    return dlog_p[..., None] * x_minus_sigma


class Bernoulli(Likelihood):
    """Bernoulli on logits for binary data.

    ``allow_nonbinary=True`` accepts ``x ∈ [0, 1]``; the result is then *not*
    a normalised likelihood (it is a cross-entropy), and must not be reported
    as a bound on ``log p(x)``.
    """

    name = "bernoulli"

    def __init__(self, allow_nonbinary=False):
        self.allow_nonbinary = allow_nonbinary

    def options(self):
        return {"allow_nonbinary": self.allow_nonbinary}

    def output_shape(self, n_features):
        return (n_features,)

    def check_data(self, X, name="X"):
        if self.allow_nonbinary:
            if X.min() < 0 or X.max() > 1:
                raise ValueError(f"{name} must lie in [0, 1] for the Bernoulli likelihood")
        elif not np.all((X == 0) | (X == 1)):
            bad = X[(X != 0) & (X != 1)].ravel()[:3]
            raise ValueError(
                f"{name} is not binary (found values such as {bad.tolist()}): the Bernoulli "
                "likelihood is defined for x in {0, 1}; binarise the data, or pass "
                "likelihood_params={'allow_nonbinary': True} to accept [0, 1] (then not a "
                "normalised likelihood)")

    def log_prob_forward(self, out, x, params):
        return bernoulli_forward.impl(out, x)        # the backend's kernel (npvae.backend)

    def log_prob_backward(self, dlog_p, cache):
        return bernoulli_backward.impl(dlog_p, cache), {}

    def mean(self, out, params):
        """``E[x|z] = σ(η)``."""
        return expit(out)

    def output_bias(self, X):
        """Logit of the training-set pixel mean (Burda et al. 2016; docs/01-dense-layers.md)."""
        p = np.clip(np.mean(X, axis=0, dtype=np.float64), 1e-3, 1 - 1e-3)
        return logit(p)
