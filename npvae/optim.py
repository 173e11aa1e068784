"""Optimisers over a model's flat parameter vector (docs/11-optimisation.md).

An optimiser object holds only hyperparameters; its state (moments, step
count) is a dict of arrays returned by :meth:`init_state`, kept by the caller
and saved in checkpoints.  ``step`` updates the parameters and the state in
place, in one pass over all parameters.
"""
from __future__ import annotations

import inspect
import math

import numpy as np

from .backend import compiled_in


@compiled_in("npvae.optim_numba")
def adam_folded_step(theta, g, m, v, lr_t, beta1, beta2, eps_hat):
    """``m ← β1 m + (1−β1) g``, ``v ← β2 v + (1−β2) g²``,
    ``θ ← θ − α_t m / (√v + ε̂)``, in place on flat vectors ``(P,)``
    (docs/11-optimisation.md#the-folded-update; Kingma & Ba 2015, §2 last
    paragraph: the bias corrections folded into ``α_t = α √(1−β2ᵗ)/(1−β1ᵗ)`` and
    ``ε̂ = ε √(1−β2ᵗ)``, equal to ``α m̂ / (√v̂ + ε)``)."""
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    theta -= lr_t * m / (np.sqrt(v) + eps_hat)


@compiled_in("npvae.optim_numba")
def adam_outer_step(theta, a, da, m, v, lr_t, beta1, beta2, eps_hat):
    """:func:`adam_folded_step` on the flat ``(I·J,)`` parameters of a weight matrix
    ``W (I, J)`` whose gradient is ``aᵀ da``, from its factors ``a (R, I)``, ``da (R, J)``
    (docs/11-optimisation.md#fusing-the-weight-gradient-into-adam); the compiled twin
    forms each entry inside the update instead of materialising ``aᵀ da``."""
    adam_folded_step(theta, (a.T @ da).ravel(), m, v, lr_t, beta1, beta2, eps_hat)


def adam_constants(t, learning_rate, beta1, beta2, eps):
    """``(α_t, ε̂)`` of step ``t >= 1``, the bias corrections folded in
    (docs/11-optimisation.md#the-folded-update)."""
    c2 = 1 - beta2 ** t
    return learning_rate * math.sqrt(c2) / (1 - beta1 ** t), eps * math.sqrt(c2)


