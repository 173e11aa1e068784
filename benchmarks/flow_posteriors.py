"""Normalising-flow posteriors against the diagonal Gaussian at equal schedule and at equal
cost, on dynamically binarised MNIST (docs/18-normalising-flows.md).

    NPVAE_DATA=/path/to/data python -m benchmarks.flow_posteriors run --run-dir runs/flows
    python -m benchmarks.flow_posteriors summarise --run-dir runs/flows

The models (784-400-20 ReLU, Bernoulli, Adam 1e-3, batch 100, float32, one thread, seed 0,
50,000 training images and 10,000 for validation; ``npvae train``):

* ``diagonal``: the diagonal Gaussian posterior;
* ``planar``: the same encoder with ``--n-flows`` planar flows (default 10);
* ``iaf``: the same with ``--n-iaf`` inverse autoregressive flow steps (default 2).

*Equal schedule*: each trains ``--epochs`` epochs.  *Equal cost*: a flow's step costs more
than the diagonal's, so the diagonal model is also scored after as many epochs as the same
training time would buy it: ``run`` first times one training step of each model side by side
(``--timing-steps`` steps, 5 interleaved rounds, median, one thread: ``step-times.json``)
and trains the diagonal model on to ``round(epochs × t_flow / t_diagonal)`` epochs for each
flow.  Each score is of ``best.npz``, the best validation ELBO so far: the test ELBO and the
importance-sampled ``log p(x)`` with ``--k-eval`` samples on all 10,000 test images
(``<run-dir>/<model>/evaluation-test.json``; the diagonal model's at more epochs in
``<run-dir>/diagonal/at-<epochs>/``).  Everything resumes: give the same command again.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

from .simplex_latents import train_and_score

COMMON = ["--latent", "20", "--hidden", "400"]


def flags(name, n_planar, n_iaf):
    """The ``npvae train`` flags of model ``name``."""
    extra = {"diagonal": [], "planar": ["--posterior", "planar", "--n-flows", str(n_planar)],
             "iaf": ["--posterior", "iaf", "--n-flows", str(n_iaf)]}[name]
    return COMMON + extra


def make(name, n_planar, n_iaf):
    """The estimator ``flags(name)`` trains (for timing its step)."""
    import npvae
    post = {"diagonal": ("diagonal", None), "planar": ("planar", {"n_flows": n_planar}),
            "iaf": ("iaf", {"n_flows": n_iaf})}[name]
    return npvae.VAE(n_latent=20, hidden_sizes=(400,), posterior=post[0],
                     posterior_params=post[1], dtype="float32", random_state=0)


def step_times(names, n_planar, n_iaf, steps, rounds=5, batch=100):
    """Seconds per training step of each model (one thread, float32, batch 100, median of
    ``rounds`` interleaved rounds of ``steps`` steps), and each one's ratio to the diagonal's
    (the median of the per-round ratios)."""
    import npvae
    from npvae.optim import Adam
    from npvae.training import train_step

    npvae.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = (rng.random((batch, 784)) < 0.13).astype(np.float32)
    models = {n: make(n, n_planar, n_iaf).initialize(784) for n in names}
    opts = {n: Adam(1e-3) for n in names}
    noise = {n: [m.draw_noise(batch) for _ in range(4)] for n, m in models.items()}
    for n, m in models.items():                                   # compile, warm up
        for i in range(3):
            train_step(m, x, noise[n][i % 4], opts[n])
    per_round = {n: [] for n in names}
    for _ in range(rounds):
        for n, m in models.items():
            t0 = time.perf_counter()
            for i in range(steps):
                train_step(m, x, noise[n][i % 4], opts[n])
            per_round[n].append((time.perf_counter() - t0) / steps)
    return {n: {"seconds_per_step": statistics.median(t),
                "ratio_to_diagonal": statistics.median(
                    a / b for a, b in zip(t, per_round["diagonal"]))}
            for n, t in per_round.items()}


def run(args):
    os.makedirs(args.run_dir, exist_ok=True)
    path = os.path.join(args.run_dir, "step-times.json")
    if os.path.exists(path):
        with open(path) as f:
            times = json.load(f)
    else:
        times = step_times(["diagonal", "planar", "iaf"], args.n_planar, args.n_iaf,
                           args.timing_steps)
        with open(path, "w") as f:
            json.dump(times, f, indent=2)
    print("step times: " + ", ".join(f"{n} {t['seconds_per_step'] * 1e3:.2f} ms "
                                     f"({t['ratio_to_diagonal']:.2f}x)" for n, t in times.items()),
          flush=True)
    for name in args.models.split(","):
        train_and_score(args.run_dir, name, args.epochs, args.k_eval,
                        flags(name, args.n_planar, args.n_iaf))
    if "diagonal" in args.models.split(","):
        for n in sorted(equal_cost_epochs(times, args.epochs).values()):
            train_and_score(args.run_dir, "diagonal", n, args.k_eval, flags("diagonal", 0, 0),
                            os.path.join(args.run_dir, "diagonal", f"at-{n}"))
    return 0


def equal_cost_epochs(times, epochs):
    """``{flow: epochs of the diagonal model that cost what the flow's epochs cost}``."""
    return {n: max(epochs, round(epochs * t["ratio_to_diagonal"]))
            for n, t in times.items() if n != "diagonal"}


def summarise(args):
    with open(os.path.join(args.run_dir, "step-times.json")) as f:
        times = json.load(f)
    extra = equal_cost_epochs(times, args.epochs)
    rows = ["| model | epochs | step time (× diagonal) | test ELBO | test NLL (K) | active units |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    found = {}
    entries = [("diagonal", args.epochs, "diagonal"), ("planar", args.epochs, "planar"),
               ("iaf", args.epochs, "iaf")]
    entries += [(f"diagonal at {flow}'s cost", n, os.path.join("diagonal", f"at-{n}"))
                for flow, n in extra.items()]
    for label, n, folder in entries:
        p = os.path.join(args.run_dir, folder, "evaluation-test.json")
        if not os.path.exists(p):
            continue
        with open(p) as f:
            s = json.load(f)
        found[label] = s
        t = times[label.split()[0] if label.startswith("diagonal") else label]
        rows.append(f"| {label} | {n} ({s.get('parameters', '').rsplit('epoch ', 1)[-1].rstrip(')')}"
                    f" kept) | {t['ratio_to_diagonal']:.2f} | −{-s['elbo']:.2f} ± {s['elbo_se']:.2f} "
                    f"| {s['nll']:.2f} ± {s['nll_se']:.2f} ({s['n_importance']}) | "
                    f"{s.get('active_units', '–')} |")
    text = "\n".join(rows) + "\n"
    print(text)
    if args.table:
        with open(args.table, "w") as f:
            f.write(text)
    return 0 if found else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["run", "summarise"])
    ap.add_argument("--run-dir", default="runs/flows")
    ap.add_argument("--models", default="diagonal,planar,iaf")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--n-planar", type=int, default=10)
    ap.add_argument("--n-iaf", type=int, default=2)
    ap.add_argument("--k-eval", type=int, default=5000)
    ap.add_argument("--timing-steps", type=int, default=200)
    ap.add_argument("--table", default=None, help="markdown file (default: print only)")
    args = ap.parse_args(argv)
    bad = [n for n in args.models.split(",") if n not in ("diagonal", "planar", "iaf")]
    if bad:
        ap.error(f"unknown model {bad[0]!r}; choose from diagonal, planar, iaf")
    return run(args) if args.command == "run" else summarise(args)


if __name__ == "__main__":
    raise SystemExit(main())
