"""The argument parser of the ``npvae`` command and its argument types.

Every flag of every command is declared here; the commands themselves
(:mod:`.train`, :mod:`.evaluate`) only read the parsed namespace.
"""
from __future__ import annotations

import argparse

DESCRIPTION = """Variational autoencoders in NumPy with hand-written gradients.

  npvae train                       train the 784-400-20 VAE on MNIST (or the
                                    offline 8x8 digits when MNIST is not found)
  npvae evaluate --out RUN          test ELBO of a trained run
  npvae sample --out RUN            draw images from the prior
  npvae plot --out RUN              (re)write the figures of a run
"""

#: ``npvae train --likelihood`` choices; the default comes from the data set
#: (``likelihood_hint``), and :func:`npvae.cli.common._build_model` passes the
#: choice to the model.
LIKELIHOODS = ("bernoulli", "gaussian", "categorical")


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


def _add_train(sub, fmt):
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
    t.add_argument("--likelihood", default=None, choices=LIKELIHOODS,
                   help="default: bernoulli for binarised data, gaussian otherwise")
    t.add_argument("--posterior", choices=("diagonal", "full"), default="diagonal",
                   help="vae only: diagonal Gaussian q(z|x), or full covariance L Lᵀ "
                        "(docs/03-kl-divergences.md)")
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


def _add_evaluate(sub, fmt):
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


def _add_sample(sub, fmt):
    s = sub.add_parser("sample", help="draw images from the prior", formatter_class=fmt)
    _add_common(s)
    s.add_argument("--checkpoint", default=None)
    s.add_argument("-n", "--n", type=int, default=64, help="number of samples")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--label", type=int, default=None, help="class to generate (conditional models)")
    s.add_argument("--output", default=None,
                   help="PNG path (default: <out>/figures/samples-seed<seed>.png); the raw "
                        "means go beside it as .npy")


def _add_plot(sub, fmt):
    p = sub.add_parser("plot", help="write the figures of a run", formatter_class=fmt)
    _add_common(p)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--seed", type=int, default=0)


def build_parser():
    parser = argparse.ArgumentParser(prog="npvae", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    fmt = argparse.ArgumentDefaultsHelpFormatter
    _add_train(sub, fmt)
    _add_evaluate(sub, fmt)
    _add_sample(sub, fmt)
    _add_plot(sub, fmt)
    return parser
