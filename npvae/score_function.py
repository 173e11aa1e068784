"""Score-function gradient estimators and their variance reduction
(docs/13-em-and-variance-reduction.md#variance-reduction-for-the-score-function).

For ``g = ∇_φ E_{q_φ}[f(z)]`` from draws ``z_s ~ q_φ``, ``s = 1..S``, with values
``f (S,)`` and scores ``s_s = ∇_φ log q_φ(z_s)`` ``(S, P)``:

* :func:`score_function_gradient`: ``(1/S) Σ_s (f_s − b_s) s_s``; unbiased whenever
  the baseline ``b_s`` is independent of ``z_s`` (``E[s] = 0``);
* :func:`leave_one_out_baseline`: ``b_s`` the mean of the other ``S − 1`` values;
* :class:`RunningMeanBaseline`: an exponential average of earlier steps' values;
* :func:`optimal_coefficient`: the scalar control variate ``a_p = E[f s_p²]/E[s_p²]``
  per coordinate, which minimises the variance among constant baselines;
* :func:`x_squared_variance`: the closed forms for the example
  ``min_φ E_{N(φ,1)}[x²]`` (docs/02-reparameterisation.md#the-example-of-e-x-squared);
* :func:`vae_encoder_draws`, :func:`vae_pathwise_gradients`: the same quantities for
  the gradient of ``E_q[log p(x|z)]`` in the mean of a VAE's ``q(z|x)``.

Shapes: ``S`` draws, ``P`` coordinates of the gradient (for the VAE, ``Z``).
"""
from __future__ import annotations

import numpy as np

ESTIMATORS = ("pathwise", "score", "mean_baseline", "running_mean", "leave_one_out", "optimal")


def _check_draws(f, score):
    f = np.asarray(f, dtype=np.float64)
    score = np.asarray(score, dtype=np.float64)
    if score.ndim == f.ndim:
        score = score[..., None]
    if f.ndim < 1 or score.shape[:-1] != f.shape or f.shape[-1] == 0:
        raise ValueError(f"need f (..., S) and score (..., S, P) with the same S >= 1, got "
                         f"shapes {f.shape} and {score.shape}")
    return f, score


def score_function_gradient(f, score, baseline=0.0):
    """``(1/S) Σ_s (f_s − b_s) ∇_φ log q(z_s)``, ``(..., P)``
    (docs/13-em-and-variance-reduction.md#baselines-keep-the-estimator-unbiased).

    ``f (..., S)``, ``score (..., S, P)``; leading axes index independent estimates.
    ``baseline``: a number; ``(..., S)`` like ``f``, one per draw (e.g.
    :func:`leave_one_out_baseline`); or an array with the dimensions of ``score`` that
    broadcasts to it, one per draw and coordinate (e.g. :func:`optimal_coefficient`).
    """
    f, score = _check_draws(f, score)
    b = np.asarray(baseline, dtype=np.float64)
    if b.ndim == f.ndim and b.ndim > 0:
        if b.shape != f.shape:
            raise ValueError(f"a per-draw baseline needs one value per draw, shape {f.shape}, "
                             f"got {b.shape}")
        b = b[..., None]
    elif b.ndim == score.ndim:
        if any(m not in (1, n) for m, n in zip(b.shape, score.shape)):
            raise ValueError(f"baseline of shape {b.shape} does not broadcast to {score.shape}")
    elif b.ndim != 0:
        raise ValueError(f"baseline must be a number, shaped like f {f.shape} or like score "
                         f"{score.shape}, got shape {b.shape}")
    return np.mean((f[..., None] - b) * score, axis=-2)


def leave_one_out_baseline(f):
    """``b_s = (Σ_t f_t − f_s)/(S − 1)`` over the last axis of ``f (..., S)``: the mean
    of the other draws, independent of ``z_s``
    (docs/13-em-and-variance-reduction.md#the-leave-one-out-baseline)."""
    f = np.asarray(f, dtype=np.float64)
    if f.ndim < 1 or f.shape[-1] < 2:
        raise ValueError(f"the leave-one-out baseline needs f (..., S) with S >= 2, got "
                         f"{f.shape}")
    return (f.sum(axis=-1, keepdims=True) - f) / (f.shape[-1] - 1)


def optimal_coefficient(f, score, leave_one_out=False):
    """The variance-minimising constant baseline per coordinate,
    ``a_p = Σ_s f_s s_sp² / Σ_s s_sp²`` (estimating ``E[f s_p²]/E[s_p²]``;
    docs/13-em-and-variance-reduction.md#the-optimal-control-variate), ``(..., 1, P)``.

    With ``leave_one_out`` each draw gets the coefficient of the other draws,
    ``(..., S, P)``, so that it stays independent of its own draw and the estimator
    unbiased.
    """
    f, score = _check_draws(f, score)
    num = f[..., None] * score ** 2                                   # (..., S, P)
    den = score ** 2                                                  # (..., S, P)
    if not leave_one_out:
        return num.sum(axis=-2, keepdims=True) / den.sum(axis=-2, keepdims=True)
    if f.shape[-1] < 2:
        raise ValueError("a leave-one-out coefficient needs S >= 2 draws")
    return ((num.sum(axis=-2, keepdims=True) - num)
            / (den.sum(axis=-2, keepdims=True) - den))


