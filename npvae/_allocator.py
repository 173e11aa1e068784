"""Keep freed memory in the process, so that a step's arrays do not fault in fresh pages.

A training step allocates the same arrays every step (at batch 1024 the 784-400-20 VAE's
activations and their gradients are about 19 MB in a dozen arrays) and frees them at its
end.  glibc's ``malloc`` serves a block of at least ``M_MMAP_THRESHOLD`` (128 KiB to
start with, then moved by what the program frees) with a fresh ``mmap``, and gives free
memory at the top of its heap back to the kernel beyond ``M_TRIM_THRESHOLD``.  Either way
the next step touches pages the kernel must map and zero again: on the 2-core development
machine a batch-1024 epoch took about 3,700 page faults a step, and its steps ran 1.25x
faster without them (docs/11-optimisation.md#memory-the-step-gives-back).  JAX and PyTorch
keep such memory in allocators of their own.

:func:`keep_freed_memory` asks glibc to serve blocks below 32 MiB from its heap and to keep
64 MiB free at the heap's top (``mallopt``), once per process, when training starts.  The
cost is memory the process holds on to: at most the pad, plus what the heap's free blocks
hold.  It does nothing where the C library is not glibc, when ``NPVAE_MALLOC_TUNING=0``, or
when the user tuned glibc's ``malloc`` already (``MALLOC_*_`` variables, ``GLIBC_TUNABLES``).
"""
from __future__ import annotations

import ctypes
import os
import platform

M_TOP_PAD = -2                 # mallopt's parameter numbers, from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20      # glibc's largest allowed value on 64-bit (HEAP_MAX_SIZE / 2)
TOP_PAD = 64 << 20

_done = None


def keep_freed_memory():
    """Tune glibc's ``malloc`` as the module docstring says; returns whether it did (once
    per process: later calls return the first answer)."""
    global _done
    if _done is None:
        _done = False
        if (os.environ.get("NPVAE_MALLOC_TUNING") != "0" and not _user_tuned()
                and platform.libc_ver()[0] == "glibc"):
            try:
                mallopt = ctypes.CDLL("libc.so.6").mallopt
            except (OSError, AttributeError):
                return False
            mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
            _done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                         and mallopt(M_TOP_PAD, TOP_PAD))
    return _done


def _user_tuned():
    """Whether the environment sets glibc's ``malloc`` parameters itself."""
    return ("glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "")
            or any(k.startswith("MALLOC_") and k.endswith("_") for k in os.environ))
