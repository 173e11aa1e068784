"""Rows of Burda, Grosse & Salakhutdinov (2016), Table 1, on dynamically binarised MNIST.

    NPVAE_DATA=/path/to/data python -m benchmarks.burda_table1 --epochs 20

(``/path/to/data``: a folder holding the data sets' subfolders, here ``mnist/``.)

Architectures (their §5): one stochastic level x-200-200-50 (two deterministic
tanh layers of 200, 50 latent units); two levels x-200-200-100-100-100-50 (the
markov inference of their two-level models, latent sizes 100 and 50, 200 and
100 deterministic units).  Trained with Adam on the full 60,000 training
images, freshly binarised every epoch; evaluated by the importance-sampled
test NLL with K = 5000 (docs/06-importance-weighting.md#log-likelihood-estimator).

Their schedule is 3^i passes at learning rate 0.001·10^{-i/7}, i = 0..7 (3,280
passes, batch 20, Adam ε = 1e-4).  Ours is stated in the output: ``--epochs``
passes with the rate decaying exponentially from 1e-3 to 1e-4, batch 100,
Adam ε = 1e-8; expect worse numbers than the published ones at equal
architecture, by an amount the printed table shows.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import npvae
from npvae.data import convert_batch, load_dataset
from npvae.training import train

PUBLISHED = {"vae-1": 86.76, "vae-2": 85.33, "iwae5-1": 85.54, "iwae50-1": 84.78}


def make(name, dtype, seed):
    common = dict(activation="tanh", likelihood="bernoulli", dtype=dtype, random_state=seed)
    if name == "vae-2":
        return npvae.HierarchicalVAE(latent_sizes=(100, 50), hidden_sizes=((200, 200), (100, 100)),
                                     inference="markov", **common)
    k = {"vae-1": 1, "iwae5-1": 5, "iwae50-1": 50}[name]
    return npvae.VAE(n_latent=50, hidden_sizes=(200, 200), objective="iwae" if k > 1 else "elbo",
                     k=k, **common)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="vae-1,vae-2,iwae5-1,iwae50-1")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--n-test", type=int, default=1000,
                    help="test images for the K=5000 estimate (10000 = all)")
    ap.add_argument("--k-eval", type=int, default=5000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/burda_table1.json")
    args = ap.parse_args(argv)
    if args.threads:
        npvae.set_num_threads(args.threads)
    ds = load_dataset("mnist", binarization="dynamic")
    x_test = ds.as_float("test", args.dtype)[:args.n_test]
    decay = 0.1 ** (1 / max(args.epochs - 1, 1))
    print(f"data: {len(ds.x_train)} train (dynamic binarisation), {len(x_test)} test "
          f"(binarised once, seed 0); schedule: {args.epochs} epochs, lr 1e-3 -> 1e-4 "
          f"exponentially, batch {args.batch_size}, Adam; evaluation K={args.k_eval}", flush=True)
    rows = []
    for name in args.models.split(","):
        m = make(name, args.dtype, args.seed)
        m.initialize(ds.n_features)
        m._set_output_bias(ds.as_float("train", "float64")[:10000])
        t0 = time.perf_counter()
        train(m, ds.x_train, epochs=args.epochs, batch_size=args.batch_size, learning_rate=1e-3,
              lr_schedule="exponential", lr_decay=decay, progress=True,
              batch_transform=lambda xb, rng: convert_batch(xb, "dynamic", args.dtype, rng))
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        nll = -m.log_likelihood(x_test, n_importance=args.k_eval, random_state=1)
        elbo = m.score_samples(x_test, random_state=1)
        row = {"model": name, "epochs": args.epochs, "train_seconds": train_s,
               "eval_seconds": time.perf_counter() - t0,
               "test_nll": float(nll.mean()), "test_nll_se": float(nll.std(ddof=1) / np.sqrt(len(nll))),
               "test_elbo": float(elbo.mean()), "published_nll": PUBLISHED[name],
               "active_units": m.active_units(x_test)}
        rows.append(row)
        print(f"{name}: test NLL {row['test_nll']:.2f} ± {row['test_nll_se']:.2f} "
              f"(published {PUBLISHED[name]}), -ELBO {-row['test_elbo']:.2f}, active units "
              f"{row['active_units']}, {train_s:.0f}s training", flush=True)
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"settings": vars(args), "rows": rows}, f, indent=2)
    print("\n| model | epochs | test NLL (K=%d, %d images) | published | gap |" % (args.k_eval, len(x_test)))
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['model']} | {r['epochs']} | {r['test_nll']:.2f} ± {r['test_nll_se']:.2f} | "
              f"{r['published_nll']:.2f} | {r['test_nll'] - r['published_nll']:+.2f} |")


if __name__ == "__main__":
    main()
