"""The variational autoencoder of Kingma & Welling (2014) (docs/05-elbo.md).

Encoder ``q(z|x) = N(μ(x), diag e^{λ(x)})`` (or ``N(μ(x), L(x) L(x)ᵀ)``) from a
:class:`~npvae.models.networks.GaussianNetwork`; decoder ``p(x|z)`` from a
:class:`~npvae.models.networks.Decoder` whose output parameterises the
likelihood; prior ``p(z) = N(0, I)``.  Every gradient is written by hand.

The step of the common model — diagonal Gaussian posterior, prior ``N(0, I)``, the
ELBO with ``S ≥ 1`` samples, the standard gradient or STL, any widths, activation and
likelihood — is written out in one method, :meth:`VAE._diagonal_elbo`, llm.c style:
each dense layer, the sample, the KL and the loss forward, then the backward in
reverse order, every line beside its equation and book section.  A reader follows
it in three files: this one, the activations (npvae/layers/activations.py) and the
likelihood (npvae/distributions/likelihoods/).  Every other configuration composes
the networks of :mod:`npvae.models.networks` with a posterior
(:meth:`VAE._elbo_objective`).  The public encode/decode/sample methods:
:mod:`npvae.models.vae_api`.

Shape legend: ``N`` batch, ``D`` data dimension, ``H`` hidden width, ``Z``
latent dimension, ``S`` samples of ``z`` per example, ``K`` importance samples,
``C`` classes (the conditional VAE's condition ``c (N, C)``).
"""
from __future__ import annotations

import numpy as np

from .._validation import check_positive_int, check_widths
from ..distributions import concrete_posterior, iaf, planar  # noqa: F401  (register themselves)
from ..distributions import dirichlet_posterior, stick_breaking  # noqa: F401  (register them)
from ..distributions.likelihoods import Likelihood
from ..distributions.posteriors import make_posterior
from ..gradient_estimators import check_gradient_estimator, kl_path_backward
from ..layers.activations import bias_activation_backward, bias_activation_forward, check_activation
from ..layers.dense import init_weight
from ..objectives import elbo_loss, monte_carlo_kl_backward, monte_carlo_kl_forward
from .base import BaseVAE
from .networks import Decoder, GaussianNetwork
from .vae_api import VAEMethods
from .vamp import PriorMixin


