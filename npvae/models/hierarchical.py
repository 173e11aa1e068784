"""The hierarchical VAE with ``L`` stochastic levels (docs/07-hierarchical-vae.md).

Generative model (top-down): ``p(z_L) = N(0, I)``, ``p(z_l | z_{l+1}) =
N(μ^p_l(z_{l+1}), diag e^{λ^p_l(z_{l+1})})`` by one network per level, and
``p(x | z_1)`` by the decoder and the likelihood.  Inference, two variants:

* ``"independent"``: a deterministic bottom-up path ``h_1 = f_1(x)``,
  ``h_l = f_l(h_{l−1})``; ``q(z_l|x) = N(μ_l(h_l), diag e^{λ_l(h_l)})``.  Every KL
  term is then closed form given a sample of ``z_{l+1}``.
* ``"markov"`` (Burda et al. 2016, their Table 1): ``q(z_1|x) q(z_2|z_1) …
  q(z_L|z_{L−1})``, each encoder reading the sample below; the KL terms are Monte
  Carlo estimates ``log q(z_l|·) − log p(z_l|z_{l+1})`` on the same samples.

Every encoder and prior network is a :class:`~npvae.models.networks.GaussianNetwork`,
the decoder the shared :class:`~npvae.models.networks.Decoder`, every Gaussian
the :class:`~npvae.distributions.posteriors.DiagonalGaussian` posterior.

Shapes: ``N`` batch, ``D`` data, ``H`` hidden width, ``Z_l`` latent dimension of
level ``l``, ``S`` Monte Carlo and ``K`` importance samples, ``L`` levels.  In
the code ``l`` is the 0-based index of level ``l + 1``; names count from 1:
``enc{l}_…`` (encoders), ``prior{l}_…`` (``p(z_l | z_{l+1})``, ``l < L``),
``dec_…`` and ``obs_logvar`` (the decoder, named as in :class:`~npvae.VAE`).
With ``L = 1`` the names are the VAE's with ``enc1_`` for ``enc_``, the same
``random_state`` draws the same parameters, and objective and gradients are the
VAE's (for ``"markov"`` ELBO up to its Monte Carlo KL).
"""
from __future__ import annotations

import numpy as np

from .._validation import (check_data, check_defined, check_finite, check_latent_sizes,
                           check_level_widths, check_noise_levels, check_positive_int)
from ..distributions.posteriors import DiagonalGaussian
from ..gradient_estimators import check_gradient_estimator
from ..layers.activations import check_activation
from ..layers.dense import init_weight
from ..objectives import elbo_loss, monte_carlo_kl_backward, monte_carlo_kl_forward
from .base import CHUNK, BaseVAE
from .hierarchical_densities import SampleDensities
from .networks import Decoder, GaussianNetwork
from .sizes import check_rows_fit
from .vamp import PriorMixin

INFERENCE = ("independent", "markov")


