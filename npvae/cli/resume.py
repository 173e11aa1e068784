"""``npvae train --resume``: what a resumed run keeps, what the command line may
change, and the run folder made consistent before training continues.

A resumed run keeps everything that defines its model and data (architecture,
likelihood, data set, binarisation, split, seed, ...): a flag that would change
one of them is refused.  The training flags in :data:`OVERRIDES` given on the
command line replace the stored ones (and are stored for the next resume);
``--epochs`` is the total, counting the epochs already done.
"""
from __future__ import annotations

import json
import os

from .._fsafe import require_regular_file
from .common import (CLIError, check_metadata, dataset_for_run, load_checkpoint, notice,
                     remove_orphans, rewrite_history, run_folder, write_json)

#: training flags that ``--resume`` takes from the command line over the stored settings
OVERRIDES = ("epochs", "lr", "lr_decay", "batch_size", "lr_schedule", "kl_warmup", "clip_norm",
             "patience", "threads", "backend", "adam_eps")
#: flags of the invocation itself, never taken from the stored run
PER_RUN = ("out", "data_dir", "resume", "overwrite", "quiet", "no_figures")


def train_defaults():
    """The value of every ``npvae train`` flag when none is given."""
    from .parser import build_parser

    return vars(build_parser().parse_args(["train"]))


def explicit(args):
    """The flags given on the command line: recorded by :func:`npvae.cli.main`, else
    those that differ from their defaults."""
    given = getattr(args, "explicit_", None)
    if given is not None:
        return set(given)
    defaults = train_defaults()
    return {k for k, v in vars(args).items() if k in defaults and v != defaults[k]}


def flag(key):
    return "--" + key.replace("_", "-")


def _show(value):
    if isinstance(value, (list, tuple)):
        if value and isinstance(value[0], (list, tuple)):
            return ";".join(_show(v) for v in value)
        return ",".join(map(str, value)) or "''"
    return "none" if value is None else str(value)


def _normal(value):
    return json.loads(json.dumps(value, default=str))


def _same(key, given, stored):
    if key == "dataset":
        if given == "auto":
            return stored in ("mnist", "digits")
        from ..data.registry import _canonical_name

        try:
            return _canonical_name(given) == stored
        except ValueError:
            return False
    if key == "validation_size" and given is not None and stored is not None:
        return float(given) == float(stored)
    return _normal(given) == _normal(stored)


def _refuse_changes(args, given, config, data, out):
    """A one-line error when a flag given would change the stored run's model or data."""
    defaults = train_defaults()
    stored_of = {"binarization": data.get("binarization")}
    changed = []
    for key in sorted(given - set(OVERRIDES) - set(PER_RUN)):
        if key not in defaults:
            continue
        value = getattr(args, key)
        stored = stored_of[key] if key in stored_of else config.get(key, defaults[key])
        if not _same(key, value, stored):
            changed.append(f"{flag(key)} {_show(value)} (the run's: {_show(stored)})")
    if changed:
        raise CLIError(f"--resume continues the run in {out} as it was built, and "
                       f"{', '.join(changed)} would change its model or data; start a new "
                       "run instead (another --out, or --overwrite)")


def _settings(args, given, config):
    """The training settings of the resumed run and the changes the command line made."""
    defaults = train_defaults()
    settings, changes = {}, []
    for key in OVERRIDES:
        stored = config.get(key, defaults[key])
        value = getattr(args, key) if key in given else stored
        if key in given and _normal(value) != _normal(stored):
            changes.append(f"{flag(key)} {_show(stored)} -> {_show(value)}")
        settings[key] = value
    return settings, changes


def _results(out, n_iter):
    """The run's ``results.json`` when it was written after epoch ``n_iter`` (else None:
    missing, damaged, or of an earlier epoch, as when a kill came after the last epoch's
    checkpoint and before the results)."""
    path = os.path.join(out, "results.json")
    try:
        require_regular_file(path)
        with open(path) as f:
            results = json.load(f)
    except (OSError, ValueError, RecursionError):
        return None
    return results if isinstance(results, dict) and results.get("epochs") == n_iter else None


def _is_text_list(value):
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _check_history(history, path):
    """A checkpoint's history as training reads it: records of numbers (a string where
    a validation ELBO belongs ended in an internal TypeError), and the thread policy's
    ``thread_changes``, a list of lines (npvae/threads.py)."""
    for i, record in enumerate(history):
        if not isinstance(record, dict):
            bad = f"{record!r}"[:80]
        else:
            bad = next((f"{key} = {value!r}"[:80] for key, value in record.items()
                        if value is not None and not (key == "thread_changes"
                                                      and _is_text_list(value))
                        and (isinstance(value, bool) or not isinstance(value, (int, float)))),
                       None if record.get("epoch") == i + 1 else "out of order")
        if bad is not None:
            raise CLIError(f"--resume: {path} holds a damaged history (epoch {i + 1}: "
                           f"{bad}); start the run again with --overwrite")


