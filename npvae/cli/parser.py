"""The argument parser of the ``npvae`` command and its argument types.

Every flag of every command is declared here; the commands themselves
(:mod:`.train`, :mod:`.evaluate`) only read the parsed namespace.  Every
numeric flag has a ``type=`` that checks its range, so a bad value is
argparse's one-line error (exit 2) naming the flag, before anything runs.
Only the standard library is imported here: ``npvae --help`` stays fast.
"""
from __future__ import annotations

import argparse
import difflib
import re

from .argtypes import (COUNT, POSITIVE_INT, finite_float, hidden_list, latent_list,
                       min_logvar, validation_size)

DESCRIPTION = """Variational autoencoders in NumPy with hand-written gradients.

  npvae train                       train the 784-400-20 VAE on MNIST (or the
                                    offline 8x8 digits when MNIST is not found)
  npvae evaluate --out RUN          test ELBO of a trained run
  npvae sample --out RUN            draw images from the prior
  npvae plot --out RUN              (re)write the figures of a run
  npvae sweep FILE.toml --out DIR   train every run of a grid on a Dask cluster

Errors are one line on stderr: exit 2 for a usage or data error, 1 for a
diverged training run or an internal error (NPVAE_DEBUG=1 shows the
traceback), 130 after Ctrl-C, 143 after SIGTERM.
"""

#: ``npvae train --likelihood`` choices; the default comes from the data set
#: (``likelihood_hint``), and :func:`npvae.cli.common.build_model` passes the
#: choice to the model.
LIKELIHOODS = ("bernoulli", "gaussian", "categorical", "beta")

#: ``npvae train --gaussian-variance`` choices (npvae.distributions.likelihoods.Gaussian).
GAUSSIAN_VARIANCES = ("decoder", "fixed", "scalar", "per_output")


# ----------------------------------------------------------------------- the parser
class _Parser(argparse.ArgumentParser):
    """argparse's parser with a "did you mean" for a mistyped flag, choice or command
    (Python 3.14's ``suggest_on_error``, for 3.10+ by :func:`difflib.get_close_matches`)."""

    _active = None            # the parser that parsed last: the command's, for its flags

    def parse_known_args(self, args=None, namespace=None):
        _Parser._active = self
        return super().parse_known_args(args, namespace)

    def error(self, message):
        super().error(message + _suggestion(message, _Parser._active or self))


def _suggestion(message, parser):
    """`` (did you mean X?)`` for the first close match of what ``message`` rejects."""
    if message.startswith("unrecognized arguments:"):
        known = [o for action in parser._actions for o in action.option_strings]
        for token in message.split(":", 1)[1].split():
            if token.startswith("-"):
                close = difflib.get_close_matches(token.split("=")[0], known, n=1, cutoff=0.75)
                if close:
                    return f" (did you mean {close[0]}?)"
        return ""
    found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if found:
        choices = re.findall(r"'([^']*)'", found.group(2)) or [
            c.strip() for c in found.group(2).split(",")]
        close = difflib.get_close_matches(found.group(1), choices, n=1, cutoff=0.6)
        if close:
            return f" (did you mean {close[0]}?)"
    return ""


