"""What every npvae model shares: validation, objectives, scoring and training,
built on the estimator protocol of :mod:`npvae.models.sklearn_api` and implementing
the trainer's contract :class:`npvae.models.protocol.TrainableModel`.

A model subclass describes its networks and parameters (``_build``,
``_param_shapes``, ``_init_params``), the shape of its noise
(``noise_shape``), its ELBO with the hand-written gradient
(``_elbo_objective``), its importance log-weights ``log w = log p(x, z) −
log q(z|x)`` with their gradient (``log_weights_forward`` /
``log_weights_backward``) and its posterior means per level
(``_posterior_means``).  Every internal method takes an optional
``condition`` ``c (N, C)`` (the conditional VAE's one-hot label; None
otherwise), passed explicitly through the objective.  The public methods take
labels ``y=None`` (scikit-learn's convention) and turn them into the condition
once, at the boundary (:meth:`BaseVAE.labels_to_condition`).  Everything public —
``initialize``, ``loss_and_grads``, ``fit``, ``score_samples``,
``log_likelihood``, ``active_units`` … — is built here from those, with
input validation, and the objectives of :mod:`npvae.objectives`.
"""
from __future__ import annotations

import numpy as np

from .. import gradient_estimators, objectives, threads, training
from .._exclusive import check_not_busy, one_at_a_time
from .._validation import (check_defined, check_dtype, check_features, check_finite,
                           check_noise, check_number, check_positive_int)
from ..optim import OPTIMIZERS
from ..distributions.likelihoods import make_likelihood
from ..params import ParamViews
from .sklearn_api import EstimatorMixin, not_fitted_error
from .protocol import TrainableModel
from .output_bias import start_output_bias
from .registry import register_model
from .sizes import check_rows_fit, planned_layout

#: rows per chunk when scoring or encoding large arrays (bounds memory)
CHUNK = 2048
#: seed of the evaluation noise that ``score_samples``/``score`` use by default
EVALUATION_SEED = 0


