"""Image figures: a grid of tiled images, inputs above their reconstructions,
samples from the prior.

Images are greyscale with pixel values in ``[0, 1]`` (Bernoulli means or
intensities; docs/04-likelihoods.md and docs/12-data.md); values outside that
range are clipped by the colour map, not rejected.

Shape legend (docs/README.md): ``N`` batch, ``D`` data dimension, ``Z`` latent
dimension, ``H, W`` image height and width (``D = H * W``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ._canvas import (DEFAULT_DPI, PathLike, SEPARATOR_VALUE, as_images, check_dpi,
                      check_image_shape, check_positive_int, draw_separators, figure,
                      image_colorbar, image_scale, png_doc, png_path, save, show_image)

__all__ = ["image_grid", "plot_reconstructions", "plot_samples"]


def image_grid(
    images: np.ndarray,
    image_shape: Sequence[int],
    n_cols: int,
    pad_value: float = SEPARATOR_VALUE,
    *,
    pad: int = 1,
) -> np.ndarray:
    """Tile a batch of flattened images into one 2-D array.

    Images are placed row by row, ``n_cols`` per row, with 1-pixel separators
    (filled with ``pad_value``) between neighbouring tiles and no border
    around the grid. Cells of an incomplete last row are filled with
    ``pad_value``. With ``pad=0`` the tiles touch; the figures of this
    package draw them so and add thin separator lines on top (a separator
    pixel would be an eighth of an 8x8 digit).

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
    pad : int, keyword-only, default 1
        Width of the separators in pixels (>= 0).

    Returns
    -------
    numpy.ndarray, shape (R*H + (R - 1)*pad, n_cols*W + (n_cols - 1)*pad)
        The tiled image, ``R = ceil(N / n_cols)`` rows of tiles, float64.

    Raises
    ------
    ValueError
        If ``image_shape`` is not a pair of positive ints, ``D`` differs from
        ``prod(image_shape)``, ``N == 0``, ``n_cols < 1``, ``pad < 0`` or
        values are not finite.
    """
    shape = check_image_shape(image_shape)
    imgs = as_images(images, "images", shape)  # (N, D)
    n_cols = check_positive_int(n_cols, "n_cols")
    pad = check_positive_int(pad, "pad", minimum=0)
    h, w = shape
    n = imgs.shape[0]
    tiles = imgs.reshape(n, h, w)  # (N, H, W)
    n_rows = math.ceil(n / n_cols)
    grid = np.full(
        (n_rows * h + (n_rows - 1) * pad, n_cols * w + (n_cols - 1) * pad), float(pad_value),
        dtype=np.float64,
    )
    for i in range(n):
        r, c = divmod(i, n_cols)
        grid[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = tiles[i]
    return grid


@png_doc
def plot_reconstructions(
    x: np.ndarray,
    x_rec: np.ndarray,
    image_shape: Sequence[int],
    path: PathLike,
    n: int = 10,
    title: str = "Inputs and their reconstructions",
    *,
    input_label: str = "input",
    dpi: float = DEFAULT_DPI,
) -> Path:
    """Plot inputs above their reconstructions.

    The first ``n`` examples are shown, at most 10 per row: a row of inputs
    with the row of their reconstructions directly beneath. When ``n > 10``
    the figure stacks several such pairs of rows. Tiles are separated by thin
    lines (a fixed width in points, whatever the image size).

    Parameters
    ----------
    x : array_like, shape (N, D) or (N, H, W)
        Inputs, values in [0, 1].
    x_rec : array_like, same shape as ``x``
        Reconstructions, typically the decoder means ``E[x | z]`` at a sample
        or the mean of ``q(z | x)`` (``sigmoid(η)`` for a Bernoulli
        decoder, docs/04-likelihoods.md), values in [0, 1].
    image_shape : (int, int)
        ``(H, W)`` with ``H * W = D``.
    path : str or os.PathLike
        Output PNG file (``.png`` is appended when there is no suffix).
    n : int, default 10
        Number of examples shown, ``1 <= n <= N``.
    title : str
        Figure title.
    input_label : str, keyword-only, default "input"
        Name of the rows of inputs (may hold line breaks), e.g. to say that
        the inputs are shown as grey levels while the model saw binarised ones.
    {png}
        On mismatched or wrong shapes, ``n`` out of range, or non-finite values.
    """
    shape = check_image_shape(image_shape)
    xs = as_images(x, "x", shape)  # (N, D)
    xr = as_images(x_rec, "x_rec", shape)  # (N, D)
    if xs.shape != xr.shape:
        raise ValueError(f"x and x_rec must have the same shape, got {xs.shape} and {xr.shape}")
    n = check_positive_int(n, "n")
    if n > xs.shape[0]:
        raise ValueError(f"n = {n} exceeds the number of examples N = {xs.shape[0]}")
    dpi = check_dpi(dpi)
    out = png_path(path)

    per_row = min(n, 10)
    n_pairs = math.ceil(n / per_row)
    h, w = shape
    # One image: pairs of strips [inputs; reconstructions] (tiles touching, thin
    # separator lines drawn on top) separated by a gap of background so that the
    # pairs read as units.
    gap_px = max(2, h // 4)
    strips, centres, names, tops = [], [], [], []
    top = 0
    for p in range(n_pairs):
        idx = np.arange(p * per_row, min((p + 1) * per_row, n))
        if p > 0:
            strips.append(np.full((gap_px, per_row * w), SEPARATOR_VALUE))
            top += gap_px
        pair = image_grid(np.concatenate([xs[idx], xr[idx]]), shape, len(idx), pad=0)
        if len(idx) < per_row:  # last, incomplete pair: pad on the right
            full = np.full((pair.shape[0], per_row * w), SEPARATOR_VALUE)
            full[:, : pair.shape[1]] = pair
            pair = full
        strips.append(pair)
        tops.append(top)
        centres += [top + (h - 1) / 2, top + h + (h - 1) / 2]
        names += [input_label, "reconstruction"]
        top += pair.shape[0]
    grid = np.vstack(strips)  # (rows, per_row*W)
    gh, gw = grid.shape
    s = image_scale(gh, gw, max_w=8.0, max_h=min(0.85 * 2 * n_pairs, 30.0))  # inches/pixel
    figsize = (gw * s + 2.8, gh * s + 0.7)

    with figure(figsize) as fig:
        ax = fig.add_subplot()
        im = show_image(ax, grid)
        for t in tops:
            draw_separators(ax, shape, 2, per_row, top=t)
        # row names as tick labels with zero-length (invisible) tick marks
        ax.set_yticks(centres, names)
        ax.tick_params(axis="y", length=0, pad=6)
        image_colorbar(fig, im, ax, shrink=1.0)
        fig.suptitle(title)
        return save(fig, out, dpi)


@png_doc
def plot_samples(
    samples: np.ndarray,
    image_shape: Sequence[int],
    path: PathLike,
    title: str = "Samples from the model, z ~ p(z)",
    *,
    n_cols: int | None = None,
    row_labels: Sequence[object] | None = None,
    row_title: str = "",
    what: str = "samples",
    dpi: float = DEFAULT_DPI,
) -> Path:
    """Plot a grid of samples generated from the prior.

    With ``row_labels`` every row of tiles is named at its left (for example
    the class that a conditional model generated in that row).

    Parameters
    ----------
    samples : array_like, shape (N, D) or (N, H, W)
        Decoded samples (for example decoder means at ``z ~ N(0, I)``,
        docs/04-likelihoods.md), values in [0, 1].
    image_shape : (int, int)
        ``(H, W)`` with ``H * W = D``.
    path : str or os.PathLike
        Output PNG file.
    title : str
        Figure title.
    n_cols : int, optional, keyword-only
        Tiles per row; default ``ceil(sqrt(N))`` (a square grid).
    row_labels : sequence, optional, keyword-only
        One name per row of tiles, ``ceil(N / n_cols)`` of them, shown as
        y tick labels.
    row_title : str, keyword-only
        Label of the y axis that names the rows (with ``row_labels``), e.g.
        "class".
    what : str, keyword-only
        What the tiles are, for the x axis ("100 samples"; "pseudo-inputs").
    {png}
        On a wrong shape, ``D != prod(image_shape)``, non-finite values or
        ``row_labels`` of the wrong length.
    """
    shape = check_image_shape(image_shape)
    xs = as_images(samples, "samples", shape)  # (N, D)
    n = xs.shape[0]
    n_cols = math.ceil(math.sqrt(n)) if n_cols is None else check_positive_int(n_cols, "n_cols")
    n_rows = math.ceil(n / n_cols)
    if row_labels is not None:
        row_labels = [str(r) for r in row_labels]
        if len(row_labels) != n_rows:
            raise ValueError(f"row_labels must name each of the {n_rows} rows of tiles, "
                             f"got {len(row_labels)}")
    dpi = check_dpi(dpi)
    out = png_path(path)

    grid = image_grid(xs, shape, n_cols, pad=0)
    gh, gw = grid.shape
    s = image_scale(gh, gw, max_w=6.5, max_h=6.5)
    figsize = (gw * s + 1.3 + (0.6 if row_labels is not None else 0.0), gh * s + 0.7)
    with figure(figsize) as fig:
        ax = fig.add_subplot()
        im = show_image(ax, grid)
        draw_separators(ax, shape, n_rows, n_cols)
        ax.set_xlabel(f"{n} {what}" if row_labels is None else f"{n_cols} {what} per row")
        if row_labels is not None:
            h = shape[0]
            ax.set_yticks([r * h + (h - 1) / 2 for r in range(n_rows)], row_labels)
            ax.tick_params(axis="y", length=0, pad=4)
            ax.set_ylabel(row_title)
        image_colorbar(fig, im, ax)
        fig.suptitle(title)
        return save(fig, out, dpi)