class VAE(VAEMethods, PriorMixin, BaseVAE):
    """Variational autoencoder with hand-written gradients (docs/05-elbo.md).

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
        A name in :data:`npvae.distributions.likelihoods.LIKELIHOODS`:
        ``bernoulli`` (binary data), ``gaussian`` (real data), ``categorical``
        (integers ``0..n_levels-1``), ``beta`` (grey levels in ``(0, 1)``)
        (docs/04-likelihoods.md).
    likelihood_params : dict or None
        The likelihood's options: Gaussian ``{"variance": "fixed" | "scalar" |
        "per_output", "logvar": 0.0}``; categorical ``{"n_levels": 256}``;
        Bernoulli ``{"allow_nonbinary": False}``.
    posterior : ``"diagonal"`` (``N(μ, diag e^λ)``), ``"full"`` (``N(μ, L Lᵀ)``
        with a lower-triangular ``L``; the encoder's second head then outputs
        ``Z(Z+1)/2`` entries of ``L``, ``enc_chol_W/_b``) (docs/03-kl-divergences.md)
        or ``"concrete"``: ``n_latent`` categorical variables relaxed by the
        Gumbel-softmax, a uniform prior, uniform noise, hard one-hot samples when
        scoring (:mod:`npvae.distributions.concrete_posterior`,
        docs/15-discrete-latents.md); ``"kumaraswamy"``: ``n_latent`` stick-breaking
        weights (:mod:`npvae.distributions.stick_breaking`) or ``"dirichlet"``: a code on
        the simplex (:mod:`npvae.distributions.dirichlet_posterior`), docs/19-simplex-latents.md;
        ``"planar"`` or ``"iaf"``: the diagonal Gaussian through ``n_flows`` planar or
        inverse autoregressive flows (:mod:`npvae.distributions.planar`,
        :mod:`npvae.distributions.iaf`, docs/18-normalising-flows.md).
    posterior_params : dict or None
        The posterior's options: for ``"concrete"`` ``{"n_categories": K, "temperature": τ₀,
        "anneal_rate": r, "min_temperature": τ_min, "straight_through": False}``; for
        ``"kumaraswamy"`` ``{"prior_alpha": 5.0, "series_terms": 10}``; for ``"dirichlet"``
        ``{"prior_alpha": 1.0}``; for ``"planar"`` ``{"n_flows": 4}``, for ``"iaf"``
        ``{"n_flows": 2, "hidden_size": 2Z, "context_size": Z}``.
    prior : ``"standard"`` (``N(0, I)``) or ``"vamp"``: the VampPrior, a mixture of the
        posteriors at learned pseudo-inputs (posterior ``"diagonal"``, the standard
        gradient estimator; :mod:`npvae.models.vamp`, docs/17-vampprior.md).
    prior_params : dict or None
        For ``"vamp"``: ``{"n_pseudo_inputs": K, "hardtanh": True, "init_mean": 0.05,
        "init_std": 0.01}`` (:class:`npvae.distributions.vamp_prior.VampPrior`).
    n_samples : int
        ``S``, samples of ``z`` per example in the ELBO estimator.
    beta : float
        Weight of the KL term (Higgins et al. 2017); 1 gives the ELBO.
    objective : ``"elbo"`` or ``"iwae"``, the importance-weighted bound ``L_K``
        with ``k`` samples (docs/06-importance-weighting.md; Burda et al. 2016).
    k : int
        ``K``, importance samples per example for ``objective="iwae"``.
    gradient_estimator : ``"standard"`` (the exact gradient at the noise drawn),
        ``"stl"`` (the score term of ``log q`` dropped, Roeder et al. 2017; unbiased for the
        ELBO, biased for IWAE with ``k > 1``) or ``"dreg"`` (doubly reparameterised, Tucker et
        al. 2019; ``objective="iwae"`` only).  Only the encoder's gradient changes
        (docs/05-elbo.md#sticking-the-landing,
        docs/06-importance-weighting.md#doubly-reparameterised-gradients).
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

    _written_out = False        # the written-out step applies (_build; off in an older pickle)

    def __init__(self, n_latent=20, hidden_sizes=(400,), decoder_hidden_sizes=None,
                 activation="relu", likelihood="bernoulli", likelihood_params=None,
                 posterior="diagonal", n_samples=1, beta=1.0, objective="elbo", k=1,
                 optimizer="adam", learning_rate=1e-3, batch_size=100, epochs=10,
                 dtype="float64", random_state=None, gradient_estimator="standard",
                 posterior_params=None, prior="standard", prior_params=None):
        self._keep_settings(locals())        # scikit-learn: each argument as given

    # ------------------------------------------------------------ architecture
    def _build(self):
        check_positive_int(self.n_latent, "n_latent")
        check_activation(self.activation)
        check_gradient_estimator(self.gradient_estimator, self.objective)
        self._post = make_posterior(self.posterior, getattr(self, "posterior_params", None))
        if not self._post.has_mean and (self.objective != "elbo"
                                        or self.gradient_estimator != "standard"):
            raise ValueError(f"posterior={self.posterior!r} trains the ELBO with its standard "
                             "gradient (objective='elbo', gradient_estimator='standard')")
        self._build_prior({"posterior": "diagonal", "gradient_estimator": "standard"})
        if not self._post.path_derivative and self.gradient_estimator != "standard":
            raise ValueError(f"posterior={self.posterior!r} takes gradient_estimator='standard' "
                             "(STL and DReG need log q's path derivative, which a flow lacks)")
        self._encoder = GaussianNetwork("enc", self._enc_sizes(), self.activation, self._post)
        self._decoder = Decoder(self._dec_sizes(), self.activation, self._lik)
        # the common case takes the written-out step (a subclass, e.g. the conditional VAE,
        # keeps the composed path, which knows its extra inputs)
        self._written_out = (type(self) is VAE and self.posterior == "diagonal"
                             and self._prior is None
                             and self.gradient_estimator in ("standard", "stl"))

    def _enc_sizes(self):
        return check_widths(self.hidden_sizes, "hidden_sizes")

    def _dec_sizes(self):
        if self.decoder_hidden_sizes is None:
            return self._enc_sizes()[::-1]
        return check_widths(self.decoder_hidden_sizes, "decoder_hidden_sizes")

    def _param_shapes(self, n_features):
        C, Z = self.n_condition(), self.n_latent
        shapes = self._encoder.param_shapes(n_features + C, Z)     # reads x (⊕ c)
        shapes.update(self._decoder.param_shapes(self._latent_width() + C, n_features))
        shapes.update(self._prior_shapes(n_features))                  # prior_u (K, D)
        shapes.update(self._post.param_shapes(Z))                  # a flow's own weights (IAF)
        return shapes

    def _init_params(self, P, rng):
        """Hidden layers by the activation's initialiser, heads Glorot; biases zero
        (docs/01-dense-layers.md)."""
        act = self.activation
        for name, W in P.items():
            if "_W" in name:
                hidden = name.startswith(("enc_W", "dec_W"))
                W[...] = init_weight(*W.shape, act if hidden else "identity", rng, self._dtype)
        self._post.init_params(P, rng)
        self._init_prior(P, rng)                                       # last: same draws before

    def _latent_width(self):
        """Columns of a sample ``z``: ``Z``, or ``M·K`` for ``M`` categoricals of ``K`` classes."""
        return self._post.latent_width(self.n_latent)

    def noise_shape(self, n_samples, n_examples):
        return (n_samples, n_examples, self._post.noise_width(self.n_latent))

    def _draw(self, rng, shape):
        return self._post.draw_noise(rng, shape, self._dtype)

    def _check_eps(self, eps, n_examples):
        return self._post.check_noise(super()._check_eps(eps, n_examples))

    def _evaluation_noise(self, X, n_samples):
        return self._post.noise_from_normal(super()._evaluation_noise(X, n_samples))

    def _posterior_at(self, training):
        """The posterior for one objective: a Concrete's temperature of epoch ``n_iter_``,
        its hard samples when no gradient is wanted (docs/15-discrete-latents.md)."""
        post = self._post.at(getattr(self, "n_iter_", 0), training)
        if self._post.param_shapes(self.n_latent):     # a flow's own weights (docs/18-normalising-flows.md)
            post = post.bind(self.params_, self._grad_buffer()[1])
        return post

    @property
    def _n_features_out(self):
        return self._latent_width()

    # --------------------------------------------------------------- objective
    def _encode_forward(self, X, condition):
        """``μ (N, Z)``, the second head and the encoder's cache, from ``x`` (⊕ ``c``)."""
        x_in = self._lik.encoder_input(X, self._dtype)                       # (N, D)
        if condition is not None:
            x_in = np.concatenate([x_in, condition.astype(x_in.dtype)], axis=1)  # (N, D + C)
        _, mu, scale_params, enc_c = self._encoder.forward(self.params_, x_in)
        return mu, scale_params, enc_c

    def _elbo_objective(self, X, eps, beta, need_grads=True, condition=None):
        """Negative β-ELBO and its gradient by the chain rule (docs/05-elbo.md): the
        written-out :meth:`_diagonal_elbo` where it applies, else composed: through the
        decoder MLP and the likelihood, the reparameterisation, the KL (closed form, or
        Monte Carlo for a posterior without one) and the encoder MLP.  With
        ``gradient_estimator="stl"`` the KL's gradient is that of its Monte Carlo form
        with the score term dropped (docs/05-elbo.md#sticking-the-landing);
        the loss is the same.  Returns ``(loss, flat_grad or None, terms)``.
        """
        if self._written_out and condition is None:
            return self._diagonal_elbo(X, eps, beta, need_grads)
        P, post = self.params_, self._posterior_at(need_grads)
        mu, head, enc_c = self._encode_forward(X, condition)                # (N, Z), (N, ·)
        z, z_c = post.sample_forward(mu, head, eps)                         # (S, N, Z)
        log_px, dec_c = self._decoder.forward(P, z, X, condition)           # (S, N)
        if post.closed_form_kl and self._prior is None:
            kl, kl_c = post.kl_forward(mu, head)                            # (N,)
        else:                                     # log q − log p(z), p(z) the VampPrior's
            kl, kl_c = monte_carlo_kl_forward(post, mu, head, z, eps, self._log_prior_forward)
        loss, terms, dlog_px, dkl = elbo_loss(log_px, [kl], beta, self._dtype)
        if not need_grads:
            return loss, None, terms
        # backward from the seeds ∂loss/∂log p(x|z_s) = −1/(SN), ∂loss/∂KL = β/N
        flat, G = self._grad_buffer()
        dz = self._decoder.backward(G, dlog_px, dec_c)                      # (S, N, Z)
        if self.gradient_estimator == "stl":         # through z only: log q's parameters fixed
            dz += kl_path_backward(post, dkl, z, z_c)
            dmu_kl = dhead_kl = 0
        elif post.closed_form_kl and self._prior is None:
            dmu_kl, dhead_kl = post.kl_backward(dkl, kl_c)                  # (N, Z), (N, ·)
        else:
            dz_kl, dmu_kl, dhead_kl = monte_carlo_kl_backward(post, dkl, kl_c,
                                                              self._log_prior_backward)
            dz += dz_kl
        dmu, dhead = post.sample_backward(dz, z_c)                          # (N, Z), (N, ·)
        self._encoder.backward(G, dmu + dmu_kl, dhead + dhead_kl, enc_c)
        return loss, self._add_prior_grads(flat), terms

    def factored_objective(self, X, eps, beta, condition, max_rows):
        """The written-out step with the weights of at least 2¹⁵ entries handed back as their
        factors ``(a, da)`` instead of ``aᵀ da`` (:class:`~npvae.models.protocol.TrainableModel`;
        docs/11-optimisation.md#fusing-the-weight-gradient-into-adam); None where it does
        not apply (the composed path, or more than ``max_rows`` rows ``S·N``)."""
        if not (self._written_out and condition is None
                and eps.shape[0] * eps.shape[1] <= max_rows):
            return None
        factors = {n: None for n, shape in self.layout_.shapes.items()
                   if "_W" in n and np.prod(shape) >= 1 << 15}                # name -> (a, da)
        return self._diagonal_elbo(X, eps, beta, True, factors) + (factors,)

    def _diagonal_elbo(self, X, eps, beta, need_grads=True, factors=None):
        """The step of the common VAE written out, llm.c style: the negative β-ELBO of the
        diagonal Gaussian posterior under the prior ``N(0, I)`` and its gradient, the
        forward top to bottom, then the backward in reverse order (docs/05-elbo.md#the-whole-pass).
        Any widths, activation and likelihood; ``S ≥ 1``; the standard gradient or STL.
        Kernels are the backend's (``kernel.impl``: :func:`npvae.backend.compiled_in`),
        products BLAS, gradients written into the buffer's views (or, for the weights named
        in ``factors``, their factors into it: :meth:`factored_objective`).  It equals the
        composed path of :meth:`_elbo_objective` (tests/test_vae_step.py); ``(loss, flat, terms)``.
        """
        P, lik, act, dtype = self.params_.arrays, self._lik, self.activation, self._dtype
        f_fwd, f_bwd = bias_activation_forward.impl, bias_activation_backward.impl
        S, N, Z = eps.shape
        n_enc, n_dec = len(self._encoder.hidden), len(self._decoder.hidden)

        # ============================ forward ============================
        # encoder: h_{i+1} = f(h_i W_i + b_i), h_0 = x        docs/01-dense-layers.md#forward-pass
        x = (X if type(lik).encoder_input is Likelihood.encoder_input     # what it reads of x
             else lik.encoder_input(X, dtype))                             # (N, D)
        hs = [x]                                           # each layer's input, for dW = hᵀ da
        for i in range(n_enc):
            a = hs[-1] @ P[f"enc_W{i}"]                                    # (N, H_i)
            hs.append(f_fwd(a, P[f"enc_b{i}"], act, out=a)[0])             # h = f(a + b)
        h = hs[-1]                                                         # (N, H)
        # the two heads: μ = h W_μ + b_μ, λ = log σ² = h W_λ + b_λ
        mu = h @ P["enc_mu_W"] + P["enc_mu_b"]                             # (N, Z)
        logvar = h @ P["enc_logvar_W"] + P["enc_logvar_b"]                 # (N, Z)
        # z = μ + e^{λ/2} ⊙ ε                   docs/02-reparameterisation.md#the-reparameterised-sample
        sigma = np.exp(0.5 * logvar)                                       # (N, Z)
        z = mu + sigma * eps                                               # (S, N, Z)
        # decoder: g_{i+1} = f(g_i V_i + c_i), g_0 = z; out = g V_out + c_out
        gs = [z.reshape(S * N, Z)]
        for i in range(n_dec):
            a = gs[-1] @ P[f"dec_W{i}"]                                    # (S·N, H_i)
            gs.append(f_fwd(a, P[f"dec_b{i}"], act, out=a)[0])
        out = gs[-1] @ P["dec_out_W"]
        out += P["dec_out_b"]                                              # (S·N, ·)
        out = out.reshape((S, N) + lik.output_shape(X.shape[1]))
        # log p(x|z_s), the likelihood's kernel                        docs/04-likelihoods.md
        log_px, lik_c = lik.log_prob_forward(out, X, P)                    # (S, N)
        # KL(q ‖ N(0, I)) = ½ Σ_j (μ_j² + e^{λ_j} − 1 − λ_j)
        #                                            docs/03-kl-divergences.md#kl-to-the-standard-normal
        var = np.exp(logvar)                                               # (N, Z)
        kl = 0.5 * (mu * mu + var - 1 - logvar).sum(axis=-1)               # (N,)
        # loss = −(1/N) Σ_n [(1/S) Σ_s log p(x_n|z_ns) − β KL_n]    docs/05-elbo.md#the-training-loss
        reconstruction = log_px.mean(axis=0)                               # (N,)
        loss = float(-np.mean(reconstruction - beta * kl))
        terms = {"reconstruction": reconstruction, "kl": kl, "elbo": reconstruction - kl}
        if not need_grads:
            return loss, None, terms

        # ============================ backward ===========================
        flat, G = getattr(self, "_grad_ws", None), getattr(self, "_grad_views_ws", None)  # reused
        if flat is None or flat.shape != (self.layout_.size,) or flat.dtype != dtype:
            flat, G = self._grad_buffer()                                  # name -> view of flat
        # seeds ∂loss/∂log p(x_n|z_ns) = −1/(SN), ∂loss/∂KL_n = β/N
        #                                            docs/05-elbo.md#seeds-of-the-backward-pass
        dlog_px = np.full((S, N), -1.0 / (S * N), dtype=dtype)
        dkl = np.full((N, 1), beta / N, dtype=dtype)
        # through the likelihood: dout = dlog_px ∂log p/∂out     docs/05-elbo.md#through-the-likelihood
        dout, dlik = lik.log_prob_backward(dlog_px, lik_c)                 # (S, N, ·)
        for name, g in dlik.items():                                       # e.g. obs_logvar
            G[name][...] = g
        dout = dout.reshape(S * N, -1)
        # decoder, last first: dV = gᵀ dout, dc = Σ dout, dg = dout Vᵀ  docs/05-elbo.md#through-the-decoder-mlp
        _weight_grad(gs[-1], dout, G, "dec_out_W", factors)
        G["dec_out_b"][...] = dout.sum(axis=0)
        dg = dout @ P["dec_out_W"].T                                       # (S·N, H)
        for i in reversed(range(n_dec)):
            # da = dg ⊙ f'(a), f' from the output g alone, db = Σ da
            #                                docs/01-dense-layers.md#backward-through-the-activation
            da, G[f"dec_b{i}"][...] = f_bwd(dg, (gs[i + 1], act, True))   # the kernel's cache
            # dV = gᵀ da, dg = da Vᵀ                 docs/01-dense-layers.md#backward-of-the-affine-map
            _weight_grad(gs[i], da, G, f"dec_W{i}", factors)
            dg = da @ P[f"dec_W{i}"].T
        dz = dg.reshape(S, N, Z)                                           # (S, N, Z)
        if self.gradient_estimator == "stl":
            # STL: the KL's gradient through z alone, (β/(NS)) (z − ε/σ)
            #                                                  docs/05-elbo.md#sticking-the-landing
            d = dkl[None] / S                                              # (1, N, 1)
            dz += -d * (eps / sigma) + d * z
        # through z = μ + σ ε: dμ = Σ_s dz, dλ = Σ_s dz ⊙ ε ⊙ σ/2
        #                                         docs/02-reparameterisation.md#backward-of-the-sample
        dmu = dz.sum(axis=0)                                               # (N, Z)
        dlogvar = (dz * eps).sum(axis=0) * sigma / 2                       # (N, Z)
        if self.gradient_estimator != "stl":
            # the KL's own gradient: ∂KL/∂μ = μ, ∂KL/∂λ = ½(e^λ − 1)
            #                       docs/03-kl-divergences.md#gradients-of-the-kl-to-the-standard-normal
            dmu += dkl * mu
            dlogvar += dkl * 0.5 * (var - 1)
        # the heads: dW_λ = hᵀ dλ, dW_μ = hᵀ dμ, dh = dλ W_λᵀ + dμ W_μᵀ
        #                                                  docs/05-elbo.md#through-the-encoder
        _weight_grad(h, dlogvar, G, "enc_logvar_W", factors)
        G["enc_logvar_b"][...] = dlogvar.sum(axis=0)
        _weight_grad(h, dmu, G, "enc_mu_W", factors)
        G["enc_mu_b"][...] = dmu.sum(axis=0)
        if n_enc:
            dh = dlogvar @ P["enc_logvar_W"].T
            dh += dmu @ P["enc_mu_W"].T                                    # (N, H)
        for i in reversed(range(n_enc)):                                   # the encoder, last first
            da, G[f"enc_b{i}"][...] = f_bwd(dh, (hs[i + 1], act, True))
            _weight_grad(hs[i], da, G, f"enc_W{i}", factors)
            if i:                                                          # not into the data
                dh = da @ P[f"enc_W{i}"].T
        return loss, flat, terms


def _weight_grad(a, da, G, name, factors=None):
    """``dW = aᵀ da`` into ``G[name]`` as :func:`npvae.layers.dense.dense_backward` forms it, or
    ``(a, da)`` into ``factors[name]`` where it has that key
    (docs/11-optimisation.md#fusing-the-weight-gradient-into-adam)."""
    if factors is not None and name in factors:
        factors[name] = (a, da)
    elif a.shape[0] == 1:              # outer product: OpenBLAS's GEMM is ~5x slower here
        np.multiply(a[0][:, None], da[0][None, :], out=G[name])
    else:
        np.matmul(a.T, da, out=G[name])
