"""Issue 31: a run ends in one line whenever it is killed, a finished run is completable,
and its results are written whatever the terminal can show and labelled with the epoch
whose parameters they score."""
import json
import os
import subprocess
import sys

import numpy as np

import npvae.training
from npvae.cli import main

FAST = ["--hidden", "16", "--latent", "2", "--batch-size", "50", "--quiet", "--no-figures"]
DIGITS = ["--dataset", "digits", *FAST]


def _env(**extra):
    return dict(os.environ, MPLBACKEND="Agg", **extra)


def test_sigterm_before_the_command_has_imported_anything_is_one_line(tmp_path):
    # the kill lands while the arguments are parsed (it ended by the signal, -15: the
    # handler was installed after the parse and the heavy imports)
    code = ("import os, signal, sys\n"
            "import npvae.cli as cli\n"
            "real = cli.build_parser\n"
            "def build():\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    return real()\n"
            "cli.build_parser = build\n"
            "sys.exit(cli.main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", code, "train", *DIGITS, "--epochs", "1",
                           "--out", str(tmp_path / "run")], capture_output=True, text=True,
                          timeout=120, env=_env())
    assert proc.returncode == 143, proc
    assert proc.stderr.strip().splitlines() == ["npvae: terminated"]
    assert not (tmp_path / "run").exists()


def test_importing_the_command_loads_neither_numpy_nor_numba():
    code = "import sys, npvae.cli; print('numpy' in sys.modules, 'numba' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=_env())
    assert proc.stdout.split() == ["False", "False"], proc


def test_resume_completes_a_run_killed_after_its_last_epoch(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *DIGITS, "--epochs", "2", "--out", str(out)]) == 0
    written = json.loads((out / "results.json").read_text())
    os.remove(out / "results.json")          # what a SIGKILL after the last checkpoint leaves
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "results.json was not written" in err and len(err.strip().splitlines()) == 1
    again = json.loads((out / "results.json").read_text())
    assert again["epochs"] == 2 and again["elbo"] == written["elbo"]
    assert len((out / "history.jsonl").read_text().splitlines()) == 2
    # and now it is finished
    assert main(["train", "--resume", "--out", str(out)]) == 0
    assert "is finished" in capsys.readouterr().out


def test_results_are_written_when_the_terminal_cannot_show_the_report(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "npvae", "train", *DIGITS[:-2], "--epochs",
                           "1", "--out", str(out)], capture_output=True, text=True,
                          timeout=120, env=_env(PYTHONIOENCODING="ascii"))
    assert proc.returncode == 0, proc.stderr
    assert "(? " in proc.stdout                   # the "±", replaced
    assert json.loads((out / "results.json").read_text())["epochs"] == 1


def test_early_stopping_labels_the_results_with_the_best_epoch(tmp_path, monkeypatch, capsys):
    real = npvae.training._evaluate
    calls = []

    def worse_every_epoch(*a, **k):          # the best validation ELBO is epoch 2's
        terms = real(*a, **k)
        calls.append(1)
        terms["elbo"] = -100.0 - abs(len(calls) - 2) * 10.0
        return terms

    monkeypatch.setattr(npvae.training, "_evaluate", worse_every_epoch)
    out = tmp_path / "run"
    assert main(["train", *DIGITS, "--epochs", "10", "--patience", "2", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["early_stopped"] and results["epochs"] == 4
    assert results["parameters_epoch"] == 2 and "(epoch 2;" in results["parameters"]
    assert np.isfinite(results["elbo"])


def test_a_second_sigterm_while_the_terminated_command_exits_keeps_143(tmp_path):
    code = ("import os, signal, sys\n"
            "import npvae.cli as cli\n"
            "real = cli.build_parser\n"
            "def build():\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    return real()\n"
            "cli.build_parser = build\n"
            "rc = cli.main()\n"
            "os.kill(os.getpid(), signal.SIGTERM)      # a second kill during the exit\n"
            "sys.exit(rc)\n")
    proc = subprocess.run([sys.executable, "-c", code, "train", *DIGITS, "--epochs", "1",
                           "--out", str(tmp_path / "run")], capture_output=True, text=True,
                          timeout=120, env=_env())
    assert proc.returncode == 143, proc
    assert proc.stderr.strip().splitlines() == ["npvae: terminated"]
