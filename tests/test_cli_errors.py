"""Every failure of a command is one line on stderr and a non-zero exit status:
user errors, data errors, a diverged run, an interrupt, an internal error."""
import gzip
import json
import os

import pytest

import npvae
import npvae.training
from npvae import data
from npvae.cli import main

FAST = ["--hidden", "16", "--latent", "2", "--batch-size", "50", "--quiet", "--no-figures"]
DIGITS = ["--dataset", "digits", "--epochs", "2", *FAST]


def run(argv, capsys):
    """``main(argv)`` → (exit status, stdout, stderr); a failure is exactly one line."""
    rc = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out
    if rc != 0:
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
    return rc, out, err


# ----------------------------------------------------------------------- 2: divergence
def test_divergence_is_one_line_and_claims_no_checkpoint_that_is_not_there(tmp_path, capsys):
    out = str(tmp_path / "run")
    rc, _, err = run(["train", *DIGITS, "--lr", "1e4", "--out", out], capsys)
    assert rc == 1
    assert err.startswith("npvae train: error: training diverged: the loss became")
    assert "nothing was saved" in err and "--lr (it was 10000)" in err
    assert "--clip-norm" in err and "holds the last completed epoch" not in err
    assert "Try a smaller learning rate" not in err        # the library's advice, replaced
    assert not os.path.exists(out)             # nothing left that would block the next try
    assert run(["train", *DIGITS, "--epochs", "1", "--out", out], capsys)[0] == 0


def test_divergence_after_a_checkpoint_says_where_it_is(tmp_path, capsys, monkeypatch):
    real, calls = npvae.training.train_step, []

    def diverge_in_epoch_2(*a, **k):           # digits: 1350 examples, 27 batches an epoch
        calls.append(1)
        if len(calls) > 30:
            raise npvae.training.TrainingDiverged("the loss became nan (gradient finite: False)")
        return real(*a, **k)

    monkeypatch.setattr(npvae.training, "train_step", diverge_in_epoch_2)
    out = str(tmp_path / "run")
    rc, _, err = run(["train", *DIGITS, "--epochs", "4", "--clip-norm", "5", "--out", out],
                     capsys)
    assert rc == 1
    assert f"{out}/checkpoint.npz holds the last completed epoch" in err.replace(os.sep, "/")
    assert "--resume" in err and "smaller --clip-norm (it was 5)" in err
    assert npvae.load(os.path.join(out, "checkpoint.npz")).n_iter_ == 1


