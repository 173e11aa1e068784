"""The conditional VAE (MATH §8; Sohn, Lee & Yan 2015, "Learning Structured Output
Representation using Deep Conditional Generative Models").

The condition ``c`` is a class label, one-hot encoded as ``(N, C)``.  It is
concatenated to the encoder's input and to the decoder's input:

* inference ``q(z|x, c) = N(μ(x ⊕ c), diag e^{λ(x ⊕ c)})`` (MATH §2),
* generation ``p(x|z, c)`` from the decoder MLP reading ``z ⊕ c`` (MATH §4),
* prior ``p(z|c) = N(0, I)``,

and the objective is ``E_{q(z|x,c)}[log p(x|z,c)] − KL(q(z|x,c) ‖ p(z|c))``
(MATH §8), or its importance-weighted version ``L_K`` (MATH §6).  Sampling with a
chosen label generates that class, as the M2 model of Kingma, Rezende, Mohamed
& Welling (2014, "Semi-supervised Learning with Deep Generative Models") does
with its label variable.

Implementation: :class:`ConditionalVAE` is a :class:`~npvae.VAE` whose first
encoder layer has ``C`` extra input rows and whose first decoder layer has
``C`` extra input rows; every other formula and its hand-written gradient is
the VAE's.  The one-hot columns are data, so the gradient with respect to them
is never formed (the encoder's first layer is run with ``need_dx=False``) or
is dropped (the decoder's ``∂/∂(z ⊕ c)`` keeps its first ``Z`` columns).

How the label travels — the *augmented array*.  Internally the model's data is
``X_aug = [x, onehot(c)]`` of shape ``(N, D + C)``, the label block trailing.
That array is exactly the encoder's input; the decoder splits it into the data
``x (N, D)``, the only part the likelihood sees, and ``c (N, C)``, which it
concatenates to ``z``.  The VAE's objective, IWAE bound, log-weights,
``score_samples`` and ``log_likelihood`` therefore run unchanged on ``X_aug``,
and the label is passed through every call with the data (no hidden state).
The public methods take ``(X, y)`` with ``X (N, D)`` and labels ``y (N,)`` (or a
single label for every row), and ``n_features_in_`` is the data dimension
``D``, as for the VAE.

Training: :func:`train_conditional` runs :func:`npvae.training.train`, which
knows nothing of labels.  ``train()`` checks its data array against
``n_features_in_ = D``, shuffles and batches rows, and hands each batch to an
optional ``batch_transform``.  So ``train()`` is given the row *indices*
(a read-only broadcast ``(N, D)`` integer view, no copy of the data), and the
``batch_transform`` gathers the augmented rows ``[x, onehot(c)]`` of each batch
(applying the caller's own ``batch_transform``, e.g. dynamic binarisation, to
``x`` only).  Validation data is passed augmented.  Checkpoints written during
training are ordinary ConditionalVAE checkpoints (``n_features_in = D``).

Shape legend (MATH): ``N`` batch, ``D`` data dimension, ``C`` number of classes,
``H`` hidden width, ``Z`` latent dimension, ``S`` Monte Carlo samples, ``K``
importance samples.
"""
from __future__ import annotations

import numpy as np

