"""Minibatch training of npvae models (docs/05-elbo.md, docs/11-optimisation.md).

:func:`train` is an explicit loop: epochs of shuffled minibatches, each batch one
:func:`train_step` (forward, backward, update) with Adam or SGD, a learning-rate schedule,
KL warm-up (Sønderby et al. 2016) and gradient-norm clipping; after each epoch the
validation terms and the callbacks (progress, the run folder, early stopping, the caller's:
:class:`Callback`).  All randomness (shuffling, dynamic binarisation, noise) comes from the
model's generator ``rng_``, whose state is checkpointed, so resuming continues exactly.
Labels ``y`` (the conditional VAE's condition) are shuffled and batched with the data.  A
model is used only through its contract :class:`npvae.models.protocol.TrainableModel`.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings

import numpy as np

from . import checkpoint, threads
from ._allocator import keep_freed_memory
from ._exclusive import one_at_a_time
from ._fsafe import append_line
from ._validation import check_data, check_training
from .fused_step import fused_train_step
from .optim import clip_grad_norm, make_optimizer, state_template
from .schedules import SCHEDULES, burda_stage, kl_weight, learning_rate_at  # noqa: F401


class TrainingDiverged(RuntimeError):
    """The loss or its gradient became NaN or infinite."""


def train_step(model, x, eps, optimizer=None, learning_rate=None, beta=None, condition=None,
               clip_norm=None):
    """One optimisation step on a prepared batch: forward, backward, update
    (docs/05-elbo.md, docs/11-optimisation.md).

    ``x`` is already in the model's dtype and form, ``eps`` the noise, ``condition`` the
    conditional VAE's one-hot labels; the optimiser state lives in ``model.optimizer_state_``
    (created on first use).  The unit the throughput benchmarks time; ``(loss, terms)``.

    Raises :class:`TrainingDiverged` (parameters untouched) when the loss or the
    gradient is not finite.
    """
    if optimizer is None:
        optimizer = make_optimizer(model.optimizer, model.learning_rate)
    if model.optimizer_state_ is None:
        model.optimizer_state_ = optimizer.init_state(model.layout_.size, model.dtype_)
    _check_step_inputs(model, x, eps, optimizer)
    beta = model.beta if beta is None else beta
    if clip_norm is None and (done := fused_train_step(model, x, eps, optimizer, learning_rate,
                                                       beta, condition)) is not None:
        return done                   # a small batch: the big weight gradients fused into Adam
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        loss, g, terms = model.training_objective(x, eps, beta, True, condition)
    # ‖g‖² by one BLAS dot: NaN or inf if any entry is (or if the norm overflows)
    if not (math.isfinite(loss) and math.isfinite(float(np.dot(g, g)))):
        raise TrainingDiverged(f"the loss became {loss} (gradient finite: "
                               f"{bool(np.all(np.isfinite(g)))})")
    if clip_norm is not None:
        g, _ = clip_grad_norm(g, clip_norm)
    optimizer.step(model.flat_params_, g, model.optimizer_state_, learning_rate=learning_rate)
    model.after_step()                              # e.g. batch norm's running statistics
    return loss, terms


def _check_step_inputs(model, x, eps, optimizer):
    """Shapes and dtypes only (microseconds): the compiled kernels and the optimiser's
    update index without bounds checks, so nothing of the wrong size may reach them."""
    n = x.shape[0] if getattr(x, "ndim", 0) == 2 else -1
    if n < 1 or x.shape[1] != model.n_features_in_:
        raise ValueError(f"train_step: x must be (N, {model.n_features_in_}), got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    expected = model.noise_shape(eps[0].shape[0] if isinstance(eps, list) else eps.shape[0], n)
    got = [e.shape for e in eps] if isinstance(eps, list) else eps.shape
    if got != expected:
        raise ValueError(f"train_step: eps must have shape {expected}, got {got}")
    state = model.optimizer_state_
    for key, (shape, dtype) in state_template(optimizer, model.dtype_).items():
        value = state.get(key) if isinstance(state, dict) else None
        if (not isinstance(value, np.ndarray) or value.dtype != dtype
                or value.shape != ((model.layout_.size,) if shape == (0,) else shape)):
            raise ValueError(f"optimizer_state_[{key!r}] does not fit this model's "
                             f"{optimizer.name} (expected {dtype} "
                             f"{(model.layout_.size,) if shape == (0,) else shape})")


def _evaluate(model, X, batch_size, seed, C=None):
    """Mean ELBO terms on ``X`` (with its condition ``C``) and noise from a fixed seed
    (does not touch ``rng_``)."""
    rng = np.random.default_rng(seed)
    sums = {}
    for start in range(0, X.shape[0], batch_size):
        xb = model.likelihood_.convert(X[start:start + batch_size], model.dtype_)
        cb = None if C is None else C[start:start + batch_size]
        eps = model.draw_noise(xb.shape[0], random_state=rng)
        _, _, terms = model.training_objective(xb, eps, 1.0, False, cb)
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(np.sum(v))
    return {k: v / X.shape[0] for k, v in sums.items()}


# ------------------------------------------------------------------ callbacks
class Callback:
    """A hook of the training loop.  ``state`` is the :class:`TrainState`."""

    def on_batch_end(self, state, done, total, elbo_so_far, rate):
        """After every batch: ``done`` of ``total`` examples of this epoch."""

    def on_epoch_end(self, state, record):
        """After every epoch (the record is in ``model.history_``); return True to stop."""
        return False


#: how the validation quantities that decide "best" are named in messages
SELECTION_NAMES = {"elbo": "ELBO", "iwae": "IWAE bound", "fisher": "Fisher loss"}


def selection(model):
    """``(key, sign)``: the validation quantity ``val_{key}`` that decides the best epoch (the
    IWAE bound ``L_K``, else the model's ``validation_criterion``: the ELBO, the Fisher loss…)
    and ``sign`` so that ``sign * value`` is larger when better."""
    if model.objective == "iwae":
        return "iwae", 1
    return model.validation_criterion


class TrainState:
    """What the loop knows between epochs: the model, the epoch, the best validation value
    of the objective (:func:`selection`)."""

    def __init__(self, model, total_epochs):
        self.model = model
        self.total_epochs = total_epochs
        self.bound, self.sign = selection(model)
        self.best = max((self.sign * h[f"val_{self.bound}"] for h in model.history_
                         if h.get(f"val_{self.bound}") is not None), default=-np.inf)
        self.best_params = model.flat_params_.copy()
        self.improved = False
        self.since_best = 0
        self.reference = None         # the ELBO of the first batch, before its update
        self.bad_epochs = 0


class Progress(Callback):
    """Progress of training: on a terminal a bar per epoch with the running ELBO, the
    rate and the time left (tqdm); elsewhere (a log file, a notebook's captured
    output) one line per epoch."""

    def __init__(self, enabled, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._bar = None

    def on_batch_end(self, state, done, total, elbo, rate):
        if not self.tty:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, file=self.stream, unit="ex", unit_scale=True,
                             leave=False, dynamic_ncols=True,
                             desc=f"epoch {state.model.n_iter_ + 1}/{state.total_epochs}")
        self._bar.update(done - self._bar.n)
        self._bar.set_postfix_str(f"ELBO {elbo:.3f}", refresh=False)

    def say(self, line):
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self.stream.write(line + "\n")
        self.stream.flush()

    def on_epoch_end(self, state, r):
        line = f"epoch {r['epoch']}/{state.total_epochs}  "
        iwae = "train_iwae" in r                # the IWAE bound L_k is the objective
        if iwae:
            line += f"train L_{state.model.k} {r['train_iwae']:.3f}, "
        if "train_fisher" in r:                 # the Fisher autoencoder's objective
            line += f"train Fisher loss {r['train_fisher']:.1f}, "
        line += (f"train ELBO {r['train_elbo']:.3f} "
                 f"(rec {r['train_reconstruction']:.3f}, KL {r['train_kl']:.3f})")
        if iwae and "val_iwae" in r:
            line += f"  val L_{state.model.k} {r['val_iwae']:.3f}"
        if "val_fisher" in r:
            line += f"  val Fisher loss {r['val_fisher']:.1f}"
        if "val_elbo" in r:
            line += f"  val ELBO {r['val_elbo']:.3f}"
        line += f"  {r['examples_per_second']:,.0f} ex/s  {r['seconds']:.1f}s"
        self.say("; ".join([line] + r.get("thread_changes", [])))
        return False


class RunFolder(Callback):
    """After every epoch: ``checkpoint.npz``, ``best.npz`` when the validation objective
    improved, and one line of ``history.jsonl``."""

    def __init__(self, run_dir, metadata=None):
        self.run_dir = run_dir
        self.metadata = metadata
        os.makedirs(run_dir, exist_ok=True)

    def on_epoch_end(self, state, record):
        meta = dict(self.metadata or {}, best_val_bound=state.bound,
                    best_val=None if state.best == -np.inf else state.sign * state.best)
        checkpoint.save(state.model, os.path.join(self.run_dir, "checkpoint.npz"), meta)
        if state.improved:
            checkpoint.save(state.model, os.path.join(self.run_dir, "best.npz"), meta)
        # never through a link planted in the folder (npvae/_fsafe.py)
        append_line(os.path.join(self.run_dir, "history.jsonl"), json.dumps(record))
        return False


class EarlyStopping(Callback):
    """Stop after ``patience`` epochs without a better validation objective (ELBO, IWAE
    bound or Fisher loss: :func:`selection`) and restore the best parameters."""

    def __init__(self, patience, progress):
        self.patience = patience
        self.progress = progress

    def on_epoch_end(self, state, record):
        if state.since_best < self.patience:
            return False
        name = SELECTION_NAMES[state.bound]
        best = state.sign * state.best
        self.progress.say(f"early stopping: no better validation {name} for {self.patience} "
                          f"epochs; restoring the best parameters (val {name} {best:.3f})")
        state.model.flat_params_[...] = state.best_params
        return True


# ------------------------------------------------------------------ the loop
@one_at_a_time("train")
def train(model, X, y=None, *, epochs=10, batch_size=100, learning_rate=1e-3, X_val=None,
          y_val=None, batch_transform=None, lr_schedule="constant", lr_decay=0.95,
          kl_warmup_epochs=0.0, clip_norm=None, patience=None, run_dir=None, metadata=None,
          progress=False, validation_seed=0, callbacks=(), optimizer_options=None):
    """Train ``model`` (already initialised) for ``epochs`` more epochs; returns it.

    Parameters
    ----------
    X : (N, D) training data; with ``batch_transform`` it may be raw uint8 pixels.
    y : (N,) labels, the condition of a :class:`~npvae.ConditionalVAE` (else None).
    X_val, y_val : (M, D) validation data, already in the likelihood's form (e.g.
        binarised once with a fixed seed), and its labels; its ELBO is computed
        each epoch with noise from ``validation_seed``.
    batch_transform : callable ``(x_batch, rng) -> x`` applied to every
        training batch, e.g. dynamic binarisation (docs/12-data.md).  ``rng`` is
        the model's generator.
    lr_schedule, lr_decay : see :func:`learning_rate_at`.
    kl_warmup_epochs : β rises linearly from 0 over this many epochs (counted
        from the model's first epoch, so a resumed run continues the ramp).
    clip_norm : gradient-norm clipping threshold (None: off).
    patience : stop after this many epochs without a better validation objective
        (:func:`selection`), and restore the best parameters (needs ``X_val``).
    run_dir : folder for ``checkpoint.npz`` (after every epoch), ``best.npz``
        (best validation objective) and ``history.jsonl``.
    metadata : JSON-able dict stored in checkpoints (data set, settings).
    progress : show a progress bar (on a terminal) or a line per epoch.
    callbacks : further :class:`Callback` objects, called after the built-in ones.
    optimizer_options : the optimiser's other constants, e.g. ``{"eps": 1e-4}``
        for Adam (pass the same ones when resuming).

    Raises
    ------
    TrainingDiverged
        when a loss or gradient is NaN or infinite; the parameters are left at
        the last good step, and the last epoch's checkpoint is kept.
    """
    if not hasattr(model, "params_"):
        raise ValueError("initialise the model (initialize or fit) before train()")
    model.check_fitted()
    check_training(epochs, batch_size, learning_rate, lr_decay, kl_warmup_epochs, clip_norm,
                   patience)
    X = check_data(X, model.n_features_in_)
    C = _condition(model, y, X.shape[0], "y")
    if X_val is not None:
        X_val = model.validate_input(X_val)
        C_val = _condition(model, y_val, X_val.shape[0], "y_val")
    if patience is not None and X_val is None:
        raise ValueError("early stopping (patience) needs validation data X_val")
    if batch_transform is None:
        model.likelihood_.check_data(X)
    keep_freed_memory()                     # each step's arrays reuse the last step's pages
    rng = model.rng_
    opt = make_optimizer(model.optimizer, learning_rate, optimizer_options)
    if model.optimizer_state_ is None:
        model.optimizer_state_ = opt.init_state(model.layout_.size, model.dtype_)
    N = X.shape[0]
    steps_per_epoch = math.ceil(N / batch_size)
    warmup_steps = kl_warmup_epochs * steps_per_epoch
    state = TrainState(model, model.n_iter_ + epochs)
    bar = Progress(progress)
    policy = threads.training_policy()          # None when a thread count is forced
    hooks = [threads.TimedSteps(policy, (id(model), batch_size, model.dtype_))] if policy else []
    hooks += [bar] + ([RunFolder(run_dir, metadata)] if run_dir else [])
    hooks += ([EarlyStopping(patience, bar)] if patience is not None else []) + list(callbacks)
    for epoch in range(model.n_iter_, state.total_epochs):
        lr = learning_rate_at(epoch, learning_rate, lr_schedule, lr_decay, state.total_epochs)
        order = rng.permutation(N)
        sums = {}
        t0 = time.perf_counter()
        for b, start in enumerate(range(0, N, batch_size)):
            rows = order[start:start + batch_size]
            xb = X[rows]
            if batch_transform is not None:
                xb = batch_transform(xb, rng)      # every batch: a callback is not trusted
                checked = check_data(xb, model.n_features_in_, "a transformed batch")
                model.likelihood_.check_data(
                    checked, name=f"the transformed batch {b + 1} of epoch {epoch + 1}")
            xb = model.likelihood_.convert(xb, model.dtype_)
            eps = model.draw_noise(xb.shape[0], random_state=rng)
            step = epoch * steps_per_epoch + b
            beta = kl_weight(step, model.beta, warmup_steps)
            try:
                _, terms = train_step(model, xb, eps, opt, lr, beta,
                                      None if C is None else C[rows], clip_norm)
            except TrainingDiverged as exc:
                raise TrainingDiverged(
                    f"{exc} at epoch {epoch + 1}, batch {b + 1} (step {step + 1}); parameters "
                    "are those of the last good step"
                    + (f", and {run_dir}/checkpoint.npz holds the last completed epoch"
                       if run_dir else "") + ". Try a smaller learning rate or clip_norm.") \
                    from None
            if state.reference is None:
                state.reference = float(np.mean(terms["elbo"]))
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(np.sum(v))
            done = min(start + batch_size, N)
            for hook in hooks:
                hook.on_batch_end(state, done, N, sums["elbo"] / done,
                                  done / max(time.perf_counter() - t0, 1e-9))
        seconds = time.perf_counter() - t0
        record = {"epoch": epoch + 1}
        record.update({f"train_{k}": v / N for k, v in sums.items()})
        if model.objective == "elbo":           # the IWAE bound has no β to record
            record["beta"] = beta
        record.update({"learning_rate": lr, "seconds": seconds,
                       "examples_per_second": N / seconds})
        state.improved = False
        if X_val is not None:
            val = _evaluate(model, X_val, max(batch_size, 500), validation_seed, C_val)
            record.update({f"val_{k}": v for k, v in val.items()})
            score = state.sign * val[state.bound]                 # more is better
            if score > state.best:
                state.best, state.improved, state.since_best = score, True, 0
                state.best_params[...] = model.flat_params_
            else:
                state.since_best += 1
        model.n_iter_ = epoch + 1
        model.history_.append(record)
        _check_progress(state, record)
        if any([hook.on_epoch_end(state, record) for hook in hooks]):
            break
    return model


class TrainingWarning(UserWarning):
    """Training goes badly but may recover (e.g. an epoch far below its start)."""


def _check_progress(state, record, patience=3):
    """Divergence that stays finite: a learning rate of 3.0 once left the training ELBO
    at −5e228 for 20 epochs without a word.  An epoch whose ELBO is below 1,000 times
    the first batch's (and below −1,000 nats per input dimension) is reported; three in
    a row end training (a run can recover from one bad epoch, not from three)."""
    floor = -1000 * max(abs(state.reference), state.model.n_features_in_)
    if record["train_elbo"] >= floor:
        state.bad_epochs = 0
        return
    state.bad_epochs += 1
    message = (f"the training ELBO fell to {record['train_elbo']:.4g} nats at epoch "
               f"{record['epoch']} (the first batch had {state.reference:.4g})")
    if state.bad_epochs >= patience:
        raise TrainingDiverged(f"{message}, {patience} epochs in a row: training diverged. "
                               "Try a smaller learning rate or clip_norm.")
    warnings.warn(f"{message}; the learning rate may be too high", TrainingWarning, stacklevel=3)


def _condition(model, y, n, name):
    """The model's condition for labels ``y`` (one-hot ``(n, C)``), or None."""
    C = model.labels_to_condition(y, n) if y is not None else None
    if C is None and model.n_condition() > 0:
        raise ValueError(f"{type(model).__name__} needs labels: pass {name}")
    return C
