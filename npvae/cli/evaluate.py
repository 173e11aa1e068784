"""``npvae evaluate``, ``npvae sample`` and ``npvae plot``: the commands that
read a trained run, and the evaluation report that ``npvae train`` also prints.
"""
from __future__ import annotations

import os

import numpy as np

from ..objectives import active_units
from .common import (CLIError, checkpoint_path, dataset_for_run, describe_data, display,
                     is_conditional, load_checkpoint, say, setup_compute, stored_split,
                     to_input, write_json)
from .figures import write_figures


#: the seed of the one binarisation of a dynamically binarised train split that
#: ``npvae evaluate --split train`` scores (the test and validation splits use 0 and 1:
#: npvae.data.registry)
TRAIN_BINARIZATION_SEED = 2


def _labels(ds, split):
    return {"train": ds.y_train, "valid": ds.y_valid, "test": ds.y_test}[split]


def _codes_not_gaussian(model):
    """The posterior's name when its codes are one-hot or on the simplex: Burda et al.'s
    active units (the variance of a Gaussian mean) then count nothing meaningful."""
    posterior = getattr(model, "posterior", "diagonal")
    return posterior if posterior in ("concrete", "kumaraswamy", "dirichlet") else None


def _elbo_and_means(model, stored, labels, seed):
    """ELBO per example ``(N,)`` and the posterior means per level (for the active
    units; None for a model without them) of the stored examples, converted and scored
    :data:`~npvae.models.base.CHUNK` rows at a time, so that a split is never held as
    floats in full.  The same numbers as one ``score_samples(x, random_state=seed)``:
    its noise is drawn chunk by chunk, in chunks of this size, from one generator."""
    from ..models.base import CHUNK

    rng = np.random.default_rng(seed)
    elbo, means = [], []
    has_au = hasattr(model, "active_units") and not _codes_not_gaussian(model)
    sizes = list(model.latent_sizes) if hasattr(model, "latent_sizes") else [model.n_latent]
    for start in range(0, len(stored), CHUNK):
        xb = to_input(stored[start:start + CHUNK], model.likelihood, model.dtype)
        cond = () if labels is None else (labels[start:start + CHUNK],)
        elbo.append(model.score_samples(xb, *cond, random_state=rng))
        if has_au:
            means.append(model.transform(xb, *cond))       # (n, Z_1 + … + Z_L)
    if not has_au:
        return np.concatenate(elbo), None
    mu = np.concatenate(means)
    return np.concatenate(elbo), np.split(mu, np.cumsum(sizes)[:-1], axis=1)


def _evaluate_and_report(model, ds, split, seed, n_importance, quiet, max_examples=None,
                         source=None, extra=None, save_to=None):
    """Scores of ``model`` on a split, printed with ``source``: which parameters they are
    (``train`` reports the last epoch's, ``evaluate`` by default ``best.npz``'s).
    ``extra`` is added to the scores, which are written to ``save_to`` (JSON) before
    anything is printed: a report the terminal cannot show loses no results."""
    stored = stored_split(ds, split)
    n = min(len(stored), max_examples) if max_examples else len(stored)
    lines = []
    stored = stored[:n]
    if split == "train" and ds.binarization == "dynamic":
        # training drew a fresh binarisation every epoch; score one fixed draw of it (the
        # way the loader binarises the test and validation splits once), not grey levels
        from ..data import binarize_dynamic

        stored = binarize_dynamic(stored, TRAIN_BINARIZATION_SEED) * np.uint8(255)
        lines.append(f"train split: binarised once with seed {TRAIN_BINARIZATION_SEED} "
                     "(training drew a new binarisation every epoch)")
    labels = _labels(ds, split)[:n] if is_conditional(model) else None
    elbo, means = _elbo_and_means(model, stored, labels, seed)
    D = stored.shape[1]
    res = {"split": split, "n_examples": int(n), "elbo": float(elbo.mean()),
           "elbo_se": float(elbo.std(ddof=1) / np.sqrt(len(elbo))) if len(elbo) > 1 else None}
    if lines:
        res["binarization"] = lines[0]
    if source:
        res["parameters"] = source
        lines.append(f"parameters: {source}")
    lines.append(f"{split} ELBO: {res['elbo']:.3f} nats (± {res['elbo_se'] or 0:.3f} s.e., "
                 f"{len(elbo)} examples, binarization={ds.binarization}, dataset={ds.name})")
    if n_importance and hasattr(model, "log_likelihood"):
        x = to_input(stored, model.likelihood, model.dtype)
        cond = () if labels is None else (labels,)
        ll = model.log_likelihood(x, *cond, n_importance=n_importance, random_state=seed)
        nll = -ll
        res.update(nll=float(nll.mean()), nll_se=float(nll.std(ddof=1) / np.sqrt(len(nll))),
                   bits_per_dim=float(nll.mean() / (D * np.log(2))), n_importance=n_importance)
        lines.append(f"{split} NLL (K={n_importance}): {res['nll']:.3f} ± {res['nll_se']:.3f} "
                     f"nats, {res['bits_per_dim']:.4f} bits/dim")
    if means is not None:
        au = active_units(means)
        res["active_units"] = au
        lines.append(f"active units: {au}")
    elif _codes_not_gaussian(model):
        lines.append(f"active units: not counted for posterior={_codes_not_gaussian(model)} "
                     "(a measure for Gaussian latents; docs/19-simplex-latents.md counts the "
                     "sticks in use)")
    res.update(extra or {})
    if save_to:
        write_json(save_to, res)
    for line in lines:
        say(line, quiet)
    return res


