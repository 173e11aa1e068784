"""Two versions of npvae side by side: the training-step throughput of checkout A
against checkout B, in interleaved rounds, as ratios.

Each round runs one fresh worker process per version (``PYTHONPATH`` set to the
checkout) for every configuration, alternating which goes first; the reported
number is the median over rounds of the per-round ratio B/A (> 1: B faster).
Use it to measure one change: ``git worktree add /tmp/before <commit>``, then

    python -m benchmarks.ab /tmp/before . --batches 1,16,128,1024 --rounds 7

Both checkouts need the same public training-step API
(``npvae.training.train_step``).  Report the CPU beside the numbers (printed).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

WORKER = r"""
import json, sys, time
from npvae._blas import select_openblas_kernels
select_openblas_kernels()           # before NumPy loads OpenBLAS, as the npvae command does
import numpy as np, npvae
from npvae.optim import Adam
from npvae.training import train_step
batch, dtype, seconds, model = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
assert npvae.__file__.startswith(sys.argv[6]), f"imported {npvae.__file__}, not {sys.argv[6]}"
npvae.set_num_threads(int(sys.argv[5]))
rng = np.random.default_rng(0)
if model == "vae":
    m = npvae.VAE(n_latent=20, hidden_sizes=(400,), dtype=dtype, random_state=0)
elif model == "burda":          # Burda et al.'s one-level model: 784-200-200-50, tanh
    m = npvae.VAE(n_latent=50, hidden_sizes=(200, 200), activation="tanh", dtype=dtype,
                  random_state=0)
else:
    m = npvae.HierarchicalVAE(latent_sizes=(100, 50), hidden_sizes=((200, 200), (100, 100)),
                              dtype=dtype, random_state=0)
m.initialize(784)
x = (rng.random((batch, 784)) < 0.3).astype(dtype)
eps = [m.draw_noise(batch, random_state=i) for i in range(8)]
opt = Adam(1e-3)
for i in range(20):
    train_step(m, x, eps[i % 8], opt)
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < seconds:
    train_step(m, x, eps[n % 8], opt)
    n += 1
print(json.dumps(n * batch / (time.perf_counter() - t0)))
"""


def run(src, batch, dtype, seconds, model, threads):
    src = os.path.abspath(src)
    env = dict(os.environ, PYTHONPATH=src)
    # run inside the checkout: ``python -c`` puts the working directory first on sys.path,
    # so a worker started elsewhere (e.g. in the other checkout) would import that npvae
    out = subprocess.run([sys.executable, "-c", WORKER, str(batch), dtype, str(seconds), model,
                          str(threads), src], env=env, cwd=src, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", help="checkout A (before)")
    p.add_argument("b", help="checkout B (after)")
    p.add_argument("--batches", default="1,16,128,1024")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--models", default="vae", help="vae (784-400-20 ReLU), burda "
                   "(784-200-200-50 tanh), hvae (two levels); comma-separated")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=1.0, help="timed seconds per measurement")
    args = p.parse_args(argv)
    print(f"CPU: {platform.processor() or platform.machine()}; "
          f"{_cpu_name()}; threads {args.threads}; {args.dtype}")
    print(f"{'model':>6} {'batch':>6} {'A ex/s':>10} {'B ex/s':>10} {'B/A':>6}  per-round B/A")
    for model in args.models.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            ratios, ta, tb = [], [], []
            for r in range(args.rounds):
                order = [("a", args.a), ("b", args.b)][::(1 if r % 2 == 0 else -1)]
                got = {k: run(src, batch, args.dtype, args.seconds, model, args.threads)
                       for k, src in order}
                ta.append(got["a"])
                tb.append(got["b"])
                ratios.append(got["b"] / got["a"])
            print(f"{model:>6} {batch:>6} {statistics.median(ta):>10,.0f} "
                  f"{statistics.median(tb):>10,.0f} {statistics.median(ratios):>6.3f}  "
                  + " ".join(f"{x:.2f}" for x in ratios), flush=True)


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    flags = open("/proc/cpuinfo").read()
                    simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"
                    return line.split(":", 1)[1].strip() + f" ({simd})"
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
