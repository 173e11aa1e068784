"""The trainer's contract with a model: what :mod:`npvae.training` and
:mod:`npvae.gradient_estimators` may use of a model, and nothing else
(docs/05-elbo.md, docs/06-importance-weighting.md, docs/11-optimisation.md).

:class:`TrainableModel` states it as an abstract base, as
:class:`~npvae.distributions.posteriors.Posterior` states a posterior's: the methods
a model must provide are abstract, the hooks most models leave alone have their
defaults here (a default, not a ``getattr`` probe, is what a model that does not
override a hook gets).  :class:`~npvae.models.base.BaseVAE` derives from it, so
every model (VAE, ConditionalVAE, HierarchicalVAE, LadderVAE, FisherAutoencoder)
implements it.

Besides the members below, the trainer reads the public settings ``objective``,
``beta``, ``k``, ``optimizer``, ``learning_rate`` and ``gradient_estimator`` and the
fitted state of scikit-learn's convention (names ending in ``_``): ``flat_params_``
``(P,)``, ``layout_``, ``optimizer_state_``, ``rng_``, ``n_features_in_``,
``n_iter_`` and ``history_``.

Shapes: ``N`` examples, ``D`` features, ``S`` noise samples per example (``K`` for
the IWAE bound), ``Z`` latent units, ``C`` condition columns, ``P`` parameters.
"""
from __future__ import annotations

import abc


class TrainableModel(abc.ABC):
    """What a model gives the training loop and the gradient estimators."""

    #: ``(key, sign)``: the validation quantity ``val_{key}`` that decides the best epoch
    #: of an ELBO-trained model, and ``sign`` so that ``sign * value`` is larger when
    #: better; the Fisher autoencoder's is ``("fisher", -1)`` (docs/14-fisher-autoencoder.md)
    validation_criterion = ("elbo", 1)

    # ---------------------------------------------------------- fitted state
    @property
    def dtype_(self):
        """The NumPy dtype of the parameters, the noise and every computation (the setting
        ``dtype`` checked); set by the first check of the settings."""
        return self._dtype

    @property
    def likelihood_(self):
        """The decoder's likelihood ``p(x|z)``, a
        :class:`~npvae.distributions.likelihoods.base.Likelihood` built from the settings
        ``likelihood`` and ``likelihood_params``: its ``check_data`` checks the support,
        its ``convert`` turns data into the model's form (docs/04-likelihoods.md)."""
        return self._lik

    # ------------------------------------------------------------- boundary
    @abc.abstractmethod
    def check_fitted(self):
        """Raise a one-line error unless the parameters exist and still fit the settings
        (the boundary check of every public method)."""

    @abc.abstractmethod
    def validate_input(self, X, check_values=True, reset=False):
        """Data ``X (N, D)`` checked (shape, finite values and, with ``check_values``, the
        likelihood's support) and converted to ``dtype_``; returns the converted array."""

    @abc.abstractmethod
    def labels_to_condition(self, y, n):
        """The condition ``c (n, C)`` (one-hot) for labels ``y`` of ``n`` rows, or None for a
        model without one, which ignores ``y`` (docs/08-conditional-vae.md)."""

    def n_condition(self):
        """Columns ``C`` of the condition; 0 for a model that takes none (the trainer then
        needs no labels)."""
        return 0

    # ---------------------------------------------------------------- noise
    @abc.abstractmethod
    def noise_shape(self, n_samples, n_examples):
        """The shape of the noise ``eps`` of ``n_samples`` draws for each of ``n_examples``
        examples: ``(S, N, Z')`` (``Z'`` the posterior's noise width), or a list of such
        shapes, one per stochastic level (docs/07-hierarchical-vae.md)."""

    @abc.abstractmethod
    def draw_noise(self, n_examples, n_samples=None, random_state=None):
        """Noise of :meth:`noise_shape` for ``n_examples`` examples and ``n_samples``
        draws each (default: those of the training objective, ``k`` for the IWAE bound),
        from ``random_state`` (a seed or a Generator, used as it is) or ``rng_``."""

    # ------------------------------------------------------------ objective
    @abc.abstractmethod
    def training_objective(self, X, eps, beta, need_grads=True, condition=None):
        """``(loss, flat_grad (P,) or None, terms)`` at converted data ``X (N, D)``, noise
        ``eps`` of :meth:`noise_shape` and KL weight ``beta``: the negative β-ELBO
        (docs/05-elbo.md), the negative IWAE bound (docs/06-importance-weighting.md) or a
        model's own loss; ``terms`` maps names to per-example values ``(N,)``.  The
        gradient is a workspace the next call overwrites."""

    def factored_objective(self, X, eps, beta, condition, max_rows):
        """:meth:`training_objective` with the gradient of some weight matrices ``W (I, J)``
        left as factors: ``(loss, flat_grad, terms, {name: (a (R, I), da (R, J))})``, the
        gradient of ``W`` being ``aᵀ da`` with ``R <= max_rows`` and its slice of
        ``flat_grad`` not written; for the trainer's fused Adam update (npvae/fused_step.py,
        docs/11-optimisation.md#fusing-the-weight-gradient-into-adam).  None (the default)
        where the model does not offer it."""
        return None

    @abc.abstractmethod
    def log_weights_forward(self, X, eps, condition=None):
        """``(log_w (K, N), parts, cache)``: the importance log-weights
        ``log p(x, z_k) − log q(z_k|x)``, their parts ``log_px``, ``log_pz``, ``log_q``
        ``(K, N)`` and the cache of :meth:`log_weights_backward`
        (docs/06-importance-weighting.md#log-weights)."""

    @abc.abstractmethod
    def log_weights_backward(self, dlog_w, cache, path_scale=None):
        """The flat gradient ``(P,)`` of ``Σ dlog_w ⊙ log w`` (``dlog_w (K, N)``).  With
        ``path_scale (K, N)`` the score term is dropped: ``log q``'s seed goes to ``z_k``
        only, scaled by ``path_scale_k`` (STL, DReG:
        docs/06-importance-weighting.md#doubly-reparameterised-gradients)."""

    def after_step(self):
        """Called after every parameter update; e.g. the ladder VAE's batch-norm running
        statistics (docs/16-ladder-vae.md#running-statistics).  Nothing by default."""
