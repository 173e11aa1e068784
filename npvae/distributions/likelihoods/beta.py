"""The Beta likelihood for grey levels in ``(0, 1)`` (docs/04-likelihoods.md).

The decoder outputs two numbers per dimension, ``u`` and ``v``, read as
``out (S, N, D, 2)``; the Beta's parameters are ``α = e^u`` and ``β = e^v``, so
any real output is valid.  Grey levels ``0..255`` enter as the centres of their
bins, ``(pixel + 0.5) / 256`` (:func:`npvae.data.dequantize`), never exactly 0 or 1.

Shapes: ``out (S, N, D, 2)``, ``x (N, D)``, ``log_p (S, N)``.
"""
from __future__ import annotations

import numpy as np
from scipy.special import digamma, expit, gammaln

from .base import Likelihood


def beta_forward(out, x):
    """``log p(x|z) = Σ_d [(α_d − 1) log x_d + (β_d − 1) log(1 − x_d) − log B(α_d, β_d)]``
    with ``α = e^u``, ``β = e^v`` (docs/04-likelihoods.md).

    Returns ``(log_p (S, N), cache)``; the cache is the gradient per unit
    ``dlog_p``, ``∂ log p/∂(u, v)`` ``(S, N, D, 2)``, formed while ``α, β`` are at hand.
    """
    u, v = out[..., 0], out[..., 1]                                    # (S, N, D)
    alpha, beta = np.exp(u), np.exp(v)
    log_x, log_1mx = np.log(x), np.log1p(-x)                           # (N, D)
    log_B = gammaln(alpha) + gammaln(beta) - gammaln(alpha + beta)     # log B(α, β)
    log_p = ((alpha - 1) * log_x + (beta - 1) * log_1mx - log_B).sum(axis=-1)   # (S, N)
    psi_ab = digamma(alpha + beta)
    grad = np.empty_like(out)                                          # (S, N, D, 2)
    grad[..., 0] = alpha * (log_x - digamma(alpha) + psi_ab)           # ∂/∂u
    grad[..., 1] = beta * (log_1mx - digamma(beta) + psi_ab)           # ∂/∂v
    return log_p, grad


def beta_backward(dlog_p, cache):
    """``∂ log p/∂u = α (log x − ψ(α) + ψ(α + β))``, ``∂ log p/∂v = β (log(1 − x) − ψ(β)
    + ψ(α + β))``, times ``dlog_p (S, N)``; returns ``dout (S, N, D, 2)``."""
    grad = cache
    return dlog_p[..., None, None] * grad


class Beta(Likelihood):
    """Beta on grey levels in ``(0, 1)``, ``α = e^u``, ``β = e^v`` from the decoder.

    ``concentration``: ``α + β`` of the starting output bias, which puts the
    Beta's mean at the training data's mean (:meth:`output_bias`).
    """

    name = "beta"

    def __init__(self, concentration=2.0):
        concentration = float(concentration)
        if not (np.isfinite(concentration) and concentration > 0):
            raise ValueError(f"concentration must be a finite number > 0, got {concentration}")
        self.concentration = concentration

    def options(self):
        return {"concentration": self.concentration}

    def output_shape(self, n_features):
        return (n_features, 2)

    def check_data(self, X, name="X"):
        if not (np.all(X > 0) and np.all(X < 1)):
            raise ValueError(f"{name} must lie strictly inside (0, 1) for the Beta likelihood; "
                             "map grey levels to the centres of their bins with "
                             "npvae.data.dequantize (pixel + 0.5) / 256")

    def log_prob_forward(self, out, x, params):
        return beta_forward(out, x)

    def log_prob_backward(self, dlog_p, cache):
        return beta_backward(dlog_p, cache), {}

    def mean(self, out, params):
        """``E[x|z] = α / (α + β) = σ(u − v)``."""
        return expit(out[..., 0] - out[..., 1])

    def output_bias(self, X):
        """``u = log(κ m)``, ``v = log(κ (1 − m))`` for the data mean ``m`` and ``κ =
        concentration``: a Beta with the data's mean, flattened as the output layer's ``(D, 2)``."""
        m = np.clip(np.mean(X, axis=0, dtype=np.float64), 1e-3, 1 - 1e-3)
        k = self.concentration
        return np.stack([np.log(k * m), np.log(k * (1 - m))], axis=-1).ravel()
