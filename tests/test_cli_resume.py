"""``npvae train --resume``: --epochs is the total; training flags given override the
stored ones (and are said), model and data flags are refused; the run folder is made
consistent (history from the checkpoint, no orphaned temporary files)."""
import json
import os

import pytest

import npvae
import npvae.training
from npvae.cli import main

FAST = ["--hidden", "16", "--latent", "2", "--batch-size", "50", "--quiet", "--no-figures"]


def run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if rc != 0:
        assert len(err.strip().splitlines()) == 1, err
    return rc, out, err


def history(out):
    return [json.loads(line) for line in open(os.path.join(out, "history.jsonl"))]


def epochs_done(out):
    return npvae.load(os.path.join(out, "checkpoint.npz")).n_iter_


@pytest.fixture
def interrupted(tmp_path, monkeypatch, capsys):
    """A digits run with --epochs 4 interrupted (Ctrl-C) in its third epoch."""
    real, calls = npvae.training.train_step, []

    def interrupt_in_epoch_3(*a, **k):             # 27 batches an epoch
        calls.append(1)
        if len(calls) == 60:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(npvae.training, "train_step", interrupt_in_epoch_3)
    out = str(tmp_path / "run")
    assert run(["train", "--dataset", "digits", "--epochs", "4", *FAST, "--out", out],
               capsys)[0] == 130
    monkeypatch.setattr(npvae.training, "train_step", real)
    assert epochs_done(out) == 2
    return out


def test_resume_trains_up_to_the_stored_total(interrupted, capsys):
    rc, said, err = run(["train", "--out", interrupted, "--resume", "--quiet"], capsys)
    assert rc == 0 and err == ""                          # no setting changed
    assert epochs_done(interrupted) == 4                  # 2 more, not 4 more
    assert [h["epoch"] for h in history(interrupted)] == [1, 2, 3, 4]
    results = json.load(open(os.path.join(interrupted, "results.json")))
    assert results["epochs"] == 4 and results["early_stopped"] is False
    # the training time counts all four epochs, the two before the interruption too
    epoch_seconds = [h["seconds"] for h in history(interrupted)]
    assert results["train_seconds"] == pytest.approx(sum(epoch_seconds))
    assert results["train_seconds"] > sum(epoch_seconds[2:])


def test_a_finished_run_says_so(interrupted, capsys):
    assert run(["train", "--out", interrupted, "--resume", "--epochs", "3"], capsys)[0] == 0
    assert epochs_done(interrupted) == 3
    rc, said, _ = run(["train", "--out", interrupted, "--resume"], capsys)   # stored total: 3
    assert rc == 0 and "is finished" in said and "3 of --epochs 3" in said
    rc, said, _ = run(["train", "--out", interrupted, "--resume", "--epochs", "2"], capsys)
    assert rc == 0 and "is finished" in said
    assert epochs_done(interrupted) == 3
    assert run(["train", "--out", interrupted, "--resume", "--epochs", "5"], capsys)[0] == 0
    assert epochs_done(interrupted) == 5 and len(history(interrupted)) == 5


def test_flags_given_override_the_stored_settings_and_are_said(interrupted, capsys):
    rc, _, err = run(["train", "--out", interrupted, "--resume", "--lr", "1e-4",
                      "--clip-norm", "3", "--batch-size", "30"], capsys)
    assert rc == 0
    assert "changed settings" in err and "--lr 0.001 -> 0.0001" in err
    assert "--clip-norm none -> 3" in err and "--batch-size 50 -> 30" in err
    rates = [h["learning_rate"] for h in history(interrupted)]
    assert rates == [1e-3, 1e-3, 1e-4, 1e-4]
    config = json.load(open(os.path.join(interrupted, "config.json")))
    assert config["lr"] == 1e-4 and config["clip_norm"] == 3 and config["batch_size"] == 30
    meta = npvae.checkpoint.read_metadata(os.path.join(interrupted, "checkpoint.npz"))
    assert meta["config"]["lr"] == 1e-4                   # the next resume keeps it


def test_a_flag_given_at_its_default_still_overrides(interrupted, capsys):
    assert run(["train", "--out", interrupted, "--resume", "--epochs", "3", "--lr", "1e-4"],
               capsys)[0] == 0
    rc, _, err = run(["train", "--out", interrupted, "--resume", "--epochs", "4",
                      "--lr", "0.001"], capsys)
    assert rc == 0 and "--lr 0.0001 -> 0.001" in err
    assert history(interrupted)[-1]["learning_rate"] == 1e-3


@pytest.mark.parametrize("flags", [["--latent", "3"], ["--hidden", "32"],
                                   ["--likelihood", "gaussian"], ["--dataset", "synthetic"],
                                   ["--model", "hvae"], ["--seed", "4"], ["--dtype", "float64"],
                                   ["--binarization", "static"], ["--max-examples", "100"],
                                   ["--gaussian-variance", "scalar"]])
def test_model_and_data_flags_are_refused(interrupted, flags, capsys):
    rc, _, err = run(["train", "--out", interrupted, "--resume", *flags], capsys)
    assert rc == 2
    assert err.startswith("npvae train: error: --resume continues the run") and flags[0] in err
    assert epochs_done(interrupted) == 2


def test_the_runs_own_settings_repeated_are_accepted(interrupted, capsys):
    rc, _, err = run(["train", "--dataset", "digits", "--epochs", "4", *FAST, "--out",
                      interrupted, "--resume", "--binarization", "dynamic",
                      "--likelihood", "bernoulli"], capsys)
    assert rc == 0 and err == ""
    assert epochs_done(interrupted) == 4


