"""What the commands share: messages and errors, compute settings, data loading,
run folders and checkpoints, model building and description, image display.

Heavy modules are imported inside the functions that need them, so that
``npvae --help`` stays fast.
"""
from __future__ import annotations

import glob
import json
import os
import re
import stat
import sys

import numpy as np

from .._atomic import atomic_file
from .._fsafe import require_regular_file
from .errors import CLIError
from .posterior_flags import posterior_params as _posterior_params
from .prior_flags import prior_kwargs


# ----------------------------------------------------------------------- messages
def say(msg, quiet=False):
    """Progress and results on stdout (silenced by --quiet)."""
    if not quiet:
        print(msg, flush=True)


def notice(msg):
    """A notice the user must see (a fallback, a changed setting) on stderr, even with
    --quiet."""
    print(f"npvae: {msg}", file=sys.stderr, flush=True)


def one_line(exc):
    """An exception's message as one line: its first line (a data file not found
    also keeps its last line, which says where to put the file)."""
    from ..data import DataNotFoundError

    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if isinstance(exc, DataNotFoundError):
        line = lines[0]
        if len(lines) > 1:
            line = f"{line.removesuffix(' Searched:').rstrip('.')}. {lines[-1]}"
        return line.replace("pass data_dir=", "pass --data-dir")    # the flag, here
    return lines[0]


def setup_compute(backend=None, threads=None):
    import npvae

    if backend:
        npvae.set_backend(backend)
    if threads:
        npvae.set_num_threads(threads)


# ----------------------------------------------------------------------- data
def load_data(name, data_dir, binarization, validation_size, seed, quiet=True):
    """The data set ``name``; ``"auto"`` is MNIST, or the offline 8x8 digits when MNIST
    is neither found nor downloadable (said on stderr whatever ``quiet``).  A copy
    of MNIST that is there but corrupt is an error, never a reason to fall back."""
    from .. import data

    if name == "auto":
        try:
            return data.load_dataset("mnist", data_dir=data_dir, binarization=binarization,
                                     validation_size=validation_size, random_state=seed)
        except (data.DataNotFoundError, data.DownloadError) as exc:
            reason = one_line(exc).split(". Put ")[0]
            notice(f"MNIST not available ({reason}); using the offline 8x8 digits of "
                    "scikit-learn instead (--dataset digits). Set NPVAE_DATA or --data-dir "
                    "for MNIST, or pass --dataset mnist to make this an error.")
            if validation_size == default_validation("mnist"):
                validation_size = default_validation("digits")
            name = "digits"
    return data.load_dataset(name, data_dir=data_dir, binarization=binarization,
                             validation_size=validation_size, random_state=seed)


def default_validation(name):
    return None if name == "binarized_mnist" else (
        10000 if name in ("mnist", "fashion_mnist") else 0.1)


def to_input(x, likelihood, dtype):
    """Stored ``uint8`` pixels as model input: ``(pixel + 0.5) / 256`` for the Beta
    likelihood (strictly inside (0, 1)), the levels themselves for the categorical,
    else ``pixel / 255`` (binary sets give 0/1; docs/12-data.md)."""
    from ..data import convert_batch, dequantize

    if likelihood == "beta":
        return dequantize(x, dtype)
    if likelihood == "categorical":
        return np.asarray(x, dtype=np.int64)
    return convert_batch(x, "none", dtype)


def stored_split(ds, split):
    """A split as stored (``uint8`` pixels)."""
    x = {"train": ds.x_train, "valid": ds.x_valid, "test": ds.x_test}.get(split)
    if x is None:
        raise CLIError(f"{ds.name} has no {split!r} split")
    return x


def split_x(ds, split, model, stop=None):
    """A stored split (its first ``stop`` rows) as ``model``'s input (see :func:`to_input`)."""
    return to_input(stored_split(ds, split)[:stop], model.likelihood, model.dtype)


def make_batch_transform(ds, model):
    """The conversion of every training batch: dynamic binarisation, dequantisation for
    the Beta likelihood, or ``pixel / 255``."""
    from ..data import convert_batch, dequantize

    dtype = model.dtype
    if model.likelihood == "beta":
        return lambda xb, rng: dequantize(xb, dtype)
    if model.likelihood == "categorical":
        return lambda xb, rng: np.asarray(xb, dtype=np.int64)
    mode = "dynamic" if ds.binarization == "dynamic" else "none"
    return lambda xb, rng: convert_batch(xb, mode, dtype, rng)


def describe_data(ds, model=None):
    """The data set in one line, naming ``model``'s likelihood (when given) rather than
    the data set's default one."""
    from ..data import describe

    text = describe(ds)
    if model is not None:
        text = text.replace(f"likelihood={ds.likelihood_hint}", f"likelihood={model.likelihood}")
    return text