def adam_update(theta, g, m, v, t, learning_rate, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adam step at step number ``t >= 1`` on flat vectors ``(P,)``, in place
    (docs/11-optimisation.md)."""
    lr_t, eps_hat = adam_constants(t, learning_rate, beta1, beta2, eps)
    adam_folded_step(theta, g, m, v, lr_t, beta1, beta2, eps_hat)


class Adam:
    """Adam (Kingma & Ba 2015), docs/11-optimisation.md."""

    name = "adam"

    def __init__(self, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        self.learning_rate = learning_rate
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def init_state(self, n_params, dtype):
        return {"m": np.zeros(n_params, dtype), "v": np.zeros(n_params, dtype),
                "t": np.zeros((), np.int64)}

    def step(self, theta, g, state, learning_rate=None):
        state["t"][...] += 1
        lr = self.learning_rate if learning_rate is None else learning_rate
        adam_update(theta, g, state["m"], state["v"], int(state["t"]), lr,
                    self.beta1, self.beta2, self.eps)

    def step_factored(self, theta, g, segments, factors, state, learning_rate=None):
        """The same step as :meth:`step` with the gradient in two parts: the flat ``g`` on
        the slices ``segments`` ``[(start, stop)]``, and ``factors`` ``[(start, a (R, I),
        da (R, J))]``: the weight matrix at ``theta[start:start + I·J]`` has the gradient
        ``aᵀ da``, formed inside the update (docs/11-optimisation.md#fusing-the-weight-gradient-into-adam)."""
        state["t"][...] += 1
        lr = self.learning_rate if learning_rate is None else learning_rate
        lr_t, eps_hat = adam_constants(int(state["t"]), lr, self.beta1, self.beta2, self.eps)
        m, v = state["m"], state["v"]
        for s, e in segments:
            adam_folded_step.impl(theta[s:e], g[s:e], m[s:e], v[s:e], lr_t, self.beta1,
                                  self.beta2, eps_hat)
        for s, a, da in factors:
            e = s + a.shape[1] * da.shape[1]
            adam_outer_step.impl(theta[s:e], a, da, m[s:e], v[s:e], lr_t, self.beta1,
                                 self.beta2, eps_hat)


class SGD:
    """SGD with (heavy-ball) momentum: ``u ← μ u − α g``, ``θ ← θ + u`` (docs/11-optimisation.md)."""

    name = "sgd"

    def __init__(self, learning_rate=1e-2, momentum=0.9):
        self.learning_rate = learning_rate
        self.momentum = momentum

    def init_state(self, n_params, dtype):
        return {"velocity": np.zeros(n_params, dtype), "t": np.zeros((), np.int64)}

    def step(self, theta, g, state, learning_rate=None):
        state["t"][...] += 1
        lr = self.learning_rate if learning_rate is None else learning_rate
        u = state["velocity"]
        u *= self.momentum
        u -= lr * g
        theta += u


class Adagrad:
    """Adagrad (Duchi, Hazan & Singer 2011), the optimiser of Kingma & Welling (2014):
    ``G ← G + g²``, ``θ ← θ − α g / (√G + ε)`` (docs/11-optimisation.md#adagrad)."""

    name = "adagrad"

    def __init__(self, learning_rate=1e-2, eps=1e-8):
        self.learning_rate = learning_rate
        self.eps = eps

    def init_state(self, n_params, dtype):
        return {"sum_sq": np.zeros(n_params, dtype), "t": np.zeros((), np.int64)}

    def step(self, theta, g, state, learning_rate=None):
        state["t"][...] += 1
        lr = self.learning_rate if learning_rate is None else learning_rate
        G = state["sum_sq"]
        G += g * g
        theta -= lr * g / (np.sqrt(G) + theta.dtype.type(self.eps))


OPTIMIZERS = {"adam": Adam, "sgd": SGD, "adagrad": Adagrad}


def make_optimizer(name, learning_rate, options=None):
    """The optimiser ``name`` at ``learning_rate``; ``options`` (a dict) sets its
    other constants, e.g. ``{"eps": 1e-4}`` for Adam."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {tuple(OPTIMIZERS)}")
    cls = OPTIMIZERS[name]
    options = dict(options or {})
    if not options:                    # the common case, once per step in train_step
        return cls(learning_rate=learning_rate)
    allowed = [p for p in inspect.signature(cls).parameters if p != "learning_rate"]
    for key, value in options.items():
        if key not in allowed:
            raise ValueError(f"unknown option {key!r} of optimizer {name!r}; choose from {allowed}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value < 0:
            raise ValueError(f"optimizer option {key!r} must be a finite number >= 0, got {value!r}")
    return cls(learning_rate=learning_rate, **options)


_TEMPLATES = {}


def state_template(optimizer, dtype):
    """``{key: (shape, dtype)}`` of the optimiser's state, ``(0,)`` standing for the
    parameter count; made once per optimiser class and dtype, not once per step."""
    key = (type(optimizer), np.dtype(dtype))
    if key not in _TEMPLATES:
        _TEMPLATES[key] = {k: (np.shape(v), np.asarray(v).dtype)
                           for k, v in optimizer.init_state(0, dtype).items()}
    return _TEMPLATES[key]


def clip_grad_norm(g, max_norm):
    """Scale ``g`` so that ``‖g‖₂ ≤ max_norm`` (docs/11-optimisation.md).

    Returns ``(g_clipped, norm)``; ``g`` itself is returned unchanged when it is
    within the bound, else a scaled copy.
    """
    norm = float(np.sqrt(np.dot(g, g)))
    if max_norm is None or norm <= max_norm:
        return g, norm
    return g * (max_norm / norm), norm
