"""The hierarchical VAE with ``L`` stochastic levels (MATH §7).

Generative model (top-down): ``p(z_L) = N(0, I)``,
``p(z_l | z_{l+1}) = N(μ^p_l(z_{l+1}), diag e^{λ^p_l(z_{l+1})})`` by one MLP
per level, and ``p(x | z_1)`` by the decoder MLP and the likelihood of MATH §4.

Inference, two variants:

* ``"independent"`` (the factorisation of the notes, MATH §7): a deterministic
  bottom-up path ``h_1 = f_1(x)``, ``h_l = f_l(h_{l−1})``; each level's
  Gaussian ``q(z_l|x) = N(μ_l(h_l), diag e^{λ_l(h_l)})`` reads its own ``h_l``.
  Every KL term of the ELBO is then closed form (MATH §3) given a sample of
  ``z_{l+1}``.
* ``"markov"`` (Burda et al. 2016, the two-level models of their Table 1):
  ``q(z_1|x) q(z_2|z_1) … q(z_L|z_{L−1})``, each level's encoder reading the
  reparameterised sample of the level below.  The KL terms are Monte Carlo
  estimates ``log q(z_l|·) − log p(z_l|z_{l+1})`` on the same samples.

Every gradient is written by hand from the kernels of :mod:`npvae.kernels`.
Deep hierarchies train better with KL warm-up (Sønderby et al. 2016;
``kl_warmup_epochs`` of :func:`npvae.training.train`).

Shape legend: ``N`` batch, ``D`` data dimension, ``H`` hidden width, ``Z`` (or
``Z_l``) latent dimension of a level, ``S`` Monte Carlo samples, ``K``
importance samples, ``L`` number of levels.  In the code, ``l`` is the 0-based
index of level ``l + 1``; parameter names and messages count levels from 1.

Parameter names (``params_``), for level ``l = 1..L``:

* ``enc{l}_W{i}``, ``enc{l}_b{i}``: hidden layers of the level-``l`` encoder;
  ``enc{l}_mu_W/_b``, ``enc{l}_logvar_W/_b``: its heads for ``μ_l, λ_l``;
* ``prior{l}_W{i}``, ``prior{l}_b{i}``, ``prior{l}_mu_W/_b``,
  ``prior{l}_logvar_W/_b`` (``l < L``): the network of ``p(z_l | z_{l+1})``;
* ``dec_W{i}``, ``dec_b{i}``, ``dec_out_W``, ``dec_out_b`` and the
  likelihood's own (``obs_logvar``): the decoder ``p(x | z_1)``, named as in
  :class:`~npvae.VAE`.

With ``L = 1`` the names are the VAE's with ``enc1_`` for ``enc_``, in the
same order, the same ``random_state`` draws the same initial parameters, and
the objective and gradients are exactly the VAE's (MATH §7) — for ``"markov"``
with ``objective="elbo"`` up to its Monte Carlo KL (see the class docstring).
"""
from __future__ import annotations

import numpy as np

from ._validation import check_data, check_noise, check_positive_int
from .base import CHUNK, BaseVAE
from .kernels import (dense_backward, dense_forward, init_weight, kl_diagonal_backward,
                      kl_diagonal_forward, kl_standard_normal_backward,
                      kl_standard_normal_forward, log_normal_backward, log_normal_forward,
                      log_q_backward, log_q_forward, mlp_backward, mlp_forward,
                      reparameterize_backward, reparameterize_forward)
from .kernels.activations import check_activation

INFERENCE = ("independent", "markov")


# ------------------------------------------------------- per-sample Gaussians
# The kernels of MATH §2 take posterior parameters (N, Z) shared by the S
# samples.  A markov level above the first has parameters per sample
# (S, N, Z): those are passed to the kernels as S·N rows with one sample each.

def _reparameterize(mu, logvar, eps):
    """``z = μ + σ ⊙ ε`` (MATH §2) for ``mu, logvar`` ``(N, Z)`` or ``(S, N, Z)``;
    ``eps (S, N, Z)``.  Returns ``(z (S, N, Z), cache)``."""
    if mu.ndim == 2:
        return reparameterize_forward(mu, logvar, eps)
    S, N, Z = eps.shape
    z, cache = reparameterize_forward(mu.reshape(S * N, Z), logvar.reshape(S * N, Z),
                                      eps.reshape(1, S * N, Z))
    return z.reshape(S, N, Z), cache


