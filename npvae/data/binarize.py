"""Binarisation and mini-batches: from stored ``uint8`` pixels to model input.

Conventions (docs/12-data.md): pixels stay ``uint8`` in memory and are
converted to floating point one mini-batch at a time. Static binarisation is
``pixel >= 128``; dynamic binarisation is ``Bernoulli(pixel / 255)``, drawn
afresh every epoch from the ``numpy.random.Generator`` the caller passes in.

Per-batch conversion (:func:`convert_batch`), by ``binarization``:

* ``"static"``:  ``float(pixel >= 128)``, values 0 or 1;
* ``"dynamic"``: ``float(u < pixel)`` with ``u`` uniform on 0..254, so
  ``P(1) = pixel / 255`` exactly;
* ``"none"``:    ``pixel / 255``, real values in [0, 1]. This is the scaling
  used for real-valued data (Frey faces, with a Gaussian likelihood); binary
  0/255 data become 0/1.

Shape legend: ``N`` examples, ``B`` examples in a batch, ``D`` pixels per image.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from .registry import BINARIZATIONS


def _as_generator(random_state) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, (bool, np.bool_)) or not (
            random_state is None or isinstance(random_state, (int, np.integer))):
        raise TypeError(f"random_state must be a numpy Generator, an int seed or None, "
                        f"not {type(random_state).__name__}")
    return np.random.default_rng(random_state)


def _check_uint8(x: np.ndarray, what: str = "x") -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise TypeError(f"{what} must be uint8 pixel values 0..255, not {x.dtype}")
    return x


def binarize_static(x: np.ndarray) -> np.ndarray:
    """Static binarisation (docs/12-data.md): 1 where the pixel is >= 128.

    Parameters
    ----------
    x : numpy.ndarray
        ``uint8`` pixels 0..255, any shape, e.g. (N, D).

    Returns
    -------
    numpy.ndarray
        ``uint8`` 0/1 of the same shape.
    """
    return (_check_uint8(x) >= 128).astype(np.uint8)


def binarize_dynamic(x: np.ndarray, random_state) -> np.ndarray:
    """Dynamic binarisation (docs/12-data.md): ``x ~ Bernoulli(pixel / 255)``.

    Draws ``u`` uniform on {0, ..., 254} and returns ``u < pixel``, so
    ``P(1) = pixel / 255`` exactly (0 stays 0, 255 stays 1).

    Parameters
    ----------
    x : numpy.ndarray
        ``uint8`` pixels 0..255, any shape, e.g. (N, D).
    random_state : numpy.random.Generator or int
        Pass the same Generator every epoch to get fresh draws; an int seed
        gives the same draws every call.

    Returns
    -------
    numpy.ndarray
        ``uint8`` 0/1 of the same shape.
    """
    x = _check_uint8(x)
    u = _as_generator(random_state).integers(0, 255, size=x.shape, dtype=np.uint8)
    return (u < x).astype(np.uint8)


def _check_binarization(binarization: str) -> str:
    if binarization not in BINARIZATIONS:
        raise ValueError(f"binarization must be one of {BINARIZATIONS}, not {binarization!r}")
    return binarization


def convert_batch(x: np.ndarray, binarization: str = "none", dtype=np.float32,
                  random_state=None) -> np.ndarray:
    """Convert a ``uint8`` batch to the model's float input.

    Parameters
    ----------
    x : numpy.ndarray
        (N, D) ``uint8`` pixels 0..255.
    binarization : {"none", "static", "dynamic"}
        "static": ``pixel >= 128``; "dynamic": Bernoulli(pixel / 255) drawn
        with ``random_state``; "none": ``pixel / 255`` in [0, 1].
    dtype : floating dtype
        Output dtype, e.g. ``np.float32`` or ``np.float64``.
    random_state : numpy.random.Generator or int, optional
        Needed for "dynamic".

    Returns
    -------
    numpy.ndarray
        (N, D) array of ``dtype``.
    """
    x = _check_uint8(x)
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"dtype must be a floating type, not {dtype}")
    binarization = _check_binarization(binarization)
    if binarization == "static":
        return binarize_static(x).astype(dtype)
    if binarization == "dynamic":
        if random_state is None:
            raise ValueError("dynamic binarisation needs a random_state (a Generator)")
        return binarize_dynamic(x, random_state).astype(dtype)
    out = x.astype(dtype)
    out /= dtype.type(255)
    return out


def dequantize(x: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Grey levels ``0..255`` as the centres of their bins, ``(pixel + 0.5) / 256``:
    values strictly inside ``(0, 1)``, the support of the Beta likelihood
    (docs/04-likelihoods.md)."""
    x = _check_uint8(x)
    out = x.astype(dtype)
    out += np.asarray(0.5, dtype)
    out /= np.asarray(256, dtype)
    return out


