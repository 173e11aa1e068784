"""Data sets for npvae: file registry, checksums, parsers, binarisation, batches.

Conventions follow MATH.md (../shared/MATH.md) §12 "Data conventions":

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
intensities 0..255, and binary images use exactly 0 and 255. So ``x / 255`` is
the model input of every stored evaluation split (:meth:`Dataset.as_float`),
and the per-batch conversions compose: thresholding or Bernoulli sampling of a
0/255 image gives it back unchanged. The one array that is not final is
``x_train`` under dynamic binarisation: it keeps the grey levels, and each
epoch's batches are sampled from them.

Per-batch conversion (:func:`convert_batch`), by ``binarization``:

* ``"static"``:  ``float(pixel >= 128)``, values 0 or 1;
* ``"dynamic"``: ``float(u < pixel)`` with ``u`` uniform on 0..254, so
  ``P(1) = pixel / 255`` exactly;
* ``"none"``:    ``pixel / 255``, real values in [0, 1]. This is the scaling
  used for real-valued data (Frey faces, with a Gaussian likelihood); binary
  0/255 data become 0/1.

Where files come from (:func:`resolve_file`), in this order:

1. the ``data_dir`` argument: a folder laid out like ``<data_dir>/<dataset
   folder>/<file>``; the file directly in ``data_dir`` is also accepted;
2. the ``NPVAE_DATA`` environment variable: ``<NPVAE_DATA>/<dataset
   folder>/<file>`` (the layout of ../shared/data);
3. the user cache: ``<NPVAE_CACHE or ~/.cache/npvae>/<dataset folder>/<file>``;
4. a download into the user cache from the public mirrors in :data:`REGISTRY`.

Dataset folders: ``mnist``, ``fashion-mnist``, ``binarized_mnist``, ``frey``.
Every file is checked against the SHA-256 in :data:`REGISTRY` before use
(values from ../shared/data/README.md). A mismatch raises
:class:`ChecksumError` and is never retried silently with another copy.

Shape legend: ``N`` examples (batch), ``D`` data dimension (pixels per image).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import http.client
import logging
import math
import os
import struct
import tempfile
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np

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
    "describe",
    "download_file",
    "iterate_minibatches",
    "load_dataset",
    "make_bars_and_blobs",
    "read_amat",
    "read_idx",
    "resolve_file",
    "sha256_file",
    "train_validation_split",
    "verify_file",
]

logger = logging.getLogger(__name__)

BINARIZATIONS = ("none", "static", "dynamic")

#: Seed of the single dynamic binarisation of a test set (MATH §12).
TEST_BINARIZATION_SEED = 0
#: Seed of the single dynamic binarisation of a validation set.
VALID_BINARIZATION_SEED = 1
#: Seed of the fixed train/test split of data sets without an official one.
TEST_SPLIT_SEED = 0
#: Test examples held out from Frey faces (1965 rows -> 1765 train, 200 test).
FREY_TEST_SIZE = 200
#: Test examples held out from scikit-learn digits (1797 -> 1500 train, 297 test).
DIGITS_TEST_SIZE = 297
#: Seed and sizes (train, test) of the generated "synthetic" data set.
SYNTHETIC_SEED = 0
SYNTHETIC_SIZES = (2000, 500)
SYNTHETIC_SIDE = 16

#: Seconds a download may wait on connect or on one read before giving up.
DOWNLOAD_TIMEOUT = 30.0
_CHUNK = 1 << 20  # bytes read at a time when hashing or downloading

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

class ChecksumError(ValueError):
    """A file's SHA-256 (or size) differs from the registry.

    Attributes ``path``, ``expected`` and ``actual`` hold the file and the two
    hex digests.
    """

    def __init__(self, path, expected: str, actual: str, detail: str = ""):
        self.path, self.expected, self.actual = str(path), expected, actual
        super().__init__(
            f"checksum mismatch for {path}: expected SHA-256 {expected}, got "
            f"{actual}{detail}. The file is corrupt, truncated or a different "
            "file; delete or replace it (it is not retried automatically)."
        )


class DataFormatError(ValueError):
    """A data file does not have the layout its parser expects."""


class DataNotFoundError(FileNotFoundError):
    """A data file is in none of the searched places and could not be downloaded."""


class DownloadError(OSError):
    """Every mirror of a file failed (network error, HTTP error, timeout)."""


# ---------------------------------------------------------------------------
# Registry (SHA-256 and sizes from ../shared/data/README.md)
# ---------------------------------------------------------------------------

class FileSpec(NamedTuple):
    """Expected SHA-256 (hex), size in bytes and download URLs of one file."""

    sha256: str
    size: int
    urls: tuple[str, ...] = ()


_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
_FASHION_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
_LAROCHELLE_MIRRORS = (
    "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/",
)


def _urls(mirrors: tuple[str, ...], filename: str) -> tuple[str, ...]:
    return tuple(mirror + filename for mirror in mirrors)


def _idx_files(mirrors, table) -> dict[str, FileSpec]:
    return {name: FileSpec(sha, size, _urls(mirrors, name)) for name, sha, size in table}


#: Folder of each data set inside a data root (``<root>/<folder>/<file>``).
DATASET_FOLDERS = {
    "mnist": "mnist",
    "fashion_mnist": "fashion-mnist",
    "binarized_mnist": "binarized_mnist",
    "frey": "frey",
}

#: ``REGISTRY[dataset][filename] -> FileSpec``. Binarized MNIST has two forms:
#: the packed ``.npz`` files of ../shared/data (no public mirror) and the
#: original ``.amat`` text files (downloadable); either is accepted.
#: Frey faces have no public ``.npz`` mirror.
REGISTRY: dict[str, dict[str, FileSpec]] = {
    "mnist": _idx_files(_MNIST_MIRRORS, [
        ("train-images-idx3-ubyte.gz",
         "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
        ("train-labels-idx1-ubyte.gz",
         "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
        ("t10k-images-idx3-ubyte.gz",
         "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
        ("t10k-labels-idx1-ubyte.gz",
         "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
    ]),
    "fashion_mnist": _idx_files(_FASHION_MIRRORS, [
        ("train-images-idx3-ubyte.gz",
         "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
        ("train-labels-idx1-ubyte.gz",
         "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
        ("t10k-images-idx3-ubyte.gz",
         "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
        ("t10k-labels-idx1-ubyte.gz",
         "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
    ]),
    "binarized_mnist": {
        "binarized_mnist_train.npz": FileSpec(
            "23f56d87e1986a52ff30d482e0c3e11fddb2cb63eabf2222e0b11c9159dc451d", 1678416),
        "binarized_mnist_valid.npz": FileSpec(
            "83cf372fdd44271e33f77e470fe6a8e15a7d03b7d4379d54f01bef505e1ee64f", 336484),
        "binarized_mnist_test.npz": FileSpec(
            "108c4b5cfb025335ced77fd5d264ac1b90fbb05bb9947e93bc6b9e11857c0c0e", 321925),
        **_idx_files(_LAROCHELLE_MIRRORS, [
            ("binarized_mnist_train.amat",
             "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d", 78400000),
            ("binarized_mnist_valid.amat",
             "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2", 15680000),
            ("binarized_mnist_test.amat",
             "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c", 15680000),
        ]),
    },
    "frey": {
        "frey_faces.npz": FileSpec(
            "f77467ecfe9f1cb16110170ded97a59f6cf12ebf7dae23c78542285cba5b87aa", 997077),
    },
}


# ---------------------------------------------------------------------------
# Checksums
# ---------------------------------------------------------------------------

# (absolute path, size, mtime_ns) -> SHA-256 hex digest, so that repeated
# loads of an unchanged file do not hash it again.
_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def _stat_key(path: Path) -> tuple[str, int, int]:
    st = os.stat(path)
    return (os.path.abspath(path), st.st_size, st.st_mtime_ns)


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path) -> str:
    """SHA-256 hex digest of a file, hashed in chunks and cached in memory.

    The cache key is (absolute path, size, modification time), so a changed
    file is hashed again.
    """
    path = Path(path)
    key = _stat_key(path)
    if key not in _HASH_CACHE:
        digest = _hash_file(path)
        if _stat_key(path) == key:  # unchanged while we read it
            _HASH_CACHE[key] = digest
        return digest
    return _HASH_CACHE[key]


def verify_file(path, sha256: str, size: int | None = None) -> Path:
    """Check a file's SHA-256 (and size); return its path.

    Raises
    ------
    ChecksumError
        If the digest or the size differs; the message names the file, the
        expected and the actual SHA-256.
    """
    path = Path(path)
    actual = sha256_file(path)
    actual_size = path.stat().st_size
    if actual != sha256.lower() or (size is not None and actual_size != size):
        detail = ""
        if size is not None and actual_size != size:
            detail = f" (size {actual_size} bytes, expected {size}"
            detail += "; truncated?)" if actual_size < size else ")"
        raise ChecksumError(path, sha256.lower(), actual, detail)
    return path


# ---------------------------------------------------------------------------
# Where files come from
# ---------------------------------------------------------------------------

def cache_dir() -> Path:
    """User cache folder: ``$NPVAE_CACHE``, else ``~/.cache/npvae``."""
    return Path(os.environ.get("NPVAE_CACHE") or "~/.cache/npvae").expanduser()


def _registry_entry(dataset: str) -> tuple[str, dict[str, FileSpec]]:
    key = _canonical_name(dataset)
    if key not in REGISTRY:
        raise ValueError(
            f"data set {dataset!r} has no files to resolve; data sets with files: "
            f"{', '.join(REGISTRY)}")
    return key, REGISTRY[key]


def _candidate_paths(folder: str, filenames, data_dir) -> list[Path]:
    """Places to look, best first: data_dir, $NPVAE_DATA, cache (each x filenames)."""
    roots: list[tuple[Path, bool]] = []  # (root, also accept a flat layout)
    if data_dir is not None:
        roots.append((Path(data_dir).expanduser(), True))
    if os.environ.get("NPVAE_DATA"):
        roots.append((Path(os.environ["NPVAE_DATA"]).expanduser(), False))
    roots.append((cache_dir(), False))
    paths = []
    for root, flat in roots:
        for name in filenames:
            paths.append(root / folder / name)
            if flat:
                paths.append(root / name)
    return paths


def resolve_file(dataset: str, filename: str, data_dir=None, download: bool = True) -> Path:
    """Find (or download) one registered data file and verify its SHA-256.

    Parameters
    ----------
    dataset : str
        A data set of :data:`REGISTRY` ("mnist", "fashion_mnist",
        "binarized_mnist", "frey").
    filename : str
        A file of that data set, e.g. ``"train-images-idx3-ubyte.gz"``.
    data_dir : path-like, optional
        Searched first: ``<data_dir>/<dataset folder>/<filename>``, then
        ``<data_dir>/<filename>``.
    download : bool
        If the file is nowhere, download it into :func:`cache_dir`.

    Returns
    -------
    pathlib.Path
        The verified file.

    Raises
    ------
    ChecksumError
        The first file found does not match its SHA-256 (no fallback).
    DataNotFoundError
        Not found and not downloadable; the message lists the places searched
        and the download errors.
    """
    return _resolve(dataset, (filename,), data_dir, download)


def _resolve(dataset: str, filenames, data_dir, download: bool) -> Path:
    """Resolve the first of several interchangeable files (location first)."""
    key, files = _registry_entry(dataset)
    for name in filenames:
        if name not in files:
            raise ValueError(f"unknown file {name!r} for data set {key!r}; "
                             f"known files: {', '.join(files)}")
    folder = DATASET_FOLDERS[key]
    searched = _candidate_paths(folder, filenames, data_dir)
    for path in searched:
        if path.is_file():
            spec = files[path.name]
            return verify_file(path, spec.sha256, spec.size)

    problems = []
    if download:
        for name in filenames:
            spec = files[name]
            if not spec.urls:
                continue
            try:
                return download_file(spec.urls, cache_dir() / folder / name,
                                     spec.sha256, spec.size)
            except DownloadError as err:
                problems.append(str(err))
    wanted = " or ".join(repr(n) for n in filenames)
    lines = [f"{key}: data file {wanted} not found. Searched:"]
    lines += [f"  {p}" for p in searched]
    if not download:
        lines.append("Download disabled (download=False).")
    elif problems:
        lines.append("Download failed:")
        lines += [f"  {p}" for p in problems]
    else:
        lines.append("There is no public download mirror for this file.")
    lines.append(
        f"Put {wanted} (SHA-256 {files[filenames[0]].sha256}"
        f"{', or the SHA-256 in npvae.data.REGISTRY' if len(filenames) > 1 else ''}) "
        f"in {cache_dir() / folder}, or set NPVAE_DATA to a folder holding {folder}/, "
        "or pass data_dir=.")
    raise DataNotFoundError("\n".join(lines))


def _open_url(url: str, timeout: float):
    """Open a URL for streaming (tests replace this function)."""
    request = urllib.request.Request(url, headers={"User-Agent": "npvae"})
    return urllib.request.urlopen(request, timeout=timeout)


def download_file(urls, dest, sha256: str, size: int | None = None,
                  timeout: float | None = None) -> Path:
    """Download a file from the first working mirror, verified, to ``dest``.

    The bytes stream into a temporary file in ``dest``'s folder while being
    hashed; only a verified file is renamed (``os.replace``) to ``dest``. An
    exception mid-stream removes the temporary file and leaves nothing at
    ``dest``.

    Raises
    ------
    ChecksumError
        The downloaded bytes do not match; not retried on another mirror.
    DownloadError
        Every mirror failed with a network error, HTTP error or timeout
        (``timeout`` seconds per connect or read, default DOWNLOAD_TIMEOUT).
    """
    dest = Path(dest)
    timeout = DOWNLOAD_TIMEOUT if timeout is None else timeout
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        logger.info("downloading %s -> %s", url, dest)
        try:
            return _download_one(url, dest, sha256.lower(), size, timeout)
        except ChecksumError:
            raise
        except (OSError, http.client.HTTPException, ValueError) as err:
            errors.append(f"{url}: {type(err).__name__}: {err}")
    raise DownloadError(f"could not download {dest.name}: " + "; ".join(errors))


def _download_one(url: str, dest: Path, sha256: str, size, timeout: float) -> Path:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest, n_bytes = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out, _open_url(url, timeout) as response:
            while chunk := response.read(_CHUNK):
                n_bytes += len(chunk)
                digest.update(chunk)
                out.write(chunk)
                if size is not None and n_bytes > size:
                    raise ChecksumError(dest, sha256, digest.hexdigest(),
                                        f" (download from {url} exceeded {size} bytes)")
        actual = digest.hexdigest()
        if actual != sha256 or (size is not None and n_bytes != size):
            raise ChecksumError(dest, sha256, actual,
                                f" (downloaded {n_bytes} bytes from {url})")
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        _HASH_CACHE[_stat_key(dest)] = actual
    return dest


# ---------------------------------------------------------------------------
# Parsers
# ---------------------------------------------------------------------------

def _gzip_errors():
    return (EOFError, zlib.error, gzip.BadGzipFile)


def _read_source(path_or_fileobj) -> tuple[bytes, str]:
    """All bytes of a path or binary file object, and a name for messages."""
    if hasattr(path_or_fileobj, "read"):
        name = getattr(path_or_fileobj, "name", None) or "<file object>"
        name = os.fsdecode(name) if isinstance(name, bytes) else str(name)
        try:
            raw = path_or_fileobj.read()
        except _gzip_errors() as err:  # e.g. a gzip.GzipFile over a cut stream
            raise DataFormatError(
                f"{name}: corrupt or truncated gzip data ({type(err).__name__}: {err})"
            ) from err
        return bytes(raw), name
    name = os.fspath(path_or_fileobj)
    return Path(name).read_bytes(), str(name)


def _gunzip_if_needed(raw: bytes, name: str) -> bytes:
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except _gzip_errors() as err:
        raise DataFormatError(
            f"{name}: corrupt or truncated gzip data ({type(err).__name__}: {err})"
        ) from err


def read_idx(path_or_fileobj, expected_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzip-compressed or plain).

    Layout (../shared/data/README.md, "The IDX format"): big-endian magic
    number ``0x0000 08 nd`` (2051 for images with nd = 3, 2049 for labels with
    nd = 1), one big-endian uint32 per dimension, then the bytes in C order.

    Parameters
    ----------
    path_or_fileobj : path-like or binary file object
        A ``.gz`` file is recognised by its gzip magic bytes.
    expected_ndim : int, optional
        Require this many dimensions, i.e. magic number ``2048 + expected_ndim``.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array with the header's shape, e.g. (N, 28, 28) or (N,).

    Raises
    ------
    DataFormatError
        Bad magic number or type byte, wrong dimension count, payload length
        different from the product of the dimensions, or a corrupt/truncated
        gzip stream. The message names the file.
    """
    raw, name = _read_source(path_or_fileobj)
    return _parse_idx(_gunzip_if_needed(raw, name), name, expected_ndim)


