"""Training curves: the ELBO and its two terms against the epoch.

The history is a plain list of per-epoch dicts (``model.history_``), so this
module needs no model class.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ._canvas import DEFAULT_DPI, PathLike, _check_dpi, _figure, _png_path, _save

__all__ = ["plot_training_curves"]


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

    Left panel: training and validation ELBO (nats per example).
    Right panel: the reconstruction term (left axis) and the KL term
    (right axis), training solid and validation dashed when present.
    Missing values (``None`` or NaN, e.g. epochs without validation) are
    skipped; a series that is missing everywhere is not drawn.

    Parameters
    ----------
    history : list of dict
        One dict per epoch with keys ``epoch``, ``train_elbo``,
        ``train_reconstruction``, ``train_kl`` and optionally ``val_elbo``,
        ``val_reconstruction``, ``val_kl`` (numbers, ``None`` or NaN).
        Values are plotted with the sign they are given; the axis labels
        assume the convention ``ELBO = reconstruction - KL``, i.e.
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
