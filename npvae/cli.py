"""The ``npvae`` command: train, evaluate, sample and plot.

``npvae train`` writes a run folder (``--out``) holding ``config.json``,
``checkpoint.npz`` (after every epoch; ``--resume`` continues from it),
``best.npz`` (best validation ELBO), ``history.jsonl``, ``results.json`` and
``figures/*.png``.  ``python -m npvae`` is the same command.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

DESCRIPTION = """Variational autoencoders in NumPy with hand-written gradients.

  npvae train                       train the 784-400-20 VAE on MNIST (or the
                                    offline 8x8 digits when MNIST is not found)
  npvae evaluate --out RUN          test ELBO of a trained run
  npvae sample --out RUN            draw images from the prior
  npvae plot --out RUN              (re)write the figures of a run
"""


def _int_list(text):
    try:
        return tuple(int(t) for t in text.split(",") if t.strip()) if text.strip() else ()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")


def _hidden_list(text):
    """``400`` or ``200,200``; per level for hvae with ``;``: ``200,200;100,100``."""
    if ";" in text:
        return tuple(_int_list(part) for part in text.split(";"))
    return _int_list(text)


def _add_common(p):
    p.add_argument("--out", default=None, metavar="DIR",
                   help="run folder (checkpoint, history, config, figures); "
                        "default for train: runs/<model>-<dataset>")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="folder holding the data files, searched before $NPVAE_DATA, the "
                        "cache (~/.cache/npvae) and a download")
    p.add_argument("--backend", choices=("numba", "numpy"), default=None,
                   help="compute backend for elementwise kernels (default: numba)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for BLAS and Numba together (default: library defaults)")


def build_parser():
    parser = argparse.ArgumentParser(prog="npvae", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    fmt = argparse.ArgumentDefaultsHelpFormatter

    t = sub.add_parser("train", help="train a model and write its run folder", formatter_class=fmt)
    _add_common(t)
    t.add_argument("--dataset", default="auto",
                   help="mnist, fashion_mnist, binarized_mnist, frey, digits, synthetic; "
                        "'auto' uses mnist when it can be found or downloaded, else the "
                        "offline 8x8 digits of scikit-learn (and says so)")
    t.add_argument("--binarization", choices=("static", "dynamic", "none"), default=None,
                   help="default: dynamic for mnist/fashion_mnist/digits, static for "
                        "binarized_mnist, none for frey (Gaussian likelihood)")
    t.add_argument("--model", choices=("vae", "hvae", "cvae"), default="vae",
                   help="vae: one stochastic level; hvae: the hierarchical VAE; cvae: the "
                        "conditional VAE on the data set's labels")
    t.add_argument("--latent", type=_int_list, default=(20,),
                   help="latent size Z (hvae: one size per level, bottom first, e.g. 100,50)")
    t.add_argument("--hidden", type=_hidden_list, default=(400,),
                   help="encoder hidden widths, comma-separated ('' for none); the decoder "
                        "mirrors them; hvae: one group per level separated by ';', e.g. "
                        "'200,200;100,100'")
    t.add_argument("--activation", default="relu",
                   choices=("relu", "leaky_relu", "tanh", "softplus", "sigmoid", "identity"))
    t.add_argument("--likelihood", default=None, choices=("bernoulli", "gaussian", "categorical"),
                   help="default: bernoulli for binarised data, gaussian otherwise")
    t.add_argument("--posterior", choices=("diagonal", "full"), default="diagonal",
                   help="vae only: diagonal Gaussian q(z|x), or full covariance L Lᵀ (MATH §3)")
    t.add_argument("--samples", type=int, default=1, help="S, samples of z per example")
    t.add_argument("--beta", type=float, default=1.0, help="weight of the KL term")
    t.add_argument("--objective", choices=("elbo", "iwae"), default="elbo",
                   help="training objective (iwae: importance-weighted bound with --k samples)")
    t.add_argument("--k", type=int, default=1, help="importance samples for --objective iwae")
    t.add_argument("--inference", choices=("independent", "markov"), default="independent",
                   help="hvae only: factorisation of q")
    t.add_argument("--epochs", type=int, default=None,
                   help="passes over the training set (default: 10, or 100 for the small "
                        "offline sets digits and synthetic)")
    t.add_argument("--batch-size", type=int, default=100)
    t.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    t.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    t.add_argument("--lr-schedule", choices=("constant", "exponential", "cosine"),
                   default="constant")
    t.add_argument("--lr-decay", type=float, default=0.95,
                   help="per-epoch factor for --lr-schedule exponential")
    t.add_argument("--kl-warmup", type=float, default=0.0, metavar="EPOCHS",
                   help="beta rises linearly from 0 over this many epochs")
    t.add_argument("--clip-norm", type=float, default=None, help="gradient-norm clipping")
    t.add_argument("--patience", type=int, default=None,
                   help="early stopping after this many epochs without a better validation ELBO")
    t.add_argument("--validation-size", type=float, default=None,
                   help="examples (>=1) or fraction held out of training for validation; "
                        "default: 10000 for MNIST-sized sets, 10%% for small ones")
    t.add_argument("--max-examples", type=int, default=None,
                   help="use only the first N training examples (quick runs)")
    t.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    t.add_argument("--seed", type=int, default=0, help="seeds parameters, noise and shuffling")
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint for --epochs more")
    t.add_argument("--no-figures", action="store_true", help="skip the figures")
    t.add_argument("--quiet", action="store_true", help="no progress output")

    e = sub.add_parser("evaluate", help="test ELBO (and log-likelihood) of a trained run",
                       formatter_class=fmt)
    _add_common(e)
    e.add_argument("--checkpoint", default=None,
                   help="checkpoint file (default: best.npz, else checkpoint.npz in --out)")
    e.add_argument("--split", choices=("test", "valid", "train"), default="test")
    e.add_argument("--n-importance", type=int, default=0,
                   help="importance samples K for the log-likelihood estimate (0: skip; "
                        "5000 for published numbers)")
    e.add_argument("--max-examples", type=int, default=None,
                   help="evaluate only the first N examples of the split")
    e.add_argument("--seed", type=int, default=0, help="seeds the evaluation noise")

    s = sub.add_parser("sample", help="draw images from the prior", formatter_class=fmt)
    _add_common(s)
    s.add_argument("--checkpoint", default=None)
    s.add_argument("-n", "--n", type=int, default=64, help="number of samples")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--label", type=int, default=None, help="class to generate (conditional models)")
    s.add_argument("--output", default=None,
                   help="PNG path (default: <out>/figures/samples-seed<seed>.png); the raw "
                        "means go beside it as .npy")

    p = sub.add_parser("plot", help="write the figures of a run", formatter_class=fmt)
    _add_common(p)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--seed", type=int, default=0)
    return parser


# ----------------------------------------------------------------------- helpers
def _say(msg, quiet=False):
    if not quiet:
        print(msg, flush=True)


def _setup_compute(args):
    import npvae

    if args.backend:
        npvae.set_backend(args.backend)
    if args.threads:
        npvae.set_num_threads(args.threads)


def _load_data(name, data_dir, binarization, validation_size, seed, quiet):
    from . import data

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


def _first_line(exc):
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


def _default_validation(name):
    return None if name == "binarized_mnist" else (
        10000 if name in ("mnist", "fashion_mnist") else 0.1)


def _split_x(ds, split, dtype):
    """A stored split as model input: ``x / 255`` (binary sets give 0/1)."""
    return ds.as_float(split, dtype)


def _batch_transform(ds, dtype):
    from .data import convert_batch

    mode = "dynamic" if ds.binarization == "dynamic" else "none"
    return lambda xb, rng: convert_batch(xb, mode, dtype, rng)


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


# ----------------------------------------------------------------------- commands
def cmd_train(args):
    from . import checkpoint
    from .training import train

    _setup_compute(args)
    quiet = args.quiet
    val_size = args.validation_size
    if val_size is not None and val_size >= 1:
        val_size = int(val_size)
    ds = None
    if args.resume:
        out = _run_dir(args)
        path = os.path.join(out, "checkpoint.npz")
        if not os.path.exists(path):
            raise SystemExit(f"npvae: --resume: no checkpoint at {path}")
        model = checkpoint.load(path)
        meta = checkpoint.read_metadata(path)
        config = meta.get("config", {})
        ds = _dataset_for_run(args, meta)
        if args.epochs is None:
            args.epochs = 10 if len(ds.x_train) >= 10000 else 100
        _say(f"resuming {path} at epoch {model.n_iter_} for {args.epochs} more", quiet)
    else:
        name = args.dataset
        if val_size is None:
            val_size = _default_validation(name if name != "auto" else "mnist")
        ds = _load_data(name, args.data_dir, args.binarization, val_size, args.seed, quiet)
        val_size = None if ds.x_valid is None else len(ds.x_valid)
        if ds.name == "binarized_mnist":
            val_size = None
        out = args.out or os.path.join("runs", f"{args.model}-{ds.name}")
        if args.epochs is None:
            args.epochs = 10 if len(ds.x_train) >= 10000 else 100
        likelihood = args.likelihood or ds.likelihood_hint
        classes = None if ds.y_train is None else sorted(np.unique(ds.y_train).tolist())
        model = _build_model(args, likelihood, classes)
        config = {k: v for k, v in vars(args).items() if k not in ("func",)}
        config.update(dataset=ds.name, likelihood=likelihood, out=out)
    _say(f"data: {_describe(ds)}", quiet)
    x_train = ds.x_train[:config.get("max_examples") or None]   # the run's own setting on resume
    x_val = _split_x(ds, "valid", model.dtype) if ds.x_valid is not None else None
    if not hasattr(model, "params_"):
        model.initialize(ds.n_features)
        # a slice first: converting all 60,000 images to float64 would take 376 MB
        model._set_output_bias(ds.x_train[:10000].astype(np.float64) / 255)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2, default=str)
    meta = {"config": config,
            "data": {"dataset": ds.name, "binarization": ds.binarization,
                     "data_dir": args.data_dir, "validation_size": val_size,
                     "split_seed": config.get("seed", 0), "image_shape": list(ds.image_shape),
                     "source": ds.source}}
    _say(f"model: {_describe_model(model)}; writing {out}/", quiet)
    t0 = time.perf_counter()
    settings = dict(epochs=args.epochs, batch_size=config["batch_size"],
                    learning_rate=config["lr"], batch_transform=_batch_transform(ds, model.dtype),
                    lr_schedule=config["lr_schedule"], lr_decay=config["lr_decay"],
                    kl_warmup_epochs=config["kl_warmup"], clip_norm=config["clip_norm"],
                    patience=config["patience"], run_dir=out, metadata=meta,
                    progress=not quiet)
    try:
        if _conditional(model):
            train(model, x_train, ds.y_train[:len(x_train)], X_val=x_val,
                  y_val=ds.y_valid if x_val is not None else None, **settings)
        else:
            train(model, x_train, X_val=x_val, **settings)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {out}/checkpoint.npz holds the last completed epoch "
              f"({model.n_iter_}); continue with `npvae train --out {out} --resume`",
              file=sys.stderr)
        return 130
    seconds = time.perf_counter() - t0
    results = _evaluate_and_report(model, ds, "test", seed=0, n_importance=0, quiet=quiet)
    results.update(train_seconds=seconds, epochs=model.n_iter_, dataset=ds.name,
                   binarization=ds.binarization, source=ds.source)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    if not args.no_figures:
        paths = write_figures(model, ds, out, seed=args.seed)
        _say(f"figures: {', '.join(os.path.relpath(p, out) for p in paths)} in {out}/figures",
             quiet)
    return 0


def _describe(ds):
    from .data import describe

    return describe(ds)


def _describe_model(model):
    arch = getattr(model, "latent_sizes", None) or (model.n_latent,)
    return (f"{type(model).__name__} D={model.n_features_in_} hidden={tuple(model.hidden_sizes)} "
            f"latent={tuple(arch)} {model.activation} {model.likelihood} "
            f"{model.dtype} ({model.layout_.size:,} parameters)")


def _build_model(args, likelihood, classes=None):
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


def _conditional(model):
    return hasattr(model, "classes_") or type(model).__name__ == "ConditionalVAE"


def _labels(ds, split):
    return {"train": ds.y_train, "valid": ds.y_valid, "test": ds.y_test}[split]


def _evaluate_and_report(model, ds, split, seed, n_importance, quiet, max_examples=None):
    x = _split_x(ds, split, model.dtype)
    if max_examples:
        x = x[:max_examples]
    cond = (_labels(ds, split)[:len(x)],) if _conditional(model) else ()
    elbo = model.score_samples(x, *cond, random_state=seed)
    D = x.shape[1]
    res = {"split": split, "n_examples": int(x.shape[0]), "elbo": float(elbo.mean()),
           "elbo_se": float(elbo.std(ddof=1) / np.sqrt(len(elbo))) if len(elbo) > 1 else None}
    _say(f"{split} ELBO: {res['elbo']:.3f} nats (± {res['elbo_se'] or 0:.3f} s.e., "
         f"{len(elbo)} examples, binarization={ds.binarization}, dataset={ds.name})", quiet)
    if n_importance and hasattr(model, "log_likelihood"):
        ll = model.log_likelihood(x, *cond, n_importance=n_importance, random_state=seed)
        nll = -ll
        res.update(nll=float(nll.mean()), nll_se=float(nll.std(ddof=1) / np.sqrt(len(nll))),
                   bits_per_dim=float(nll.mean() / (D * np.log(2))), n_importance=n_importance)
        _say(f"{split} NLL (K={n_importance}): {res['nll']:.3f} ± {res['nll_se']:.3f} nats, "
             f"{res['bits_per_dim']:.4f} bits/dim", quiet)
    if hasattr(model, "active_units"):
        au = model.active_units(x, *cond)
        res["active_units"] = au
        _say(f"active units: {au}", quiet)
    return res


def cmd_evaluate(args):
    from . import checkpoint

    _setup_compute(args)
    path = _checkpoint_path(args)
    model = checkpoint.load(path)
    meta = checkpoint.read_metadata(path)
    ds = _dataset_for_run(args, meta)
    print(f"checkpoint: {path} (epoch {model.n_iter_}); data: {_describe(ds)}")
    res = _evaluate_and_report(model, ds, args.split, args.seed, args.n_importance, False,
                               args.max_examples)
    if args.out:
        with open(os.path.join(args.out, f"evaluation-{args.split}.json"), "w") as f:
            json.dump(res, f, indent=2)
    return 0


def _image_shape(meta, model):
    shape = meta.get("data", {}).get("image_shape")
    if shape:
        return tuple(shape)
    side = int(round(np.sqrt(model.n_features_in_)))
    return (side, side) if side * side == model.n_features_in_ else (1, model.n_features_in_)


def _display(model, means):
    """Likelihood means scaled to [0, 1] for images."""
    if model.likelihood == "categorical":
        return means / (model._lik.n_levels - 1)
    return np.clip(means, 0, 1)


def cmd_sample(args):
    from . import checkpoint, plots as figures

    _setup_compute(args)
    path = _checkpoint_path(args)
    model = checkpoint.load(path)
    meta = checkpoint.read_metadata(path)
    if args.label is not None:
        if not _conditional(model):
            raise SystemExit("npvae: --label needs a conditional model (--model cvae)")
        means = model.sample(args.n, np.full(args.n, args.label), random_state=args.seed)
    elif _conditional(model):        # every class in turn
        means = model.sample(args.n, model.classes_[np.arange(args.n) % len(model.classes_)],
                             random_state=args.seed)
    else:
        means = model.sample(args.n, random_state=args.seed)
    output = args.output or os.path.join(os.path.dirname(path), "figures",
                                         f"samples-seed{args.seed}.png")
    figures.plot_samples(_display(model, means), _image_shape(meta, model), output,
                         title=f"{args.n} samples from the prior (seed {args.seed})")
    np.save(os.path.splitext(output)[0] + ".npy", means)
    print(f"wrote {output} and {os.path.splitext(output)[0]}.npy")
    return 0


def cmd_plot(args):
    from . import checkpoint

    _setup_compute(args)
    path = _checkpoint_path(args)
    model = checkpoint.load(path)
    ds = _dataset_for_run(args, checkpoint.read_metadata(path))
    paths = write_figures(model, ds, os.path.dirname(path) or ".", seed=args.seed)
    print("wrote " + ", ".join(paths))
    return 0


def write_figures(model, ds, out, seed=0):
    """Every figure of a run into ``<out>/figures``; returns the paths."""
    from . import plots as figures

    fig_dir = os.path.join(out, "figures")
    os.makedirs(fig_dir, exist_ok=True)
    shape = tuple(ds.image_shape)
    x = _split_x(ds, "test", model.dtype)[:2000]
    labels = ds.y_test[:2000] if ds.y_test is not None else None
    paths = []
    if _conditional(model):
        return _write_conditional_figures(model, x, labels, shape, fig_dir, seed)
    rec = _display(model, model.reconstruct(x[:20]))
    paths.append(figures.plot_reconstructions(x[:20], rec, shape,
                                              os.path.join(fig_dir, "reconstructions.png"),
                                              n=20, title="test inputs (top) and "
                                                          "reconstructions (bottom)"))
    paths.append(figures.plot_samples(_display(model, model.sample(100, random_state=seed)),
                                      shape, os.path.join(fig_dir, "samples.png"),
                                      title="samples from the prior"))
    if model.history_:
        paths.append(figures.plot_training_curves(model.history_,
                                                  os.path.join(fig_dir, "training_curves.png")))
    z = model.transform(x)
    paths.append(figures.plot_latent_scatter(z, labels, os.path.join(fig_dir, "latent.png"),
                                             title="posterior means of test examples"))
    n_latent = z.shape[1]
    decode = lambda zz: _display(model, model._decode_means(zz))
    if n_latent >= 2:
        # the two latent dimensions the encoder uses most (largest variance of the means)
        dims = tuple(int(d) for d in np.sort(np.argsort(np.var(z, axis=0))[::-1][:2]))
        paths.append(figures.plot_manifold(decode, shape, os.path.join(fig_dir, "manifold.png"),
                                           n=20, n_latent=n_latent, latent_dims=dims))
    rng = np.random.default_rng(seed)
    pairs = rng.choice(len(x), size=(4, 2), replace=False)
    paths.append(figures.plot_interpolation(decode, z[pairs[:, 0]], z[pairs[:, 1]], shape,
                                            os.path.join(fig_dir, "interpolation.png"),
                                            n_steps=10, x_start=x[pairs[:, 0]],
                                            x_end=x[pairs[:, 1]]))
    return [str(p) for p in paths]


def _write_conditional_figures(model, x, labels, shape, fig_dir, seed):
    """Figures of a conditional VAE: reconstructions, one row of samples per class,
    curves, latent scatter, interpolation at a fixed label."""
    from . import plots as figures

    paths = [figures.plot_reconstructions(
        x[:20], _display(model, model.reconstruct(x[:20], labels[:20])), shape,
        os.path.join(fig_dir, "reconstructions.png"), n=20,
        title="test inputs (top) and reconstructions given their labels (bottom)")]
    classes = model.classes_
    per_class = np.repeat(classes, 10)
    paths.append(figures.plot_samples(
        _display(model, model.sample(len(per_class), per_class, random_state=seed)), shape,
        os.path.join(fig_dir, "samples.png"),
        title="samples by class: row k generates label k (MATH §8)"))
    if model.history_:
        paths.append(figures.plot_training_curves(model.history_,
                                                  os.path.join(fig_dir, "training_curves.png")))
    z = model.transform(x, labels)
    paths.append(figures.plot_latent_scatter(z, labels, os.path.join(fig_dir, "latent.png"),
                                             title="posterior means given the labels"))
    rng = np.random.default_rng(seed)
    pairs = rng.choice(len(x), size=(4, 2), replace=False)
    label = classes[0]
    paths.append(figures.plot_interpolation(
        lambda zz: _display(model, model._decode_means(zz, model._onehot(label, len(zz)))),
        z[pairs[:, 0]],
        z[pairs[:, 1]], shape, os.path.join(fig_dir, "interpolation.png"), n_steps=10,
        title=f"interpolation between codes, decoded as label {label}"))
    return [str(p) for p in paths]


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"train": cmd_train, "evaluate": cmd_evaluate, "sample": cmd_sample,
                "plot": cmd_plot}
    try:
        return handlers[args.command](args)
    except (ValueError, FileNotFoundError, OSError) as exc:
        if os.environ.get("NPVAE_DEBUG"):
            raise
        print(f"npvae {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
