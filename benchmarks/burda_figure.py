"""The figure of the README's full-schedule results: for each shipped model of Burda et
al.'s Table 1, the training bound per epoch, and its test NLL beside the published one.

    python -m benchmarks.burda_figure [--out docs/figures/burda-table1.png]

Reads ``pretrained/burda-*.npz`` (their histories) and the model cards beside them;
offline.  The epoch axis is logarithmic, so the schedule's eight stages of 3^i epochs
(dotted lines at their ends) take about equal widths.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent

#: shipped file stem -> (label, the history's key of the bound that model climbs, colour);
#: a model whose file is not (yet) in pretrained/ is left out of the figure
MODELS = {
    "burda-vae-1level": ("VAE, 1 level", "train_elbo", "C0"),
    "burda-iwae5-1level": ("IWAE k = 5, 1 level", "train_iwae", "C1"),
    "burda-vae-2level": ("VAE, 2 levels", "train_elbo", "C2"),
}

#: the last epoch of each stage i = 0..7 of 3^i epochs
STAGE_ENDS = np.cumsum([3 ** i for i in range(8)])            # (8,)


def entries(pretrained=REPO / "pretrained"):
    """(label, history key, colour, history, card) for every shipped model, in MODELS'
    order."""
    import npvae

    found = []
    for stem, (label, key, colour) in MODELS.items():
        npz, card = Path(pretrained) / f"{stem}.npz", Path(pretrained) / f"{stem}.json"
        if npz.exists() and card.exists():
            found.append((label, key, colour, npvae.load(npz).history_,
                          json.loads(card.read_text())))
    return found


def plot(found, path):
    """Two panels: the negative training bound against the epoch (log axis), and each
    model's test NLL ± its standard error with the published number beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not found:
        raise SystemExit("burda_figure: no pretrained/burda-*.npz with its card found")
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2), width_ratios=(1.7, 1))
    for label, key, c, history, _ in found:
        epoch = np.array([h["epoch"] for h in history])        # (E,)
        bound = -np.array([h[key] for h in history])           # (E,) nats, lower is better
        name = "−L₅" if key == "train_iwae" else "−ELBO"
        ax.plot(epoch, bound, color=c, lw=1.2, label=f"{label} ({name})")
    for end in STAGE_ENDS[:-1]:
        ax.axvline(end, color="0.8", lw=0.8, ls=":", zorder=0)
    ax.set_xscale("log")
    ax.set_xlim(1, STAGE_ENDS[-1])
    ax.set_ylim(83, 108)
    ax.set_xlabel("epoch (stages of 3ⁱ epochs end at the dotted lines)")
    ax.set_ylabel("negative training bound, nats per image (lower is better)")
    ax.set_title("each model's training objective (its negative bound), per epoch")
    ax.legend(frameon=False)

    y = np.arange(len(found))[::-1]                            # (M,) top to bottom
    for yi, (label, _, c, _, card) in zip(y, found):
        bx.errorbar(card["test_nll"], yi, xerr=2 * card["test_nll_se"], fmt="o", color=c,
                    capsize=3, label="npvae (± 2 s.e.)" if yi == y[0] else None)
        bx.plot(card["published_nll"], yi, "x", color="k", ms=8,
                label="Burda et al. (2016)" if yi == y[0] else None)
        bx.annotate(f"{card['test_nll']:.2f}", (card["test_nll"], yi), xytext=(0, 8),
                    textcoords="offset points", ha="center", fontsize=8, color=c)
    bx.set_yticks(y, [f[0] for f in found])
    bx.set_ylim(y.min() - 0.7, y.max() + 0.9)
    bx.set_xlabel("test NLL, nats (K = 5000, 10,000 images)")
    bx.set_title("test negative log-likelihood")
    bx.legend(frameon=False, loc="lower right", fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "docs/figures/burda-table1.png"))
    args = ap.parse_args(argv)
    print(plot(entries(), args.out))


if __name__ == "__main__":
    main()