from ._validation import check_data, check_positive_int
from .kernels import mlp_forward
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
    """Conditional VAE with hand-written gradients (MATH §8; Sohn et al. 2015).

    ``q(z|x, c)``, ``p(x|z, c)``, ``p(z|c) = N(0, I)``; the one-hot label
    ``c (N, C)`` is concatenated to the inputs of the encoder and the decoder.
    See the module docstring for how labels travel through the VAE's code and
    through :func:`npvae.training.train`.

    Parameters
    ----------
    classes : list of int or None
        The class labels.  ``None``: learned from ``y`` by :meth:`fit` (sorted
        unique labels) or by the first :meth:`partial_fit`.  Give them when a
        first batch may lack some classes.  After a fit with ``classes=None``,
        :meth:`get_params` reports the learned classes as a list of ints, so
        that checkpoints (and :func:`sklearn.base.clone`) carry them.
    n_latent, hidden_sizes, decoder_hidden_sizes, activation, likelihood,
    obs_variance, obs_logvar, n_levels, allow_nonbinary, posterior, n_samples,
    beta, objective, k, optimizer, learning_rate, batch_size, epochs, dtype,
    random_state :
        As for :class:`~npvae.VAE` (``objective="iwae"`` with ``k`` samples gives
        the conditional IWAE bound on ``log p(x|c)``, MATH §6).

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
                 activation="relu", likelihood="bernoulli", obs_variance="fixed", obs_logvar=0.0,
                 n_levels=256, allow_nonbinary=False, posterior="diagonal", n_samples=1,
                 beta=1.0, objective="elbo", k=1, optimizer="adam", learning_rate=1e-3,
                 batch_size=100, epochs=10, dtype="float64", random_state=None, classes=None):
        super().__init__(n_latent=n_latent, hidden_sizes=hidden_sizes,
                         decoder_hidden_sizes=decoder_hidden_sizes, activation=activation,
                         likelihood=likelihood, obs_variance=obs_variance, obs_logvar=obs_logvar,
                         n_levels=n_levels, allow_nonbinary=allow_nonbinary, posterior=posterior,
                         n_samples=n_samples, beta=beta, objective=objective, k=k,
                         optimizer=optimizer, learning_rate=learning_rate,
                         batch_size=batch_size, epochs=epochs, dtype=dtype,
                         random_state=random_state)
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
        if classes is None:
            classes = self.classes
        if classes is None:
            raise ValueError("ConditionalVAE needs its classes to create parameters: pass "
                             "classes=[...] to the constructor or to initialize, or call "
                             "fit(X, y)")
        self.classes_ = _check_classes(classes)
        self.n_classes_ = int(self.classes_.size)
        return super().initialize(n_features)

    def _check_fitted(self):
        super()._check_fitted()
        if self.classes is not None and not np.array_equal(_check_classes(self.classes),
                                                           self.classes_):
            raise ValueError(f"classes was changed to {self.classes!r} after the parameters were "
                             f"created for {self.classes_.tolist()}; re-initialise or fit again")

    def _param_shapes(self, n_features):
        """The VAE's shapes with ``C`` more input rows in the first encoder layer
        (input ``x ⊕ c``, ``D + C``) and the first decoder layer (``z ⊕ c``, ``Z + C``)."""
        shapes = super()._param_shapes(n_features)
        C = self.n_classes_
        if self._enc_sizes():
            first = ["enc_W0"]
        else:                                     # both heads read the input directly
            first = ["enc_mu_W", f"enc_{self._post.head}_W"]
        first.append("dec_W0" if self._dec_sizes() else "dec_out_W")
        for name in first:
            rows, cols = shapes[name]
            shapes[name] = (rows + C, cols)
        return shapes

    # ------------------------------------------------------------------ labels
    def _onehot(self, y, n):
        """One-hot ``(n, C)`` in the model's dtype for labels ``y`` (a scalar, used for
        every row, or ``(n,)``); unknown labels raise a ``ValueError`` naming them."""
        labels = _as_labels(y)
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

    def _augment(self, X, y):
        """``X_aug = [X, onehot(y)]`` ``(N, D + C)``, the model's internal data form
        (checked and converted by :meth:`_check_X`)."""
        X = check_data(X, self.n_features_in_)
        return np.concatenate([X, self._onehot(y, X.shape[0])], axis=1)

    def _split(self, X_aug):
        """``(x (N, D), c (N, C))`` from the augmented array, ``x`` contiguous."""
        D = self.n_features_in_
        return np.ascontiguousarray(X_aug[:, :D]), X_aug[:, D:]

    def _check_X(self, X, check_values=True):
        """Validate and convert an *augmented* array ``[x, onehot(c)]`` ``(N, D + C)``:
        ``x`` by the likelihood, the label block as one-hot rows.

        This is the data form the inherited machinery (objective, log-weights,
        scores) and :func:`npvae.training.train`'s ``X_val`` work on; the public
        methods build it from ``(X, y)`` with :meth:`_augment`.
        """
        D, C = self.n_features_in_, self.n_classes_
        X = np.asarray(X)
        if X.ndim == 2 and X.shape[1] != D + C:
            raise ValueError(f"an augmented array [x, onehot(c)] must have D + C = {D} + {C} "
                             f"columns, got {X.shape[1]}; the public methods take (X, y)")
        X = check_data(X, D + C)
        if check_values:
            self._lik.check_data(X[:, :D])
            c = X[:, D:]
            if not (np.all((c == 0) | (c == 1)) and np.all(c.sum(axis=1) == 1)):
                raise ValueError("the label block of an augmented array must hold one-hot rows")
        return self._lik.convert(X, self._dtype)

    # ---------------------------------------------------------------- decoder
    def _decoder_forward(self, z, X):
        """``log p(x|z_s, c)`` ``(S, N)`` for ``z (S, N, Z)`` and the augmented data
        ``X = [x, c]``: the decoder MLP reads ``z ⊕ c`` ``(S·N, Z + C)`` (MATH §8), the
        likelihood (MATH §4) sees only ``x``."""
        S, N, Z = z.shape
        x, c = self._split(X)
        u = np.empty((S, N, Z + self.n_classes_), dtype=z.dtype)             # z ⊕ c
        u[..., :Z] = z
        u[..., Z:] = c                                                         # broadcast over S
        out, dec_c = mlp_forward(u.reshape(S * N, -1), self._decoder_weights(),
                                 self._decoder_activations())                  # (S·N, D·…)
        out = out.reshape((S, N) + self._lik.output_shape(self.n_features_in_))
        log_px, lik_c = self._lik.log_prob_forward(out, x, self.params_)       # (S, N)
        return log_px, (dec_c, lik_c, u.shape)

    def _decoder_backward(self, dlog_px, cache, G):
        """Backward of :meth:`_decoder_forward`; returns ``dz (S, N, Z)``: the VAE's
        backward gives ``∂/∂(z ⊕ c)`` ``(S, N, Z + C)``, whose label columns are dropped."""
        du = super()._decoder_backward(dlog_px, cache, G)                     # (S, N, Z + C)
        return np.ascontiguousarray(du[..., :self.n_latent])

    def _posterior_means(self, X):
        return [self._encoder_heads(X)[0]]

    # ------------------------------------------------------------- objective
    def loss_and_grads(self, X, y, eps, check_input=True):
        """The training loss and its gradient (MATH §8 with §5, or §6 for IWAE):
        the negative β-ELBO ``E_q[log p(x|z,c)] − β KL(q(z|x,c) ‖ N(0, I))``
        averaged over examples.

        Parameters
        ----------
        X : (N, D) data.
        y : (N,) class labels, or one label for every row.
        eps : (S, N, Z) standard normal noise (``S = k`` for IWAE).
        check_input : validate ``X`` and ``eps`` (labels are always checked).

        Returns ``(loss, grads)`` with ``grads`` keyed like ``params_``.
        """
        self._check_fitted()
        if check_input:
            X_aug = self._augment(X, y)
        else:
            X_aug = np.concatenate([np.asarray(X), self._onehot(y, np.shape(X)[0])], axis=1)
        return super().loss_and_grads(X_aug, eps, check_input=check_input)

    def elbo_terms(self, X, y, eps):
        """Per-example ``{"reconstruction", "kl", "elbo"}`` ``(N,)`` (MATH §8, §5):
        ``(1/S) Σ_s log p(x|z_s,c)`` and ``KL(q(z|x,c) ‖ N(0, I))``."""
        self._check_fitted()
        return super().elbo_terms(self._augment(X, y), eps)

    def log_weights(self, X, y, eps):
        """Importance log-weights ``(K, N)`` (MATH §6, §8):
        ``log w_k = log p(x|z_k,c) + log N(z_k; 0, I) − log q(z_k|x,c)``."""
        self._check_fitted()
        return super().log_weights(self._augment(X, y), eps)

    def log_likelihood(self, X, y, n_importance=5000, random_state=None, max_rows=8192):
        """Importance-sampled conditional ``log p̂(x|c)`` per example ``(N,)``, in nats
        (MATH §6 with the conditional model of §8), in bounded-memory chunks."""
        self._check_fitted()
        return super().log_likelihood(self._augment(X, y), n_importance=n_importance,
                                      random_state=random_state, max_rows=max_rows)

    def active_units(self, X, y, threshold=0.01):
        """Active latent units (MATH §6): ``Cov_{x,c}(E_{q(u|x,c)}[u]) > threshold``; a
        list with one count."""
        self._check_fitted()
        return super().active_units(self._augment(X, y), threshold=threshold)

    def score_samples(self, X, y, random_state=None):
        """The conditional ELBO per example ``(N,)`` with ``β = 1`` (MATH §8), a lower
        bound on ``log p(x|c)`` in nats; noise from ``random_state`` or ``rng_``."""
        self._check_fitted()
        return super().score_samples(self._augment(X, y), random_state=random_state)

    def score(self, X, y, random_state=None):
        """Mean conditional ELBO over ``(X, y)`` in nats per example (MATH §8)."""
        return float(np.mean(self.score_samples(X, y, random_state=random_state)))

    # -------------------------------------------------------------- training
    def fit(self, X, y, *, epochs=None, batch_size=None, learning_rate=None, **kwargs):
        """Train from fresh parameters on ``X (N, D)`` with labels ``y (N,)``; returns ``self``.

        The classes are the constructor's, or else the sorted unique labels of
        ``y``.  ``epochs``, ``batch_size``, ``learning_rate`` default to the
        constructor's values; further keyword arguments (``X_val`` with
        ``y_val``, ``batch_transform``, ``run_dir``, …) go to
        :func:`train_conditional`.  Without a ``batch_transform`` the decoder's
        output bias starts at the data mean's logit (MATH §1).
        """
        X = check_data(X)
        labels = _as_labels(y)
        if labels.ndim != 1 or labels.shape[0] != X.shape[0]:
            raise ValueError(f"fit needs one label per row of X: X has {X.shape[0]} rows, "
                             f"y has shape {labels.shape}")
        self.initialize(X.shape[1], classes=np.unique(labels) if self.classes is None else None)
        if kwargs.get("batch_transform") is None:
            self._lik.check_data(X)
            self._set_output_bias(X)
        train_conditional(self, X, labels,
                          epochs=self.epochs if epochs is None else epochs,
                          batch_size=self.batch_size if batch_size is None else batch_size,
                          learning_rate=self.learning_rate if learning_rate is None
                          else learning_rate, **kwargs)
        return self

    def partial_fit(self, X, y):
        """One pass of minibatch updates over ``(X, y)``; returns ``self``.

        The first call creates the parameters and fixes the classes: the
        constructor's ``classes``, or else the labels of this first ``y``.
        """
        X = check_data(X, getattr(self, "n_features_in_", None))
        if not hasattr(self, "params_"):
            labels = _as_labels(y)
            self.initialize(X.shape[1], classes=np.unique(labels) if self.classes is None
                            else None)
            self._lik.check_data(X)
            self._set_output_bias(X)
        train_conditional(self, X, y, epochs=1, batch_size=self.batch_size,
                          learning_rate=self.learning_rate)
        return self

    # ------------------------------------------------------------- public API
    def encode(self, X, y):
        """Parameters ``(mu (N, Z), logvar (N, Z))`` of ``q(z|x, c)`` (MATH §2, §8)."""
        self._check_fitted()
        return super().encode(self._augment(X, y))

    def encode_cholesky(self, X, y):
        """``(mu (N, Z), L (N, Z, Z))`` of ``q(z|x, c) = N(μ, L Lᵀ)`` (MATH §3, §8)."""
        self._check_fitted()
        return super().encode_cholesky(self._augment(X, y))

    def transform(self, X, y):
        """Posterior means ``μ(x, c)`` ``(N, Z)``."""
        return self.encode(X, y)[0]

    def decode(self, Z, y):
        """The likelihood's parameters of ``p(x|z, c)`` for latents ``Z (M, Z)`` and labels
        ``y`` (``(M,)`` or one label): logits ``(M, D)``, means ``(M, D)`` or logits
        ``(M, D, V)`` (MATH §4, §8)."""
        self._check_fitted()
        Z = check_data(Z, self.n_latent, name="Z").astype(self._dtype, copy=False)
        return self._decode_onehot(Z, self._onehot(y, Z.shape[0]))

    def _decode_onehot(self, Z, C):
        """Decoder output for ``Z (M, Z)`` and one-hot ``C (M, C)``: the MLP on ``z ⊕ c``."""
        u = np.concatenate([Z, C], axis=1)                                     # (M, Z + C)
        out, _ = mlp_forward(u, self._decoder_weights(), self._decoder_activations())
        return out.reshape((Z.shape[0],) + self._lik.output_shape(self.n_features_in_))

    def _decode_means(self, Z, y):
        """Likelihood means ``(M, D)`` of ``p(x|z, c)``."""
        return self._lik.mean(self.decode(Z, y), self.params_)

    def sample(self, n, y, random_state=None):
        """``n`` draws ``z ~ p(z|c) = N(0, I)`` decoded with the label(s) ``y`` to the
        likelihood's means ``(n, D)``: data of the chosen class (MATH §8; Kingma et
        al. 2014, M2).  ``y`` is one label for all ``n`` or an array of ``n`` labels."""
        self._check_fitted()
        n = check_positive_int(n, "n")
        C = self._onehot(y, n)                       # check the labels before drawing
        rng = self.rng_ if random_state is None else np.random.default_rng(random_state)
        z = rng.standard_normal((n, self.n_latent)).astype(self._dtype)
        return self._lik.mean(self._decode_onehot(z, C), self.params_)

    def reconstruct(self, X, y):
        """Likelihood means decoded from the posterior means, with the same labels ``(N, D)``."""
        return self._decode_means(self.transform(X, y), y)


def train_conditional(model, X, y, *, X_val=None, y_val=None, batch_transform=None, **kwargs):
    """Train an initialised :class:`ConditionalVAE` on ``(X, y)`` with
    :func:`npvae.training.train`; returns the model.

    ``train()`` receives the row indices as its data (a broadcast ``(N, D)``
    integer view) and a ``batch_transform`` that gathers the augmented rows
    ``[x, onehot(c)]`` of each shuffled batch; so shuffling, noise, schedules,
    KL warm-up, clipping, early stopping, history and checkpoints are
    ``train()``'s own, and checkpoints in ``run_dir`` are ordinary
    ConditionalVAE checkpoints.

    Parameters
    ----------
    X : (N, D) training data (raw, e.g. uint8 pixels, when ``batch_transform`` is given).
    y : (N,) class labels (every one in ``model.classes_``).
    X_val, y_val : validation data in the likelihood's form and its labels.
    batch_transform : ``(x_batch (B, D), rng) -> x (B, D)``, applied to the data
        columns only (e.g. dynamic binarisation, MATH §12).
    **kwargs : the other arguments of :func:`npvae.training.train` (``epochs``,
        ``batch_size``, ``learning_rate``, ``run_dir``, ``metadata``, …).
    """
    from .training import train

    if not hasattr(model, "params_"):
        raise ValueError("initialise the model (initialize or fit) before train_conditional()")
    X = check_data(X, model.n_features_in_)
    N, D = X.shape
    C = model._onehot(y, N)                                                   # (N, C)
    if (X_val is None) != (y_val is None):
        raise ValueError("validation needs both X_val and its labels y_val")
    X_val_aug = None if X_val is None else model._check_X(model._augment(X_val, y_val))
    if batch_transform is None:
        model._lik.check_data(X)
        data = model._lik.convert(X, model._dtype)
        X_aug = np.concatenate([data, C.astype(data.dtype)], axis=1)          # (N, D + C)

        def gather(rows, rng):
            return X_aug[rows[:, 0]]
    else:
        def gather(rows, rng):
            idx = rows[:, 0]
            xb = np.asarray(batch_transform(X[idx], rng))
            return np.concatenate([xb, C[idx].astype(xb.dtype, copy=False)], axis=1)
    index_dtype = np.int32 if N < 2**31 else np.int64
    rows = np.broadcast_to(np.arange(N, dtype=index_dtype)[:, None], (N, D))  # (N, D) view
    return train(model, rows, X_val=X_val_aug, batch_transform=gather, **kwargs)


__all__ = ["ConditionalVAE", "train_conditional"]
