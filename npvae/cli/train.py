"""``npvae train``: build (or resume) a model, fit it, write the run folder."""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from .._fsafe import FolderLocked, folder_lock
from .common import (CLIError, build_model, clear_run, default_validation, describe_data,
                     describe_model, holds_run, is_conditional, load_data, make_batch_transform,
                     notice, remove_orphans, rewrite_history, say, setup_compute, split_x,
                     to_input, write_json)
from .evaluate import _evaluate_and_report
from .figures import write_figures
from .resume import prepare_resume
from .train_settings import (_check_binary, _likelihood_params,  # noqa: F401 (sweep_file)
                             check_settings)


def cmd_train(args):
    claim = _Claim()
    try:
        return _train(args, claim)
    except BaseException:
        claim.forget_unstarted()
        raise
    finally:
        claim.release()


def _train(args, claim):
    if args.resume:
        if args.out and os.path.isdir(args.out):
            claim.take(args.out, create=False)
        prepared = prepare_resume(args)
        if prepared is None:             # finished already
            return 0
        model, ds, out, settings, meta = prepared
        if model.n_iter_ < settings["epochs"]:
            say(f"resuming {out}/checkpoint.npz at epoch {model.n_iter_} of "
                 f"{settings['epochs']}", args.quiet)
    else:
        model, ds, out, settings, meta = _new_run(args, claim)
    config = meta["config"]
    x_train = ds.x_train[:config.get("max_examples") or None]   # the run's own setting on resume
    return _fit(model, ds, x_train, out, settings, meta, quiet=args.quiet,
                figures=not args.no_figures, seed=config.get("seed", 0))


class _Claim:
    """The run folder this command writes: locked from before it is read until the
    command ends (two commands never write one folder: npvae/_fsafe.py), and, for a
    new run that ends before its first checkpoint, left as it was found: the files
    this command wrote removed, the folder too when this command created it."""

    def __init__(self):
        self.lock, self.out, self.created, self.wrote = None, None, [], False

    def take(self, out, create):
        if self.lock is not None:
            return
        created = []                     # the folders made here, deepest first
        if create:
            folder = os.path.abspath(out)
            while not os.path.isdir(folder):
                created.append(folder)
                folder = os.path.dirname(folder)
            os.makedirs(out, exist_ok=True)
        try:
            self.lock = folder_lock(out)
        except FolderLocked as exc:
            _rmdirs(created)
            raise CLIError(f"{exc} (a second command may not write a run folder that "
                           "another is writing)") from None
        self.out, self.created = out, created

    def forget_unstarted(self):
        if (self.out is None or not self.wrote
                or os.path.lexists(os.path.join(self.out, "checkpoint.npz"))):
            return
        for name in ("config.json", "history.jsonl"):
            path = os.path.join(self.out, name)
            if os.path.isfile(path) and not os.path.islink(path):
                os.remove(path)

    def release(self):
        if self.lock is None:
            return
        self.lock.release()
        self.lock = None
        if self.created and not os.path.lexists(os.path.join(self.out, "checkpoint.npz")):
            _rmdirs(self.created)


