"""Latents beyond the Gaussian on dynamically binarised MNIST, beside the papers' numbers
(docs/15-discrete-latents.md, docs/19-simplex-latents.md).

    NPVAE_DATA=/path/to/data python -m benchmarks.simplex_latents run --run-dir runs/simplex
    python -m benchmarks.simplex_latents summarise --run-dir runs/simplex

``run`` trains each model through the command line (``npvae train``: a run folder per
model, resumable: give the same command again after an interruption) and scores its
``best.npz`` (the epoch of the best validation ELBO: early stopping, as the papers) with
``npvae evaluate``: the test ELBO and the importance-sampled ``log p(x)`` with
``--k-eval`` samples on all 10,000 test images.  ``--models`` picks some of them (one
process per model lets two run side by side on two cores).  ``summarise`` writes the
table (markdown, ``--table``) and the figure (``--figure``): each model's validation
ELBO per epoch, and its test NLL ± 2 s.e. beside the published number.

The models (Adam 1e-3, batch 100, float32, one thread, seed 0, 50,000 training images,
10,000 for validation):

* ``gaussian``: 784-500-50 ReLU, diagonal Gaussian posterior, N(0, I) prior;
* ``stick``: the same with ``T = 50`` Kumaraswamy stick-breaking weights, GEM(α₀ = 5)
  prior (Nalisnick & Smyth 2017: one hidden layer of 500, truncation 50, α₀ = 5);
* ``dirichlet``: the same with a code on the 50-simplex, Dirichlet(1) prior;
* ``concrete``: 784-512-256-(20 × 10), Gumbel-softmax relaxation, uniform prior,
  temperature ``max(0.5, exp(−0.3 e))`` per epoch ``e`` (Jang et al. 2017, categorical VAE).
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

#: name -> (label, ``npvae train`` flags)
MODELS = {
    "gaussian": ("Gaussian VAE, Z = 50", ["--latent", "50", "--hidden", "500"]),
    "stick": ("stick-breaking VAE, T = 50, α₀ = 5",
              ["--posterior", "kumaraswamy", "--prior-alpha", "5", "--latent", "50",
               "--hidden", "500"]),
    "dirichlet": ("Dirichlet VAE, K = 50, α₀ = 1",
                  ["--posterior", "dirichlet", "--prior-alpha", "1", "--latent", "50",
                   "--hidden", "500"]),
    "concrete": ("categorical VAE, 20 × 10 (Concrete)",
                 ["--posterior", "concrete", "--categories", "10", "--latent", "20",
                  "--hidden", "512,256", "--temperature", "1", "--anneal-rate", "0.3",
                  "--min-temperature", "0.5"]),
}

#: name -> (published number in nats, what it is): read in the papers' own text
PUBLISHED = {
    "gaussian": (93.93, "Nalisnick & Smyth 2017, Table 1: Gauss VAE 784-500-50, −log p(x), 100 samples"),
    "stick": (98.01, "Nalisnick & Smyth 2017, Table 1: Kumar-SB VAE, −log p(x), 100 samples"),
    "concrete": (101.5, "Jang et al. 2017, Table 1: VAE (Cat.), Gumbel-Softmax, negative "
                        "1000-sample bound with one-hot codes, static MNIST, 784-(20×10)-200"),
}


def train_and_score(run_dir, name, epochs, k_eval, flags=None, scores_dir=None):
    """Train ``name`` to ``epochs`` (resuming a run folder that exists) and score its
    ``best.npz``; the scores are in ``<run_dir>/<name>/evaluation-test.json`` (or in
    ``scores_dir``).  ``flags``: the model's ``npvae train`` flags (default ``MODELS``')."""
    from npvae.cli import main as npvae

    out = os.path.join(run_dir, name)
    flags = MODELS[name][1] if flags is None else flags
    if os.path.exists(os.path.join(out, "checkpoint.npz")):
        code = npvae(["train", "--out", out, "--resume", "--epochs", str(epochs),
                      "--threads", "1", "--no-figures", "--quiet"])
    else:
        code = npvae(["train", "--out", out, "--dataset", "mnist", "--epochs", str(epochs),
                      "--batch-size", "100", "--lr", "1e-3", "--dtype", "float32", "--seed",
                      "0", "--threads", "1", "--no-figures", "--quiet", *flags])
    if code != 0:
        raise SystemExit(code)
    scores_dir = scores_dir or out
    if not os.path.exists(os.path.join(scores_dir, "evaluation-test.json")):
        where = [] if scores_dir == out else ["--checkpoint", os.path.join(out, "best.npz")]
        code = npvae(["evaluate", "--out", scores_dir, *where, "--n-importance", str(k_eval),
                      "--threads", "1"])
        if code != 0:
            raise SystemExit(code)


def collect(run_dir):
    """``{name: (history, scores)}`` of every model whose run folder holds scores."""
    found = {}
    for name in MODELS:
        folder = os.path.join(run_dir, name)
        scores = os.path.join(folder, "evaluation-test.json")
        if os.path.exists(scores):
            with open(os.path.join(folder, "history.jsonl")) as f:
                history = [json.loads(line) for line in f]
            with open(scores) as f:
                found[name] = (history, json.load(f))
    return found


def table(found):
    """Markdown: test ELBO and NLL ± s.e., the epoch kept, and the published number."""
    rows = ["| model | epochs (kept) | test ELBO | test NLL (K) | published | gap |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, (history, s) in found.items():
        kept = s.get("parameters", "").rsplit("epoch ", 1)[-1].rstrip(")")
        pub, what = PUBLISHED.get(name, (None, ""))
        gap = f"{s['nll'] - pub:+.2f}" if pub and "nll" in s else "–"
        rows.append(f"| {MODELS[name][0]} | {len(history)} ({kept}) | "
                    f"−{-s['elbo']:.2f} ± {s['elbo_se']:.2f} | "
                    f"{s['nll']:.2f} ± {s['nll_se']:.2f} ({s['n_importance']}) | "
                    f"{pub if pub else '–'} | {gap} |")
    notes = [f"- {MODELS[n][0]}: {PUBLISHED[n][1]}" for n in found if n in PUBLISHED]
    return "\n".join(rows + [""] + notes) + "\n"


def figure(found, path):
    """Validation ELBO per epoch (left); test NLL ± 2 s.e. and the published number (right)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    for i, (name, (history, s)) in enumerate(found.items()):
        val = [-h["val_elbo"] for h in history]
        ax1.plot(np.arange(1, len(val) + 1), val, color=f"C{i}", label=MODELS[name][0])
        ax2.errorbar([i], [s["nll"]], yerr=[2 * s["nll_se"]], fmt="o", color=f"C{i}",
                     capsize=4, label="ours" if i == 0 else None)
        if name in PUBLISHED:
            ax2.plot([i], [PUBLISHED[name][0]], "k_", markersize=18,
                     label="published" if name == "gaussian" else None)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("validation −ELBO (nats)")
    ax1.set_title("the bound on 10,000 held-out training images", fontsize="small")
    ax1.legend(fontsize="small")
    low = min(min(-h["val_elbo"] for h in hist) for hist, _ in found.values())
    ax1.set_ylim(low - 2, low + 40)
    ax2.set_xticks(range(len(found)), [n for n in found], fontsize="small")
    ax2.set_ylabel("test −log p(x) (nats)")
    ax2.set_title("test NLL ± 2 s.e. (importance sampling, all 10,000)\n"
                  "published: the papers' own (Jang et al.: smaller networks, static MNIST)", fontsize="small")
    ax2.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["run", "summarise"])
    ap.add_argument("--run-dir", default="runs/simplex")
    ap.add_argument("--models", default=",".join(MODELS),
                    help=f"comma-separated, of {', '.join(MODELS)}")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--k-eval", type=int, default=1000)
    ap.add_argument("--table", default=None, help="markdown file (default: print)")
    ap.add_argument("--figure", default=None, help="PNG file")
    args = ap.parse_args(argv)
    names = [n for n in args.models.split(",") if n]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        ap.error(f"unknown model {unknown[0]!r}; choose from {', '.join(MODELS)}")
    if args.command == "run":
        for name in names:
            train_and_score(args.run_dir, name, args.epochs, args.k_eval)
        return 0
    found = {n: v for n, v in collect(args.run_dir).items() if n in names}
    if not found:
        ap.error(f"no scored model in {args.run_dir}")
    text = table(found)
    if args.table:
        with open(args.table, "w") as f:
            f.write(text)
    print(text)
    if args.figure:
        figure(found, args.figure)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
