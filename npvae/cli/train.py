"""``npvae train``: build (or resume) a model, fit it, write the run folder."""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from .common import (CLIError, _batch_transform, _build_model, _clear_run, _conditional,
                     _default_validation, _describe, _describe_model, _holds_run, _load_data,
                     _remove_orphans, _rewrite_history, _say, _setup_compute, _split_x,
                     _to_input, _write_json)
from .evaluate import _evaluate_and_report
from .figures import write_figures
from .resume import explicit, flag, prepare_resume


def cmd_train(args):
    if args.resume:
        prepared = prepare_resume(args)
        if prepared is None:             # finished already
            return 0
        model, ds, out, settings, meta = prepared
        _say(f"resuming {out}/checkpoint.npz at epoch {model.n_iter_} of {settings['epochs']}",
             args.quiet)
        created = None
    else:
        model, ds, out, settings, meta, created = _new_run(args)
    config = meta["config"]
    x_train = ds.x_train[:config.get("max_examples") or None]   # the run's own setting on resume
    return _fit(model, ds, x_train, out, settings, meta, quiet=args.quiet,
                figures=not args.no_figures, seed=config.get("seed", 0), created=created)


# ----------------------------------------------------------------------- a new run
def _refuse_existing(out, overwrite):
    found = _holds_run(out)
    if found and not overwrite:
        raise CLIError(f"{out} already holds a run ({', '.join(found)}); continue it with "
                       f"--resume, choose another --out, or pass --overwrite to replace it")


def _auto_min_logvar(ds):
    """``log(Δ²/12)``, the variance of a level's rounding error, for the step ``Δ``
    between the levels of the model's input (docs/04-likelihoods.md#a-floor-under-the-variance)."""
    from ..data import quantization_step

    return round(float(np.log(quantization_step(ds.x_train, ds.binarization) ** 2 / 12)), 4)


def _likelihood_params(args, likelihood, given, ds=None):
    """``likelihood_params`` of the model: the Gaussian's variance options (with ``ds``,
    the data, the floor under a learned variance); the Gaussian flags are refused for
    other likelihoods."""
    gaussian_flags = sorted({"gaussian_variance", "gaussian_logvar", "gaussian_mean",
                             "gaussian_min_logvar"} & given)
    if likelihood != "gaussian":
        if gaussian_flags:
            names = " and ".join(flag(k) for k in gaussian_flags)
            verb = "apply" if len(gaussian_flags) > 1 else "applies"
            raise CLIError(f"{names} {verb} to --likelihood gaussian only, and this run's "
                           f"likelihood is {likelihood}")
        return None
    params = {"variance": args.gaussian_variance, "logvar": args.gaussian_logvar,
              "sigmoid_mean": args.gaussian_mean == "sigmoid"}
    floor = getattr(args, "gaussian_min_logvar", None)
    if args.gaussian_variance == "fixed":
        if "gaussian_min_logvar" in given and floor != "none":
            raise CLIError("--gaussian-min-logvar floors a learned variance; with "
                           "--gaussian-variance fixed give --gaussian-logvar itself")
    elif floor != "none" and (floor is not None or ds is not None):
        params["min_logvar"] = _auto_min_logvar(ds) if floor is None else float(floor)
    return params


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


def _check_objective(args):
    """``--objective``, ``--k`` and ``--gradient-estimator`` together, in the flags' words
    (the model's own messages name its Python parameters)."""
    if args.objective == "iwae" and args.k < 2:
        raise CLIError(f"--objective iwae needs --k K, at least 2 importance samples (k = "
                       f"{args.k} is the ELBO: --objective elbo); Burda et al. used 5 and 50")
    if args.objective != "iwae" and args.k != 1:
        raise CLIError(f"--k {args.k} applies to --objective iwae only; add --objective iwae "
                       "or leave out --k")
    if args.gradient_estimator == "dreg" and args.objective != "iwae":
        raise CLIError("--gradient-estimator dreg is for --objective iwae (for the ELBO it "
                       "coincides with --gradient-estimator stl)")


def _check_binary(ds, likelihood):
    """``--likelihood bernoulli`` on grey levels, in the flags' words."""
    if likelihood == "bernoulli" and ds.binarization == "none" and not np.all(
            (ds.x_train == 0) | (ds.x_train == 255)):
        raise CLIError(f"--likelihood bernoulli needs binary data and {ds.name} holds grey "
                       "levels: leave out --binarization none (or give static or dynamic), "
                       "or model the grey levels with --likelihood gaussian or beta")


