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

def _one_pool():
    """Numba's loops on the calling thread, once, when the first compiled kernel loads:
    BLAS's threads are the step's one pool (:func:`npvae.threads.apply_threads`)."""
    if not _state.get("one_pool"):
        _state["one_pool"] = True
        import numba

        numba.set_num_threads(1)


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
        _bind_all()
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
    _bind_all()


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

    The choice is made once per backend, not per call: ``kernel.impl`` is the function
    that runs (the reference, or the compiled twin), rebound by :func:`set_backend`.
    Calling ``kernel(...)`` calls ``kernel.impl(...)``; a hot path may call
    ``kernel.impl(...)`` itself and skip this wrapper (the VAE's written-out step,
    :meth:`npvae.models.vae.VAE._diagonal_elbo`, does, so that a reader following it
    never lands here).
    """
    def wrap(reference):
        @functools.wraps(reference)
        def kernel(*args, **kwargs):
            return kernel.impl(*args, **kwargs)

        def load(*args, **kwargs):             # the first call on the numba backend
            if kernel.compiled is None:
                _prepare_openmp()
                kernel.compiled = getattr(importlib.import_module(module), reference.__name__)
                _one_pool()
            if kernel.impl is load:            # not if a spy (npvae.gradcheck) stands there
                kernel.impl = kernel.compiled
            return kernel.compiled(*args, **kwargs)

        def first(*args, **kwargs):            # before any backend was chosen
            _current()                         # reads NPVAE_BACKEND, binds every kernel
            return kernel.impl(*args, **kwargs)

        kernel.reference, kernel.compiled, kernel.load, kernel.first = reference, None, load, first
        _KERNELS.append(kernel)
        _bind(kernel)
        return kernel

    return wrap


#: every kernel :func:`compiled_in` made, for :func:`set_backend` to bind
_KERNELS = []


def _bind(kernel):
    """Point ``kernel.impl`` at the selected backend's function."""
    name = _state["name"]
    if name is None:
        kernel.impl = kernel.first
    elif name == "numpy":
        kernel.impl = kernel.reference
    else:
        kernel.impl = kernel.compiled or kernel.load


def _bind_all():
    for kernel in _KERNELS:
        _bind(kernel)


def set_num_threads(n_threads) -> None:
    """Force the thread count of the matrix products, or
    ``"auto"`` (the default) to let training choose it by timing its steps
    (:mod:`npvae.threads`: never slower than one thread when other programs
    hold cores).

    The count goes to BLAS (the matrix products, through ``threadpoolctl``);
    Numba's ``prange`` loops run on one thread, because the two pools fight for
    the same cores (:func:`npvae.threads.apply_threads` has the numbers).
    """
    if n_threads == "auto":
        _state["threads"] = None
        return
    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise ValueError(f"n_threads must be an integer >= 1 or 'auto', got {n_threads!r}")
    _prepare_openmp()
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n_threads, user_api="blas")
    _state["threads"] = n_threads
    if HAVE_NUMBA:
        import numba as nb

        nb.set_num_threads(1)


def get_num_threads() -> int | None:
    """The thread count forced with :func:`set_num_threads` (None: ``"auto"``, the
    training policy of :mod:`npvae.threads`)."""
    return _state.get("threads")
