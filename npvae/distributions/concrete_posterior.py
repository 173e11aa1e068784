"""Categorical latents through the Concrete / Gumbel-softmax relaxation
(docs/15-discrete-latents.md; Jang, Gu & Poole 2017; Maddison, Mnih & Teh 2017).

``VAE(posterior="concrete", n_latent=M, posterior_params={"n_categories": K,
"temperature": τ})``: ``M`` categorical variables of ``K`` classes each, a uniform
prior ``p(c) = Π_m U(K)``.  The encoder has one head, the logits ``η (N, M·K)``
(``enc_logits_W/_b``; no mean head); category ``k`` of variable ``m`` is column
``m·K + k`` of the logits, of the noise and of the decoder's input.

* Noise: uniforms ``u (S, N, M·K)`` in the open interval ``(0, 1)``, one per
  category, turned into Gumbels ``g = −log(−log u)``
  (docs/15-discrete-latents.md#the-gumbel-noise-path).
* Training (a gradient is wanted): the relaxed sample
  ``y = softmax((η + g)/τ)`` per variable feeds the decoder; with
  ``straight_through`` the one-hot ``argmax`` feeds it and the gradient passes
  through ``y`` as if it had (biased).
* Evaluation (``score``, ``elbo_terms``, ``log_weights``, ``log_likelihood``, the
  trainer's validation): the exact categorical sample by the Gumbel-max trick,
  one-hot; ``log q(c|x) = Σ_m log π_{m,c_m}`` and ``log p(c) = −M log K``.  The
  importance-sampled ``log p(x)`` is then that of the discrete model
  ``Σ_c p(x|c) p(c)``, with the categorical posterior as the proposal.
* KL: the discrete ``KL(Cat(π_m) ‖ U(K)) = Σ_k π_mk (log π_mk + log K)`` summed over
  ``m``, exact for the discrete model, as in Jang et al.'s code (not the relaxed
  densities' Monte Carlo KL of Maddison et al.).
* Temperature: ``τ_e = max(τ_min, τ₀ exp(−r e))`` at epoch ``e`` (``model.n_iter_``,
  saved in checkpoints), Jang et al.'s annealing counted in epochs; ``r = 0``
  keeps ``τ₀``.
"""
from __future__ import annotations

import copy
import math

import numpy as np
from scipy.special import log_softmax

from .posteriors import POSTERIORS
from .samplers import concrete_sample_backward, concrete_sample_forward
from .uniform_noise import UniformNoisePosterior, integer, number

#: the options of ``posterior_params`` and their defaults
DEFAULTS = {"n_categories": 10, "temperature": 1.0, "anneal_rate": 0.0,
            "min_temperature": 0.5, "straight_through": False}


def one_hot_argmax(s):
    """One-hot ``argmax`` of ``s (..., K)`` along the last axis, in ``s``'s dtype."""
    return (np.arange(s.shape[-1]) == s.argmax(axis=-1)[..., None]).astype(s.dtype)


