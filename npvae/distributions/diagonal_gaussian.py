"""Diagonal Gaussian kernels: reparameterisation, log-densities, KL (docs/02-reparameterisation.md, docs/03-kl-divergences.md).

Shapes: ``mu, logvar (N, Z)``; noise ``eps (S, N, Z)``; samples ``z (S, N, Z)``.
``logvar`` is ``λ = log σ²``, ``σ = exp(λ/2)``.
"""
from __future__ import annotations

import numpy as np

from ..backend import compiled_in

LOG_2PI = float(np.log(2 * np.pi))
_COMPILED = "npvae.distributions.diagonal_gaussian_numba"


# ----------------------------------------------------- sampling and log-densities
@compiled_in(_COMPILED)
def reparameterize_forward(mu, logvar, eps):
    """``z = μ + σ ⊙ ε`` (docs/02-reparameterisation.md#the-reparameterised-sample; Kingma & Welling 2014, §2.4).

    Returns ``(z (S, N, Z), cache)``.
    """
    sigma = np.exp(0.5 * logvar)          # (N, Z)
    z = mu + sigma * eps                  # (S, N, Z)
    return z, (sigma, eps)


@compiled_in(_COMPILED)
def reparameterize_backward(dz, cache):
    """``dμ = Σ_s dz``, ``dλ = Σ_s dz ⊙ ε ⊙ σ / 2`` (docs/02-reparameterisation.md#backward-of-the-sample).

    Returns ``(dmu (N, Z), dlogvar (N, Z))``.
    """
    sigma, eps = cache
    dmu = dz.sum(axis=0)                           # (N, Z)
    dlogvar = (dz * eps).sum(axis=0) * sigma / 2   # (N, Z)
    return dmu, dlogvar


def log_q_forward(logvar, eps):
    """``log q(z|x) = −½ Σ_j (log 2π + λ_j + ε_j²)`` at ``z = μ + σ ε`` (docs/02-reparameterisation.md#log-density-by-change-of-variables).

    The change of variables makes it independent of ``μ``.
    Returns ``(log_q (S, N), cache)``.
    """
    log_q = -0.5 * (LOG_2PI * logvar.shape[-1] + logvar.sum(axis=-1) + (eps * eps).sum(axis=-1))
    return log_q, logvar.shape


def log_q_backward(dlog_q, cache):
    """``∂ log q / ∂λ_j = −½`` for every sample; returns ``dlogvar (N, Z)`` (docs/02-reparameterisation.md#log-density-by-change-of-variables)."""
    shape = cache
    return np.broadcast_to(-0.5 * dlog_q.sum(axis=0)[:, None], shape).copy()


def log_q_dz(dlog_q, cache):
    """``∂/∂z Σ dlog_q ⊙ log q(z|x)`` with ``μ, λ`` held fixed (the path term of STL and
    DReG): ``∂ log N(z; μ, σ²)/∂z = −(z − μ)/σ² = −ε/σ`` at ``z = μ + σ ε``
    (docs/05-elbo.md#sticking-the-landing).

    ``dlog_q (S, N)``; ``cache`` of :func:`reparameterize_forward`.  Returns ``dz (S, N, Z)``.
    """
    sigma, eps = cache
    return -dlog_q[..., None] * (eps / sigma)


def log_q_dparams(dlog_q, cache):
    """``∂/∂(μ, λ) Σ dlog_q ⊙ log N(z; μ, e^λ)`` with the sample ``z`` held fixed (the
    score term of STL): ``∂/∂μ = (z − μ)/σ² = ε/σ`` and ``∂/∂λ = ½((z − μ)²/σ² − 1)
    = ½(ε² − 1)`` at ``z = μ + σ ε``.  Plus the path term of :func:`log_q_dz` pushed
    through :func:`reparameterize_backward`, it gives :func:`log_q_backward`'s
    ``(0, −½)`` (docs/07-hierarchical-vae.md#sticking-the-landing-with-several-levels).

    ``dlog_q (S, N)``; ``cache`` of :func:`reparameterize_forward` with ``σ`` broadcasting
    against ``ε (S, N, Z)``.  Returns ``(dmu, dlogvar)``, each ``(S, N, Z)``, per sample.
    """
    sigma, eps = cache
    d = dlog_q[..., None]                                  # (S, N, 1)
    return d * (eps / sigma), d * (0.5 * (eps * eps - 1.0))