def _new_run(args):
    """Load the data, build and initialise the model, prepare the run folder."""
    given = explicit(args)
    key = _dataset_key(args.dataset)
    if args.model != "fisher":
        _check_objective(args)
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
    if args.out:
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
    if ds.name == "binarized_mnist":
        val_size = args.validation_size
    else:
        val_size = None if ds.x_valid is None else len(ds.x_valid)
    out = args.out or os.path.join("runs", f"{args.model}-{ds.name}")
    if not args.out:
        _refuse_existing(out, args.overwrite)
    if args.epochs is None:
        args.epochs = 10 if len(ds.x_train) >= 10000 else 100
    if args.patience is not None and ds.x_valid is None:
        raise CLIError("--patience needs a validation split (--validation-size above 0)")
    likelihood = args.likelihood or ds.likelihood_hint
    _check_binary(ds, likelihood)
    lik_params = _likelihood_params(args, likelihood, given, ds)
    classes = None if ds.y_train is None else sorted(np.unique(ds.y_train).tolist())
    model = _build_model(args, likelihood, classes, lik_params)
    model.initialize(ds.n_features)          # checks every setting before the folder is touched
    # a slice first: converting all 60,000 images to float64 would take 376 MB
    model._set_output_bias(_to_input(ds.x_train[:10000], likelihood, np.float64))
    if args.overwrite:
        _clear_run(out)
    created = not os.path.isdir(out)
    os.makedirs(out, exist_ok=True)
    _remove_orphans(out)
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
    return model, ds, out, settings, meta, created


# ----------------------------------------------------------------------- training
def _interrupted(out):
    ckpt = os.path.join(out, "checkpoint.npz")
    if os.path.exists(ckpt):
        return (f"{ckpt} holds the last completed epoch; continue with "
                f"`npvae train --out {out} --resume`")
    return "before the first epoch ended, nothing saved"


def _forget_unstarted(out, created):
    """A new run that ended before its first checkpoint leaves nothing behind: no
    config.json that would mark ``out`` as holding a run (and ``out`` itself goes
    when this command created it)."""
    if created is None or os.path.exists(os.path.join(out, "checkpoint.npz")):
        return
    for name in ("config.json", "history.jsonl"):
        path = os.path.join(out, name)
        if os.path.isfile(path):
            os.remove(path)
    if created:
        try:
            os.rmdir(out)
        except OSError:
            pass


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
    lik = getattr(model, "_lik", None)
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


def _fit(model, ds, x_train, out, settings, meta, quiet, figures, seed, created=None):
    """Train up to ``settings["epochs"]`` in all, then test ELBO, results.json, figures.
    ``created``: None on --resume, else whether this command created ``out``."""
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
        _forget_unstarted(out, created)
        exc.args = (_interrupted(out),)
        raise
    except TrainingDiverged as exc:
        _forget_unstarted(out, created)
        raise CLIError(_diverged(exc, out, settings, model), exit_code=1) from None
    except BaseException:
        _forget_unstarted(out, created)
        raise
    seconds = time.perf_counter() - t0
    ckpt = os.path.join(out, "checkpoint.npz")
    if not os.path.exists(ckpt):     # --epochs 0: the initial model, to evaluate or resume
        from .. import checkpoint

        checkpoint.save(model, ckpt, meta)
        _rewrite_history(out, model.history_)
    stopped_early = model.n_iter_ < total
    from ..training import SELECTION_NAMES, selection

    which = (f"the best validation {SELECTION_NAMES[selection(model)[0]]}'s, restored by early "
             "stopping" if stopped_early else "the last epoch's")
    results = _evaluate_and_report(model, ds, "test", seed=0, n_importance=0, quiet=quiet,
                                   source=f"{which} (epoch {model.n_iter_}; "
                                          f"`npvae evaluate --out {out}` reads best.npz)")
    results.update(train_seconds=seconds, epochs=model.n_iter_, epochs_planned=total,
                   early_stopped=stopped_early, dataset=ds.name,
                   binarization=ds.binarization, source=ds.source)
    _write_json(os.path.join(out, "results.json"), results)
    if figures:
        paths = write_figures(model, ds, out, seed=seed)
        _say(f"figures: {', '.join(os.path.relpath(p, out) for p in paths)} in {out}/figures",
             quiet)
    return 0
