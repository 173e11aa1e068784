"""Training curves: the ELBO and its two terms against the epoch, one panel each
(and the KL of each level of a hierarchical VAE).

The history is a plain list of per-epoch dicts (``model.history_``), so this
module needs no model class.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ._canvas import (DEFAULT_DPI, PathLike, check_dpi, check_positive_int, figure,
                      png_doc, png_path, save)

__all__ = ["plot_training_curves"]


_REQUIRED_HISTORY_KEYS = ("epoch", "train_elbo", "train_reconstruction", "train_kl")
_OPTIONAL_HISTORY_KEYS = ("val_elbo", "val_reconstruction", "val_kl",
                          "train_iwae", "val_iwae")  # L_K of a model trained on it
#: at most this many levels get their own KL curves (the rest are named in the legend)
MAX_LEVELS_DRAWN = 20
_LEVEL_KEY = re.compile(r"^(train|val)_kl_(\d+)$")  # per-level KL of a hierarchical VAE


def _level_numbers(history: Sequence[Mapping[str, object]]) -> list[int]:
    """The levels ``l`` with a ``train_kl_l`` or ``val_kl_l`` in some record, sorted."""
    found = set()
    for row in history:
        for key in row:
            m = _LEVEL_KEY.match(str(key))
            if m:
                found.add(int(m.group(2)))
    return sorted(found)


def _history_columns(history: Sequence[Mapping[str, object]]) -> dict[str, np.ndarray]:
    """Turn a list of per-epoch dicts into float columns (None or absent -> NaN)."""
    if isinstance(history, Mapping) or not isinstance(history, Sequence):
        raise ValueError("history must be a list of dicts, one per epoch")
    if len(history) == 0:
        raise ValueError("history is empty")
    for i, row in enumerate(history):
        if not isinstance(row, Mapping):
            raise ValueError(f"history[{i}] must be a dict, got {type(row).__name__}")
    levels = [f"{split}_kl_{l}" for l in _level_numbers(history) for split in ("train", "val")]
    cols: dict[str, list[float]] = {
        k: [] for k in _REQUIRED_HISTORY_KEYS + _OPTIONAL_HISTORY_KEYS + tuple(levels)}
    for i, row in enumerate(history):
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


def _robust_limits(values: np.ndarray) -> tuple[float, float] | None:
    """y limits that keep a few far-off values (the first epoch of a Gaussian
    model can be 100 times worse than the rest) from flattening every curve;
    None when all values fit comfortably."""
    v = values[np.isfinite(values)]
    if v.size < 4:
        return None
    q10, q90 = np.percentile(v, [10, 90])
    spread = max(q90 - q10, 1e-12 * max(1.0, abs(q90)))
    inside = v[(v >= q10 - 3 * spread) & (v <= q90 + 3 * spread)]
    lo, hi = float(inside.min()), float(inside.max())
    if lo == v.min() and hi == v.max():
        return None
    pad = 0.06 * max(hi - lo, spread)
    return lo - pad, hi + pad


def _off_axis_note(ax, epoch: np.ndarray, series: dict[str, np.ndarray]) -> None:
    """Clip the y axis to the bulk of the values and say which points lie beyond it."""
    limits = _robust_limits(np.concatenate(list(series.values())))
    if limits is None:
        return
    lo, hi = limits
    ax.set_ylim(lo, hi)
    notes = []
    for name, y in series.items():
        for e, v in zip(epoch, y):
            if np.isfinite(v) and not lo <= v <= hi:
                notes.append(f"{name}, epoch {e:g}: {v:.4g}")
    shown = notes[:3] + ([f"and {len(notes) - 3} more"] if len(notes) > 3 else [])
    ax.text(0.02, 0.02, "off the axis:\n" + "\n".join(shown), transform=ax.transAxes,
            fontsize="x-small", va="bottom", ha="left", color="0.3",
            bbox=dict(facecolor="white", edgecolor="0.8", alpha=0.9))


@png_doc
def plot_training_curves(
    history: Sequence[Mapping[str, object]],
    path: PathLike,
    title: str = "Training curves",
    *,
    k: int | None = None,
    dpi: float = DEFAULT_DPI,
) -> Path:
    """Plot the ELBO and its two terms against the epoch, one panel each.

    Panels: the ELBO, the reconstruction term ``E_q[log p(x|z)]`` and the KL
    term, in nats per example; training solid, validation dashed when present;
    the best validation ELBO is marked with a star. A model trained on the
    importance-weighted bound (``train_iwae``, ``val_iwae`` in its history) has
    ``L_K`` drawn in the first panel beside the ELBO, and the star marks the
    best validation ``L_K``, the epoch its ``best.npz`` keeps. A hierarchical VAE's
    history also holds the KL of each level (``train_kl_1`` …
    ``train_kl_L``, ``val_kl_1`` …): the KL panel then shows the total and
    one curve per level, for the first :data:`MAX_LEVELS_DRAWN` levels (the legend
    names those left out). Missing values (``None`` or NaN, e.g. epochs
    without validation) are skipped; a series that is missing everywhere is
    not drawn. A few values far from the rest (typically the first epoch)
    are left off the axis and listed in the panel.

    Parameters
    ----------
    history : list of dict
        One dict per epoch with keys ``epoch``, ``train_elbo``,
        ``train_reconstruction``, ``train_kl`` and optionally ``val_elbo``,
        ``val_reconstruction``, ``val_kl``, ``train_kl_<l>``, ``val_kl_<l>``,
        ``train_iwae``, ``val_iwae`` (numbers, ``None`` or NaN).
        Values are plotted with the sign they are given; the axis labels
        assume the convention ``ELBO = reconstruction - KL``, i.e.
        ``train_reconstruction`` is ``E_q[log p(x|z)]`` (negative for
        Bernoulli data), not a loss.
    path : str or os.PathLike
        Output PNG file.
    title : str
        Figure title.
    k : int or None, keyword-only
        The number of importance samples of ``train_iwae`` (the legend says
        ``L_5`` rather than ``L_K``).
    {png}
        If ``history`` is empty, not a list of dicts, lacks a required key,
        holds a non-numeric value or an epoch that is missing.
    """
    cols = _history_columns(history)
    dpi = check_dpi(dpi)
    if k is not None:
        k = check_positive_int(k, "k")
    out = png_path(path)
    epoch = cols["epoch"]
    levels = _level_numbers(history)
    marker = "o" if epoch.size <= 40 else None

    def series(ax, key: str, **kw):
        y = cols[key]
        ok = np.isfinite(y)
        if not ok.any():
            return None
        (line,) = ax.plot(epoch[ok], y[ok], marker=marker, markersize=3, **kw)
        return line

    def last(key: str) -> str:
        y = cols[key][np.isfinite(cols[key])]
        return f"{y[-1]:.3g}" if y.size else "n/a"

    with figure((14.0, 4.4)) as fig:
        ax_elbo, ax_rec, ax_kl = fig.subplots(1, 3)

        bound = rf"$\mathcal{{L}}_{{{k if k is not None else 'K'}}}$"
        trained_iwae = np.isfinite(cols["train_iwae"]).any() or np.isfinite(cols["val_iwae"]).any()
        suffix = " ELBO" if trained_iwae else ""
        series(ax_elbo, "train_elbo", color="C0", label="train" + suffix)
        val = series(ax_elbo, "val_elbo", color="C0", linestyle="--", label="validation" + suffix)
        best_key, best_name = "val_elbo", "ELBO"
        if trained_iwae:
            series(ax_elbo, "train_iwae", color="C4", label=f"train {bound} (the bound trained)")
            val_iwae = series(ax_elbo, "val_iwae", color="C4", linestyle="--",
                              label=f"validation {bound}")
            if val_iwae is not None:
                val, best_key, best_name = val_iwae, "val_iwae", bound
        if val is not None:
            y = cols[best_key]
            best = int(np.nanargmax(y))
            ax_elbo.plot(epoch[best], y[best], marker="*", markersize=13, color="C1",
                         linestyle="", zorder=5, label=f"best validation {best_name}: "
                         f"{y[best]:.2f} (epoch {epoch[best]:g})")
        ax_elbo.set_title("ELBO = reconstruction − KL" + (f", and {bound}" if trained_iwae else ""))
        ax_elbo.set_ylabel("nats per example (higher is better)")

        series(ax_rec, "train_reconstruction", color="C2", label="train")
        series(ax_rec, "val_reconstruction", color="C2", linestyle="--", label="validation")
        ax_rec.set_title(r"reconstruction $\mathbb{E}_q[\log p(x|z)]$")
        ax_rec.set_ylabel("nats per example (higher is better)")

        kl_keys = ["train_kl", "val_kl"]
        if levels:
            series(ax_kl, "train_kl", color="C3", linewidth=2.2,
                   label=f"total (last: {last('train_kl')})")
            series(ax_kl, "val_kl", color="C3", linewidth=2.2, linestyle="--")
            drawn = levels[:MAX_LEVELS_DRAWN]    # 2,000 curves and keys took minutes
            for i, l in enumerate(drawn):
                colour = f"C{(4 + i) % 10}"
                series(ax_kl, f"train_kl_{l}", color=colour,
                       label=f"level {l}, $z_{{{l}}}$ (last: {last(f'train_kl_{l}')})")
                series(ax_kl, f"val_kl_{l}", color=colour, linestyle="--")
                kl_keys += [f"train_kl_{l}", f"val_kl_{l}"]
            if len(drawn) < len(levels):
                ax_kl.plot([], [], color="none", label=f"levels {levels[len(drawn)]}–"
                           f"{levels[-1]} not drawn (first {len(drawn)} of {len(levels)})")
            ax_kl.set_title(r"KL$(q\,\|\,p)$: total and per level")
            if np.isfinite(cols["val_kl"]).any():     # the line styles need a key
                ax_kl.plot([], [], color="0.4", label="train (solid)")
                ax_kl.plot([], [], color="0.4", linestyle="--", label="validation (dashed)")
        else:
            series(ax_kl, "train_kl", color="C3", label="train")
            series(ax_kl, "val_kl", color="C3", linestyle="--", label="validation")
            ax_kl.set_title(r"KL$(q(z|x)\,\|\,p(z))$")
        ax_kl.set_ylabel("nats per example")

        panels = ((ax_elbo, ["train_elbo", "val_elbo", "train_iwae", "val_iwae"]),
                  (ax_rec, ["train_reconstruction", "val_reconstruction"]),
                  (ax_kl, kl_keys))
        for ax, keys in panels:
            ax.set_xlabel("epoch")
            ax.grid(True, alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(loc="best", fontsize="small")
            if epoch.size == 1:
                ax.set_xlim(epoch[0] - 1, epoch[0] + 1)
            _off_axis_note(ax, epoch, {k.replace("_", " "): cols[k] for k in keys})
        fig.suptitle(title)
        return save(fig, out, dpi)
