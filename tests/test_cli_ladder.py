"""``npvae train --model ladder`` (docs/16-ladder-vae.md): trains with KL warm-up,
resumes, evaluates; the flags it cannot honour are refused in one line (exit 2)."""
from __future__ import annotations

import os

import pytest

import npvae
from npvae.cli import main

RUN = ["--dataset", "synthetic", "--epochs", "2", "--latent-sizes", "3,2",
       "--hidden-sizes", "8;4", "--warmup-epochs", "2", "--batch-size", "100", "--no-figures"]


def test_trains_resumes_and_evaluates(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "--model", "ladder", *RUN, "--out", out]) == 0
    model = npvae.load(os.path.join(out, "checkpoint.npz"))
    assert isinstance(model, npvae.LadderVAE)
    assert model.latent_sizes == (3, 2) and model.hidden_sizes == ((8,), (4,))
    b1, b2 = [h["beta"] for h in model.history_]                   # warm-up: last step's β
    assert 0 < b1 < 0.5 < b2 < 1
    assert main(["train", "--out", out, "--resume", "--epochs", "3", "--no-figures"]) == 0
    assert npvae.load(os.path.join(out, "checkpoint.npz")).n_iter_ == 3
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", os.path.join(out, "checkpoint.npz"),
                 "--n-importance", "10"]) == 0
    said = capsys.readouterr().out
    assert "test ELBO" in said and "active units" in said


@pytest.mark.parametrize("extra, said", [
    (["--objective", "iwae", "--k", "5"], "leave out --objective, --k"),
    (["--inference", "markov"], "leave out --inference"),
    (["--gradient-estimator", "stl"], "leave out --gradient-estimator"),
    (["--posterior", "full"], "leave out --posterior"),
    (["--hidden-sizes", "8;4;2"], "3 per-level tuples")])
def test_refuses_what_it_cannot_honour(tmp_path, extra, said, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "ladder", *RUN, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert said in err and len(err.splitlines()) == 1, err
    assert not (out / "checkpoint.npz").exists()
