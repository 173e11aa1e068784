"""The checks of ``npvae train``'s settings that need no data: the likelihood's
options, the objective, the Fisher autoencoder's fixed decoder, the data set's name.
``npvae sweep`` runs them on every run of a sweep file before anything trains."""
from __future__ import annotations

import numpy as np

from .common import CLIError
from .resume import explicit, flag


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
               "gradient_estimator": "standard", "kl_warmup": 0.0, "prior": "standard"}
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


def _check_ladder(args):
    """``--model ladder`` (docs/16-ladder-vae.md): the ELBO with the exact gradient, a
    diagonal posterior, its own top-down inference; the flags it cannot honour refused."""
    wrong = [f for f, bad in (("--objective", args.objective != "elbo"), ("--k", args.k != 1),
                              ("--gradient-estimator", args.gradient_estimator != "standard"),
                              ("--inference", args.inference != "independent"),
                              ("--posterior", getattr(args, "posterior", "diagonal")
                               != "diagonal"),
                              ("--prior", getattr(args, "prior", "standard") != "standard"))
             if bad]
    if wrong:
        raise CLIError(f"--model ladder trains on the ELBO with a diagonal Gaussian posterior "
                       f"and its own top-down inference: leave out {', '.join(wrong)}")


def check_settings(args):
    """The checks of a new run that need no data (``npvae sweep`` makes them before
    anything runs): a one-line :class:`CLIError` or ValueError, else ``(given, key,
    binarization)``: the flags given, the data set's name and the binarisation."""
    given = explicit(args)
    key = _dataset_key(args.dataset)
    if args.model == "ladder":
        _check_ladder(args)
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
    return given, key, binarization
