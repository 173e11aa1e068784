"""The Ladder VAE of Sønderby et al. (2016) on dynamically binarised MNIST
(docs/16-ladder-vae.md#training-the-papers-model).

    NPVAE_DATA=/path/to/data python -m benchmarks.ladder_vae --run-dir runs/ladder --threads 1

The paper's MNIST model: five stochastic levels of 64, 32, 16, 8 and 4 units over
bottom-up MLPs of 512, 256, 128, 64 and 32 units, every hidden layer batch-normalised,
leaky rectifiers; Adam at learning rate 0.002, batches of 256, the KL weight rising
linearly from 0 to 1 over the first 200 epochs (deterministic warm-up), 2,000
epochs; test NLL by importance sampling with K = 5000 (their 81.74 nats; 81.84
without the final importance-weighted fine-tuning).  Differences here: the
leaky rectifier's slope is npvae's 0.01 (theirs 0.1), a floor of 1e-4 under the
softplus variances (docs/16-ladder-vae.md#the-variance-heads), and no
importance-weighted fine-tuning.

With ``--run-dir DIR`` the model trains in ``DIR/ladder/``: a checkpoint after
every epoch (parameters with the running batch-norm statistics, Adam state, random
generator), so that the same command given again continues exactly where it
stopped (the epoch it was in is redone from its start); ``final.npz`` when done.
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
from npvae.training import train

from .burda_table1 import _final, _resume

PUBLISHED = 81.74
REFERENCE = "Sønderby, Raiko, Maaløe, Kaae Sønderby & Winther (2016), Table 1"
#: what a resumed run must share with the run it continues (``--epochs`` may grow)
SETTINGS = ("batch_size", "learning_rate", "warmup_epochs", "latent_sizes", "hidden_sizes",
            "n_train", "dtype", "seed")


def make(args):
    return npvae.LadderVAE(latent_sizes=tuple(args.latent_sizes),
                           hidden_sizes=tuple((h,) for h in args.hidden_sizes),
                           activation="leaky_relu", dtype=args.dtype, random_state=args.seed)


def ints(text):
    return [int(v) for v in text.split(",")]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2000)
    ap.add_argument("--warmup-epochs", type=float, default=200)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--learning-rate", type=float, default=0.002)
    ap.add_argument("--latent-sizes", type=ints, default=[64, 32, 16, 8, 4])
    ap.add_argument("--hidden-sizes", type=ints, default=[512, 256, 128, 64, 32])
    ap.add_argument("--n-train", type=int, default=None, help="first N training images (tests)")
    ap.add_argument("--run-dir", default=None, help="checkpoint and resume here (see above)")
    ap.add_argument("--n-test", type=int, default=10000)
    ap.add_argument("--k-eval", type=int, default=5000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="results JSON (default: RUN_DIR/ladder.json)")
    args = ap.parse_args(argv)
    if args.threads:
        npvae.set_num_threads(args.threads)
    ds = load_dataset("mnist", binarization="dynamic")
    x_train = ds.x_train[:args.n_train]
    x_test = ds.as_float("test", args.dtype)[:args.n_test]
    print(f"data: {len(x_train)} train (dynamic binarisation), {len(x_test)} test; "
          f"{args.epochs} epochs, Adam lr {args.learning_rate:g}, batch {args.batch_size}, "
          f"KL warm-up {args.warmup_epochs:g} epochs; evaluation K={args.k_eval}", flush=True)
    run_dir = os.path.join(args.run_dir, "ladder") if args.run_dir else None
    m = _resume(run_dir, "ladder", args, keys=SETTINGS)
    if m is None:
        m = make(args)
        m.initialize(ds.n_features)
        m._set_output_bias(convert_batch(x_train[:10000], "none", "float64"))
    done = m.n_iter_
    settings = {k: getattr(args, k) for k in SETTINGS}
    t0 = time.perf_counter()
    train(m, x_train, epochs=max(args.epochs - done, 0), batch_size=args.batch_size,
          learning_rate=args.learning_rate, kl_warmup_epochs=args.warmup_epochs,
          progress=True, run_dir=run_dir,
          metadata={"benchmark": "ladder_vae", "model": "ladder", "settings": settings},
          batch_transform=lambda xb, rng: convert_batch(xb, "dynamic", args.dtype, rng))
    train_s = time.perf_counter() - t0 + sum(r["seconds"] for r in m.history_[:done])
    if run_dir:
        print(f"trained {m.n_iter_} epochs; "
              + _final(m, run_dir, settings, "ladder_vae", REFERENCE), flush=True)
    t0 = time.perf_counter()
    nll = -m.log_likelihood(x_test, n_importance=args.k_eval, random_state=0)
    elbo = m.score_samples(x_test, random_state=0)
    row = {"model": "ladder", "epochs": m.n_iter_, "train_seconds": train_s,
           "eval_seconds": time.perf_counter() - t0, "test_nll": float(nll.mean()),
           "test_nll_se": float(nll.std(ddof=1) / np.sqrt(len(nll))),
           "test_elbo": float(elbo.mean()), "published_nll": PUBLISHED,
           "active_units": m.active_units(x_test)}
    print(f"Ladder VAE: test NLL {row['test_nll']:.2f} ± {row['test_nll_se']:.2f} (K="
          f"{args.k_eval}, {len(x_test)} images; published {PUBLISHED}), -ELBO "
          f"{-row['test_elbo']:.2f}, active units {row['active_units']}", flush=True)
    out = args.out or (os.path.join(args.run_dir, "ladder.json") if args.run_dir else None)
    if out:
        with open(out, "w") as f:
            json.dump({"settings": vars(args), "row": row}, f, indent=2)
    return row


if __name__ == "__main__":
    main()
