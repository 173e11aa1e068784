"""The training step of a small batch with the big weight gradients fused into Adam
(docs/11-optimisation.md#fusing-the-weight-gradient-into-adam).

At a batch of ``R`` rows the gradient of a weight matrix ``W (I, J)`` is ``aᵀ da``, a sum
of ``R`` outer products.  The plain step writes it into the flat gradient, reads it for
the finiteness check and again in Adam: for the 784-400-20 VAE at batch 1, 2.5 MB moved
three times to update 1.3 MB of parameters.  Here the model hands back the factors
``(a, da)`` (:meth:`~npvae.models.protocol.TrainableModel.factored_objective`) and Adam
forms each entry inside its update (:meth:`npvae.optim.Adam.step_factored`); every other
parameter takes the flat gradient.  The update is the same (the same folded step and
constants; for ``R > 1`` the sum over rows is in another order than BLAS's, so float32
agrees to rounding).

Divergence stays exactly as in :func:`npvae.training.train_step`: before any update a
bound shows that the materialised gradient's ``‖g‖²`` would be finite (the rest's
``‖g‖²`` plus ``(Σ_r ‖a_r‖ ‖da_r‖)²`` per fused matrix, ``‖aᵀ da‖_F`` being at most that,
below a quarter of the dtype's largest value: room for the rounding of a float32 dot);
where it cannot, :func:`fused_train_step` returns None and the caller takes the
materialised path, which checks and raises with the parameters untouched.
"""
from __future__ import annotations

import math

import numpy as np

from .optim import Adam

#: at most this many rows ``S·N`` (noise samples × examples) take the fused step.  The
#: compiled update of one 784×400 float32 matrix at R = 1, 2, 4, 8 took 140, 160, 207, 279 µs
#: against 249, 202, 240, 263 µs materialised; whole steps of the 784-400-20 VAE (one thread,
#: in one process, 7 interleaved rounds) ran 1.33, 1.08 and 0.99 times as fast at batch 1, 2
#: and 4 (docs/11-optimisation.md#fusing-the-weight-gradient-into-adam; indicative, a CI run
#: held the other core)
MAX_ROWS = 2


def fused_train_step(model, x, eps, optimizer, learning_rate, beta, condition):
    """``(loss, terms)`` of one Adam step with the fused weight gradients, or None where it
    does not apply (another optimiser, a model or batch that offers no factors, a
    gradient not bounded as finite) and nothing was changed."""
    if type(optimizer) is not Adam or x.shape[0] > MAX_ROWS:      # (R = S·N >= N rows)
        return None
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        got = model.factored_objective(x, eps, beta, condition, MAX_ROWS)
        if got is None:
            return None
        loss, g, terms, factors = got
        layout = model.layout_
        fused = sorted((layout.offsets[n], a, da) for n, (a, da) in factors.items())
        segments, start = [], 0
        for s, a, da in fused:
            segments += [(start, s)] if s > start else []
            start = s + a.shape[1] * da.shape[1]
        segments += [(start, layout.size)] if layout.size > start else []
        if not _bounded(loss, g, segments, fused, model.dtype_):
            return None
    optimizer.step_factored(model.flat_params_, g, segments, fused, model.optimizer_state_,
                            learning_rate)
    model.after_step()
    return loss, terms


def _bounded(loss, g, segments, fused, dtype):
    """Whether the loss is finite and the materialised gradient's ``‖g‖²`` surely is (a few
    dots of at most ``MAX_ROWS`` rows: an overflow in one makes it say no)."""
    if not math.isfinite(loss):
        return False
    total = sum(float(np.dot(g[s:e], g[s:e])) for s, e in segments)
    for _, a, da in fused:                             # ‖aᵀ da‖_F <= Σ_r ‖a_r‖ ‖da_r‖
        bound = sum(math.sqrt(float(np.dot(r, r)) * float(np.dot(q, q))) for r, q in zip(a, da))
        total += bound * bound                       # (not ** 2: that raises on overflow)
    return total < _LIMIT[np.dtype(dtype).char]                  # False for NaN and inf


#: a quarter of each dtype's largest value: room for the rounding of the materialised dot
_LIMIT = {np.dtype(t).char: float(np.finfo(t).max) / 4 for t in (np.float32, np.float64)}
