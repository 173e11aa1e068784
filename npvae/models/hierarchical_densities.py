"""The hierarchical VAE's log-densities at the samples, and their gradients: the exact
one, and STL's and DReG's with ``log q``'s parameters held fixed
(docs/07-hierarchical-vae.md#sticking-the-landing-with-several-levels), and the top
level's posterior at the VampPrior's pseudo-inputs (docs/17-vampprior.md#two-levels).

They serve the Monte Carlo ELBO of ``inference="markov"`` (and of either inference
with STL) and the importance weights of the IWAE bound and of the log-likelihood.
:class:`SampleDensities` is a mixin of :class:`~npvae.HierarchicalVAE`: it uses
the model's ``_inference_forward``/``_inference_backward``, ``_log_prior_forward``/
``_log_prior_backward`` (:mod:`npvae.models.vamp`: ``p(z_L)``), ``_prior_forward``/
``_prior_backward``, ``_decoder``, ``_encoders`` and ``_post``.

Shapes: ``S`` samples (``K`` for importance weights), ``N`` examples, ``Z_l`` the
latent dimension of level ``l``, ``L`` levels.
"""
from __future__ import annotations

import numpy as np

from ..distributions.diagonal_gaussian import log_normal_backward, log_normal_forward
from ..objectives import elbo_loss


