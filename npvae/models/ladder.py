"""The Ladder VAE (Sønderby, Raiko, Maaløe, Kaae Sønderby & Winther 2016;
docs/16-ladder-vae.md).

Generative model, as the hierarchical VAE's: ``p(z_L) = N(0, I)``,
``p(z_l | z_{l+1}) = N(μ^p_l, diag e^{λ^p_l})`` from a top-down network
``prior{l}`` reading ``z_{l+1}``, ``p(x | z_1)`` from the decoder.  Every variance
is the paper's ``softplus`` of a linear head plus a floor, ``e^λ = softplus(a) + 1e-4``
(:func:`.ladder_networks.softplus_logvar_forward`).

Inference, two passes:

* bottom-up, deterministic: ``d_0 = x``, ``d_l = MLP_l(d_{l−1})`` and a Gaussian
  ``N(μ̂_l, diag e^{λ̂_l})`` read from ``d_l`` (network ``up{l}``);
* top-down: ``q(z_L|x) = N(μ̂_L, e^{λ̂_L})``; below, ``q(z_l|·)`` is the
  precision-weighted merge of ``N(μ̂_l, e^{λ̂_l})`` with ``p(z_l | z_{l+1})`` at
  the sample ``z_{l+1} ~ q`` — the same top-down network, the same parameters,
  as the generative model (:mod:`npvae.distributions.precision`).

Every hidden layer is batch-normalised (:mod:`.ladder_networks`): the training
objective with its gradient (``loss_and_grads``, each step of ``fit``) uses the batch's
statistics, everything else (``elbo_terms``, the validation ELBO, ``score``,
``log_likelihood``, ``transform``, ``sample``…) the running averages, updated after
every training step.  The KL terms are closed form given the samples above.

Shapes: ``N`` batch, ``D`` data, ``Z_l`` latent size of level ``l``, ``S`` samples,
``L`` levels; ``l`` in the code is the 0-based index of level ``l + 1``.
"""
from __future__ import annotations

import numpy as np

from .._validation import check_latent_sizes, check_level_widths
from ..distributions.diagonal_gaussian import log_normal_forward
from ..distributions.posteriors import DiagonalGaussian
from ..distributions.precision import precision_merge_backward, precision_merge_forward
from ..layers.activations import check_activation
from ..layers.batchnorm import update_running
from ..layers.dense import init_weight
from ..objectives import elbo_loss
from .hierarchical import HierarchicalVAE
from .ladder_networks import BNDecoder, BNGaussianNetwork, softplus_inverse


