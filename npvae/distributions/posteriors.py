"""Posteriors ``q(z|x)``: the contract :class:`Posterior` and the two Gaussians
(docs/02-reparameterisation.md, docs/03-kl-divergences.md).

An encoder (:class:`npvae.models.networks.GaussianNetwork`) outputs the mean
``μ`` and a second head whose meaning the posterior defines (``λ = log σ²``
for the diagonal Gaussian, the packed Cholesky factor for the full one).  The
posterior turns noise into samples, gives ``log q`` at those samples and,
where one exists, the closed-form KL to ``N(0, I)``; a posterior without one
sets ``closed_form_kl = False`` and the objectives use the Monte Carlo
estimate ``log q(z|x) − log p(z)`` instead
(:func:`npvae.objectives.monte_carlo_kl_forward`).

Shapes: ``mu (N, Z)`` or, for a level whose parameters depend on a sample of
the level below (the hierarchical VAE's markov inference), ``(S, N, Z)``;
noise ``eps (S, N, Z)``; samples ``z (S, N, Z)``.
"""
from __future__ import annotations

import abc

import numpy as np
from scipy.special import logsumexp

from ._checks import options
from . import full_gaussian as F
from .diagonal_gaussian import (kl_diagonal_backward, kl_diagonal_forward,
                                kl_standard_normal_backward, kl_standard_normal_forward,
                                log_normal_backward, log_normal_forward, log_q_backward,
                                log_q_dparams, log_q_dz, log_q_forward, reparameterize_backward,
                                reparameterize_forward)


