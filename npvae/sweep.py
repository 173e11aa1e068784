"""The results of a sweep (``npvae sweep``): one row per run, and the mean ± standard
error over seeds of every setting.

A row is a dict: the run's grid values (``seed`` among them), ``status`` (``done`` or
``failed``), ``test_elbo``, ``test_elbo_se`` (the standard error over the test
examples), ``nll`` (the importance-sampled test NLL, when the sweep asks for it),
``train_seconds``, ``run_dir`` and ``error`` (one line, failed runs only).

Over seeds, a setting's mean ± standard error is ``mean(v)`` ± ``std(v, ddof=1) /
sqrt(n)`` of its ``n`` finished runs (no error bar for one run): the spread that
training from another seed gives, which the per-run ``test_elbo_se`` (the spread
over test examples) does not show.
"""
from __future__ import annotations

import csv
import os

import numpy as np

from ._atomic import atomic_file

#: the columns after the grid keys and ``seed``
COLUMNS = ("status", "test_elbo", "test_elbo_se", "nll", "train_seconds", "run_dir", "error")


def columns(keys, nll):
    """The columns of ``results.csv``: the grid keys, ``seed``, then :data:`COLUMNS`
    (``nll`` only when asked)."""
    keys = [k for k in keys if k != "seed"] + ["seed"]
    return keys + [c for c in COLUMNS if nll or c != "nll"]


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(map(_cell, value)) if value and isinstance(value[0], list) else \
            ",".join(map(str, value))
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_csv(rows, keys, path, nll=False):
    """``results.csv``: one line per run (written through a temporary file)."""
    names = columns(keys, nll)
    with atomic_file(path, "w", suffix=".csv") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(names)
        for row in rows:
            writer.writerow([_cell(row.get(name)) for name in names])
    return path


def _mean_se(values):
    values = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if not len(values):
        return None, None
    se = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else None
    return float(values.mean()), se


def summarize(rows, keys):
    """One dict per setting (the grid values but ``seed``), in the rows' order:
    ``setting`` (``k=5``), ``values``, ``seeds`` and ``elbos`` of its finished runs,
    ``n_failed``, ``mean``/``se`` of the test ELBO over seeds, ``nll_mean``/``nll_se``."""
    others = [k for k in keys if k != "seed"]
    groups = {}
    for row in rows:
        values = {k: row.get(k) for k in others}
        label = ", ".join(f"{k}={_cell(v)}" for k, v in values.items()) or "all runs"
        group = groups.setdefault(label, {"setting": label, "values": values, "seeds": [],
                                          "elbos": [], "nlls": [], "n_failed": 0})
        if row.get("status") == "done" and row.get("test_elbo") is not None:
            group["seeds"].append(row.get("seed"))
            group["elbos"].append(row["test_elbo"])
            group["nlls"].append(row.get("nll"))
        else:
            group["n_failed"] += 1
    for group in groups.values():
        group["mean"], group["se"] = _mean_se(group["elbos"])
        group["nll_mean"], group["nll_se"] = _mean_se(group["nlls"])
    return list(groups.values())


def _pm(mean, se):
    if mean is None:
        return "–"
    return f"{mean:.2f} ± {se:.2f}" if se is not None else f"{mean:.2f} (one run)"


def summary_markdown(groups, title, nll=False, wall_seconds=None, figure=None):
    """``summary.md``: a table of the settings with their mean ± s.e. over seeds."""
    lines = [f"# {title}", "",
             "Mean ± standard error over seeds (std(ddof=1)/sqrt(n)) of each setting's "
             "finished runs; the test ELBO is in nats per example (higher is better)"
             + ("; the NLL is the importance-sampled test -log p(x) (lower is better)."
                if nll else "."), ""]
    head = ["setting", "runs", "failed", "test ELBO", "seeds: test ELBO"]
    if nll:
        head.insert(4, "test NLL")
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g in groups:
        per_seed = ", ".join(f"{s}: {e:.2f}" for s, e in zip(g["seeds"], g["elbos"])) or "–"
        cells = [g["setting"], str(len(g["elbos"])), str(g["n_failed"]),
                 _pm(g["mean"], g["se"]), per_seed]
        if nll:
            cells.insert(4, _pm(g["nll_mean"], g["nll_se"]))
        lines.append("| " + " | ".join(cells) + " |")
    if wall_seconds is not None:
        lines += ["", f"Wall time of this sweep session: {wall_seconds:.1f} s."]
    if figure:
        lines += ["", f"![test ELBO per setting]({figure})"]
    return "\n".join(lines) + "\n"


def write_summary(rows, keys, out, title, nll=False, wall_seconds=None):
    """``DIR/summary.md`` and ``DIR/summary.png``; returns their paths."""
    from .plots.sweep import plot_sweep

    groups = summarize(rows, keys)
    figure = os.path.join(out, "summary.png")
    plot_sweep(groups, figure, title=title)
    path = os.path.join(out, "summary.md")
    with atomic_file(path, "w", suffix=".md") as f:
        f.write(summary_markdown(groups, title, nll, wall_seconds, "summary.png"))
    return path, figure
