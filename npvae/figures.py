"""Figures for VAE experiments.

Reconstructions, samples from the prior, training curves, latent scatter
plots, the decoded latent manifold (Kingma & Welling 2014, fig. 4) and
latent-space interpolations.

This module deliberately knows nothing about the model classes: every function
takes NumPy arrays, plain dictionaries or a ``decode`` callable, so it can be
used (and tested) on its own.

Figures are built as :class:`matplotlib.figure.Figure` objects drawn by the Agg
canvas, never through ``matplotlib.pyplot``: there is no global figure state,
no window is ever opened, and separate threads can draw separate figures at
the same time. Every ``plot_*`` function writes one PNG file at the requested
``dpi`` (creating the output folder when it is missing), releases its figure
and returns the path it wrote as a :class:`pathlib.Path`. Layout uses
matplotlib's constrained layout, the layout engine that (unlike
``tight_layout``) also fits colour bars and fixed-aspect images tightly.

Images are greyscale with pixel values in ``[0, 1]`` (Bernoulli means or
intensities; MATH §4 and §12); values outside that range are clipped by the
colour map, not rejected.

Shape legend (MATH.md): ``N`` batch, ``D`` data dimension, ``Z`` latent
dimension. Also used here: ``H, W`` image height and width (``D = H * W``),
``P`` pairs of interpolation end points, ``T`` interpolation steps and ``M``
points passed to a ``decode`` callable in one call.
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy.special import ndtri

__all__ = [
    "image_grid",
    "latent_projection",
    "plot_reconstructions",
    "plot_samples",
    "plot_training_curves",
    "plot_latent_scatter",
    "plot_manifold",
    "plot_interpolation",
]

PathLike = str | os.PathLike
DecodeFn = Callable[[np.ndarray], np.ndarray]

#: Default resolution of the PNG files, in dots per inch.
DEFAULT_DPI = 150
#: Value of the 1-pixel separators between tiles, and of empty tiles.
SEPARATOR_VALUE = 1.0
_IMAGE_CMAP = "gray"
_IMAGE_COLORBAR_LABEL = "pixel value"


# ----------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------


def _check_image_shape(image_shape: Sequence[int]) -> tuple[int, int]:
    """Return ``image_shape`` as ``(H, W)`` of positive ints, or raise."""
    try:
        shape = tuple(int(s) for s in image_shape)
    except TypeError:
        raise ValueError(
            f"image_shape must be a pair (H, W) of positive ints, got {image_shape!r}"
        ) from None
    if len(shape) != 2 or any(s < 1 for s in shape):
        raise ValueError(
            f"image_shape must be a pair (H, W) of positive ints (greyscale images), "
            f"got {image_shape!r}"
        )
    if any(int(s) != s for s in image_shape):
        raise ValueError(f"image_shape must hold integers, got {image_shape!r}")
    return shape  # type: ignore[return-value]


def _as_images(
    images: np.ndarray, name: str, image_shape: tuple[int, int], *, allow_single: bool = False
) -> np.ndarray:
    """Validate a batch of flattened images and return it as float (N, D).

    Accepts ``(N, D)`` with ``D = H * W``, or ``(N, H, W)``; with
    ``allow_single`` also a single image ``(D,)`` or ``(H, W)``, returned as
    ``(1, D)``.
    """
    a = np.asarray(images)
    if a.dtype == object or not (
        np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.bool_)
    ):
        raise ValueError(f"{name} must be a numeric array, got dtype {a.dtype}")
    a = a.astype(np.float64, copy=False)
    h, w = image_shape
    d = h * w
    if allow_single and (a.shape == (d,) or a.shape == (h, w)):
        a = a.reshape(1, d)
    elif a.ndim == 3 and a.shape[1:] == (h, w):
        a = a.reshape(a.shape[0], d)
    if a.ndim != 2:
        expected = "(N, D) or (N, H, W)" + (" or (D,)" if allow_single else "")
        raise ValueError(
            f"{name} must have shape {expected} with (H, W) = {image_shape}, "
            f"got shape {np.shape(images)}"
        )
    if a.shape[1] != d:
        raise ValueError(
            f"{name} has D = {a.shape[1]} values per image but image_shape "
            f"{image_shape} needs D = prod(image_shape) = {d}"
        )
    if a.shape[0] == 0:
        raise ValueError(f"{name} holds no images (N = 0)")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _check_positive_int(value: int, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_dpi(dpi: float) -> float:
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float, np.integer, np.floating)):
        raise ValueError(f"dpi must be a positive number, got {dpi!r}")
    if not (math.isfinite(dpi) and dpi > 0):
        raise ValueError(f"dpi must be a positive number, got {dpi!r}")
    return float(dpi)


def _png_path(path: PathLike) -> Path:
    """Return ``path`` as a Path ending in ``.png`` (appended when missing)."""
    p = Path(os.fspath(path))
    if p.name in ("", ".", ".."):
        raise ValueError(f"path must name a file, got {os.fspath(path)!r}")
    if p.suffix == "":
        p = p.with_suffix(".png")
    elif p.suffix.lower() != ".png":
        raise ValueError(f"figures are written as PNG; path must end in .png, got {p}")
    if p.exists() and p.is_dir():
        raise ValueError(f"path {p} is a directory")
    return p


def _call_decode(decode: DecodeFn, z: np.ndarray, d: int, name: str = "decode") -> np.ndarray:
    """Call ``decode(z)`` with z (M, Z) and check it returns finite (M, D)."""
    if not callable(decode):
        raise ValueError(f"{name} must be callable, got {type(decode).__name__}")
    out = np.asarray(decode(z))
    m = z.shape[0]
    if out.ndim == 3 and out.shape[0] == m:
        out = out.reshape(m, -1)
    if out.shape != (m, d):
        raise ValueError(
            f"{name}(z) with z of shape {z.shape} must return means of shape "
            f"(M, D) = ({m}, {d}), got {out.shape}"
        )
    out = out.astype(np.float64, copy=False)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name}(z) returned NaN or infinite values")
    return out


# ----------------------------------------------------------------------------
# figure helpers
# ----------------------------------------------------------------------------


@contextmanager
def _figure(figsize: tuple[float, float]) -> Iterator[Figure]:
    """A Figure on an Agg canvas (no pyplot), released when the block exits."""
    fig = Figure(figsize=figsize, layout="constrained", facecolor="white")
    FigureCanvasAgg(fig)
    try:
        yield fig
    finally:
        fig.clear()


def _save(fig: Figure, path: Path, dpi: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png", facecolor="white")
    return path


def _image_scale(grid_h: int, grid_w: int, max_w: float, max_h: float) -> float:
    """Inches per image pixel so that a (grid_h, grid_w) image fits the box."""
    return min(max_w / grid_w, max_h / grid_h)


def _show_image(ax, img: np.ndarray):
    """Draw a greyscale image in [0, 1] without ticks; return the AxesImage."""
    im = ax.imshow(img, cmap=_IMAGE_CMAP, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("0.6")
    return im


def _image_colorbar(
    fig: Figure, im, axes, label: str = _IMAGE_COLORBAR_LABEL, shrink: float = 0.8
) -> None:
    cb = fig.colorbar(im, ax=axes, shrink=shrink, aspect=30, pad=0.02, fraction=0.04)
    cb.set_label(label)
    cb.set_ticks([0.0, 0.5, 1.0])


# ----------------------------------------------------------------------------
# public functions
# ----------------------------------------------------------------------------


def image_grid(
    images: np.ndarray,
    image_shape: Sequence[int],
    n_cols: int,
    pad_value: float = SEPARATOR_VALUE,
) -> np.ndarray:
    """Tile a batch of flattened images into one 2-D array.

    Images are placed row by row, ``n_cols`` per row, with 1-pixel separators
    (filled with ``pad_value``) between neighbouring tiles and no border
    around the grid. Cells of an incomplete last row are filled with
    ``pad_value``.

    Parameters
    ----------
    images : array_like, shape (N, D) or (N, H, W)
        The images; ``D`` must equal ``prod(image_shape)``.
    image_shape : (int, int)
        ``(H, W)``, the shape of one image (row-major flattening).
    n_cols : int
        Number of tiles per row (>= 1). The grid always has ``n_cols`` columns.
    pad_value : float, default 1.0
        Value of the separators and of empty cells.

    Returns
    -------
    numpy.ndarray, shape (R*H + R - 1, n_cols*W + n_cols - 1)
        The tiled image, ``R = ceil(N / n_cols)`` rows of tiles, float64.

    Raises
    ------
    ValueError
        If ``image_shape`` is not a pair of positive ints, ``D`` differs from
        ``prod(image_shape)``, ``N == 0``, ``n_cols < 1`` or values are not
        finite.
    """
    shape = _check_image_shape(image_shape)
    imgs = _as_images(images, "images", shape)  # (N, D)
    n_cols = _check_positive_int(n_cols, "n_cols")
    h, w = shape
    n = imgs.shape[0]
    n_rows = math.ceil(n / n_cols)
    grid = np.full(
        (n_rows * h + n_rows - 1, n_cols * w + n_cols - 1), float(pad_value), dtype=np.float64
    )
    tiles = imgs.reshape(n, h, w)  # (N, H, W)
    for i in range(n):
        r, c = divmod(i, n_cols)
        grid[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = tiles[i]
    return grid


def plot_reconstructions(
    x: np.ndarray,
    x_rec: np.ndarray,
    image_shape: Sequence[int],
    path: PathLike,
    n: int = 10,
    title: str = "Inputs and their reconstructions",
    *,
    dpi: float = DEFAULT_DPI,
) -> Path:
    """Plot inputs above their reconstructions.

    The first ``n`` examples are shown, at most 10 per row: a row of inputs
    with the row of their reconstructions directly beneath. When ``n > 10``
    the figure stacks several such pairs of rows.

    Parameters
    ----------
    x : array_like, shape (N, D) or (N, H, W)
        Inputs, values in [0, 1].
    x_rec : array_like, same shape as ``x``
        Reconstructions, typically the decoder means ``E[x | z]`` at a sample
        or the mean of ``q(z | x)`` (MATH §4: ``sigmoid(η)`` for a Bernoulli
        decoder), values in [0, 1].
    image_shape : (int, int)
        ``(H, W)`` with ``H * W = D``.
    path : str or os.PathLike
        Output PNG file (``.png`` is appended when there is no suffix).
    n : int, default 10
        Number of examples shown, ``1 <= n <= N``.
    title : str
        Figure title.
    dpi : float, keyword-only
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        On mismatched or wrong shapes, ``n`` out of range, or non-finite values.
    """
    shape = _check_image_shape(image_shape)
    xs = _as_images(x, "x", shape)  # (N, D)
    xr = _as_images(x_rec, "x_rec", shape)  # (N, D)
    if xs.shape != xr.shape:
        raise ValueError(f"x and x_rec must have the same shape, got {xs.shape} and {xr.shape}")
    n = _check_positive_int(n, "n")
    if n > xs.shape[0]:
        raise ValueError(f"n = {n} exceeds the number of examples N = {xs.shape[0]}")
    dpi = _check_dpi(dpi)
    out = _png_path(path)

    per_row = min(n, 10)
    n_pairs = math.ceil(n / per_row)
    h, w = shape
    # One image: [inputs; 1-px separator; reconstructions], pairs of strips
    # separated by a wider gap of background so that the pairs read as units.
    gap_px = max(2, h // 3)
    strips, centres, names = [], [], []
    top = 0
    for p in range(n_pairs):
        idx = np.arange(p * per_row, min((p + 1) * per_row, n))
        if p > 0:
            strips.append(np.full((gap_px, per_row * w + per_row - 1), SEPARATOR_VALUE))
            top += gap_px
        pair = image_grid(np.concatenate([xs[idx], xr[idx]]), shape, len(idx))
        if len(idx) < per_row:  # last, incomplete pair: pad on the right
            full = np.full((pair.shape[0], per_row * w + per_row - 1), SEPARATOR_VALUE)
            full[:, : pair.shape[1]] = pair
            pair = full
        strips.append(pair)
        centres += [top + (h - 1) / 2, top + h + 1 + (h - 1) / 2]
        names += ["input", "reconstruction"]
        top += pair.shape[0]
    grid = np.vstack(strips)  # (rows, per_row*W + per_row - 1)
    gh, gw = grid.shape
    s = _image_scale(gh, gw, max_w=8.0, max_h=min(0.85 * 2 * n_pairs, 30.0))  # inches/pixel
    figsize = (gw * s + 2.8, gh * s + 0.7)

    with _figure(figsize) as fig:
        ax = fig.add_subplot()
        im = _show_image(ax, grid)
        # row names as tick labels with zero-length (invisible) tick marks
        ax.set_yticks(centres, names)
        ax.tick_params(axis="y", length=0, pad=6)
        _image_colorbar(fig, im, ax, shrink=1.0)
        fig.suptitle(title)
        return _save(fig, out, dpi)


def plot_samples(
    samples: np.ndarray,
    image_shape: Sequence[int],
    path: PathLike,
    title: str = "Samples from the model, z ~ p(z)",
    *,
    n_cols: int | None = None,
    dpi: float = DEFAULT_DPI,
) -> Path:
    """Plot a grid of samples generated from the prior.

    Parameters
    ----------
    samples : array_like, shape (N, D) or (N, H, W)
        Decoded samples (for example decoder means at ``z ~ N(0, I)``, MATH §2
        and §4), values in [0, 1].
    image_shape : (int, int)
        ``(H, W)`` with ``H * W = D``.
    path : str or os.PathLike
        Output PNG file.
    title : str
        Figure title.
    n_cols : int, optional, keyword-only
        Tiles per row; default ``ceil(sqrt(N))`` (a square grid).
    dpi : float, keyword-only
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        On a wrong shape, ``D != prod(image_shape)`` or non-finite values.
    """
    shape = _check_image_shape(image_shape)
    xs = _as_images(samples, "samples", shape)  # (N, D)
    n = xs.shape[0]
    n_cols = math.ceil(math.sqrt(n)) if n_cols is None else _check_positive_int(n_cols, "n_cols")
    dpi = _check_dpi(dpi)
    out = _png_path(path)

    grid = image_grid(xs, shape, n_cols)
    gh, gw = grid.shape
    s = _image_scale(gh, gw, max_w=6.5, max_h=6.5)
    figsize = (gw * s + 1.3, gh * s + 0.7)
    with _figure(figsize) as fig:
        ax = fig.add_subplot()
        im = _show_image(ax, grid)
        ax.set_xlabel(f"{n} samples")
        _image_colorbar(fig, im, ax)
        fig.suptitle(title)
        return _save(fig, out, dpi)


_REQUIRED_HISTORY_KEYS = ("epoch", "train_elbo", "train_reconstruction", "train_kl")
_OPTIONAL_HISTORY_KEYS = ("val_elbo", "val_reconstruction", "val_kl")


def _history_columns(history: Sequence[Mapping[str, object]]) -> dict[str, np.ndarray]:
    """Turn a list of per-epoch dicts into float columns (None -> NaN)."""
    if isinstance(history, Mapping) or not isinstance(history, Sequence):
        raise ValueError("history must be a list of dicts, one per epoch")
    if len(history) == 0:
        raise ValueError("history is empty")
    cols: dict[str, list[float]] = {k: [] for k in _REQUIRED_HISTORY_KEYS + _OPTIONAL_HISTORY_KEYS}
    for i, row in enumerate(history):
        if not isinstance(row, Mapping):
            raise ValueError(f"history[{i}] must be a dict, got {type(row).__name__}")
        missing = [k for k in _REQUIRED_HISTORY_KEYS if k not in row]
        if missing:
            raise ValueError(f"history[{i}] lacks the key(s) {missing}")
        for k in cols:
            v = row.get(k)
            try:
                cols[k].append(math.nan if v is None else float(v))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise ValueError(f"history[{i}][{k!r}] must be a number or None, got {v!r}") from None
    arr = {k: np.asarray(v, dtype=np.float64) for k, v in cols.items()}
    if not np.all(np.isfinite(arr["epoch"])):
        raise ValueError("every history entry needs a finite 'epoch'")
    order = np.argsort(arr["epoch"], kind="stable")
    return {k: v[order] for k, v in arr.items()}


def plot_training_curves(
    history: Sequence[Mapping[str, object]],
    path: PathLike,
    title: str = "Training curves",
    *,
    dpi: float = DEFAULT_DPI,
) -> Path:
    """Plot the ELBO and its two terms against the epoch.

    Left panel: training and validation ELBO (MATH §5, nats per example).
    Right panel: the reconstruction term (left axis) and the KL term
    (MATH §3, right axis), training solid and validation dashed when present.
    Missing values (``None`` or NaN, e.g. epochs without validation) are
    skipped; a series that is missing everywhere is not drawn.

    Parameters
    ----------
    history : list of dict
        One dict per epoch with keys ``epoch``, ``train_elbo``,
        ``train_reconstruction``, ``train_kl`` and optionally ``val_elbo``,
        ``val_reconstruction``, ``val_kl`` (numbers, ``None`` or NaN).
        Values are plotted with the sign they are given; the axis labels
        assume the convention ``ELBO = reconstruction - KL`` of MATH §5, i.e.
        ``train_reconstruction`` is ``E_q[log p(x|z)]`` (negative for
        Bernoulli data), not a loss.
    path : str or os.PathLike
        Output PNG file.
    title : str
        Figure title.
    dpi : float, keyword-only
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        If ``history`` is empty, not a list of dicts, lacks a required key,
        holds a non-numeric value or an epoch that is missing.
    """
    cols = _history_columns(history)
    dpi = _check_dpi(dpi)
    out = _png_path(path)
    epoch = cols["epoch"]
    marker = "o" if epoch.size <= 40 else None

    def series(ax, key: str, **kw):
        y = cols[key]
        ok = np.isfinite(y)
        if not ok.any():
            return None
        (line,) = ax.plot(epoch[ok], y[ok], marker=marker, markersize=3.5, **kw)
        return line

    with _figure((11.0, 4.3)) as fig:
        ax_elbo, ax_terms = fig.subplots(1, 2)

        series(ax_elbo, "train_elbo", color="C0", label="train")
        val = series(ax_elbo, "val_elbo", color="C1", linestyle="--", label="validation")
        if val is not None:
            y = cols["val_elbo"]
            best = int(np.nanargmax(y))
            ax_elbo.plot(epoch[best], y[best], marker="*", markersize=12, color="C1",
                         linestyle="", label=f"best validation: {y[best]:.2f} (epoch {epoch[best]:g})")
        ax_elbo.set_title("ELBO")
        ax_elbo.set_xlabel("epoch")
        ax_elbo.set_ylabel("ELBO (nats per example)")
        ax_elbo.grid(True, alpha=0.3)
        ax_elbo.legend(loc="lower right", fontsize="small")

        ax_kl = ax_terms.twinx()
        lines = [
            series(ax_terms, "train_reconstruction", color="C2", label="reconstruction (train)"),
            series(ax_terms, "val_reconstruction", color="C2", linestyle="--",
                   label="reconstruction (validation)"),
            series(ax_kl, "train_kl", color="C3", label="KL (train)"),
            series(ax_kl, "val_kl", color="C3", linestyle="--", label="KL (validation)"),
        ]
        ax_terms.set_title("ELBO terms")
        ax_terms.set_xlabel("epoch")
        ax_terms.set_ylabel(r"reconstruction $\mathbb{E}_q[\log p(x|z)]$ (nats)", color="C2")
        ax_kl.set_ylabel(r"KL$(q(z|x)\,\|\,p(z))$ (nats)", color="C3")
        ax_terms.tick_params(axis="y", colors="C2")
        ax_kl.tick_params(axis="y", colors="C3")
        ax_terms.grid(True, alpha=0.3)
        handles = [ln for ln in lines if ln is not None]
        ax_terms.legend(handles, [h.get_label() for h in handles], loc="best", fontsize="small")
        if epoch.size == 1:
            for ax in (ax_elbo, ax_terms):
                ax.set_xlim(epoch[0] - 1, epoch[0] + 1)
        fig.suptitle(title)
        return _save(fig, out, dpi)


def latent_projection(z: np.ndarray) -> tuple[np.ndarray, str, str]:
    """Project latent codes to 2-D for a scatter plot.

    With ``Z == 2`` the codes are returned unchanged; with ``Z > 2`` they are
    projected on their first two principal components (scikit-learn PCA),
    and the axis labels say so and give each component's explained variance
    ratio.

    Parameters
    ----------
    z : array_like, shape (N, Z), Z >= 2
        Latent codes, typically posterior means ``μ`` (MATH §2).

    Returns
    -------
    coords : numpy.ndarray, shape (N, 2)
    xlabel, ylabel : str
        Axis labels describing ``coords``.

    Raises
    ------
    ValueError
        If ``z`` is not 2-D with ``Z >= 2``, is empty, has non-finite values,
        or if ``Z > 2`` and ``N < 2`` (PCA needs two points).
    """
    zz = np.asarray(z, dtype=np.float64)
    if zz.ndim != 2 or zz.shape[1] < 2:
        raise ValueError(f"z must have shape (N, Z) with Z >= 2, got {np.shape(z)}")
    if zz.shape[0] == 0:
        raise ValueError("z holds no points (N = 0)")
    if not np.all(np.isfinite(zz)):
        raise ValueError("z contains NaN or infinite values")
    n_lat = zz.shape[1]
    if n_lat == 2:
        return zz.copy(), "latent dim 0 (posterior mean)", "latent dim 1 (posterior mean)"
    if zz.shape[0] < 2:
        raise ValueError("a PCA projection of z needs at least N = 2 points")
    from sklearn.decomposition import PCA  # imported lazily: it is slow to import

    with np.errstate(divide="ignore", invalid="ignore"):
        pca = PCA(n_components=2, svd_solver="full")
        coords = pca.fit_transform(zz)  # (N, 2)
        ratio = pca.explained_variance_ratio_
    labels = []
    for k in range(2):
        r = ratio[k]
        pct = f"{r:.1%}" if np.isfinite(r) else "n/a"
        labels.append(f"PCA component {k + 1} of the {n_lat}-D latent ({pct} of variance)")
    return coords, labels[0], labels[1]


def _label_colours(labels: np.ndarray):
    """Map labels to class indices, classes and a colour map / norm."""
    classes, index = np.unique(labels, return_inverse=True)
    k = classes.size
    if k <= 10:
        colours = matplotlib.colormaps["tab10"].colors[:k]
    elif k <= 20:
        colours = matplotlib.colormaps["tab20"].colors[:k]
    else:
        colours = matplotlib.colormaps["viridis"](np.linspace(0, 1, k))
    cmap = ListedColormap(colours)
    norm = BoundaryNorm(np.arange(k + 1) - 0.5, k)
    return classes, index.reshape(-1), cmap, norm


def _class_legend_or_colorbar(fig, ax, classes, cmap, norm, sc) -> None:
    k = classes.size
    if k <= 10:
        handles = [
            Line2D([], [], linestyle="", marker="o", markersize=6, color=cmap(i), label=str(c))
            for i, c in enumerate(classes)
        ]
        ax.legend(handles=handles, title="label", loc="upper left",
                  bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize="small")
    else:
        cb = fig.colorbar(sc, ax=ax, pad=0.02)
        cb.set_label("label")
        cb.minorticks_off()
        step = max(1, math.ceil(k / 25))
        ticks = np.arange(0, k, step)
        cb.set_ticks(ticks)
        cb.set_ticklabels([str(classes[t]) for t in ticks])


def plot_latent_scatter(
    z: np.ndarray,
    labels: np.ndarray | None,
    path: PathLike,
    title: str = "Latent space (posterior means)",
    *,
    dpi: float = DEFAULT_DPI,
) -> Path:
    """Scatter plot of latent codes, coloured by class label.

    * ``Z == 2``: the codes themselves.
    * ``Z > 2``: their projection on the first two principal components (see
      :func:`latent_projection`); the axis labels say so and give the
      explained variance ratios.
    * ``Z == 1``: with labels, a strip plot (the code against the class, with
      vertical jitter); without labels, a histogram.

    Up to 10 classes are coloured with ``tab10`` and named in a legend; more
    classes get a discrete colour bar. ``labels=None`` draws one colour.

    Parameters
    ----------
    z : array_like, shape (N, Z)
        Latent codes, typically the posterior means ``μ`` (MATH §2).
    labels : array_like, shape (N,), or None
        Class label of each point (ints or strings).
    path : str or os.PathLike
        Output PNG file.
    title : str
        Figure title.
    dpi : float, keyword-only
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        If ``z`` is not ``(N, Z)`` with ``N, Z >= 1``, holds non-finite values,
        or ``labels`` is not ``(N,)``.
    """
    zz = np.asarray(z, dtype=np.float64)
    if zz.ndim == 1:
        raise ValueError(
            f"z must have shape (N, Z); for a 1-D latent pass z[:, None], got shape {zz.shape}"
        )
    if zz.ndim != 2 or zz.shape[0] == 0 or zz.shape[1] == 0:
        raise ValueError(f"z must have shape (N, Z) with N, Z >= 1, got {zz.shape}")
    if not np.all(np.isfinite(zz)):
        raise ValueError("z contains NaN or infinite values")
    n, n_lat = zz.shape
    lab = None
    if labels is not None:
        lab = np.asarray(labels)
        if lab.ndim == 2 and lab.shape[0] == n:
            raise ValueError(
                "labels must have shape (N,); for one-hot labels (N, C) pass labels.argmax(1)"
            )
        if lab.shape != (n,):
            raise ValueError(f"labels must have shape (N,) = ({n},), got {lab.shape}")
    dpi = _check_dpi(dpi)
    out = _png_path(path)

    size = float(np.clip(8000.0 / n, 4.0, 36.0))
    rng = np.random.default_rng(0)
    order = rng.permutation(n)  # draw classes interleaved, not the last on top

    with _figure((7.6, 6.0)) as fig:
        ax = fig.add_subplot()
        if n_lat == 1:
            z1 = zz[:, 0]
            if lab is None:
                bins = int(np.clip(math.sqrt(n), 10, 60))
                ax.hist(z1, bins=bins, color="C0", edgecolor="white", linewidth=0.5)
                ax.set_ylabel("count")
            else:
                classes, idx, cmap, norm = _label_colours(lab)
                y = idx + rng.uniform(-0.3, 0.3, size=n)
                sc = ax.scatter(z1[order], y[order], c=idx[order], cmap=cmap, norm=norm,
                                s=size, alpha=0.7, linewidths=0)
                step = max(1, math.ceil(classes.size / 25))
                ax.set_yticks(np.arange(0, classes.size, step))
                ax.set_yticklabels([str(c) for c in classes[::step]])
                ax.set_ylabel("label (with vertical jitter)")
                if classes.size > 10:
                    _class_legend_or_colorbar(fig, ax, classes, cmap, norm, sc)
            ax.set_xlabel("latent dim 0 (posterior mean)")
            ax.set_title(f"1-D latent, N = {n}", fontsize="medium")
        else:
            coords, xlabel, ylabel = latent_projection(zz)
            if lab is None:
                ax.scatter(coords[order, 0], coords[order, 1], s=size, alpha=0.7,
                           color="C0", linewidths=0)
            else:
                classes, idx, cmap, norm = _label_colours(lab)
                sc = ax.scatter(coords[order, 0], coords[order, 1], c=idx[order], cmap=cmap,
                                norm=norm, s=size, alpha=0.7, linewidths=0)
                _class_legend_or_colorbar(fig, ax, classes, cmap, norm, sc)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            how = "2-D latent" if n_lat == 2 else f"PCA projection of the {n_lat}-D latent"
            ax.set_title(f"{how}, N = {n}", fontsize="medium")
            ax.set_aspect("equal", adjustable="datalim")
        ax.grid(True, alpha=0.3)
        fig.suptitle(title)
        return _save(fig, out, dpi)


def plot_manifold(
    decode: DecodeFn,
    image_shape: Sequence[int],
    path: PathLike,
    n: int = 20,
    latent_dims: tuple[int, int] = (0, 1),
    n_latent: int = 2,
    title: str = "Learned data manifold",
    *,
    quantiles: tuple[float, float] = (0.05, 0.95),
    dpi: float = DEFAULT_DPI,
) -> Path:
    """Plot the decoded latent manifold (Kingma & Welling 2014, fig. 4).

    An ``n x n`` grid of equally spaced points of the unit square,
    ``u = linspace(quantiles[0], quantiles[1], n)`` per axis (excluding 0 and
    1), is mapped through the inverse Gaussian CDF, ``z = Φ⁻¹(u)``
    (:func:`scipy.special.ndtri`), so that the grid covers the prior
    ``p(z) = N(0, I)`` (MATH §2) with equal probability mass between
    neighbours. The two plotted latent dimensions are ``latent_dims``; all
    other latent dimensions are fixed to 0, the prior mean. ``decode`` is
    called once with all ``n * n`` points.

    In the figure, ``latent_dims[0]`` increases from left to right and
    ``latent_dims[1]`` from bottom to top. The rows of the array passed to
    ``decode`` follow the tiles in reading order (top-left first).

    Parameters
    ----------
    decode : callable
        ``decode(z)`` with ``z`` of shape ``(M, n_latent)``, ``M = n * n``,
        returns decoder means of shape ``(M, D)`` in [0, 1] (MATH §4).
    image_shape : (int, int)
        ``(H, W)`` with ``H * W = D``.
    path : str or os.PathLike
        Output PNG file.
    n : int, default 20
        Points per axis (>= 2).
    latent_dims : (int, int), default (0, 1)
        The two distinct latent dimensions varied (0-based).
    n_latent : int, default 2
        Latent dimension ``Z`` of the model (>= 2).
    title : str
        Figure title.
    quantiles : (float, float), keyword-only, default (0.05, 0.95)
        First and last grid point in the unit square, ``0 < lo < hi < 1``.
    dpi : float, keyword-only
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        On invalid ``n``, ``n_latent``, ``latent_dims`` or ``quantiles``, or
        when ``decode`` returns an array of the wrong shape or non-finite
        values.
    """
    shape = _check_image_shape(image_shape)
    n = _check_positive_int(n, "n", minimum=2)
    n_latent = _check_positive_int(n_latent, "n_latent")
    if n_latent < 2:
        raise ValueError(
            "plot_manifold needs n_latent >= 2; for a 1-D latent use plot_interpolation "
            "between ndtri(0.05) and ndtri(0.95)"
        )
    try:
        d0, d1 = (int(d) for d in latent_dims)
    except (TypeError, ValueError):
        raise ValueError(f"latent_dims must be a pair of ints, got {latent_dims!r}") from None
    if d0 == d1 or not (0 <= d0 < n_latent and 0 <= d1 < n_latent):
        raise ValueError(
            f"latent_dims must be two distinct dimensions in [0, {n_latent}), got {latent_dims!r}"
        )
    lo, hi = (float(q) for q in quantiles)
    if not (0.0 < lo < hi < 1.0):
        raise ValueError(f"quantiles must satisfy 0 < lo < hi < 1, got {quantiles!r}")
    dpi = _check_dpi(dpi)
    out = _png_path(path)
    h, w = shape

    u = np.linspace(lo, hi, n)  # (n,) points of the unit interval
    values = ndtri(u)  # (n,) z = Φ⁻¹(u), increasing
    # tile (r, c): latent_dims[1] decreases down the rows, latent_dims[0] grows along columns
    z_rows, z_cols = np.meshgrid(values[::-1], values, indexing="ij")  # (n, n) each
    z = np.zeros((n * n, n_latent), dtype=np.float64)  # (M, Z), M = n*n
    z[:, d0] = z_cols.ravel()
    z[:, d1] = z_rows.ravel()
    means = _call_decode(decode, z, h * w)  # (M, D)

    grid = image_grid(means, shape, n)
    gh, gw = grid.shape
    s = _image_scale(gh, gw, max_w=7.0, max_h=7.0)
    figsize = (gw * s + 1.8, gh * s + 1.3)
    with _figure(figsize) as fig:
        ax = fig.add_subplot()
        im = _show_image(ax, grid)
        phi = r"$z = \Phi^{-1}(u)$"
        ax.set_xlabel(f"latent dim {d0}:  {phi},  {values[0]:.2f} → {values[-1]:.2f}")
        ax.set_ylabel(f"latent dim {d1}:  {phi},  {values[0]:.2f} → {values[-1]:.2f}")
        _image_colorbar(fig, im, ax, label="decoder mean")
        sub = f"{n}×{n} grid, u = {lo:g} … {hi:g}"
        if n_latent > 2:
            sub += f"; the other {n_latent - 2} latent dims fixed at 0"
        fig.suptitle(f"{title}\n{sub}", fontsize="medium")
        return _save(fig, out, dpi)


def _as_latent_pairs(z_start, z_end) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(z_start, dtype=np.float64)
    b = np.asarray(z_end, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"z_start and z_end must have the same shape, got {a.shape} and {b.shape}")
    if a.ndim == 1:
        a, b = a[None, :], b[None, :]
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"z_start and z_end must have shape (Z,) or (P, Z), got {np.shape(z_start)}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("z_start and z_end must be finite")
    return a, b


def plot_interpolation(
    decode: DecodeFn,
    z_start: np.ndarray,
    z_end: np.ndarray,
    image_shape: Sequence[int],
    path: PathLike,
    n_steps: int = 10,
    x_start: np.ndarray | None = None,
    x_end: np.ndarray | None = None,
    title: str = "Interpolation in latent space",
    *,
    dpi: float = DEFAULT_DPI,
) -> Path:
    """Decode a linear interpolation between two latent codes.

    For each pair, ``z_t = (1 - t) z_start + t z_end`` at ``n_steps`` equally
    spaced ``t`` in [0, 1] (both ends included) is decoded; one row per pair.
    The end points are typically the posterior means ``μ`` of two encoded
    examples (MATH §2). When ``x_start`` and ``x_end`` are given, the
    original inputs are shown at the left and right ends of each row.
    ``decode`` is called once with all ``P * n_steps`` points, pair by pair.

    Parameters
    ----------
    decode : callable
        ``decode(z)`` with ``z`` of shape ``(M, Z)``, ``M = P * n_steps``,
        returns decoder means of shape ``(M, D)`` in [0, 1] (MATH §4).
    z_start, z_end : array_like, shape (Z,) or (P, Z)
        End points; a 2-D array gives ``P`` pairs, one row of the figure each.
    image_shape : (int, int)
        ``(H, W)`` with ``H * W = D``.
    path : str or os.PathLike
        Output PNG file.
    n_steps : int, default 10
        Number of interpolation points per pair, including the ends (>= 2).
    x_start, x_end : array_like, shape (D,) or (P, D), optional
        The original inputs of the end points; give both or neither.
    title : str
        Figure title.
    dpi : float, keyword-only
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        On mismatched shapes of the end points or inputs, only one of
        ``x_start``/``x_end`` given, ``n_steps < 2``, or ``decode`` returning
        an array of the wrong shape or non-finite values.
    """
    shape = _check_image_shape(image_shape)
    za, zb = _as_latent_pairs(z_start, z_end)  # (P, Z) each
    n_steps = _check_positive_int(n_steps, "n_steps", minimum=2)
    if (x_start is None) != (x_end is None):
        raise ValueError("give both x_start and x_end, or neither")
    p, n_lat = za.shape
    h, w = shape
    d = h * w
    xa = xb = None
    if x_start is not None:
        xa = _as_images(x_start, "x_start", shape, allow_single=True)  # (P, D)
        xb = _as_images(x_end, "x_end", shape, allow_single=True)  # (P, D)
        if xa.shape[0] != p or xb.shape[0] != p:
            raise ValueError(
                f"x_start and x_end must hold one input per pair (P = {p}), "
                f"got {xa.shape[0]} and {xb.shape[0]}"
            )
    dpi = _check_dpi(dpi)
    out = _png_path(path)

    t = np.linspace(0.0, 1.0, n_steps)  # (T,)
    z = (1.0 - t)[None, :, None] * za[:, None, :] + t[None, :, None] * zb[:, None, :]  # (P, T, Z)
    means = _call_decode(decode, z.reshape(p * n_steps, n_lat), d)  # (P*T, D)
    grid = image_grid(means, shape, n_steps)
    gh, gw = grid.shape

    n_tiles_w = n_steps + (2 if xa is not None else 0)
    total_w = n_tiles_w * (w + 1)
    s = _image_scale(gh, total_w, max_w=9.0, max_h=0.9 * p)
    figsize = (total_w * s + 1.5 + (0.3 if xa is not None else 0.0),
               gh * s + (1.05 if xa is not None else 0.85))
    with _figure(figsize) as fig:
        if xa is None:
            ax = fig.add_subplot()
            im = _show_image(ax, grid)
            axes = [ax]
        else:
            gs = fig.add_gridspec(1, 3, width_ratios=[w, gw, w])
            ax_a = fig.add_subplot(gs[0, 0])
            ax = fig.add_subplot(gs[0, 1])
            ax_b = fig.add_subplot(gs[0, 2])
            _show_image(ax_a, image_grid(xa, shape, 1))
            im = _show_image(ax, grid)
            _show_image(ax_b, image_grid(xb, shape, 1))
            ax_a.set_title("input A", fontsize="small")
            ax_b.set_title("input B", fontsize="small")
            axes = [ax_a, ax, ax_b]
        ax.set_xlabel(f"decoded $z_t = (1-t)\\,z_A + t\\,z_B$,  t = 0 → 1 in {n_steps} steps")
        _image_colorbar(fig, im, axes, label="decoder mean", shrink=1.0)
        fig.suptitle(title)
        return _save(fig, out, dpi)
