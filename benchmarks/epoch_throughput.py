"""Whole training epochs through each library's ordinary loop, side by side, quiet or contended.

``python -m benchmarks.epoch_throughput [--busy-cores 1] [--batches 1,16,128,1024]``

Where :mod:`benchmarks.throughput` times one step, this times what a user
waits for: an epoch of the 784-400-20 ReLU Bernoulli VAE (float32) over the
same ``--examples`` binary images, through

* ``npvae:auto`` — ``VAE.partial_fit`` with npvae's default thread policy
  (:mod:`npvae.threads`), ``npvae:1`` / ``npvae:2`` — the same with
  ``npvae.set_num_threads(n)`` forced;
* ``jax:N`` — a jitted step (:func:`benchmarks.reference_models.build_jax`)
  driven by a Python loop that shuffles with NumPy and draws the noise, the process
  pinned to the first ``N`` CPUs (XLA sizes its pool by the CPUs it may use);
* ``torch:N`` — the eager step of :func:`benchmarks.reference_models.build_torch`.

Each configuration lives in its own worker process (its own thread pools),
compiled and warmed up once; then ``--rounds`` rounds time one epoch of each,
in a new random order every round, so that the machine's noise hits all of
them alike.  An "epoch" is at most ``--max-steps`` steps (:func:`epoch_examples`:
at batch 1, 5,000 examples instead of 60,000, so that a round stays short; the
rows say how many examples they timed).  With ``--busy-cores N``, ``N`` spinning processes hold the last
``N`` CPUs during the timed rounds (:mod:`benchmarks.contention`), as another
program on a user's machine would.  Reported: the median examples/second of
each and the medians of the per-round ratios against ``npvae:1`` and
``jax:<cores>``.  Nothing here asserts anything about speed.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from . import reference_models as R
from .contention import busy_cores

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------ worker
def _worker(framework, threads, data):
    """Serve ``{"cmd": "setup", "batch": B}`` / ``{"cmd": "epoch"}`` lines on stdin."""
    if framework == "jax" and threads != "auto" and int(threads) == 1:
        os.environ["XLA_FLAGS"] = ("--xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1")
    if framework == "jax" and threads != "auto":
        # XLA sizes its pool by the CPUs it may use: the flags alone left "jax:1" on both
        # cores of the development machine (batch 1024: 41,900 ex/s, jax:2 43,400; pinned
        # to one core 22,100), so JAX at N threads is pinned to the first N CPUs
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:int(threads)])
    with np.load(data) as f:
        X_all = f["x"]                                              # (N, D) float32, binary
    spec = R.get_spec("vae")
    params = R.init_params(spec, seed=0)
    rng = np.random.default_rng(0)
    run = None
    if framework == "npvae":
        import npvae
        if threads != "auto":
            npvae.set_num_threads(int(threads))
    elif framework == "torch":
        import torch
        torch.set_num_threads(int(threads))
    for line in sys.stdin:
        req = json.loads(line)
        if req["cmd"] == "setup":
            B = req["batch"]
            X = X_all[:req.get("examples", len(X_all))]
            if framework == "npvae":
                model = npvae.VAE(n_latent=20, hidden_sizes=(400,), activation="relu",
                                  likelihood="bernoulli", dtype="float32", batch_size=B,
                                  random_state=0)

                def run(model=model, X=X):
                    model.partial_fit(X)
                    return {"threads": model.history_[-1].get("threads")}
            elif framework == "jax":
                jax, jnp = R.import_jax()
                state, step = R.build_jax(spec, params)

                def run(B=B, box=[state], step=step, X=X):
                    order = rng.permutation(len(X))
                    st = box[0]
                    for s in range(0, len(X), B):
                        xb = X[order[s:s + B]]
                        st, loss = step(st, xb, [rng.standard_normal((len(xb), 20),
                                                                     dtype=np.float32)])
                    jax.block_until_ready(loss)
                    box[0] = st
                    return {}
            else:
                module, opt, step = R.build_torch(spec, params)

                def run(B=B, step=step, X=X):
                    order = rng.permutation(len(X))
                    for s in range(0, len(X), B):
                        xb = torch.from_numpy(X[order[s:s + B]])
                        step(xb, [torch.from_numpy(rng.standard_normal((len(xb), 20),
                                                                       dtype=np.float32))])
                    return {}
            run()                                        # compile and warm up
            print(json.dumps({"ok": True}), flush=True)
        elif req["cmd"] == "epoch":
            t0 = time.perf_counter()
            extra = run()
            seconds = time.perf_counter() - t0
            print(json.dumps({"seconds": seconds, "examples_per_second": len(X) / seconds,
                              **extra}), flush=True)
        else:
            return


class Worker:
    def __init__(self, name, data):
        framework, threads = name.split(":")
        self.name = name
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        if framework == "jax":
            env["JAX_PLATFORMS"] = "cpu"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.epoch_throughput", "--worker", framework,
             "--worker-threads", threads, "--data", data],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)

    def ask(self, **req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.name} died")
        return json.loads(line)

    def close(self):
        try:
            self.ask(cmd="quit")
        except (RuntimeError, BrokenPipeError, ValueError):
            pass
        self.proc.wait(timeout=30)


# ------------------------------------------------------------------ driver
def _data(n, path):
    from npvae.data import load_dataset
    try:
        ds = load_dataset("mnist", binarization="static", download=False)
        x = ds.as_float("train")[:n].astype(np.float32)
        source = "binarised MNIST (static)"
    except Exception:                                           # no MNIST here
        x = (np.random.default_rng(0).random((n, 784)) < 0.13).astype(np.float32)
        source = "random binary images (MNIST not found)"
    np.savez(path, x=x)
    return source


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", default="1,16,128,1024")
    p.add_argument("--configs", default=None,
                   help="comma-separated FRAMEWORK:THREADS (default npvae:auto,npvae:1,"
                        "npvae:<cores>,jax:<cores>,torch:<cores>)")
    p.add_argument("--busy-cores", type=int, default=0, metavar="N")
    p.add_argument("--examples", type=int, default=60000)
    p.add_argument("--max-steps", type=int, default=5000, metavar="N",
                   help="an epoch is at most N steps (default 5000: batch 1 times 5,000 "
                        "examples)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--gap", type=float, default=0.5, metavar="SECONDS",
                   help="idle pause before each timed epoch (default 0.5)")
    p.add_argument("--out", default=None, help="also write the results as JSON here")
    p.add_argument("--figure", nargs=3, default=None, metavar=("QUIET.json", "BUSY.json", "PNG"),
                   help="instead of measuring: draw two earlier --out results (quiet and "
                        "--busy-cores) side by side")
    p.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                   help="instead of measuring: join earlier --out files (one batch each) "
                        "into the last one named")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--worker-threads", default=None, help=argparse.SUPPRESS)
    p.add_argument("--data", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        return _worker(a.worker, a.worker_threads, a.data)
    if a.figure:
        print(figure(*a.figure))
        return 0
    if a.merge:
        merge(a.merge[:-1], a.merge[-1])
        return 0
    cores = len(os.sched_getaffinity(0))
    configs = (a.configs or f"npvae:auto,npvae:1,npvae:{cores},jax:{cores},torch:{cores}").split(",")
    batches = [int(b) for b in a.batches.split(",")]
    cpu = _cpu_line()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "x.npz")
        source = _data(a.examples, data)
        print(f"# epoch throughput: {cpu}; {a.examples} examples of {source}; "
              f"busy cores: {a.busy_cores}; {a.rounds} rounds", flush=True)
        for B in batches:
            n = epoch_examples(B, a.examples, a.max_steps)
            workers = [Worker(c, data) for c in configs]
            try:
                rounds = []
                # the machine is busy from the start, warm-up epoch included, as a user's is
                with busy_cores(a.busy_cores):
                    for w in workers:
                        w.ask(cmd="setup", batch=B, examples=n)
                    for _ in range(a.rounds):
                        order = list(workers)
                        random.shuffle(order)
                        got = {}
                        for w in order:
                            # the threads of the one timed before (OpenBLAS, XLA) spin a
                            # while after their work: let them fall asleep first
                            time.sleep(a.gap)
                            got[w.name] = w.ask(cmd="epoch")
                        rounds.append(got)
            finally:
                for w in workers:
                    w.close()
            row = dict(_summarise(B, configs, rounds, cores), examples=n)
            results.append(row)
            print(_format(row), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"cpu": cpu, "busy_cores": a.busy_cores, "examples": a.examples,
                       "data": source, "results": results}, f, indent=1)
    return 0


def epoch_examples(batch, examples, max_steps):
    """The examples one timed epoch covers at ``batch``: all ``examples``, or the first
    ``max_steps`` batches of them (at least one batch)."""
    return min(examples, max(1, max_steps) * batch)


def _summarise(B, configs, rounds, cores):
    rate = {c: statistics.median(r[c]["examples_per_second"] for r in rounds) for c in configs}
    ratio = {}
    for ref in ("npvae:1", f"jax:{cores}"):
        if ref in configs:
            for c in configs:
                if c != ref:
                    ratio[f"{c}/{ref}"] = statistics.median(
                        r[c]["examples_per_second"] / r[ref]["examples_per_second"]
                        for r in rounds)
    threads = {c: [r[c].get("threads") for r in rounds] for c in configs if c.startswith("npvae")}
    return {"batch": B, "examples_per_second": rate, "ratios": ratio, "threads": threads}


def _format(row):
    rates = "  ".join(f"{c} {v:,.0f}/s" for c, v in row["examples_per_second"].items())
    ratios = "  ".join(f"{k} {v:.2f}" for k, v in row["ratios"].items())
    return (f"batch {row['batch']:>5} ({row['examples']:,} examples): {rates}\n"
            f"             {ratios}")


def figure(quiet_path, busy_path, png):
    """Every configuration's epoch speed by batch, quiet beside one core busy, as the
    median of its per-round ratios to npvae's own single thread (linear axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    for path in (quiet_path, busy_path):
        with open(path) as f:
            panels.append(json.load(f))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    colors = {"npvae:auto": "#1f77b4", "npvae:2": "#9ecae1", "jax:2": "#2ca02c",
              "torch:2": "#ee4c2c"}
    for ax, res in zip(axes, panels):
        rows = res["results"]
        names = [c for c in colors if any(c in r["examples_per_second"] for r in rows)]
        xs = np.arange(len(rows))
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            # per-round medians; a configuration a row did not run (PyTorch at batch 1) is a gap
            vals = [r["ratios"].get(f"{name}/npvae:1", np.nan) for r in rows]
            bars = ax.bar(xs + (i - (len(names) - 1) / 2) * width, vals, width,
                          label=name.replace("npvae:auto", "npvae (default policy)")
                          .replace(":2", ", 2 threads"), color=colors[name])
            ax.bar_label(bars, labels=["" if np.isnan(v) else f"{v:.2f}" for v in vals],
                         fontsize=7)
        ax.axhline(1.0, color="k", lw=1)
        ax.set_xticks(xs, [str(r["batch"]) for r in rows])
        ax.set_xlabel("batch size")
        busy = res["busy_cores"]
        ax.set_title("quiet" if not busy else f"{busy} core{'s' if busy > 1 else ''} kept busy "
                     "by another process", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("epoch examples/s over npvae's one thread")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.suptitle(f"Whole training epochs, {panels[0]['cpu']}", fontsize=10)
    fig.tight_layout()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4,
               frameon=False)
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return png


def merge(paths, out):
    """One results file from several runs of single batches (``--batches B`` each, so
    that every quiet window stays short); the first file's header is kept."""
    runs = []
    for path in paths:
        with open(path) as f:
            runs.append(json.load(f))
    merged = dict(runs[0], results=sorted((r for run in runs for r in run["results"]),
                                          key=lambda r: r["batch"]))
    with open(out, "w") as f:
        json.dump(merged, f, indent=1)
    return merged


def _cpu_line():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats
        simd = ("AVX512_SKX" if feats.get("AVX512_SKX") else
                "AVX2" if feats.get("AVX2") else "SSE")
    except ImportError:
        simd = "?"
    return f"{model}, {len(os.sched_getaffinity(0))} CPUs, SIMD {simd}"


if __name__ == "__main__":
    sys.exit(main())
