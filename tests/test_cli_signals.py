"""Ctrl-C (SIGINT) and SIGTERM on a real ``npvae train`` process: one line, exit 130
or 143, the last epoch's checkpoint kept and resumable."""
import os
import signal
import subprocess
import sys
import time

import pytest

import npvae
import npvae.models  # noqa: F401 (registers the model classes that npvae.load looks up)


def _start(out, *extra):
    env = dict(os.environ, MPLBACKEND="Agg")
    # a shell may start children with SIGINT ignored; Python only raises
    # KeyboardInterrupt when SIGINT has its default action at start-up
    return subprocess.Popen(
        [sys.executable, "-m", "npvae", "train", "--dataset", "digits", "--epochs", "100000",
         "--hidden", "16", "--latent", "2", "--quiet", "--no-figures", "--out", out, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_epochs(proc, out, n, timeout=120):
    path = os.path.join(out, "history.jsonl")
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f"npvae exited early: {proc.communicate()}")
        if os.path.exists(path) and len(open(path).readlines()) >= n:
            return
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no epoch finished in time")


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"),
                                             (signal.SIGTERM, 143, "terminated")])
def test_a_signal_ends_training_in_one_line(tmp_path, sig, code, word):
    out = str(tmp_path / "run")
    proc = _start(out)
    _wait_for_epochs(proc, out, 2)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith(f"npvae train: {word}: ") and "--resume" in stderr
    done = npvae.load(os.path.join(out, "checkpoint.npz")).n_iter_
    assert done >= 2
    assert not [f for f in os.listdir(out) if f.startswith(".tmp-")]
    # and the run continues from there, its history agreeing with the checkpoint
    proc = _start(out, "--resume", "--epochs", str(done + 1))
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    model = npvae.load(os.path.join(out, "checkpoint.npz"))
    assert model.n_iter_ == done + 1
    assert len(open(os.path.join(out, "history.jsonl")).readlines()) == done + 1
