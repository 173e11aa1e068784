"""The variational autoencoder of Kingma & Welling (2014) (MATH §1–5).

Encoder ``q(z|x) = N(μ(x), diag e^{λ(x)})`` from an MLP; decoder ``p(x|z)``
from an MLP whose output parameterises the likelihood (MATH §4); prior
``p(z) = N(0, I)``.  Every gradient is written by hand from the kernels of
:mod:`npvae.kernels`.
"""
from __future__ import annotations

import numpy as np

from ._validation import check_data, check_positive_int
from .base import CHUNK, BaseVAE
from .kernels import (dense_backward, dense_forward, init_weight, log_normal_backward,
                      log_normal_forward, mlp_backward, mlp_forward)
from .kernels.activations import check_activation
from .posteriors import make_posterior


class VAE(BaseVAE):
    """Variational autoencoder with hand-written gradients (MATH §5).

    Parameters
    ----------
    n_latent : int
        Latent dimension ``Z``.
    hidden_sizes : tuple of int
        Widths of the encoder's hidden layers (any number, including none).
    decoder_hidden_sizes : tuple of int or None
        Widths of the decoder's hidden layers; ``None`` mirrors the encoder.
    activation : str
        ``relu``, ``leaky_relu``, ``tanh``, ``softplus``, ``sigmoid`` or ``identity``.
    likelihood : str
        ``bernoulli`` (binary data), ``gaussian`` (real data) or
        ``categorical`` (integers ``0..n_levels-1``), MATH §4.
    obs_variance, obs_logvar : Gaussian likelihood only: ``"fixed"``, ``"scalar"``
        or ``"per_output"`` log-variance, and its (initial) value.
    n_levels : categorical likelihood only: number of levels ``V``.
    allow_nonbinary : Bernoulli only: accept ``x ∈ [0, 1]`` (not a normalised likelihood).
    posterior : ``"diagonal"`` (``N(μ, diag e^λ)``, MATH §2) or ``"full"``
        (``N(μ, L Lᵀ)`` with a lower-triangular ``L``, MATH §3): the encoder's
        second head then outputs ``Z(Z+1)/2`` entries of ``L`` (``enc_chol_W/_b``).
    n_samples : int
        ``S``, samples of ``z`` per example in the ELBO estimator.
    beta : float
        Weight of the KL term (Higgins et al. 2017); 1 gives the ELBO.
    objective : ``"elbo"`` (MATH §5) or ``"iwae"``, the importance-weighted
        bound ``L_K`` with ``k`` samples (MATH §6; Burda et al. 2016).
    k : int
        ``K``, importance samples per example for ``objective="iwae"``.
    optimizer, learning_rate, batch_size, epochs : training defaults for ``fit``.
    dtype : ``"float32"`` or ``"float64"``.
    random_state : int, Generator or None
        Seeds the initial parameters and the model's noise generator ``rng_``.

    Attributes
    ----------
    params_ : dict name -> ndarray, live views of ``flat_params_``.
    n_features_in_ : int
    rng_ : numpy Generator for noise, shuffling and binarisation.
    history_ : list of per-epoch dicts written by the trainer.
    """

    def __init__(self, n_latent=20, hidden_sizes=(400,), decoder_hidden_sizes=None,
                 activation="relu", likelihood="bernoulli", obs_variance="fixed", obs_logvar=0.0,
                 n_levels=256, allow_nonbinary=False, posterior="diagonal", n_samples=1,
                 beta=1.0, objective="elbo",
                 k=1, optimizer="adam",
                 learning_rate=1e-3, batch_size=100, epochs=10, dtype="float64",
                 random_state=None):
        self.n_latent = n_latent
        self.hidden_sizes = hidden_sizes
        self.decoder_hidden_sizes = decoder_hidden_sizes
        self.activation = activation
        self.likelihood = likelihood
        self.obs_variance = obs_variance
        self.obs_logvar = obs_logvar
        self.n_levels = n_levels
        self.allow_nonbinary = allow_nonbinary
        self.posterior = posterior
        self.n_samples = n_samples
        self.beta = beta
        self.objective = objective
        self.k = k
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.dtype = dtype
        self.random_state = random_state

    # ------------------------------------------------------------ architecture
    def _check_settings(self):
        super()._check_settings()
        check_positive_int(self.n_latent, "n_latent")
        check_activation(self.activation)
        self._post = make_posterior(self.posterior)
        for w in self._enc_sizes() + self._dec_sizes():
            check_positive_int(w, "hidden layer width")

    def _enc_sizes(self):
        return list(self.hidden_sizes)

    def _dec_sizes(self):
        if self.decoder_hidden_sizes is None:
            return list(self.hidden_sizes)[::-1]
        return list(self.decoder_hidden_sizes)

    def _param_shapes(self, n_features):
        Z = self.n_latent
        shapes = {}
        width = n_features
        for i, h in enumerate(self._enc_sizes()):
            shapes[f"enc_W{i}"], shapes[f"enc_b{i}"] = (width, h), (h,)
            width = h
        shapes["enc_mu_W"], shapes["enc_mu_b"] = (width, Z), (Z,)
        head = self._post.head_size(Z)                     # λ (Z) or the entries of L
        shapes[f"enc_{self._post.head}_W"], shapes[f"enc_{self._post.head}_b"] = (width, head), (head,)
        width = Z
        for i, h in enumerate(self._dec_sizes()):
            shapes[f"dec_W{i}"], shapes[f"dec_b{i}"] = (width, h), (h,)
            width = h
        n_out = int(np.prod(self._lik.output_shape(n_features)))
        shapes["dec_out_W"], shapes["dec_out_b"] = (width, n_out), (n_out,)
        shapes.update(self._lik.param_shapes(n_features))
        return shapes

    def _init_params(self, P, rng):
        act = self.activation
        for name, W in P.items():
            if "_W" in name:
                hidden = name.startswith(("enc_W", "dec_W"))
                W[...] = init_weight(*W.shape, act if hidden else "identity", rng, self._dtype)

    def _noise_shape(self, n_samples, n_examples):
        return (n_samples, n_examples, self.n_latent)

    def _encoder_weights(self):
        P = self.params_
        return [(P[f"enc_W{i}"], P[f"enc_b{i}"]) for i in range(len(self._enc_sizes()))]

    # --------------------------------------------------------------- objective
    def _elbo_objective(self, X, eps, beta, need_grads=True):
        """Negative β-ELBO (MATH §5) and its gradient, by the chain rule through
        the decoder MLP (§1), the likelihood (§4), the reparameterisation (§2),
        the closed-form KL (§3) and the encoder MLP (§1).

        Returns ``(loss, flat_grad or None, terms)``.
        """
        S, N, Z = eps.shape
        mu, logvar, enc_c = self._encoder_forward(X)                           # (N, Z) each
        z, z_c = self._post.sample_forward(mu, logvar, eps)                    # (S, N, Z)
        log_px, dec_c = self._decoder_forward(z, X)                            # (S, N)
        kl, kl_c = self._post.kl_forward(mu, logvar)                           # (N,)
        reconstruction = log_px.mean(axis=0)                                   # (N,)
        loss = float(-np.mean(reconstruction - beta * kl))
        terms = {"reconstruction": reconstruction, "kl": kl, "elbo": reconstruction - kl}
        if not need_grads:
            return loss, None, terms
        # backward: ∂loss/∂log p(x|z_s) = −1/(S N), ∂loss/∂KL_n = β/N
        flat = self._grad_buffer()
        G = self.layout_.views(flat)
        dz = self._decoder_backward(np.full((S, N), -1.0 / (S * N), dtype=self._dtype), dec_c, G)
        dmu, dlogvar = self._post.sample_backward(dz, z_c)                     # (N, Z) each
        dmu_kl, dlogvar_kl = self._post.kl_backward(np.full(N, beta / N, dtype=self._dtype),
                                                     kl_c)
        self._encoder_backward(dmu + dmu_kl, dlogvar + dlogvar_kl, enc_c, G)
        return loss, flat, terms

    def _encoder_forward(self, X):
        """``h = MLP(x)``, ``μ = h W_μ + b_μ``, ``λ = h W_λ + b_λ`` (MATH §1, §2)."""
        P = self.params_
        h, enc_c = mlp_forward(X, self._encoder_weights(), [self.activation] * len(self._enc_sizes()))
        mu, mu_c = dense_forward(h, P["enc_mu_W"], P["enc_mu_b"])              # (N, Z)
        head = self._post.head                                                 # logvar or chol
        logvar, lv_c = dense_forward(h, P[f"enc_{head}_W"], P[f"enc_{head}_b"])  # (N, Z) or (N, Z(Z+1)/2)
        return mu, logvar, (enc_c, mu_c, lv_c)

    def _encoder_backward(self, dmu, dlogvar, cache, G):
        """Backward of :meth:`_encoder_forward`, writing into the gradient views ``G``."""
        enc_c, mu_c, lv_c = cache
        has_hidden = bool(self._enc_sizes())
        dh_mu, _, _ = dense_backward(dmu, mu_c, has_hidden, G["enc_mu_W"], G["enc_mu_b"])
        head = self._post.head
        dh_lv, _, _ = dense_backward(dlogvar, lv_c, has_hidden, G[f"enc_{head}_W"],
                                     G[f"enc_{head}_b"])
        if has_hidden:
            dh_mu += dh_lv
            mlp_backward(dh_mu, enc_c, need_dx=False,
                         outs=self._grad_views(G, "enc", len(enc_c), with_out=False))

    def _log_weights_forward(self, X, eps):
        """``log w_k = log p(x|z_k) + log N(z_k; 0, I) − log q(z_k|x)`` ``(K, N)`` (MATH §6),
        with ``log q`` by the change of variables of MATH §2."""
        mu, logvar, enc_c = self._encoder_forward(X)
        z, z_c = self._post.sample_forward(mu, logvar, eps)                    # (K, N, Z)
        log_px, dec_c = self._decoder_forward(z, X)                            # (K, N)
        log_pz, pz_c = log_normal_forward(z, 0.0, 0.0)                         # (K, N)
        log_q, q_c = self._post.log_q_forward(logvar, eps)                     # (K, N)
        log_w = log_px + log_pz - log_q
        parts = {"log_px": log_px, "log_pz": log_pz, "log_q": log_q}
        return log_w, parts, (enc_c, z_c, dec_c, pz_c, q_c)

    def _log_weights_backward(self, dlog_w, cache):
        """Gradient of ``Σ dlog_w ⊙ log w`` with respect to the flat parameters (MATH §6)."""
        enc_c, z_c, dec_c, pz_c, q_c = cache
        flat = self._grad_buffer()
        G = self.layout_.views(flat)
        dz = self._decoder_backward(dlog_w, dec_c, G)                          # via log p(x|z)
        dz += log_normal_backward(dlog_w, pz_c)[0]                             # via log p(z)
        dmu, dlogvar = self._post.sample_backward(dz, z_c)
        dlogvar += self._post.log_q_backward(-dlog_w, q_c)                     # via −log q
        self._encoder_backward(dmu, dlogvar, enc_c, G)
        return flat

    def _posterior_means(self, X):
        return [self.transform(X)]

    # ------------------------------------------------------------- public API
    def _encoder_heads(self, X):
        """``(mu (N, Z), second head)`` in chunks: ``λ`` or the packed entries of ``L``."""
        parts = [self._encoder_forward(X[i:i + CHUNK])[:2] for i in range(0, X.shape[0], CHUNK)]
        return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))

    def encode(self, X):
        """Posterior parameters ``(mu (N, Z), logvar (N, Z))`` of ``q(z|x)`` (MATH §2).

        For ``posterior="full"`` ``logvar`` holds the log-variances of the
        marginals, ``log Σ_jj``; :meth:`encode_cholesky` gives the factor ``L``.
        """
        self._check_fitted()
        mu, head = self._encoder_heads(self._check_X(X))
        if self.posterior == "full":
            return mu, self._post.marginal_logvar(head, self.n_latent)
        return mu, head

    def encode_cholesky(self, X):
        """``(mu (N, Z), L (N, Z, Z))`` with ``Σ = L Lᵀ`` (MATH §3); for a diagonal
        posterior ``L = diag(σ)``."""
        self._check_fitted()
        mu, head = self._encoder_heads(self._check_X(X))
        if self.posterior == "full":
            return mu, self._post.cholesky(head, self.n_latent)
        return mu, np.einsum("nj,jk->njk", np.exp(0.5 * head), np.eye(self.n_latent))

    def decode(self, Z):
        """The likelihood's parameters for latents ``Z (M, Z)`` (MATH §4):
        logits ``(M, D)`` (Bernoulli), means ``(M, D)`` (Gaussian) or logits
        ``(M, D, V)`` (categorical)."""
        self._check_fitted()
        Z = check_data(Z, self.n_latent, name="Z").astype(self._dtype, copy=False)
        out, _ = mlp_forward(Z, self._decoder_weights(), self._decoder_activations())
        return out.reshape((Z.shape[0],) + self._lik.output_shape(self.n_features_in_))

    def transform(self, X):
        """Posterior means ``μ(x)`` ``(N, Z)``."""
        return self.encode(X)[0]

    def sample(self, n, random_state=None):
        """``n`` draws ``z ~ N(0, I)`` decoded to the likelihood's means ``(n, D)``."""
        self._check_fitted()
        n = check_positive_int(n, "n")
        rng = self.rng_ if random_state is None else np.random.default_rng(random_state)
        z = rng.standard_normal((n, self.n_latent)).astype(self._dtype)
        return self._decode_means(z)

    def _decode_means(self, Z):
        """Likelihood means ``(M, D)`` for latents ``Z (M, Z)``."""
        return self._lik.mean(self.decode(Z), self.params_)

    def reconstruct(self, X):
        """Likelihood means decoded from the posterior means ``(N, D)``."""
        return self._decode_means(self.transform(X))
