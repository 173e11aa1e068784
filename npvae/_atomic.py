"""All-or-nothing file writes: the one home of the temporary-file-and-rename pattern
(checkpoints, the CLI's JSON files, downloads)."""

from __future__ import annotations

import contextlib
import os
import secrets


@contextlib.contextmanager
def atomic_file(path, mode="wb", prefix=".tmp-", suffix=""):
    """Yield a file object whose contents replace ``path`` only when the block ends
    without an exception: written to a temporary file in ``path``'s folder, synced,
    then renamed over ``path``.

    An exception at any moment — ``KeyboardInterrupt`` or a SIGTERM turned into
    one included — leaves ``path`` as it was and no temporary file behind.  The
    temporary name is chosen *before* the file is created, so the cleanup knows
    it wherever the interruption lands (``tempfile.mkstemp`` creates the file
    first and returns its name after: a signal in between left an orphan).
    The file gets the permissions of any new file (``0o666`` less the umask).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f"{prefix}{secrets.token_hex(8)}{suffix}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
