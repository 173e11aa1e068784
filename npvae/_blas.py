"""Pick OpenBLAS's AVX-512 kernels where its own CPU detection misses them.

OpenBLAS (the BLAS inside NumPy's wheels) chooses its kernels when NumPy is
first imported.  On AMD CPUs with AVX-512 (Zen 4) seen through a virtual
machine it can fall back to its Haswell (AVX2) kernels: on the 2-core AMD EPYC
this project is developed on, float32 matrix products ran at ~100 GFLOP/s on
one thread with the Haswell kernels and ~190 GFLOP/s with ``SkylakeX``
(``benchmarks/``).  OpenBLAS reads ``OPENBLAS_CORETYPE`` once, at load time, so
this only works when npvae is imported before NumPy (the ``npvae`` command,
``python -m npvae``, the benchmarks).  It never overrides a value the user
set, does nothing when ``NPVAE_BLAS_TUNING=0``, and does nothing unless the
CPU reports every AVX-512 subset the SkylakeX kernels use.
"""
from __future__ import annotations

import os
import sys

_NEEDED = {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}


def _cpu():
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read(65536)
    except OSError:
        return "", set()
    vendor, flags = "", set()
    for line in text.splitlines():
        if line.startswith("vendor_id") and not vendor:
            vendor = line.split(":", 1)[1].strip()
        elif line.startswith("flags") and not flags:
            flags = set(line.split(":", 1)[1].split())
        if vendor and flags:
            break
    return vendor, flags


def select_openblas_kernels():
    """Set ``OPENBLAS_CORETYPE=SkylakeX`` when it is safe and useful; returns what was set."""
    if os.environ.get("NPVAE_BLAS_TUNING") == "0" or "OPENBLAS_CORETYPE" in os.environ:
        return None
    if "numpy" in sys.modules:          # too late: OpenBLAS has chosen already
        return None
    vendor, flags = _cpu()
    if vendor == "AuthenticAMD" and _NEEDED <= flags:
        os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
        return "SkylakeX"
    return None
