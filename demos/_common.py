"""Helpers shared by the demos: command line, data choice, training, figures, output.

Every demo is a script ``demos/NN_name.py`` with ``main(argv=None)`` that

* parses ``[--fast] [--out DIR] [--threads N] [--seed S] [--dataset D]``
  (:func:`parse_args`);
* picks its data with :func:`load_data`: MNIST when the files can be found
  (``$NPVAE_DATA`` or the cache ``~/.cache/npvae``; never downloaded) and
  otherwise the offline 8x8 scikit-learn digits, saying which; ``--fast``
  always uses the digits;
* writes its figures as PNG into ``--out`` with :func:`save_figure` (default:
  ``runs/demos/<demo name>/`` in the repository, from whatever folder the demo
  is started; git ignores ``runs/``); the committed figures in
  ``demos/figures/<demo name>/`` are made with ``--out demos/figures/<demo name>``;
* prints the numbers behind them with :func:`report` and returns them as a
  dict ``{name: float}`` (the tests check that they are finite).

Threads: the demos default to ``--threads 1``.  Their networks are small, and
one thread leaves the other cores to whatever else runs; more threads than
free cores slow training down.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The demos run as scripts (``python demos/01_....py``) and are imported by the
# tests; both ways the package must be importable.
import npvae
from npvae.data import ChecksumError, DataFormatError, DataNotFoundError, convert_batch, \
    load_dataset

#: Resolution of the PNG files: commit-size figures.
DPI = 100

#: The repository: the folder above ``demos/``.
REPO_ROOT = Path(__file__).resolve().parent.parent


def default_out(name):
    """Where a demo writes by default: ``runs/demos/<name>`` in the repository
    (``runs/`` is git-ignored), whatever the current folder."""
    return REPO_ROOT / "runs" / "demos" / name


# ---------------------------------------------------------------- arguments
def parse_args(name, description, argv=None, uses_data=True):
    """The common command line of a demo; ``name`` is the demo's file stem,
    ``uses_data`` False for the demos that train on no data set (2 and 3)."""
    parser = argparse.ArgumentParser(prog=f"{name}.py", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true",
                        help=("a few seconds: the offline 8x8 digits, fewer steps"
                              if uses_data else "a few seconds: fewer steps and draws")
                        + " (the tests run this)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help=f"folder for the PNG figures (default: runs/demos/{name}/ in the "
                             f"repository, whatever the current folder; git ignores runs/). "
                             f"The committed figures are made with "
                             f"--out demos/figures/{name}")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS and Numba threads (default 1: the demo networks are small, "
                             "and more threads than free cores slow training down many times)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    parser.add_argument("--dataset", choices=("auto", "mnist", "digits"), default="auto",
                        help="auto: MNIST if found (NPVAE_DATA or the cache), else the offline "
                             "digits; --fast always uses the digits"
                        if uses_data else "accepted for a common command line; this demo "
                                          "uses no data set")
    args = parser.parse_args(argv)
    args.name = name
    args.out = Path(args.out) if args.out is not None else default_out(name)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


@contextlib.contextmanager
def demo_session(args):
    """Set the thread count for the demo, restore it afterwards, print the run time."""
    from threadpoolctl import threadpool_info, threadpool_limits

    previous = npvae.backend.get_num_threads()
    blas_before = [(p["user_api"], p["num_threads"]) for p in threadpool_info()]
    try:
        import numba
        numba_before = numba.get_num_threads()
    except ImportError:                                     # pragma: no cover
        numba, numba_before = None, None
    npvae.set_num_threads(args.threads)
    t0 = time.perf_counter()
    print(f"[{args.name}] mode: {'fast' if args.fast else 'full'}, threads: {args.threads}, "
          f"seed: {args.seed}, figures -> {args.out}")
    try:
        yield
    finally:
        seconds = time.perf_counter() - t0
        print(f"[{args.name}] run time: {seconds:.1f} s")
        if previous is not None:
            npvae.set_num_threads(previous)
        else:                                               # back to the library defaults
            for api, n in blas_before:
                threadpool_limits(limits=n, user_api=api)
            if numba is not None:
                numba.set_num_threads(numba_before)
            npvae.backend._state.pop("threads", None)


# --------------------------------------------------------------------- data
@dataclass
class DemoData:
    """Data for a demo: ``uint8`` pixels 0..255 (train grey levels, test binarised once)."""

    name: str                 # "mnist" or "digits"
    x_train: np.ndarray       # (N, D) uint8, grey levels: batches are binarised dynamically
    y_train: np.ndarray       # (N,)
    x_test: np.ndarray        # (M, D) uint8 0/255, binarised once with a fixed seed
                              # (docs/12-data.md#fixed-seeds-for-evaluation)
    y_test: np.ndarray        # (M,)
    image_shape: tuple
    note: str

    @property
    def label(self):
        """``MNIST`` or ``8x8 digits``, for titles."""
        return "MNIST" if self.name == "mnist" else "8x8 digits"

    @property
    def n_features(self):
        return self.x_train.shape[1]

    def test_float(self, n=None, dtype=np.float32):
        """The first ``n`` binarised test images as ``(n, D)`` floats in {0, 1}."""
        x = self.x_test if n is None else self.x_test[:n]
        return convert_batch(x, "none", dtype)

    def train_binary(self, n, seed=0, dtype=np.float32):
        """``n`` training images binarised once (dynamic, fixed seed)."""
        return convert_batch(self.x_train[:n], "dynamic", dtype, np.random.default_rng(seed))


def load_data(args, n_train=None, n_test=None):
    """MNIST if its files are found (``$NPVAE_DATA``, the cache; no download), else
    the offline digits; ``--fast`` always uses the digits.  Prints which.

    ``n_train``/``n_test`` keep only the first examples (the digits are small:
    1500 train, 297 test).  Both use dynamic binarisation
    (docs/12-data.md#dynamic-binarisation): training batches are drawn afresh
    each epoch, the test set is binarised once.
    """
    want = "digits" if args.fast else args.dataset
    ds, why = None, ""
    if want in ("auto", "mnist"):
        try:
            ds = load_dataset("mnist", download=False, binarization="dynamic")
        except (DataNotFoundError, ChecksumError, DataFormatError) as err:
            if want == "mnist":
                raise SystemExit(f"--dataset mnist: {err}") from err
            why = (f"MNIST not found ({type(err).__name__}) in $NPVAE_DATA or the cache "
                   f"{npvae.data.cache_dir()}; set NPVAE_DATA to the folder holding mnist/")
    if ds is None:
        ds = load_dataset("digits", binarization="dynamic")
        why = why or ("--fast uses the offline digits" if args.fast else "--dataset digits")
    x_train, y_train = ds.x_train[:n_train], ds.y_train[:n_train]
    x_test, y_test = ds.x_test[:n_test], ds.y_test[:n_test]
    shape = "x".join(map(str, ds.image_shape))
    note = (f"{ds.name} ({shape}, {len(x_train)} train / {len(x_test)} test, dynamic "
            f"binarisation, source: {ds.source})")
    print(f"[{args.name}] data: {note}" + (f" -- {why}" if why else ""))
    return DemoData(ds.name, x_train, y_train, x_test, y_test, tuple(ds.image_shape), note)


def pick(args, data, fast, mnist, digits):
    """A setting (epochs, sizes, ...) for ``--fast``, for MNIST, and for the digits in full
    mode (1500 small images: many more epochs for the same number of updates)."""
    if args.fast:
        return fast
    return mnist if data.name == "mnist" else digits


def binarize_dynamic(xb, rng):
    """The trainer's ``batch_transform``: ``x ~ Bernoulli(pixel / 255)`` afresh
    (docs/12-data.md#dynamic-binarisation)."""
    return convert_batch(xb, "dynamic", np.float32, rng)


def set_output_bias(model, data):
    """Decoder output bias at the logit of the training pixel means
    (docs/01-dense-layers.md#output-bias-at-the-logit-of-the-data-mean; Burda et al. 2016)."""
    p = np.clip(data.x_train.mean(axis=0) / 255.0, 1e-3, 1 - 1e-3)
    model.params_["dec_out_b"][...] = np.log(p / (1 - p))


def train_model(model, data, epochs, batch_size=100, learning_rate=1e-3, **kwargs):
    """Initialise ``model`` and train it on dynamically binarised batches; returns it.

    (``model.fit`` would reject the grey-level ``uint8`` training set, so this
    follows what ``npvae train`` does: ``initialize``, the output bias, then
    :func:`npvae.training.train` with a ``batch_transform``.)
    """
    from npvae.training import train

    model.initialize(data.n_features)
    set_output_bias(model, data)
    t0 = time.perf_counter()
    train(model, data.x_train, epochs=epochs, batch_size=batch_size,
          learning_rate=learning_rate, batch_transform=binarize_dynamic, **kwargs)
    model.train_seconds_ = time.perf_counter() - t0
    return model


# ------------------------------------------------------------------ figures
def new_figure(figsize):
    """A matplotlib Figure on an Agg canvas (no pyplot, no window), constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained", facecolor="white")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, args, filename):
    """Write ``fig`` as ``--out/filename`` at :data:`DPI`; prints and returns the path."""
    path = Path(args.out) / filename
    fig.savefig(path, dpi=DPI, format="png", facecolor="white")
    fig.clear()
    print(f"[{args.name}] wrote {path} ({path.stat().st_size / 1024:.0f} KB)")
    return path


def show_images(ax, images, image_shape, n_cols, title=None, fontsize="medium"):
    """Tile ``images (N, D)`` in [0, 1] on ``ax`` with :func:`npvae.plots.image_grid`."""
    from npvae.plots import image_grid

    grid = image_grid(np.clip(images, 0, 1), image_shape, n_cols)
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=fontsize)
    return grid


def digit_colours():
    import matplotlib

    return matplotlib.colormaps["tab10"].colors


def scatter_by_label(ax, z, labels, size=None, alpha=0.6, legend=True):
    """Scatter 2-D codes coloured by digit (tab10), in a shuffled drawing order."""
    from matplotlib.lines import Line2D

    colours = np.array(digit_colours())
    order = np.random.default_rng(0).permutation(len(z))
    size = size if size is not None else float(np.clip(6000.0 / len(z), 2.0, 30.0))
    ax.scatter(z[order, 0], z[order, 1], c=colours[labels[order] % 10], s=size,
               alpha=alpha, linewidths=0, rasterized=True)
    if legend:
        handles = [Line2D([], [], ls="", marker="o", ms=5, color=colours[k], label=str(k))
                   for k in np.unique(labels)]
        ax.legend(handles=handles, title="digit", fontsize="x-small", title_fontsize="small",
                  loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


# ------------------------------------------------------------------- output
def report(args, results, title=None):
    """Print ``{name: number}`` one per line; returns ``results`` with plain floats."""
    out = {}
    if title:
        print(f"[{args.name}] {title}")
    width = max((len(k) for k in results), default=0)
    for key, value in results.items():
        value = float(value)
        out[key] = value
        print(f"  {key:<{width}} = {value:.6g}")
    return out


def check_finite(results):
    bad = {k: v for k, v in results.items() if not math.isfinite(v)}
    if bad:
        print(f"WARNING: non-finite results: {bad}", file=sys.stderr)
    return results


def run_script(main):
    """``if __name__ == "__main__": run_script(main)``."""
    main(sys.argv[1:])
