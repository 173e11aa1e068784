"""Minibatch training of npvae models (MATH §5, §11).

:func:`train` runs epochs of shuffled minibatches with Adam or SGD, a
learning-rate schedule, KL warm-up (Sønderby et al. 2016), gradient-norm
clipping, a validation ELBO each epoch, early stopping, a progress bar,
a history file, and checkpoints after every epoch.  All randomness (shuffling,
dynamic binarisation, noise) comes from the model's generator ``rng_``, whose
state is checkpointed, so resuming continues exactly.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time

import numpy as np

from . import checkpoint
from ._validation import check_data
from .optim import clip_grad_norm, make_optimizer

SCHEDULES = ("constant", "exponential", "cosine")


class TrainingDiverged(RuntimeError):
    """The loss or its gradient became NaN or infinite."""


def learning_rate_at(epoch, base, schedule="constant", decay=0.95, epochs=1):
    """Learning rate for 0-based ``epoch``: constant, ``base · decay^epoch``, or
    cosine from ``base`` to 0 over ``epochs`` (MATH §11, optional schedule)."""
    if schedule == "constant":
        return base
    if schedule == "exponential":
        return base * decay ** epoch
    if schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * epoch / max(epochs, 1)))
    raise ValueError(f"unknown lr_schedule {schedule!r}; choose one of {SCHEDULES}")


def kl_weight(step, beta, warmup_steps):
    """``β`` rising linearly from 0 to ``beta`` over ``warmup_steps`` steps (MATH §11)."""
    if warmup_steps <= 0:
        return beta
    return beta * min(1.0, step / warmup_steps)


class Progress:
    """A one-line progress bar on a terminal, or a line per epoch elsewhere."""

    def __init__(self, enabled, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0

    def update(self, epoch, epochs, done, total, elbo, rate):
        if not self.tty or time.perf_counter() - self._last < 0.2:
            return
        self._last = time.perf_counter()
        width = 24
        filled = int(width * done / max(total, 1))
        bar = "=" * filled + ">" + " " * (width - filled)
        self.stream.write(f"\repoch {epoch}/{epochs} [{bar[:width]}] {done}/{total} "
                          f"ELBO {elbo:9.3f}  {rate:9,.0f} ex/s")
        self.stream.flush()

    def epoch_done(self, line):
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r" + " " * 90 + "\r")
        self.stream.write(line + "\n")
        self.stream.flush()


def train_step(model, x, eps, optimizer=None, learning_rate=None, beta=None):
    """One optimisation step on a prepared batch: forward, backward, update (MATH §5, §11).

    ``x`` is already in the model's dtype and form, ``eps`` the noise; the
    optimiser state lives in ``model.optimizer_state_`` (created on first use).
    This is the unit the throughput benchmarks time.  Returns the loss.
    """
    if optimizer is None:
        optimizer = make_optimizer(model.optimizer, model.learning_rate)
    if model.optimizer_state_ is None:
        model.optimizer_state_ = optimizer.init_state(model.layout_.size, model._dtype)
    loss, g, _ = model._objective(x, eps, model.beta if beta is None else beta, need_grads=True)
    optimizer.step(model.flat_params_, g, model.optimizer_state_, learning_rate=learning_rate)
    return loss


def _evaluate(model, X, batch_size, seed):
    """Mean ELBO terms on ``X`` with noise from a fixed seed (does not touch ``rng_``)."""
    rng = np.random.default_rng(seed)
    sums = {}
    for start in range(0, X.shape[0], batch_size):
        xb = model._lik.convert(X[start:start + batch_size], model._dtype)
        eps = model._draw(rng, model._noise_shape(model._n_noise(), xb.shape[0]))
        _, _, terms = model._objective(xb, eps, 1.0, need_grads=False)
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(np.sum(v))
    return {k: v / X.shape[0] for k, v in sums.items()}


def train(model, X, *, epochs=10, batch_size=100, learning_rate=1e-3, X_val=None,
          batch_transform=None, lr_schedule="constant", lr_decay=0.95, kl_warmup_epochs=0.0,
          clip_norm=None, patience=None, run_dir=None, metadata=None, progress=False,
          validation_seed=0):
    """Train ``model`` (already initialised) for ``epochs`` more epochs; returns it.

    Parameters
    ----------
    X : (N, D) training data; with ``batch_transform`` it may be raw uint8 pixels.
    X_val : (M, D) validation data, already in the likelihood's form (e.g.
        binarised once with a fixed seed); its ELBO is computed each epoch with
        noise from ``validation_seed``.
    batch_transform : callable ``(x_batch, rng) -> x`` applied to every
        training batch, e.g. dynamic binarisation (MATH §12).  ``rng`` is the
        model's generator.
    lr_schedule, lr_decay : see :func:`learning_rate_at`.
    kl_warmup_epochs : β rises linearly from 0 over this many epochs (counted
        from the model's first epoch, so a resumed run continues the ramp).
    clip_norm : gradient-norm clipping threshold (None: off).
    patience : stop after this many epochs without a better validation ELBO,
        and restore the best parameters (needs ``X_val``).
    run_dir : folder for ``checkpoint.npz`` (after every epoch), ``best.npz``
        (best validation ELBO) and ``history.jsonl``.
    metadata : JSON-able dict stored in checkpoints (data set, settings).
    progress : show a progress bar (on a terminal) or a line per epoch.

    Raises
    ------
    TrainingDiverged
        when a loss or gradient is NaN or infinite; the parameters are left at
        the last good step, and the last epoch's checkpoint is kept.
    """
    if not hasattr(model, "params_"):
        raise ValueError("initialise the model (initialize or fit) before train()")
    X = check_data(X, model.n_features_in_)
    if X_val is not None:
        X_val = model._check_X(X_val)
    if patience is not None and X_val is None:
        raise ValueError("early stopping (patience) needs validation data X_val")
    if batch_transform is None:
        model._lik.check_data(X)
    rng = model.rng_
    opt = make_optimizer(model.optimizer, learning_rate)
    if model.optimizer_state_ is None:
        model.optimizer_state_ = opt.init_state(model.layout_.size, model._dtype)
    N = X.shape[0]
    steps_per_epoch = math.ceil(N / batch_size)
    warmup_steps = kl_warmup_epochs * steps_per_epoch
    bar = Progress(progress)
    history_path = os.path.join(run_dir, "history.jsonl") if run_dir else None
    if run_dir:
        os.makedirs(run_dir, exist_ok=True)
    best = max((h["val_elbo"] for h in model.history_ if h.get("val_elbo") is not None),
               default=-np.inf)
    best_params = model.flat_params_.copy()
    since_best = 0
    first_epoch = model.n_iter_
    total_epochs = first_epoch + epochs
    for epoch in range(first_epoch, total_epochs):
        lr = learning_rate_at(epoch, learning_rate, lr_schedule, lr_decay, total_epochs)
        order = rng.permutation(N)
        sums = {}
        t0 = time.perf_counter()
        for b, start in enumerate(range(0, N, batch_size)):
            xb = X[order[start:start + batch_size]]
            if batch_transform is not None:
                xb = batch_transform(xb, rng)
                if b == 0:
                    model._lik.check_data(xb, name="a transformed batch")
            xb = model._lik.convert(xb, model._dtype)
            eps = model._draw(rng, model._noise_shape(model._n_noise(), xb.shape[0]))
            step = epoch * steps_per_epoch + b
            beta = kl_weight(step, model.beta, warmup_steps)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                loss, g, terms = model._objective(xb, eps, beta, need_grads=True)
            if not (np.isfinite(loss) and np.all(np.isfinite(g))):
                raise TrainingDiverged(
                    f"the loss became {loss} (gradient finite: {bool(np.all(np.isfinite(g)))}) "
                    f"at epoch {epoch + 1}, batch {b + 1} (step {step + 1}); parameters are "
                    "those of the last good step"
                    + (f", and {run_dir}/checkpoint.npz holds the last completed epoch"
                       if run_dir else "")
                    + ". Try a smaller learning rate or clip_norm.")
            if clip_norm is not None:
                g, _ = clip_grad_norm(g, clip_norm)
            opt.step(model.flat_params_, g, model.optimizer_state_, learning_rate=lr)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(np.sum(v))
            done = min(start + batch_size, N)
            bar.update(epoch + 1, total_epochs, done, N, sums["elbo"] / done,
                       done / max(time.perf_counter() - t0, 1e-9))
        seconds = time.perf_counter() - t0
        record = {"epoch": epoch + 1}
        record.update({f"train_{k}": v / N for k, v in sums.items()})
        record.update({"beta": beta, "learning_rate": lr, "seconds": seconds,
                       "examples_per_second": N / seconds})
        improved = False
        if X_val is not None:
            val = _evaluate(model, X_val, max(batch_size, 500), validation_seed)
            record.update({f"val_{k}": v for k, v in val.items()})
            if val["elbo"] > best:
                best, improved, since_best = val["elbo"], True, 0
                best_params[...] = model.flat_params_
            else:
                since_best += 1
        model.n_iter_ = epoch + 1
        model.history_.append(record)
        if run_dir:
            meta = dict(metadata or {}, best_val_elbo=None if best == -np.inf else best)
            checkpoint.save(model, os.path.join(run_dir, "checkpoint.npz"), meta)
            if improved:
                checkpoint.save(model, os.path.join(run_dir, "best.npz"), meta)
            with open(history_path, "a") as f:
                f.write(json.dumps(record) + "\n")
        line = (f"epoch {epoch + 1}/{total_epochs}  train ELBO {record['train_elbo']:.3f} "
                f"(rec {record['train_reconstruction']:.3f}, KL {record['train_kl']:.3f})")
        if X_val is not None:
            line += f"  val ELBO {record['val_elbo']:.3f}"
        bar.epoch_done(line + f"  {record['examples_per_second']:,.0f} ex/s  {seconds:.1f}s")
        if patience is not None and since_best >= patience:
            bar.epoch_done(f"early stopping: no better validation ELBO for {patience} epochs; "
                           f"restoring the best parameters (val ELBO {best:.3f})")
            model.flat_params_[...] = best_params
            break
    return model
