"""What every npvae model shares: the scikit-learn estimator plumbing.

A model subclass describes its parameters (``_param_shapes``,
``_init_params``), the shape of its noise (``_noise_shape``) and its objective
with the hand-written gradient (``_objective``).  Everything public —
``initialize``, ``loss_and_grads``, ``fit``, ``score_samples``, ``sample``, … —
is built here from those, with input validation.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from ._validation import check_data, check_dtype, check_noise, check_positive_int
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
        S = self.n_samples if n_samples is None else n_samples
        return self._draw(rng, self._noise_shape(S, n_examples))

    def _draw(self, rng, shape):
        if isinstance(shape, list):
            return [rng.standard_normal(s, dtype=self._dtype) for s in shape]
        return rng.standard_normal(shape, dtype=self._dtype)

    def _check_eps(self, eps, n_examples):
        return check_noise(eps, self._noise_shape(1, n_examples)[1:], self._dtype)

    # -------------------------------------------------------------- objective
    def loss_and_grads(self, X, eps, check_input=True):
        """Negative (β-weighted) ELBO averaged over examples, and its gradient (MATH §5).

        Parameters
        ----------
        X : (N, D) data.
        eps : (S, N, Z) standard normal noise (MATH §2): with it fixed the loss
            is a deterministic function of ``params_``.
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

    # -------------------------------------------------------------- training
    def fit(self, X, y=None, *, epochs=None, batch_size=None, learning_rate=None, **kwargs):
        """Train from fresh parameters with the trainer of :mod:`npvae.training`; returns ``self``.

        ``epochs``, ``batch_size`` and ``learning_rate`` default to the
        constructor's values; further keyword arguments go to
        :func:`npvae.training.train`.
        """
        from .training import train

        X = check_data(X)
        self.initialize(X.shape[1])
        self._lik.check_data(X)
        self._set_output_bias(X)
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
            _, _, terms = self._objective(xb, eps, 1.0, need_grads=False)
            out[start:start + CHUNK] = terms["elbo"]
        return out

    def score(self, X, y=None, random_state=None):
        """Mean ELBO over ``X`` in nats per example (MATH §5)."""
        return float(np.mean(self.score_samples(X, random_state=random_state)))