def _parse_idx(data: bytes, name: str, expected_ndim: int | None) -> np.ndarray:
    if len(data) < 4:
        raise DataFormatError(f"{name}: {len(data)} bytes, too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    zero, type_byte, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0:
        raise DataFormatError(f"{name}: bad IDX magic number 0x{magic:08x} "
                              "(the first two bytes must be zero)")
    if type_byte != 0x08:
        raise DataFormatError(f"{name}: IDX type byte 0x{type_byte:02x}; only 0x08 "
                              "(unsigned byte) is supported")
    if ndim == 0 or (expected_ndim is not None and ndim != expected_ndim):
        want = f"{2048 + expected_ndim} (0x{2048 + expected_ndim:08x})" if expected_ndim else "at least one dimension"
        raise DataFormatError(f"{name}: IDX magic number {magic} (0x{magic:08x}) declares "
                              f"{ndim} dimensions; expected {want}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataFormatError(f"{name}: truncated IDX header ({len(data)} bytes, "
                              f"{ndim} dimensions need {header})")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    need, have = math.prod(dims), len(data) - header
    if have != need:
        what = "truncated file" if have < need else "trailing bytes"
        raise DataFormatError(f"{name}: IDX payload has {have} bytes but the header "
                              f"dimensions {dims} need {need} ({what})")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims).copy()


def read_amat(path, n_features: int | None = None) -> np.ndarray:
    """Read a binary ``.amat`` text file (one row of 0/1 values a line).

    Parameters
    ----------
    path : path-like
        Rows of ``0``/``1`` separated by single spaces, each ending with a
        newline (the layout of Larochelle & Murray's binarized MNIST).
    n_features : int, optional
        Required number of values per row (784 for binarized MNIST).

    Returns
    -------
    numpy.ndarray
        (N, D) ``uint8`` with values 0 and 1.

    Raises
    ------
    DataFormatError
        Empty file, ragged rows, values other than 0/1, or a wrong row length.
    """
    name = str(path)
    data = Path(path).read_bytes()
    x = _parse_amat_fast(data)
    if x is None:
        x = _parse_amat_slow(data, name)
    if n_features is not None and x.shape[1] != n_features:
        raise DataFormatError(f"{name}: rows have {x.shape[1]} values, expected {n_features}")
    return x


def _parse_amat_fast(data: bytes) -> np.ndarray | None:
    """Vectorised parse of the exact layout "v v ... v\\n"; None if it does not fit."""
    line_len = data.find(b"\n")
    if line_len <= 0 or line_len % 2 == 0 or len(data) % (line_len + 1):
        return None
    rows = np.frombuffer(data, np.uint8).reshape(-1, line_len + 1)  # (N, 2 D)
    values, seps = rows[:, 0::2], rows[:, 1::2]                      # (N, D) each
    if not (((values == ord("0")) | (values == ord("1"))).all()
            and (seps[:, :-1] == ord(" ")).all() and (seps[:, -1] == ord("\n")).all()):
        return None
    return values - np.uint8(ord("0"))


def _parse_amat_slow(data: bytes, name: str) -> np.ndarray:
    """Tolerant parse (any whitespace, 0/1 written as numbers) with line errors."""
    lines = data.decode("ascii", errors="replace").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataFormatError(f"{name}: empty .amat file")
    rows = []
    for number, line in enumerate(lines, start=1):
        tokens = line.split()
        if rows and len(tokens) != len(rows[0]):
            raise DataFormatError(f"{name}: line {number} has {len(tokens)} values, "
                                  f"line 1 has {len(rows[0])} (truncated or corrupt)")
        try:
            row = [float(t) for t in tokens]
        except ValueError as err:
            raise DataFormatError(f"{name}: line {number}: {err}") from None
        if not tokens or any(v not in (0.0, 1.0) for v in row):
            raise DataFormatError(f"{name}: line {number} must hold values 0 or 1")
        rows.append(row)
    return np.asarray(rows, dtype=np.uint8)


# What np.load raises for a file that is not the expected npz layout.
_NPZ_ERRORS = (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile)


def _read_packed_npz(path: Path) -> np.ndarray:
    """(N, D) uint8 0/1 from an npz with ``x_packed`` (np.packbits rows) and ``n_features``."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            packed, n_features = npz["x_packed"], int(npz["n_features"])
    except _NPZ_ERRORS as err:
        raise DataFormatError(f"{path}: not a packed binary npz ({type(err).__name__}: {err})") from err
    if packed.dtype != np.uint8 or packed.ndim != 2 or packed.shape[1] * 8 < n_features:
        raise DataFormatError(f"{path}: x_packed {packed.dtype} {packed.shape} cannot hold "
                              f"{n_features} features")
    return np.unpackbits(packed, axis=1, count=n_features)


# ---------------------------------------------------------------------------
# Binarisation and batches (MATH §12)
# ---------------------------------------------------------------------------

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
    """Static binarisation, MATH §12: 1 where the pixel is >= 128.

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
    """Dynamic binarisation, MATH §12: ``x ~ Bernoulli(pixel / 255)``.

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


def train_validation_split(x: np.ndarray, y: np.ndarray | None, validation_size,
                           random_state=0):
    """Random split of examples into training and validation parts.

    Parameters
    ----------
    x : numpy.ndarray
        (N, D) data.
    y : numpy.ndarray or None
        (N,) labels.
    validation_size : int or float
        Number of validation examples, or a fraction in (0, 1) (rounded up).
    random_state : numpy.random.Generator or int
        The split is reproducible for a fixed seed.

    Returns
    -------
    tuple
        ``(x_train, y_train, x_valid, y_valid)``; each part keeps the original
        order of its examples. The ``y`` parts are None when ``y`` is None.
    """
    n = len(x)
    if y is not None and len(y) != n:
        raise ValueError(f"x has {n} rows but y has {len(y)}")
    n_valid = _split_count(validation_size, n)
    order = _as_generator(random_state).permutation(n)  # (N,)
    valid, train = np.sort(order[:n_valid]), np.sort(order[n_valid:])
    pick = (lambda a, i: None if a is None else a[i])
    return x[train], pick(y, train), x[valid], pick(y, valid)


def _split_count(size, n: int) -> int:
    if isinstance(size, (bool, np.bool_)):
        raise TypeError("validation_size must be an int or a float, not bool")
    if isinstance(size, (float, np.floating)):
        if not 0.0 <= size < 1.0:
            raise ValueError(f"a fractional validation_size must be in [0, 1), not {size}")
        count = math.ceil(size * n)
    elif isinstance(size, (int, np.integer)):
        count = int(size)
    else:
        raise TypeError(f"validation_size must be an int or a float, not {type(size).__name__}")
    if not 0 <= count < n:
        raise ValueError(f"validation_size {size} leaves no training data out of {n} examples")
    return count


# ---------------------------------------------------------------------------
# Data sets
# ---------------------------------------------------------------------------

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


_DEFAULT_BINARIZATION = {
    "mnist": "dynamic",
    "fashion_mnist": "dynamic",
    "binarized_mnist": "static",
    "frey": "none",
    "digits": "dynamic",
    "synthetic": "none",
}
_NATIVELY_BINARY = ("binarized_mnist", "synthetic")
_ALIASES = {"fashion": "fashion_mnist", "binarised_mnist": "binarized_mnist",
            "frey_faces": "frey", "freyfaces": "frey"}


def available_datasets() -> tuple[str, ...]:
    """Names accepted by :func:`load_dataset`."""
    return tuple(_DEFAULT_BINARIZATION)


def _canonical_name(name: str) -> str:
    key = str(name).strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in _DEFAULT_BINARIZATION:
        raise ValueError(f"unknown data set {name!r}; known data sets: "
                         f"{', '.join(available_datasets())}")
    return key


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
    from sklearn.datasets import load_digits  # bundled with scikit-learn: offline

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
    binary = binarization != "none" or key in _NATIVELY_BINARY
    return Dataset(name=key, x_train=x_train, y_train=y_train, x_test=x_test,
                   y_test=raw.y_test, image_shape=raw.image_shape, binarization=binarization,
                   likelihood_hint="bernoulli" if binary else "gaussian",
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
