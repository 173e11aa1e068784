"""Issue 31: a run folder never adopts what it did not write.  ``--overwrite`` removes the
run's own files by name (and links as links), a new run refuses leftovers of another,
``history.jsonl`` is never written through a link, a failed start leaves nothing."""
import json
import os
import shutil

import numpy as np
import pytest

import npvae
import npvae.cli.train as cli_train
from npvae.cli import main

FAST = ["--hidden", "16", "--latent", "2", "--batch-size", "50", "--quiet", "--no-figures"]
DIGITS = ["--dataset", "digits", "--epochs", "1", *FAST]


def run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out
    if rc != 0:
        assert len(err.strip().splitlines()) == 1, err
    return rc, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished run with its figures (made once; tests copy it)."""
    out = str(tmp_path_factory.mktemp("runs") / "run")
    assert main(["train", "--dataset", "digits", "--epochs", "1", "--hidden", "16",
                 "--latent", "2", "--batch-size", "50", "--quiet", "--out", out]) == 0
    return out


def test_overwrite_removes_only_what_npvae_writes(trained, tmp_path, capsys):
    out = str(tmp_path / "run")
    shutil.copytree(trained, out)
    figures = os.path.join(out, "figures")
    assert os.path.exists(os.path.join(figures, "samples.png"))
    for name in ("my_photo.png", "samples-prior-seed3.png", "samples-prior-seed3.npy"):
        open(os.path.join(figures, name), "w").write("x")
    open(os.path.join(out, "evaluation-mine.json"), "w").write("{}")
    open(os.path.join(out, "evaluation-test.json"), "w").write("{}")
    rc, _, err = run(["train", *DIGITS, "--overwrite", "--out", out], capsys)
    assert rc == 0, err
    assert sorted(os.listdir(figures)) == ["my_photo.png"]
    assert os.path.exists(os.path.join(out, "evaluation-mine.json"))
    assert not os.path.exists(os.path.join(out, "evaluation-test.json"))


def test_overwrite_removes_links_never_their_targets(trained, tmp_path, capsys):
    out = str(tmp_path / "run")
    shutil.copytree(trained, out)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "samples.png").write_text("the user's")
    (mine / "history.txt").write_text("the user's")
    shutil.rmtree(os.path.join(out, "figures"))
    os.symlink(mine, os.path.join(out, "figures"))
    os.remove(os.path.join(out, "history.jsonl"))
    os.symlink(mine / "history.txt", os.path.join(out, "history.jsonl"))
    rc, _, err = run(["train", *DIGITS, "--overwrite", "--out", out], capsys)
    assert rc == 0, err
    assert (mine / "samples.png").read_text() == "the user's"
    assert (mine / "history.txt").read_text() == "the user's"
    assert not os.path.islink(os.path.join(out, "history.jsonl"))
    assert len(open(os.path.join(out, "history.jsonl")).readlines()) == 1


def test_history_is_never_appended_through_a_link(tmp_path):
    from npvae.training import train

    target = tmp_path / "elsewhere.txt"
    target.write_text("the user's\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "history.jsonl").symlink_to(target)
    x = (np.random.default_rng(0).random((40, 6)) > 0.5).astype(np.float64)
    model = npvae.VAE(n_latent=2, hidden_sizes=(4,), random_state=0).initialize(6)
    with pytest.raises(OSError, match="symbolic link"):
        train(model, x, epochs=1, batch_size=20, run_dir=str(run_dir))
    assert target.read_text() == "the user's\n"


@pytest.mark.parametrize("leftover", ["best.npz", "history.jsonl", "results.json"])
def test_a_new_run_refuses_leftovers_of_another(trained, tmp_path, capsys, leftover):
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(os.path.join(trained, leftover), out / leftover)
    rc, _, err = run(["train", *DIGITS, "--validation-size", "0", "--out", str(out)], capsys)
    assert rc == 2 and leftover in err and "--overwrite" in err
    rc, _, err = run(["train", *DIGITS, "--validation-size", "0", "--overwrite",
                      "--out", str(out)], capsys)
    assert rc == 0, err
    assert not (out / "best.npz").exists()          # evaluate scores this run, not a stale one
    assert [json.loads(line)["epoch"] for line in open(out / "history.jsonl")] == [1]


def test_a_start_that_fails_after_config_json_leaves_nothing(tmp_path, capsys, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("a fault after config.json was written")

    monkeypatch.setattr(cli_train, "describe_data", broken)
    out = tmp_path / "run"
    rc, _, err = run(["train", *DIGITS, "--out", str(out)], capsys)
    assert rc == 1 and "a fault after config.json" in err
    assert not out.exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's")
    rc, _, err = run(["train", *DIGITS, "--out", str(mine)], capsys)
    assert rc == 1
    assert sorted(os.listdir(mine)) == ["notes.txt"]
    monkeypatch.undo()
    assert run(["train", *DIGITS, "--out", str(out)], capsys)[0] == 0