class HierarchicalVAE(PriorMixin, SampleDensities, BaseVAE):
    """VAE with ``L`` stochastic levels and hand-written gradients (docs/07-hierarchical-vae.md;
    Burda et al. 2016; Sønderby et al. 2016).

    Parameters
    ----------
    latent_sizes : tuple of int
        ``(Z_1, …, Z_L)``, bottom (next to the data) first.
    hidden_sizes : tuple of int, or tuple of ``L`` tuples of int
        Deterministic widths of each level's encoder: one tuple used at every
        level, or one tuple per level (Burda et al. 2016, two levels:
        ``latent_sizes=(100, 50), hidden_sizes=((200, 200), (100, 100))``).
        The generative networks mirror them: ``p(x|z_1)`` uses the level-1
        widths reversed, ``p(z_l|z_{l+1})`` the level-``l+1`` widths reversed.
    inference : ``"independent"`` (closed-form KL terms) or ``"markov"``
        (``q(z_l|z_{l−1})``, Monte Carlo KL terms; Burda et al. 2016).
    prior, prior_params : ``"standard"`` (``p(z_L) = N(0, I)``) or ``"vamp"``: the top
        level's VampPrior ``p(z_L) = (1/K) Σ_k q(z_L | u_k)`` (independent inference;
        docs/17-vampprior.md#two-levels), with its options as for :class:`~npvae.VAE`.
    activation, likelihood, likelihood_params, n_samples, beta, objective, k,
    optimizer, learning_rate, batch_size, epochs, dtype, random_state :
        As for :class:`~npvae.VAE`.
    gradient_estimator : ``"standard"``, ``"stl"`` or ``"dreg"`` (IWAE), as for
        :class:`~npvae.VAE`, with every level's ``log q`` parameters held fixed
        (docs/07-hierarchical-vae.md#sticking-the-landing-with-several-levels).  With
        ``"stl"`` and independent inference the loss and the generative gradient keep the
        closed-form KL terms; the encoders' gradient is STL's on their Monte Carlo form.

    Attributes
    ----------
    params_ : dict name -> ndarray, live views of ``flat_params_`` (names in
        the module docstring).
    n_features_in_, rng_, history_ : as for :class:`~npvae.VAE`.
    """

    def __init__(self, latent_sizes=(100, 50), hidden_sizes=((200, 200), (100, 100)),
                 inference="independent", activation="tanh", likelihood="bernoulli",
                 likelihood_params=None, n_samples=1, beta=1.0, objective="elbo", k=1,
                 optimizer="adam", learning_rate=1e-3, batch_size=100, epochs=10,
                 dtype="float64", random_state=None, gradient_estimator="standard",
                 prior="standard", prior_params=None):
        self._keep_settings(locals())        # scikit-learn: each argument as given

    # ------------------------------------------------------------ architecture
    def _build(self):
        check_activation(self.activation)
        if self.inference not in INFERENCE:
            raise ValueError(f"inference must be one of {INFERENCE}, got {self.inference!r}")
        check_gradient_estimator(self.gradient_estimator, self.objective)
        self._sizes = check_latent_sizes(self.latent_sizes)                # [Z_1, …, Z_L]
        self._hidden = check_level_widths(self.hidden_sizes, len(self._sizes))  # per level
        act, L = self.activation, len(self._sizes)
        self._post = DiagonalGaussian()
        self._build_prior({"inference": "independent", "gradient_estimator": "standard"})
        # q(z_l | h_l) or q(z_l | z_{l-1}); p(z_l | z_{l+1}) mirrors level l+1's widths;
        # p(x | z_1) mirrors level 1's
        self._encoders = [GaussianNetwork(f"enc{l + 1}", self._hidden[l], act, self._post)
                          for l in range(L)]
        self._priors = [GaussianNetwork(f"prior{l + 1}", self._hidden[l + 1][::-1], act,
                                        self._post) for l in range(L - 1)]
        self._decoder = Decoder(self._hidden[0][::-1], act, self._lik)

    def _n_levels(self):
        return len(self._sizes)
    def _param_shapes(self, n_features):
        sizes, shapes = self._sizes, {}
        width = n_features                          # width of h_{l−1} (h_0 = x)
        for l, (enc, Z) in enumerate(zip(self._encoders, sizes)):
            markov_input = l > 0 and self.inference == "markov"
            shapes.update(enc.param_shapes(sizes[l - 1] if markov_input else width, Z))
            width = enc.hidden[-1] if enc.hidden else (sizes[l - 1] if markov_input else width)
        for l, prior in enumerate(self._priors):
            shapes.update(prior.param_shapes(sizes[l + 1], sizes[l]))
        shapes.update(self._decoder.param_shapes(sizes[0], n_features))
        shapes.update(self._prior_shapes(n_features))                  # prior_u (K, D)
        return shapes

    def _init_params(self, P, rng):
        """Hidden layers by the activation's initialiser, heads Glorot (docs/01-dense-layers.md);
        biases zero.  With ``L = 1`` this draws exactly what the VAE draws.

        The log-variance heads of the networks that read a latent sample — the
        prior networks, and for ``"markov"`` the encoders above level 1 — start
        at zero weights, so that those Gaussians start with unit variances.  A
        Glorot head reading ``z`` can start them at ``e^{±5}``: KL terms of
        thousands of nats, and with a markov chain of unbounded activations
        samples that grow level by level until they overflow.
        """
        act = self.activation
        for name, W in P.items():
            if "_W" in name:
                hidden = name.split("_")[1].startswith("W")     # enc2_W0, prior1_W1, dec_W0
                W[...] = init_weight(*W.shape, act if hidden else "identity", rng, self._dtype)
                if name.endswith("_logvar_W") and self._reads_a_sample(name.split("_")[0]):
                    W[...] = 0
        self._init_prior(P, rng)

    def _reads_a_sample(self, prefix):
        """Whether the network ``prefix`` (``enc2``, ``prior1``, …) reads a latent sample."""
        if prefix.startswith("prior"):
            return True
        return self.inference == "markov" and prefix != "enc1"

    # ------------------------------------------------------------------ noise
    def noise_shape(self, n_samples, n_examples):
        """One noise array per level: ``[(S, N, Z_1), …, (S, N, Z_L)]`` ."""
        return [(n_samples, n_examples, Z) for Z in self._sizes]

    def _check_eps(self, eps, n_examples):
        """``eps``: a list of ``L`` finite arrays ``(S, N, Z_l)`` with one ``S``."""
        return check_noise_levels(eps, n_examples, self._sizes, self._dtype)

    # --------------------------------------------------------------- inference
    def _inference_forward(self, X, eps):
        """Posterior parameters and reparameterised samples of every level.

        Returns ``(mus, logvars, zs, cache)``, lists over levels; ``zs[l]`` is
        ``(S, N, Z_l)``; ``mus[l]``, ``logvars[l]`` are ``(N, Z_l)``, except for
        markov levels above the first, ``(S, N, Z_l)`` (one per sample below).
        """
        P, post = self.params_, self._post
        S, N = eps[0].shape[:2]
        markov = self.inference == "markov"
        mus, logvars, zs, net_c, z_c = [], [], [], [], []
        h = self._lik.encoder_input(X, self._dtype)                 # (N, D): h_0 = x
        for l, enc in enumerate(self._encoders):
            inp = zs[l - 1].reshape(S * N, -1) if markov and l > 0 else h   # (S·N, Z_{l−1})
            h, mu, logvar, c = enc.forward(P, inp)                  # h_l, (R, Z_l) each
            if markov and l > 0:
                mu, logvar = mu.reshape(S, N, -1), logvar.reshape(S, N, -1)
            z, zc = post.sample_forward(mu, logvar, eps[l])         # (S, N, Z_l)
            for lst, v in ((mus, mu), (logvars, logvar), (zs, z), (net_c, c), (z_c, zc)):
                lst.append(v)
        return mus, logvars, zs, (net_c, z_c)

    def _inference_backward(self, G, dzs, dmus, dlogvars, cache):
        """Backward of :meth:`_inference_forward`, writing into ``G``.

        ``dzs[l] (S, N, Z_l)``: gradients on the samples from the generative side;
        ``dmus[l]``, ``dlogvars[l]`` (or None): direct gradients on the posterior
        parameters (closed-form KLs, ``log q``).
        """
        net_c, z_c = cache
        markov = self.inference == "markov"
        dh = None                                   # gradient on h_l from level l+1's encoder
        for l in range(self._n_levels() - 1, -1, -1):
            dmu, dlogvar = self._post.sample_backward(dzs[l], z_c[l])
            if dmus[l] is not None:
                dmu = dmu + dmus[l]
            if dlogvars[l] is not None:
                dlogvar = dlogvar + dlogvars[l]
            if dmu.ndim == 3:                       # per-sample parameters: S·N rows
                dmu, dlogvar = dmu.reshape(-1, dmu.shape[-1]), dlogvar.reshape(-1, dmu.shape[-1])
            d_in = self._encoders[l].backward(G, dmu, dlogvar, net_c[l], dh=dh, need_dx=l > 0)
            if markov and l > 0:                    # through z_{l−1} into the encoders below
                dzs[l - 1] = dzs[l - 1] + d_in.reshape(dzs[l - 1].shape)
            else:                                   # down the deterministic path h_{l−1}
                dh = d_in

    # -------------------------------------------------------------- generative
    def _prior_forward(self, l, z_above):
        """``μ^p, λ^p`` ``(S, N, Z_l)`` of ``p(z_l | z_{l+1})`` from ``z_above (S, N, Z_{l+1})``."""
        S, N, Z_above = z_above.shape
        _, mu, logvar, c = self._priors[l].forward(self.params_, z_above.reshape(S * N, Z_above))
        return mu.reshape(S, N, -1), logvar.reshape(S, N, -1), (c, z_above.shape)

    def _prior_backward(self, l, G, dmu_p, dlogvar_p, cache):
        """Backward of :meth:`_prior_forward`; returns ``dz_above (S, N, Z_{l+1})``."""
        c, shape = cache
        Z = dmu_p.shape[-1]
        dz = self._priors[l].backward(G, dmu_p.reshape(-1, Z), dlogvar_p.reshape(-1, Z), c,
                                      need_dx=True)
        return dz.reshape(shape)

    def _elbo_objective(self, X, eps, beta, need_grads=True, condition=None):
        """Negative β-ELBO and its hand-written gradient (docs/07-hierarchical-vae.md).

        ``ELBO = (1/S) Σ_s log p(x|z_1^s) − KL(q(z_L|·) ‖ N(0, I))
        − Σ_{l<L} E_{q(z_{l+1})} KL(q(z_l|·) ‖ p(z_l|z_{l+1}))``.  ``"independent"``:
        closed-form KLs given the samples of ``z_{l+1}``; ``"markov"``: Monte
        Carlo ``log q − log p`` on the same samples.  ``terms`` holds
        ``reconstruction``, ``kl_1`` … ``kl_L`` (β not applied), ``kl`` and ``elbo``.
        """
        if self.inference == "markov":
            return self._elbo_monte_carlo(X, eps, beta, need_grads)
        loss, flat, terms = self._elbo_closed_form(X, eps, beta, need_grads)
        if need_grads and self.gradient_estimator == "stl":
            flat = self._stl_encoder_gradient(X, eps, beta, flat)
        return loss, flat, terms

    def _stl_encoder_gradient(self, X, eps, beta, flat):
        """Independent inference with STL: the loss and the generative networks' gradient
        stay those of the closed-form KL terms; the encoders' gradient is STL's, on the
        Monte Carlo KL terms (docs/07-hierarchical-vae.md#sticking-the-landing-with-several-levels).
        ``flat`` is the gradient buffer holding the closed-form gradient."""
        enc = self._encoder_mask()                                          # (P,) bool
        generative = flat[~enc]                                             # a copy
        flat = self._elbo_monte_carlo(X, eps, beta, True)[1]                # the same buffer
        flat[~enc] = generative
        return flat

    def _encoder_mask(self):
        """``(P,)`` True on the encoders' entries of the flat parameter vector."""
        mask = getattr(self, "_encoder_mask_ws", None)
        if mask is None or mask.shape != (self.layout_.size,):
            shapes = self.layout_.shapes
            mask = self._encoder_mask_ws = np.concatenate(
                [np.full(int(np.prod(s)), name.startswith("enc")) for name, s in shapes.items()])
        return mask

    def _elbo_closed_form(self, X, eps, beta, need_grads=True):
        """The ELBO of independent inference, KL terms in closed form given the samples."""
        P, L = self.params_, self._n_levels()
        mus, logvars, zs, inf_c = self._inference_forward(X, eps)
        log_px, dec_c = self._decoder.forward(P, zs[0], X)                 # (S, N)
        kls, kl_c = [], []
        for l in range(L - 1):                                              # KL(q_l ‖ p(·|z_{l+1}))
            mu_p, logvar_p, p_c = self._prior_forward(l, zs[l + 1])        # (S, N, Z_l)
            kl, c = self._post.kl_to_gaussian_forward(mus[l], logvars[l], mu_p,
                                                      logvar_p)                # (S, N)
            kls.append(kl.mean(axis=0))                                     # (N,)
            kl_c.append((c, p_c))
        if self._prior is None:
            kl_top, top_c = self._post.kl_forward(mus[L - 1], logvars[L - 1])  # (N,)
        else:                                    # the VampPrior: log q − log p(z_L) sampled
            kl_top, top_c = monte_carlo_kl_forward(self._post, mus[L - 1], logvars[L - 1],
                                                   zs[L - 1], eps[L - 1],
                                                   self._log_prior_forward)
        kls.append(kl_top)
        loss, terms, dlog_px, dkl = elbo_loss(log_px, kls, beta, self._dtype)
        if not need_grads:
            return loss, None, terms
        flat, G = self._grad_buffer()
        dzs = [None] * L
        dmus, dlogvars = [None] * L, [None] * L
        dzs[0] = self._decoder.backward(G, dlog_px, dec_c)
        for l in range(L - 1):
            c, p_c = kl_c[l]
            S = zs[l + 1].shape[0]
            dmu_q, dlv_q, dmu_p, dlv_p = self._post.kl_to_gaussian_backward(
                np.broadcast_to(dkl / S, (S, dkl.shape[0])), c)             # (S, N, Z_l)
            dmus[l], dlogvars[l] = dmu_q.sum(axis=0), dlv_q.sum(axis=0)
            dzs[l + 1] = self._prior_backward(l, G, dmu_p, dlv_p, p_c)
        dzs = [np.zeros_like(z) if d is None else d for d, z in zip(dzs, zs)]
        if self._prior is None:
            dmus[L - 1], dlogvars[L - 1] = self._post.kl_backward(dkl, top_c)
        else:
            dz_top, _, dlogvars[L - 1] = monte_carlo_kl_backward(   # dmu: 0 (log q at a
                self._post, dkl, top_c, self._log_prior_backward)     # sample has no μ)
            dzs[L - 1] = dzs[L - 1] + dz_top
        self._inference_backward(G, dzs, dmus, dlogvars, inf_c)
        return loss, self._add_prior_grads(flat), terms

    # ------------------------------------------------------------- public API
    def _means_forward(self, X):
        """``(mus, logvars)`` per level ``(N, Z_l)``; for markov the level below's
        mean stands in for its sample, ``z_{l−1} := μ_{l−1}``."""
        mus, logvars = [], []
        h = self._lik.encoder_input(X, self._dtype)
        for l, enc in enumerate(self._encoders):
            inp = mus[-1] if self.inference == "markov" and l > 0 else h
            h, mu, logvar, _ = enc.forward(self.params_, inp)
            mus.append(mu)
            logvars.append(logvar)
        return mus, logvars

    def _encode_checked(self, X):
        """Every level's ``(mus, logvars)`` in chunks; finite, else a one-line
        ``ValueError`` (parameters near 1e20 overflow the encoders)."""
        L = self._n_levels()
        with np.errstate(over="ignore", invalid="ignore"):
            parts = [self._means_forward(X[i:i + CHUNK]) for i in range(0, X.shape[0], CHUNK)]
        return tuple([check_finite(np.concatenate([p[k][l] for p in parts]),
                                   "the encoder's output") for l in range(L)] for k in (0, 1))

    def _posterior_means(self, X, condition=None):
        return self._encode_checked(X)[0]

    def encode(self, X):
        """Posterior parameters per level: ``(mus, logvars)``, lists of ``L`` arrays
        ``(N, Z_l)``.  For ``inference="markov"`` level ``l`` is evaluated at the mean
        of the level below."""
        self.check_fitted()
        mus, logvars = self._encode_checked(self.validate_input(X))
        return [check_defined(mu, "the posterior mean") for mu in mus], logvars

    @property
    def _n_features_out(self):
        """Columns of :meth:`transform`: ``Z_1 + … + Z_L``."""
        return sum(check_latent_sizes(self.latent_sizes))

    def transform(self, X):
        """The per-level posterior means concatenated, ``(N, Z_1 + … + Z_L)``."""
        return np.concatenate(self.encode(X)[0], axis=1)

    def decode(self, Z):
        """The likelihood's parameters for ``z_1``: logits ``(M, D)`` (Bernoulli), means
        ``(M, D)`` (Gaussian) or logits ``(M, D, V)`` (categorical).

        ``Z`` is ``(M, Z_1)``, or ``(M, Z_1 + … + Z_L)`` as returned by
        :meth:`transform`, of which the first ``Z_1`` columns (``z_1``) are used.
        """
        self.check_fitted()
        Z = check_data(Z, name="Z", dtype=self._dtype)
        Z1, total = self._sizes[0], sum(self._sizes)
        if Z.shape[1] not in (Z1, total):
            raise ValueError(f"Z has {Z.shape[1]} features; decode takes z_1 (M, {Z1}) or the "
                             f"concatenated per-level latents (M, {total})")
        return self._decode(Z)

    def _decode(self, Z, condition=None):
        """The decoder reads ``z_1``: the first ``Z_1`` columns of ``Z``."""
        return super()._decode(Z[:, :self._sizes[0]], condition)

    def sample(self, n, random_state=None):
        """``n`` ancestral draws: ``z_L ~ N(0, I)``, ``z_l ~ p(z_l | z_{l+1})``, decoded
        to the likelihood's means ``(n, D)``."""
        self.check_fitted()
        n = check_positive_int(n, "n")
        check_rows_fit(self, n, f"sample({n:,})")
        rng = self.rng_ if random_state is None else np.random.default_rng(random_state)
        L = self._n_levels()
        z = self._prior_draw(rng, n, self._sizes[L - 1])[None]                   # (1, n, Z_L)
        for l in range(L - 2, -1, -1):
            with np.errstate(over="ignore", invalid="ignore"):   # refused by _decode
                mu_p, logvar_p, _ = self._prior_forward(l, z)                      # (1, n, Z_l)
                eps = rng.standard_normal(mu_p.shape).astype(self._dtype)
                z = mu_p + np.exp(0.5 * logvar_p) * eps
        return self._decode_means(z[0])

    def reconstruct(self, X):
        """Likelihood means ``(N, D)`` decoded from the level-1 posterior mean."""
        return self._decode_means(self.encode(X)[0][0])