def _rmdirs(folders):
    """Remove the folders this command made, deepest first, while they are empty."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:
            return                       # not empty: files that are not ours


# ----------------------------------------------------------------------- a new run
def _refuse_existing(out, overwrite):
    found = holds_run(out)
    if found and not overwrite:
        raise CLIError(f"{out} already holds a run ({', '.join(found)}); continue it with "
                       f"--resume, choose another --out, or pass --overwrite to replace it")
    if not found and os.path.lexists(os.path.join(out, "config.json")):
        notice(f"{out} holds the config.json of a run that never finished an epoch; "
                "this run replaces it")


def _new_run(args, claim):
    """Load the data, build and initialise the model, prepare the run folder."""
    given, key, binarization = check_settings(args)
    if args.out:
        claim.take(args.out, create=True)
        _refuse_existing(args.out, args.overwrite)
    setup_compute(args.backend, args.threads)
    val_size = args.validation_size
    if val_size is None:
        val_size = default_validation(key if key != "auto" else "mnist")
    try:
        ds = load_data(key, args.data_dir, binarization, val_size, args.seed, args.quiet)
    except ValueError as exc:       # a count beyond the data set's size: name the flag
        if "validation_size" not in str(exc):
            raise
        raise CLIError(str(exc).replace("validation_size", "--validation-size")) from None
    if ds.x_valid is not None and len(ds.x_train) < len(ds.x_valid):
        raise CLIError(f"--validation-size {val_size} holds out {len(ds.x_valid)} of the "
                       f"{len(ds.x_valid) + len(ds.x_train)} examples and leaves "
                       f"{len(ds.x_train)} to train on; hold out at most half")
    if ds.name == "binarized_mnist":
        val_size = args.validation_size
    else:
        val_size = None if ds.x_valid is None else len(ds.x_valid)
    out = args.out or os.path.join("runs", f"{args.model}-{ds.name}")
    if not args.out:
        claim.take(out, create=True)
        _refuse_existing(out, args.overwrite)
    if args.epochs is None:
        args.epochs = 10 if len(ds.x_train) >= 10000 else 100
    if args.patience is not None and ds.x_valid is None:
        raise CLIError("--patience needs a validation split (--validation-size above 0)")
    likelihood = args.likelihood or ds.likelihood_hint
    _check_binary(ds, likelihood)
    lik_params = _likelihood_params(args, likelihood, given, ds)
    classes = None if ds.y_train is None else sorted(np.unique(ds.y_train).tolist())
    model = build_model(args, likelihood, classes, lik_params)
    model.initialize(ds.n_features)          # checks every setting before the folder is touched
    # a slice first: converting all 60,000 images to float64 would take 376 MB
    model._set_output_bias(to_input(ds.x_train[:10000], likelihood, np.float64))
    if args.overwrite:
        clear_run(out)
    remove_orphans(out)
    claim.wrote = True
    config = {k: v for k, v in vars(args).items()
              if k not in ("func", "explicit_", "from_config_", "resume", "overwrite")}
    config.update(dataset=ds.name, likelihood=likelihood, out=out, binarization=ds.binarization,
                  likelihood_params=lik_params)
    write_json(os.path.join(out, "config.json"), config)
    meta = {"config": config,
            "data": {"dataset": ds.name, "binarization": ds.binarization,
                     "data_dir": args.data_dir, "validation_size": val_size,
                     "split_seed": args.seed, "image_shape": list(ds.image_shape),
                     "source": ds.source}}
    settings = {k: config[k] for k in ("epochs", "lr", "lr_decay", "batch_size", "lr_schedule",
                                       "kl_warmup", "clip_norm", "patience", "adam_eps")}
    return model, ds, out, settings, meta


# ----------------------------------------------------------------------- training
def _interrupted(out):
    ckpt = os.path.join(out, "checkpoint.npz")
    if os.path.exists(ckpt):
        return (f"{ckpt} holds the last completed epoch; continue with "
                f"`npvae train --out {out} --resume`")
    return "before the first epoch ended, nothing saved"


def _best_epoch(model):
    """The epoch whose parameters early stopping restored: the best validation value of
    the objective (:func:`npvae.training.selection`), the first of equals."""
    from ..training import selection

    key, sign = selection(model)
    scored = [(sign * r[f"val_{key}"], -r["epoch"]) for r in model.history_
              if isinstance(r.get(f"val_{key}"), (int, float))]
    return -max(scored)[1] if scored else model.n_iter_


def _reason(exc):
    """The library's account of a divergence without its own advice (given here in
    terms of flags) or its claims about checkpoints (checked here)."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "the loss is not finite"
    for tail in ("; parameters are", ": training diverged", ". Try a smaller"):
        reason = reason.split(tail)[0]
    return reason.rstrip(". ")


def _learned_variance_floor(model):
    """``(True, floor or None)`` for a Gaussian likelihood with a learned variance, else
    ``(False, None)``."""
    lik = getattr(model, "likelihood_", None)
    if getattr(lik, "name", "") != "gaussian" or lik.variance == "fixed":
        return False, None
    return True, lik.min_logvar


