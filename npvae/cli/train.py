"""``npvae train``: build (or resume) a model, fit it, write the run folder."""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from .._fsafe import FolderLocked, folder_lock
from .common import (CLIError, _batch_transform, _build_model, _clear_run, _conditional,
                     _default_validation, _describe, _describe_model, _holds_run, _load_data, _notice,
                     _remove_orphans, _rewrite_history, _say, _setup_compute, _split_x,
                     _to_input, _write_json)
from .evaluate import _evaluate_and_report
from .figures import write_figures
from .resume import explicit, flag, prepare_resume


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
            _say(f"resuming {out}/checkpoint.npz at epoch {model.n_iter_} of "
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
        self.lock, self.out, self.created, self.wrote = None, None, False, False

    def take(self, out, create):
        if self.lock is not None:
            return
        created = create and not os.path.isdir(out)
        if created:
            os.makedirs(out, exist_ok=True)
        try:
            self.lock = folder_lock(out)
        except FolderLocked as exc:
            if created:
                _rmdir(out)
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
            _rmdir(self.out)


def _rmdir(folder):
    try:
        os.rmdir(folder)
    except OSError:
        pass                             # not empty: files that are not ours


# ----------------------------------------------------------------------- a new run
def _refuse_existing(out, overwrite):
    found = _holds_run(out)
    if found and not overwrite:
        raise CLIError(f"{out} already holds a run ({', '.join(found)}); continue it with "
                       f"--resume, choose another --out, or pass --overwrite to replace it")
    if not found and os.path.lexists(os.path.join(out, "config.json")):
        _notice(f"{out} holds the config.json of a run that never finished an epoch; "
                "this run replaces it")


def _likelihood_params(args, likelihood, given):
    """``likelihood_params`` of the model: the Gaussian's variance options; the
    Gaussian flags are refused for other likelihoods."""
    gaussian_flags = sorted({"gaussian_variance", "gaussian_logvar", "gaussian_mean"} & given)
    if likelihood != "gaussian":
        if gaussian_flags:
            names = " and ".join(flag(k) for k in gaussian_flags)
            verb = "apply" if len(gaussian_flags) > 1 else "applies"
            raise CLIError(f"{names} {verb} to --likelihood gaussian only, and this run's "
                           f"likelihood is {likelihood}")
        return None
    return {"variance": args.gaussian_variance, "logvar": args.gaussian_logvar,
            "sigmoid_mean": args.gaussian_mean == "sigmoid"}


def _dataset_key(name):
    if name == "auto":
        return "auto"
    from ..data.registry import _canonical_name

    return _canonical_name(name)          # unknown names: a one-line ValueError


#: settings the Fisher autoencoder's objective has no place for, and their neutral values
_NOT_FISHER = {"objective": "elbo", "k": 1, "beta": 1.0, "posterior": "diagonal",
               "gradient_estimator": "standard", "kl_warmup": 0.0}
#: its decoder: checked when typed or read from --config (else they hold the parser's
#: defaults, which are the VAE's, not a choice)
_FISHER_DECODER = {"likelihood": "gaussian", "gaussian_variance": "fixed",
                   "gaussian_mean": "linear"}


def _fisher_settings(args, given, key):
    """``--model fisher``: a Gaussian decoder of fixed variance on grey levels
    (docs/14-fisher-autoencoder.md); refuses, in one line, the settings it cannot
    honour, whether typed or read from ``--config`` (then naming what to give)."""
    from ..models.fisher import SMOOTH_ACTIVATIONS

    from_config = getattr(args, "from_config_", set())
    wrong = [name for name, neutral in _NOT_FISHER.items() if getattr(args, name) != neutral]
    wrong += [name for name, value in _FISHER_DECODER.items() if name in given | from_config
              and getattr(args, name) not in (None, value)]
    fisher = {**_NOT_FISHER, **_FISHER_DECODER, "activation": "tanh", "binarization": "none",
              "dataset": "mnist", "latent": "Z (one size)", "hidden": "WIDTHS (one group)"}
    # what only a --config can bring (typed, each has its own message below or in the model)
    read_only = {
        "activation": args.activation not in SMOOTH_ACTIVATIONS,
        "binarization": args.binarization not in (None, "none"),
        "dataset": key == "binarized_mnist",
        "latent": len(args.latent) != 1,                             # a hierarchical VAE's
        "hidden": bool(args.hidden) and isinstance(args.hidden[0], (tuple, list))}
    wrong += [name for name, bad in read_only.items() if bad and name in from_config]
    if wrong == ["likelihood"] and "likelihood" in given:
        raise CLIError(f"--model fisher needs --likelihood gaussian (its decoder is a "
                       f"Gaussian of fixed variance), not {args.likelihood}")
    if wrong:
        typed = [flag(n) for n in wrong if n in given]
        read = [f"{flag(n)} {fisher[n]}" for n in wrong if n not in given]
        parts = ([f"leave out {', '.join(typed)}"] if typed else []) + (
            [f"give {' '.join(read)} (--config holds other values)"] if read else [])
        raise CLIError("--model fisher has its own objective (the Fisher divergence) and a "
                       "linear Gaussian decoder of fixed variance (--gaussian-logvar) on grey "
                       "levels: " + "; ".join(parts))
    if args.binarization not in (None, "none") or key == "binarized_mnist":
        raise CLIError("--model fisher models grey levels: use --dataset mnist (or another "
                       "grey-level set) without --binarization")
    args.likelihood, args.gaussian_variance, args.gaussian_mean = "gaussian", "fixed", "linear"
    if "activation" not in given | from_config:
        args.activation = "tanh"                 # its gradient needs f'': relu has none
    return "none"


def check_settings(args):
    """The checks of a new run that need no data (``npvae sweep`` makes them before
    anything runs): a one-line :class:`CLIError` or ValueError, else ``(given, key,
    binarization)``: the flags given, the data set's name and the binarisation."""
    given = explicit(args)
    key = _dataset_key(args.dataset)
    binarization = args.binarization
    if args.model == "fisher":
        binarization = _fisher_settings(args, given, key)
    if args.likelihood:
        _likelihood_params(args, args.likelihood, given)       # refuse early
    if args.likelihood in ("beta", "categorical"):
        what = ("dequantised, (pixel + 0.5) / 256" if args.likelihood == "beta"
                else "levels 0..255")
        if binarization not in (None, "none"):
            raise CLIError(f"--likelihood {args.likelihood} models grey levels: leave out "
                           f"--binarization {binarization} (the data are {what})")
        if key == "binarized_mnist":
            raise CLIError(f"--likelihood {args.likelihood} models grey levels, and "
                           "binarized_mnist is binary; use --dataset mnist")
        binarization = "none"
    return given, key, binarization


def _new_run(args, claim):
    """Load the data, build and initialise the model, prepare the run folder."""
    given, key, binarization = check_settings(args)
    if args.out:
        claim.take(args.out, create=True)
        _refuse_existing(args.out, args.overwrite)
    _setup_compute(args.backend, args.threads)
    val_size = args.validation_size
    if val_size is None:
        val_size = _default_validation(key if key != "auto" else "mnist")
    try:
        ds = _load_data(key, args.data_dir, binarization, val_size, args.seed, args.quiet)
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
    lik_params = _likelihood_params(args, likelihood, given)
    classes = None if ds.y_train is None else sorted(np.unique(ds.y_train).tolist())
    model = _build_model(args, likelihood, classes, lik_params)
    model.initialize(ds.n_features)          # checks every setting before the folder is touched
    # a slice first: converting all 60,000 images to float64 would take 376 MB
    model._set_output_bias(_to_input(ds.x_train[:10000], likelihood, np.float64))
    if args.overwrite:
        _clear_run(out)
    _remove_orphans(out)
    claim.wrote = True
    config = {k: v for k, v in vars(args).items()
              if k not in ("func", "explicit_", "from_config_", "resume", "overwrite")}
    config.update(dataset=ds.name, likelihood=likelihood, out=out, binarization=ds.binarization,
                  likelihood_params=lik_params)
    _write_json(os.path.join(out, "config.json"), config)
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


def _diverged(exc, out, settings):
    """The one-line message of a diverged run: what happened, what is kept, what to try."""
    reason = _reason(exc)
    ckpt = os.path.join(out, "checkpoint.npz")
    clip = settings.get("clip_norm")
    advice = (f"a smaller --lr (it was {settings['lr']:g}) or "
              + (f"a smaller --clip-norm (it was {clip:g})" if clip else "--clip-norm 1"))
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
    _say(f"data: {_describe(ds, model)}", quiet)
    _say(f"model: {_describe_model(model)}; writing {out}/", quiet)
    x_val = _split_x(ds, "valid", model) if ds.x_valid is not None else None
    t0 = time.perf_counter()
    options = dict(epochs=total - model.n_iter_, batch_size=settings["batch_size"],
                   learning_rate=settings["lr"], batch_transform=_batch_transform(ds, model),
                   lr_schedule=settings["lr_schedule"], lr_decay=settings["lr_decay"],
                   kl_warmup_epochs=settings["kl_warmup"], clip_norm=settings["clip_norm"],
                   patience=settings["patience"], run_dir=out, metadata=meta,
                   progress=not quiet,
                   optimizer_options={"eps": settings["adam_eps"]}
                   if model.optimizer == "adam" else None)
    try:
        if _conditional(model):
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
        raise CLIError(_diverged(exc, out, settings), exit_code=1) from None
    seconds = time.perf_counter() - t0
    ckpt = os.path.join(out, "checkpoint.npz")
    if not os.path.exists(ckpt):     # --epochs 0: the initial model, to evaluate or resume
        from .. import checkpoint

        checkpoint.save(model, ckpt, meta)
        _rewrite_history(out, model.history_)
    stopped_early = model.n_iter_ < total
    from ..training import SELECTION_NAMES, selection

    epoch = _best_epoch(model) if stopped_early else model.n_iter_
    which = (f"the best validation {SELECTION_NAMES[selection(model)[0]]}'s, restored by early "
             "stopping" if stopped_early else "the last epoch's")
    _evaluate_and_report(model, ds, "test", seed=0, n_importance=0, quiet=quiet,
                         source=f"{which} (epoch {epoch}; `npvae evaluate --out {out}` reads "
                                "best.npz)",
                         extra=dict(parameters_epoch=epoch, train_seconds=seconds,
                                    epochs=model.n_iter_, epochs_planned=total,
                                    early_stopped=stopped_early, dataset=ds.name,
                                    binarization=ds.binarization, source=ds.source),
                         save_to=os.path.join(out, "results.json"))
    if figures:
        paths = write_figures(model, ds, out, seed=seed)
        _say(f"figures: {', '.join(os.path.relpath(p, out) for p in paths)} in {out}/figures",
             quiet)
    return 0