def quantization_step(x: np.ndarray, binarization: str = "none") -> float:
    """The step ``Δ`` between neighbouring levels of the model's input made from the
    stored pixels ``x`` by ``binarization``: 1 for binary input, else the smallest
    gap between two grey levels present, over 255 (``1/255`` for 8-bit images;
    ``15/255`` for the 8x8 digits, 17 levels).  A continuous likelihood on data
    of step ``Δ`` needs a variance of at least ``Δ²/12`` (docs/04-likelihoods.md)."""
    if _check_binarization(binarization) != "none":
        return 1.0
    levels = np.flatnonzero(np.bincount(_check_uint8(x).ravel(), minlength=256))
    return float(np.diff(levels).min()) / 255.0 if len(levels) > 1 else 1.0


def iterate_minibatches(x: np.ndarray, batch_size: int, random_state,
                        binarization: str = "none", dtype=np.float32, *,
                        y: np.ndarray | None = None, shuffle: bool = True,
                        drop_last: bool = False) -> Iterator:
    """Yield one epoch of float mini-batches from ``uint8`` data.

    The data stay ``uint8`` in memory; each batch is gathered, then converted
    with :func:`convert_batch` (for "none": ``pixel / 255``, the scaling used
    for real-valued data such as Frey faces). The shuffle order and, for
    "dynamic", the Bernoulli draws come from ``random_state``: pass the same
    Generator every epoch for a new order and new draws each epoch; two
    Generators with the same seed give identical epochs.

    Parameters
    ----------
    x : numpy.ndarray
        (N, D) ``uint8`` pixels.
    batch_size : int
        Examples per batch; the last batch may be smaller unless ``drop_last``.
    random_state : numpy.random.Generator or int
    binarization : {"none", "static", "dynamic"}
    dtype : floating dtype
    y : numpy.ndarray, optional
        (N,) labels; if given, ``(x_batch, y_batch)`` pairs are yielded.
    shuffle : bool
        Visit examples in a random order (else in stored order).
    drop_last : bool
        Skip a last batch smaller than ``batch_size``.

    Yields
    ------
    numpy.ndarray or tuple
        (B, D) ``dtype`` batches, or ``(x_batch (B, D), y_batch (B,))``.
    """
    x = _check_uint8(x)
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
    if y is not None and len(y) != len(x):
        raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
    _check_binarization(binarization)
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise TypeError(f"dtype must be a floating type, not {np.dtype(dtype)}")
    rng = _as_generator(random_state)
    return _batches(x, int(batch_size), rng, binarization, dtype, y, shuffle, drop_last)


def _batches(x, batch_size, rng, binarization, dtype, y, shuffle, drop_last):
    n = len(x)
    order = rng.permutation(n) if shuffle else np.arange(n)  # (N,)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        index = order[start:start + batch_size]  # (B,)
        xb = convert_batch(x[index], binarization, dtype, rng)  # (B, D)
        yield xb if y is None else (xb, y[index])