def _reparameterize_backward(dz, cache, per_sample):
    """``dμ``, ``dλ`` (MATH §2), shaped like the forward's ``mu, logvar``."""
    if not per_sample:
        return reparameterize_backward(dz, cache)
    S, N, Z = dz.shape
    dmu, dlogvar = reparameterize_backward(dz.reshape(1, S * N, Z), cache)
    return dmu.reshape(S, N, Z), dlogvar.reshape(S, N, Z)


def _log_q(logvar, eps):
    """``log q(z|·) = −½ Σ_j (log 2π + λ_j + ε_j²)`` (MATH §2) ``(S, N)``, for
    ``logvar`` ``(N, Z)`` or ``(S, N, Z)``."""
    if logvar.ndim == 2:
        return log_q_forward(logvar, eps)
    S, N, Z = eps.shape
    log_q, cache = log_q_forward(logvar.reshape(S * N, Z), eps.reshape(1, S * N, Z))
    return log_q.reshape(S, N), cache


def _log_q_backward(dlog_q, cache, per_sample):
    """``∂ log q / ∂λ_j = −½`` (MATH §2), shaped like the forward's ``logvar``."""
    if not per_sample:
        return log_q_backward(dlog_q, cache)
    S, N = dlog_q.shape
    return log_q_backward(dlog_q.reshape(1, S * N), cache).reshape(S, N, -1)


def _store(G, prefix, grads, n_hidden):
    """Write an MLP's ``[(dW, db), ...]`` into the gradient views ``G``: layer
    ``i < n_hidden`` is ``{prefix}_W{i}``, a layer after them ``{prefix}_out_W``."""
    for i, (dW, db) in enumerate(grads):
        w, b = (f"{prefix}_W{i}", f"{prefix}_b{i}") if i < n_hidden else \
               (f"{prefix}_out_W", f"{prefix}_out_b")
        G[w][...] = dW
        G[b][...] = db