class RunningMeanBaseline:
    """``b ← ρ b + (1 − ρ) mean(f)`` over the steps of an optimisation; read ``value``
    before ``update`` with the step's own values, so that ``b`` never sees the draws
    it multiplies (docs/13-em-and-variance-reduction.md#a-running-mean-baseline)."""

    def __init__(self, decay=0.9):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.value = 0.0
        self.n_updates = 0

    def update(self, f):
        m = float(np.mean(f))
        self.value = m if self.n_updates == 0 else self.decay * self.value + (1 - self.decay) * m
        self.n_updates += 1
        return self.value


def x_squared_variance(phi, S, estimator, decay=0.9):
    """Variance of an ``S``-draw estimate of ``∇_φ E_{N(φ,1)}[x²] = 2φ``, in closed form
    (docs/13-em-and-variance-reduction.md#variances-for-the-example-of-e-x-squared).

    With a constant baseline ``b`` one draw has variance ``8φ² + 6 + (b − φ² − 3)²``:
    ``score`` (b = 0) ``φ⁴ + 14φ² + 15``, ``mean_baseline`` (b = φ² + 1) ``8φ² + 10``,
    ``optimal`` (b = φ² + 3) ``8φ² + 6``; ``running_mean`` adds the baseline's own
    stationary variance ``(1−ρ)/(1+ρ) (4φ² + 2)/S``; ``leave_one_out`` is a U-statistic,
    ``((S − 2)(8φ² + 10) + 16φ² + 12) / (S(S − 1))``; ``pathwise`` ``4/S``.
    """
    p2 = np.asarray(phi, dtype=np.float64) ** 2
    S = np.asarray(S, dtype=np.float64)

    def constant(b):
        return (8 * p2 + 6 + (b - p2 - 3) ** 2) / S

    table = {
        "pathwise": lambda: 4.0 / S,
        "score": lambda: constant(0.0),
        "mean_baseline": lambda: constant(p2 + 1),
        "optimal": lambda: constant(p2 + 3),
        "running_mean": lambda: (8 * p2 + 10 + (1 - decay) / (1 + decay) * (4 * p2 + 2) / S) / S,
        "leave_one_out": lambda: ((S - 2) * (8 * p2 + 10) + 16 * p2 + 12) / (S * (S - 1)),
    }
    if estimator not in table:
        raise ValueError(f"estimator must be one of {tuple(table)}, got {estimator!r}")
    if estimator == "leave_one_out" and np.any(S < 2):
        raise ValueError("the leave-one-out estimator needs S >= 2")
    return table[estimator]()


# ------------------------------------------------------------- a VAE encoder
def vae_encoder_draws(model, x, eps, chunk=10_000):
    """``log p(x|z_s)`` ``(S,)`` and the score ``∇_μ log q(z_s|x) = ε_s/σ`` ``(S, Z)`` for
    one example ``x (1, D)`` and noise ``eps (S, Z)``, ``z_s = μ + σ ε_s``
    (docs/02-reparameterisation.md#score-function-estimator).  Since ``∂μ/∂b_μ = I`` this
    is also the score in the bias of the encoder's mean head."""
    x = np.atleast_2d(x)
    eps = np.asarray(eps)
    if x.shape[0] != 1 or eps.ndim != 2:
        raise ValueError(f"need one example x (1, D) and eps (S, Z), got {x.shape}, {eps.shape}")
    _, logvar = model.encode(x)
    sigma = np.exp(0.5 * logvar[0])                                   # (Z,)
    log_px = np.concatenate([
        model.elbo_terms(np.repeat(x, len(e), axis=0), e[None])["reconstruction"]
        for e in np.array_split(eps, max(1, -(-len(eps) // chunk)))])   # (S,)
    return log_px, eps / sigma


def vae_pathwise_gradients(model, x, eps):
    """Pathwise ``∇_{b_μ} log p(x|z)`` for one example ``x (1, D)``, one call of the
    model's own backward (``loss_and_grads`` with β = 0) per row of ``eps (R, S, Z)``:
    returns ``(R, Z)``, each the mean over its ``S`` draws."""
    eps = np.asarray(eps)
    if eps.ndim != 3:
        raise ValueError(f"eps must be (R, S, Z), got shape {eps.shape}")
    beta = model.beta
    model.set_params(beta=0.0)
    try:
        out = np.empty((eps.shape[0], eps.shape[2]))                  # (R, Z)
        for r, e in enumerate(eps):
            out[r] = -model.loss_and_grads(x, e[:, None, :])[1]["enc_mu_b"]
    finally:
        model.set_params(beta=beta)
    return out
