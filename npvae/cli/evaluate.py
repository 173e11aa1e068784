"""``npvae evaluate``, ``npvae sample`` and ``npvae plot``: the commands that
read a trained run, and the evaluation report that ``npvae train`` also prints.
"""
from __future__ import annotations

import os

import numpy as np

from .common import (CLIError, _checkpoint_path, _conditional, _dataset_for_run, _describe,
                     _display, _load_checkpoint, _say, _setup_compute, _split_x,
                     _write_json)
from .figures import write_figures


def _labels(ds, split):
    return {"train": ds.y_train, "valid": ds.y_valid, "test": ds.y_test}[split]


def _evaluate_and_report(model, ds, split, seed, n_importance, quiet, max_examples=None,
                         source=None):
    """Scores of ``model`` on a split, printed with ``source``: which parameters they are
    (``train`` reports the last epoch's, ``evaluate`` by default ``best.npz``'s)."""
    x = _split_x(ds, split, model)
    if max_examples:
        x = x[:max_examples]
    cond = (_labels(ds, split)[:len(x)],) if _conditional(model) else ()
    elbo = model.score_samples(x, *cond, random_state=seed)
    D = x.shape[1]
    res = {"split": split, "n_examples": int(x.shape[0]), "elbo": float(elbo.mean()),
           "elbo_se": float(elbo.std(ddof=1) / np.sqrt(len(elbo))) if len(elbo) > 1 else None}
    if source:
        res["parameters"] = source
        _say(f"parameters: {source}", quiet)
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
    _setup_compute(args.backend, args.threads)
    path = _checkpoint_path(args)
    model, meta = _load_checkpoint(path)
    ds = _dataset_for_run(args, meta, path)
    print(f"data: {_describe(ds, model)}")
    kind = ("the best validation ELBO's" if os.path.basename(path) == "best.npz"
            else "the last epoch's")
    res = _evaluate_and_report(model, ds, args.split, args.seed, args.n_importance, False,
                               args.max_examples,
                               source=f"{path}, {kind} (epoch {model.n_iter_})")
    if args.out:
        _write_json(os.path.join(args.out, f"evaluation-{args.split}.json"), res)
    return 0


def _image_shape(meta, model):
    shape = meta.get("data", {}).get("image_shape")
    if shape:
        return tuple(shape)
    side = int(round(np.sqrt(model.n_features_in_)))
    return (side, side) if side * side == model.n_features_in_ else (1, model.n_features_in_)


def cmd_sample(args):
    from .. import plots

    _setup_compute(args.backend, args.threads)
    path = _checkpoint_path(args)
    model, meta = _load_checkpoint(path)
    if args.label is not None:
        if not _conditional(model):
            raise CLIError("--label needs a conditional model (--model cvae)")
        means = model.sample(args.n, np.full(args.n, args.label), random_state=args.seed)
    elif _conditional(model):        # every class in turn
        means = model.sample(args.n, model.classes_[np.arange(args.n) % len(model.classes_)],
                             random_state=args.seed)
    else:
        means = model.sample(args.n, random_state=args.seed)
    which = (f"label{args.label}" if args.label is not None
             else "classes" if _conditional(model) else "prior")
    output = args.output or os.path.join(os.path.dirname(path), "figures",
                                         f"samples-{which}-seed{args.seed}.png")
    plots.plot_samples(_display(model, means), _image_shape(meta, model), output,
                       title=f"{args.n} samples from the prior (seed {args.seed})")
    np.save(os.path.splitext(output)[0] + ".npy", means)
    print(f"wrote {output} and {os.path.splitext(output)[0]}.npy")
    return 0


def cmd_plot(args):
    _setup_compute(args.backend, args.threads)
    path = _checkpoint_path(args)
    model, meta = _load_checkpoint(path)
    ds = _dataset_for_run(args, meta, path)
    paths = write_figures(model, ds, os.path.dirname(path) or ".", seed=args.seed)
    print("wrote " + ", ".join(paths))
    return 0