class HierarchicalVAE(BaseVAE):
    """VAE with ``L`` stochastic levels and hand-written gradients (MATH §7;
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
    inference : ``"independent"`` (bottom-up deterministic path, closed-form
        KL terms; MATH §7) or ``"markov"`` (``q(z_l|z_{l−1})``, Monte Carlo KL
        terms; Burda et al. 2016).
    activation, likelihood, obs_variance, obs_logvar, n_levels, allow_nonbinary,
    n_samples, beta, objective, k, optimizer, learning_rate, batch_size,
    epochs, dtype, random_state :
        As for :class:`~npvae.VAE`.

    With ``L = 1`` and ``inference="independent"`` the objective and its
    gradients are the VAE's (MATH §7).  With ``inference="markov"`` and
    ``L = 1`` the importance weights are the VAE's too, but the ELBO's KL is
    the Monte Carlo estimate ``log q(z_1|x) − log N(z_1; 0, I)`` (same
    expectation, more variance).

    Attributes
    ----------
    params_ : dict name -> ndarray, live views of ``flat_params_`` (names in
        the module docstring).
    n_features_in_, rng_, history_ : as for :class:`~npvae.VAE`.
    """

    def __init__(self, latent_sizes=(100, 50), hidden_sizes=((200, 200), (100, 100)),
                 inference="independent", activation="tanh", likelihood="bernoulli",
                 obs_variance="fixed", obs_logvar=0.0, n_levels=256, allow_nonbinary=False,
                 n_samples=1, beta=1.0, objective="elbo", k=1, optimizer="adam",
                 learning_rate=1e-3, batch_size=100, epochs=10, dtype="float64",
                 random_state=None):
        self.latent_sizes = latent_sizes
        self.hidden_sizes = hidden_sizes
        self.inference = inference
        self.activation = activation
        self.likelihood = likelihood
        self.obs_variance = obs_variance
        self.obs_logvar = obs_logvar
        self.n_levels = n_levels
        self.allow_nonbinary = allow_nonbinary
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
        check_activation(self.activation)
        if self.inference not in INFERENCE:
            raise ValueError(f"inference must be one of {INFERENCE}, got {self.inference!r}")
        self._sizes = self._latent_sizes()
        self._hidden = self._level_hidden_sizes(len(self._sizes))

    def _latent_sizes(self):
        """``[Z_1, …, Z_L]``, validated."""
        sizes = self.latent_sizes
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (tuple, list)):
            raise ValueError("latent_sizes must be a tuple of positive ints (Z_1, ..., Z_L), "
                             f"bottom level first; got {sizes!r}")
        if len(sizes) == 0:
            raise ValueError("latent_sizes is empty: a HierarchicalVAE needs at least one "
                             "stochastic level")
        return [check_positive_int(z, f"latent_sizes[{l}] (Z_{l + 1})")
                for l, z in enumerate(sizes)]

    def _level_hidden_sizes(self, n_levels):
        """``hidden_sizes`` as one list of widths per level, validated."""
        hidden = self.hidden_sizes
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, (tuple, list)):
            raise ValueError("hidden_sizes must be a tuple of ints (the same widths at every "
                             "level) or a tuple of one tuple of ints per level; got "
                             f"{hidden!r}")
        nested = [isinstance(h, (tuple, list)) for h in hidden]
        if any(nested) and not all(nested):
            raise ValueError("hidden_sizes mixes ints and tuples; give either a tuple of ints "
                             "(the same widths at every level) or one tuple of ints per "
                             f"level; got {hidden!r}")
        if any(nested):
            if len(hidden) != n_levels:
                raise ValueError(f"hidden_sizes has {len(hidden)} per-level tuples but "
                                 f"latent_sizes has {n_levels} levels; give one tuple of "
                                 "widths per level, or a tuple of ints for the same widths at "
                                 "every level")
            per_level = [list(h) for h in hidden]
        else:
            per_level = [list(hidden) for _ in range(n_levels)]
        for l, widths in enumerate(per_level):
            for w in widths:
                check_positive_int(w, f"hidden layer width (level {l + 1})")
        return per_level

    def _n_levels(self):
        return len(self._sizes)

    def _enc_sizes(self, l):
        """Hidden widths of the encoder of level ``l + 1``."""
        return self._hidden[l]

    def _prior_sizes(self, l):
        """Hidden widths of ``p(z_{l+1} | z_{l+2})``: those of level ``l + 2`` reversed."""
        return self._hidden[l + 1][::-1]

    def _dec_sizes(self):
        """Hidden widths of ``p(x | z_1)``: those of level 1 reversed."""
        return self._hidden[0][::-1]

    def _param_shapes(self, n_features):
        sizes, shapes = self._sizes, {}

        def gaussian_net(prefix, width, hidden, Z):
            for i, h in enumerate(hidden):
                shapes[f"{prefix}_W{i}"], shapes[f"{prefix}_b{i}"] = (width, h), (h,)
                width = h
            shapes[f"{prefix}_mu_W"], shapes[f"{prefix}_mu_b"] = (width, Z), (Z,)
            shapes[f"{prefix}_logvar_W"], shapes[f"{prefix}_logvar_b"] = (width, Z), (Z,)
            return width

        h_width = n_features                        # width of h_{l−1} (h_0 = x)
        for l, Z in enumerate(sizes):
            if l == 0 or self.inference == "independent":
                width_in = h_width
            else:
                width_in = sizes[l - 1]             # markov: reads z_{l−1}
            h_width = gaussian_net(f"enc{l + 1}", width_in, self._enc_sizes(l), Z)
        for l in range(len(sizes) - 1):
            gaussian_net(f"prior{l + 1}", sizes[l + 1], self._prior_sizes(l), sizes[l])
        width = sizes[0]
        for i, h in enumerate(self._dec_sizes()):
            shapes[f"dec_W{i}"], shapes[f"dec_b{i}"] = (width, h), (h,)
            width = h
        n_out = int(np.prod(self._lik.output_shape(n_features)))
        shapes["dec_out_W"], shapes["dec_out_b"] = (width, n_out), (n_out,)
        shapes.update(self._lik.param_shapes(n_features))
        return shapes

    def _init_params(self, P, rng):
        """Hidden layers by the activation's initialiser, heads Glorot (MATH §1);
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

    def _reads_a_sample(self, prefix):
        """Whether the network ``prefix`` (``enc2``, ``prior1``, …) reads a latent sample."""
        if prefix.startswith("prior"):
            return True
        return self.inference == "markov" and prefix != "enc1"

    # ------------------------------------------------------------------ noise
    def _noise_shape(self, n_samples, n_examples):
        """One noise array per level: ``[(S, N, Z_1), …, (S, N, Z_L)]`` (MATH §2)."""
        return [(n_samples, n_examples, Z) for Z in self._sizes]

    def _check_eps(self, eps, n_examples):
        """``eps``: a list of ``L`` finite arrays ``(S, N, Z_l)`` with one ``S``."""
        L = self._n_levels()
        expected = ", ".join(f"(S, {n_examples}, {Z})" for Z in self._sizes)
        if not isinstance(eps, (list, tuple)):
            raise ValueError(f"eps must be a list of {L} arrays, one per stochastic level, of "
                             f"shapes [{expected}]; got a {type(eps).__name__}")
        if len(eps) != L:
            raise ValueError(f"eps must hold one array per stochastic level ({L}), of shapes "
                             f"[{expected}]; got {len(eps)} arrays")
        out = [check_noise(e, (n_examples, Z), self._dtype, name=f"eps[{l}] (level {l + 1})")
               for l, (e, Z) in enumerate(zip(eps, self._sizes))]
        samples = [e.shape[0] for e in out]
        if len(set(samples)) > 1:
            raise ValueError("every level's eps must have the same number of samples S; got "
                             + ", ".join(f"level {l + 1}: {s}" for l, s in enumerate(samples)))
        return out

    # ------------------------------------------------ Gaussian-output networks
    def _gaussian_net_forward(self, prefix, n_hidden, x):
        """``h = MLP(x)``, ``μ = h W_μ + b_μ``, ``λ = h W_λ + b_λ`` (MATH §1, §2).

        ``x (R, In)``; returns ``(h (R, H), mu (R, Z), logvar (R, Z), cache)``
        (``h = x`` without hidden layers).
        """
        P = self.params_
        weights = [(P[f"{prefix}_W{i}"], P[f"{prefix}_b{i}"]) for i in range(n_hidden)]
        h, mlp_c = mlp_forward(x, weights, [self.activation] * n_hidden)       # (R, H)
        mu, mu_c = dense_forward(h, P[f"{prefix}_mu_W"], P[f"{prefix}_mu_b"])   # (R, Z)
        logvar, lv_c = dense_forward(h, P[f"{prefix}_logvar_W"], P[f"{prefix}_logvar_b"])
        return h, mu, logvar, (mlp_c, mu_c, lv_c)

    def _gaussian_net_backward(self, prefix, n_hidden, dmu, dlogvar, cache, G, dh=None,
                               need_dx=True):
        """Backward of :meth:`_gaussian_net_forward`, writing into ``G``.

        ``dh (R, H)`` is an extra gradient on the output ``h`` (the next level
        of the bottom-up path reads it).  Returns ``dx (R, In)`` or None.
        """
        mlp_c, mu_c, lv_c = cache
        need_dh = n_hidden > 0 or need_dx
        dh_mu, G[f"{prefix}_mu_W"][...], G[f"{prefix}_mu_b"][...] = dense_backward(
            dmu, mu_c, need_dh)
        dh_lv, G[f"{prefix}_logvar_W"][...], G[f"{prefix}_logvar_b"][...] = dense_backward(
            dlogvar, lv_c, need_dh)
        if not need_dh:
            return None
        dh_total = dh_mu + dh_lv if dh is None else dh_mu + dh_lv + dh                # (R, H)
        if n_hidden == 0:
            return dh_total
        dx, grads = mlp_backward(dh_total, mlp_c, need_dx=need_dx)
        _store(G, prefix, grads, n_hidden)
        return dx

    # --------------------------------------------------------------- inference
    def _inference_forward(self, X, eps):
        """Posterior parameters and reparameterised samples of every level (MATH §2, §7).

        Returns ``(mus, logvars, zs, cache)``: lists over levels; ``zs[l]`` is
        ``(S, N, Z_l)``; ``mus[l]``, ``logvars[l]`` are ``(N, Z_l)``, except
        for markov levels above the first, ``(S, N, Z_l)`` (one per sample of
        the level below).
        """
        if self.inference == "independent":
            mus, logvars, net_c = self._bottom_up_forward(X)
            zs, z_c = [], []
            for mu, logvar, e in zip(mus, logvars, eps):
                z, c = _reparameterize(mu, logvar, e)                          # (S, N, Z_l)
                zs.append(z)
                z_c.append(c)
            return mus, logvars, zs, (net_c, z_c)
        return self._markov_forward(X, eps)

    def _bottom_up_forward(self, X):
        """``h_1 = f_1(x)``, ``h_l = f_l(h_{l−1})``; ``μ_l, λ_l`` from ``h_l`` (MATH §7)."""
        mus, logvars, caches = [], [], []
        h = X                                                                  # (N, D)
        for l in range(self._n_levels()):
            h, mu, logvar, c = self._gaussian_net_forward(f"enc{l + 1}",
                                                          len(self._enc_sizes(l)), h)
            mus.append(mu)                                                     # (N, Z_l)
            logvars.append(logvar)
            caches.append(c)
        return mus, logvars, caches

    def _markov_forward(self, X, eps):
        """``q(z_1|x) q(z_2|z_1) … q(z_L|z_{L−1})``, each encoder reading the
        previous level's sample (Burda et al. 2016)."""
        mus, logvars, zs, net_c, z_c = [], [], [], [], []
        S, N = eps[0].shape[:2]
        for l in range(self._n_levels()):
            inp = X if l == 0 else zs[l - 1].reshape(S * N, -1)               # (N, D) / (S·N, Z)
            _, mu, logvar, c = self._gaussian_net_forward(f"enc{l + 1}",
                                                          len(self._enc_sizes(l)), inp)
            if l > 0:
                mu, logvar = mu.reshape(S, N, -1), logvar.reshape(S, N, -1)   # (S, N, Z_l)
            z, zc = _reparameterize(mu, logvar, eps[l])                        # (S, N, Z_l)
            mus.append(mu)
            logvars.append(logvar)
            zs.append(z)
            net_c.append(c)
            z_c.append(zc)
        return mus, logvars, zs, (net_c, z_c)

    def _inference_backward(self, dzs, dmus, dlogvars, cache, G):
        """Backward of :meth:`_inference_forward`, writing into ``G``.

        ``dzs[l] (S, N, Z_l)``: gradients on the samples from the generative
        side; ``dmus[l]``, ``dlogvars[l]`` (or None): direct gradients on the
        posterior parameters (closed-form KLs, ``log q``).
        """
        net_c, z_c = cache
        L = self._n_levels()
        markov = self.inference == "markov"
        dh = None                                   # gradient on h_l from level l+1's MLP
        for l in range(L - 1, -1, -1):
            per_sample = markov and l > 0
            dmu, dlogvar = _reparameterize_backward(dzs[l], z_c[l], per_sample)   # MATH §2
            if dmus[l] is not None:
                dmu = dmu + dmus[l]
            if dlogvars[l] is not None:
                dlogvar = dlogvar + dlogvars[l]
            if per_sample:
                S, N, Z = dmu.shape
                dmu, dlogvar = dmu.reshape(S * N, Z), dlogvar.reshape(S * N, Z)
            d_in = self._gaussian_net_backward(f"enc{l + 1}", len(self._enc_sizes(l)), dmu,
                                               dlogvar, net_c[l], G, dh=dh, need_dx=l > 0)
            if markov and l > 0:                    # through z_{l−1} into the lower encoders
                dzs[l - 1] = dzs[l - 1] + d_in.reshape(dzs[l - 1].shape)
            else:                                   # down the deterministic path h_{l−1}
                dh = d_in

    # -------------------------------------------------------------- generative
    def _prior_level_forward(self, l, z_above):
        """``μ^p_l, λ^p_l`` of ``p(z_{l+1} | z_{l+2})`` ``(S, N, Z_l)`` from
        ``z_above (S, N, Z_{l+1})`` (MATH §7)."""
        S, N, Z_above = z_above.shape
        _, mu, logvar, c = self._gaussian_net_forward(f"prior{l + 1}", len(self._prior_sizes(l)),
                                                      z_above.reshape(S * N, Z_above))
        return mu.reshape(S, N, -1), logvar.reshape(S, N, -1), (c, z_above.shape)

    def _prior_level_backward(self, l, dmu_p, dlogvar_p, cache, G):
        """Backward of :meth:`_prior_level_forward`; returns ``dz_above (S, N, Z_{l+1})``."""
        c, shape = cache
        S, N, Z = dmu_p.shape
        dz = self._gaussian_net_backward(f"prior{l + 1}", len(self._prior_sizes(l)),
                                         dmu_p.reshape(S * N, Z), dlogvar_p.reshape(S * N, Z),
                                         c, G)
        return dz.reshape(shape)

    def _elbo_objective(self, X, eps, beta, need_grads=True):
        """Negative β-ELBO (MATH §7) and its hand-written gradient.

        ``ELBO = (1/S) Σ_s log p(x|z_1^s) − KL(q(z_L|·) ‖ N(0, I))
        − Σ_{l<L} E_{q(z_{l+1})} KL(q(z_l|·) ‖ p(z_l|z_{l+1}))``; the loss
        weights the KL terms by ``β`` (MATH §5).  ``"independent"``: closed-form
        KLs (MATH §3) given the samples of ``z_{l+1}``; ``"markov"``: Monte
        Carlo ``log q − log p`` on the same samples.

        Returns ``(loss, flat_grad or None, terms)`` with ``terms``
        ``reconstruction``, ``kl_1`` … ``kl_L`` (β not applied), ``kl`` (their
        sum) and ``elbo`` ``= reconstruction − kl``, each ``(N,)``.
        """
        if self.inference == "markov":
            return self._elbo_monte_carlo(X, eps, beta, need_grads)
        L = self._n_levels()
        S, N = eps[0].shape[:2]
        mus, logvars, zs, inf_c = self._inference_forward(X, eps)
        log_px, dec_c = self._decoder_forward(zs[0], X)                        # (S, N)
        kls, kl_c = [], []
        for l in range(L - 1):
            kl, c = self._kl_level_forward(l, mus[l], logvars[l], zs[l + 1])   # (N,)
            kls.append(kl)
            kl_c.append(c)
        kl_top, top_c = kl_standard_normal_forward(mus[L - 1], logvars[L - 1])  # (N,)
        kls.append(kl_top)
        reconstruction = log_px.mean(axis=0)                                   # (N,)
        loss, terms = self._elbo_loss_and_terms(reconstruction, kls, beta)
        if not need_grads:
            return loss, None, terms
        # backward: ∂loss/∂log p(x|z_1^s) = −1/(S N), ∂loss/∂KL_l(x_n) = β/N
        flat = self.layout_.allocate(self._dtype)
        G = self.layout_.views(flat)
        dkl = np.full(N, beta / N, dtype=self._dtype)
        dzs = [np.zeros_like(z) for z in zs]
        dmus, dlogvars = [None] * L, [None] * L
        dzs[0] += self._decoder_backward(np.full((S, N), -1.0 / (S * N), dtype=self._dtype),
                                         dec_c, G)
        for l in range(L - 1):
            dmus[l], dlogvars[l], dz_above = self._kl_level_backward(l, dkl, kl_c[l], G)
            dzs[l + 1] += dz_above
        dmus[L - 1], dlogvars[L - 1] = kl_standard_normal_backward(dkl, top_c)
        self._inference_backward(dzs, dmus, dlogvars, inf_c, G)
        return loss, flat, terms

    def _elbo_loss_and_terms(self, reconstruction, kls, beta):
        """``loss = −mean_n(reconstruction − β Σ_l KL_l)`` and the per-example terms."""
        kl = np.sum(kls, axis=0)                                               # (N,)
        loss = float(-np.mean(reconstruction - beta * kl))
        terms = {"reconstruction": reconstruction}
        terms.update({f"kl_{l + 1}": k for l, k in enumerate(kls)})
        terms.update({"kl": kl, "elbo": reconstruction - kl})
        return loss, terms

    def _kl_level_forward(self, l, mu_q, logvar_q, z_above):
        """``(1/S) Σ_s KL(q(z_l|x) ‖ p(z_l | z_{l+1}^s))`` ``(N,)``, closed form
        (MATH §3) for level ``l + 1 < L`` of the independent inference."""
        mu_p, logvar_p, p_c = self._prior_level_forward(l, z_above)           # (S, N, Z_l)
        shape = mu_p.shape
        kl, kl_c = kl_diagonal_forward(np.broadcast_to(mu_q, shape).copy(),
                                       np.broadcast_to(logvar_q, shape).copy(),
                                       mu_p, logvar_p)                         # (S, N)
        return kl.mean(axis=0), (kl_c, p_c, shape)

    def _kl_level_backward(self, l, dkl, cache, G):
        """Backward of :meth:`_kl_level_forward` (MATH §3): returns
        ``(dmu_q (N, Z_l), dlogvar_q (N, Z_l), dz_above (S, N, Z_{l+1}))``;
        the prior network's gradient goes into ``G``."""
        kl_c, p_c, shape = cache
        S, N = shape[:2]
        dkl_s = np.broadcast_to(dkl / S, (S, N)).copy()                        # (S, N)
        dmu_q, dlogvar_q, dmu_p, dlogvar_p = kl_diagonal_backward(dkl_s, kl_c)  # (S, N, Z_l)
        dz_above = self._prior_level_backward(l, dmu_p, dlogvar_p, p_c, G)
        return dmu_q.sum(axis=0), dlogvar_q.sum(axis=0), dz_above

    # ---------------------------------------------- log-densities on samples
    def _log_densities_forward(self, X, eps):
        """Every log-density of the model at the samples ``z^s`` from ``eps``.

        Returns ``(log_px (S, N), log_q, log_p, cache)`` with ``log_q[l] =
        log q(z_l|·)`` (MATH §2, change of variables) and ``log_p[l] =
        log p(z_l|z_{l+1})``, ``log_p[L−1] = log N(z_L; 0, I)`` (MATH §6, §7),
        each ``(S, N)``.
        """
        L = self._n_levels()
        mus, logvars, zs, inf_c = self._inference_forward(X, eps)
        log_px, dec_c = self._decoder_forward(zs[0], X)                        # (S, N)
        log_q, q_c = [], []
        for logvar, e in zip(logvars, eps):
            lq, c = _log_q(logvar, e)                                          # (S, N)
            log_q.append(lq)
            q_c.append(c)
        log_p, p_c = [], []
        for l in range(L - 1):
            lp, c = self._log_prior_level_forward(l, zs[l], zs[l + 1])         # (S, N)
            log_p.append(lp)
            p_c.append(c)
        lp_top, top_c = log_normal_forward(zs[L - 1], 0.0, 0.0)                # (S, N)
        log_p.append(lp_top)
        p_c.append(top_c)
        return log_px, log_q, log_p, (inf_c, zs, dec_c, q_c, p_c)

    def _log_densities_backward(self, dlog_px, dlog_q, dlog_p, cache):
        """Gradient of ``Σ dlog_px ⊙ log_px + Σ_l (dlog_q[l] ⊙ log_q[l] +
        dlog_p[l] ⊙ log_p[l])`` with respect to the flat parameters."""
        inf_c, zs, dec_c, q_c, p_c = cache
        L = self._n_levels()
        flat = self.layout_.allocate(self._dtype)
        G = self.layout_.views(flat)
        dzs = [np.zeros_like(z) for z in zs]
        dzs[0] += self._decoder_backward(dlog_px, dec_c, G)                    # via log p(x|z_1)
        for l in range(L - 1):
            dz, dz_above = self._log_prior_level_backward(l, dlog_p[l], p_c[l], G)
            dzs[l] += dz
            dzs[l + 1] += dz_above
        dzs[L - 1] += log_normal_backward(dlog_p[L - 1], p_c[L - 1])[0]       # via log p(z_L)
        markov = self.inference == "markov"
        dlogvars = [_log_q_backward(dlog_q[l], q_c[l], markov and l > 0) for l in range(L)]
        self._inference_backward(dzs, [None] * L, dlogvars, inf_c, G)
        return flat

    def _log_prior_level_forward(self, l, z, z_above):
        """``log p(z_l | z_{l+1}) = log N(z_l; μ^p_l(z_{l+1}), diag e^{λ^p_l(z_{l+1})})``
        ``(S, N)`` (MATH §2, §7)."""
        mu_p, logvar_p, p_c = self._prior_level_forward(l, z_above)           # (S, N, Z_l)
        log_p, lp_c = log_normal_forward(z, mu_p, logvar_p)                    # (S, N)
        return log_p, (lp_c, p_c)

    def _log_prior_level_backward(self, l, dlog_p, cache, G):
        """Returns ``(dz_l (S, N, Z_l), dz_above (S, N, Z_{l+1}))``; the prior
        network's gradient goes into ``G``."""
        lp_c, p_c = cache
        dz, dmu_p, dlogvar_p = log_normal_backward(dlog_p, lp_c)
        return dz, self._prior_level_backward(l, dmu_p, dlogvar_p, p_c, G)

    def _elbo_monte_carlo(self, X, eps, beta, need_grads=True):
        """The markov ELBO (MATH §7): ``KL_l ≈ (1/S) Σ_s [log q(z_l^s|·) −
        log p(z_l^s|z_{l+1}^s)]``, and ``log q(z_L|z_{L−1}) − log N(z_L; 0, I)``
        at the top (Burda et al. 2016)."""
        S, N = eps[0].shape[:2]
        log_px, log_q, log_p, cache = self._log_densities_forward(X, eps)
        kls = [(lq - lp).mean(axis=0) for lq, lp in zip(log_q, log_p)]         # (N,) each
        loss, terms = self._elbo_loss_and_terms(log_px.mean(axis=0), kls, beta)
        if not need_grads:
            return loss, None, terms
        # ∂loss/∂log p(x|z) = −1/(S N), ∂loss/∂log q_l = β/(S N), ∂loss/∂log p_l = −β/(S N)
        unit = np.full((S, N), 1.0 / (S * N), dtype=self._dtype)
        L = self._n_levels()
        flat = self._log_densities_backward(-unit, [beta * unit] * L, [-beta * unit] * L, cache)
        return loss, flat, terms

    # --------------------------------------------------- importance weights
    def _log_weights_forward(self, X, eps):
        """``log w_k = log p(x|z_1^k) + log N(z_L^k; 0, I) + Σ_{l<L} log p(z_l^k|z_{l+1}^k)
        − Σ_l log q(z_l^k|·)`` ``(K, N)`` (MATH §6, §7; Burda et al. 2016)."""
        log_px, log_q, log_p, cache = self._log_densities_forward(X, eps)
        log_pz = np.sum(log_p, axis=0)                                         # (K, N)
        log_qz = np.sum(log_q, axis=0)                                         # (K, N)
        log_w = log_px + log_pz - log_qz
        parts = {"log_px": log_px, "log_pz": log_pz, "log_q": log_qz}
        return log_w, parts, cache

    def _log_weights_backward(self, dlog_w, cache):
        """Gradient of ``Σ dlog_w ⊙ log w`` with respect to the flat parameters (MATH §6)."""
        L = self._n_levels()
        return self._log_densities_backward(dlog_w, [-dlog_w] * L, [dlog_w] * L, cache)

    # ------------------------------------------------------------- public API
    def _means_forward(self, X):
        """``(mus, logvars)`` per level ``(N, Z_l)``; for markov the level below's
        mean stands in for its sample, ``z_{l−1} := μ_{l−1}``."""
        if self.inference == "independent":
            return self._bottom_up_forward(X)[:2]
        mus, logvars = [], []
        inp = X
        for l in range(self._n_levels()):
            _, mu, logvar, _ = self._gaussian_net_forward(f"enc{l + 1}",
                                                          len(self._enc_sizes(l)), inp)
            mus.append(mu)
            logvars.append(logvar)
            inp = mu
        return mus, logvars

    def _encode_checked(self, X):
        L = self._n_levels()
        parts = [self._means_forward(X[i:i + CHUNK]) for i in range(0, X.shape[0], CHUNK)]
        mus = [np.concatenate([p[0][l] for p in parts]) for l in range(L)]
        logvars = [np.concatenate([p[1][l] for p in parts]) for l in range(L)]
        return mus, logvars

    def _posterior_means(self, X):
        return self._encode_checked(X)[0]

    def encode(self, X):
        """Posterior parameters per level: ``(mus, logvars)``, lists of ``L``
        arrays ``(N, Z_l)`` (MATH §2, §7).  For ``inference="markov"`` level
        ``l`` is evaluated at the mean of the level below."""
        self._check_fitted()
        return self._encode_checked(self._check_X(X))

    def transform(self, X):
        """The per-level posterior means concatenated, ``(N, Z_1 + … + Z_L)``."""
        return np.concatenate(self.encode(X)[0], axis=1)

    def decode(self, Z):
        """The likelihood's parameters (MATH §4) for ``z_1``: logits ``(M, D)``
        (Bernoulli), means ``(M, D)`` (Gaussian) or logits ``(M, D, V)``
        (categorical).

        ``Z`` is ``(M, Z_1)``, or ``(M, Z_1 + … + Z_L)`` as returned by
        :meth:`transform`, of which the first ``Z_1`` columns (``z_1``) are used.
        """
        self._check_fitted()
        Z = check_data(Z, name="Z")
        Z1, total = self._sizes[0], sum(self._sizes)
        if Z.shape[1] not in (Z1, total):
            raise ValueError(f"Z has {Z.shape[1]} features; decode takes z_1 (M, {Z1}) or the "
                             f"concatenated per-level latents (M, {total})")
        Z = Z[:, :Z1].astype(self._dtype, copy=False)
        out, _ = mlp_forward(Z, self._decoder_weights(), self._decoder_activations())
        return out.reshape((Z.shape[0],) + self._lik.output_shape(self.n_features_in_))

    def _decode_means(self, Z):
        """Likelihood means ``(M, D)`` for ``Z`` as :meth:`decode` takes it."""
        return self._lik.mean(self.decode(Z), self.params_)

    def sample(self, n, random_state=None):
        """``n`` ancestral draws: ``z_L ~ N(0, I)``, ``z_l ~ p(z_l | z_{l+1})``
        (MATH §7), decoded to the likelihood's means ``(n, D)``."""
        self._check_fitted()
        n = check_positive_int(n, "n")
        rng = self.rng_ if random_state is None else np.random.default_rng(random_state)
        L = self._n_levels()
        z = rng.standard_normal((1, n, self._sizes[L - 1])).astype(self._dtype)   # (1, n, Z_L)
        for l in range(L - 2, -1, -1):
            mu_p, logvar_p, _ = self._prior_level_forward(l, z)                   # (1, n, Z_l)
            eps = rng.standard_normal(mu_p.shape).astype(self._dtype)
            z = mu_p + np.exp(0.5 * logvar_p) * eps
        return self._decode_means(z[0])

    def reconstruct(self, X):
        """Likelihood means ``(N, D)`` decoded from the level-1 posterior mean."""
        return self._decode_means(self.encode(X)[0][0])
