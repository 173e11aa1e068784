"""Kingma & Welling (2014), Figure 2, Frey Face panel: the variational lower bound
(train and test) against the number of training samples evaluated, for latent
sizes 2, 5, 10 and 20.

Their setup where the paper states it: the Gaussian MLP decoder (a mean squashed
by a sigmoid and a log-variance per pixel, both outputs of the decoder), one
hidden layer of 200 tanh units in encoder and decoder, minibatches of 100, one
sample of z per example, Adagrad.  Where we differ: Adagrad's global step is
0.02 (they chose from {0.01, 0.02, 0.1} by early training performance and do
not say which); we put no prior (weight decay) on the parameters; weights start
by Glorot's rule, not N(0, 0.01); the test set is our fixed 200-image split.
The bound is the ELBO in nats per image with one sample of z (deterministic
evaluation noise), on all 1,765 training and 200 test images.

Runs resume exactly: each model's checkpoint and curve are written under
``--out`` after every evaluation, and a second run continues where the first
stopped.  ``python -m benchmarks.kingma_welling_fig2 [--samples 1e7] [--latent 2,5,10,20]``
with ``NPVAE_DATA`` pointing at the data sets (the folder holding ``frey/``).
Writes ``benchmarks/results/kingma_welling_fig2.json`` and
``docs/figures/frey-fig2.png`` (and the Z = 2 manifold, ``docs/figures/frey-manifold.png``).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from npvae._blas import select_openblas_kernels

select_openblas_kernels()

import numpy as np  # noqa: E402

import npvae  # noqa: E402
from npvae.data import load_dataset  # noqa: E402
from npvae.training import train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SETUP = dict(hidden_sizes=(200,), activation="tanh", likelihood="gaussian",
             likelihood_params={"variance": "decoder", "sigmoid_mean": True},
             optimizer="adagrad", batch_size=100, n_samples=1, dtype="float32")
LEARNING_RATE = 0.02


def milestones(total, per_decade=4, start=1e4):
    """Sample counts at which the bound is evaluated: log-spaced up to ``total``."""
    n = int(round(np.log10(total / start) * per_decade)) + 1
    return sorted({int(round(v)) for v in np.logspace(np.log10(start), np.log10(total), n)})


def run_one(Z, X, X_test, total, out, seed=0):
    """Train (or resume) the model of latent size ``Z`` to ``total`` training samples;
    returns its curve ``[{"samples", "train", "test", "seconds"}, ...]``."""
    folder = out / f"z{Z}"
    folder.mkdir(parents=True, exist_ok=True)
    ckpt, curve_path = folder / "checkpoint.npz", folder / "curve.json"
    if ckpt.exists() and curve_path.exists():
        model = npvae.load(ckpt)
        state = json.loads(curve_path.read_text())
    else:
        model = npvae.VAE(n_latent=Z, random_state=seed, **SETUP).initialize(X.shape[1])
        model._set_output_bias(X)
        state = {"curve": [], "seconds": 0.0}
    N = X.shape[0]
    for target in milestones(total):
        done = model.n_iter_ * N
        if target <= done and any(p["samples"] == target for p in state["curve"]):
            continue
        epochs = max(0, int(np.ceil((target - done) / N)))
        t0 = time.perf_counter()
        if epochs:
            train(model, X, epochs=epochs, batch_size=SETUP["batch_size"],
                  learning_rate=LEARNING_RATE)
        state["seconds"] += time.perf_counter() - t0
        point = {"samples": model.n_iter_ * N, "train": model.score(X),
                 "test": model.score(X_test), "seconds": round(state["seconds"], 1),
                 "active_units": model.active_units(X_test)[0]}
        state["curve"].append(point)
        npvae.save(model, ckpt)
        curve_path.write_text(json.dumps(state))
        print(f"Z={Z:2d} samples {point['samples']:>10,}  train {point['train']:8.1f}  "
              f"test {point['test']:8.1f}  active {point['active_units']:2d}  "
              f"{state['seconds']:7.0f} s", flush=True)
    return state["curve"], model


def figure(results, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, (Z, curve) in enumerate(sorted(results.items(), key=lambda kv: int(kv[0]))):
        s = [p["samples"] for p in curve]
        ax.plot(s, [p["train"] for p in curve], color=f"C{i}", label=f"$N_z$ = {Z}, train")
        ax.plot(s, [p["test"] for p in curve], color=f"C{i}", linestyle="--",
                label=f"$N_z$ = {Z}, test")
    ax.set_xscale("log")
    ax.set_xlabel("training samples evaluated")
    ax.set_ylabel("lower bound (ELBO), nats per image")
    ax.set_title("Frey Face, Kingma & Welling (2014) Fig. 2 setup, npvae")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.savefig(path, dpi=110)


def manifold(model, path):
    from npvae.plots import plot_manifold

    def decode(z):
        return model.likelihood_.mean(model.decode(z.astype(np.float32)), model.params_)

    return plot_manifold(decode, (28, 20), path, n=15,
                         title="Frey Face manifold, Z = 2 (inverse-CDF grid)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=float, default=1e7, help="training samples per model")
    p.add_argument("--latent", default="2,5,10,20", help="latent sizes")
    p.add_argument("--out", default="runs/kingma_welling_fig2", help="checkpoints and curves")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    npvae.set_num_threads(args.threads)
    ds = load_dataset("frey")
    X, X_test = ds.as_float("train", "float32"), ds.as_float("test", "float32")
    out = Path(args.out)
    results = {}
    for Z in (int(z) for z in args.latent.split(",")):
        curve, model = run_one(Z, X, X_test, int(args.samples), out)
        results[str(Z)] = curve
        if Z == 2:
            manifold(model, ROOT / "docs" / "figures" / "frey-manifold.png")
    info = {"setup": {**SETUP, "likelihood_params": SETUP["likelihood_params"],
                      "learning_rate": LEARNING_RATE, "samples": int(args.samples)},
            "cpu": os.uname().machine, "curves": results}
    (ROOT / "benchmarks" / "results" / "kingma_welling_fig2.json").write_text(
        json.dumps(info, indent=1))
    figure(results, ROOT / "docs" / "figures" / "frey-fig2.png")


if __name__ == "__main__":
    main()
