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
passes, batch 20, Adam ε = 1e-4): ``--schedule burda`` (``--epochs`` then
defaults to 3,280 and may be less, to stop after a part of the schedule).
``--schedule short`` (the default) runs ``--epochs`` passes with the rate
decaying exponentially from 1e-3 to 1e-4 and Adam ε = 1e-8; expect worse
numbers than the published ones at equal architecture, by an amount the printed
table shows.

With ``--run-dir DIR`` each model trains in ``DIR/<model>/``: a checkpoint after
every epoch (model, Adam state, random generator), so a run stopped at any
point continues exactly where it left off when the same command is given again
(the epoch it was in is redone from its start).  The trained model is then
written without its optimiser state as ``DIR/<model>/final.npz``.

    python -m benchmarks.burda_table1 --models vae-1 --schedule burda \\
        --run-dir runs/burda --n-test 10000
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import npvae
from npvae import checkpoint
from npvae.data import convert_batch, load_dataset
from npvae.data.files import sha256_file
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


def _resume(run_dir, name, args, keys=("schedule", "batch_size", "dtype", "seed")):
    """The model of ``run_dir/checkpoint.npz`` when a run with the same settings
    (``keys`` of ``args``) stopped there, else None."""
    path = run_dir and os.path.join(run_dir, "checkpoint.npz")
    if not path or not os.path.exists(path):
        return None
    m = npvae.load(path)
    stored = checkpoint.read_metadata(path).get("settings", {})
    for key in keys:
        if key in stored and stored[key] != getattr(args, key):
            raise SystemExit(f"{path}: was trained with {key}={stored[key]!r}, not "
                             f"{getattr(args, key)!r}; use another --run-dir")
    print(f"{name}: resuming from {path} after epoch {m.n_iter_}", flush=True)
    return m


#: what ``npvae evaluate``/``sample``/``plot --checkpoint`` read: the data the model was trained on
DATA_METADATA = {"dataset": "mnist", "binarization": "dynamic", "validation_size": 0,
                 "split_seed": 0, "image_shape": [28, 28], "data_dir": None}


def _final(m, run_dir, settings=None, benchmark="burda_table1",
           reference="Burda, Grosse & Salakhutdinov (2016), Table 1"):
    """The trained model without its optimiser state (a third of the size), float32,
    with the metadata the command line needs and the training settings; prints its
    SHA-256."""
    state, m.optimizer_state_ = m.optimizer_state_, None
    try:
        path = os.path.join(run_dir, "final.npz")
        meta = {"data": DATA_METADATA, "benchmark": benchmark, "settings": settings or {},
                "reference": reference}
        npvae.save(m, path, meta, compress=True)       # the history of 3,280 epochs: text
    finally:
        m.optimizer_state_ = state
    return f"wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB, sha256 {sha256_file(path)})"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="vae-1,vae-2,iwae5-1,iwae50-1")
    ap.add_argument("--schedule", choices=("short", "burda"), default="short")
    ap.add_argument("--epochs", type=int, default=None,
                    help="passes (default 20; with --schedule burda 3280)")
    ap.add_argument("--run-dir", default=None, help="checkpoint and resume here (see above)")
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
    burda = args.schedule == "burda"
    if args.epochs is None:
        args.epochs = 3280 if burda else 20
    decay = 0.1 ** (1 / max(args.epochs - 1, 1))
    adam_eps = 1e-4 if burda else 1e-8
    plan = ("Burda et al.'s stages (3^i epochs at 1e-3*10^(-i/7))" if burda
            else "lr 1e-3 -> 1e-4 exponentially")
    print(f"data: {len(ds.x_train)} train (dynamic binarisation), {len(x_test)} test "
          f"(binarised once, seed 0); schedule: {args.epochs} epochs, {plan}, batch "
          f"{args.batch_size}, Adam eps {adam_eps:g}; evaluation K={args.k_eval}", flush=True)
    rows = []
    for name in args.models.split(","):
        run_dir = os.path.join(args.run_dir, name) if args.run_dir else None
        m = _resume(run_dir, name, args)
        if m is None:
            m = make(name, args.dtype, args.seed)
            m.initialize(ds.n_features)
            m._set_output_bias(convert_batch(ds.x_train[:10000], "none", "float64"))
        done = m.n_iter_
        t0 = time.perf_counter()
        train(m, ds.x_train, epochs=max(args.epochs - done, 0), batch_size=args.batch_size,
              learning_rate=1e-3, lr_schedule="burda" if burda else "exponential",
              lr_decay=decay, progress=True, optimizer_options={"eps": adam_eps},
              run_dir=run_dir, metadata={"benchmark": "burda_table1", "model": name,
                                         "settings": {k: v for k, v in vars(args).items()
                                                      if k not in ("models", "out", "threads")}},
              batch_transform=lambda xb, rng: convert_batch(xb, "dynamic", args.dtype, rng))
        train_s = time.perf_counter() - t0 + sum(r["seconds"] for r in m.history_[:done])
        if run_dir:
            final = _final(m, run_dir, checkpoint.read_metadata(
                os.path.join(run_dir, "checkpoint.npz")).get("settings"))
            print(f"{name}: trained {m.n_iter_} epochs; {final}", flush=True)
        t0 = time.perf_counter()
        nll = -m.log_likelihood(x_test, n_importance=args.k_eval, random_state=0)  # as npvae evaluate --seed 0
        elbo = m.score_samples(x_test, random_state=0)
        row = {"model": name, "epochs": m.n_iter_, "train_seconds": train_s,
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
