"""Normalising-flow posteriors: a diagonal Gaussian pushed through ``F`` invertible maps
(docs/18-normalising-flows.md; Rezende & Mohamed 2015; Kingma et al. 2016).

``z_0 = μ + σ ⊙ ε`` (the reparameterised base sample, docs/02-reparameterisation.md),
then ``z_f = T_f(z_{f−1})`` for ``f = 1 … F``; by the change of variables

    log q(z_F|x) = log N(ε; 0, I) − Σ_j log σ_j − Σ_f log |det ∂z_f/∂z_{f−1}|.

No closed-form KL exists: the objectives take the Monte Carlo estimate
``log q(z_F|x) − log p(z_F)`` (:func:`npvae.objectives.monte_carlo_kl_forward`).
``log q`` at a sample depends on ``μ`` (through ``z_0`` inside the log-determinants),
so a flow implements :meth:`~npvae.distributions.posteriors.Posterior.log_q_mu_forward`.

The encoder's second head holds ``λ = log σ²`` ``(N, Z)`` in its first ``Z`` columns and
the flow's per-example inputs after them (a planar flow's ``u, w, b``; an IAF's
context ``h``).  A subclass gives the flow itself: :meth:`FlowPosterior._flows_forward`
and :meth:`FlowPosterior._flows_backward`.

Shapes: ``mu, logvar (N, Z)``, noise and samples ``(S, N, Z)``, log-determinants ``(S, N)``.
"""
from __future__ import annotations

import numpy as np

from .diagonal_gaussian import (log_q_backward, log_q_forward, reparameterize_backward,
                                reparameterize_forward)
from .posteriors import Posterior, posterior_options


def flow_options(name, params, defaults):
    """``posterior_params`` of the flow ``name`` checked against ``defaults`` (one-line
    ``ValueError``s); returns the options with the defaults filled in."""
    p = posterior_options(name, params, defaults)
    for key, value in p.items():
        if value is None and defaults[key] is None:
            continue
        if (not isinstance(value, (int, np.integer)) or isinstance(value, bool)
                or not 1 <= value <= 1000):
            raise ValueError(f"posterior_params[{key!r}] must be an integer in [1, 1000], "
                             f"got {value!r}")
        p[key] = int(value)
    return p


class FlowPosterior(Posterior):
    """A diagonal Gaussian base and ``F`` flows (docs/18-normalising-flows.md).

    A subclass sets ``name``, ``head``, :meth:`flow_head_size` and the two flow methods.
    """

    closed_form_kl = False
    gaussian = False
    path_derivative = False

    def head_size(self, Z):
        return Z + self.flow_head_size(Z)

    def flow_head_size(self, Z):
        """Columns of the head after ``λ``: the flow's per-example inputs."""
        raise NotImplementedError

    def _flows_forward(self, z0, extra):
        """``z_F (S, N, Z)``, ``Σ_f log |det ∂z_f/∂z_{f−1}|`` ``(S, N)`` and a cache, from
        ``z_0 (S, N, Z)`` and the head's flow columns ``extra (N, ·)``."""
        raise NotImplementedError

    def _flows_backward(self, dz, dlogdet, cache):
        """``(dz_0 (S, N, Z), dextra (N, ·))`` from the gradients on ``z_F`` and on the
        summed log-determinant ``(S, N)``."""
        raise NotImplementedError

    # ------------------------------------------------ the flow after the base sample
    def _forward(self, mu, scale_params, eps):
        Z = eps.shape[-1]
        z0, z0_c = reparameterize_forward(mu, scale_params[:, :Z], eps)      # (S, N, Z)
        z, logdet, f_c = self._flows_forward(z0, scale_params[:, Z:])
        return z, logdet, (z0_c, f_c, Z)

    def _backward(self, dz, dlogdet, cache):
        z0_c, f_c, Z = cache
        dz0, dextra = self._flows_backward(dz, dlogdet, f_c)
        dmu, dlogvar = reparameterize_backward(dz0, z0_c)                    # (N, Z) each
        return dmu, np.concatenate([dlogvar, dextra], axis=1)

    def sample_forward(self, mu, scale_params, eps):
        """``z_F = T_F ∘ … ∘ T_1(μ + σ ⊙ ε)`` ``(S, N, Z)``."""
        z, logdet, cache = self._forward(mu, scale_params, eps)
        return z, (cache, logdet.shape)

    def sample_backward(self, dz, cache):
        cache, shape = cache
        return self._backward(dz, np.zeros(shape, dtype=dz.dtype), cache)

    def log_q_mu_forward(self, mu, scale_params, eps):
        """``log q(z_F|x) = log N(ε; 0, I) − ½ Σ_j λ_j − Σ_f log |det ∂z_f/∂z_{f−1}|`` ``(S, N)``
        (docs/18-normalising-flows.md#the-posterior-through-a-flow)."""
        Z = eps.shape[-1]
        z, logdet, cache = self._forward(mu, scale_params, eps)
        log_q0, q0_c = log_q_forward(scale_params[:, :Z], eps)               # (S, N)
        return log_q0 - logdet, (cache, q0_c, z.shape)

    def log_q_mu_backward(self, dlog_q, cache):
        cache, q0_c, z_shape = cache
        dmu, dscale_params = self._backward(np.zeros(z_shape, dtype=dlog_q.dtype), -dlog_q, cache)
        dscale_params[:, :z_shape[-1]] += log_q_backward(dlog_q, q0_c)
        return dmu, dscale_params

    def log_q_forward(self, scale_params, eps):
        raise ValueError(f"log q of posterior={self.name!r} depends on μ: use log_q_mu_forward")

    def log_q_backward(self, dlog_q, cache):
        raise ValueError(f"log q of posterior={self.name!r} depends on μ: use log_q_mu_backward")

    # ------------------------------------------------------------------ summaries
    def mean(self, mu, scale_params):
        """``T(μ)``: the flow applied to the base mean (``ε = 0``) ``(N, Z)``, the point
        ``transform`` reports; not ``E_q[z]``, which has no closed form."""
        return self._forward(mu, scale_params, np.zeros((1,) + mu.shape, dtype=mu.dtype))[0][0]

    def marginal_logvar(self, scale_params, Z):
        """The base Gaussian's ``λ`` ``(N, Z)`` (the flow's marginals have no closed form)."""
        return scale_params[:, :Z]
