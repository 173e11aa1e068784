"""Dirichlet latents by implicit reparameterisation (Figurnov, Mohamed & Mnih 2018;
docs/19-simplex-latents.md#dirichlet-latents).

``VAE(posterior="dirichlet", n_latent=K, posterior_params={"prior_alpha": α₀})``: a
code ``z (N, K)`` on the simplex, the decoder's input.

* Posterior: ``Dirichlet(α(x))``, the encoder's one head ``(N, K)`` through
  ``α = softplus(α̂) + MIN_CONCENTRATION``.
* Noise: uniforms ``u (S, N, K)``; ``y_k = P⁻¹(α_k, u_k)`` (the Gamma(α_k, 1) inverse
  CDF, :func:`scipy.special.gammaincinv`) and ``z = y / Σ_k y_k``.  At fixed ``u`` the
  sample is a deterministic, differentiable function of ``α``: ``∂y/∂α = −(∂P/∂α)/p_α(y)``
  (implicit differentiation of the CDF, :func:`npvae.distributions.implicit.gamma_shape_derivative`,
  ``∂P/∂α`` by a central difference; relative error ≲ 3e-9 for ``α ∈ [0.05, 10⁴]``, the
  range ``MIN_CONCENTRATION`` keeps the shapes in from below).  The Gamma draws are made
  in float64 whatever the model's dtype.
* Prior: the symmetric ``Dirichlet(α₀, …, α₀)``.
* KL: the closed form ``KL(Dir(α) ‖ Dir(β))`` with its digamma/trigamma gradient.
"""
from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln, polygamma

from .implicit import dirichlet_sample_backward, dirichlet_sample_forward
from .posteriors import POSTERIORS
from .uniform_noise import UniformNoisePosterior, number, softplus_forward

#: the options of ``posterior_params`` and their defaults
DEFAULTS = {"prior_alpha": 1.0}
#: the floor added to ``softplus``: the smallest concentration, where the Gamma's implicit
#: gradient is still measured accurate (:func:`npvae.distributions.implicit.gamma_shape_derivative`)
MIN_CONCENTRATION = 0.05


def dirichlet_kl_forward(alpha, beta):
    """``KL(Dir(α) ‖ Dir(β)) = log Γ(α₀) − Σ log Γ(α_k) − log Γ(β₀) + Σ log Γ(β_k)
    + Σ_k (α_k − β_k)(ψ(α_k) − ψ(α₀))`` over the last axis, ``α₀ = Σ α_k``, ``β₀ = Σ β_k``."""
    a0, b0 = alpha.sum(axis=-1), beta.sum(axis=-1)
    psi0 = digamma(a0)
    kl = (gammaln(a0) - gammaln(alpha).sum(axis=-1) - gammaln(b0) + gammaln(beta).sum(axis=-1)
          + ((alpha - beta) * (digamma(alpha) - psi0[..., None])).sum(axis=-1))
    return kl, (alpha, beta, a0, b0)


def dirichlet_kl_backward(dkl, cache):
    """``∂KL/∂α_k = (α_k − β_k) ψ'(α_k) − (α₀ − β₀) ψ'(α₀)``
    (docs/19-simplex-latents.md#the-dirichlet-kl-and-its-gradient)."""
    alpha, beta, a0, b0 = cache
    d = (alpha - beta) * polygamma(1, alpha) - ((a0 - b0) * polygamma(1, a0))[..., None]
    return dkl[..., None] * d


