"""Time npvae from a fresh interpreter to its first training steps.

``python -m benchmarks.coldstart --model vae --dtype float32 --batch 128 --threads 1``
prints one JSON line: seconds to ``import npvae``, to build the model, for the
first ``train_step`` (which compiles, or loads from the cache, every Numba
kernel the step uses, for this dtype), for the second one, and the median of
the next steps.

:mod:`benchmarks.throughput` runs it twice with ``NUMBA_CACHE_DIR`` pointed at
a new empty folder: the first run compiles everything (*cold compile*), the
second finds the kernels that run just cached (*warm start*).  It does not set
``NUMBA_CACHE_DIR`` itself: run it by hand with or without one.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("vae", "hvae"), default="vae")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20, help="steps after the first two")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    import numpy as np

    import npvae
    from npvae.optim import Adam
    from npvae.training import train_step
    t_import = time.perf_counter() - t0

    npvae.set_num_threads(args.threads)
    t0 = time.perf_counter()
    common = dict(activation="relu", likelihood="bernoulli", dtype=args.dtype, random_state=0)
    if args.model == "vae":
        model = npvae.VAE(n_latent=20, hidden_sizes=(400,), **common).initialize(784)
    elif hasattr(npvae, "HierarchicalVAE"):
        model = npvae.HierarchicalVAE(latent_sizes=(20, 10), hidden_sizes=((400,), (200,)),
                                      **common).initialize(784)
    else:
        print(json.dumps({"skipped": "skipped: npvae.HierarchicalVAE does not exist yet"}))
        return 0
    optimizer = Adam(1e-3)
    x = (np.random.default_rng(0).random((args.batch, 784)) < 0.3).astype(args.dtype)
    eps = [model.draw_noise(args.batch) for _ in range(args.steps + 2)]
    t_build = time.perf_counter() - t0

    times = []
    for e in eps:
        t0 = time.perf_counter()
        train_step(model, x, e, optimizer)
        times.append(time.perf_counter() - t0)
    print(json.dumps({
        "model": args.model, "dtype": args.dtype, "batch": args.batch, "threads": args.threads,
        "numba_cache_dir": os.environ.get("NUMBA_CACHE_DIR"),
        "import_seconds": t_import, "build_seconds": t_build,
        "first_step_seconds": times[0], "second_step_seconds": times[1],
        "steady_step_seconds": statistics.median(times[2:]),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
