"""Data sets for npvae: file registry, checksums, parsers, binarisation, batches.

Conventions follow the data conventions (docs/12-data.md):

* Pixels are integers 0..255 and stay ``uint8`` in memory. Conversion to
  floating point happens one mini-batch at a time (:func:`iterate_minibatches`).
* Static binarisation: ``x = 1`` where the pixel is >= 128
  (:func:`binarize_static`).
* Dynamic binarisation: ``x ~ Bernoulli(pixel / 255)``, drawn afresh every
  epoch from the ``numpy.random.Generator`` the caller passes in
  (:func:`binarize_dynamic`). The test set is binarised once with the fixed
  seed ``TEST_BINARIZATION_SEED = 0`` (a validation set with
  ``VALID_BINARIZATION_SEED = 1``) so results are comparable between runs.
* Published log-likelihoods differ by about 2 nats between the two
  binarisations, so every :class:`Dataset` records its ``binarization`` and
  :func:`describe` prints it.

Storage convention of :class:`Dataset`: every ``x`` array holds ``uint8``
intensities 0..255, and binary images use exactly 0 and 255 (details in
:mod:`npvae.data.datasets`). Per-batch conversion by ``binarization``
(:func:`convert_batch`) is described in :mod:`npvae.data.binarize`.

Where files come from (:func:`resolve_file`), in this order (details in
:mod:`npvae.data.files`): the ``data_dir`` argument, the ``NPVAE_DATA``
environment variable (``<NPVAE_DATA>/<dataset folder>/<file>``), the user cache
(``<NPVAE_CACHE or ~/.cache/npvae>/<dataset folder>/<file>``), and last a
download into the user cache from the public mirrors in :data:`REGISTRY`.
Every file is checked against the SHA-256 in :data:`REGISTRY` before use (the
published SHA-256 checksums). A mismatch raises :class:`ChecksumError` and is
never retried silently with another copy.

Modules, each importing only those listed above it:

* :mod:`~npvae.data.registry`: constants, errors, :data:`REGISTRY`, data set
  folders and names;
* :mod:`~npvae.data.files`: checksums, file resolution, downloads;
* :mod:`~npvae.data.parsers`: IDX, ``.amat`` and packed ``.npz`` files;
* :mod:`~npvae.data.binarize`: binarisation, :func:`convert_batch`,
  :func:`iterate_minibatches`;
* :mod:`~npvae.data.splits`: :func:`train_validation_split`;
* :mod:`~npvae.data.loaders`: the reader of each named data set, and the
  synthetic bars and blobs;
* :mod:`~npvae.data.datasets`: :class:`Dataset`, :func:`load_dataset`,
  :func:`describe`.

This package re-exports their public names. To replace a function or a
setting for a test (``_open_url``, ``DOWNLOAD_TIMEOUT``, ...), patch the module
that owns it, e.g. :mod:`npvae.data.files`: patching the package has no effect.

Shape legend: ``N`` examples (batch), ``D`` data dimension (pixels per image).
"""

from . import binarize, datasets, files, loaders, parsers, registry, splits
from .binarize import (binarize_dynamic, binarize_static, convert_batch, dequantize,
                       iterate_minibatches, quantization_step)
from .datasets import Dataset, describe, load_dataset
from .files import DOWNLOAD_TIMEOUT, cache_dir, download_file, resolve_file, sha256_file, verify_file
from .loaders import make_bars_and_blobs
from .parsers import read_amat, read_idx
from .registry import (
    BINARIZATIONS,
    DATASET_FOLDERS,
    DIGITS_TEST_SIZE,
    FASHION_MNIST_CLASSES,
    FREY_TEST_SIZE,
    REGISTRY,
    SYNTHETIC_SEED,
    SYNTHETIC_SIDE,
    SYNTHETIC_SIZES,
    TEST_BINARIZATION_SEED,
    TEST_SPLIT_SEED,
    VALID_BINARIZATION_SEED,
    ChecksumError,
    DataFormatError,
    DataNotFoundError,
    DownloadError,
    FileSpec,
    available_datasets,
)
from .splits import train_validation_split

__all__ = [
    "BINARIZATIONS",
    "DATASET_FOLDERS",
    "REGISTRY",
    "ChecksumError",
    "DataFormatError",
    "DataNotFoundError",
    "Dataset",
    "DownloadError",
    "FileSpec",
    "available_datasets",
    "binarize_dynamic",
    "binarize_static",
    "cache_dir",
    "convert_batch",
    "dequantize",
    "describe",
    "download_file",
    "iterate_minibatches",
    "load_dataset",
    "make_bars_and_blobs",
    "quantization_step",
    "read_amat",
    "read_idx",
    "resolve_file",
    "sha256_file",
    "train_validation_split",
    "verify_file",
]