class SampleDensities:
    """``log p(x|z_1)``, ``log q(z_l|·)`` and ``log p(z_l|z_{l+1})`` at the samples, with
    the ELBO and the log-weights built from them (see the module's docstring)."""

    def _log_densities_forward(self, X, eps):
        """Every log-density at the samples ``z^s`` from ``eps``: ``(log_px (S, N),
        log_q, log_p, cache)`` with ``log_q[l] = log q(z_l|·)`` (change of variables)
        and ``log_p[l] = log p(z_l|z_{l+1})``, ``log_p[L−1] = log N(z_L; 0, I)``."""
        P, L = self.params_, self._n_levels()
        mus, logvars, zs, inf_c = self._inference_forward(X, eps)
        log_px, dec_c = self._decoder.forward(P, zs[0], X)                 # (S, N)
        log_q, q_c = zip(*[self._post.log_q_forward(lv, e) for lv, e in zip(logvars, eps)])
        log_p, p_c = [], []
        for l in range(L - 1):
            mu_p, logvar_p, pr_c = self._prior_forward(l, zs[l + 1])       # (S, N, Z_l)
            lp, lp_c = log_normal_forward(zs[l], mu_p, logvar_p)           # (S, N)
            log_p.append(lp)
            p_c.append((lp_c, pr_c))
        lp_top, top_c = self._log_prior_forward(zs[L - 1])                 # (S, N): N(0, I), VampPrior
        log_p.append(lp_top)
        p_c.append(top_c)
        return log_px, list(log_q), log_p, (inf_c, zs, dec_c, q_c, p_c)

    def _log_densities_backward(self, dlog_px, dlog_q, dlog_p, cache, path_scale=None):
        """Gradient of ``Σ dlog_px ⊙ log_px + Σ_l (dlog_q[l] ⊙ log_q[l] + dlog_p[l] ⊙
        log_p[l])`` with respect to the flat parameters.

        With ``path_scale (S, N)`` (STL: ones, DReG: ``w̃``) ``log q``'s parameters are
        held fixed: each ``log q(z_l|·)`` sends its seed to the samples alone
        (:meth:`_log_q_path_backward`), and the encoders' gradient on every sample is
        multiplied by ``path_scale``.  The generative networks' gradient is the exact one.
        """
        inf_c, zs, dec_c, q_c, p_c = cache
        L = self._n_levels()
        flat, G = self._grad_buffer()
        dzs = [np.zeros_like(z) for z in zs]
        dzs[0] += self._decoder.backward(G, dlog_px, dec_c)                # via log p(x|z_1)
        for l in range(L - 1):                                              # via log p(z_l|z_{l+1})
            lp_c, pr_c = p_c[l]
            dz, dmu_p, dlogvar_p = log_normal_backward(dlog_p[l], lp_c)
            dzs[l] += dz
            dzs[l + 1] += self._prior_backward(l, G, dmu_p, dlogvar_p, pr_c)
        dzs[L - 1] += self._log_prior_backward(dlog_p[L - 1], p_c[L - 1])  # via log p(z_L)
        if path_scale is None:                                              # the exact gradient
            dlogvars = [self._post.log_q_backward(dlog_q[l], q_c[l]) for l in range(L)]
        else:                                                               # score terms dropped
            self._log_q_path_backward(dzs, dlog_q, inf_c)
            dzs = [dz * path_scale[..., None] for dz in dzs]                # (S, N, Z_l)
            dlogvars = [None] * L
        self._inference_backward(G, dzs, [None] * L, dlogvars, inf_c)
        return self._add_prior_grads(flat)

    def _log_q_path_backward(self, dzs, dlog_q, inf_c):
        """Add to ``dzs`` the gradient of ``Σ_l dlog_q[l] ⊙ log q(z_l|·)`` on the samples
        with every encoder's weights held fixed: the path term of STL and DReG.

        ``log q(z_l|·)`` reaches the samples through ``z_l`` itself (``−ε/σ``) and, for
        ``inference="markov"`` above level 1, through its parameters ``μ_l, λ_l``,
        which the encoder computes from the sample ``z_{l−1}``: their seeds at fixed
        ``z_l`` (``ε/σ``, ``½(ε² − 1)``) go back through that encoder to ``z_{l−1}``,
        its weights' gradient discarded.
        """
        net_c, z_c = inf_c
        markov = self.inference == "markov"
        for l in range(self._n_levels()):
            dzs[l] += self._post.log_q_dz(dlog_q[l], z_c[l])                # through z_l
            if markov and l > 0:                                            # through z_{l−1}
                dmu, dlogvar = self._post.log_q_dparams(dlog_q[l], z_c[l])  # (S, N, Z_l)
                Z = dmu.shape[-1]
                d_in = self._encoders[l].backward(self._scratch_grads(), dmu.reshape(-1, Z),
                                                  dlogvar.reshape(-1, Z), net_c[l],
                                                  need_dx=True)             # (S·N, Z_{l−1})
                dzs[l - 1] += d_in.reshape(dzs[l - 1].shape)

    def _pseudo_encode_forward(self, u):
        """``q(z_L | u)`` at the pseudo-inputs ``u (K, D)`` up the deterministic path
        ``h_l`` (docs/17-vampprior.md#two-levels): ``(mu_u, logvar_u, caches)``."""
        caches, h = [], u
        for enc in self._encoders:
            h, mu, logvar, c = enc.forward(self.params_, h)
            caches.append(c)
        return mu, logvar, caches

    def _pseudo_encode_backward(self, G, dmu, dlogvar, caches):
        """Down the path: the levels below the top pass on ``dh`` alone."""
        dh = self._encoders[-1].backward(G, dmu, dlogvar, caches[-1], need_dx=True)
        for l in range(len(caches) - 2, -1, -1):
            zeros = np.zeros((dh.shape[0], self._sizes[l]), dh.dtype)
            dh = self._encoders[l].backward(G, zeros, zeros, caches[l], dh=dh, need_dx=True)
        return dh                                                           # (K, D)

    def _scratch_grads(self):
        """Named views of a scratch gradient vector ``(P,)``: where a backward pass that
        is run only for its input gradient writes the weights' gradient it discards."""
        buf = getattr(self, "_scratch_ws", None)
        if buf is None or buf.shape != (self.layout_.size,) or buf.dtype != self._dtype:
            buf = self._scratch_ws = self.layout_.allocate(self._dtype)
            self._scratch_views_ws = self.layout_.views(buf)
        return self._scratch_views_ws

    def _elbo_monte_carlo(self, X, eps, beta, need_grads=True):
        """The ELBO with sampled KL terms: ``KL_l ≈ (1/S) Σ_s [log q(z_l^s|·) −
        log p(z_l^s|z_{l+1}^s)]``, and ``log q(z_L|·) − log N(z_L; 0, I)`` at the top
        (Burda et al. 2016); by STL with ``gradient_estimator="stl"``."""
        S, N = eps[0].shape[:2]
        log_px, log_q, log_p, cache = self._log_densities_forward(X, eps)
        kls = [(lq - lp).mean(axis=0) for lq, lp in zip(log_q, log_p)]      # (N,) each
        loss, terms, dlog_px, dkl = elbo_loss(log_px, kls, beta, self._dtype)
        if not need_grads:
            return loss, None, terms
        # ∂loss/∂log q_l = β/(S N) = dkl/S, ∂loss/∂log p_l = −β/(S N)
        d = np.broadcast_to(dkl / S, (S, N))
        L = self._n_levels()
        scale = np.ones((S, N), self._dtype) if self.gradient_estimator == "stl" else None
        flat = self._log_densities_backward(dlog_px, [d] * L, [-d] * L, cache, scale)
        return loss, flat, terms

    def log_weights_forward(self, X, eps, condition=None):
        """``log w_k = log p(x|z_1^k) + log N(z_L^k; 0, I) + Σ_{l<L} log p(z_l^k|z_{l+1}^k)
        − Σ_l log q(z_l^k|·)`` ``(K, N)`` (docs/07-hierarchical-vae.md)."""
        log_px, log_q, log_p, cache = self._log_densities_forward(X, eps)
        log_pz = np.sum(log_p, axis=0)                                      # (K, N)
        log_qz = np.sum(log_q, axis=0)                                      # (K, N)
        parts = {"log_px": log_px, "log_pz": log_pz, "log_q": log_qz}
        return log_px + log_pz - log_qz, parts, cache

    def log_weights_backward(self, dlog_w, cache, path_scale=None):
        """Gradient of ``Σ dlog_w ⊙ log w`` with respect to the flat parameters; with
        ``path_scale (K, N)``, STL's or DReG's (:meth:`_log_densities_backward`)."""
        L = self._n_levels()
        return self._log_densities_backward(dlog_w, [-dlog_w] * L, [dlog_w] * L, cache,
                                            path_scale)