class ConcretePosterior(UniformNoisePosterior):
    """``M`` categorical variables of ``K`` classes, relaxed for training
    (docs/15-discrete-latents.md).  ``posterior_params``: ``n_categories`` ``K ≥ 2``,
    ``temperature`` ``τ₀ > 0``, ``anneal_rate`` ``r ≥ 0`` per epoch,
    ``min_temperature`` ``τ_min > 0``, ``straight_through`` (bool)."""

    name = "concrete"
    head = "logits"
    closed_form_kl = True
    DEFAULTS = DEFAULTS

    def __init__(self, params=None):
        p = self.read_params(params)
        if not isinstance(p["straight_through"], (bool, np.bool_)):
            raise ValueError("posterior_params['straight_through'] must be True or False, got "
                             f"{p['straight_through']!r}")
        self.K = integer(p, "n_categories", 2, 10 ** 6)
        self.temperature = number(p, "temperature", 0.0, False)
        self.anneal_rate = number(p, "anneal_rate", 0.0, True)
        self.min_temperature = number(p, "min_temperature", 0.0, False)
        self.straight_through = bool(p["straight_through"])
        self.tau = self.temperature          # the temperature in use (see :meth:`at`)
        self.hard = False                    # evaluation: exact one-hot samples

    # ---------------------------------------------------------------- set-up
    def temperature_at(self, epoch):
        """``τ_e = max(τ_min, τ₀ e^{−r e})``; ``τ₀`` when ``r = 0``."""
        if self.anneal_rate == 0:
            return self.temperature
        return max(self.min_temperature, self.temperature * math.exp(-self.anneal_rate * epoch))

    def at(self, epoch, training):
        """A copy for one objective: the temperature of ``epoch``, hard samples unless
        ``training``."""
        out = copy.copy(self)
        out.tau, out.hard = self.temperature_at(epoch), not training
        return out

    def head_size(self, M):
        return M * self.K

    def latent_width(self, M):
        return M * self.K

    def _split(self, x):
        """``(..., M·K) -> (..., M, K)``."""
        return x.reshape(x.shape[:-1] + (-1, self.K))

    # ------------------------------------------------------------- sampling
    def sample_forward(self, mu, logits, u):
        """``z (S, N, M·K)``: relaxed ``softmax((η + g)/τ)``, or one-hot (evaluation,
        straight-through).  ``mu`` is None (no mean head)."""
        S, N, MK = u.shape
        eta, uu = self._split(logits), self._split(u)                       # (N, M, K), (S, N, M, K)
        if self.hard:
            g = -np.log(-np.log(uu))
            return one_hot_argmax(eta + g).reshape(S, N, MK), None         # Gumbel-max
        tau = np.asarray(self.tau, dtype=logits.dtype)
        y, c = concrete_sample_forward(eta, tau, uu)                        # (S, N, M, K)
        z = one_hot_argmax(y) if self.straight_through else y
        return z.astype(logits.dtype, copy=False).reshape(S, N, MK), c

    def sample_backward(self, dz, cache):
        """``(0, dη (N, M·K))``: the softmax-with-temperature VJP
        (docs/15-discrete-latents.md#the-softmax-with-temperature-backward); straight-through
        passes ``dz`` to ``y`` unchanged."""
        if cache is None:
            raise ValueError("hard (evaluation) samples of posterior='concrete' have no gradient")
        S, N, MK = dz.shape
        dlogits = concrete_sample_backward(self._split(dz), cache)["logits"]  # (N, M, K)
        return 0, dlogits.reshape(N, MK).astype(dz.dtype, copy=False)

    # ------------------------------------------------------------------ KL
    def kl_forward(self, mu, logits):
        """``KL(q(c|x) ‖ U(K)^M) = Σ_m Σ_k π_mk (log π_mk + log K)`` ``(N,)``."""
        log_pi = log_softmax(self._split(logits), axis=-1)                  # (N, M, K)
        pi = np.exp(log_pi)
        kl = (pi * (log_pi + math.log(self.K))).sum(axis=(-1, -2))
        return kl, (pi, log_pi)

    def kl_backward(self, dkl, cache):
        """``dη_mk = dKL · π_mk (log π_mk − Σ_j π_mj log π_mj)``
        (docs/15-discrete-latents.md#the-kl-to-the-uniform-prior)."""
        pi, log_pi = cache
        entropy_term = (pi * log_pi).sum(axis=-1, keepdims=True)            # (N, M, 1)
        d = dkl[:, None, None] * pi * (log_pi - entropy_term)
        return 0, d.reshape(d.shape[0], -1)

    # ------------------------------------------------- densities of hard samples
    def log_q_forward(self, logits, u):
        """``log q(c|x) = Σ_m log π_{m,c_m}`` ``(S, N)`` at the Gumbel-max sample ``c``."""
        log_pi = log_softmax(self._split(logits), axis=-1)                  # (N, M, K)
        c = one_hot_argmax(log_pi - np.log(-np.log(self._split(u))))        # (S, N, M, K)
        return (c * log_pi).sum(axis=(-1, -2)), (c, np.exp(log_pi))

    def log_q_backward(self, dlog_q, cache):
        """``dη = Σ_s dlog_q_s (c_s − π)`` (the sample ``c`` held fixed)."""
        c, pi = cache
        d = (dlog_q[..., None, None] * (c - pi)).sum(axis=0)
        return d.reshape(d.shape[0], -1)

    def log_prior_forward(self, z):
        """``log p(c) = −M log K`` ``(S, N)`` for one-hot ``z (S, N, M·K)``."""
        M = z.shape[-1] // self.K
        return np.full(z.shape[:2], -M * math.log(self.K), dtype=z.dtype), z.shape

    def log_prior_backward(self, dlog_p, cache):
        return (np.zeros(cache, dtype=dlog_p.dtype),)

    def prior_sample(self, rng, n, M, dtype):
        """``n`` one-hot draws of the uniform prior ``(n, M·K)``."""
        c = rng.integers(0, self.K, (n, M))
        return (np.arange(self.K) == c[..., None]).astype(dtype).reshape(n, M * self.K)

    # ----------------------------------------------------------- summaries
    def mean(self, mu, logits):
        """``E_q[c] = π`` ``(N, M·K)``, the posterior mean of the one-hot code."""
        return np.exp(log_softmax(self._split(logits), axis=-1)).reshape(logits.shape)

    def marginal_logvar(self, logits, M=None):
        """``log π(1 − π)`` ``(N, M·K)``: the variances of the one-hot code's entries."""
        log_pi = log_softmax(self._split(logits), axis=-1)
        with np.errstate(divide="ignore"):
            return (log_pi + np.log(-np.expm1(log_pi))).reshape(logits.shape)


POSTERIORS["concrete"] = ConcretePosterior        # VAE(posterior="concrete")