# ----------------------------------------------------------------------- help
class _HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its real default: the help's own words when it
    names its default, else ``(default: VALUE)``; switches (store_true) are off."""

    def _get_help_string(self, action):
        help = action.help or ""
        default = action.default
        if (default is argparse.SUPPRESS or not action.option_strings or "default" in help
                or action.required or isinstance(action, argparse._StoreTrueAction)):
            return help
        if isinstance(default, tuple):
            default = (";".join(",".join(map(str, d)) for d in default)
                       if default and isinstance(default[0], tuple)
                       else ",".join(map(str, default)))
            default = repr(default) if default == "" else default
        text = str(default).replace("%", "%%")
        return f"{help} (default: {text})" if help else f"(default: {text})"


# ----------------------------------------------------------------------- commands
def _add_common(p):
    p.add_argument("--out", default=None, metavar="DIR",
                   help="run folder (checkpoint, history, config, figures); "
                        "default for train: runs/<model>-<dataset>; the other commands "
                        "need it (or --checkpoint; with both, what they write goes to --out)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="folder holding the data files, searched before $NPVAE_DATA, the "
                        "cache (~/.cache/npvae) and a download (default: none; train "
                        "--resume and the other commands use the run's own)")
    p.add_argument("--backend", choices=("numba", "numpy"), default=None,
                   help="compute backend for elementwise kernels (default: numba, or the "
                        "run's own on train --resume)")
    p.add_argument("--threads", type=POSITIVE_INT, default=None, metavar="N",
                   help="force N threads for the matrix products (BLAS; Numba's loops run on one "
                        "thread either way) (default: chosen while "
                        "training by timing the steps at 1, 2, 4, ... threads up to the cores "
                        "this process may use, and chosen again when steps get slower; the "
                        "epoch line says when it changes. Give N for results repeatable to "
                        "the bit: float32 products round differently on different thread "
                        "counts)")


def _add_train(sub, fmt):
    t = sub.add_parser("train", help="train a model and write its run folder", formatter_class=fmt)
    _add_common(t)
    t.add_argument("--dataset", default="auto",
                   help="mnist, fashion_mnist, binarized_mnist, frey, digits, synthetic; "
                        "'auto' (the default) uses mnist when it can be found or downloaded, "
                        "else the offline 8x8 digits of scikit-learn (and says so); a named "
                        "data set never falls back")
    t.add_argument("--binarization", choices=("static", "dynamic", "none"), default=None,
                   help="default: dynamic for mnist/fashion_mnist/digits, static for "
                        "binarized_mnist, none for frey (Gaussian likelihood) and synthetic "
                        "(binary already); always none for --likelihood beta")
    t.add_argument("--model", choices=("vae", "hvae", "cvae", "fisher", "ladder"),
                   default="vae",
                   help="vae: one stochastic level; hvae: the hierarchical VAE; ladder: the "
                        "Ladder VAE (batch norm, precision-weighted top-down inference; "
                        "docs/16-ladder-vae.md); cvae: the "
                        "conditional VAE on the data set's labels; fisher: the Fisher "
                        "autoencoder (grey levels, a Gaussian decoder of fixed log-variance "
                        "--gaussian-logvar, a smooth --activation, tanh by default)")
    t.add_argument("--latent", "--latent-sizes", type=latent_list, default=(20,),
                   metavar="Z[,Z...]", help="latent size Z (hvae, ladder: one size per level, "
                   "bottom first, e.g. 100,50)")
    t.add_argument("--hidden", "--hidden-sizes", type=hidden_list, default=(400,),
                   metavar="WIDTHS",
                   help="encoder hidden widths, comma-separated ('' for none); the decoder "
                        "mirrors them; hvae: one group per level separated by ';', e.g. "
                        "'200,200;100,100'")
    t.add_argument("--activation", default="relu",
                   choices=("relu", "leaky_relu", "tanh", "softplus", "sigmoid", "identity"),
                   help="hidden-layer activation")
    t.add_argument("--likelihood", default=None, choices=LIKELIHOODS,
                   help="p(x|z); default: bernoulli for binarised data, gaussian otherwise; "
                        "beta models grey levels (pixel + 0.5) / 256 in (0, 1)")
    t.add_argument("--gaussian-variance", choices=GAUSSIAN_VARIANCES, default="decoder",
                   help="--likelihood gaussian only: the decoder outputs a log-variance per "
                        "pixel beside the mean (Kingma & Welling 2014, appendix C.2; the "
                        "default), or the log-variance is fixed at --gaussian-logvar, or "
                        "learned as one scalar or one per output dimension (starting at "
                        "--gaussian-logvar) (default: decoder)")
    t.add_argument("--gaussian-mean", choices=("sigmoid", "linear"), default="sigmoid",
                   help="--likelihood gaussian only: the mean is a sigmoid of the decoder's "
                        "output, in (0, 1) like the pixels, or the output itself "
                        "(default: sigmoid)")
    t.add_argument("--gaussian-logvar", type=finite_float(), default=0.0, metavar="LOGVAR",
                   help="--likelihood gaussian only: the (starting) log-variance of p(x|z)")
    t.add_argument("--gaussian-min-logvar", type=min_logvar, default=None, metavar="FLOOR",
                   help="--likelihood gaussian only: a floor under a learned log-variance "
                        "(reached smoothly); 'auto' (the default) is log(step^2/12) for the "
                        "step between the data's levels (1/255 for 8-bit images, 1 for "
                        "binarised ones), without which the variance of quantised data runs "
                        "to 0 and training diverges; 'none' for no floor "
                        "(docs/04-likelihoods.md)")
    t.add_argument("--posterior", choices=("diagonal", "full", "concrete", "kumaraswamy",
                                           "dirichlet", "planar", "iaf"), default="diagonal",
                   help="vae only: diagonal Gaussian q(z|x), full covariance L Lᵀ "
                        "(docs/03-kl-divergences.md), concrete: --latent M categorical "
                        "variables of --categories K classes, relaxed by the Gumbel-softmax "
                        "(docs/15-discrete-latents.md), kumaraswamy: --latent T stick-breaking "
                        "weights, dirichlet: a code on the --latent K simplex "
                        "(docs/19-simplex-latents.md), or the diagonal Gaussian through "
                        "--n-flows planar or inverse autoregressive flows "
                        "(docs/18-normalising-flows.md)")
    t.add_argument("--prior-alpha", type=finite_float(0), default=None, metavar="ALPHA0",
                   help="--posterior kumaraswamy or dirichlet only: the prior's concentration, "
                        "Beta(1, ALPHA0) stick fractions (default 5) or Dirichlet(ALPHA0) "
                        "(default 1)")
    t.add_argument("--n-flows", type=POSITIVE_INT, default=None, metavar="F",
                   help="--posterior planar or iaf only: flows after the Gaussian (default 4 "
                        "planar, 2 iaf)")
    t.add_argument("--flow-hidden", type=POSITIVE_INT, default=None, metavar="H",
                   help="--posterior iaf only: width of each step's MADE layer (default 2Z)")
    t.add_argument("--flow-context", type=POSITIVE_INT, default=None, metavar="C",
                   help="--posterior iaf only: size of the encoder's context h (default Z)")
    t.add_argument("--categories", type=POSITIVE_INT, default=None, metavar="K",
                   help="--posterior concrete only: classes per categorical variable (default 10)")
    t.add_argument("--temperature", type=finite_float(0), default=None, metavar="T",
                   help="--posterior concrete only: the (starting) temperature (default 1.0)")
    t.add_argument("--anneal-rate", type=finite_float(0, inclusive=True), default=None,
                   metavar="R", help="--posterior concrete only: temperature max(T_min, "
                   "T exp(-R epoch)) (default 0: constant)")
    t.add_argument("--min-temperature", type=finite_float(0), default=None, metavar="T_MIN",
                   help="--posterior concrete only: the annealing's floor (default 0.5)")
    t.add_argument("--straight-through", action="store_true",
                   help="--posterior concrete only: hard one-hot codes forward, the relaxed "
                        "gradient backward (biased)")
    t.add_argument("--prior", choices=("standard", "vamp"), default="standard",
                   help="vae and hvae: the prior of the (top) latent, N(0, I) or the "
                        "VampPrior, a mixture of the posteriors at --n-pseudo-inputs learned "
                        "pseudo-inputs (Tomczak & Welling 2018; docs/17-vampprior.md)")
    t.add_argument("--n-pseudo-inputs", type=POSITIVE_INT, default=None, metavar="K",
                   help="--prior vamp only: pseudo-inputs, the mixture's components "
                        "(default 500, the paper's for MNIST)")
    t.add_argument("--samples", type=POSITIVE_INT, default=1, metavar="S",
                   help="samples of z per example")
    t.add_argument("--beta", type=finite_float(0, inclusive=True), default=1.0,
                   help="weight of the KL term")
    t.add_argument("--objective", choices=("elbo", "iwae"), default="elbo",
                   help="training objective (iwae: the importance-weighted bound with --k "
                        "samples, which it needs)")
    t.add_argument("--k", type=POSITIVE_INT, default=1,
                   help="importance samples for --objective iwae, at least 2 (k = 1 is the "
                        "ELBO); the ELBO takes none")
    t.add_argument("--gradient-estimator", choices=("standard", "stl", "dreg"),
                   default="standard",
                   help="the encoder's gradient; stl drops the score term "
                        "of log q (Roeder et al. 2017; biased for iwae with k > 1), dreg is "
                        "the doubly reparameterised estimator for --objective iwae (Tucker et "
                        "al. 2019)")
    t.add_argument("--inference", choices=("independent", "markov"), default="independent",
                   help="hvae only: factorisation of q")
    t.add_argument("--epochs", type=COUNT, default=None,
                   help="total passes over the training set, counting those of a resumed "
                        "run (default: 10, or 100 for the small offline sets digits and "
                        "synthetic; on --resume the run's own)")
    t.add_argument("--batch-size", type=POSITIVE_INT, default=100, metavar="N",
                   help="examples per gradient step")
    t.add_argument("--lr", type=finite_float(0), default=1e-3, help="learning rate")
    t.add_argument("--optimizer", choices=("adam", "sgd", "adagrad"), default="adam",
                   help="optimiser (default: adam)")
    t.add_argument("--lr-schedule", choices=("constant", "exponential", "cosine", "burda"),
                   default="constant", help="learning rate over the epochs (burda: Burda et "
                   "al.'s stages, 3^i epochs at lr*10^(-i/7))")
    t.add_argument("--adam-eps", type=finite_float(0), default=1e-8, metavar="EPS",
                   help="Adam's epsilon (Burda et al. used 1e-4)")
    t.add_argument("--lr-decay", type=finite_float(0), default=0.95,
                   help="per-epoch factor for --lr-schedule exponential")
    t.add_argument("--kl-warmup", "--warmup-epochs", type=finite_float(0, inclusive=True),
                   default=0.0,
                   metavar="EPOCHS", help="beta rises linearly from 0 over this many epochs")
    t.add_argument("--clip-norm", type=finite_float(0), default=None, metavar="NORM",
                   help="clip the gradient's norm at this value (default: no clipping)")
    t.add_argument("--patience", type=POSITIVE_INT, default=None, metavar="EPOCHS",
                   help="early stopping after this many epochs without a better validation "
                        "objective: ELBO, IWAE bound or Fisher loss (default: no early "
                        "stopping)")
    t.add_argument("--validation-size", type=validation_size, default=None, metavar="SIZE",
                   help="examples (>= 1) or a fraction in (0, 1) held out of training for "
                        "validation, 0 for none; default: 10000 for MNIST-sized sets, 10%% "
                        "for small ones, the official split of binarized_mnist")
    t.add_argument("--max-examples", type=POSITIVE_INT, default=None, metavar="N",
                   help="use only the first N training examples (default: all)")
    t.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="floating-point type of parameters and computation")
    t.add_argument("--seed", type=COUNT, default=0,
                   help="seeds parameters, noise, shuffling and the validation split")
    mode = t.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true",
                      help="continue the run in --out from its checkpoint up to --epochs in "
                           "all; its settings are kept, except the training flags given "
                           "(--lr, --epochs, --batch-size, --lr-schedule, --lr-decay, "
                           "--kl-warmup, --clip-norm, --patience, --adam-eps, --quiet, "
                           "--threads, --backend, --no-figures)")
    mode.add_argument("--overwrite", action="store_true",
                      help="replace the run already in --out (its checkpoints, history, "
                           "results and figures are removed first)")
    t.add_argument("--config", metavar="RUN/config.json", default=None,
                   help="run a recorded run again: its settings (model, data, training) "
                        "are the defaults, flags given here override them; the output goes "
                        "to --out (default: the recorded folder's name + '-again')")
    t.add_argument("--no-figures", action="store_true", help="skip the figures")
    t.add_argument("--quiet", action="store_true", help="no progress output")


def _add_evaluate(sub, fmt):
    e = sub.add_parser("evaluate", help="test ELBO (and log-likelihood) of a trained run",
                       formatter_class=fmt)
    _add_common(e)
    e.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="checkpoint file (default: best.npz, else checkpoint.npz in --out)")
    e.add_argument("--split", choices=("test", "valid", "train"), default="test",
                   help="the data split to evaluate")
    e.add_argument("--n-importance", type=COUNT, default=0, metavar="K",
                   help="importance samples K for the log-likelihood estimate (0: skip; "
                        "5000 for published numbers)")
    e.add_argument("--max-examples", type=POSITIVE_INT, default=None, metavar="N",
                   help="evaluate only the first N examples of the split (default: all)")
    e.add_argument("--seed", type=COUNT, default=0, help="seeds the evaluation noise")


def _add_sample(sub, fmt):
    s = sub.add_parser("sample", help="draw images from the prior", formatter_class=fmt)
    _add_common(s)
    s.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="checkpoint file (default: best.npz, else checkpoint.npz in --out)")
    s.add_argument("-n", "--n", type=POSITIVE_INT, default=64, help="number of samples")
    s.add_argument("--seed", type=COUNT, default=0, help="seeds the samples")
    s.add_argument("--label", type=int, default=None,
                   help="class to generate (conditional models; default: every class in turn)")
    s.add_argument("--output", default=None, metavar="PNG",
                   help="PNG path (default: <out>/figures/samples-<prior|label<N>|classes>-seed<seed>.png, <out> "
                        "the checkpoint's folder when only --checkpoint is given); the raw "
                        "means go beside it as .npy")


def _add_plot(sub, fmt):
    p = sub.add_parser("plot", help="write the figures of a run", formatter_class=fmt)
    _add_common(p)
    p.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="checkpoint file (default: best.npz, else checkpoint.npz in --out)")
    p.add_argument("--seed", type=COUNT, default=0, help="seeds the samples and the pairs "
                                                           "interpolated")


def _add_sweep(sub, fmt):
    s = sub.add_parser("sweep", help="train every run of a sweep file on a Dask cluster",
                       formatter_class=fmt)
    s.add_argument("file", metavar="FILE.toml",
                   help="[base]: npvae train settings; [grid]: lists, one run per combination")
    s.add_argument("--out", required=True, metavar="DIR",
                   help="one run folder per run, results.csv, summary.md and summary.png "
                        "(required)")
    s.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="a running Dask scheduler, tcp://HOST:8786 (default: a local cluster "
                        "of processes, workers x threads per run <= cores)")
    s.add_argument("--workers", type=POSITIVE_INT, default=None, metavar="N",
                   help="worker processes of the local cluster (default: cores / threads "
                        "per run)")


def build_parser():
    parser = _Parser(prog="npvae", description=DESCRIPTION,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    fmt = _HelpFormatter
    _add_train(sub, fmt)
    _add_evaluate(sub, fmt)
    _add_sample(sub, fmt)
    _add_plot(sub, fmt)
    _add_sweep(sub, fmt)
    for p in (parser, *sub.choices.values()):
        # "--gaussian-logvar -1e308": argparse takes only -1 or -1.5 for a negative
        # number, and "-1e308" for an unknown flag (no flag of npvae starts with a digit)
        p._negative_number_matcher = _NEGATIVE_NUMBER
    return parser


_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|infinity|nan)$",
                              re.IGNORECASE)


def explicit_flags(argv):
    """The destinations of the flags given on the command line ``argv`` (a second parse
    with every default suppressed: what is left was typed).  ``argv`` must parse."""
    parser = build_parser()
    for action in parser._subparsers._group_actions:
        for subparser in action.choices.values():
            for sub_action in subparser._actions:
                sub_action.default = argparse.SUPPRESS
    namespace = parser.parse_args(argv)
    return set(vars(namespace)) - {"command"}
