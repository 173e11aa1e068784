"""One estimator, one thread: what changes a model (``fit``, ``partial_fit``,
``training.train``, ``loss_and_grads``) holds the model's lock, and a call from
another thread meanwhile raises a one-line ``RuntimeError`` at once (it never
waits), instead of parameters mixed from two fits.

The lock lives in the model's ``__dict__`` under :data:`LOCK`; pickles and copies
leave it out (:meth:`npvae.models.sklearn_api.EstimatorMixin.__getstate__`).
"""
from __future__ import annotations

import contextlib
import functools
import threading

#: the attribute holding a model's lock
LOCK = "_in_use_lock"


def _lock(obj):
    # dict.setdefault is atomic: two threads asking at once get the same lock
    return obj.__dict__.setdefault(LOCK, threading.RLock())


def _busy(obj, what):
    return RuntimeError(f"{type(obj).__name__}.{what}: this estimator is being changed (fit, "
                        "partial_fit, train or loss_and_grads) in another thread; one "
                        "estimator is not for concurrent use: clone it per thread")


@contextlib.contextmanager
def exclusive(obj, what):
    """Hold ``obj``'s lock while ``what`` changes it; raise when another thread holds it.
    Re-entrant in one thread (``fit`` calls ``train``)."""
    lock = _lock(obj)
    if not lock.acquire(blocking=False):
        raise _busy(obj, what)
    try:
        yield
    finally:
        lock.release()


def check_not_busy(obj, what):
    """Raise when another thread is changing ``obj`` (a reader's check; nothing held)."""
    with exclusive(obj, what):
        pass


def one_at_a_time(what):
    """Decorator: the function's first argument (a model) is held by :func:`exclusive`."""
    def wrap(function):
        @functools.wraps(function)
        def wrapped(obj, *args, **kwargs):
            with exclusive(obj, what):
                return function(obj, *args, **kwargs)
        return wrapped
    return wrap
