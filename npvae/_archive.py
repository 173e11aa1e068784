"""Reading a checkpoint archive (:mod:`npvae.checkpoint`) without trusting it: only
the members npvae writes, each ``.npy`` header read first (dtype, shape) and refused
when it holds objects or declares more bytes than it may, the data decompressed only
when asked for."""
from __future__ import annotations

import contextlib
import math
import struct
import zipfile
import zlib

import numpy as np

from ._validation import check_fits_in_memory


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model."""


#: the members :func:`save` writes (``optimizer_<key>`` beside them, one per key of an
#: optimiser's state); any other member is refused before anything is decompressed
MEMBERS = frozenset({"format_version", "model_class", "model_params", "n_features_in", "layout",
                     "flat_params", "flat_params_bytes", "rng_state", "epoch", "history",
                     "metadata", "optimizer_keys"})
#: the largest text (JSON) member accepted, in bytes: the history of a run of thousands
#: of epochs is a few MB, a deflated "history" of 1 GiB of zeros is an attack
MAX_TEXT_BYTES = 256 * 2 ** 20
#: the members that are parameter-sized; their sizes are checked against the model
#: the settings describe before they are read (:func:`_check_sizes`)
_PARAMETER_SIZED = ("flat_params", "flat_params_bytes")


def _optimizer_members():
    from .optim import OPTIMIZERS, make_optimizer

    return {f"optimizer_{k}" for name in OPTIMIZERS
            for k in make_optimizer(name, 1.0).init_state(0, np.float64)}


class _Archive:
    """The members of a checkpoint by name.  Opening reads each member's ``.npy`` header
    only (name, dtype, shape: a few hundred bytes); a member's data is decompressed
    when it is first asked for, so sizes are checked before anything large is read."""

    def __init__(self, path, archive):
        self.path, self.zip, self.headers, self._arrays = path, archive, {}, {}
        allowed = MEMBERS | _optimizer_members()
        for info in archive.infolist():
            key = info.filename[:-4] if info.filename.endswith(".npy") else None
            if key not in allowed:
                raise CheckpointError(f"{path}: not an npvae checkpoint (unknown member "
                                      f"{info.filename[:80]!r})")
            self.headers[key] = (info, *self._header(info, key))

    def _header(self, info, key):
        """``(shape, dtype)`` of a member from its ``.npy`` header, refused when it holds
        objects (pickles) or more bytes than it may."""
        with self.zip.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f"member {key!r} has .npy format version {version}")
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read(f)
        if dtype.hasobject:
            raise CheckpointError(f"{self.path}: member {key!r} holds pickled (object) data, "
                                  "which npvae never writes and does not unpickle; refused")
        n_bytes = math.prod(shape) * dtype.itemsize
        if dtype.kind in "US" and n_bytes > MAX_TEXT_BYTES:
            raise CheckpointError(f"{self.path}: member {key!r} declares {n_bytes:,} bytes of "
                                  f"text, more than a checkpoint holds ({MAX_TEXT_BYTES:,})")
        try:
            check_fits_in_memory(math.prod(shape), dtype.itemsize, f"member {key!r}")
        except ValueError as exc:
            raise CheckpointError(f"{self.path}: {exc}") from None
        return tuple(shape), dtype

    def __contains__(self, key):
        return key in self.headers

    def shape(self, key):
        return self.headers[key][1]

    def __getitem__(self, key):
        if key not in self._arrays:
            with _unreadable(self.path), self.zip.open(self.headers[key][0]) as f:
                self._arrays[key] = np.lib.format.read_array(f, allow_pickle=False)
        return self._arrays[key]


@contextlib.contextmanager
def _unreadable(path):
    """Errors of reading the archive as one-line :class:`CheckpointError` messages."""
    try:
        yield
    except CheckpointError:
        raise
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{path}: not a readable npvae checkpoint (not an .npz archive: "
                              f"{exc})") from None
    except (ValueError, OSError, EOFError, KeyError, MemoryError, TypeError, zlib.error,
            struct.error, NotImplementedError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a readable npvae checkpoint "
                              f"({type(exc).__name__}: {exc})") from None


@contextlib.contextmanager
def read(path):
    """The checkpoint at ``path`` as an :class:`_Archive` (read without pickle, data on
    demand); a clear one-line :class:`CheckpointError` for anything that is not one."""
    with open(path, "rb") as f:                  # a missing file is the caller's error
        with _unreadable(path):
            if f.read(6) == b"\x93NUMPY":
                raise CheckpointError(f"{path}: not an npvae checkpoint (a single .npy array, "
                                      "not an .npz archive)")
            f.seek(0)
            archive = zipfile.ZipFile(f)
            data = _Archive(path, archive)
        with archive:
            yield data
