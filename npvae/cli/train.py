"""``npvae train``: build (or resume) a model, fit it, write the run folder."""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from .common import (_batch_transform, _build_model, _conditional, _dataset_for_run,
                     _default_validation, _describe, _describe_model, _load_data, _run_dir,
                     _say, _setup_compute, _split_x)
from .evaluate import _evaluate_and_report
from .figures import write_figures


def cmd_train(args):
    from .. import checkpoint
    from ..training import train

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
