"""Schedules of training: the learning rate per epoch and the KL weight per step
(docs/11-optimisation.md)."""
from __future__ import annotations

import math

SCHEDULES = ("constant", "exponential", "cosine", "burda")


def learning_rate_at(epoch, base, schedule="constant", decay=0.95, epochs=1):
    """Learning rate for 0-based ``epoch``: constant, ``base · decay^epoch``,
    cosine from ``base`` to 0 over ``epochs``, or Burda et al.'s stages
    (:func:`burda_stage`: ``base · 10^(−i/7)`` in stage ``i``) (docs/11-optimisation.md)."""
    if schedule == "constant":
        return base
    if schedule == "exponential":
        return base * decay ** epoch
    if schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * epoch / max(epochs, 1)))
    if schedule == "burda":
        return base * 10.0 ** (-burda_stage(epoch) / 7)
    raise ValueError(f"unknown lr_schedule {schedule!r}; choose one of {SCHEDULES}")


def burda_stage(epoch):
    """Stage ``i`` of 0-based ``epoch`` in the schedule of Burda, Grosse &
    Salakhutdinov (2016): stage ``i`` lasts ``3^i`` epochs, so it starts at epoch
    ``(3^i − 1)/2``; stages 0..7 make 3,280 epochs (docs/11-optimisation.md#learning-rate-schedules)."""
    i = 0
    while (3 ** (i + 1) - 1) // 2 <= epoch:
        i += 1
    return i


def kl_weight(step, beta, warmup_steps):
    """``β`` rising linearly from 0 to ``beta`` over ``warmup_steps`` steps (docs/11-optimisation.md)."""
    if warmup_steps <= 0:
        return beta
    return beta * min(1.0, step / warmup_steps)
