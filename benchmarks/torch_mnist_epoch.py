"""Train the PyTorch reference VAE on MNIST the way ``npvae train`` does, for the memory benchmark.

``python -m benchmarks.torch_mnist_epoch --epochs 1 --threads 1`` mirrors
``npvae train --dataset mnist --epochs 1``: MNIST from ``$NPVAE_DATA/mnist``
(the IDX files), 10,000 training images held out for validation, dynamic
binarisation of every batch (``x ~ Bernoulli(pixel/255)``; the validation
and test sets binarised once), the 784-400-20 VAE of
:mod:`benchmarks.reference_models` in float32, Adam 1e-3, batches of 100,
the decoder's output bias at the logit of the pixel mean, a validation ELBO
after the epoch and a test ELBO at the end.  It prints one JSON line with the
ELBOs, the seconds and its own peak RSS.  Only NumPy and PyTorch are
imported (not npvae), so the peak RSS is PyTorch's.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import struct
import sys
import time

import numpy as np

from . import reference_models as R


def read_idx_images(path):
    """An IDX3 ``.gz`` image file as ``(N, rows·cols)`` uint8."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    _, n, rows, cols = struct.unpack(">IIII", data[:16])
    return np.frombuffer(data, np.uint8, offset=16).reshape(n, rows * cols)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch = R.import_torch()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = os.environ.get("NPVAE_DATA")
    if not root:
        print(json.dumps({"skipped": "skipped: NPVAE_DATA is not set"}))
        return 0
    t_start = time.perf_counter()
    folder = os.path.join(root, "mnist")
    x_all = read_idx_images(os.path.join(folder, "train-images-idx3-ubyte.gz"))
    x_test = read_idx_images(os.path.join(folder, "t10k-images-idx3-ubyte.gz"))
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(x_all))
    x_train, x_valid = x_all[order[10000:]], x_all[order[:10000]]
    to_binary = lambda x, r: (r.random(x.shape) < x / 255.0).astype(np.float32)  # noqa: E731
    x_valid = to_binary(x_valid, np.random.default_rng(1))
    x_test = to_binary(x_test, np.random.default_rng(2))

    spec = R.vae_spec()
    params = R.init_params(spec, args.seed, "float32")
    p = np.clip(x_train[:10000].mean(axis=0) / 255.0, 1e-3, 1 - 1e-3)
    params["dec_out"] = (params["dec_out"][0], np.log(p / (1 - p)).astype(np.float32))
    module, _, step = R.build_torch(spec, params, "float32")

    def elbo(x):
        total = 0.0
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for s in range(0, len(x), 2048):
                xb = torch.from_numpy(x[s:s + 2048])
                eps = torch.randn(xb.shape[0], 20, generator=g)
                total += float(module(xb, [eps])) * xb.shape[0]
        return -total / len(x)

    t0 = time.perf_counter()
    for _ in range(args.epochs):
        perm = rng.permutation(len(x_train))                   # shuffled every epoch
        for s in range(0, len(x_train), args.batch_size):
            xb = torch.from_numpy(to_binary(x_train[perm[s:s + args.batch_size]], rng))
            eps = torch.from_numpy(rng.standard_normal((xb.shape[0], 20), dtype=np.float32))
            step(xb, [eps])
        val = elbo(x_valid)
    train_seconds = time.perf_counter() - t0
    test = elbo(x_test)
    print(json.dumps({"val_elbo": val, "test_elbo": test, "train_seconds": train_seconds,
                      "total_seconds": time.perf_counter() - t_start,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
