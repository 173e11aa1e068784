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
    """Unpack ``v (N, Z(Z+1)/2)`` into ``L (N, Z, Z)`` with ``L_jj = exp(s_j)``
    (docs/03-kl-divergences.md#parameterisation-by-a-cholesky-factor).

    Returns ``(L, cache)``.  The log-determinant terms use ``s`` itself
    (:func:`log_diagonal`), never ``log L_jj``: ``exp(s)`` underflows to 0 for
    ``s ≈ −104`` in float32, and its logarithm would be ``−inf``.
    """
    rows, cols = np.tril_indices(Z)
    L = np.zeros((v.shape[0], Z, Z), dtype=v.dtype)
    L[:, rows, cols] = v
    diag = np.arange(Z)
    L[:, diag, diag] = np.exp(L[:, diag, diag])          # L_jj = exp(s_j)
    return L, (L, Z)


def log_diagonal(v, Z):
    """``s (N, Z)``: the log-diagonal ``log L_jj`` as the head outputs it (exactly)."""
    rows, cols = np.tril_indices(Z)
    return v[:, np.flatnonzero(rows == cols)]


def cholesky_from_vector_backward(dL, cache, ds=None):
    """``dv``: the lower triangle of ``dL``, with ``∂/∂s_j = ∂/∂L_jj · L_jj``, plus the
    direct gradients ``ds (N, Z)`` of terms written in ``s`` (the log-determinants).
    ``dL`` may be None (only ``ds``)."""
    L, Z = cache
    rows, cols = np.tril_indices(Z)
    diag = np.arange(Z)
    if dL is None:
        dv = np.zeros((L.shape[0], rows.size), dtype=L.dtype)
    else:
        dL = dL.copy()
        dL[:, diag, diag] *= L[:, diag, diag]             # chain through L_jj = exp(s_j)
        dv = dL[:, rows, cols]
    if ds is not None:
        dv[:, np.flatnonzero(rows == cols)] += ds
    return dv


def reparameterize_full_forward(mu, L, eps):
    """``z = μ + L ε`` (docs/03-kl-divergences.md#the-full-covariance-sample).  ``mu (N, Z)``, ``L (N, Z, Z)``,
    ``eps (S, N, Z)``; returns ``(z (S, N, Z), cache)``."""
    z = mu + np.einsum("nij,snj->sni", L, eps)
    return z, (L, eps)


def reparameterize_full_backward(dz, cache):
    """``dμ = Σ_s dz``, ``dL = Σ_s tril(dz εᵀ)``; returns ``(dmu (N, Z), dL (N, Z, Z))``."""
    L, eps = cache
    dL = np.tril(np.einsum("sni,snj->nij", dz, eps))
    return dz.sum(axis=0), dL


def kl_full_standard_normal_forward(mu, L, s):
    """``KL(N(μ, L Lᵀ) ‖ N(0, I)) = ½ (tr Σ + μᵀμ − Z − log det Σ)`` with
    ``tr Σ = ‖L‖²_F`` and ``log det Σ = 2 Σ_j s_j``, ``s = log L_jj``
    (docs/03-kl-divergences.md#the-full-covariance-kl-to-the-standard-normal).  Returns ``(kl (N,), cache)``."""
    Z = mu.shape[-1]
    # each square is halved before the sums (the entries scaled by √½), so that they
    # overflow only where the KL itself does, not at twice its value
    r = np.asarray(np.sqrt(0.5), L.dtype)
    Lr, mur = L * r, mu * r
    half_trace = np.einsum("nij,nij->n", Lr, Lr)                      # ½ tr Σ (N,)
    kl = half_trace + (mur * mur).sum(axis=-1) - (0.5 * Z + s.sum(axis=-1))
    return kl, (mu, L)


def kl_full_standard_normal_backward(dkl, cache):
    """``∂KL/∂μ = μ``, ``∂KL/∂L = L`` (the trace term, lower triangle) and
    ``∂KL/∂s_j = −1`` (the log-determinant); through ``L_jj = exp(s_j)`` the diagonal
    total is ``L_jj² − 1`` (docs/03-kl-divergences.md#gradient-of-the-full-covariance-kl).

    Returns ``(dmu (N, Z), dL (N, Z, Z), ds (N, Z))``.
    """
    mu, L = cache
    ds = np.broadcast_to(-dkl[:, None], mu.shape).astype(mu.dtype)
    return dkl[:, None] * mu, dkl[:, None, None] * L, ds


def log_q_full_forward(s, eps):
    """``log q(z|x) = log N(ε; 0, I) − log |det L| = −½ Σ_j (log 2π + ε_j²) − Σ_j s_j``
    at ``z = μ + L ε`` (docs/03-kl-divergences.md#the-full-covariance-log-density).  ``s (N, Z)`` the
    log-diagonal; returns ``(log_q (S, N), cache)``."""
    log_q = -0.5 * (LOG_2PI * eps.shape[-1] + (eps * eps).sum(axis=-1)) - s.sum(-1)
    return log_q, s.shape


def log_q_full_backward(dlog_q, cache):
    """``∂ log q / ∂s_j = −1`` per sample; returns ``ds (N, Z)``."""
    shape = cache
    return np.broadcast_to(-dlog_q.sum(axis=0)[:, None], shape).astype(dlog_q.dtype)


def log_q_full_dz(dlog_q, cache):
    """``∂/∂z Σ dlog_q ⊙ log q(z|x)`` with ``μ, L`` held fixed (the path term of STL and
    DReG): ``−Σ⁻¹ (z − μ) = −L⁻ᵀ ε`` at ``z = μ + L ε`` (docs/05-elbo.md#sticking-the-landing).

    ``dlog_q (S, N)``; ``cache`` of :func:`reparameterize_full_forward`.  Returns ``dz (S, N, Z)``.
    """
    L, eps = cache
    diagonal = np.diagonal(L, axis1=-2, axis2=-1)                       # (N, Z)
    if not np.all(diagonal > 0):          # exp(s) underflowed: s < −103 (float32), −745
        n, j = np.argwhere(~(diagonal > 0))[0]
        raise FloatingPointError(
            f"the path gradient of STL/DReG, −L⁻ᵀε, is not finite: the full-covariance "
            f"posterior's L[{j},{j}] = exp(s) underflowed to 0 for example {n} "
            f"({L.dtype}); the standard gradient estimator does not divide by it")
    x = np.linalg.solve(np.swapaxes(L, -1, -2), eps.transpose(1, 2, 0))   # L⁻ᵀ ε (N, Z, S)
    return -dlog_q[..., None] * x.transpose(2, 0, 1)
