"""The :class:`Dataset` object, :func:`load_dataset` and :func:`describe`.

Storage convention of :class:`Dataset`: every ``x`` array holds ``uint8``
intensities 0..255, and binary images use exactly 0 and 255. So ``x / 255`` is
the model input of every stored evaluation split (:meth:`Dataset.as_float`),
and the per-batch conversions compose: thresholding or Bernoulli sampling of a
0/255 image gives it back unchanged. The one array that is not final is
``x_train`` under dynamic binarisation: it keeps the grey levels, and each
epoch's batches are sampled from them.

Under dynamic binarisation the test set is binarised once with the fixed seed
``TEST_BINARIZATION_SEED = 0`` (a validation set with
``VALID_BINARIZATION_SEED = 1``) so results are comparable between runs.
Published log-likelihoods differ by about 2 nats between the two
binarisations, so every :class:`Dataset` records its ``binarization`` and
:func:`describe` prints it.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np

from .binarize import (_check_binarization, binarize_dynamic, binarize_static, convert_batch,
                       iterate_minibatches)
from .loaders import _LOADERS
from .registry import (TEST_BINARIZATION_SEED, VALID_BINARIZATION_SEED, _DEFAULT_BINARIZATION,
                       _canonical_name)
from .splits import train_validation_split

@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded data set; every ``x`` is (N, D) ``uint8`` 0..255 (see module doc).

    Attributes
    ----------
    name : str
    x_train, x_test : numpy.ndarray
        (N, D) ``uint8``. Binary data hold 0 and 255. Under dynamic
        binarisation ``x_train`` keeps the grey levels (batches are sampled
        from them) while ``x_test``/``x_valid`` are binarised once.
    y_train, y_test : numpy.ndarray or None
        (N,) ``int64`` labels, None when the data set has none.
    image_shape : tuple of int
        Shape of one image, e.g. (28, 28); ``prod(image_shape) == D``.
    binarization : {"none", "static", "dynamic"}
    likelihood_hint : {"bernoulli", "gaussian"}
        "bernoulli" for binary data, "gaussian" for real-valued data.
    source : str
        Where the data came from (folders, or a generator description).
    x_valid, y_valid : numpy.ndarray or None
        Validation split, if any.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray | None
    image_shape: tuple[int, ...]
    binarization: str
    likelihood_hint: str
    source: str
    x_valid: np.ndarray | None = None
    y_valid: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        """D, the number of pixels per example."""
        return int(self.x_train.shape[1])

    def train_batches(self, batch_size: int, random_state, dtype=np.float32, *,
                      with_labels: bool = False, shuffle: bool = True,
                      drop_last: bool = False) -> Iterator:
        """One epoch of training batches, binarised as ``self.binarization``.

        Call once per epoch with the same Generator: under dynamic
        binarisation each call draws new Bernoulli samples.
        See :func:`iterate_minibatches`.
        """
        return iterate_minibatches(
            self.x_train, batch_size, random_state, self.binarization, dtype,
            y=self.y_train if with_labels else None, shuffle=shuffle, drop_last=drop_last)

    def as_float(self, split: str = "test", dtype=np.float32) -> np.ndarray:
        """A stored split as the model's float input, ``x / 255``: (N, D) ``dtype``.

        ``split`` is "train", "valid" or "test". For "train" under dynamic
        binarisation use :meth:`train_batches` instead (this would give grey
        levels).
        """
        x = {"train": self.x_train, "valid": self.x_valid, "test": self.x_test}.get(split)
        if x is None:
            raise ValueError(f"{self.name} has no {split!r} split")
        return convert_batch(x, "none", dtype)


_NATIVELY_BINARY = ("binarized_mnist", "synthetic")


def likelihood_hint(name, binarization=None):
    """``"bernoulli"`` or ``"gaussian"``: the ``likelihood_hint`` that :func:`load_dataset`
    gives data set ``name`` under ``binarization`` (None: its default), known without
    loading it."""
    key = _canonical_name(name)
    binarization = binarization or _DEFAULT_BINARIZATION[key]
    return "bernoulli" if binarization != "none" or key in _NATIVELY_BINARY else "gaussian"


def load_dataset(name: str, data_dir=None, binarization: str | None = None,
                 download: bool = True, validation_size=None, random_state=0) -> Dataset:
    """Load a data set as ``uint8`` arrays with its binarisation applied.

    Parameters
    ----------
    name : str
        One of :func:`available_datasets`: "mnist", "fashion_mnist",
        "binarized_mnist" (Larochelle & Murray's static binarisation: 50000
        train, 10000 valid, 10000 test, no labels), "frey" (1965 real-valued
        28x20 faces; fixed test split of FREY_TEST_SIZE with seed
        TEST_SPLIT_SEED), "digits" (scikit-learn 8x8 digits, offline; 0..16
        scaled to ``round(v * 255 / 16)``; fixed test split of
        DIGITS_TEST_SIZE), "synthetic" (generated 16x16 bars and blobs, 2000
        train and 500 test, labels 0..3).
    data_dir : path-like, optional
        Searched first for the files, see :func:`resolve_file`.
    binarization : {"none", "static", "dynamic"}, optional
        Default: "dynamic" for mnist, fashion_mnist and digits; "static" for
        binarized_mnist (the only one allowed); "none" for frey and synthetic
        (already binary). See the module docstring for what is stored.
    download : bool
        Download missing files into the cache (needs network).
    validation_size : int or float, optional
        None: the official validation split (binarized_mnist: 10000) or none.
        An int or a fraction: held out of the training set with
        ``random_state``. For binarized_mnist only None or 0 (merge the
        official validation set into training) are allowed.
    random_state : numpy.random.Generator or int
        Seed of the validation split.

    Returns
    -------
    Dataset
    """
    key = _canonical_name(name)
    binarization = _check_binarization(binarization or _DEFAULT_BINARIZATION[key])
    if key == "binarized_mnist" and binarization != "static":
        raise ValueError("binarized_mnist is statically binarised already; use "
                         "binarization='static' (or load 'mnist' for dynamic)")
    if key == "binarized_mnist" and validation_size not in (None, 0):
        raise ValueError("binarized_mnist has an official validation split: use "
                         "validation_size=None (10000 examples) or 0 (merge into training)")
    raw = _LOADERS[key](data_dir, download)
    x_train, y_train, x_valid, y_valid = raw.x_train, raw.y_train, raw.x_valid, raw.y_valid
    if key == "binarized_mnist" and validation_size == 0:
        x_train, x_valid = np.concatenate([x_train, x_valid]), None
    elif validation_size:
        x_train, y_train, x_valid, y_valid = train_validation_split(
            x_train, y_train, validation_size, random_state)
    x_test = raw.x_test
    if key not in _NATIVELY_BINARY:
        x_train, x_valid, x_test = _binarize_splits(binarization, x_train, x_valid, x_test)
    return Dataset(name=key, x_train=x_train, y_train=y_train, x_test=x_test,
                   y_test=raw.y_test, image_shape=raw.image_shape, binarization=binarization,
                   likelihood_hint=likelihood_hint(key, binarization),
                   source=raw.source, x_valid=x_valid, y_valid=y_valid)


def _binarize_splits(binarization: str, x_train, x_valid, x_test):
    """Apply a binarisation to stored splits; results stay uint8 0/255 (see module doc)."""
    to_255 = np.uint8(255)
    if binarization == "static":
        return tuple(None if x is None else binarize_static(x) * to_255
                     for x in (x_train, x_valid, x_test))
    if binarization == "dynamic":  # train stays grey; evaluation sets drawn once, fixed seeds
        x_valid = None if x_valid is None else binarize_dynamic(
            x_valid, VALID_BINARIZATION_SEED) * to_255
        x_test = binarize_dynamic(x_test, TEST_BINARIZATION_SEED) * to_255
    return x_train, x_valid, x_test


def describe(dataset: Dataset) -> str:
    """One line: name, sizes, image shape, binarisation, likelihood, source."""
    n_valid = 0 if dataset.x_valid is None else len(dataset.x_valid)
    shape = "x".join(str(s) for s in dataset.image_shape)
    return (f"{dataset.name}: {len(dataset.x_train)} train / {n_valid} valid / "
            f"{len(dataset.x_test)} test, D={dataset.n_features} ({shape}), "
            f"binarization={dataset.binarization}, likelihood={dataset.likelihood_hint}, "
            f"labels={'yes' if dataset.y_train is not None else 'no'}, "
            f"source={dataset.source}")
