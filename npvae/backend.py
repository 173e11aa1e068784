"""The compute-backend switch and the thread-count setting.

Every elementwise formula on the training path exists twice with one contract:
a readable NumPy reference and a Numba ``@njit`` kernel (``npvae.kernels``).
This module decides which one runs.  Matrix products always go through
NumPy's BLAS on both backends.

>>> import npvae
>>> npvae.set_backend("numpy")          # the reference implementation
>>> with npvae.use_backend("numba"):    # temporarily the compiled kernels
...     pass
"""
from __future__ import annotations

import contextlib
import os

BACKENDS = ("numpy", "numba")

# Numba's parallel loops run on an OpenMP runtime whose idle workers spin
# (busy-wait) after every loop, while OpenBLAS's threads need the same cores for
# the next matrix product.  On the 2-core development machine this made two
# threads 2-8x *slower* than one (batch 16: 1,805 against 14,276 examples/s);
# with passive waiting two threads are faster (18,510).  The runtime reads the
# variable when it first starts, which is after this import; a value the user
# set is kept.  This applies to the whole process (other OpenMP users included).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:  # Numba is a hard dependency, but keep the reference usable without it.
    import numba  # noqa: F401

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only on broken installs
    HAVE_NUMBA = False

_state = {"name": os.environ.get("NPVAE_BACKEND", "numba" if HAVE_NUMBA else "numpy")}


def get_backend() -> str:
    """Name of the active backend, ``"numpy"`` or ``"numba"``."""
    return _state["name"]


def set_backend(name: str) -> None:
    """Select the backend for every kernel: ``"numpy"`` or ``"numba"``."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {BACKENDS}")
    if name == "numba" and not HAVE_NUMBA:
        raise ValueError("backend 'numba' requested but numba is not installed")
    _state["name"] = name


@contextlib.contextmanager
def use_backend(name: str):
    """Context manager: run the enclosed block on backend ``name``."""
    previous = get_backend()
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


def use_numba() -> bool:
    """True when the Numba kernels are selected (used by the dispatchers)."""
    return _state["name"] == "numba"


def set_num_threads(n_threads: int) -> None:
    """One setting for the thread count of Numba's parallel loops and of BLAS.

    Uses ``threadpoolctl`` (installed with scikit-learn) for the BLAS library
    that NumPy loaded, and ``numba.set_num_threads`` for ``prange`` loops.
    """
    n_threads = int(n_threads)
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n_threads)
    _state["threads"] = n_threads
    if HAVE_NUMBA:
        import numba as nb

        nb.set_num_threads(min(n_threads, nb.config.NUMBA_NUM_THREADS))


def get_num_threads() -> int | None:
    """The thread count last set with :func:`set_num_threads` (None: library defaults)."""
    return _state.get("threads")
