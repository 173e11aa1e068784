"""Readers of each named data set: registered files (or a generator) to raw arrays.

Each ``_load_*`` function returns a :class:`_Raw` of ``uint8`` 0..255 arrays,
before any validation split or binarisation; :data:`_LOADERS` maps the
canonical data set names to them. :func:`make_bars_and_blobs` generates the
"synthetic" data set.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .binarize import _as_generator
from .files import _resolve, resolve_file
from .parsers import _NPZ_ERRORS, _read_packed_npz, read_amat, read_idx
from .registry import (DIGITS_TEST_SIZE, FREY_TEST_SIZE, SYNTHETIC_SEED, SYNTHETIC_SIDE,
                       SYNTHETIC_SIZES, TEST_SPLIT_SEED, DataFormatError,
                       DataNotFoundError)
from .splits import train_validation_split


def _source(paths) -> str:
    return ", ".join(dict.fromkeys(str(Path(p).parent) for p in paths))


class _Raw(NamedTuple):
    """Loaded arrays before splitting and binarisation; x are (N, D) uint8 0..255."""

    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray | None
    image_shape: tuple[int, ...]
    source: str
    x_valid: np.ndarray | None = None
    y_valid: np.ndarray | None = None


def _load_idx_dataset(dataset: str, data_dir, download: bool) -> _Raw:
    paths, arrays = [], []
    for prefix in ("train", "t10k"):
        image_path = resolve_file(dataset, f"{prefix}-images-idx3-ubyte.gz", data_dir, download)
        label_path = resolve_file(dataset, f"{prefix}-labels-idx1-ubyte.gz", data_dir, download)
        images = read_idx(image_path, expected_ndim=3)  # (N, rows, cols)
        labels = read_idx(label_path, expected_ndim=1)  # (N,)
        if len(images) != len(labels) or labels.size and labels.max() > 9:
            raise DataFormatError(f"{image_path} and {label_path}: {len(images)} images, "
                                  f"{len(labels)} labels (max {labels.max(initial=0)})")
        arrays += [images.reshape(len(images), -1), labels.astype(np.int64)]
        paths += [image_path, label_path]
    image_shape = tuple(int(s) for s in images.shape[1:])
    return _Raw(*arrays, image_shape=image_shape, source=_source(paths))


def _load_binarized_mnist(data_dir, download: bool) -> _Raw:
    parts, paths = {}, []
    for split in ("train", "valid", "test"):
        stem = f"binarized_mnist_{split}"
        path = _resolve("binarized_mnist", (f"{stem}.npz", f"{stem}.amat"), data_dir, download)
        x = _read_packed_npz(path) if path.suffix == ".npz" else read_amat(path)  # (N, D) 0/1
        if x.shape[1] != 784:
            raise DataFormatError(f"{path}: {x.shape[1]} features, expected 784")
        parts[split] = x * np.uint8(255)
        paths.append(path)
    return _Raw(parts["train"], None, parts["test"], None, (28, 28), _source(paths),
                x_valid=parts["valid"])


def _load_frey(data_dir, download: bool) -> _Raw:
    path = resolve_file("frey", "frey_faces.npz", data_dir, download)
    try:
        with np.load(path, allow_pickle=False) as npz:
            x, image_shape = npz["x"], tuple(int(s) for s in npz["image_shape"])
    except _NPZ_ERRORS as err:
        raise DataFormatError(f"{path}: expected arrays 'x' and 'image_shape' "
                              f"({type(err).__name__}: {err})") from err
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != math.prod(image_shape):
        raise DataFormatError(f"{path}: x is {x.dtype} {x.shape}, image_shape {image_shape}")
    x_train, _, x_test, _ = train_validation_split(x, None, FREY_TEST_SIZE, TEST_SPLIT_SEED)
    return _Raw(x_train, None, x_test, None, image_shape, str(path.parent))


def _load_digits(data_dir, download: bool) -> _Raw:
    try:
        from sklearn.datasets import load_digits  # bundled with scikit-learn: offline
    except ImportError:
        raise DataNotFoundError("the offline 8x8 digits ship with scikit-learn, which cannot "
                                "be imported here (pip install scikit-learn)") from None
    bunch = load_digits()
    x = np.rint(bunch.data * (255.0 / 16.0)).astype(np.uint8)  # (1797, 64): 0..16 -> 0..255
    y = bunch.target.astype(np.int64)
    x_train, y_train, x_test, y_test = train_validation_split(x, y, DIGITS_TEST_SIZE,
                                                              TEST_SPLIT_SEED)
    return _Raw(x_train, y_train, x_test, y_test, (8, 8), "scikit-learn digits (offline)")


def make_bars_and_blobs(n_examples: int, random_state=0, side: int = 16):
    """Generate binary images of four classes: bars, crosses and blobs.

    Class 0: a horizontal bar 2 pixels thick; 1: a vertical bar; 2: a cross
    (one bar of each); 3: a 5x5 square blob. Classes and positions are uniform.

    Returns
    -------
    x : numpy.ndarray
        (N, side * side) ``uint8`` with values 0 and 255.
    y : numpy.ndarray
        (N,) ``int64`` class labels 0..3.
    """
    rng = _as_generator(random_state)
    n, grid = int(n_examples), np.arange(side)                    # grid: (side,)
    y = rng.integers(0, 4, size=n)                                 # (N,)
    row, col = rng.integers(0, side - 1, size=(2, n))               # bar starts, (N,) each
    top, left = rng.integers(0, side - 4, size=(2, n))              # blob corners, (N,) each

    def band(start, width):                                        # (N, side) bool
        return (grid >= start[:, None]) & (grid < start[:, None] + width)

    full = np.ones((1, side, side), bool)
    horizontal = band(row, 2)[:, :, None] & full                   # (N, side, side)
    vertical = band(col, 2)[:, None, :] & full                     # (N, side, side)
    blob = band(top, 5)[:, :, None] & band(left, 5)[:, None, :]    # (N, side, side)
    images = np.select([y[:, None, None] == k for k in range(4)],
                       [horizontal, vertical, horizontal | vertical, blob])
    return images.reshape(n, -1).astype(np.uint8) * np.uint8(255), y.astype(np.int64)


def _load_synthetic(data_dir, download: bool) -> _Raw:
    n_train, n_test = SYNTHETIC_SIZES
    x, y = make_bars_and_blobs(n_train + n_test, SYNTHETIC_SEED, SYNTHETIC_SIDE)
    return _Raw(x[:n_train], y[:n_train], x[n_train:], y[n_train:],
                (SYNTHETIC_SIDE, SYNTHETIC_SIDE),
                f"synthetic bars and blobs (generated, seed {SYNTHETIC_SEED})")


_LOADERS = {
    "mnist": lambda data_dir, download: _load_idx_dataset("mnist", data_dir, download),
    "fashion_mnist": lambda data_dir, download: _load_idx_dataset("fashion_mnist", data_dir, download),
    "binarized_mnist": _load_binarized_mnist,
    "frey": _load_frey,
    "digits": _load_digits,
    "synthetic": _load_synthetic,
}