class BaseVAE(TrainableModel, EstimatorMixin):
    """Shared behaviour of :class:`~npvae.VAE`, :class:`~npvae.HierarchicalVAE` and
    :class:`~npvae.ConditionalVAE`."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        register_model(cls)                   # checkpoints find models by class name

    # ------------------------------------------------------------ construction
    def _check_settings(self):
        """Validate the constructor's settings and build the networks from them."""
        self._dtype = check_dtype(self.dtype)
        check_positive_int(self.n_samples, "n_samples")
        if not (np.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"beta must be a finite number >= 0, got {self.beta!r}")
        if self.objective not in ("elbo", "iwae"):
            raise ValueError(f"objective must be 'elbo' or 'iwae', got {self.objective!r}")
        check_positive_int(self.k, "k")
        check_number(self.learning_rate, "learning_rate")
        check_positive_int(self.batch_size, "batch_size")
        check_positive_int(self.epochs, "epochs", minimum=0)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of "
                             f"{tuple(OPTIMIZERS)}")
        if self.objective == "iwae" and self.beta != 1:
            raise ValueError("beta weights the KL of the ELBO objective; the IWAE bound "
                             "(objective='iwae') needs beta=1")
        self._lik = make_likelihood(self.likelihood, self.likelihood_params)
        self._build()
        self._built_for = repr(sorted(self.get_params(deep=False).items()))

    def initialize(self, n_features):
        """Create ``params_`` for data of ``n_features`` dimensions; returns ``self``.

        Parameters are drawn from ``random_state`` (docs/01-dense-layers.md).  The
        model's noise generator ``rng_`` is created here too.
        """
        layout = self._planned_layout(n_features)
        self.rng_ = np.random.default_rng(self.random_state)
        self.layout_ = layout
        self.flat_params_ = self.layout_.allocate(self._dtype)
        self.params_ = ParamViews(self.layout_, self.flat_params_)
        self._init_params(self.params_, self.rng_)
        self._lik.init_params(self.params_)
        self.n_features_in_ = n_features
        self.optimizer_state_ = None
        self.history_ = []
        self.n_iter_ = 0
        return self

    _planned_layout = planned_layout        # (n_features) -> the layout, nothing allocated

    def _grad_buffer(self):
        """The flat gradient workspace ``(P,)`` and its named views, reused across steps.

        Every entry is overwritten by each backward pass (but the slices of weights whose
        gradient :meth:`factored_objective` leaves as factors); :meth:`loss_and_grads` hands out a copy.
        """
        buf = getattr(self, "_grad_ws", None)
        if buf is None or buf.shape != (self.layout_.size,) or buf.dtype != self._dtype:
            buf = self._grad_ws = self.layout_.allocate(self._dtype)
            self._grad_views_ws = self.layout_.views(buf)
        return buf, self._grad_views_ws

    def check_fitted(self):
        """The boundary check of every public method: parameters exist, the settings are
        valid, and they still describe the parameters' architecture and dtype.

        ``set_params`` may change any setting (scikit-learn's convention is to
        validate at use, not at ``set_params``): the networks are rebuilt from the
        settings when they changed, and an architecture or dtype that no longer
        matches ``params_`` is an error, never a kernel reading out of bounds.
        """
        check_not_busy(self, "a method")
        if not hasattr(self, "flat_params_"):
            raise not_fitted_error(f"this {type(self).__name__} has no parameters yet: call "
                                 "initialize(n_features) or fit(X) first")
        if repr(sorted(self.get_params(deep=False).items())) != getattr(self, "_built_for", None):
            self._check_settings()
        flat = self.flat_params_
        if (not isinstance(flat, np.ndarray) or flat.dtype != self._dtype
                or flat.shape != (self.layout_.size,)
                or self._param_shapes(self.n_features_in_) != self.layout_.shapes):
            raise ValueError(
                f"the settings of this {type(self).__name__} (architecture or dtype) no longer "
                "match its parameters: they were changed after the parameters were created "
                "(set_params, or flat_params_ replaced); fit again, or call "
                "initialize(n_features)")
        if self.params_.flat is not flat:        # flat_params_ replaced by an equal-shaped array
            self.params_ = ParamViews(self.layout_, flat)

    def __getstate__(self):
        """Pickle and ``copy.deepcopy``: ``params_`` (views) and workspaces (the attributes
        named ``*_ws``) are rebuilt on load as views of the copied ``flat_params_``, so a
        copy trains and saves itself."""
        return {k: v for k, v in super().__getstate__().items()
                if k != "params_" and not k.endswith("_ws")}

    def __setstate__(self, state):
        super().__setstate__(state)
        if "flat_params_" in state:
            self.params_ = ParamViews(self.layout_, self.flat_params_)

    def validate_input(self, X, check_values=True, reset=False):
        """Data ``(N, D)``: 2-D, real, numeric, dense, finite once converted to the
        model's dtype (one-line messages), then the number (and names) of features, and
        the likelihood's support."""
        X = check_features(self, X, reset, self._dtype)
        if check_values:
            self._lik.check_data(X)
        return self._lik.convert(X, self._dtype)

    @property
    def _n_features_out(self):
        """Columns of :meth:`transform` (for ``get_feature_names_out``)."""
        return self.n_latent

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = [str(self.dtype)] if self.dtype in (
            "float32", "float64") else ["float64"]
        tags.non_deterministic = False
        return tags

    def labels_to_condition(self, y, n):
        return None                 # unconditional: ``y`` ignored (scikit-learn's convention)

    # ------------------------------------------------------------------ noise
    def draw_noise(self, n_examples, n_samples=None, random_state=None):
        """Standard normal noise of the shape ``loss_and_grads`` takes.

        Uses ``random_state`` (a seed or Generator) when given, else ``rng_``.
        """
        rng = self.rng_ if random_state is None else np.random.default_rng(random_state)
        S = self._n_noise() if n_samples is None else n_samples
        return self._draw(rng, self.noise_shape(S, n_examples))

    def _n_noise(self):
        """Noise samples per example of the training objective: ``k`` for IWAE, else ``S``."""
        return self.k if self.objective == "iwae" else self.n_samples

    def _draw(self, rng, shape):
        if isinstance(shape, list):
            return [rng.standard_normal(s, dtype=self._dtype) for s in shape]
        return rng.standard_normal(shape, dtype=self._dtype)

    def _check_eps(self, eps, n_examples):
        return check_noise(eps, self.noise_shape(1, n_examples)[1:], self._dtype)

    def _evaluation_noise(self, X, n_samples):
        """Noise for scoring ``X``, a fixed function of each example
        (:func:`npvae.objectives.example_keyed_noise`)."""
        shape = self.noise_shape(n_samples, X.shape[0])
        levels = shape if isinstance(shape, list) else [shape]
        eps = objectives.example_keyed_noise(X, [s[2] for s in levels], n_samples,
                                             self._dtype, EVALUATION_SEED)
        return eps if isinstance(shape, list) else eps[0]

    # -------------------------------------------------------------- objective
    @one_at_a_time("loss_and_grads")                   # the gradient workspace is shared
    def loss_and_grads(self, X, eps, check_input=True, *, y=None):
        """The training loss and its gradient: the negative (β-weighted) ELBO
        (docs/05-elbo.md), or with ``objective="iwae"`` the negative IWAE bound
        ``−L_K`` (docs/06-importance-weighting.md), averaged over examples.

        Parameters
        ----------
        X : (N, D) data.
        eps : (S, N, Z) standard normal noise — ``S = k`` samples for IWAE; with it
            fixed the loss is a deterministic function of ``params_``.
        check_input : validate the values of ``X`` (support, finiteness); shapes
            are always checked.

        Returns
        -------
        loss : float
        grads : dict with the keys and shapes of ``params_``.
        """
        self.check_fitted()
        X = self.validate_input(X, check_values=check_input)
        condition = self.labels_to_condition(y, X.shape[0])
        eps = self._check_eps(eps, X.shape[0])
        loss, flat_grad, _ = self.training_objective(X, eps, self.beta, True, condition)
        check_defined(np.array([loss]), "the loss")
        return loss, self.layout_.views(flat_grad.copy())   # the workspace is reused

    def elbo_terms(self, X, eps, *, y=None):
        """Per-example terms ``{"reconstruction": (N,), "kl": (N,), "elbo": (N,)}``
        (docs/05-elbo.md): ``reconstruction = (1/S) Σ_s log p(x|z_s)``,
        ``elbo = reconstruction − kl``; the loss is ``−mean(reconstruction − β kl)``."""
        self.check_fitted()
        X = self.validate_input(X)
        condition = self.labels_to_condition(y, X.shape[0])
        eps = self._check_eps(eps, X.shape[0])
        terms = self.training_objective(X, eps, self.beta, False, condition)[2]
        return {k: check_defined(v, k) for k, v in terms.items()}

    def training_objective(self, X, eps, beta, need_grads=True, condition=None):
        """The training objective selected by ``objective``; returns ``(loss, flat_grad, terms)``."""
        if self.objective == "iwae":
            return self._iwae_objective(X, eps, need_grads, condition)
        return self._elbo_objective(X, eps, beta, need_grads, condition)

    def _iwae_objective(self, X, eps, need_grads=True, condition=None):
        """``−(1/N) Σ_n L_K(x_n)`` and its gradient ``Σ_k w̃_k ∇ log w_k``
        (docs/06-importance-weighting.md; Burda et al. 2016), or the encoder's by STL/DReG.

        ``terms`` holds ``iwae`` (``L_K`` per example) and the Monte Carlo ELBO parts.
        """
        log_w, parts, cache = self.log_weights_forward(X, eps, condition)      # (K, N)
        bound, b_c = objectives.iwae_bound_forward(log_w)                       # (N,)
        terms = {"iwae": bound, "reconstruction": parts["log_px"].mean(axis=0),
                 "kl": (parts["log_q"] - parts["log_pz"]).mean(axis=0),
                 "elbo": log_w.mean(axis=0)}
        loss = float(-bound.mean())
        if not need_grads:
            return loss, None, terms
        return loss, gradient_estimators.iwae_backward(self, b_c, cache), terms

    def log_weights(self, X, eps, *, y=None):
        """Importance log-weights ``log w_k = log p(x, z_k) − log q(z_k|x)`` ``(K, N)``
        at ``z_k`` from the noise ``eps`` (docs/06-importance-weighting.md)."""
        self.check_fitted()
        X = self.validate_input(X)
        condition = self.labels_to_condition(y, X.shape[0])
        eps = self._check_eps(eps, X.shape[0])
        return check_defined(self.log_weights_forward(X, eps, condition)[0], "log_weights")

    def log_likelihood(self, X, n_importance=5000, random_state=None, max_rows=8192, *, y=None):
        """Importance-sampled ``log p̂(x) = logsumexp_k log w_k − log K`` per example
        ``(N,)`` in nats (docs/06-importance-weighting.md; Burda et al. 2016, §5).

        Evaluated in chunks of at most ``max_rows`` (examples × samples) decoder
        rows at a time, so memory stays bounded for any ``K``.  Noise from
        ``random_state`` or ``rng_``.
        """
        self.check_fitted()
        X = self.validate_input(X)
        condition = self.labels_to_condition(y, X.shape[0])
        K = check_positive_int(n_importance, "n_importance")
        max_rows = check_positive_int(max_rows, "max_rows")
        rng = self.rng_ if random_state is None else np.random.default_rng(random_state)

        @threads.timed(("log_likelihood", id(self), max_rows))
        def log_weights(rows, eps):
            c = None if condition is None else condition[rows]
            return self.log_weights_forward(X[rows], eps, c)[0]

        def draw(k, n):
            return self._draw(rng, self.noise_shape(k, n))

        return check_defined(objectives.log_likelihood_estimate(log_weights, draw, X.shape[0], K,
                                                           max_rows, self._dtype),
                        "log_likelihood")

    def active_units(self, X, threshold=0.01, *, y=None):
        """Active latent units per stochastic level (docs/06-importance-weighting.md;
        Burda et al. 2016): unit ``u`` is active when ``Cov_x(E_q[u]) > threshold``.
        Returns a list of counts, one per level (one entry for the VAE)."""
        self.check_fitted()
        X = self.validate_input(X)
        condition = self.labels_to_condition(y, X.shape[0])
        return objectives.active_units(self._posterior_means(X, condition), threshold)

    # -------------------------------------------------------------- training
    @one_at_a_time("fit")
    def fit(self, X, y=None, *, epochs=None, batch_size=None, learning_rate=None, **kwargs):
        """Train from fresh parameters with :func:`npvae.training.train`; returns ``self``.

        ``epochs``, ``batch_size`` and ``learning_rate`` default to the
        constructor's values; further keyword arguments go to
        :func:`npvae.training.train` (``X_val``, ``batch_transform``, ``run_dir``,
        ``progress=True`` for a progress bar, …).  With ``batch_transform``
        (e.g. dynamic binarisation of uint8 pixels) ``X`` may be raw data: the
        checks and the decoder's output bias use transformed examples.
        Not for concurrent use (:mod:`npvae._exclusive`).
        """
        X = check_features(self, X, True)
        self.initialize(X.shape[1])
        start_output_bias(self, X, kwargs.get("batch_transform"))
        training.train(self, X, y, epochs=self.epochs if epochs is None else epochs,
                       batch_size=self.batch_size if batch_size is None else batch_size,
                       learning_rate=self.learning_rate if learning_rate is None
                       else learning_rate, **kwargs)
        return self

    @one_at_a_time("partial_fit")
    def partial_fit(self, X, y=None):
        """One pass of minibatch updates over ``X`` (initialising on first call); returns ``self``."""
        first = not hasattr(self, "flat_params_")
        X = check_features(self, X, first)
        if first:
            self.initialize(X.shape[1])
            start_output_bias(self, X, None)
        training.train(self, X, y, epochs=1, batch_size=self.batch_size,
                       learning_rate=self.learning_rate)
        return self

    def _set_output_bias(self, X):
        """The decoder's output bias from data ``X`` as the likelihood proposes it (no checks:
        e.g. grey levels whose mean is the probability of a 1 under dynamic binarisation)."""
        bias = self._lik.output_bias(X)
        if bias is not None and "dec_out_b" in self.params_:
            self.params_["dec_out_b"][...] = bias

    # ----------------------------------------------------------------- scores
    def score_samples(self, X, random_state=None, *, y=None):
        """The ELBO per example ``(N,)`` with ``β = 1`` (docs/05-elbo.md), a lower bound
        on ``log p(x)`` in nats.

        By default the noise is a fixed function of each example (a generator keyed by
        its bytes): the score is deterministic, each example's depends on that example
        alone, and different examples get independent noise.  ``random_state`` (a seed or Generator) draws fresh,
        independent noise per example instead.
        """
        self.check_fitted()
        X = self.validate_input(X)
        condition = self.labels_to_condition(y, X.shape[0])
        rng = None if random_state is None else np.random.default_rng(random_state)
        out = np.empty(X.shape[0], dtype=self._dtype)
        for start in range(0, X.shape[0], CHUNK):
            xb = X[start:start + CHUNK]
            c = None if condition is None else condition[start:start + CHUNK]
            shape = self.noise_shape(self.n_samples, xb.shape[0])
            eps = (self._evaluation_noise(xb, self.n_samples) if rng is None
                   else self._draw(rng, shape))
            out[start:start + CHUNK] = self._elbo_objective(xb, eps, 1.0, False, c)[2]["elbo"]
        return check_defined(out, "score_samples")

    def score(self, X, y=None, random_state=None):
        """Mean ELBO over ``X`` in nats per example (docs/05-elbo.md); deterministic by
        default (see :meth:`score_samples`)."""
        return float(np.mean(self.score_samples(X, random_state=random_state, y=y)))

    # ------------------------------------------------------------- decoding
    def _decode_means(self, Z, condition=None):
        """Likelihood means ``(M, D)`` for decoder inputs ``Z (M, Z)``."""
        return self._lik.mean(self._decode(Z, condition), self.params_)

    def _decode(self, Z, condition=None):
        """The decoder's output for ``Z (M, Z)``, finite (else a ``ValueError``)."""
        check_rows_fit(self, Z.shape[0], f"decoding {Z.shape[0]:,} rows")
        u = Z if condition is None else np.concatenate([Z, condition.astype(Z.dtype)], axis=1)
        with np.errstate(over="ignore", invalid="ignore"):
            out = self._decoder.output(self.params_, u, self.n_features_in_)
        return check_finite(out, "the decoder's output")

