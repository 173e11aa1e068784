"""Issue 31: a run folder has one writer.  Two real ``npvae train`` processes: the second
(``--resume``, ``--overwrite`` or a new run) is refused in one line while the first writes,
and a lock left by a killed process is taken over."""
import json
import os
import signal
import subprocess
import sys

import pytest

from test_cli_signals import _wait_for_epochs  # one copy of the polling helper

import npvae
import npvae.models  # noqa: F401 (registers the model classes that npvae.load looks up)
from npvae._fsafe import LOCK_NAME, folder_lock

FAST = ["--dataset", "digits", "--hidden", "16", "--latent", "2", "--quiet", "--no-figures"]


def _env():
    return dict(os.environ, MPLBACKEND="Agg")


def _npvae(*argv, timeout=120):
    proc = subprocess.run([sys.executable, "-m", "npvae", *argv], capture_output=True,
                          text=True, env=_env(), timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def _lines(out):
    with open(os.path.join(out, "history.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_a_second_writer_is_refused_and_a_dead_writers_lock_is_taken_over(tmp_path):
    out = str(tmp_path / "run")
    first = subprocess.Popen([sys.executable, "-m", "npvae", "train", *FAST, "--epochs",
                              "100000", "--out", out], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=_env())
    try:
        _wait_for_epochs(first, out, 1)
        with open(os.path.join(out, LOCK_NAME)) as f:
            assert int(f.read()) == first.pid
        for extra in (["--resume", "--epochs", "3"], ["--overwrite", "--epochs", "1"],
                      ["--epochs", "1"]):
            rc, _, err = _npvae("train", *FAST, *extra, "--out", out)
            assert rc == 2, (extra, err)
            assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
            assert f"being written by process {first.pid}" in err, err
        assert first.poll() is None                     # the first goes on undisturbed
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
    # SIGKILL: no cleanup ran, the lock file (with a dead PID) is still there
    assert os.path.exists(os.path.join(out, LOCK_NAME))
    done = npvae.load(os.path.join(out, "checkpoint.npz")).n_iter_
    rc, _, err = _npvae("train", *FAST, "--resume", "--epochs", str(done + 1), "--out", out)
    assert rc == 0, err
    assert [r["epoch"] for r in _lines(out)] == list(range(1, done + 2))
    assert not os.path.exists(os.path.join(out, LOCK_NAME))


def test_the_lock_in_one_process_refuses_another_and_goes_with_it(tmp_path):
    # a second process while the lock is held in this one: refused at once, naming the PID
    lock = folder_lock(str(tmp_path))
    code = ("import sys; from npvae._fsafe import folder_lock, FolderLocked\n"
            "try:\n    folder_lock(sys.argv[1])\nexcept FolderLocked as e:\n"
            "    print(e.pid); sys.exit(3)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, timeout=60, env=_env())
    assert proc.returncode == 3 and int(proc.stdout) == os.getpid()
    lock.release()
    assert not os.path.exists(tmp_path / LOCK_NAME)
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, timeout=60, env=_env())
    assert proc.returncode == 0, proc.stderr


def test_a_link_in_place_of_the_lock_file_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("not a lock")
    (tmp_path / LOCK_NAME).symlink_to(target)
    with pytest.raises(OSError):
        folder_lock(str(tmp_path))
    assert target.read_text() == "not a lock"
