"""The conditional VAE (docs/08-conditional-vae.md; Sohn, Lee & Yan 2015, "Learning
Structured Output Representation using Deep Conditional Generative Models").

The condition ``c`` is a class label, one-hot encoded as ``(N, C)``.  It is
concatenated to the encoder's input and to the decoder's input:

* inference ``q(z|x, c) = N(μ(x ⊕ c), diag e^{λ(x ⊕ c)})``,
* generation ``p(x|z, c)`` from the decoder MLP reading ``z ⊕ c``,
* prior ``p(z|c) = N(0, I)``,

and the objective is ``E_{q(z|x,c)}[log p(x|z,c)] − KL(q(z|x,c) ‖ p(z|c))``, or its
importance-weighted version ``L_K``.  Sampling with a chosen label generates
that class, as the M2 model of Kingma, Rezende, Mohamed & Welling (2014) does
with its label variable.

Implementation: :class:`ConditionalVAE` is a :class:`~npvae.VAE` with ``C``
condition columns (``n_condition``): its first encoder layer and first decoder
layer have ``C`` extra input rows, and the one-hot ``c`` travels as the explicit
``condition`` argument of the VAE's objective, log-weights and scores.  The
condition is data, so its gradient is never formed (the encoder's first layer
runs with ``need_dx=False``) or is dropped (the decoder keeps the first ``Z``
columns of ``∂/∂(z ⊕ c)``).  The public methods take ``(X, y)`` and pass ``y`` to
the VAE's, which turn it into ``c`` once (``_condition``); ``score`` and
``transform`` also take ``y=None``, scikit-learn's convention;
``n_features_in_`` is the data dimension ``D``.

Shape legend: ``N`` batch, ``D`` data dimension, ``C`` number of classes, ``H``
hidden width, ``Z`` latent dimension, ``S`` Monte Carlo samples, ``K``
importance samples.
"""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax

from .._validation import check_data, check_positive_int
from .vae import VAE


def _as_labels(y, name="y"):
    """Integer labels from ``y`` (a scalar or a 1-D array of integer values)."""
    arr = np.asarray(y)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a label or a 1-D array of labels (N,), got shape "
                         f"{arr.shape}; pass class labels, not a one-hot matrix")
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if np.any(bad):
            raise ValueError(f"{name} must hold integer class labels, found "
                             f"{np.atleast_1d(arr[bad])[:3].tolist()}")
    return arr.astype(np.int64)


def _check_classes(classes):
    """Sorted unique integer classes ``(C,)`` from a list, tuple or array."""
    arr = _as_labels(classes, name="classes")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"classes must be a non-empty list of integer labels, got {classes!r}")
    return np.unique(arr)