def test_history_is_rewritten_from_the_checkpoint(interrupted, capsys):
    path = os.path.join(interrupted, "history.jsonl")
    lines = open(path).readlines()
    open(path, "w").writelines(lines[:1])                 # Ctrl-C after a checkpoint
    assert run(["train", "--out", interrupted, "--resume"], capsys)[0] == 0
    assert [h["epoch"] for h in history(interrupted)] == [1, 2, 3, 4]
    assert history(interrupted) == npvae.load(os.path.join(interrupted, "checkpoint.npz")).history_


def test_orphaned_temporary_checkpoints_are_removed(interrupted, tmp_path, capsys):
    orphan = os.path.join(interrupted, ".tmp-abc123.npz")
    open(orphan, "wb").write(b"half a checkpoint")
    keep = os.path.join(interrupted, "notes.npz")
    open(keep, "wb").write(b"not ours")
    assert run(["train", "--out", interrupted, "--resume"], capsys)[0] == 0
    assert not os.path.exists(orphan) and os.path.exists(keep)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / ".tmp-x.npz").write_bytes(b"")
    assert run(["train", "--dataset", "digits", "--epochs", "1", *FAST, "--out", str(fresh)],
               capsys)[0] == 0
    assert not (fresh / ".tmp-x.npz").exists()


def test_resume_needs_a_run(tmp_path, capsys):
    rc, _, err = run(["train", "--resume"], capsys)
    assert rc == 2 and "--out" in err
    rc, _, err = run(["train", "--resume", "--out", str(tmp_path)], capsys)
    assert rc == 2 and "no checkpoint" in err
    model = npvae.VAE(n_latent=2, hidden_sizes=(4,)).initialize(6)
    npvae.save(model, str(tmp_path / "checkpoint.npz"))
    rc, _, err = run(["train", "--resume", "--out", str(tmp_path)], capsys)
    assert rc == 2 and "not written by `npvae train`" in err


def test_an_early_stopped_run_is_finished(tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "run")
    # a learning rate so small that the validation ELBO stops improving at once
    rc, _, _ = run(["train", "--dataset", "digits", "--epochs", "30", "--patience", "1",
                    "--optimizer", "sgd", "--lr", "1e-12", *FAST, "--out", out], capsys)
    assert rc == 0
    results = json.load(open(os.path.join(out, "results.json")))
    if not results["early_stopped"]:
        pytest.skip("the run did not stop early")
    rc, said, _ = run(["train", "--out", out, "--resume"], capsys)
    assert rc == 0 and "early stopping ended it" in said


def test_zero_epochs_writes_the_initial_model_which_resumes(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert run(["train", "--dataset", "digits", "--epochs", "0", *FAST, "--out", out],
               capsys)[0] == 0
    assert epochs_done(out) == 0 and history(out) == []
    assert run(["evaluate", "--out", out, "--max-examples", "20"], capsys)[0] == 0
    assert run(["train", "--out", out, "--resume", "--epochs", "2", "--quiet"], capsys)[0] == 0
    assert epochs_done(out) == 2 and len(history(out)) == 2


def test_config_runs_a_recorded_run_again(tmp_path, capsys):
    """``npvae train --config RUN/config.json`` trains the same model on the same data
    with the same settings: the same parameters, bit for bit, in RUN-again."""
    import numpy as np
    from npvae.cli import main
    first = str(tmp_path / "a")
    assert main(["train", "--dataset", "digits", "--epochs", "2", "--latent", "3", "--hidden",
                 "16", "--lr", "0.003", "--quiet", "--no-figures", "--out", first]) == 0
    assert main(["train", "--config", f"{first}/config.json", "--quiet", "--no-figures"]) == 0
    with np.load(f"{first}/checkpoint.npz") as a, np.load(f"{first}-again/checkpoint.npz") as b:
        np.testing.assert_array_equal(a["flat_params"], b["flat_params"])
    # a flag given overrides the recorded one
    assert main(["train", "--config", f"{first}/config.json", "--epochs", "1", "--quiet",
                 "--no-figures", "--out", str(tmp_path / "c")]) == 0
    assert main(["train", "--config", str(tmp_path / "nope.json"), "--quiet"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_burda_schedule_and_adam_eps_from_the_command_line(tmp_path, monkeypatch, capsys):
    seen = []
    real = npvae.training.make_optimizer

    def spy(name, lr, options=None):
        seen.append(options)
        return real(name, lr, options)

    monkeypatch.setattr(npvae.training, "make_optimizer", spy)
    out = str(tmp_path / "run")
    assert run(["train", "--dataset", "digits", "--epochs", "2", *FAST, "--out", out,
                "--lr-schedule", "burda", "--adam-eps", "1e-4"], capsys)[0] == 0
    rates = [r["learning_rate"] for r in history(out)]
    assert rates == pytest.approx([1e-3, 1e-3 * 10 ** (-1 / 7)])
    assert seen[-1] == {"eps": 1e-4}
    assert json.load(open(os.path.join(out, "config.json")))["adam_eps"] == 1e-4
    # resumed further: the stored epsilon and schedule continue (epochs 3 and 4: stage 1)
    assert run(["train", "--out", out, "--resume", "--epochs", "4", "--quiet"], capsys)[0] == 0
    assert seen[-1] == {"eps": 1e-4}
    assert [r["learning_rate"] for r in history(out)][2:] == pytest.approx([1e-3 * 10 ** (-1 / 7)] * 2)
