"""Gaussian posteriors ``q(z|x)`` used by the VAE (MATH §2, §3).

Each class is stateless: what the encoder's second head outputs, how to
sample ``z`` from the noise, the closed-form KL to ``N(0, I)`` and
``log q(z|x)``, each as a forward/backward pair built from the kernels.
"""
from __future__ import annotations

from . import kernels as K
from .kernels import full_gaussian as F


class DiagonalGaussian:
    """``q = N(μ, diag e^λ)``; the second head outputs ``λ = log σ²`` (MATH §2)."""

    name = "diagonal"
    head = "logvar"

    def head_size(self, Z):
        return Z

    def sample_forward(self, mu, logvar, eps):
        return K.reparameterize_forward(mu, logvar, eps)

    def sample_backward(self, dz, cache):
        return K.reparameterize_backward(dz, cache)

    def kl_forward(self, mu, logvar):
        return K.kl_standard_normal_forward(mu, logvar)

    def kl_backward(self, dkl, cache):
        return K.kl_standard_normal_backward(dkl, cache)

    def log_q_forward(self, logvar, eps):
        return K.log_q_forward(logvar, eps)

    def log_q_backward(self, dlog_q, cache):
        return K.log_q_backward(dlog_q, cache)

    def marginal_logvar(self, logvar):
        return logvar


class FullCovarianceGaussian:
    """``q = N(μ, L Lᵀ)``; the second head outputs the ``Z(Z+1)/2`` free entries of
    ``L`` with ``L_jj = exp(s_j)`` (MATH §3).  Each forward unpacks ``L``; the
    backward chains through the unpacking."""

    name = "full"
    head = "chol"

    def head_size(self, Z):
        return F.n_cholesky_entries(Z)

    def _L(self, v, Z):
        return F.cholesky_from_vector_forward(v, Z)

    def sample_forward(self, mu, v, eps):
        L, l_c = self._L(v, mu.shape[-1])
        z, z_c = F.reparameterize_full_forward(mu, L, eps)
        return z, (l_c, z_c)

    def sample_backward(self, dz, cache):
        l_c, z_c = cache
        dmu, dL = F.reparameterize_full_backward(dz, z_c)
        return dmu, F.cholesky_from_vector_backward(dL, l_c)

    def kl_forward(self, mu, v):
        L, l_c = self._L(v, mu.shape[-1])
        kl, kl_c = F.kl_full_standard_normal_forward(mu, L)
        return kl, (l_c, kl_c)

    def kl_backward(self, dkl, cache):
        l_c, kl_c = cache
        dmu, dL = F.kl_full_standard_normal_backward(dkl, kl_c)
        return dmu, F.cholesky_from_vector_backward(dL, l_c)

    def log_q_forward(self, v, eps):
        L, l_c = self._L(v, eps.shape[-1])
        log_q, q_c = F.log_q_full_forward(L, eps)
        return log_q, (l_c, q_c)

    def log_q_backward(self, dlog_q, cache):
        l_c, q_c = cache
        return F.cholesky_from_vector_backward(F.log_q_full_backward(dlog_q, q_c), l_c)

    def cholesky(self, v, Z):
        """``L (N, Z, Z)`` from the head's output."""
        return self._L(v, Z)[0]

    def marginal_logvar(self, v, Z=None):
        """``log Σ_jj = log Σ_k L_jk²``, the log-variances of the marginals ``(N, Z)``."""
        import numpy as np

        Z = Z or int((np.sqrt(8 * v.shape[-1] + 1) - 1) / 2)
        L = self.cholesky(v, Z)
        return np.log(np.einsum("nij,nij->ni", L, L))


POSTERIORS = {"diagonal": DiagonalGaussian, "full": FullCovarianceGaussian}


def make_posterior(name):
    if name not in POSTERIORS:
        raise ValueError(f"unknown posterior {name!r}; choose one of {tuple(POSTERIORS)}")
    return POSTERIORS[name]()
