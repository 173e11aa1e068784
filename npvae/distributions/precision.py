"""The Ladder VAE's precision-weighted merge of two diagonal Gaussians
(docs/16-ladder-vae.md#the-precision-weighted-merge; Sønderby et al. 2016, eq. 17–19).

``q = N(μ_q, σ_q²)`` with ``σ_q² = 1/(σ̂⁻² + σ_p⁻²)`` and
``μ_q = (μ̂ σ̂⁻² + μ_p σ_p⁻²) σ_q²``: the product of the bottom-up Gaussian
``N(μ̂, σ̂²)`` and the top-down prior ``N(μ_p, σ_p²)``, renormalised.  In
log-variances ``λ = log σ²`` with the weight ``w = σ_q²/σ̂² = sigmoid(λ_p − λ̂)``::

    λ_q = −logaddexp(−λ̂, −λ_p),     μ_q = w μ̂ + (1 − w) μ_p

both stable for any ``λ``.  Shapes: ``μ̂, λ̂ (N, Z)`` broadcast against
``μ_p, λ_p (S, N, Z)``; the outputs are ``(S, N, Z)``.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from .diagonal_gaussian import sum_to_shape


def precision_merge_forward(mu_hat, logvar_hat, mu_p, logvar_p):
    """Returns ``(mu_q, logvar_q, cache)`` (docs/16-ladder-vae.md#the-precision-weighted-merge)."""
    w = expit(logvar_p - logvar_hat)                         # (S, N, Z) weight of μ̂
    logvar_q = -np.logaddexp(-logvar_hat, -logvar_p)         # (S, N, Z)
    diff = mu_hat - mu_p                                     # (S, N, Z)
    mu_q = mu_p + w * diff
    return mu_q, logvar_q, (w, diff, np.shape(mu_hat), np.shape(mu_p))


def precision_merge_backward(dmu_q, dlogvar_q, cache):
    """``∂λ_q/∂λ̂ = w``, ``∂λ_q/∂λ_p = 1 − w``, ``∂μ_q/∂μ̂ = w``,
    ``∂μ_q/∂μ_p = 1 − w``,
    ``∂μ_q/∂λ̂ = −w(1 − w)(μ̂ − μ_p) = −∂μ_q/∂λ_p``
    (docs/16-ladder-vae.md#backward-of-the-merge).

    Returns ``(dmu_hat, dlogvar_hat, dmu_p, dlogvar_p)``, each summed to its input's shape.
    """
    w, diff, hat_shape, p_shape = cache
    cross = dmu_q * w * (1 - w) * diff                       # through w
    dmu_hat = sum_to_shape(w * dmu_q, hat_shape)
    dlogvar_hat = sum_to_shape(w * dlogvar_q - cross, hat_shape)
    dmu_p = sum_to_shape((1 - w) * dmu_q, p_shape)
    dlogvar_p = sum_to_shape((1 - w) * dlogvar_q + cross, p_shape)
    return dmu_hat, dlogvar_hat, dmu_p, dlogvar_p
