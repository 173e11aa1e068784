"""The categorical likelihood over ``V`` intensity levels, for 8-bit images
(docs/04-likelihoods.md).

The decoder outputs ``D · V`` logits per example, read as ``(D, V)``.
Shapes: ``logits (S, N, D, V)``, ``x (N, D)`` integers in ``[0, V)``.
"""
from __future__ import annotations

import numpy as np
from scipy.special import log_softmax, softmax

from ...backend import compiled_in
from .base import Likelihood

_COMPILED = "npvae.distributions.likelihoods.kernels_numba"
#: the one-line error of both kernels' bound test on the levels
LEVEL_ERROR = ("the categorical likelihood got a level outside [0, n_levels): x must hold "
               "integers 0..n_levels-1 (check_input=False skips the data check, not this "
               "bound test)")


def check_levels(x, V):
    """The kernels' bound test: ``x`` indexes the logits, so every level must lie in
    ``[0, V)`` (a negative one would wrap around in NumPy, and read out of bounds in
    the compiled twin, which checks inside its loop)."""
    if x.size and (x.min() < 0 or x.max() >= V):
        raise ValueError(LEVEL_ERROR)


@compiled_in(_COMPILED)
def categorical_forward(logits, x):
    """``log p(x|z) = Σ_d log softmax(η_d)[x_d]`` over ``V`` levels (docs/04-likelihoods.md).

    Returns ``(log_p (S, N), cache)``; the cache is ``(logits, x)``.  Contract: ``x``
    ``(N, D)`` integers; a level outside ``[0, V)`` raises ``ValueError`` (both
    backends test the bound themselves: no caller's flag reaches memory with it).
    """
    check_levels(x, logits.shape[-1])
    log_probs = log_softmax(logits, axis=-1)                                        # (S, N, D, V)
    picked = np.take_along_axis(log_probs, x[None, :, :, None], axis=-1)[..., 0]    # (S, N, D)
    return picked.sum(axis=-1), (logits, x)


@compiled_in(_COMPILED)
def categorical_backward(dlog_p, cache):
    """``∂ log p / ∂η_dv = [x_d = v] − softmax(η_d)_v`` (docs/04-likelihoods.md).
    Returns ``dlogits (S, N, D, V)``."""
    logits, x = cache
    check_levels(x, logits.shape[-1])
    one_hot = np.arange(logits.shape[-1]) == x[..., None]                # (N, D, V)
    return dlog_p[..., None, None] * (one_hot - softmax(logits, axis=-1))


class Categorical(Likelihood):
    """Categorical over ``n_levels`` intensity levels per dimension."""

    name = "categorical"

    def __init__(self, n_levels=256):
        if isinstance(n_levels, bool) or not isinstance(n_levels, (int, np.integer)) \
                or n_levels < 2:
            raise ValueError(f"n_levels must be an integer >= 2, got {n_levels!r}")
        self.n_levels = int(n_levels)

    def options(self):
        return {"n_levels": self.n_levels}

    def output_shape(self, n_features):
        return (n_features, self.n_levels)

    def check_data(self, X, name="X"):
        if np.any(X != np.round(X)) or X.min() < 0 or X.max() >= self.n_levels:
            raise ValueError(f"{name} must hold integers in [0, {self.n_levels}) for the "
                             f"categorical likelihood over {self.n_levels} levels")

    def convert(self, X, dtype):
        return np.asarray(X).astype(np.intp)

    def encoder_input(self, x, dtype):
        """Levels ``0..V−1`` scaled to ``[0, 1]``: raw levels up to 255 would put the
        encoder's pre-activations, and the loss, out of any sensible range."""
        return x.astype(dtype) / dtype.type(self.n_levels - 1)

    def log_prob_forward(self, out, x, params):
        return categorical_forward.impl(out, x)      # the backend's kernel (npvae.backend)

    def log_prob_backward(self, dlog_p, cache):
        return categorical_backward.impl(dlog_p, cache), {}

    def mean(self, out, params):
        """The expected level ``Σ_v v · softmax(η)_v``, in data units ``[0, V)``."""
        return softmax(out, axis=-1) @ np.arange(self.n_levels, dtype=out.dtype)