class Posterior(abc.ABC):
    """What a posterior family must provide.

    Its methods take the encoder's two heads: the mean ``mu`` and ``scale_params``, the
    second head, whose meaning the family defines: ``λ = log σ²`` (the diagonal Gaussian,
    which calls it ``logvar``), the packed entries of ``L`` (the full one: ``chol``), ``λ``
    and a flow's inputs (the flows).  A family without a mean head (Concrete, Kumaraswamy,
    Dirichlet) has this one only: its logits, or its parameters before the softplus.
    """

    #: registry name (``VAE(posterior=name)``)
    name: str = ""
    #: the second head's name in ``params_`` (``enc_{head}_W``, ``enc_{head}_b``)
    head: str = ""
    #: whether :meth:`kl_forward` exists; if not, the KL is estimated by Monte Carlo
    closed_form_kl: bool = True
    #: whether the encoder has a mean head ``μ`` (the Concrete posterior has only its logits)
    has_mean: bool = True
    #: whether ``q`` is a Gaussian, with a covariance ``encode_cholesky`` can give (not a flow's)
    gaussian: bool = True
    #: whether :meth:`log_q_dz` exists (STL and DReG need it; a flow's would need its inverse)
    path_derivative: bool = True

    def __init__(self, params=None):
        if params:
            raise ValueError(f"posterior={self.name!r} takes no posterior_params, got {params!r}")

    def at(self, epoch, training):
        """The posterior for one objective at ``epoch`` (``training``: a gradient is wanted);
        itself for the Gaussians (docs/15-discrete-latents.md for one that changes)."""
        return self

    def latent_width(self, Z):
        """Columns of a sample ``z``, the decoder's input, for ``n_latent = Z``."""
        return Z

    def noise_width(self, Z):
        """Columns of the noise a sample is drawn from, for ``n_latent = Z``: the sample's
        width, or ``T − 1`` stick fractions for ``T`` stick-breaking weights."""
        return self.latent_width(Z)

    def draw_noise(self, rng, shape, dtype):
        """The noise a sample is a function of: standard normal for the Gaussians."""
        return rng.standard_normal(shape, dtype=dtype)

    def noise_from_normal(self, eps):
        """This posterior's noise from standard normal ``eps`` (the keyed evaluation noise)."""
        return eps

    def check_noise(self, eps, name="eps"):
        """Values check of noise already finite and shaped (the Gaussians take any)."""
        return eps

    def log_prior_forward(self, z):
        """``log p(z)`` ``(S, N)`` of the prior, ``N(0, I)`` here; ``(log_p, cache)``."""
        return log_normal_forward(z, 0.0, 0.0)

    def log_prior_backward(self, dlog_p, cache):
        """``(dz,)``, then whatever else the prior's kernel returns."""
        return log_normal_backward(dlog_p, cache)

    def prior_sample(self, rng, n, Z, dtype):
        """``n`` draws of the prior ``(n, Z)``."""
        return rng.standard_normal((n, Z)).astype(dtype)

    def mean(self, mu, scale_params):
        """The posterior mean ``E_q[z]`` ``(N, Z)``."""
        return mu

    @abc.abstractmethod
    def head_size(self, Z: int) -> int:
        """Outputs of the second head for a latent dimension ``Z``."""

    @abc.abstractmethod
    def sample_forward(self, mu, scale_params, eps):
        """``z = g(μ, scale_params, ε)``; returns ``(z (S, N, Z), cache)``."""

    @abc.abstractmethod
    def sample_backward(self, dz, cache):
        """Returns ``(dmu, dscale_params)`` shaped like the forward's ``mu`` and
        ``scale_params``."""

    @abc.abstractmethod
    def log_q_forward(self, scale_params, eps):
        """``log q(z|x)`` at ``z = g(μ, scale_params, ε)``: ``(log_q (S, N), cache)``."""

    @abc.abstractmethod
    def log_q_backward(self, dlog_q, cache):
        """Returns ``dscale_params``: ``log q`` at a reparameterised sample does not depend
        on ``μ``."""

    def log_q_mu_forward(self, mu, scale_params, eps):
        """``log q(z|x)`` at ``z = g(μ, scale_params, ε)`` for a posterior whose ``log q``
        there may depend on ``μ`` too (a flow:
        docs/18-normalising-flows.md#the-posterior-through-a-flow): ``(log_q (S, N), cache)``.
        The Gaussians' does not: :meth:`log_q_forward`."""
        return self.log_q_forward(scale_params, eps)

    def log_q_mu_backward(self, dlog_q, cache):
        """``(dmu, dscale_params)`` of :meth:`log_q_mu_forward` (``dmu`` 0 where ``log q`` does not
        depend on ``μ``)."""
        return 0, self.log_q_backward(dlog_q, cache)

    def param_shapes(self, Z):
        """Shapes of the posterior's own parameters, shared by all examples (an inverse
        autoregressive flow's weights), added to the model's ``params_``; none here."""
        return {}

    def init_params(self, P, rng):
        """Initial values of :meth:`param_shapes`'s entries of ``P`` (after the model's own)."""

    def bind(self, P, G):
        """The posterior reading its own parameters from ``P`` and adding their gradient
        into the views ``G`` (zeroed here); itself for a posterior without any."""
        return self

    def log_q_dz(self, dlog_q, sample_cache):
        """``dz (S, N, Z)``: the gradient of ``Σ dlog_q ⊙ log q(z|x)`` through ``z`` alone,
        the parameters held fixed (STL and DReG, docs/05-elbo.md#sticking-the-landing);
        ``sample_cache`` from :meth:`sample_forward`."""
        raise NotImplementedError(f"{type(self).__name__} has no path derivative of log q")

    def log_q_dparams(self, dlog_q, sample_cache):
        """``(dmu, dscale_params)`` per sample ``(S, N, ·)``: the gradient of
        ``Σ dlog_q ⊙ log q(z|·)`` on ``q``'s parameters with the sample held fixed (where the
        parameters are themselves functions of another sample: docs/07-hierarchical-vae.md)."""
        raise NotImplementedError(f"{type(self).__name__} has no score derivative of log q")

    def kl_forward(self, mu, scale_params):
        """Closed-form ``KL(q ‖ N(0, I))`` per example: ``(kl (N,), cache)``."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form KL")

    def kl_backward(self, dkl, cache):
        """Returns ``(dmu, dscale_params)``."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form KL")

    def kl_to_gaussian_forward(self, mu, scale_params, mu_p, logvar_p):
        """Closed-form ``KL(q ‖ N(μp, diag e^{λp}))`` per row, the arguments broadcast
        against each other (a hierarchical prior's ``(S, N, Z)``): ``(kl, cache)``
        (docs/03-kl-divergences.md#kl-between-two-diagonal-gaussians)."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form KL to a Gaussian")

    def kl_to_gaussian_backward(self, dkl, cache):
        """Returns ``(dmu, dscale_params, dmu_p, dlogvar_p)`` in the broadcast shape."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form KL to a Gaussian")

    @abc.abstractmethod
    def marginal_logvar(self, scale_params, Z):
        """Log-variances of the marginals ``(N, Z)``."""


