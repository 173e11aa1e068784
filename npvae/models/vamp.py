"""The prior of a model's top latent: ``N(0, I)`` or the VampPrior (docs/17-vampprior.md).

:class:`PriorMixin` gives :class:`~npvae.VAE` and :class:`~npvae.HierarchicalVAE`
``log p(z)`` at samples with its backward, and draws of ``p(z)``.  With
``prior="vamp"`` the prior ``p(z) = (1/K) Σ_k q(z | u_k)`` is the mixture of the
encoder's posteriors at the pseudo-inputs ``u_k = hardtanh(prior_u_k)``: the forward
runs the encoder a second time, at the ``K`` pseudo-inputs; the backward runs that pass
backward into a workspace of its own (the model's backward pass overwrites the
encoder's gradient), which :meth:`PriorMixin._add_prior_grads` adds to the model's
gradient at the end.

A model using it provides ``_pseudo_encode_forward(u) -> (mu_u (K, Z), logvar_u (K, Z),
cache)`` (the top level's posterior at inputs ``u (K, D)``) and
``_pseudo_encode_backward(G, dmu_u, dlogvar_u, cache) -> du (K, D)``, writing the
encoder's gradient into the views ``G``.
"""
from __future__ import annotations

import numpy as np

from ..distributions.vamp_prior import (hardtanh_backward, hardtanh_forward, make_prior,
                                        vamp_log_prior_backward, vamp_log_prior_forward,
                                        vamp_sample)


class PriorMixin:
    """``log p(z)`` and draws of the prior, ``N(0, I)`` (the posterior's own prior) or
    the VampPrior (see the module's docstring)."""

    #: the VampPrior once built, None for ``N(0, I)`` (a model without the ``prior`` setting,
    #: the Ladder VAE, keeps this)
    _prior = None

    def _build_prior(self, requirements):
        """The prior from ``prior`` and ``prior_params`` (models saved before the
        VampPrior have neither: the standard normal); ``requirements`` maps the settings
        the VampPrior needs to their one allowed value."""
        self._prior = make_prior(getattr(self, "prior", "standard"),
                                 getattr(self, "prior_params", None))
        if self._prior is not None:
            for name, value in requirements.items():
                if getattr(self, name) != value:
                    raise ValueError(f"prior='vamp' needs {name}={value!r}, got "
                                     f"{getattr(self, name)!r}")

    def _prior_shapes(self, n_features):
        """The prior's parameters: ``prior_u (K, D)`` for the VampPrior, else none."""
        return {} if self._prior is None else self._prior.param_shapes(n_features)

    def _init_prior(self, P, rng):
        if self._prior is not None:
            self._prior.init_params(P, rng, self._dtype)

    def pseudo_inputs(self):
        """The VampPrior's pseudo-inputs ``u = hardtanh(prior_u)`` ``(K, D)``, as the
        encoder reads them (images, for image data)."""
        self.check_fitted()
        if self._prior is None:
            raise ValueError("pseudo_inputs: this model has prior='standard', no pseudo-inputs")
        return hardtanh_forward(self.params_["prior_u"], self._prior.hardtanh)[0].copy()

    # --------------------------------------------------------- log p(z) at samples
    def _pseudo_posteriors(self):
        """``(mu_u (K, Z), logvar_u (K, Z), cache)``: the top level's posterior at the
        pseudo-inputs, the mixture's components."""
        u, h_c = hardtanh_forward(self.params_["prior_u"], self._prior.hardtanh)   # (K, D)
        mu_u, logvar_u, enc_c = self._pseudo_encode_forward(u)
        return mu_u, logvar_u, (h_c, enc_c)

    def _log_prior_forward(self, z):
        """``log p(z)`` ``(S, N)`` at ``z (S, N, Z)``; ``(log_p, cache)``."""
        if self._prior is None:
            return self._post.log_prior_forward(z)
        mu_u, logvar_u, pc = self._pseudo_posteriors()
        log_p, kc = vamp_log_prior_forward(z, mu_u, logvar_u)
        return log_p, (pc, kc)

    def _log_prior_backward(self, dlog_p, cache):
        """``dz (S, N, Z)`` of ``Σ dlog_p ⊙ log p(z)``.  For the VampPrior the gradient on
        the pseudo-inputs and on the encoder (through its pass at them) goes to the prior's
        workspace; :meth:`_add_prior_grads` adds it to the model's gradient."""
        if self._prior is None:
            return self._post.log_prior_backward(dlog_p, cache)[0]
        (h_c, enc_c), kc = cache
        dz, dmu_u, dlogvar_u = vamp_log_prior_backward(dlog_p, kc)          # (S, N, Z), (K, Z) ×2
        buf, G = self._prior_grad_buffer()
        buf.fill(0)
        du = self._pseudo_encode_backward(G, dmu_u, dlogvar_u, enc_c)       # (K, D)
        G["prior_u"][...] = hardtanh_backward(du, h_c)
        return dz

    def _add_prior_grads(self, flat):
        """After the model's backward pass wrote ``flat``: add the VampPrior's part (no-op
        for the standard prior).  ``prior_u``'s entries, which that pass does not write,
        are the prior's alone."""
        if self._prior is None:
            return flat
        buf, G = self._prior_grad_buffer()
        self._grad_buffer()[1]["prior_u"][...] = 0
        flat += buf
        return flat

    def _prior_grad_buffer(self):
        """The VampPrior's gradient workspace ``(P,)`` and its named views."""
        buf = getattr(self, "_prior_grad_ws", None)
        if buf is None or buf.shape != (self.layout_.size,) or buf.dtype != self._dtype:
            buf = self._prior_grad_ws = self.layout_.allocate(self._dtype)
            self._prior_views_ws = self.layout_.views(buf)
        return buf, self._prior_views_ws

    # ------------------------------------------------------------------ sampling
    def _prior_draw(self, rng, n, Z):
        """``n`` draws of ``p(z)`` ``(n, Z)``: for the VampPrior a component ``k`` uniformly,
        then ``z ~ q(z | u_k)``."""
        if self._prior is None:
            return self._post.prior_sample(rng, n, Z, self._dtype)
        k = rng.integers(0, self._prior.K, n)
        eps = rng.standard_normal((n, Z)).astype(self._dtype)
        with np.errstate(over="ignore", invalid="ignore"):   # refused by _decode
            mu_u, logvar_u, _ = self._pseudo_posteriors()
            return vamp_sample(mu_u, logvar_u, k, eps)
