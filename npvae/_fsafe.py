"""Files that a hostile or faulty environment cannot turn against npvae: the one home
of the run-folder lock, of the regular-file check before a read, and of appending
without following links.

* :func:`folder_lock` — one writer per folder: a lock file holding the writer's PID,
  locked with ``fcntl.flock`` (the kernel releases it when the process dies, however
  it dies, so a lock left by a dead process is taken over without a word);
* :func:`require_regular_file` — a FIFO, a device or a folder given where a file is
  expected would block a read forever or read without end: refused before opening;
* :func:`append_line` — one line appended to a file that is never a symbolic link
  (``O_NOFOLLOW``): a link planted in a run folder is refused, not written through.
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat

#: the lock file of a folder being written (it holds the writer's PID)
LOCK_NAME = ".npvae.lock"


class FolderLocked(RuntimeError):
    """Another process holds the lock of a folder (:func:`folder_lock`)."""

    def __init__(self, folder, pid):
        self.folder, self.pid = folder, pid
        who = f"process {pid}" if pid else "another process"
        super().__init__(f"{folder} is being written by {who} (lock file "
                         f"{os.path.join(folder, LOCK_NAME)}); wait for it to end, or choose "
                         "another folder")


class FolderLock:
    """The lock of one folder, held from :func:`folder_lock` until :meth:`release`."""

    def __init__(self, folder, fd, path):
        self.folder, self._fd, self._path = folder, fd, path

    def release(self):
        """Remove the lock file (while still holding it: a process waiting on the old
        file notices it is gone and retries) and let the lock go.  Idempotent."""
        if self._fd is None:
            return
        try:
            if _same_file(self._path, self._fd):
                os.remove(self._path)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None


def _same_file(path, fd):
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    here = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (here.st_dev, here.st_ino)


def _read_pid(fd):
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def folder_lock(folder):
    """Lock ``folder`` (which must exist) for this process; returns a :class:`FolderLock`.

    Raises :class:`FolderLocked` at once (never waits) when another live process holds
    it.  The lock file is opened with ``O_NOFOLLOW``: a link in its place is an error."""
    path = os.path.join(folder, LOCK_NAME)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                     | os.O_NONBLOCK, 0o666)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(f"{path} is not a regular file")
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise FolderLocked(folder, pid) from None
        except BaseException:
            os.close(fd)
            raise
        if _same_file(path, fd):        # else its holder removed it as we opened it: again
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return FolderLock(folder, fd, path)


def require_regular_file(path, what=None):
    """``path`` if it names a regular file (links followed); else ``OSError`` in one line
    (``FileNotFoundError`` when there is nothing there).  Called before opening a file
    to read: a FIFO would block the reader forever, a device read without end."""
    label = what or os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{label}: no such file") from None
    if not stat.S_ISREG(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise OSError(f"{label} is {kind}, not a regular file")
    return path


def append_line(path, line):
    """Append ``line`` (with a newline) to ``path``, created if absent; a symbolic link
    or any non-regular file at ``path`` is refused (``OSError``), never written through."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
                     | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(f"{path} is a symbolic link; npvae does not write through "
                          "links in a run folder") from None
        raise
    with os.fdopen(fd, "a") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        f.write(line + "\n")