# ----------------------------------------------------------------------- 6: --out reuse
def test_an_existing_run_is_not_overwritten_without_overwrite(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert run(["train", *DIGITS, "--out", out], capsys)[0] == 0
    before = open(os.path.join(out, "history.jsonl")).read()
    rc, _, err = run(["train", *DIGITS, "--seed", "1", "--out", out], capsys)
    assert rc == 2
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert open(os.path.join(out, "history.jsonl")).read() == before
    (tmp_path / "run" / "evaluation-test.json").write_text("{}")
    (tmp_path / "run" / "mine.txt").write_text("the user's own file")
    assert run(["train", *DIGITS, "--seed", "1", "--epochs", "1", "--overwrite", "--out", out],
               capsys)[0] == 0
    assert len(open(os.path.join(out, "history.jsonl")).readlines()) == 1
    assert not os.path.exists(os.path.join(out, "evaluation-test.json"))
    assert os.path.exists(os.path.join(out, "mine.txt"))
    assert json.load(open(os.path.join(out, "config.json")))["seed"] == 1


def test_a_run_that_fails_before_its_first_checkpoint_leaves_nothing(tmp_path, capsys,
                                                                   monkeypatch):
    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(npvae.training, "train_step", interrupt)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    rc, _, err = run(["train", *DIGITS, "--out", str(out)], capsys)
    assert rc == 130 and "nothing saved" in err
    assert sorted(os.listdir(out)) == ["notes.txt"]


def test_a_library_warning_is_one_line(tmp_path, capsys, monkeypatch):
    import warnings

    import npvae.cli.train as cli_train

    def warn(*a, **k):
        warnings.warn("the learning rate may be too high", UserWarning)
        return {}

    monkeypatch.setattr(cli_train, "_evaluate_and_report", warn)
    rc, _, err = run(["train", *DIGITS, "--out", str(tmp_path / "run")], capsys)
    assert rc == 0 and err == "npvae train: warning: the learning rate may be too high\n"


def test_a_folder_with_only_a_config_is_an_unstarted_run_taken_over(tmp_path, capsys):
    # issue 31: it refused both a new train and --resume
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("{}")
    rc, _, err = run(["train", "--resume", "--out", str(out)], capsys)
    assert rc == 2 and "before its first epoch ended" in err and "--config" in err
    rc, _, err = run(["train", *DIGITS, "--out", str(out)], capsys)
    assert rc == 0 and "never finished an epoch" in err
    assert json.load(open(out / "config.json"))["dataset"] == "digits"


def test_overwrite_keeps_the_old_run_when_the_new_settings_are_bad(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert run(["train", *DIGITS, "--out", out], capsys)[0] == 0
    rc, _, err = run(["train", *DIGITS, "--latent", "3,2", "--overwrite", "--out", out], capsys)
    assert rc == 2 and "--latent" in err
    assert os.path.exists(os.path.join(out, "checkpoint.npz"))


# ----------------------------------------------------------------------- 7: data sets
def _offline(monkeypatch, tmp_path):
    monkeypatch.delenv("NPVAE_DATA", raising=False)
    monkeypatch.setenv("NPVAE_CACHE", str(tmp_path / "cache"))

    def offline(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(data.files, "_open_url", offline)


def test_a_corrupt_mnist_is_an_error_not_a_fallback(tmp_path, monkeypatch, capsys):
    _offline(monkeypatch, tmp_path)
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    for name in data.REGISTRY["mnist"]:
        (folder / name).write_bytes(gzip.compress(b"not mnist"))
    out = str(tmp_path / "run")
    for dataset in ("auto", "mnist"):
        rc, said, err = run(["train", "--dataset", dataset, "--data-dir", str(tmp_path / "data"),
                             *FAST, "--out", out], capsys)
        assert rc == 2 and "checksum mismatch" in err, err
        assert "digits" not in said + err
    assert not os.path.exists(out)


def test_a_named_mnist_never_falls_back(tmp_path, monkeypatch, capsys):
    _offline(monkeypatch, tmp_path)
    rc, said, err = run(["train", "--dataset", "mnist", *FAST, "--out", str(tmp_path / "r")],
                        capsys)
    assert rc == 2 and "not found" in err and "--data-dir" in err
    assert "digits" not in said + err


# ----------------------------------------------------------------------- 5, 8: the rest
@pytest.mark.parametrize("where", ["data", "evaluation", "figures"])
def test_ctrl_c_anywhere_is_one_line_and_130(where, tmp_path, monkeypatch, capsys):
    import npvae.cli.train as cli_train

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    target = {"data": (data, "load_dataset"),
              "evaluation": (cli_train, "_evaluate_and_report"),
              "figures": (cli_train, "write_figures")}[where]
    monkeypatch.setattr(*target, interrupt)
    args = ["train", *DIGITS, "--out", str(tmp_path / "run")]
    if where == "figures":
        args.remove("--no-figures")
    rc, _, err = run(args, capsys)
    assert rc == 130 and err.startswith("npvae train: interrupted")


def test_ctrl_c_in_training_says_how_to_continue(tmp_path, monkeypatch, capsys):
    real, calls = npvae.training.train_step, []

    def interrupt_in_epoch_2(*a, **k):
        calls.append(1)
        if len(calls) > 30:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(npvae.training, "train_step", interrupt_in_epoch_2)
    out = str(tmp_path / "run")
    rc, _, err = run(["train", *DIGITS, "--out", out], capsys)
    assert rc == 130 and "interrupted:" in err and "holds the last completed epoch" in err
    assert f"npvae train --out {out} --resume" in err


@pytest.mark.parametrize("error", [TypeError("bad operand"), KeyError("x"), RuntimeError("boom"),
                                   ZeroDivisionError("division by zero")])
def test_any_other_exception_is_an_internal_error_line(error, tmp_path, monkeypatch, capsys):
    import npvae.cli.train as cli_train

    def fail(*a, **k):
        raise error

    monkeypatch.setattr(cli_train, "_evaluate_and_report", fail)
    rc, _, err = run(["train", *DIGITS, "--out", str(tmp_path / "run")], capsys)
    assert rc == 1
    assert err.strip() == (f"npvae train: internal error: {type(error).__name__}: "
                           f"{error} (set NPVAE_DEBUG=1 for the traceback)")
    monkeypatch.setenv("NPVAE_DEBUG", "1")
    with pytest.raises(type(error)):
        main(["train", *DIGITS, "--out", str(tmp_path / "run2")])


def test_npvae_debug_reraises_user_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("NPVAE_DEBUG", "1")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError):
        main(["evaluate", "--checkpoint", str(bad)])


def test_user_errors_of_the_other_commands(tmp_path, capsys):
    assert run(["evaluate"], capsys)[0] == 2
    assert run(["sample", "--checkpoint", str(tmp_path / "none.npz")], capsys)[0] == 2
    assert run(["plot", "--out", str(tmp_path)], capsys)[0] == 2
    model = npvae.VAE(n_latent=2, hidden_sizes=(4,)).initialize(6)
    npvae.save(model, str(tmp_path / "bare.npz"))   # no data set recorded
    rc, _, err = run(["evaluate", "--checkpoint", str(tmp_path / "bare.npz")], capsys)
    assert rc == 2 and "not written by `npvae train`" in err
    rc, _, err = run(["train", *DIGITS, "--model", "vae", "--latent", "2,2",
                      "--out", str(tmp_path / "r")], capsys)
    assert rc == 2 and "--latent" in err
    rc, _, err = run(["train", *DIGITS, "--validation-size", "5000", "--out",
                      str(tmp_path / "r")], capsys)
    assert rc == 2 and "--validation-size 5000 leaves no training data" in err
    rc, _, err = run(["train", *DIGITS, "--validation-size", "0", "--patience", "2",
                      "--out", str(tmp_path / "r")], capsys)
    assert rc == 2 and "--patience needs a validation split" in err


def test_the_divergence_reason_drops_the_librarys_advice():
    from npvae.cli.train import _reason
    from npvae.training import TrainingDiverged

    per_step = TrainingDiverged(
        "the loss became nan (gradient finite: False) at epoch 1, batch 2 (step 2); parameters "
        "are those of the last good step, and r/checkpoint.npz holds the last completed epoch. "
        "Try a smaller learning rate or clip_norm.")
    assert _reason(per_step) == ("the loss became nan (gradient finite: False) at epoch 1, "
                                 "batch 2 (step 2)")
    finite = TrainingDiverged(
        "the training ELBO fell to -5e+228 nats at epoch 5 (the first batch had -540), 3 epochs "
        "in a row: training diverged. Try a smaller learning rate or clip_norm.")
    assert _reason(finite) == ("the training ELBO fell to -5e+228 nats at epoch 5 (the first "
                               "batch had -540), 3 epochs in a row")