class DirichletPosterior(UniformNoisePosterior):
    """``q(z|x) = Dirichlet(α(x))`` on the ``K``-simplex, a ``Dirichlet(α₀)`` prior
    (docs/19-simplex-latents.md#dirichlet-latents).  ``posterior_params``: ``prior_alpha`` ``α₀ > 0``."""

    name = "dirichlet"
    head = "alpha"
    closed_form_kl = True
    DEFAULTS = DEFAULTS

    def __init__(self, params=None):
        self.alpha0 = number(self.read_params(params), "prior_alpha", 0.0, False)

    def head_size(self, K):
        if K < 2:
            raise ValueError(f"posterior='dirichlet' needs n_latent >= 2 categories, got {K}")
        return K

    def concentrations(self, pre_alpha):
        """``(α, σ(α̂))`` ``(N, K)`` in float64, from the encoder's head ``pre_alpha = α̂``
        ``(N, K)``, the concentrations before the softplus."""
        return softplus_forward(pre_alpha.astype(np.float64), MIN_CONCENTRATION)

    # ------------------------------------------------------------- sampling
    def sample_forward(self, mu, pre_alpha, u):
        """``z = y / Σy``, ``y_k = P⁻¹(α_k, u_k)`` ``(S, N, K)``; ``mu`` is None."""
        alpha, s = self.concentrations(pre_alpha)
        z, c = dirichlet_sample_forward(alpha, u.astype(np.float64))
        return z.astype(pre_alpha.dtype), (c, s)

    def sample_backward(self, dz, cache):
        """``(0, dpre_alpha)``: the normalisation VJP, then the implicit Gamma shape derivative
        (:func:`npvae.distributions.implicit.dirichlet_sample_backward`), softplus'."""
        c, s = cache
        dalpha = dirichlet_sample_backward(dz.astype(np.float64), c)["alpha"]
        return 0, (dalpha * s).astype(dz.dtype)

    # ------------------------------------------------------------------ KL
    def kl_forward(self, mu, pre_alpha):
        alpha, s = self.concentrations(pre_alpha)
        kl, c = dirichlet_kl_forward(alpha, np.full_like(alpha, self.alpha0))
        return kl.astype(pre_alpha.dtype), (c, s)

    def kl_backward(self, dkl, cache):
        c, s = cache
        return 0, (dirichlet_kl_backward(dkl.astype(np.float64), c) * s).astype(dkl.dtype)

    # ------------------------------------------------------------- densities
    def log_q_forward(self, pre_alpha, u):
        """``log Dir(z; α)`` ``(S, N)`` at the sample, with ``log z = log y − log Σy`` in
        float64 (exact where ``z_k`` underflows in the model's dtype)."""
        alpha, s = self.concentrations(pre_alpha)
        z, c = dirichlet_sample_forward(alpha, u.astype(np.float64))
        _, y, total, _ = c
        log_z = np.log(y) - np.log(total)
        log_q = (gammaln(alpha.sum(-1)) - gammaln(alpha).sum(-1)
                 + ((alpha - 1) * log_z).sum(-1))
        return log_q.astype(pre_alpha.dtype), (c, s, log_z)

    def log_q_backward(self, dlog_q, cache):
        """``dpre_alpha`` of ``log q`` at the reparameterised sample: the explicit
        ``ψ(Σα) − ψ(α_k) + log z_k``, and through ``z`` the seed ``(α_k − 1)/z_k`` into
        :meth:`sample_backward`."""
        c, s, log_z = cache
        alpha, _, _, z = c
        d = dlog_q.astype(np.float64)[..., None]
        explicit = (d * (digamma(alpha.sum(-1))[..., None] - digamma(alpha) + log_z)).sum(axis=0)
        path = dirichlet_sample_backward(d * (alpha - 1) / z, c)["alpha"]
        return ((explicit + path) * s).astype(dlog_q.dtype)

    def log_prior_forward(self, z):
        """``log Dir(z; α₀)`` ``(S, N)`` (``z_k`` floored at the dtype's smallest normal number
        where it underflowed)."""
        K, a0 = z.shape[-1], self.alpha0
        zc = np.maximum(z, np.finfo(z.dtype).tiny)
        log_p = gammaln(K * a0) - K * gammaln(a0) + (a0 - 1) * np.log(zc).sum(-1)
        return log_p.astype(z.dtype), zc

    def log_prior_backward(self, dlog_p, zc):
        return (dlog_p[..., None] * (self.alpha0 - 1) / zc,)

    def prior_sample(self, rng, n, K, dtype):
        return rng.dirichlet(np.full(K, self.alpha0), n).astype(dtype)

    # ----------------------------------------------------------- summaries
    def mean(self, mu, pre_alpha):
        """``E_q[z] = α / Σα`` ``(N, K)``."""
        alpha = self.concentrations(pre_alpha)[0]
        return (alpha / alpha.sum(-1, keepdims=True)).astype(pre_alpha.dtype)

    def marginal_logvar(self, pre_alpha, K=None):
        """``log Var[z_k] = log α_k(α₀ − α_k) − 2 log α₀ − log(α₀ + 1)``, ``α₀ = Σα``."""
        alpha = self.concentrations(pre_alpha)[0]
        a0 = alpha.sum(-1, keepdims=True)
        return (np.log(alpha) + np.log(a0 - alpha) - 2 * np.log(a0)
                - np.log1p(a0)).astype(pre_alpha.dtype)


POSTERIORS["dirichlet"] = DirichletPosterior        # VAE(posterior="dirichlet")
