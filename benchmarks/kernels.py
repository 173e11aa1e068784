"""Each compiled elementwise kernel against a copy of the same bytes.

    python -m benchmarks.kernels [--rows 1024] [--threads 1] [--dtype float32]

For every kernel of the hot path (bias + activation forward and backward per
activation, the Bernoulli likelihood, reparameterisation, the KL to the
standard normal, Adam) the median time of repeated calls at batch ``--rows``
with the widths of the 784-400-20 VAE, and the same bytes moved by
``np.copyto`` (read the inputs, write the outputs): the ratio says how far a
kernel is from the speed of memory.  Prints the CPU and its SIMD level.
Times are medians of ``--repeat`` calls after a warm-up; compare them only
within one run.
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

import npvae
from npvae.distributions import diagonal_gaussian_numba as G
from npvae.distributions.likelihoods import kernels_numba as LK
from npvae.layers import activations_numba as A
from npvae.optim_numba import adam_folded_step


def median_time(fn, repeat):
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def copy_time(n_bytes, repeat):
    """np.copyto of ``n_bytes`` (read n, write n): the bytes a kernel reading and
    writing that much must move."""
    half = max(n_bytes // 2, 8)
    src = np.ones(half // 8)
    dst = np.empty_like(src)
    return median_time(lambda: np.copyto(dst, src), repeat)


def cpu_line():
    from numpy.lib._utils_impl import _opt_info  # numpy's own "found" SIMD list
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}; numpy SIMD: {_opt_info()}"


def cases(rows, dtype):
    rng = np.random.default_rng(0)
    r = lambda *s: rng.standard_normal(s).astype(dtype)
    H, D, Z = 400, 784, 20
    out = []
    for name in ("relu", "tanh", "sigmoid", "softplus"):
        a, b = r(rows, H), r(H)
        h = np.empty_like(a)
        out.append((f"{name} forward {rows}x{H}", 3 * a.nbytes,
                    lambda a=a, b=b, name=name, h=h: A.bias_activation_forward(a, b, name, h)))
        hh = A.bias_activation_forward(a, b, name)[0]
        dh, da = r(rows, H), np.empty_like(a)
        out.append((f"{name} backward {rows}x{H}", 3 * a.nbytes,
                    lambda dh=dh, hh=hh, name=name, da=da:
                    A.bias_activation_backward(dh, (hh, name, True), da)))
    logits = r(1, rows, D)
    x = (rng.random((rows, D)) < 0.3).astype(dtype)
    out.append((f"bernoulli forward {rows}x{D}", 3 * logits.nbytes,
                lambda: LK.bernoulli_forward(logits, x)))
    cache = LK.bernoulli_forward(logits, x)[1]
    dlp = r(1, rows)
    out.append((f"bernoulli backward {rows}x{D}", 2 * logits.nbytes,
                lambda: LK.bernoulli_backward(dlp, cache)))
    mu, lv, eps = r(rows, Z), r(rows, Z), r(1, rows, Z)
    out.append((f"reparameterise forward {rows}x{Z}", 5 * mu.nbytes,
                lambda: G.reparameterize_forward(mu, lv, eps)))
    out.append((f"KL forward {rows}x{Z}", 3 * mu.nbytes, lambda: G.kl_standard_normal_forward(mu, lv)))
    P = 784 * 400 + 400 + 400 * 40 + 40 + 20 * 400 + 400 + 400 * 784 + 784
    theta, g = r(P), r(P)
    m, v = np.zeros_like(theta), np.ones_like(theta)
    out.append((f"Adam {P} parameters", 7 * theta.nbytes,
                lambda: adam_folded_step(theta, g, m, v, 1e-3, 0.9, 0.999, 1e-8)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    npvae.set_num_threads(args.threads)
    print(f"CPU: {cpu_line()}; {args.threads} thread(s), {args.dtype}")
    results = []
    for name, n_bytes, fn in cases(args.rows, np.dtype(args.dtype)):
        t, c = median_time(fn, args.repeat), copy_time(n_bytes, args.repeat)
        results.append({"kernel": name, "ms": t * 1e3, "copy_ms": c * 1e3, "copy_over_kernel": c / t})
        print(f"  {name:34s} {t * 1e3:8.3f} ms   copy {c * 1e3:7.3f} ms   {c / t:6.0%} of copy speed")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu": cpu_line(), "settings": vars(args), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