class DiagonalGaussian(Posterior):
    """``q = N(μ, diag e^λ)``; the second head outputs ``λ = log σ²``
    (docs/02-reparameterisation.md).

    ``mu, logvar`` may be ``(N, Z)`` (shared by the ``S`` samples) or
    ``(S, N, Z)`` (one per sample): those go to the kernels as ``S·N`` rows of
    one sample each.
    """

    name = "diagonal"
    head = "logvar"

    def head_size(self, Z):
        return Z

    def sample_forward(self, mu, logvar, eps):
        if mu.ndim == 2:
            return reparameterize_forward(mu, logvar, eps)
        S, N, Z = eps.shape
        z, cache = reparameterize_forward(mu.reshape(S * N, Z), logvar.reshape(S * N, Z),
                                          eps.reshape(1, S * N, Z))
        return z.reshape(S, N, Z), ("per_sample", cache)

    def sample_backward(self, dz, cache):
        if isinstance(cache[0], str):                     # per-sample parameters
            S, N, Z = dz.shape
            dmu, dlogvar = reparameterize_backward(dz.reshape(1, S * N, Z), cache[1])
            return dmu.reshape(S, N, Z), dlogvar.reshape(S, N, Z)
        return reparameterize_backward(dz, cache)

    def log_q_forward(self, logvar, eps):
        if logvar.ndim == 2:
            return log_q_forward(logvar, eps)
        S, N, Z = eps.shape
        log_q, cache = log_q_forward(logvar.reshape(S * N, Z), eps.reshape(1, S * N, Z))
        return log_q.reshape(S, N), ("per_sample", cache, (S, N, Z))

    def log_q_backward(self, dlog_q, cache):
        if isinstance(cache[0], str):                     # per-sample parameters
            _, inner, (S, N, Z) = cache
            return log_q_backward(dlog_q.reshape(1, S * N), inner).reshape(S, N, Z)
        return log_q_backward(dlog_q, cache)

    def log_q_dz(self, dlog_q, sample_cache):
        if isinstance(sample_cache[0], str):              # per-sample parameters
            S, N = dlog_q.shape
            return log_q_dz(dlog_q.reshape(1, S * N), sample_cache[1]).reshape(S, N, -1)
        return log_q_dz(dlog_q, sample_cache)

    def log_q_dparams(self, dlog_q, sample_cache):
        if isinstance(sample_cache[0], str):              # per-sample parameters
            S, N = dlog_q.shape
            dmu, dlogvar = log_q_dparams(dlog_q.reshape(1, S * N), sample_cache[1])
            return dmu.reshape(S, N, -1), dlogvar.reshape(S, N, -1)
        return log_q_dparams(dlog_q, sample_cache)

    def kl_forward(self, mu, logvar):
        return kl_standard_normal_forward(mu, logvar)

    def kl_backward(self, dkl, cache):
        return kl_standard_normal_backward(dkl, cache)

    def kl_to_gaussian_forward(self, mu, logvar, mu_p, logvar_p):
        return kl_diagonal_forward(mu, logvar, mu_p, logvar_p)

    def kl_to_gaussian_backward(self, dkl, cache):
        return kl_diagonal_backward(dkl, cache)

    def marginal_logvar(self, logvar, Z=None):
        return logvar