def cmd_evaluate(args):
    setup_compute(args.backend, args.threads)
    path = checkpoint_path(args)
    model, meta = load_checkpoint(path)
    if args.out:                      # before the evaluation, which can take an hour at K = 5000
        os.makedirs(args.out, exist_ok=True)
    ds = dataset_for_run(args, meta, path)
    print(f"data: {describe_data(ds, model)}")
    from ..training import SELECTION_NAMES, selection

    best = SELECTION_NAMES.get(meta.get("best_val_bound") if isinstance(meta, dict) else None,
                               SELECTION_NAMES[selection(model)[0]])
    kind = (f"the best validation {best}'s" if os.path.basename(path) == "best.npz"
            else "the last epoch's")
    _evaluate_and_report(model, ds, args.split, args.seed, args.n_importance, False,
                         args.max_examples, source=f"{path}, {kind} (epoch {model.n_iter_})",
                         save_to=args.out and os.path.join(args.out,
                                                           f"evaluation-{args.split}.json"))
    return 0


def _image_shape(meta, model):
    shape = meta.get("data", {}).get("image_shape")
    if shape:
        return tuple(shape)
    side = int(round(np.sqrt(model.n_features_in_)))
    return (side, side) if side * side == model.n_features_in_ else (1, model.n_features_in_)


def _figures_home(args, path):
    """Where ``figures/`` goes: ``--out`` when given (so that ``--checkpoint
    pretrained/...`` never writes into the folder of a shipped model), else the
    checkpoint's own folder."""
    return args.out or os.path.dirname(path) or "."


def cmd_sample(args):
    from .. import plots

    setup_compute(args.backend, args.threads)
    path = checkpoint_path(args)
    model, meta = load_checkpoint(path)
    if args.label is not None:
        if not is_conditional(model):
            raise CLIError("--label needs a conditional model (--model cvae)")
        if args.label not in model.classes_:
            raise CLIError(f"--label {args.label}: this model knows the labels "
                           f"{', '.join(map(str, model.classes_.tolist()))}")
        means = model.sample(args.n, np.full(args.n, args.label), random_state=args.seed)
    elif is_conditional(model):        # every class in turn
        means = model.sample(args.n, model.classes_[np.arange(args.n) % len(model.classes_)],
                             random_state=args.seed)
    else:
        means = model.sample(args.n, random_state=args.seed)
    which = (f"label{args.label}" if args.label is not None
             else "classes" if is_conditional(model) else "prior")
    output = args.output or os.path.join(_figures_home(args, path), "figures",
                                         f"samples-{which}-seed{args.seed}.png")
    if os.path.isdir(output):
        raise CLIError(f"--output {output} is a folder; give the PNG's path, e.g. "
                       f"{os.path.join(output, 'samples.png')}")
    if not os.path.splitext(output)[1]:
        output += ".png"                     # what is written is what is said
    png = plots.plot_samples(display(model, means), _image_shape(meta, model), output,
                             title=_sample_title(args, model))
    npy = os.path.splitext(os.fspath(png))[0] + ".npy"
    np.save(npy, means)
    print(f"wrote {png} and {npy}")
    return 0


def _sample_title(args, model):
    """What ``npvae sample`` drew, for the figure's title."""
    if args.label is not None:
        what = f"label {args.label}"
    elif is_conditional(model):
        what = "each label in turn"
    else:
        return f"{args.n} samples from the prior (seed {args.seed})"
    return f"{args.n} samples from the prior, {what} (seed {args.seed})"


def cmd_plot(args):
    setup_compute(args.backend, args.threads)
    path = checkpoint_path(args)
    model, meta = load_checkpoint(path)
    ds = dataset_for_run(args, meta, path)
    paths = write_figures(model, ds, _figures_home(args, path), seed=args.seed)
    print("wrote " + ", ".join(paths))
    return 0
