"""The pure functions of EM for a Gaussian mixture (docs/13-em-and-variance-reduction.md).

Model: ``c ~ Categorical(π)``, ``x | c ~ N(μ_c, Σ_c)`` (full covariances).  For any
``q(c|x_n)`` the ELBO is ``Σ_c q_nc (log p(x_n, c) − log q_nc) = log p(x_n) −
KL(q ‖ p(c|x_n))``; the E-step maximises it over ``q`` (``q = p(c|x)``, the bound
touches ``log p(x)``), the M-step over ``θ = (π, μ, Σ)`` in closed form.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.special import entr, logsumexp

LOG_2PI = math.log(2.0 * math.pi)


class Mixture(NamedTuple):
    """The parameters ``θ`` of a Gaussian mixture."""

    weights: np.ndarray        # (C,)      π, positive, sum to one
    means: np.ndarray          # (C, D)    μ_c
    covariances: np.ndarray    # (C, D, D) Σ_c, symmetric positive definite


def check_mixture(x, mixture):
    """``(x (N, D) float64, mixture)`` or a one-line ValueError."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty (N, D) array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or infinite values")
    w, mu, cov = (np.asarray(a, dtype=np.float64) for a in mixture)
    C, D = mu.shape if mu.ndim == 2 else (None, None)
    if D != x.shape[1] or w.shape != (C,) or cov.shape != (C, D, D):
        raise ValueError(f"mixture shapes weights {w.shape}, means {mu.shape}, covariances "
                         f"{cov.shape} do not fit (C,), (C, D), (C, D, D) with D = {x.shape[1]}")
    if np.any(w <= 0) or not math.isclose(w.sum(), 1.0, abs_tol=1e-8):
        raise ValueError(f"weights must be positive and sum to one, got {w}")
    return x, Mixture(w, mu, cov)


def gaussian_log_density(x, means, covariances):
    """``log N(x_n; μ_c, Σ_c)`` for every pair, ``(N, C)``, through the Cholesky factor
    ``Σ_c = L_c L_cᵀ`` (docs/13-em-and-variance-reduction.md#the-log-joint):
    ``−½ (D log 2π + 2 Σ_j log L_jj + ‖L_c⁻¹ (x_n − μ_c)‖²)``."""
    N, D = x.shape
    out = np.empty((N, len(means)))                                   # (N, C)
    for c, (mu, cov) in enumerate(zip(means, covariances)):
        try:
            L = np.linalg.cholesky(cov)                               # (D, D)
        except np.linalg.LinAlgError:
            raise ValueError(f"covariance of component {c} is not positive definite") from None
        L_inv = np.linalg.inv(L)                                      # (D, D), lower triangular
        r = (x - mu) @ L_inv.T                                        # (N, D): rows L⁻¹ (x_n − μ)
        log_det = 2.0 * np.sum(np.log(np.diag(L)))
        out[:, c] = -0.5 * (D * LOG_2PI + log_det + np.sum(r * r, axis=1))
    return out


def log_joint(x, mixture):
    """``log p(x_n, c) = log π_c + log N(x_n; μ_c, Σ_c)``, ``(N, C)``
    (docs/13-em-and-variance-reduction.md#the-log-joint)."""
    return np.log(mixture.weights) + gaussian_log_density(x, mixture.means,
                                                          mixture.covariances)


def log_marginal(x, mixture):
    """``log p(x_n) = logsumexp_c log p(x_n, c)``, ``(N,)``."""
    return logsumexp(log_joint(x, mixture), axis=1)


def e_step(x, mixture):
    """The exact posterior ``q(c|x_n) = p(c|x_n)`` (docs/13-em-and-variance-reduction.md#the-e-step).

    Returns ``(q (N, C), log_px (N,))``: responsibilities by log-sum-exp, and
    ``log p(x_n)``, which the ELBO equals at this ``q``.
    """
    a = log_joint(x, mixture)                                         # (N, C)
    log_px = logsumexp(a, axis=1)                                     # (N,)
    return np.exp(a - log_px[:, None]), log_px


def point_mass_e_step(x, mixture):
    """The best ``q`` among point masses ``q(c|x_n) = [c = k_n]``:
    ``k_n = argmax_c p(c|x_n)`` (docs/13-em-and-variance-reduction.md#a-restricted-family-point-masses).
    Returns one-hot ``q (N, C)``."""
    a = log_joint(x, mixture)                                         # (N, C)
    q = np.zeros_like(a)
    q[np.arange(len(a)), np.argmax(a, axis=1)] = 1.0
    return q


def m_step(x, q, reg_covar=1e-6):
    """The ``θ`` that maximises the ELBO for fixed ``q`` (docs/13-em-and-variance-reduction.md#the-m-step):

    ``N_c = Σ_n q_nc``, ``π_c = N_c / N``, ``μ_c = Σ_n q_nc x_n / N_c``,
    ``Σ_c = Σ_n q_nc (x_n − μ_c)(x_n − μ_c)ᵀ / N_c + reg_covar I``.

    ``N_c`` carries ``10 ε`` (machine epsilon) as scikit-learn's does, so that an
    empty component gives a finite (degenerate) answer.
    """
    x = np.asarray(x, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 2 or q.shape[0] != x.shape[0]:
        raise ValueError(f"q must be (N, C) with N = {x.shape[0]}, got shape {q.shape}")
    if reg_covar < 0:
        raise ValueError(f"reg_covar must be >= 0, got {reg_covar}")
    N_c = q.sum(axis=0) + 10 * np.finfo(np.float64).eps               # (C,)
    means = (q.T @ x) / N_c[:, None]                                  # (C, D)
    D = x.shape[1]
    covariances = np.empty((len(N_c), D, D))                          # (C, D, D)
    for c in range(len(N_c)):
        diff = x - means[c]                                           # (N, D)
        covariances[c] = (q[:, c] * diff.T) @ diff / N_c[c]
        covariances[c].flat[::D + 1] += reg_covar
    return Mixture(N_c / N_c.sum(), means, covariances)


def mixture_elbo(x, q, mixture):
    """``ELBO_n = Σ_c q_nc (log p(x_n, c) − log q_nc)``, ``(N,)``
    (docs/13-em-and-variance-reduction.md#the-elbo-of-a-mixture); equal to
    ``log p(x_n) − KL(q ‖ p(c|x_n))``.  ``−q log q`` is scipy's ``entr`` (0 at 0)."""
    q = np.asarray(q, dtype=np.float64)
    return np.sum(q * log_joint(x, mixture) + entr(q), axis=1)
