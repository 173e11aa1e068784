"""Maximum error of npvae.fastmath's float32 functions over every finite float32 input.

    python -m benchmarks.fastmath_error [--threads 2] [--json PATH]

For each function the error of the float32 result against the float64 libm
value, in units in the last place of the float32 result (ulp at the true value),
over all 2^31 − 2^23 finite inputs of each sign that lie in the function's
domain (log1p: 0 ≤ y ≤ 1, the kernels' use).  Where the true value is below the
smallest normal float32 the error is reported in absolute terms instead (the
spacing there is fixed, 2^−149).  Takes a few minutes per function per thread.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
from numba import njit, prange

import npvae
from npvae import fastmath as F

_TINY = 2.0 ** -126


def _make(fn, ref):
    @njit(parallel=True, error_model="numpy")
    def scan(lo, hi, sign, n_chunks):
        worst = np.zeros(n_chunks)
        worst_x = np.zeros(n_chunks)
        worst_abs = np.zeros(n_chunks)
        step = (hi - lo + n_chunks - 1) // n_chunks
        for c in prange(n_chunks):
            bits = np.empty(1, np.int32)
            as_float = bits.view(np.float32)
            w, wx, wa = 0.0, 0.0, 0.0
            for b in range(lo + c * step, min(hi, lo + (c + 1) * step)):
                bits[0] = b
                x = np.float32(as_float[0] * sign)         # float32: the polynomial path
                y = np.float64(fn(x))
                r = ref(np.float64(x))
                if math.isinf(np.float32(r)):           # overflows float32: must be inf
                    if y != np.float32(r):
                        w, wx = np.inf, x
                    continue
                if abs(r) < _TINY or not math.isfinite(r):
                    if math.isfinite(r) and abs(y - r) > wa:
                        wa = abs(y - r)
                    continue
                m, e = math.frexp(abs(r))
                err = abs(y - r) / math.ldexp(1.0, e - 24)
                if err > w:
                    w, wx = err, x
            worst[c], worst_x[c], worst_abs[c] = w, wx, wa
        return worst, worst_x, worst_abs
    return scan


@njit
def _exp(x):
    return F.exp(x)


@njit
def _expm1(x):
    return F.expm1(x)


@njit
def _log1p(x):
    return F.log1p(x)


@njit
def _tanh(x):
    return F.tanh(x)




ONE_BITS = 0x3F800000          # the bits of 1.0f
INF_BITS = 0x7F800000
#: name -> (function, reference (the libm function that float64 arguments get), [(first bits,
#: end bits, sign)])
FUNCTIONS = {
    "exp": (_exp, F._libm_exp, [(0, INF_BITS, 1.0), (0, INF_BITS, -1.0)]),
    "expm1": (_expm1, F._libm_expm1, [(0, INF_BITS, 1.0), (0, INF_BITS, -1.0)]),
    "log1p": (_log1p, F._libm_log1p, [(0, ONE_BITS + 1, 1.0)]),
    "tanh": (_tanh, F._libm_tanh, [(0, INF_BITS, 1.0), (0, INF_BITS, -1.0)]),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--functions", default=",".join(FUNCTIONS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    npvae.set_num_threads(args.threads)
    out = {}
    for name in args.functions.split(","):
        fn, ref, ranges = FUNCTIONS[name]
        scan = _make(fn, ref)
        t0 = time.perf_counter()
        ulp, at, absolute = 0.0, 0.0, 0.0
        for lo, hi, sign in ranges:
            w, wx, wa = scan(lo, hi, sign, 256)
            if w.max() > ulp:
                ulp, at = float(w.max()), float(wx[w.argmax()])
            absolute = max(absolute, float(wa.max()))
        out[name] = {"max_ulp": ulp, "at": at, "max_abs_below_normal": absolute,
                     "seconds": time.perf_counter() - t0}
        print(f"{name:6s} max error {ulp:.3f} ulp (at x = {at:.9g}); results below the smallest "
              f"normal: max abs error {absolute:.3g}; {time.perf_counter() - t0:.0f} s", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