class ConditionalVAE(VAE):
    """Conditional VAE with hand-written gradients (docs/08-conditional-vae.md; Sohn et al. 2015).

    ``q(z|x, c)``, ``p(x|z, c)``, ``p(z|c) = N(0, I)``; the one-hot label
    ``c (N, C)`` is concatenated to the inputs of the encoder and the decoder.
    The condition is passed explicitly through the objective (the ``condition``
    argument of every internal method of :class:`~npvae.VAE`), and
    :func:`npvae.training.train` batches the labels with the data.

    Parameters
    ----------
    classes : list of int or None
        The class labels.  ``None``: learned from ``y`` by :meth:`fit` (sorted
        unique labels) or by the first :meth:`partial_fit`.  Give them when a
        first batch may lack some classes.  After a fit with ``classes=None``,
        :meth:`get_params` reports the learned classes as a list of ints, so
        that checkpoints (and :func:`sklearn.base.clone`) carry them.
    n_latent, hidden_sizes, decoder_hidden_sizes, activation, likelihood,
    likelihood_params, posterior, n_samples,
    beta, objective, k, optimizer, learning_rate, batch_size, epochs, dtype,
    random_state, gradient_estimator :
        As for :class:`~npvae.VAE` (``objective="iwae"`` with ``k`` samples gives
        the conditional IWAE bound on ``log p(x|c)``, docs/06-importance-weighting.md).

    Attributes
    ----------
    classes_ : (C,) int64 array of the sorted class labels.
    n_classes_ : int, ``C``.
    n_features_in_ : int, the data dimension ``D`` (labels not included).
    params_ : as for the VAE; the first encoder layer (``enc_W0``, or
        ``enc_mu_W`` and ``enc_logvar_W`` without hidden layers) has ``D + C``
        rows, the last ``C`` reading the one-hot label; the first decoder layer
        (``dec_W0``, or ``dec_out_W``) has ``Z + C`` rows, likewise.
    """

    def __init__(self, n_latent=20, hidden_sizes=(400,), decoder_hidden_sizes=None,
                 activation="relu", likelihood="bernoulli", likelihood_params=None,
                 posterior="diagonal", n_samples=1, beta=1.0, objective="elbo", k=1,
                 optimizer="adam", learning_rate=1e-3, batch_size=100, epochs=10,
                 dtype="float64", random_state=None, classes=None, gradient_estimator="standard"):
        super().__init__(n_latent=n_latent, hidden_sizes=hidden_sizes,
                         decoder_hidden_sizes=decoder_hidden_sizes, activation=activation,
                         likelihood=likelihood, likelihood_params=likelihood_params,
                         posterior=posterior, n_samples=n_samples, beta=beta,
                         objective=objective, k=k, optimizer=optimizer,
                         learning_rate=learning_rate, batch_size=batch_size, epochs=epochs,
                         dtype=dtype, random_state=random_state,
                         gradient_estimator=gradient_estimator)
        self.classes = classes

    def get_params(self, deep=True):
        """Constructor parameters; with ``classes=None`` and a fitted model, the
        learned ``classes_`` as a list of ints (JSON-serialisable, so that a
        checkpoint rebuilds the same label encoding)."""
        params = super().get_params(deep=deep)
        if params.get("classes") is None and hasattr(self, "classes_"):
            params["classes"] = [int(c) for c in self.classes_]
        return params

    # ------------------------------------------------------------ construction
    def initialize(self, n_features, classes=None):
        """Create ``params_`` for data of ``n_features = D`` dimensions and the
        classes ``classes`` (default: the constructor's ``classes``); returns ``self``."""
        self._set_classes(classes)
        return super().initialize(n_features)

    def _planned_layout(self, n_features):
        """The layout for ``n_features`` and the classes; a model that has none yet (a
        checkpoint being read) takes the constructor's."""
        if not hasattr(self, "classes_"):
            self._set_classes(None)
        return super()._planned_layout(n_features)

    def _set_classes(self, classes):
        if classes is None:
            classes = self.classes
        if classes is None:       # fit / partial_fit learned them from y
            classes = self.__dict__.pop("_pending_classes", None)
        if classes is None:
            raise ValueError("ConditionalVAE needs its classes to create parameters: pass "
                             "classes=[...] to the constructor or to initialize, or call "
                             "fit(X, y)")
        self.classes_ = _check_classes(classes)
        self.n_classes_ = int(self.classes_.size)

    def check_fitted(self):
        super().check_fitted()
        if self.classes is not None and not np.array_equal(_check_classes(self.classes),
                                                           self.classes_):
            raise ValueError(f"classes was changed to {self.classes!r} after the parameters were "
                             f"created for {self.classes_.tolist()}; re-initialise or fit again")

    def n_condition(self):
        return self.n_classes_

    # ------------------------------------------------------------------ labels
    def _onehot(self, y, n):
        """One-hot ``(n, C)`` in the model's dtype for labels ``y`` (a scalar, used for
        every row, or ``(n,)``); unknown labels raise a ``ValueError`` naming them."""
        labels = _as_labels(y)
        n = check_positive_int(n, "n") if labels.ndim == 0 else n
        if labels.ndim == 0:
            labels = np.full(n, labels, dtype=np.int64)
        elif labels.shape[0] != n:
            raise ValueError(f"y has {labels.shape[0]} labels for {n} rows; give one label per "
                             "row, or a single label for all of them")
        idx = np.searchsorted(self.classes_, labels)
        idx_c = np.minimum(idx, self.n_classes_ - 1)
        unseen = self.classes_[idx_c] != labels
        if np.any(unseen):
            bad = np.unique(labels[unseen])
            raise ValueError(
                f"unseen label{'s' if bad.size > 1 else ''} {bad[:10].tolist()} in y: this "
                f"ConditionalVAE knows the classes {self.classes_.tolist()} (classes_); "
                "pass every class to the constructor (classes=[...]) before the first fit")
        out = np.zeros((n, self.n_classes_), dtype=self._dtype)
        out[np.arange(n), idx_c] = 1
        return out

    def labels_to_condition(self, y, n):
        """The condition of ``n`` rows, the one-hot labels ``(n, C)``: the one place labels
        become ``c`` (every public method passes its ``y`` here)."""
        if y is None:
            raise ValueError("this ConditionalVAE needs the labels y (the condition c of "
                             "q(z|x, c) and p(x|z, c)); score and transform alone take y=None")
        return self._onehot(y, n)

    def _data_and_condition(self, X, y, check_values=True):
        """Validated data ``(N, D)`` in the model's form and its one-hot condition ``(N, C)``."""
        self.check_fitted()
        X = self.validate_input(X, check_values)
        return X, self.labels_to_condition(y, X.shape[0])

    # ------------------------------------------------------------- objective
    # The methods below take y where the VAE's take none, in the VAE's order; each
    # passes it on to the VAE's, which turns it into c once (``_condition``).
    def loss_and_grads(self, X, y, eps, check_input=True):
        """The training loss and its gradient: the negative β-ELBO
        ``E_q[log p(x|z,c)] − β KL(q(z|x,c) ‖ N(0, I))`` averaged over examples
        (docs/08-conditional-vae.md), or the negative IWAE bound.

        ``X (N, D)``; ``y (N,)`` labels or one label for every row; ``eps (S, N, Z)``.
        Returns ``(loss, grads)`` with ``grads`` keyed like ``params_``.
        """
        return super().loss_and_grads(X, eps, check_input, y=y)

    def elbo_terms(self, X, y, eps):
        """Per-example ``{"reconstruction", "kl", "elbo"}`` ``(N,)``
        (docs/08-conditional-vae.md)."""
        return super().elbo_terms(X, eps, y=y)

    def log_weights(self, X, y, eps):
        """Importance log-weights ``(K, N)``:
        ``log w_k = log p(x|z_k,c) + log N(z_k; 0, I) − log q(z_k|x,c)``."""
        return super().log_weights(X, eps, y=y)

    def log_likelihood(self, X, y, n_importance=5000, random_state=None, max_rows=8192):
        """Importance-sampled conditional ``log p̂(x|c)`` per example ``(N,)``, in nats,
        in bounded-memory chunks (docs/06-importance-weighting.md)."""
        return super().log_likelihood(X, n_importance, random_state, max_rows, y=y)

    def active_units(self, X, y, threshold=0.01):
        """Active latent units: ``Cov_{x,c}(E_{q(u|x,c)}[u]) > threshold``; a list
        with one count (docs/06-importance-weighting.md)."""
        return super().active_units(X, threshold, y=y)

    def score_samples(self, X, y=None, random_state=None):
        """The conditional ELBO per example ``(N,)`` with ``β = 1``, a lower bound on
        ``log p(x|c)`` in nats; deterministic by default (see :meth:`VAE.score_samples`).

        Without labels (``y=None``, as a scikit-learn ``Pipeline`` calls it) the bound on
        ``log p(x) = log Σ_c p(c) p(x|c)`` under a uniform ``p(c)``:
        ``logsumexp_c ELBO(x, c) − log C`` (docs/08-conditional-vae.md#without-a-label).
        """
        if y is not None:
            return super().score_samples(X, random_state, y=y)
        return logsumexp(self._elbo_per_class(X, random_state), axis=0) - np.log(self.n_classes_)

    def _elbo_per_class(self, X, random_state):
        """``ELBO(x, c)`` ``(C, N)`` for every class, with the same noise for each."""
        return np.stack([super(ConditionalVAE, self).score_samples(X, random_state, y=c)
                         for c in self.classes_])

    # -------------------------------------------------------------- training
    def fit(self, X, y=None, *, epochs=None, batch_size=None, learning_rate=None, **kwargs):
        """Train from fresh parameters on ``X (N, D)`` with labels ``y (N,)``; returns ``self``.

        The classes are the constructor's, or else the sorted unique labels of
        ``y``.  Further keyword arguments (``X_val`` with ``y_val``,
        ``batch_transform``, ``run_dir``, …) go to :func:`npvae.training.train`.
        """
        X = check_data(X)
        labels = _as_labels(self._condition_needs(y, "fit"))
        if labels.ndim != 1 or labels.shape[0] != X.shape[0]:
            raise ValueError(f"fit needs one label per row of X: X has {X.shape[0]} rows, "
                             f"y has shape {labels.shape}")
        self._pending_classes = np.unique(labels) if self.classes is None else None
        return super().fit(X, labels, epochs=epochs, batch_size=batch_size,
                           learning_rate=learning_rate, **kwargs)

    def partial_fit(self, X, y=None):
        """One pass of minibatch updates over ``(X, y)``; returns ``self``.

        The first call creates the parameters and fixes the classes: the
        constructor's ``classes``, or else the labels of this first ``y``.
        """
        y = self._condition_needs(y, "partial_fit")
        if not hasattr(self, "params_"):
            self._pending_classes = np.unique(_as_labels(y)) if self.classes is None else None
        return super().partial_fit(X, y)

    @staticmethod
    def _condition_needs(y, what):
        if y is None:
            raise ValueError(f"ConditionalVAE.{what} needs the labels y: fit(X, y)")
        return y

    # ------------------------------------------------------------- public API
    def encode(self, X, y):
        """Parameters ``(mu (N, Z), logvar (N, Z))`` of ``q(z|x, c)``."""
        X, c = self._data_and_condition(X, y)
        return self._encode(X, c)

    def encode_cholesky(self, X, y):
        """``(mu (N, Z), L (N, Z, Z))`` of ``q(z|x, c) = N(μ, L Lᵀ)``."""
        X, c = self._data_and_condition(X, y)
        return self._encode_cholesky(X, c)

    def fit_transform(self, X, y=None, **fit_params):
        """``fit(X, y, **fit_params).transform(X, y)``."""
        return self.fit(X, y, **fit_params).transform(X, y)

    def transform(self, X, y=None):
        """Posterior means ``μ(x, c)`` ``(N, Z)``.

        Without labels (``y=None``, as a scikit-learn ``Pipeline`` calls it) the mean of
        ``q(z|x) = Σ_c p̂(c|x) q(z|x, c)`` with ``p̂(c|x) = softmax_c ELBO(x, c)``:
        ``Σ_c p̂(c|x) μ(x, c)`` (docs/08-conditional-vae.md#without-a-label).
        """
        if y is not None:
            return self.encode(X, y)[0]
        weights = softmax(self._elbo_per_class(X, None), axis=0)                 # (C, N)
        means = np.stack([self.encode(X, c)[0] for c in self.classes_])         # (C, N, Z)
        return np.einsum("cn,cnz->nz", weights, means).astype(means.dtype, copy=False)

    def decode(self, Z, y):
        """The likelihood's parameters of ``p(x|z, c)`` for latents ``Z (M, Z)`` and labels
        ``y`` (``(M,)`` or one label): logits ``(M, D)``, means ``(M, D)`` or logits
        ``(M, D, V)``."""
        self.check_fitted()
        Z = check_data(Z, self.n_latent, name="Z", dtype=self._dtype)
        return self._decode(Z, self.labels_to_condition(y, Z.shape[0]))

    def sample(self, n, y, random_state=None):
        """``n`` draws ``z ~ p(z|c) = N(0, I)`` decoded with the label(s) ``y`` to the
        likelihood's means ``(n, D)``: data of the chosen class.  ``y`` is one label
        for all ``n`` or an array of ``n`` labels."""
        self.check_fitted()
        n = check_positive_int(n, "n")
        c = self.labels_to_condition(y, n)                    # check the labels before drawing
        return self._sample(n, c, random_state)

    def reconstruct(self, X, y):
        """Likelihood means decoded from the posterior means, with the same labels ``(N, D)``."""
        X, c = self._data_and_condition(X, y)
        return self._decode_means(self._posterior_means(X, c)[0], c)


__all__ = ["ConditionalVAE"]