def prepare_resume(args):
    """The resumed run, ready to train: ``(model, ds, out, settings, meta)``; or None
    when it is finished (said on stdout).  ``settings`` are the training settings,
    ``settings["epochs"]`` the total."""
    from .. import checkpoint

    given = explicit(args)
    if not args.out:
        raise CLIError("--resume needs --out RUN, the folder of the run to continue")
    out = run_folder(args)
    path = os.path.join(out, "checkpoint.npz")
    if not os.path.lexists(path):
        if os.path.exists(os.path.join(out, "config.json")):
            raise CLIError(f"--resume: no checkpoint at {path}: the run stopped before its "
                           f"first epoch ended; start it again with `npvae train --config "
                           f"{os.path.join(out, 'config.json')} --out {out}`")
        raise CLIError(f"--resume: no checkpoint at {path}")
    require_regular_file(path)
    meta = check_metadata(checkpoint.read_metadata(path), path)
    config, data = meta.get("config"), meta.get("data")
    if not isinstance(config, dict) or not isinstance(data, dict) or not config:
        raise CLIError(f"--resume: {path} holds no run settings (it was not written by "
                       "`npvae train`); continue it from Python with npvae.training.train")
    from .settings import check_settings

    try:
        config = dict(config, **check_settings(config, unknown="skip"))
    except ValueError as exc:
        raise CLIError(f"--resume: {path} holds damaged run settings ({exc}); start the run "
                       "again with --overwrite") from None
    _refuse_changes(args, given, config, data, out)
    if config.get("model") == "fisher" and "kl_warmup" in given:
        raise CLIError("--kl-warmup does not apply to a --model fisher run (the Fisher "
                       "divergence has no KL weight)")
    settings, changes = _settings(args, given, config)
    from .common import setup_compute

    setup_compute(settings["backend"], settings["threads"])
    model, _ = load_checkpoint(path)
    _check_history(model.history_, path)
    done = model.n_iter_
    remove_orphans(out)
    rewrite_history(out, model.history_)     # history.jsonl as the checkpoint has it
    total = settings["epochs"]
    if total is None:
        total = config.get("epochs") or done
    results = _results(out, done)
    early = bool(results and results.get("early_stopped"))
    if done >= total or (early and not {"epochs", "patience"} & given):
        why = (f"early stopping ended it at epoch {done}" if done < total
               else f"it has trained {done} of --epochs {total}")
        if results is not None:
            print(f"npvae train: the run in {out} is finished ({why}); pass a larger --epochs "
                  "to train it further", flush=True)
            return None
        notice(f"the run in {out} is finished ({why}) but its results.json was not "
                "written (was it killed?); writing the results and figures now")
        total = done
    if changes:
        notice(f"resuming {out} with changed settings: " + ", ".join(changes))
    if args.data_dir:
        data = dict(data, data_dir=args.data_dir)
    ds = dataset_for_run(args, dict(meta, data=data), path)
    settings["epochs"] = total
    config = dict(config, **settings)
    meta = {k: v for k, v in meta.items() if k != "best_val_elbo"}
    meta.update(config=config, data=data)
    write_json(os.path.join(out, "config.json"), config)
    model.set_params(learning_rate=settings["lr"], batch_size=settings["batch_size"],
                     epochs=total)
    return model, ds, out, settings, meta


def read_json(path, what):
    """A JSON object from ``path``: a regular file (a FIFO would block), parsed (a
    nesting deep enough for a ``RecursionError`` is damage too), a dict; one-line
    ``CLIError`` otherwise."""
    try:
        require_regular_file(path, f"{what} {path}")
        with open(path, "rb") as f:
            value = json.loads(f.read())
    except FileNotFoundError:
        raise CLIError(f"{what}: no such file {path}") from None
    except OSError as exc:
        raise CLIError(f"{what}: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise CLIError(f"{what}: {path} is not a run's config.json (not JSON: "
                       f"{type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise CLIError(f"{what}: {path} is not a run's config.json (a JSON object)")
    return value


def apply_config(args):
    """``npvae train --config RUN/config.json``: the recorded settings become the values
    of every flag not given on the command line (the run-specific ones — output folder,
    resume, quiet — excepted); ``--out`` defaults to the recorded folder + ``-again``.
    Every value is checked as the flag checks it when typed (:func:`.settings.check_settings`);
    an empty file or an unknown key is refused."""
    from .settings import check_settings

    path = args.config
    config = read_json(path, "--config")
    if not config:
        raise CLIError(f"--config: {path} holds no settings ({{}}); give a run's config.json")
    try:
        parsed = check_settings(config)
    except ValueError as exc:
        raise CLIError(f"--config: {path}: {exc}") from None
    given = explicit(args)
    args.from_config_ = set()           # the flags whose values came from the file
    for key, value in parsed.items():
        if key not in given and key not in PER_RUN + ("config",):
            setattr(args, key, value)
            args.from_config_.add(key)
    if "out" not in given:
        args.out = str(parsed.get("out") or "runs/run").rstrip("/") + "-again"
    return args
