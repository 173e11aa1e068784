"""Active units per level: the Ladder VAE against the bottom-up hierarchical VAE at the
same sizes and schedule, briefly trained on dynamically binarised MNIST
(docs/16-ladder-vae.md#active-units-per-level).

    NPVAE_DATA=/path/to/data python -m benchmarks.ladder_active_units \\
        [--epochs 10 --n-train 20000] [--out docs/figures/ladder-active-units.png]

Both models: the paper's five levels (64-32-16-8-4 over 512-256-128-64-32), leaky
rectifiers, Adam at 0.002 in batches of 256, the KL weight rising over the first half
of the epochs; the hierarchical VAE has independent bottom-up inference and no batch
normalisation.  A unit is active when ``Cov_x(E_q[u]) > 0.01`` (Burda et al. 2016),
over the first ``--n-test`` test images.  Writes the figure and ``--json``.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

import npvae
from npvae.data import convert_batch, load_dataset
from npvae.training import train

LATENT, HIDDEN = (64, 32, 16, 8, 4), (512, 256, 128, 64, 32)
THRESHOLD = 0.01


def models(seed):
    kw = dict(latent_sizes=LATENT, hidden_sizes=tuple((h,) for h in HIDDEN),
              activation="leaky_relu", dtype="float32", random_state=seed)
    return {"Ladder VAE": npvae.LadderVAE(**kw), "hierarchical VAE (bottom-up)":
            npvae.HierarchicalVAE(inference="independent", **kw)}


def unit_variances(model, X):
    """``Cov_x(E_q[u])`` per unit, one array per level (what ``active_units`` thresholds)."""
    return [np.var(m.astype(np.float64), axis=0) for m in model.encode(X)[0]]


def figure(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    levels = np.arange(1, len(LATENT) + 1)
    width = 0.38
    for i, (name, r) in enumerate(results.items()):
        ax.bar(levels + (i - 0.5) * width, r["active_units"], width, label=name, color=f"C{i}")
        order = np.concatenate([np.sort(v)[::-1] for v in r["variances"]])
        bx.semilogy(np.arange(order.size), np.maximum(order, 1e-6), ".", ms=3, color=f"C{i}",
                    label=name)
    ax.bar(levels, LATENT, 2 * width, fill=False, edgecolor="grey", ls="--", label="units")
    ax.set_xticks(levels, [f"$z_{l}$ ({Z})" for l, Z in zip(levels, LATENT)])
    ax.set_xlabel("level (units)")
    ax.set_ylabel("active units")
    ax.legend(frameon=False)
    ax.set_title("active units per level, Cov$_x$(E$_q$[u]) > 0.01")
    edges = np.cumsum((0,) + LATENT)
    for e in edges[1:-1]:
        bx.axvline(e - 0.5, color="grey", lw=0.5)
    bx.axhline(THRESHOLD, color="k", ls=":", lw=1)
    bx.set_xlabel("unit (levels 1 to 5, each sorted)")
    bx.set_ylabel("Cov$_x$(E$_q$[u])")
    bx.set_title("every unit's activity")
    epochs = next(iter(results.values()))["epochs"]
    fig.suptitle(f"MNIST, {epochs} epochs (short training; the paper's run is 2,000)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--n-train", type=int, default=60000)
    ap.add_argument("--n-test", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="docs/figures/ladder-active-units.png")
    ap.add_argument("--json", default="benchmarks/results/ladder_active_units.json")
    args = ap.parse_args(argv)
    npvae.set_num_threads(args.threads)
    ds = load_dataset("mnist", binarization="dynamic")
    x_train, x_test = ds.x_train[:args.n_train], ds.as_float("test", "float32")[:args.n_test]
    results = {}
    for name, m in models(args.seed).items():
        m.initialize(ds.n_features)
        m._set_output_bias(convert_batch(x_train[:10000], "none", "float64"))
        t0 = time.perf_counter()
        train(m, x_train, epochs=args.epochs, batch_size=256, learning_rate=0.002,
              kl_warmup_epochs=args.epochs / 2, progress=True,
              batch_transform=lambda xb, rng: convert_batch(xb, "dynamic", "float32", rng))
        var = unit_variances(m, x_test)
        results[name] = {"epochs": args.epochs, "train_seconds": time.perf_counter() - t0,
                         "test_elbo": m.score(x_test), "active_units": m.active_units(x_test),
                         "variances": var}
        assert results[name]["active_units"] == [int(np.sum(v > THRESHOLD)) for v in var]
        print(f"{name}: active units {results[name]['active_units']}, test ELBO "
              f"{results[name]['test_elbo']:.2f}", flush=True)
    figure(results, args.out)
    with open(args.json, "w") as f:
        json.dump({"settings": vars(args), "results": {
            k: {**v, "variances": [a.tolist() for a in v["variances"]]}
            for k, v in results.items()}}, f, indent=1)
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