# ----------------------------------------------------------------------- run folders
#: what ``npvae train`` writes into a run folder (``--overwrite`` removes these)
RUN_FILES = ("checkpoint.npz", "best.npz", "history.jsonl", "config.json", "results.json")
#: a folder holding one of these holds a run; ``config.json`` alone is a run that never
#: finished an epoch (a start that failed or was killed), which a new run takes over
RUN_MARKERS = ("checkpoint.npz", "best.npz", "history.jsonl", "results.json")
#: what ``npvae train`` and ``npvae plot`` write into ``figures/``, and ``npvae
#: evaluate`` beside the run files: ``--overwrite`` removes these names and no others
FIGURE_NAMES = ("reconstructions.png", "samples.png", "training_curves.png", "latent.png",
                "manifold.png", "interpolation.png")
EVALUATION_NAMES = tuple(f"evaluation-{split}.json" for split in ("test", "valid", "train"))
#: what ``npvae sample`` writes into ``figures/`` by default
_SAMPLE_NAME = re.compile(r"samples-(prior|classes|label-?\d+)-seed\d+\.(png|npy)")


def run_folder(args):
    if args.out:
        return args.out
    raise CLIError("--out RUN is required (the folder that `npvae train` wrote)")


def checkpoint_path(args):
    if getattr(args, "checkpoint", None):
        require_regular_file(args.checkpoint, f"--checkpoint {args.checkpoint}")
        return args.checkpoint
    run = run_folder(args)
    if not os.path.isdir(run):
        raise CLIError(f"--out {run}: no such folder")
    for name in ("best.npz", "checkpoint.npz"):
        path = os.path.join(run, name)
        if os.path.lexists(path):
            return require_regular_file(path)
    raise CLIError(f"no checkpoint in {run} (expected best.npz or checkpoint.npz)")


def holds_run(out):
    """The files that mark ``out`` as holding a run (empty when it does not)."""
    return [name for name in RUN_MARKERS if os.path.lexists(os.path.join(out, name))]


def remove_orphans(out):
    """Temporary files left by a kill during an atomic write: checkpoints
    (``.tmp-*.npz``) and the JSON files written here (``.tmp-*.json``)."""
    removed = []
    esc = glob.escape(out)
    for pattern in (".tmp-*.npz", ".tmp-*.json"):
        for path in glob.glob(os.path.join(esc, pattern)):
            if not os.path.isfile(path) or os.path.islink(path):
                continue
            os.remove(path)
            removed.append(path)
    return removed


def _remove_names(folder, names):
    """Remove the files ``folder/name`` (a link is removed as a link: its target is
    never touched; a folder of one of these names stays)."""
    for name in names:
        path = os.path.join(folder, name)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            os.remove(path)


def clear_run(out):
    """Remove the files of the run in ``out`` (what ``npvae train``, ``evaluate``,
    ``sample`` and ``plot`` write, by name), nothing else; links are removed, never
    followed (a ``figures`` link to another folder is removed, not emptied)."""
    _remove_names(out, RUN_FILES + EVALUATION_NAMES)
    figures = os.path.join(out, "figures")
    if os.path.islink(figures):
        os.remove(figures)
    elif os.path.isdir(figures):
        _remove_names(figures, FIGURE_NAMES + tuple(
            name for name in os.listdir(figures) if _SAMPLE_NAME.fullmatch(name)))
        try:
            os.rmdir(figures)
        except OSError:
            pass                     # holds files that are not ours
    remove_orphans(out)


def _write_text_atomic(path, text):
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    with atomic_file(path, "w", suffix=".json") as f:
        f.write(text)


def write_json(path, obj):
    _write_text_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")


def rewrite_history(out, history):
    """``history.jsonl`` as the checkpoint's own history, one record a line."""
    _write_text_atomic(os.path.join(out, "history.jsonl"),
                       "".join(json.dumps(record) + "\n" for record in history))


def load_checkpoint(path):
    """``(model, metadata)`` of a checkpoint file."""
    from .. import checkpoint
    from ..models import load

    model = load(path)
    return model, check_metadata(checkpoint.read_metadata(path), path)


def _is_int(value, minimum=0):
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


#: what the commands read from a checkpoint's metadata: field -> (check, what it must be)
_DATA_FIELDS = {
    "dataset": (lambda v: isinstance(v, str), "a data set's name"),
    "binarization": (lambda v: v in (None, "static", "dynamic", "none"),
                     "static, dynamic, none or null"),
    "validation_size": (lambda v: v is None or _is_int(v) or (
        isinstance(v, float) and 0.0 < v < 1.0), "a count, a fraction in (0, 1) or null"),
    "split_seed": (lambda v: v is None or _is_int(v), "an integer >= 0"),
    "data_dir": (lambda v: v is None or isinstance(v, str), "a folder or null"),
    "image_shape": (lambda v: v is None or (isinstance(v, list) and 1 <= len(v) <= 3
                                            and all(_is_int(s, 1) for s in v)),
                    "a list of 1 to 3 sizes >= 1"),
}


