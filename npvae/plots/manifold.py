"""Decoded latent codes: the latent manifold (Kingma & Welling 2014, fig. 4;
a 2-D slice of it when the latent has more dimensions) and interpolations
between two codes.

Both take a ``decode`` callable, latent codes ``(M, Z)`` -> decoder means
``(M, D)`` in ``[0, 1]`` (docs/04-likelihoods.md), and call it once per figure.

Shape legend (docs/README.md): ``N`` batch, ``D`` data dimension, ``Z`` latent
dimension, ``H, W`` image height and width (``D = H * W``).
Also used here: ``P`` pairs of interpolation end points, ``T`` interpolation
steps and ``M`` points passed to ``decode`` in one call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from scipy.special import ndtri

from ._canvas import (DEFAULT_DPI, PathLike, as_images, check_dpi, check_image_shape,
                      check_positive_int, draw_separators, figure, image_colorbar,
                      image_scale, png_doc, png_path, save, show_image)
from .images import image_grid

__all__ = ["manifold_title", "plot_manifold", "plot_interpolation"]

DecodeFn = Callable[[np.ndarray], np.ndarray]


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


def manifold_title(n_latent: int, latent_dims: tuple[int, int] = (0, 1),
                   latent_name: str = "z", standard_prior: bool = True,
                   others_at: str = "0") -> str:
    """What :func:`plot_manifold` shows, in one line (its default title).

    With a 2-D latent and a standard normal prior the grid covers the whole
    latent space: the learned data manifold of Kingma & Welling (2014, fig. 4).
    With more dimensions it is a 2-D slice through the origin (or through the
    point ``others_at`` names), and says so.
    """
    d0, d1 = latent_dims
    of = "" if latent_name == "z" else f" {latent_name}"
    if n_latent > 2:
        return (f"A 2-D slice of the {n_latent}-D latent space{of}: "
                f"dimensions {d0} and {d1}, the others at {others_at}")
    if standard_prior:
        return (f"Learned data manifold: the whole 2-D latent space{of} "
                "(Kingma & Welling 2014, fig. 4)")
    return f"The decoder over the whole 2-D latent space{of}"


@png_doc
def plot_manifold(
    decode: DecodeFn,
    image_shape: Sequence[int],
    path: PathLike,
    n: int = 20,
    latent_dims: tuple[int, int] = (0, 1),
    n_latent: int = 2,
    title: str | None = None,
    *,
    latent_name: str = "z",
    standard_prior: bool = True,
    note: str | None = None,
    quantiles: tuple[float, float] = (0.05, 0.95),
    center: np.ndarray | None = None,
    scale: Sequence[float] | None = None,
    center_name: str = "their mean",
    dpi: float = DEFAULT_DPI,
) -> Path:
    """Plot decoded latent codes on a grid: the learned manifold (Kingma &
    Welling 2014, fig. 4) when the latent is 2-D, a 2-D slice of it otherwise.

    An ``n x n`` grid of equally spaced points of the unit square,
    ``u = linspace(quantiles[0], quantiles[1], n)`` per axis (excluding 0 and
    1), is mapped through the inverse Gaussian CDF, ``z = Φ⁻¹(u)``
    (:func:`scipy.special.ndtri`), so that the grid covers the prior
    ``p(z) = N(0, I)`` with equal probability mass between
    neighbours. The two plotted latent dimensions are ``latent_dims``; all
    other latent dimensions are fixed to 0, the prior mean: with
    ``n_latent > 2`` the figure is a slice through the origin, not the
    manifold, and its title says so (see :func:`manifold_title`).
    Where the latent's distribution is not ``N(0, I)`` (the bottom level of a
    hierarchical VAE) ``center`` ``m`` and ``scale`` ``s`` move the grid to
    where the codes are: ``z = m + s Φ⁻¹(u)`` in the two plotted dimensions,
    ``m`` in the others.
    ``decode`` is called once with all ``n * n`` points.

    In the figure, ``latent_dims[0]`` increases from left to right and
    ``latent_dims[1]`` from bottom to top; tick labels give ``z`` at a few
    tiles. The rows of the array passed to ``decode`` follow the tiles in
    reading order (top-left first).

    Parameters
    ----------
    decode : callable
        ``decode(z)`` with ``z`` of shape ``(M, n_latent)``, ``M = n * n``,
        returns decoder means of shape ``(M, D)`` in [0, 1] (docs/04-likelihoods.md).
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
    title : str, optional
        First line of the figure title; default :func:`manifold_title`.
    latent_name : str, keyword-only, default "z"
        Name of the latent variable (mathtext allowed), e.g. ``"$z_1$"`` for
        the bottom level of a hierarchical VAE.
    standard_prior : bool, keyword-only, default True
        Whether the prior of the latent is ``N(0, I)``. When it is not (the
        bottom level of a hierarchical VAE), the grid follows ``N(0, I)``
        quantiles all the same, the figure says so and does not claim to be
        Kingma & Welling's figure.
    note : str, optional, keyword-only
        A further line under the title (e.g. why these dimensions).
    quantiles : (float, float), keyword-only, default (0.05, 0.95)
        First and last grid point in the unit square, ``0 < lo < hi < 1``.
    center : array of shape (Z,), optional, keyword-only
        The point ``m`` the slice passes through; default the origin.
    scale : (float, float), optional, keyword-only
        ``s`` per plotted dimension, > 0; default 1.
    center_name : str, keyword-only, default "their mean"
        What ``center`` is, for the title ("the others at …").
    {png}
        On invalid ``n``, ``n_latent``, ``latent_dims`` or ``quantiles``, or
        when ``decode`` returns an array of the wrong shape or non-finite
        values.
    """
    shape = check_image_shape(image_shape)
    n = check_positive_int(n, "n", minimum=2)
    n_latent = check_positive_int(n_latent, "n_latent")
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
    moved = center is not None or scale is not None
    m = np.zeros(n_latent) if center is None else np.asarray(center, dtype=np.float64)  # (Z,)
    if m.shape != (n_latent,) or not np.all(np.isfinite(m)):
        raise ValueError(f"center must be {n_latent} finite numbers, got shape {m.shape}")
    s_dims = np.ones(2) if scale is None else np.asarray(scale, dtype=np.float64)  # (2,)
    if s_dims.shape != (2,) or not np.all(np.isfinite(s_dims) & (s_dims > 0)):
        raise ValueError(f"scale must be two positive numbers, got {scale!r}")
    dpi = check_dpi(dpi)
    out = png_path(path)
    h, w = shape

    u = np.linspace(lo, hi, n)  # (n,) points of the unit interval
    cols = m[d0] + s_dims[0] * ndtri(u)  # (n,) z = m + s Φ⁻¹(u), increasing
    rows = m[d1] + s_dims[1] * ndtri(u)  # (n,)
    # tile (r, c): latent_dims[1] decreases down the rows, latent_dims[0] grows along columns
    z_rows, z_cols = np.meshgrid(rows[::-1], cols, indexing="ij")  # (n, n) each
    z = np.tile(m, (n * n, 1))  # (M, Z), M = n*n
    z[:, d0] = z_cols.ravel()
    z[:, d1] = z_rows.ravel()
    means = _call_decode(decode, z, h * w)  # (M, D)

    grid = image_grid(means, shape, n, pad=0)
    gh, gw = grid.shape
    s = image_scale(gh, gw, max_w=7.0, max_h=7.0)
    figsize = (gw * s + 2.0, gh * s + 1.6)
    with figure(figsize) as fig:
        ax = fig.add_subplot()
        im = show_image(ax, grid)
        draw_separators(ax, shape, n, n)
        # z at a few tiles: the spacing is even in probability, not in z
        ticks = np.unique(np.round(np.linspace(0, n - 1, 5)).astype(int))
        ax.set_xticks([c * w + (w - 1) / 2 for c in ticks],
                      [f"{cols[c]:.2f}" for c in ticks], fontsize="small")
        ax.set_yticks([r * h + (h - 1) / 2 for r in ticks],
                      [f"{rows[::-1][r]:.2f}" for r in ticks], fontsize="small")
        ax.tick_params(length=2)
        ax.set_xlabel(f"{latent_name} dim {d0}")
        ax.set_ylabel(f"{latent_name} dim {d1}")
        image_colorbar(fig, im, ax, label="decoder mean")
        head = title or manifold_title(n_latent, (d0, d1), latent_name, standard_prior,
                                       center_name if center is not None else "0")
        if moved:
            lines = [f"{n}×{n} grid of $z = m + s\\,\\Phi^{{-1}}(u)$, u = {lo:g} … {hi:g}: "
                     "equal N(m, s²) probability between neighbours"]
        else:
            lines = [f"{n}×{n} grid of $z = \\Phi^{{-1}}(u)$, u = {lo:g} … {hi:g}: "
                     "equal N(0, 1) probability between neighbours"]
        if not standard_prior and not moved:
            lines.append(f"the prior of {latent_name} is not N(0, I) in this model: "
                         "the grid follows N(0, I) quantiles all the same")
        if note:
            lines.append(note)
        fig.suptitle(head, fontsize="medium")
        ax.set_title("\n".join(lines), fontsize="small")
        return save(fig, out, dpi)


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


@png_doc
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
    examples. When ``x_start`` and ``x_end`` are given, the
    original inputs are shown at the left and right ends of each row.
    ``decode`` is called once with all ``P * n_steps`` points, pair by pair.

    Parameters
    ----------
    decode : callable
        ``decode(z)`` with ``z`` of shape ``(M, Z)``, ``M = P * n_steps``,
        returns decoder means of shape ``(M, D)`` in [0, 1] (docs/04-likelihoods.md).
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
    {png}
        On mismatched shapes of the end points or inputs, only one of
        ``x_start``/``x_end`` given, ``n_steps < 2``, or ``decode`` returning
        an array of the wrong shape or non-finite values.
    """
    shape = check_image_shape(image_shape)
    za, zb = _as_latent_pairs(z_start, z_end)  # (P, Z) each
    n_steps = check_positive_int(n_steps, "n_steps", minimum=2)
    if (x_start is None) != (x_end is None):
        raise ValueError("give both x_start and x_end, or neither")
    p, n_lat = za.shape
    h, w = shape
    d = h * w
    xa = xb = None
    if x_start is not None:
        xa = as_images(x_start, "x_start", shape, allow_single=True)  # (P, D)
        xb = as_images(x_end, "x_end", shape, allow_single=True)  # (P, D)
        if xa.shape[0] != p or xb.shape[0] != p:
            raise ValueError(
                f"x_start and x_end must hold one input per pair (P = {p}), "
                f"got {xa.shape[0]} and {xb.shape[0]}"
            )
    dpi = check_dpi(dpi)
    out = png_path(path)

    t = np.linspace(0.0, 1.0, n_steps)  # (T,)
    z = (1.0 - t)[None, :, None] * za[:, None, :] + t[None, :, None] * zb[:, None, :]  # (P, T, Z)
    means = _call_decode(decode, z.reshape(p * n_steps, n_lat), d)  # (P*T, D)
    grid = image_grid(means, shape, n_steps, pad=0)
    gh, gw = grid.shape

    n_tiles_w = n_steps + (2 if xa is not None else 0)
    total_w = n_tiles_w * w
    s = image_scale(gh, total_w, max_w=9.0, max_h=0.9 * p)
    figsize = (total_w * s + 1.5 + (0.3 if xa is not None else 0.0),
               gh * s + (1.05 if xa is not None else 0.85))
    with figure(figsize) as fig:
        if xa is None:
            ax = fig.add_subplot()
            im = show_image(ax, grid)
            draw_separators(ax, shape, p, n_steps)
            axes = [ax]
        else:
            gs = fig.add_gridspec(1, 3, width_ratios=[w, gw, w])
            ax_a = fig.add_subplot(gs[0, 0])
            ax = fig.add_subplot(gs[0, 1])
            ax_b = fig.add_subplot(gs[0, 2])
            show_image(ax_a, image_grid(xa, shape, 1, pad=0))
            draw_separators(ax_a, shape, p, 1)
            im = show_image(ax, grid)
            draw_separators(ax, shape, p, n_steps)
            show_image(ax_b, image_grid(xb, shape, 1, pad=0))
            draw_separators(ax_b, shape, p, 1)
            ax_a.set_title("input A", fontsize="small")
            ax_b.set_title("input B", fontsize="small")
            axes = [ax_a, ax, ax_b]
        ax.set_xlabel(f"decoded $z_t = (1-t)\\,z_A + t\\,z_B$,  t = 0 → 1 in {n_steps} steps")
        image_colorbar(fig, im, axes, label="decoder mean", shrink=1.0)
        if xa is not None:  # after the colour bar, which anchors every parent at "E"
            for a, anchor in zip(axes, ("E", "C", "W")):  # the inputs hug the grid
                a.set_anchor(anchor)
        fig.suptitle(title)
        return save(fig, out, dpi)
