"""What the commands share: messages, compute settings, data loading, run
folders and checkpoints, model building and description, image display.

Heavy modules are imported inside the functions that need them, so that
``npvae --help`` stays fast.
"""
from __future__ import annotations

import os

import numpy as np


# ----------------------------------------------------------------------- messages
def _say(msg, quiet=False):
    if not quiet:
        print(msg, flush=True)


def _first_line(exc):
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


def _setup_compute(args):
    import npvae

    if args.backend:
        npvae.set_backend(args.backend)
    if args.threads:
        npvae.set_num_threads(args.threads)


# ----------------------------------------------------------------------- data
def _load_data(name, data_dir, binarization, validation_size, seed, quiet):
    from .. import data

    if name == "auto":
        try:
            ds = data.load_dataset("mnist", data_dir=data_dir, binarization=binarization,
                                   validation_size=validation_size, random_state=seed)
        except (OSError, ValueError) as exc:
            _say(f"MNIST not available ({_first_line(exc)}); using the offline 8x8 digits "
                 "of scikit-learn instead. Set NPVAE_DATA or --data-dir for MNIST.", quiet)
            if validation_size == _default_validation("mnist"):
                validation_size = _default_validation("digits")
            ds = data.load_dataset("digits", binarization=binarization,
                                   validation_size=validation_size, random_state=seed)
    else:
        ds = data.load_dataset(name, data_dir=data_dir, binarization=binarization,
                               validation_size=validation_size, random_state=seed)
    return ds


def _default_validation(name):
    return None if name == "binarized_mnist" else (
        10000 if name in ("mnist", "fashion_mnist") else 0.1)


def _split_x(ds, split, dtype):
    """A stored split as model input: ``x / 255`` (binary sets give 0/1; docs/12-data.md)."""
    return ds.as_float(split, dtype)


def _batch_transform(ds, dtype):
    from ..data import convert_batch

    mode = "dynamic" if ds.binarization == "dynamic" else "none"
    return lambda xb, rng: convert_batch(xb, mode, dtype, rng)


def _describe(ds):
    from ..data import describe

    return describe(ds)


# ----------------------------------------------------------------------- run folders
def _run_dir(args):
    if args.out:
        return args.out
    raise SystemExit("npvae: --out RUN is required (the folder that `npvae train` wrote)")


def _checkpoint_path(args):
    if getattr(args, "checkpoint", None):
        return args.checkpoint
    run = _run_dir(args)
    for name in ("best.npz", "checkpoint.npz"):
        path = os.path.join(run, name)
        if os.path.exists(path):
            return path
    raise SystemExit(f"npvae: no checkpoint in {run} (expected best.npz or checkpoint.npz)")


def _dataset_for_run(args, meta):
    d = meta.get("data", {})
    return _load_data(d.get("dataset", "digits"), args.data_dir or d.get("data_dir"),
                      d.get("binarization"), d.get("validation_size"), d.get("split_seed", 0),
                      quiet=True)


# ----------------------------------------------------------------------- models
def _build_model(args, likelihood, classes=None):
    """The model that ``npvae train`` fits, from the parsed arguments.

    ``likelihood`` is ``--likelihood`` or the data set's hint; ``classes`` the
    sorted labels (needed by ``--model cvae``).
    """
    import npvae

    common = dict(hidden_sizes=args.hidden, activation=args.activation, likelihood=likelihood,
                  n_samples=args.samples, beta=args.beta, optimizer=args.optimizer,
                  learning_rate=args.lr, batch_size=args.batch_size, epochs=args.epochs,
                  dtype=args.dtype, random_state=args.seed)
    if args.objective != "elbo" or args.k != 1:
        common.update(objective=args.objective, k=args.k)
    if args.model == "hvae":
        return npvae.HierarchicalVAE(latent_sizes=args.latent, inference=args.inference, **common)
    if args.model == "cvae":
        if classes is None:
            raise SystemExit("npvae: --model cvae needs a labelled data set (mnist, "
                             "fashion_mnist, digits, synthetic)")
        return npvae.ConditionalVAE(n_latent=args.latent[0], posterior=args.posterior,
                                    classes=classes, **common)
    if len(args.latent) != 1:
        raise SystemExit("npvae: --latent takes one size for --model vae")
    return npvae.VAE(n_latent=args.latent[0], posterior=args.posterior, **common)


def _describe_model(model):
    arch = getattr(model, "latent_sizes", None) or (model.n_latent,)
    return (f"{type(model).__name__} D={model.n_features_in_} hidden={tuple(model.hidden_sizes)} "
            f"latent={tuple(arch)} {model.activation} {model.likelihood} "
            f"{model.dtype} ({model.layout_.size:,} parameters)")


def _conditional(model):
    return hasattr(model, "classes_") or type(model).__name__ == "ConditionalVAE"


def _display(model, means):
    """Likelihood means scaled to [0, 1] for images."""
    if model.likelihood == "categorical":
        return means / (model._lik.n_levels - 1)
    return np.clip(means, 0, 1)
