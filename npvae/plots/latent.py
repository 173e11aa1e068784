"""The latent space: codes projected to 2-D, and their scatter plot coloured by
class label; for a hierarchical model one scatter per level.

Shape legend (docs/README.md): ``N`` batch, ``D`` data dimension, ``Z`` latent
dimension, ``H, W`` image height and width (``D = H * W``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.lines import Line2D

from ._canvas import DEFAULT_DPI, PathLike, check_dpi, figure, png_doc, png_path, save

__all__ = ["latent_projection", "plot_latent_scatter", "plot_latent_levels"]


def latent_projection(z: np.ndarray) -> tuple[np.ndarray, str, str]:
    """Project latent codes to 2-D for a scatter plot.

    With ``Z == 2`` the codes are returned unchanged; with ``Z > 2`` they are
    projected on their first two principal components (:func:`_pca2`),
    and the axis labels say so and give each component's explained variance
    ratio.

    Parameters
    ----------
    z : array_like, shape (N, Z), Z >= 2
        Latent codes, typically posterior means ``μ``.

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
    coords, ratio = _pca2(zz)
    labels = []
    for k in range(2):
        r = ratio[k]
        pct = f"{r:.1%}" if np.isfinite(r) else "n/a"
        labels.append(f"PCA component {k + 1} of the {n_lat}-D latent ({pct} of variance)")
    return coords, labels[0], labels[1]