class FullCovarianceGaussian(Posterior):
    """``q = N(μ, L Lᵀ)``; the second head outputs the ``Z(Z+1)/2`` free entries of
    ``L`` with ``L_jj = exp(s_j)`` (docs/03-kl-divergences.md).  Each forward
    unpacks ``L``; the backward chains through the unpacking."""

    name = "full"
    head = "chol"

    def head_size(self, Z):
        return F.n_cholesky_entries(Z)

    def _L(self, chol, Z):
        return F.cholesky_from_vector_forward(chol, Z)

    def sample_forward(self, mu, chol, eps):
        L, l_c = self._L(chol, mu.shape[-1])
        z, z_c = F.reparameterize_full_forward(mu, L, eps)
        return z, (l_c, z_c)

    def sample_backward(self, dz, cache):
        l_c, z_c = cache
        dmu, dL = F.reparameterize_full_backward(dz, z_c)
        return dmu, F.cholesky_from_vector_backward(dL, l_c)

    def kl_forward(self, mu, chol):
        Z = mu.shape[-1]
        L, l_c = self._L(chol, Z)
        kl, kl_c = F.kl_full_standard_normal_forward(mu, L, F.log_diagonal(chol, Z))
        return kl, (l_c, kl_c)

    def kl_backward(self, dkl, cache):
        l_c, kl_c = cache
        dmu, dL, ds = F.kl_full_standard_normal_backward(dkl, kl_c)
        return dmu, F.cholesky_from_vector_backward(dL, l_c, ds)

    def log_q_forward(self, chol, eps):
        Z = eps.shape[-1]
        log_q, q_c = F.log_q_full_forward(F.log_diagonal(chol, Z), eps)
        return log_q, (chol.shape, Z, q_c)

    def log_q_backward(self, dlog_q, cache):
        chol_shape, Z, q_c = cache
        dchol = np.zeros(chol_shape, dtype=dlog_q.dtype)
        rows, cols = np.tril_indices(Z)
        dchol[:, np.flatnonzero(rows == cols)] = F.log_q_full_backward(dlog_q, q_c)
        return dchol

    def log_q_dz(self, dlog_q, sample_cache):
        return F.log_q_full_dz(dlog_q, sample_cache[1])

    def cholesky(self, chol, Z):
        """``L (N, Z, Z)`` from the head's output."""
        return self._L(chol, Z)[0]

    def marginal_logvar(self, chol, Z):
        """``log Σ_jj = log Σ_k L_jk²``, the log-variances of the marginals ``(N, Z)``,
        as a log-sum-exp of ``2 log |L_jk|`` with ``2 s_j`` on the diagonal (finite even
        where ``L_jj = exp(s_j)`` underflows)."""
        L = self.cholesky(chol, Z)
        with np.errstate(divide="ignore"):
            log_sq = 2 * np.log(np.abs(L))                         # (N, Z, Z), −inf above
        idx = np.arange(Z)
        log_sq[:, idx, idx] = 2 * F.log_diagonal(chol, Z)
        return logsumexp(log_sq, axis=-1)


#: the registry: ``VAE(posterior=name)``; :mod:`.concrete_posterior` adds ``"concrete"``,
#: :mod:`.stick_breaking` ``"kumaraswamy"``, :mod:`.dirichlet_posterior` ``"dirichlet"``
POSTERIORS = {"diagonal": DiagonalGaussian, "full": FullCovarianceGaussian}


def posterior_options(name, params, defaults):
    """``posterior_params`` of the posterior ``name``: a dict (or None) of keys among
    ``defaults``, returned with the defaults filled in; one-line ``ValueError``s."""
    return options(params, defaults, "posterior_params", f"posterior={name!r}")


def make_posterior(name, params=None) -> Posterior:
    """The posterior ``name`` with its options ``params`` (``posterior_params``)."""
    if not isinstance(name, str) or name not in POSTERIORS:
        raise ValueError(f"unknown posterior {name!r}; choose one of {tuple(POSTERIORS)}")
    return POSTERIORS[name](params)