def check_metadata(meta, path):
    """A checkpoint's metadata as the commands read it (a damaged value was an internal
    TypeError or AttributeError): a dict, its ``data`` a dict of :data:`_DATA_FIELDS`,
    its ``best_val_bound`` a name; ``CLIError`` in one line otherwise."""
    def damaged(what):
        return CLIError(f"{path}: the checkpoint's metadata is damaged ({what})")

    if not isinstance(meta, dict):
        raise damaged("not a JSON object")
    data = meta.get("data")
    if data is not None:
        if not isinstance(data, dict):
            raise damaged("'data' is not a JSON object")
        for key, (ok, what) in _DATA_FIELDS.items():
            if key in data and not ok(data[key]):
                raise damaged(f"data.{key} is {data[key]!r:.40}, not {what}")
    if not isinstance(meta.get("best_val_bound"), (str, type(None))):
        raise damaged("best_val_bound is not a name")
    return meta


def dataset_for_run(args, meta, path):
    d = meta.get("data") if isinstance(meta, dict) else None
    if not isinstance(d, dict) or not d.get("dataset"):
        raise CLIError(f"{path} does not say which data set it was trained on (it was not "
                       "written by `npvae train`); use it from Python")
    return load_data(d["dataset"], args.data_dir or d.get("data_dir"),
                      d.get("binarization"), d.get("validation_size"), d.get("split_seed", 0))


# ----------------------------------------------------------------------- models
def build_model(args, likelihood, classes=None, likelihood_params=None):
    """The model that ``npvae train`` fits, from the parsed arguments.

    ``likelihood`` is ``--likelihood`` or the data set's hint, ``likelihood_params``
    its options (the Gaussian's variance); ``classes`` the sorted labels (needed by
    ``--model cvae``).
    """
    import npvae

    common = dict(hidden_sizes=args.hidden, activation=args.activation, likelihood=likelihood,
                  n_samples=args.samples, beta=args.beta, optimizer=args.optimizer,
                  learning_rate=args.lr, batch_size=args.batch_size, epochs=args.epochs,
                  dtype=args.dtype, random_state=args.seed)
    if likelihood_params:
        common.update(likelihood_params=likelihood_params)
    if args.objective != "elbo" or args.k != 1:
        common.update(objective=args.objective, k=args.k)
    if args.gradient_estimator != "standard":
        common.update(gradient_estimator=args.gradient_estimator)
    posterior_params, prior = _posterior_params(args), prior_kwargs(args)
    if args.model == "ladder":             # its flags checked by train_settings._check_ladder
        return npvae.LadderVAE(latent_sizes=args.latent, **{
            k: v for k, v in common.items() if k not in ("objective", "k", "gradient_estimator")})
    if args.model == "hvae":
        return npvae.HierarchicalVAE(latent_sizes=args.latent, inference=args.inference,
                                     **prior, **common)
    if args.model == "fisher":
        if len(args.latent) != 1 or (args.hidden and isinstance(args.hidden[0], tuple)):
            raise CLIError("--model fisher takes one --latent size and one group of --hidden "
                           "widths")
        return npvae.FisherAutoencoder(
            n_latent=args.latent[0], hidden_sizes=args.hidden, activation=args.activation,
            decoder_logvar=args.gaussian_logvar, n_samples=args.samples, optimizer=args.optimizer,
            learning_rate=args.lr, batch_size=args.batch_size, epochs=args.epochs,
            dtype=args.dtype, random_state=args.seed)
    if args.model == "cvae":
        if classes is None:
            raise CLIError("--model cvae needs a labelled data set (mnist, fashion_mnist, "
                           "digits, synthetic)")
        if len(args.latent) != 1:
            raise CLIError("--latent takes one size for --model cvae")
        return npvae.ConditionalVAE(n_latent=args.latent[0], posterior=args.posterior,
                                    classes=classes, **common)
    if len(args.latent) != 1:
        raise CLIError("--latent takes one size for --model vae (several are for --model hvae)")
    if args.hidden and isinstance(args.hidden[0], tuple):
        raise CLIError("--hidden with ';' (one group per level) is for --model hvae")
    if posterior_params:
        common.update(posterior_params=posterior_params)
    return npvae.VAE(n_latent=args.latent[0], posterior=args.posterior, **prior, **common)


def describe_model(model):
    arch = getattr(model, "latent_sizes", None) or (model.n_latent,)
    lik = model.likelihood
    if getattr(model, "likelihood_params", None):
        lik += "(" + ", ".join(f"{k}={v}" for k, v in model.likelihood_params.items()) + ")"
    return (f"{type(model).__name__} D={model.n_features_in_} hidden={tuple(model.hidden_sizes)} "
            f"latent={tuple(arch)} {model.activation} {lik} "
            f"{model.dtype} ({model.layout_.size:,} parameters)")


def is_conditional(model):
    return hasattr(model, "classes_") or type(model).__name__ == "ConditionalVAE"


def display(model, means):
    """Likelihood means scaled to [0, 1] for images."""
    if model.likelihood == "categorical":
        return means / (model.likelihood_.n_levels - 1)
    return np.clip(means, 0, 1)
