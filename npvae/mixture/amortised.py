"""An amortised ``q(c|x)`` for a Gaussian mixture: one network for every example
(docs/13-em-and-variance-reduction.md#an-amortised-encoder).

``η = MLP_φ(x)`` (N, C) logits, ``q(c|x) = softmax(η)``, trained by gradient ascent
on the same ELBO as EM, ``(1/N) Σ_n Σ_c q_nc (log p(x_n, c) − log q_nc)``; its
gradient in the logits is ``q ⊙ (log p(x, c) − log q − ELBO_n)`` (the softmax
backward), then :func:`npvae.layers.mlp_backward`.  ``θ`` takes the closed-form
M-step on the encoder's ``q``.  The free categorical family contains the exact
posterior, so every nat between this ELBO and ``log p(x)`` at convergence is
the price of sharing one network across the examples: the amortisation gap.
"""
from __future__ import annotations

import numpy as np
from scipy.special import log_softmax, logsumexp

from ..layers import init_weight, mlp_backward, mlp_forward
from ..optim import Adam
from .em import check_mixture, log_joint, log_marginal, m_step, mixture_elbo


class AmortisedEncoder:
    """``x (N, D) -> log q(c|x) (N, C)``: dense layers ``D -> H… -> C``, parameters in
    one flat vector ``flat_`` with per-layer views ``weights_ = [(W, b), …]``."""

    def __init__(self, n_features, n_components, hidden_sizes=(16,), activation="tanh",
                 random_state=None):
        if n_features < 1 or n_components < 2:
            raise ValueError(f"need n_features >= 1 and n_components >= 2, got "
                             f"{n_features}, {n_components}")
        sizes = [n_features, *hidden_sizes, n_components]
        self.activations = [activation] * len(hidden_sizes) + ["identity"]
        shapes = [s for n_in, n_out in zip(sizes[:-1], sizes[1:]) for s in ((n_in, n_out),
                                                                          (n_out,))]
        self.flat_ = np.zeros(sum(int(np.prod(s)) for s in shapes))  # (P,)
        self.weights_ = self.views(self.flat_, shapes)
        self._shapes = shapes
        rng = np.random.default_rng(random_state)
        for (W, _), act in zip(self.weights_, self.activations):
            W[...] = init_weight(W.shape[0], W.shape[1], act, rng)

    @staticmethod
    def views(flat, shapes):
        """``[(W, b), …]`` views into ``flat`` (writing to a view writes to ``flat``)."""
        out, start = [], 0
        for shape in shapes:
            size = int(np.prod(shape))
            out.append(flat[start:start + size].reshape(shape))
            start += size
        return list(zip(out[0::2], out[1::2]))

    def grad_views(self, flat_grad):
        return self.views(flat_grad, self._shapes)

    def log_q(self, x):
        """``log q(c|x)``, ``(N, C)``."""
        logits, _ = mlp_forward(np.asarray(x, dtype=np.float64), self.weights_,
                                self.activations)
        return log_softmax(logits, axis=1)


def amortised_elbo_forward(x, encoder, a):
    """The mean ELBO with ``q = softmax(MLP_φ(x))``, given the log joint
    ``a = log p(x, c)`` ``(N, C)`` of :func:`~npvae.mixture.em.log_joint` (fixed while
    ``φ`` moves) (docs/13-em-and-variance-reduction.md#an-amortised-encoder).
    Returns ``(elbo, cache)``."""
    logits, caches = mlp_forward(x, encoder.weights_, encoder.activations)   # (N, C)
    log_q = log_softmax(logits, axis=1)                                     # (N, C)
    q = np.exp(log_q)
    elbo_n = np.sum(q * (a - log_q), axis=1)                                # (N,)
    return float(elbo_n.mean()), (caches, q, log_q, a, elbo_n)


def amortised_elbo_backward(delbo, cache, flat_grad=None, encoder=None):
    """Gradient of ``delbo · ELBO`` in the encoder's parameters
    (docs/13-em-and-variance-reduction.md#the-softmax-backward):
    ``dη_nc = delbo/N · q_nc (log p(x_n, c) − log q_nc − ELBO_n)``.

    Returns ``[(dW, db), …]``; with ``flat_grad`` and ``encoder`` given, written
    into ``flat_grad`` (the layout of ``encoder.flat_``).
    """
    caches, q, log_q, a, elbo_n = cache
    deta = (delbo / len(q)) * q * (a - log_q - elbo_n[:, None])             # (N, C)
    outs = encoder.grad_views(flat_grad) if flat_grad is not None else None
    return mlp_backward(deta, caches, need_dx=False, outs=outs)[1]


def fit_amortised(X, mixture, encoder, n_iter=30, encoder_steps=20, learning_rate=0.02,
                  reg_covar=1e-6):
    """Alternate ``encoder_steps`` Adam steps on ``φ`` (θ fixed) with a closed-form
    M-step on ``θ`` (q fixed), ``n_iter`` times.

    Returns ``(mixture, history)``; ``history`` holds ``elbo_steps`` (every encoder
    step), ``elbo_e`` (after the encoder steps), ``elbo_m`` (after the M-step) and
    ``log_px`` (at the ``θ`` the encoder steps saw), means per example in nats, and
    ``gap`` = ``log p(x; θ) − ELBO`` at the end (the amortisation gap).
    """
    x, mixture = check_mixture(X, mixture)
    if n_iter < 1 or encoder_steps < 1:
        raise ValueError(f"n_iter and encoder_steps must be >= 1, got {n_iter}, {encoder_steps}")
    optimizer = Adam(learning_rate)
    state = optimizer.init_state(encoder.flat_.size, np.float64)
    grad = np.zeros_like(encoder.flat_)                                     # (P,)
    history = {"elbo_steps": [], "elbo_e": [], "elbo_m": [], "log_px": []}
    for _ in range(n_iter):
        a = log_joint(x, mixture)                                           # (N, C)
        history["log_px"].append(logsumexp(a, axis=1).mean())
        for _ in range(encoder_steps):
            elbo, cache = amortised_elbo_forward(x, encoder, a)
            history["elbo_steps"].append(elbo)
            amortised_elbo_backward(-1.0, cache, grad, encoder)             # d(−ELBO)
            optimizer.step(encoder.flat_, grad, state)
        q = np.exp(encoder.log_q(x))                                        # (N, C)
        history["elbo_e"].append(mixture_elbo(x, q, mixture).mean())
        mixture = m_step(x, q, reg_covar)
        history["elbo_m"].append(mixture_elbo(x, q, mixture).mean())
    final_elbo = mixture_elbo(x, np.exp(encoder.log_q(x)), mixture).mean()
    history = {k: np.array(v) for k, v in history.items()}
    history["gap"] = float(log_marginal(x, mixture).mean() - final_elbo)
    return mixture, history