def _pca2(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The codes ``z (N, Z)`` on their first two principal components, ``(N, 2)``, and
    the explained variance ratios ``(2,)``: scikit-learn's ``PCA(2, svd_solver="full")``
    (the same SVD of the centred codes, each component's sign making its largest
    loading positive) without importing scikit-learn (slow, and optional here)."""
    from scipy.linalg import svd

    centred = z - z.mean(axis=0)                                         # (N, Z)
    u, s, vt = svd(centred, full_matrices=False)                         # vt: (K, Z)
    signs = np.sign(vt[np.arange(len(vt)), np.argmax(np.abs(vt), axis=1)])
    signs[signs == 0] = 1.0
    variance = s ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = variance[:2] / variance.sum()
    return (u[:, :2] * s[:2]) * signs[:2], ratio


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


def _check_codes(z: np.ndarray, name: str = "z") -> np.ndarray:
    zz = np.asarray(z, dtype=np.float64)
    if zz.ndim == 1:
        raise ValueError(
            f"{name} must have shape (N, Z); for a 1-D latent pass {name}[:, None], "
            f"got shape {zz.shape}"
        )
    if zz.ndim != 2 or zz.shape[0] == 0 or zz.shape[1] == 0:
        raise ValueError(f"{name} must have shape (N, Z) with N, Z >= 1, got {zz.shape}")
    if not np.all(np.isfinite(zz)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return zz


def _check_labels(labels, n: int) -> np.ndarray | None:
    if labels is None:
        return None
    lab = np.asarray(labels)
    if lab.ndim == 2 and lab.shape[0] == n:
        raise ValueError(
            "labels must have shape (N,); for one-hot labels (N, C) pass labels.argmax(1)"
        )
    if lab.shape != (n,):
        raise ValueError(f"labels must have shape (N,) = ({n},), got {lab.shape}")
    return lab


def _scatter_panel(fig, ax, zz: np.ndarray, lab: np.ndarray | None, legend: bool,
                   name: str = "latent") -> str:
    """Draw one scatter (or strip plot / histogram for Z = 1) of the codes ``zz``
    (N, Z) on ``ax``; return a few words on what was drawn."""
    n, n_lat = zz.shape
    size = float(np.clip(8000.0 / n, 4.0, 36.0))
    rng = np.random.default_rng(0)
    order = rng.permutation(n)  # draw classes interleaved, not the last on top
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
            if classes.size > 10 and legend:
                _class_legend_or_colorbar(fig, ax, classes, cmap, norm, sc)
        ax.set_xlabel(f"{name} dim 0 (posterior mean)")
        how = "1-D"
    else:
        coords, xlabel, ylabel = latent_projection(zz)
        if lab is None:
            ax.scatter(coords[order, 0], coords[order, 1], s=size, alpha=0.7,
                       color="C0", linewidths=0)
        else:
            classes, idx, cmap, norm = _label_colours(lab)
            sc = ax.scatter(coords[order, 0], coords[order, 1], c=idx[order], cmap=cmap,
                            norm=norm, s=size, alpha=0.7, linewidths=0)
            if legend:
                _class_legend_or_colorbar(fig, ax, classes, cmap, norm, sc)
        if name != "latent":
            xlabel = xlabel.replace("latent", name, 1)
            ylabel = ylabel.replace("latent", name, 1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        how = "2-D" if n_lat == 2 else f"PCA projection of the {n_lat}-D"
        ax.set_aspect("equal", adjustable="datalim")
    ax.grid(True, alpha=0.3)
    return how


@png_doc
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
        Latent codes, typically the posterior means ``μ``.
    labels : array_like, shape (N,), or None
        Class label of each point (ints or strings).
    path : str or os.PathLike
        Output PNG file.
    title : str
        Figure title.
    {png}
        If ``z`` is not ``(N, Z)`` with ``N, Z >= 1``, holds non-finite values,
        or ``labels`` is not ``(N,)``.
    """
    zz = _check_codes(z)
    n, n_lat = zz.shape
    lab = _check_labels(labels, n)
    dpi = check_dpi(dpi)
    out = png_path(path)

    with figure((7.6, 6.0)) as fig:
        ax = fig.add_subplot()
        how = _scatter_panel(fig, ax, zz, lab, legend=True)
        ax.set_title(f"{how} latent, N = {n}", fontsize="medium")
        fig.suptitle(title)
        return save(fig, out, dpi)


@png_doc
def plot_latent_levels(
    zs: Sequence[np.ndarray],
    labels: np.ndarray | None,
    path: PathLike,
    title: str = "Latent space per level (posterior means)",
    *,
    names: Sequence[str] | None = None,
    dpi: float = DEFAULT_DPI,
) -> Path:
    """One scatter plot per stochastic level of a hierarchical model, side by side.

    Each level's codes are drawn as :func:`plot_latent_scatter` draws one
    latent: themselves when ``Z_l == 2``, their first two principal
    components when ``Z_l > 2`` (a PCA of that level alone; the panel title
    and axis labels say so), a strip plot or histogram when ``Z_l == 1``.
    Points share their colours across panels (one legend, at the last panel of
    two or more dimensions).

    Parameters
    ----------
    zs : sequence of array_like, each (N, Z_l)
        The codes of each level, bottom (next to the data) first; the same
        ``N`` examples in every level.
    labels : array_like, shape (N,), or None
        Class label of each example.
    path : str or os.PathLike
        Output PNG file.
    title : str
        Figure title.
    names : sequence of str, keyword-only, optional
        Name of each level (mathtext allowed); default ``$z_1$``, ``$z_2$``, …
    {png}
        If ``zs`` is empty, a level is not ``(N, Z_l)`` with finite values,
        the levels hold different ``N``, ``labels`` is not ``(N,)`` or
        ``names`` has the wrong length.
    """
    if isinstance(zs, np.ndarray) or len(zs) == 0:
        raise ValueError("zs must be a non-empty list of (N, Z_l) arrays, one per level")
    codes = [_check_codes(z, f"zs[{l}]") for l, z in enumerate(zs)]
    n = codes[0].shape[0]
    if any(c.shape[0] != n for c in codes):
        raise ValueError(f"every level needs the same N, got {[c.shape[0] for c in codes]}")
    names = [f"$z_{{{l + 1}}}$" for l in range(len(codes))] if names is None else list(names)
    if len(names) != len(codes):
        raise ValueError(f"names must name each of the {len(codes)} levels, got {len(names)}")
    lab = _check_labels(labels, n)
    dpi = check_dpi(dpi)
    out = png_path(path)

    n_levels = len(codes)
    # the classes are named once: in a legend at the last 2-D panel (a 1-D strip
    # plot names them on its y axis)
    with_legend = max((l for l, c in enumerate(codes) if c.shape[1] >= 2), default=-1)
    with figure((5.4 * n_levels + 1.2, 5.4)) as fig:
        axes = fig.subplots(1, n_levels, squeeze=False)[0]
        for l, (ax, zz, name) in enumerate(zip(axes, codes, names)):
            _scatter_panel(fig, ax, zz, lab, legend=l == with_legend, name=name)
            if zz.shape[1] > 2:
                what = f"PCA of this level alone ({zz.shape[1]}-D)"
            else:
                what = f"the {zz.shape[1]}-D codes themselves"
            ax.set_title(f"level {l + 1}, {name}: {what}", fontsize="medium")
        fig.suptitle(f"{title}, N = {n}")
        return save(fig, out, dpi)
