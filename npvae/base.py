"""What every npvae model shares: the scikit-learn estimator plumbing.

A model subclass describes its parameters (``_param_shapes``,
``_init_params``), the shape of its noise (``_noise_shape``), its ELBO with
the hand-written gradient (``_elbo_objective``), its importance log-weights
``log w = log p(x, z) − log q(z|x)`` with their gradient
(``_log_weights_forward``/``_log_weights_backward``, MATH §6) and its
posterior means per level (``_posterior_means``).  Everything public —
``initialize``, ``loss_and_grads``, ``fit``, ``score_samples``,
``log_likelihood``, ``active_units``, … — is built here from those, with input
validation.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp, softmax
from sklearn.base import BaseEstimator

from ._validation import check_data, check_dtype, check_noise, check_positive_int
from .kernels import mlp_backward, mlp_forward
from .likelihoods import make_likelihood
from .params import ParamLayout

#: rows per chunk when scoring or encoding large arrays (bounds memory)
CHUNK = 2048


class BaseVAE(BaseEstimator):
    """Shared behaviour of :class:`~npvae.VAE` and :class:`~npvae.HierarchicalVAE`."""

    # ------------------------------------------------------------ construction
    def _likelihood(self):
        return make_likelihood(self.likelihood, obs_variance=self.obs_variance,
                               obs_logvar=self.obs_logvar, n_levels=self.n_levels,
                               allow_nonbinary=self.allow_nonbinary)

    def _check_settings(self):
        self._dtype = check_dtype(self.dtype)
        check_positive_int(self.n_samples, "n_samples")
        if not (np.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"beta must be a finite number >= 0, got {self.beta!r}")
        if self.objective not in ("elbo", "iwae"):
            raise ValueError(f"objective must be 'elbo' or 'iwae', got {self.objective!r}")
        check_positive_int(self.k, "k")
        if self.objective == "iwae" and self.beta != 1:
            raise ValueError("beta weights the KL of the ELBO objective; the IWAE bound "
                             "(objective='iwae') needs beta=1")
        self._lik = self._likelihood()

    def initialize(self, n_features):
        """Create ``params_`` for data of ``n_features`` dimensions; returns ``self``.

        Parameters are drawn from ``random_state`` (MATH §1 initialisers).  The
        model's noise generator ``rng_`` is created here too.
        """
        n_features = check_positive_int(n_features, "n_features")
        self._check_settings()
        self.rng_ = np.random.default_rng(self.random_state)
        self.layout_ = ParamLayout(self._param_shapes(n_features))
        self.flat_params_ = self.layout_.allocate(self._dtype)
        self.params_ = self.layout_.views(self.flat_params_)
        self._init_params(self.params_, self.rng_)
        self._lik.init_params(self.params_)
        self.n_features_in_ = n_features
        self.optimizer_state_ = None
        self.history_ = []
        self.n_iter_ = 0
        return self

    def _grad_buffer(self):
        """The flat gradient workspace ``(P,)``, reused across steps.

        Every entry is overwritten by each backward pass; the public
        :meth:`loss_and_grads` hands out a copy.
        """
        buf = getattr(self, "_grad_ws", None)
        if buf is None or buf.shape != (self.layout_.size,) or buf.dtype != self._dtype:
            buf = self._grad_ws = self.layout_.allocate(self._dtype)
        return buf

    def _check_fitted(self):
        if not hasattr(self, "params_"):
            raise ValueError(f"this {type(self).__name__} has no parameters yet: call "
                             "initialize(n_features) or fit(X) first")
        # settings may have changed through set_params; the likelihood object follows them
        self._check_settings()

    def _check_X(self, X, check_values=True):
        """Validated data converted to the model's dtype (or integers for categorical)."""
        X = check_data(X, self.n_features_in_)
        if check_values:
            self._lik.check_data(X)
        return self._lik.convert(X, self._dtype)

    # ------------------------------------------------------------------ noise
    def draw_noise(self, n_examples, n_samples=None, random_state=None):
        """Standard normal noise of the shape ``loss_and_grads`` takes.

        Uses ``random_state`` (a seed or Generator) when given, else ``rng_``.
        """
        rng = self.rng_ if random_state is None else np.random.default_rng(random_state)
        S = self._n_noise() if n_samples is None else n_samples
        return self._draw(rng, self._noise_shape(S, n_examples))

    def _n_noise(self):
        """Noise samples per example of the training objective: ``k`` for IWAE, else ``S``."""
        return self.k if self.objective == "iwae" else self.n_samples

    def _draw(self, rng, shape):
        if isinstance(shape, list):
            return [rng.standard_normal(s, dtype=self._dtype) for s in shape]
        return rng.standard_normal(shape, dtype=self._dtype)

    def _check_eps(self, eps, n_examples):
        return check_noise(eps, self._noise_shape(1, n_examples)[1:], self._dtype)

    # -------------------------------------------------------------- objective
    def loss_and_grads(self, X, eps, check_input=True):
        """The training loss and its gradient: the negative (β-weighted) ELBO
        (MATH §5), or with ``objective="iwae"`` the negative IWAE bound ``−L_K``
        (MATH §6), averaged over examples.

        Parameters
        ----------
        X : (N, D) data.
        eps : (S, N, Z) standard normal noise (MATH §2) — ``S = k`` samples for
            IWAE; with it fixed the loss is a deterministic function of ``params_``.
        check_input : validate ``X`` and ``eps`` (skip only on a hot path whose
            data is known to be valid).

        Returns
        -------
        loss : float
        grads : dict with the keys and shapes of ``params_``.
        """
        self._check_fitted()
        X = self._check_X(X) if check_input else self._lik.convert(X, self._dtype)
        if check_input:
            eps = self._check_eps(eps, X.shape[0])
        loss, flat_grad, _ = self._objective(X, eps, self.beta, need_grads=True)
        if flat_grad is getattr(self, "_grad_ws", None):
            flat_grad = flat_grad.copy()          # the workspace is reused by the next call
        return loss, self.layout_.views(flat_grad)

    def elbo_terms(self, X, eps):
        """Per-example terms ``{"reconstruction": (N,), "kl": (N,)}`` (MATH §5).

        ``reconstruction`` is ``(1/S) Σ_s log p(x|z_s)``; the ELBO is
        ``reconstruction − kl`` and the loss ``−mean(reconstruction − β kl)``.
        """
        self._check_fitted()
        X = self._check_X(X)
        eps = self._check_eps(eps, X.shape[0])
        _, _, terms = self._objective(X, eps, self.beta, need_grads=False)
        return terms

    def _objective(self, X, eps, beta, need_grads=True):
        """The training objective selected by ``objective``; returns ``(loss, flat_grad, terms)``."""
        if self.objective == "iwae":
            return self._iwae_objective(X, eps, need_grads)
        return self._elbo_objective(X, eps, beta, need_grads)

    def _iwae_objective(self, X, eps, need_grads=True):
        """``−(1/N) Σ_n L_K(x_n)`` with ``L_K = logsumexp_k log w_k − log K`` and its
        gradient ``Σ_k w̃_k ∇ log w_k``, ``w̃ = softmax_k(log w)`` (MATH §6; Burda et al. 2016).

        ``terms`` holds ``iwae`` (L_K per example) and the Monte Carlo ELBO parts.
        """
        log_w, parts, cache = self._log_weights_forward(X, eps)            # (K, N)
        K, N = log_w.shape
        bound = logsumexp(log_w.astype(np.float64), axis=0) - math.log(K)   # (N,)
        terms = {"iwae": bound, "reconstruction": parts["log_px"].mean(axis=0),
                 "kl": (parts["log_q"] - parts["log_pz"]).mean(axis=0),
                 "elbo": log_w.mean(axis=0)}
        loss = float(-bound.mean())
        if not need_grads:
            return loss, None, terms
        w_tilde = softmax(log_w, axis=0)                                    # (K, N)
        flat = self._log_weights_backward((-w_tilde / N).astype(self._dtype), cache)
        return loss, flat, terms

    def log_weights(self, X, eps):
        """Importance log-weights ``log w_k = log p(x, z_k) − log q(z_k|x)`` ``(K, N)``
        at ``z_k`` from the noise ``eps`` (MATH §6)."""
        self._check_fitted()
        X = self._check_X(X)
        eps = self._check_eps(eps, X.shape[0])
        return self._log_weights_forward(X, eps)[0]

    def log_likelihood(self, X, n_importance=5000, random_state=None, max_rows=8192):
        """Importance-sampled ``log p̂(x) = logsumexp_k log w_k − log K`` per example
        ``(N,)`` (MATH §6; Burda et al. 2016, §5), in nats.

        Evaluated in chunks of at most ``max_rows`` (examples × samples) decoder
        rows at a time, so memory stays bounded for any ``K``.  Noise from
        ``random_state`` or ``rng_``.
        """
        self._check_fitted()
        X = self._check_X(X)
        K = check_positive_int(n_importance, "n_importance")
        rng = self.rng_ if random_state is None else np.random.default_rng(random_state)
        k_chunk = min(K, max_rows)
        n_chunk = max(1, max_rows // k_chunk)
        out = np.empty(X.shape[0], dtype=np.float64)
        for start in range(0, X.shape[0], n_chunk):
            xb = X[start:start + n_chunk]
            total = np.full(xb.shape[0], -np.inf)
            for k0 in range(0, K, k_chunk):
                eps = self._draw(rng, self._noise_shape(min(k_chunk, K - k0), xb.shape[0]))
                log_w = self._log_weights_forward(xb, eps)[0].astype(np.float64)
                total = np.logaddexp(total, logsumexp(log_w, axis=0))
            out[start:start + n_chunk] = total - math.log(K)
        return out

    def active_units(self, X, threshold=0.01):
        """Active latent units per stochastic level (MATH §6; Burda et al. 2016):
        unit ``u`` is active when ``Cov_x(E_q[u]) > threshold``.  Returns a list
        of counts, one per level (one entry for the VAE)."""
        self._check_fitted()
        X = self._check_X(X)
        return [int(np.sum(np.var(m.astype(np.float64), axis=0) > threshold))
                for m in self._posterior_means(X)]

    # -------------------------------------------------------------- training
    def fit(self, X, y=None, *, epochs=None, batch_size=None, learning_rate=None, **kwargs):
        """Train from fresh parameters with the trainer of :mod:`npvae.training`; returns ``self``.

        ``epochs``, ``batch_size`` and ``learning_rate`` default to the
        constructor's values; further keyword arguments go to
        :func:`npvae.training.train`.  With ``batch_transform`` (e.g. dynamic
        binarisation of uint8 pixels, MATH §12) ``X`` may be raw data: the
        checks and the decoder's output bias use transformed examples.
        """
        from .training import train

        X = check_data(X)
        self.initialize(X.shape[1])
        transform = kwargs.get("batch_transform")
        if transform is None:
            self._lik.check_data(X)
            self._set_output_bias(X)
        else:   # e.g. dynamic binarisation of grey levels: look at transformed data
            sample = transform(X[:10000], np.random.default_rng(0))
            self._lik.check_data(sample, name="the transformed X")
            self._set_output_bias(sample)
        train(self, X, epochs=self.epochs if epochs is None else epochs,
              batch_size=self.batch_size if batch_size is None else batch_size,
              learning_rate=self.learning_rate if learning_rate is None else learning_rate,
              **kwargs)
        return self

    def partial_fit(self, X, y=None):
        """One pass of minibatch updates over ``X`` (initialising on first call); returns ``self``."""
        from .training import train

        X = check_data(X, getattr(self, "n_features_in_", None))
        if not hasattr(self, "params_"):
            self.initialize(X.shape[1])
            self._lik.check_data(X)
            self._set_output_bias(X)
        train(self, X, epochs=1, batch_size=self.batch_size, learning_rate=self.learning_rate)
        return self

    def _set_output_bias(self, X):
        """Decoder output bias at the data mean's logit (MATH §1; Burda et al. 2016)."""
        bias = self._lik.output_bias(X)
        if bias is not None and "dec_out_b" in self.params_:
            self.params_["dec_out_b"][...] = bias

    # -------------------------------------------------------------- decoder
    # Shared by every model: the decoder ``p(x|z)`` reads the bottom latent and
    # is named ``dec_W{i}``, ``dec_b{i}``, ``dec_out_W``, ``dec_out_b``.
    def _decoder_weights(self):
        P = self.params_
        hidden = [(P[f"dec_W{i}"], P[f"dec_b{i}"]) for i in range(len(self._dec_sizes()))]
        return hidden + [(P["dec_out_W"], P["dec_out_b"])]

    def _decoder_activations(self):
        return [self.activation] * len(self._dec_sizes()) + ["identity"]

    def _decoder_forward(self, z, X):
        """``log p(x|z_s)`` ``(S, N)`` for latents ``z (S, N, Z)`` (MATH §4)."""
        S, N, Z = z.shape
        out, dec_c = mlp_forward(z.reshape(S * N, Z), self._decoder_weights(),
                                 self._decoder_activations())                  # (S·N, D·…)
        out = out.reshape((S, N) + self._lik.output_shape(self.n_features_in_))
        log_px, lik_c = self._lik.log_prob_forward(out, X, self.params_)       # (S, N)
        return log_px, (dec_c, lik_c, z.shape)

    def _decoder_backward(self, dlog_px, cache, G):
        """Backward of :meth:`_decoder_forward`; returns ``dz (S, N, Z)``."""
        dec_c, lik_c, z_shape = cache
        S, N, Z = z_shape
        dout, dlik = self._lik.log_prob_backward(dlog_px, lik_c)
        for name, g in dlik.items():
            G[name][...] = g
        dz, _ = mlp_backward(dout.reshape(S * N, -1), dec_c,                  # (S·N, Z)
                             outs=self._grad_views(G, "dec", len(self._dec_sizes()), with_out=True))
        return dz.reshape(S, N, Z)

    @staticmethod
    def _grad_views(G, prefix, n_hidden, with_out):
        """``[(dW_i, db_i), ...]`` views of the gradient buffer for an MLP's layers,
        for the matrix products to write into."""
        views = [(G[f"{prefix}_W{i}"], G[f"{prefix}_b{i}"]) for i in range(n_hidden)]
        if with_out:
            views.append((G[f"{prefix}_out_W"], G[f"{prefix}_out_b"]))
        return views

    # ----------------------------------------------------------------- scores
    def score_samples(self, X, random_state=None):
        """The ELBO per example ``(N,)`` with ``β = 1`` and fresh noise (MATH §5).

        A lower bound on ``log p(x)`` in nats; noise from ``random_state`` or ``rng_``.
        """
        self._check_fitted()
        X = self._check_X(X)
        rng = self.rng_ if random_state is None else np.random.default_rng(random_state)
        out = np.empty(X.shape[0], dtype=np.float64)
        for start in range(0, X.shape[0], CHUNK):
            xb = X[start:start + CHUNK]
            eps = self._draw(rng, self._noise_shape(self.n_samples, xb.shape[0]))
            _, _, terms = self._elbo_objective(xb, eps, 1.0, need_grads=False)
            out[start:start + CHUNK] = terms["elbo"]
        return out

    def score(self, X, y=None, random_state=None):
        """Mean ELBO over ``X`` in nats per example (MATH §5)."""
        return float(np.mean(self.score_samples(X, random_state=random_state)))
