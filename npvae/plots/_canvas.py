"""What every figure of :mod:`npvae.plots` shares: argument checks, the figure
and its PNG file, greyscale images and their colour bar.

Figures are :class:`matplotlib.figure.Figure` objects on an Agg canvas, never
``matplotlib.pyplot`` (see the package docstring). Images are greyscale with
pixel values in ``[0, 1]``, shown with the fixed colour range ``[0, 1]``.

Shape legend (docs/README.md): ``N`` batch, ``D`` data dimension, ``Z`` latent
dimension, ``H, W`` image height and width (``D = H * W``).
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

PathLike = str | os.PathLike

#: Default resolution of the PNG files, in dots per inch.
DEFAULT_DPI = 150
#: Value of the separators between tiles (pixels of :func:`image_grid`, lines in
#: the figures), and of empty tiles.
SEPARATOR_VALUE = 1.0
_IMAGE_CMAP = "gray"
_IMAGE_COLORBAR_LABEL = "pixel value"


#: What every figure function documents alike, filled in for ``{png}`` by :func:`png_doc`
_PNG_DOC = """dpi : float, keyword-only
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError"""


def png_doc(func):
    """Fill ``{png}`` in ``func``'s docstring with the ``dpi`` parameter, the path
    returned and the ``ValueError`` raised, which every figure function shares."""
    if func.__doc__:                      # None under python -OO
        func.__doc__ = func.__doc__.replace("{png}", _PNG_DOC)
    return func


# ----------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------


def check_image_shape(image_shape: Sequence[int]) -> tuple[int, int]:
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


def as_images(
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


def check_positive_int(value: int, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_dpi(dpi: float) -> float:
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float, np.integer, np.floating)):
        raise ValueError(f"dpi must be a positive number, got {dpi!r}")
    if not (math.isfinite(dpi) and dpi > 0):
        raise ValueError(f"dpi must be a positive number, got {dpi!r}")
    return float(dpi)


def png_path(path: PathLike) -> Path:
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


# ----------------------------------------------------------------------------
# figure helpers
# ----------------------------------------------------------------------------


@contextmanager
def figure(figsize: tuple[float, float]) -> Iterator[Figure]:
    """A Figure on an Agg canvas (no pyplot), released when the block exits."""
    fig = Figure(figsize=figsize, layout="constrained", facecolor="white")
    FigureCanvasAgg(fig)
    try:
        yield fig
    finally:
        fig.clear()


def save(fig: Figure, path: Path, dpi: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png", facecolor="white")
    return path


def image_scale(grid_h: int, grid_w: int, max_w: float, max_h: float) -> float:
    """Inches per image pixel so that a (grid_h, grid_w) image fits the box."""
    return min(max_w / grid_w, max_h / grid_h)


#: Width of the lines between the tiles of a grid, in points: a fixed physical
#: width, thin next to an 8x8 digit and next to a 28x28 MNIST digit alike (a
#: separator one image pixel wide would be an eighth of a digit).
SEPARATOR_WIDTH_PT = 0.8


def draw_separators(ax, tile_shape: tuple[int, int], n_rows: int, n_cols: int,
                     top: float = 0.0) -> None:
    """Thin lines between the tiles of a grid drawn without separator pixels
    (``image_grid(..., pad=0)``): ``n_rows x n_cols`` tiles of ``tile_shape``
    whose first row starts at image row ``top``."""
    th, tw = tile_shape
    colour = matplotlib.colormaps[_IMAGE_CMAP](SEPARATOR_VALUE)
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    if n_cols > 1:
        ax.vlines([c * tw - 0.5 for c in range(1, n_cols)], top - 0.5,
                  top + n_rows * th - 0.5, colors=[colour], linewidth=SEPARATOR_WIDTH_PT)
    if n_rows > 1:
        ax.hlines([top + r * th - 0.5 for r in range(1, n_rows)], -0.5, n_cols * tw - 0.5,
                  colors=[colour], linewidth=SEPARATOR_WIDTH_PT)
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)


def show_image(ax, img: np.ndarray):
    """Draw a greyscale image in [0, 1] without ticks; return the AxesImage."""
    im = ax.imshow(img, cmap=_IMAGE_CMAP, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("0.6")
    return im


def image_colorbar(
    fig: Figure, im, axes, label: str = _IMAGE_COLORBAR_LABEL, shrink: float = 0.8
) -> None:
    cb = fig.colorbar(im, ax=axes, shrink=shrink, aspect=30, pad=0.02, fraction=0.04)
    cb.set_label(label)
    cb.set_ticks([0.0, 0.5, 1.0])
