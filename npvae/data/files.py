"""Data files on disk: checksums, where files come from, downloads.

Where files come from (:func:`resolve_file`), in this order:

1. the ``data_dir`` argument: a folder laid out like ``<data_dir>/<dataset
   folder>/<file>``; the file directly in ``data_dir`` is also accepted;
2. the ``NPVAE_DATA`` environment variable: ``<NPVAE_DATA>/<dataset
   folder>/<file>``;
3. the user cache: ``<NPVAE_CACHE or ~/.cache/npvae>/<dataset folder>/<file>``;
4. a download into the user cache from the public mirrors in
   :data:`~npvae.data.registry.REGISTRY`.

Every file is checked against the SHA-256 in the registry before use (the
published SHA-256 checksums). A mismatch raises :class:`ChecksumError` and is
never retried silently with another copy.

Tests replace ``_open_url``, ``_hash_file``, ``_HASH_CACHE`` and
``DOWNLOAD_TIMEOUT`` on this module (not on the :mod:`npvae.data` package).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import urllib.request
from pathlib import Path

from .._atomic import atomic_file
from .._fsafe import require_regular_file

from .registry import (DATASET_FOLDERS, REGISTRY, ChecksumError, DataNotFoundError,
                       DownloadError, FileSpec, _canonical_name)

logger = logging.getLogger(__name__)

#: Seconds a download may wait on connect or on one read before giving up.
DOWNLOAD_TIMEOUT = 30.0
_CHUNK = 1 << 20  # bytes read at a time when hashing or downloading


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
    path = Path(require_regular_file(Path(path)))   # a FIFO would block the hash forever
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        detail = f" (size {actual_size} bytes, expected {size}"
        detail += "; truncated?)" if actual_size < size else ")"
        # a file larger than expected is not hashed: a 60 GB one was read for minutes
        actual = sha256_file(path) if actual_size < size else "(not read: too large)"
        raise ChecksumError(path, sha256.lower(), actual, detail)
    actual = sha256_file(path)
    if actual != sha256.lower():
        raise ChecksumError(path, sha256.lower(), actual, "")
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
        if os.path.exists(path) and not path.is_dir():    # a FIFO there is refused,
            require_regular_file(path)                  # not skipped for a download
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
    parts = [f"{key}: data file {wanted} not found; searched "
             + ", ".join(str(p) for p in searched) + "."]
    if not download:
        parts.append("Download disabled (download=False).")
    elif problems:
        parts.append("Download failed: " + "; ".join(problems) + ".")
    else:
        parts.append("There is no public download mirror for this file.")
    parts.append(
        f"Put {wanted} (SHA-256 {files[filenames[0]].sha256}"
        f"{', or the SHA-256 in npvae.data.REGISTRY' if len(filenames) > 1 else ''}) "
        f"in {cache_dir() / folder}, or set NPVAE_DATA to a folder holding {folder}/, "
        "or pass data_dir=.")
    # one line: the command line shows a message's first line only
    raise DataNotFoundError(" ".join(parts))


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
    with atomic_file(dest, "wb", prefix=f".{dest.name}.", suffix=".part") as out, \
            _open_url(url, timeout) as response:
        digest, n_bytes = hashlib.sha256(), 0
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
    with contextlib.suppress(OSError):
        _HASH_CACHE[_stat_key(dest)] = actual
    return dest