def _diverged(exc, out, settings, model=None):
    """The one-line message of a diverged run: what happened, what is kept, what to try.
    A Gaussian whose learned variance has no floor is told to start again with one (a
    floor changes the model: --resume cannot add it)."""
    reason = _reason(exc)
    ckpt = os.path.join(out, "checkpoint.npz")
    clip = settings.get("clip_norm")
    advice = (f"a smaller --lr (it was {settings['lr']:g}) or "
              + (f"a smaller --clip-norm (it was {clip:g})" if clip else "--clip-norm 1"))
    learned, floor = _learned_variance_floor(model)
    if learned and floor is None:
        return (f"training diverged: {reason}; the Gaussian's learned variance has no floor "
                "(--gaussian-min-logvar none), and on quantised data it runs to 0: start "
                f"again with `--out {out} --overwrite --gaussian-min-logvar auto`")
    if learned:
        advice = f"a higher --gaussian-min-logvar (it was {floor:g}), {advice}"
        return (f"training diverged: {reason}; start again with `--out {out} --overwrite` "
                f"and {advice}")
    if os.path.exists(ckpt):
        return (f"training diverged: {reason}; {ckpt} holds the last completed epoch: "
                f"continue with `npvae train --out {out} --resume` and {advice}")
    return f"training diverged: {reason}; nothing was saved: try {advice}"


def _fit(model, ds, x_train, out, settings, meta, quiet, figures, seed):
    """Train up to ``settings["epochs"]`` in all, then test ELBO, results.json, figures
    (a run already at its total only gets what is missing: a run killed after its last
    epoch is completed by ``--resume``)."""
    from ..training import TrainingDiverged, train

    total = settings["epochs"]
    say(f"data: {describe_data(ds, model)}", quiet)
    say(f"model: {describe_model(model)}; writing {out}/", quiet)
    x_val = split_x(ds, "valid", model) if ds.x_valid is not None else None
    t0 = time.perf_counter()
    options = dict(epochs=total - model.n_iter_, batch_size=settings["batch_size"],
                   learning_rate=settings["lr"], batch_transform=make_batch_transform(ds, model),
                   lr_schedule=settings["lr_schedule"], lr_decay=settings["lr_decay"],
                   kl_warmup_epochs=settings["kl_warmup"], clip_norm=settings["clip_norm"],
                   patience=settings["patience"], run_dir=out, metadata=meta,
                   progress=not quiet,
                   optimizer_options={"eps": settings["adam_eps"]}
                   if model.optimizer == "adam" else None)
    try:
        if is_conditional(model):
            train(model, x_train, ds.y_train[:len(x_train)], X_val=x_val,
                  y_val=ds.y_valid if x_val is not None else None, **options)
        else:
            train(model, x_train, X_val=x_val, **options)
    except KeyboardInterrupt as exc:
        if sys.stderr.isatty():
            print(file=sys.stderr)       # end the progress bar's line
        exc.args = (_interrupted(out),)
        raise
    except TrainingDiverged as exc:
        raise CLIError(_diverged(exc, out, settings, model), exit_code=1) from None
    seconds = time.perf_counter() - t0
    # every epoch's training time, those of earlier sessions of a resumed run included
    train_seconds = sum(r.get("seconds", 0.0) for r in model.history_)
    ckpt = os.path.join(out, "checkpoint.npz")
    if not os.path.exists(ckpt):     # --epochs 0: the initial model, to evaluate or resume
        from .. import checkpoint

        checkpoint.save(model, ckpt, meta)
        rewrite_history(out, model.history_)
    stopped_early = model.n_iter_ < total
    from ..training import SELECTION_NAMES, selection

    epoch = _best_epoch(model) if stopped_early else model.n_iter_
    which = (f"the best validation {SELECTION_NAMES[selection(model)[0]]}'s, restored by early "
             "stopping" if stopped_early else "the last epoch's")
    _evaluate_and_report(model, ds, "test", seed=0, n_importance=0, quiet=quiet,
                         source=f"{which} (epoch {epoch}; `npvae evaluate --out {out}` reads "
                                "best.npz)",
                         extra=dict(parameters_epoch=epoch, train_seconds=train_seconds,
                                    session_seconds=seconds,
                                    epochs=model.n_iter_, epochs_planned=total,
                                    early_stopped=stopped_early, dataset=ds.name,
                                    binarization=ds.binarization, source=ds.source),
                         save_to=os.path.join(out, "results.json"))
    if figures:
        paths = write_figures(model, ds, out, seed=seed)
        say(f"figures: {', '.join(os.path.relpath(p, out) for p in paths)} in {out}/figures",
             quiet)
    return 0