class LadderVAE(HierarchicalVAE):
    """Ladder VAE with hand-written gradients and batch normalisation
    (docs/16-ladder-vae.md; Sønderby et al. 2016).

    Parameters
    ----------
    latent_sizes : tuple of int
        ``(Z_1, …, Z_L)``, bottom first (the paper's MNIST model: ``(64, 32, 16, 8, 4)``).
    hidden_sizes : tuple of int, or one tuple of int per level
        Widths of each level's bottom-up MLP (the paper's: ``((512,), (256,), (128,),
        (64,), (32,))``).  ``prior{l}`` (reading ``z_{l+1}``) uses level ``l+1``'s
        widths reversed, the decoder level 1's reversed.
    activation : the hidden layers' activation (after batch normalisation).
    likelihood, likelihood_params, n_samples, beta, optimizer, learning_rate,
    batch_size, epochs, dtype, random_state : as for :class:`~npvae.VAE`.
        KL warm-up is a training option: ``fit(X, kl_warmup_epochs=…)``.

    Attributes
    ----------
    params_ : dict name -> ndarray: ``up{l}_…`` (bottom-up), ``prior{l}_…``
        (top-down, ``l < L``), ``dec_…``; running statistics ``…_bn{i}_mean/_var``.
    """

    def __init__(self, latent_sizes=(64, 32, 16, 8, 4),
                 hidden_sizes=((512,), (256,), (128,), (64,), (32,)),
                 activation="leaky_relu", likelihood="bernoulli", likelihood_params=None,
                 n_samples=1, beta=1.0, optimizer="adam", learning_rate=2e-3, batch_size=256,
                 epochs=10, dtype="float64", random_state=None):
        self._keep_settings(locals())        # scikit-learn: each argument as given

    # the training objective is the ELBO, its gradient the exact one
    objective = "elbo"
    k = 1
    gradient_estimator = "standard"
    inference = "ladder"

    # ------------------------------------------------------------ architecture
    def _build(self):
        check_activation(self.activation)
        self._sizes = check_latent_sizes(self.latent_sizes)
        self._hidden = check_level_widths(self.hidden_sizes, len(self._sizes))
        act, L = self.activation, len(self._sizes)
        self._post = DiagonalGaussian()
        self._up = [BNGaussianNetwork(f"up{l + 1}", self._hidden[l], act) for l in range(L)]
        self._priors = [BNGaussianNetwork(f"prior{l + 1}", self._hidden[l + 1][::-1], act)
                        for l in range(L - 1)]
        self._decoder = BNDecoder(self._hidden[0][::-1], act, self._lik)

    def _param_shapes(self, n_features):
        shapes, width = {}, n_features
        for net, Z in zip(self._up, self._sizes):
            shapes.update(net.param_shapes(width, Z))
            width = net.hidden[-1] if net.hidden else width
        for l, prior in enumerate(self._priors):
            shapes.update(prior.param_shapes(self._sizes[l + 1], self._sizes[l]))
        shapes.update(self._decoder.param_shapes(self._sizes[0], n_features))
        return shapes

    def _init_params(self, P, rng):
        """Hidden weights by the activation's initialiser, heads Glorot, biases and
        ``β`` zero, ``γ`` one, running mean 0 and variance 1; the variance heads' biases
        ``softplus⁻¹(1 − σ²_min)`` (unit variance at a zero input) and the top-down
        networks' variance heads zero weights (unit variances), as the hierarchical
        VAE's prior networks do."""
        for name, W in P.items():
            if name.endswith(("_gamma", "_var")):
                W[...] = 1
            elif name.endswith("_var_b"):
                W[...] = softplus_inverse(1.0)
            elif "_W" in name:
                hidden = name.split("_")[1].startswith("W")
                W[...] = init_weight(*W.shape, self.activation if hidden else "identity",
                                     rng, self._dtype)
                if name.startswith("prior") and name.endswith("_var_W"):
                    W[...] = 0

    def check_fitted(self):
        """The boundary check, and batch normalisation's running variances finite and
        ``>= 0`` (a damaged file or assignment would otherwise surface as NaN scores)."""
        super().check_fitted()
        for name, v in self.params_.items():
            if name.endswith("_var") and not np.all(v >= 0):
                raise ValueError(f"params_[{name!r}], a running variance of batch "
                                 "normalisation, holds negative or undefined values: the "
                                 "parameters are damaged")

    # ------------------------------------------------------------- the passes
    def _training(self):
        """Whether the networks normalise by batch statistics: inside the training
        objective with its gradient (:meth:`training_objective`) only."""
        return getattr(self, "_bn_training_ws", False)

    def training_objective(self, X, eps, beta, need_grads=True, condition=None):
        """The training objective.  With its gradient (``loss_and_grads``, a training
        step) batch normalisation is in training mode and the batch's statistics are kept
        for :meth:`after_step`; without (``elbo_terms``, the validation ELBO of
        ``fit``) it uses the running statistics, as every evaluation does."""
        self._bn_training_ws, self._bn_batch_ws = need_grads, []
        try:
            return super().training_objective(X, eps, beta, need_grads, condition)
        finally:
            self._bn_training_ws = False

    def after_step(self):
        """Fold the last training batch's statistics into the running averages
        (docs/16-ladder-vae.md#running-statistics); called by
        :func:`npvae.training.train_step` after the optimiser's step."""
        P = self.params_
        for name, m, v, n in getattr(self, "_bn_batch_ws", ()):
            update_running(P[name + "mean"], P[name + "var"], m, v, n)
        self._bn_batch_ws = []

    def _inference_forward(self, X, eps):
        """Both passes.  Returns ``(mus, logvars, zs, cache)`` as the hierarchical VAE's,
        with the merged ``q`` per level (``(S, N, Z_l)`` below the top, ``(N, Z_L)``
        at the top) and the top-down ``(mu_p, logvar_p)`` in the cache."""
        P, L, training = self.params_, self._n_levels(), self._training()
        collect = getattr(self, "_bn_batch_ws", None) if training else None
        S, N = eps[0].shape[:2]
        d = self._lik.encoder_input(X, self._dtype)                        # (N, D)
        up = []
        for net in self._up:                                               # bottom-up
            d, mu_hat, lv_hat, c = net.forward(P, d, training, collect)    # (N, Z_l)
            up.append((mu_hat, lv_hat, c))
        mus, logvars, zs, z_c = [None] * L, [None] * L, [None] * L, [None] * L
        priors, merge_c = [None] * L, [None] * L
        mus[L - 1], logvars[L - 1] = up[L - 1][0], up[L - 1][1]
        zs[L - 1], z_c[L - 1] = self._post.sample_forward(mus[L - 1], logvars[L - 1], eps[L - 1])
        for l in range(L - 2, -1, -1):                                     # top-down
            Z_above = self._sizes[l + 1]
            _, mu_p, lv_p, pc = self._priors[l].forward(
                P, zs[l + 1].reshape(S * N, Z_above), training, collect)   # (S·N, Z_l)
            mu_p, lv_p = mu_p.reshape(S, N, -1), lv_p.reshape(S, N, -1)
            mus[l], logvars[l], merge_c[l] = precision_merge_forward(up[l][0], up[l][1],
                                                                     mu_p, lv_p)
            zs[l], z_c[l] = self._post.sample_forward(mus[l], logvars[l], eps[l])
            priors[l] = (mu_p, lv_p, pc)
        return mus, logvars, zs, (up, priors, merge_c, z_c, collect)

    def _elbo_objective(self, X, eps, beta, need_grads=True, condition=None):
        """Negative β-ELBO with closed-form KL terms given the samples above, and its
        gradient (docs/16-ladder-vae.md#the-elbo-and-its-backward)."""
        P, L = self.params_, self._n_levels()
        mus, logvars, zs, cache = self._inference_forward(X, eps)
        up, priors, merge_c, z_c, collect = cache
        log_px, dec_c = self._decoder.forward(P, zs[0], X, self._training(), collect)
        kls, kl_c = [], []
        for l in range(L - 1):
            kl, c = self._post.kl_to_gaussian_forward(mus[l], logvars[l], priors[l][0],
                                                      priors[l][1])
            kls.append(kl.mean(axis=0))                                    # (N,)
            kl_c.append(c)
        kl_top, top_c = self._post.kl_forward(mus[L - 1], logvars[L - 1])
        kls.append(kl_top)
        loss, terms, dlog_px, dkl = elbo_loss(log_px, kls, beta, self._dtype)
        if not need_grads:
            return loss, None, terms
        flat, G = self._grad_buffer()
        S = zs[0].shape[0]
        dz = self._decoder.backward(G, dlog_px, dec_c)                     # (S, N, Z_1)
        d_up = [None] * L
        for l in range(L - 1):                                             # reverse of top-down
            dmu_q, dlv_q = self._post.sample_backward(dz, z_c[l])          # (S, N, Z_l)
            dmu_k, dlv_k, dmu_p, dlv_p = self._post.kl_to_gaussian_backward(
                np.broadcast_to(dkl / S, (S, dkl.shape[0])), kl_c[l])
            dmu_hat, dlv_hat, dmu_pm, dlv_pm = precision_merge_backward(
                dmu_q + dmu_k, dlv_q + dlv_k, merge_c[l])
            d_up[l] = (dmu_hat, dlv_hat)
            Z_above = self._sizes[l + 1]
            dz = self._priors[l].backward(G, (dmu_p + dmu_pm).reshape(-1, dmu_pm.shape[-1]),
                                          (dlv_p + dlv_pm).reshape(-1, dmu_pm.shape[-1]),
                                          priors[l][2], need_dx=True).reshape(S, -1, Z_above)
        dmu, dlv = self._post.sample_backward(dz, z_c[L - 1])               # (N, Z_L)
        dmu_k, dlv_k = self._post.kl_backward(dkl, top_c)
        d_up[L - 1] = (dmu + dmu_k, dlv + dlv_k)
        dd = None
        for l in range(L - 1, -1, -1):                                     # reverse of bottom-up
            dd = self._up[l].backward(G, *d_up[l], up[l][2], dh=dd, need_dx=l > 0)
        return loss, flat, terms

    def log_weights_forward(self, X, eps, condition=None):
        """``log w_k = log p(x|z_1) + log N(z_L; 0, I) + Σ_{l<L} log p(z_l|z_{l+1}) −
        Σ_l log q(z_l|·)`` ``(K, N)`` for the log-likelihood estimate (no gradient:
        the Ladder VAE trains on the ELBO)."""
        P, L = self.params_, self._n_levels()
        mus, logvars, zs, (up, priors, _, _, collect) = self._inference_forward(X, eps)
        log_px, _ = self._decoder.forward(P, zs[0], X, self._training(), collect)
        log_q = sum(self._post.log_q_forward(lv, e)[0] for lv, e in zip(logvars, eps))
        log_pz = log_normal_forward(zs[L - 1], 0.0, 0.0)[0]
        for l in range(L - 1):
            log_pz = log_pz + log_normal_forward(zs[l], priors[l][0], priors[l][1])[0]
        return log_px + log_pz - log_q, {"log_px": log_px, "log_pz": log_pz,
                                         "log_q": log_q}, None

    def log_weights_backward(self, dlog_w, cache, path_scale=None):
        raise NotImplementedError("the Ladder VAE trains on the ELBO only")

    # ------------------------------------------------------------- public API
    def _means_forward(self, X):
        """``(mus, logvars)`` of the merged ``q`` per level ``(N, Z_l)`` in evaluation
        mode, each level's top-down prior read at the mean of the level above."""
        P, L = self.params_, self._n_levels()
        d = self._lik.encoder_input(X, self._dtype)
        up = []
        for net in self._up:
            d, mu_hat, lv_hat, _ = net.forward(P, d, False)
            up.append((mu_hat, lv_hat))
        mus, logvars = [None] * L, [None] * L
        mus[L - 1], logvars[L - 1] = up[L - 1]
        for l in range(L - 2, -1, -1):
            _, mu_p, lv_p, _ = self._priors[l].forward(P, mus[l + 1], False)
            mus[l], logvars[l], _ = precision_merge_forward(*up[l], mu_p, lv_p)
        return mus, logvars

    def encode(self, X):
        """Posterior parameters per level ``(mus, logvars)``, lists of ``(N, Z_l)``: the
        merged ``q`` with every top-down prior read at the mean of the level above."""
        return super().encode(X)

    def _prior_forward(self, l, z_above):
        """``p(z_l | z_{l+1})`` in evaluation mode, for :meth:`sample`."""
        S, N, Z_above = z_above.shape
        _, mu, logvar, c = self._priors[l].forward(self.params_,
                                                   z_above.reshape(S * N, Z_above), False)
        return mu.reshape(S, N, -1), logvar.reshape(S, N, -1), c
