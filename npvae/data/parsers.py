"""Parsers of the data file formats: IDX, ``.amat`` text, packed ``.npz``.

Every parser returns ``uint8`` arrays and raises :class:`DataFormatError`
(naming the file) for a layout it does not expect.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .registry import DataFormatError


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

    Layout (the IDX format published with MNIST): big-endian magic
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