def log_normal_forward(z, mu, logvar):
    """``log N(z; μ, diag e^λ) = −½ Σ_j (log 2π + λ_j + (z_j − μ_j)² e^{−λ_j})`` (docs/02-reparameterisation.md#log-density-of-a-diagonal-gaussian).

    ``z (..., Z)`` broadcasts against ``mu, logvar``; returns ``(log_p (...), cache)``.
    ``mu = logvar = 0`` gives the standard normal ``log p(z)``.  Python numbers take
    ``z``'s dtype (``np.exp(-0.0)`` would be a float64 scalar, promoting float32
    work to float64 under NEP 50).
    """
    if not isinstance(mu, np.ndarray):
        mu = np.asarray(mu, np.result_type(z, mu))
    if not isinstance(logvar, np.ndarray):
        logvar = np.asarray(logvar, np.result_type(z, logvar))
    inv_var = np.exp(-logvar)
    diff = z - mu
    log_p = -0.5 * (LOG_2PI + logvar + diff * diff * inv_var).sum(axis=-1)
    return log_p, (diff, inv_var, np.shape(mu), np.shape(logvar))


def sum_to_shape(x, shape):
    """Sum ``x`` over the axes along which ``shape`` was broadcast: the gradient of a
    broadcast input has the input's shape."""
    while x.ndim > len(shape):
        x = x.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and x.shape[axis] != 1:
            x = x.sum(axis=axis, keepdims=True)
    return x


def log_normal_backward(dlog_p, cache):
    """Gradients of :func:`log_normal_forward`:
    ``∂/∂z = −(z − μ) e^{−λ}``, ``∂/∂μ = (z − μ) e^{−λ}``,
    ``∂/∂λ = ½ ((z − μ)² e^{−λ} − 1)``.  Returns ``(dz, dmu, dlogvar)``.
    """
    diff, inv_var, mu_shape, logvar_shape = cache
    d = dlog_p[..., None]
    dmu_full = d * diff * inv_var
    dlogvar_full = d * 0.5 * (diff * diff * inv_var - 1)
    return -dmu_full, sum_to_shape(dmu_full, mu_shape), sum_to_shape(dlogvar_full, logvar_shape)


# ------------------------------------------------------------------ KL terms
@compiled_in(_COMPILED)
def kl_standard_normal_forward(mu, logvar):
    """``KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² − 1 − λ_j)`` (docs/03-kl-divergences.md#kl-to-the-standard-normal;
    Kingma & Welling 2014, appendix B).  Returns ``(kl (N,), cache)``."""
    var = np.exp(logvar)                                   # (N, Z)
    kl = 0.5 * (mu * mu + var - 1 - logvar).sum(axis=-1)   # (N,)
    return kl, (mu, var)


@compiled_in(_COMPILED)
def kl_standard_normal_backward(dkl, cache):
    """``∂KL/∂μ = μ``, ``∂KL/∂λ = ½ (σ² − 1)`` (docs/03-kl-divergences.md#gradients-of-the-kl-to-the-standard-normal).  Returns ``(dmu, dlogvar)``."""
    mu, var = cache
    d = dkl[:, None]
    return d * mu, d * 0.5 * (var - 1)


@compiled_in(_COMPILED)
def kl_diagonal_forward(mu_q, logvar_q, mu_p, logvar_p):
    """``KL(q‖p) = ½ Σ_j (λp − λq + (σq² + (μq − μp)²)/σp² − 1)`` (docs/03-kl-divergences.md#kl-between-two-diagonal-gaussians).

    All inputs ``(..., N, Z)`` (broadcastable); returns ``(kl (..., N), cache)``.
    """
    mu_q, logvar_q, mu_p, logvar_p = np.broadcast_arrays(mu_q, logvar_q, mu_p, logvar_p)
    var_q = np.exp(logvar_q)                 # (..., N, Z), broadcast shape
    inv_var_p = np.exp(-logvar_p)
    diff = mu_q - mu_p
    kl = 0.5 * (logvar_p - logvar_q + (var_q + diff * diff) * inv_var_p - 1).sum(axis=-1)
    return kl, (var_q, inv_var_p, diff)


@compiled_in(_COMPILED)
def kl_diagonal_backward(dkl, cache):
    """Gradients of :func:`kl_diagonal_forward` (docs/03-kl-divergences.md#gradients-of-the-kl-between-diagonals):
    ``∂/∂μq = (μq − μp)/σp²``, ``∂/∂μp = −(μq − μp)/σp²``,
    ``∂/∂λq = ½ (σq²/σp² − 1)``, ``∂/∂λp = ½ (1 − (σq² + (μq − μp)²)/σp²)``.
    Returns ``(dmu_q, dlogvar_q, dmu_p, dlogvar_p)``.
    """
    var_q, inv_var_p, diff = cache
    d = dkl[..., None]
    dmu_q = d * diff * inv_var_p
    dlogvar_q = d * 0.5 * (var_q * inv_var_p - 1)
    dlogvar_p = d * 0.5 * (1 - (var_q + diff * diff) * inv_var_p)
    return dmu_q, dlogvar_q, -dmu_q, dlogvar_p
