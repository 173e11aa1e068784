"""The compute-backend switch and the thread-count setting.

Every elementwise formula on the training path exists twice with one contract:
a readable NumPy reference and a Numba ``@njit`` twin in a ``*_numba`` module beside it
(``npvae.layers``, ``npvae.distributions``).
This module decides which one runs.  Matrix products always go through
NumPy's BLAS on both backends.

>>> import npvae
>>> npvae.set_backend("numpy")          # the reference implementation
>>> with npvae.use_backend("numba"):    # temporarily the compiled kernels
...     pass
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import os

BACKENDS = ("numpy", "numba")


def _prepare_openmp():
    """``OMP_WAIT_POLICY=PASSIVE`` unless the user set it, before the compiled kernels
    (and so Numba's OpenMP runtime) first load.

    Numba's parallel loops run on an OpenMP runtime whose idle workers spin
    (busy-wait) after every loop, while OpenBLAS's threads need the same cores for
    the next matrix product.  On the 2-core development machine this made two
    threads 2-8x *slower* than one (batch 16: 1,805 against 14,276 examples/s);
    with passive waiting two threads are faster (18,510).  The runtime reads the
    variable when it starts; it applies to the whole process.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Numba is a hard dependency, but keep the reference usable without it.  Only
# looked up here: the compiled modules import it when a kernel first runs.
HAVE_NUMBA = importlib.util.find_spec("numba") is not None

#: the selected backend; None until first needed, then ``NPVAE_BACKEND`` or the default
_state = {"name": None}


def _current():
    """The selected backend.  ``NPVAE_BACKEND`` is read on first use, not on import,
    so that a bad value is a ``ValueError`` where the library is used (one line from
    the command line), never an import that fails."""
    if _state["name"] is None:
        name = os.environ.get("NPVAE_BACKEND") or ("numba" if HAVE_NUMBA else "numpy")
        if name not in BACKENDS:
            raise ValueError(f"NPVAE_BACKEND={name!r} is not a backend; choose one of "
                             f"{BACKENDS}")
        if name == "numba" and not HAVE_NUMBA:
            raise ValueError("NPVAE_BACKEND=numba but numba is not installed")
        _state["name"] = name
    return _state["name"]


def get_backend() -> str:
    """Name of the active backend, ``"numpy"`` or ``"numba"``."""
    return _current()


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


def compiled_in(module: str):
    """Decorator: the function it wraps is the NumPy reference of a kernel; on the
    ``"numba"`` backend calls go to the function of the same name in ``module``
    (imported on first use), which has the same contract and the same cache layout.

    This is the one place where the backend decides which code runs::

        @compiled_in("npvae.layers.activations_numba")
        def bias_activation_forward(a, b, name, out=None):
            ...  # the readable reference
    """
    def wrap(reference):
        compiled = []

        @functools.wraps(reference)
        def kernel(*args, **kwargs):
            if (_state["name"] or _current()) == "numba":
                if not compiled:
                    _prepare_openmp()
                    compiled.append(getattr(importlib.import_module(module), reference.__name__))
                return compiled[0](*args, **kwargs)
            return reference(*args, **kwargs)

        kernel.reference = reference
        return kernel

    return wrap


def set_num_threads(n_threads) -> None:
    """Force one thread count on Numba's parallel loops and BLAS together, or
    ``"auto"`` (the default) to let training choose it by timing its steps
    (:mod:`npvae.threads`: never slower than one thread when other programs
    hold cores).

    Uses ``threadpoolctl`` for the BLAS library that NumPy loaded, and
    ``numba.set_num_threads`` for ``prange`` loops.
    """
    if n_threads == "auto":
        _state["threads"] = None
        return
    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise ValueError(f"n_threads must be an integer >= 1 or 'auto', got {n_threads!r}")
    _prepare_openmp()
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n_threads)
    _state["threads"] = n_threads
    if HAVE_NUMBA:
        import numba as nb

        nb.set_num_threads(min(n_threads, nb.config.NUMBA_NUM_THREADS))


def get_num_threads() -> int | None:
    """The thread count forced with :func:`set_num_threads` (None: ``"auto"``, the
    training policy of :mod:`npvae.threads`)."""
    return _state.get("threads")
