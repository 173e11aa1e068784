"""The figure of a sweep (``npvae sweep``): the test ELBO of each setting, one dot per
seed and the mean ± standard error over seeds (:func:`npvae.sweep.summarize`)."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ._canvas import DEFAULT_DPI, PathLike, check_dpi, figure, png_path, save


def plot_sweep(groups: Sequence[Mapping[str, object]], path: PathLike, title: str = "",
               dpi: float = DEFAULT_DPI):
    """Write a PNG: one column per setting, its runs' test ELBOs as dots and their mean
    with an error bar of one standard error over seeds (none for a single run);
    a setting whose runs all failed is marked "failed".  Returns the path."""
    path, dpi = png_path(path), check_dpi(dpi)
    n = len(groups)
    with figure((max(4.0, 0.9 * n + 2.0), 3.6)) as fig:
        ax = fig.add_subplot()
        for i, g in enumerate(groups):
            elbos = np.asarray(g["elbos"], dtype=np.float64)
            if not len(elbos):
                ax.annotate("failed", (i, 0.5), xycoords=("data", "axes fraction"),
                            ha="center", color="tab:red")
                continue
            ax.plot(np.full(len(elbos), i) + np.linspace(-0.12, 0.12, len(elbos)), elbos,
                    "o", color="tab:blue", alpha=0.45, markersize=4,
                    label="one seed" if i == 0 else None)
            ax.errorbar([i], [g["mean"]], yerr=None if g["se"] is None else [g["se"]],
                        fmt="s", color="black", capsize=5, markersize=5,
                        label="mean ± s.e. over seeds" if i == 0 else None)
        ax.set_xticks(range(n), [str(g["setting"]) for g in groups],
                      rotation=30 if n > 3 else 0, ha="right" if n > 3 else "center",
                      fontsize=8)
        ax.set_xlim(-0.6, n - 0.4)
        ax.set_ylabel("test ELBO (nats)")
        ax.grid(axis="y", alpha=0.3)
        if any(len(g["elbos"]) for g in groups):
            ax.legend(fontsize=8, loc="best")
        if title:
            ax.set_title(title, fontsize=10)
        return save(fig, path, dpi)
