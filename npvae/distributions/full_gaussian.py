"""Full-covariance Gaussian posterior kernels (docs/03-kl-divergences.md#the-full-covariance-posterior).

``q = N(μ, Σ)``, ``Σ = L Lᵀ``, ``L`` lower triangular with a positive diagonal
``L_jj = exp(s_j)`` for unconstrained ``s``.  The encoder outputs ``μ (N, Z)``
and the ``Z(Z+1)/2`` free entries of ``L`` per example, packed row by row
(``np.tril_indices``) with the diagonal entries holding ``s_j``.

These kernels run in NumPy on both backends (``einsum`` over ``(N, Z, Z)``);
the full-covariance posterior is an option, not the training hot path.
"""
from __future__ import annotations

import numpy as np

LOG_2PI = float(np.log(2 * np.pi))


def n_cholesky_entries(Z):
    """Free entries of a ``Z × Z`` lower-triangular factor: ``Z(Z+1)/2``."""
    return Z * (Z + 1) // 2


def cholesky_from_vector_forward(v, Z):
    """Unpack ``v (N, Z(Z+1)/2)`` into ``L (N, Z, Z)`` with ``L_jj = exp(s_j)`` (docs/03-kl-divergences.md#parameterisation-by-a-cholesky-factor).

    Returns ``(L, cache)``.
    """
    rows, cols = np.tril_indices(Z)
    L = np.zeros((v.shape[0], Z, Z), dtype=v.dtype)
    L[:, rows, cols] = v
    diag = np.arange(Z)
    L[:, diag, diag] = np.exp(L[:, diag, diag])          # L_jj = exp(s_j)
    return L, (L, Z)


def cholesky_from_vector_backward(dL, cache):
    """``dv``: the lower triangle of ``dL``, with ``∂/∂s_j = ∂/∂L_jj · L_jj``."""
    L, Z = cache
    rows, cols = np.tril_indices(Z)
    diag = np.arange(Z)
    dL = dL.copy()
    dL[:, diag, diag] *= L[:, diag, diag]                 # chain through L_jj = exp(s_j)
    return dL[:, rows, cols]


def reparameterize_full_forward(mu, L, eps):
    """``z = μ + L ε`` (docs/03-kl-divergences.md#the-full-covariance-sample).  ``mu (N, Z)``, ``L (N, Z, Z)``, ``eps (S, N, Z)``;
    returns ``(z (S, N, Z), cache)``."""
    z = mu + np.einsum("nij,snj->sni", L, eps)
    return z, (L, eps)


def reparameterize_full_backward(dz, cache):
    """``dμ = Σ_s dz``, ``dL = Σ_s tril(dz εᵀ)``; returns ``(dmu (N, Z), dL (N, Z, Z))``."""
    L, eps = cache
    dL = np.tril(np.einsum("sni,snj->nij", dz, eps))
    return dz.sum(axis=0), dL


def kl_full_standard_normal_forward(mu, L):
    """``KL(N(μ, L Lᵀ) ‖ N(0, I)) = ½ (tr Σ + μᵀμ − Z − log det Σ)``,
    ``tr Σ = ‖L‖²_F``, ``log det Σ = 2 Σ_j log L_jj`` (docs/03-kl-divergences.md#the-full-covariance-kl-to-the-standard-normal).  Returns ``(kl (N,), cache)``."""
    Z = mu.shape[-1]
    diag = np.diagonal(L, axis1=-2, axis2=-1)                          # (N, Z)
    trace = np.einsum("nij,nij->n", L, L)
    log_det = 2 * np.log(diag).sum(axis=-1)
    kl = 0.5 * (trace + (mu * mu).sum(axis=-1) - Z - log_det)
    return kl, (mu, L, diag)


def kl_full_standard_normal_backward(dkl, cache):
    """``∂KL/∂μ = μ``, ``∂KL/∂L = L − diag(1/L_jj)`` on the lower triangle (docs/03-kl-divergences.md#gradient-of-the-full-covariance-kl).

    Returns ``(dmu (N, Z), dL (N, Z, Z))``.
    """
    mu, L, diag = cache
    dL = L.copy()
    idx = np.arange(L.shape[-1])
    dL[:, idx, idx] -= 1 / diag
    return dkl[:, None] * mu, dkl[:, None, None] * dL


def log_q_full_forward(L, eps):
    """``log q(z|x) = log N(ε; 0, I) − log |det L| = −½ Σ_j (log 2π + ε_j²) − Σ_j log L_jj``
    at ``z = μ + L ε`` (docs/03-kl-divergences.md#the-full-covariance-log-density).  Returns ``(log_q (S, N), cache)``."""
    diag = np.diagonal(L, axis1=-2, axis2=-1)                          # (N, Z)
    log_q = -0.5 * (LOG_2PI * eps.shape[-1] + (eps * eps).sum(axis=-1)) - np.log(diag).sum(-1)
    return log_q, diag


def log_q_full_backward(dlog_q, cache):
    """``∂ log q / ∂L_jj = −1/L_jj`` per sample; returns ``dL (N, Z, Z)``."""
    diag = cache
    N, Z = diag.shape
    dL = np.zeros((N, Z, Z), dtype=diag.dtype)
    idx = np.arange(Z)
    dL[:, idx, idx] = -dlog_q.sum(axis=0)[:, None] / diag
    return dL
