"""The VAE's public methods on encodings and samples: ``encode``, ``encode_cholesky``,
``decode``, ``transform``, ``sample``, ``reconstruct`` (docs/05-elbo.md), and the encoder
at the VampPrior's pseudo-inputs (docs/17-vampprior.md), and the composed importance
log-weights of the IWAE bound (docs/06-importance-weighting.md), kept beside
:mod:`npvae.models.vae` so that its module reads as the model and its step.
"""
from __future__ import annotations

import numpy as np

from .._validation import check_data, check_finite, check_positive_int
from .base import CHUNK
from .sklearn_api import EstimatorMixin
from .sizes import check_rows_fit


class VAEMethods(EstimatorMixin):
    """Mixin of :class:`npvae.VAE`: its public API on top of ``_encode_forward``, the
    posterior ``_post`` and the decoder (an :class:`EstimatorMixin`, so that ``transform``
    follows ``set_output``)."""

    def _encoder_heads(self, X, condition=None):
        """``(mu (N, Z), second head)`` in chunks: ``λ`` or the packed entries of ``L``;
        finite, else a one-line ``ValueError`` (parameters near 1e20 overflow the encoder)."""
        with np.errstate(over="ignore", invalid="ignore"):
            parts = [self._encode_forward(X[i:i + CHUNK], None if condition is None
                                          else condition[i:i + CHUNK])[:2]
                     for i in range(0, X.shape[0], CHUNK)]
        heads = [None if parts[0][k] is None else
                 check_finite(np.concatenate([p[k] for p in parts]), "the encoder's output")
                 for k in (0, 1)]
        return heads[0], heads[1]

    def _posterior_mean(self, X, condition):
        """``(E_q[z] (N, Z), second head)``, finite (else a one-line ``ValueError``)."""
        mu, scale_params = self._encoder_heads(X, condition)
        with np.errstate(over="ignore", invalid="ignore"):      # a flow's mean may overflow
            mean = self._posterior_at(False).mean(mu, scale_params)
        return check_finite(mean, "the posterior mean"), scale_params

    def _posterior_means(self, X, condition=None):
        return [self._posterior_mean(X, condition)[0]]

    def _encode(self, X, condition):
        mu, scale_params = self._posterior_mean(X, condition)
        return mu, self._post.marginal_logvar(scale_params, self.n_latent)

    def _encode_cholesky(self, X, condition):
        if not (self._post.has_mean and self._post.gaussian):
            raise ValueError(f"posterior={self.posterior!r} has no Gaussian covariance")
        mu, scale_params = self._encoder_heads(X, condition)
        if self.posterior == "full":
            return mu, self._post.cholesky(scale_params, self.n_latent)
        return mu, np.einsum("nj,jk->njk", np.exp(0.5 * scale_params), np.eye(self.n_latent))

    def encode(self, X):
        """Posterior parameters ``(mu (N, Z), logvar (N, Z))`` of ``q(z|x)``.

        For ``posterior="full"`` ``logvar`` holds the log-variances of the
        marginals, ``log Σ_jj``; :meth:`encode_cholesky` gives the factor ``L``.
        For ``posterior="concrete"`` the mean ``π (N, M·K)`` of the one-hot code (the
        class probabilities) and ``log π(1 − π)``.
        """
        self.check_fitted()
        return self._encode(self.validate_input(X), None)

    def encode_cholesky(self, X):
        """``(mu (N, Z), L (N, Z, Z))`` with ``Σ = L Lᵀ``; for a diagonal posterior
        ``L = diag(σ)``."""
        self.check_fitted()
        return self._encode_cholesky(self.validate_input(X), None)

    def decode(self, Z):
        """The likelihood's parameters for latents ``Z (M, Z)``: logits ``(M, D)``
        (Bernoulli), means ``(M, D)`` (Gaussian) or logits ``(M, D, V)`` (categorical)."""
        self.check_fitted()
        Z = check_data(Z, self._latent_width(), name="Z", dtype=self._dtype)
        return self._decode(Z)

    def transform(self, X):
        """Posterior means ``μ(x)`` ``(N, Z)`` (the class probabilities ``(N, M·K)`` of a
        Concrete posterior)."""
        return self.encode(X)[0]

    def _sample(self, n, condition, random_state):
        check_rows_fit(self, n, f"sample({n:,})")
        rng = self.rng_ if random_state is None else np.random.default_rng(random_state)
        z = self._prior_draw(rng, n, self.n_latent)
        return self._decode_means(z, condition)

    def sample(self, n, random_state=None):
        """``n`` draws ``z ~ p(z)`` (``N(0, I)``, or uniform one-hot codes) decoded to the
        likelihood's means ``(n, D)``."""
        self.check_fitted()
        return self._sample(check_positive_int(n, "n"), None, random_state)

    def reconstruct(self, X):
        """Likelihood means decoded from the posterior means ``(N, D)``."""
        return self._decode_means(self.transform(X))

    def _pseudo_encode_forward(self, u):
        """The posterior at the pseudo-inputs ``u (K, D)``: ``(mu_u, logvar_u, cache)``
        (docs/17-vampprior.md)."""
        _, mu, logvar, c = self._encoder.forward(self.params_, u)
        return mu, logvar, c

    def _pseudo_encode_backward(self, G, dmu, dlogvar, cache):
        return self._encoder.backward(G, dmu, dlogvar, cache, need_dx=True)   # du (K, D)

    def log_weights_forward(self, X, eps, condition=None):
        """``log w_k = log p(x|z_k) + log N(z_k; 0, I) − log q(z_k|x)`` ``(K, N)``
        (docs/06-importance-weighting.md), ``log q`` by the change of variables."""
        post = self._posterior_at(False)           # the Concrete's hard one-hot samples
        mu, scale_params, enc_c = self._encode_forward(X, condition)
        z, z_c = post.sample_forward(mu, scale_params, eps)                 # (K, N, Z)
        log_px, dec_c = self._decoder.forward(self.params_, z, X, condition)  # (K, N)
        log_pz, pz_c = self._log_prior_forward(z)                           # (K, N)
        log_q, q_c = post.log_q_mu_forward(mu, scale_params, eps)           # (K, N)
        log_w = log_px + log_pz - log_q
        parts = {"log_px": log_px, "log_pz": log_pz, "log_q": log_q}
        return log_w, parts, (enc_c, z_c, dec_c, pz_c, q_c)

    def log_weights_backward(self, dlog_w, cache, path_scale=None):
        """Gradient of ``Σ dlog_w ⊙ log w`` with respect to the flat parameters.

        With ``path_scale (K, N)`` (STL, DReG: docs/06-importance-weighting.md#doubly-reparameterised-gradients)
        ``log q``'s parameters are held fixed: its seed goes to ``z`` instead, and the
        encoder's gradient on each ``z_k`` is multiplied by ``path_scale_k``.
        """
        enc_c, z_c, dec_c, pz_c, q_c = cache
        flat, G = self._grad_buffer()
        dz = self._decoder.backward(G, dlog_w, dec_c)                       # via log p(x|z)
        dz += self._log_prior_backward(dlog_w, pz_c)                        # via log p(z)
        if path_scale is None:                                              # the exact gradient
            dmu, dscale_params = self._post.sample_backward(dz, z_c)
            dmu_q, dscale_params_q = self._post.log_q_mu_backward(-dlog_w, q_c)  # via −log q
            dmu, dscale_params = dmu + dmu_q, dscale_params + dscale_params_q
        else:                                                               # score term dropped
            dz += self._post.log_q_dz(-dlog_w, z_c)                         # via −log q, z only
            dmu, dscale_params = self._post.sample_backward(dz * path_scale[..., None], z_c)
        self._encoder.backward(G, dmu, dscale_params, enc_c)
        return self._add_prior_grads(flat)
