"""The pretrained models in ``pretrained/``: each file listed in ``SHA256SUMS`` with
its digest, float32, under 2 MB, loadable offline with its history and the data
metadata the command line reads, and scoring the test set as the README says
(that part needs MNIST: NPVAE_DATA)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import npvae
from npvae import checkpoint
from npvae.data.files import sha256_file

PRETRAINED = Path(__file__).resolve().parent.parent / "pretrained"


def listed():
    sums = PRETRAINED / "SHA256SUMS"
    if not sums.exists():
        return {}
    out = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            out[name.lstrip("*")] = digest
    return out


def test_every_file_is_listed_with_its_digest():
    files = {p.name for p in PRETRAINED.glob("*.npz")}
    assert files == set(listed()), "pretrained/*.npz and pretrained/SHA256SUMS disagree"
    for name, digest in listed().items():
        assert sha256_file(PRETRAINED / name) == digest, name


@pytest.mark.parametrize("name", sorted(listed()))
def test_loads_offline(name):
    path = PRETRAINED / name
    assert path.stat().st_size < 2_000_000
    model = npvae.load(path)
    assert model.flat_params_.dtype == np.float32
    assert model.optimizer_state_ is None             # shipped without the Adam state
    assert len(model.history_) == model.n_iter_ > 0
    data = checkpoint.read_metadata(path)["data"]
    assert data["dataset"] == "mnist" and data["binarization"] == "dynamic"
    x = (np.random.default_rng(0).random((4, 784)) < 0.2).astype(np.float32)
    assert np.all(np.isfinite(model.score_samples(x, random_state=0)))
    assert model.sample(3, random_state=0).shape == (3, 784)


def card(name):
    """The model card beside a pretrained file: ``<name>.json`` with its test scores."""
    return json.loads((PRETRAINED / name.replace(".npz", ".json")).read_text())


@pytest.mark.parametrize("name", sorted(listed()))
def test_every_model_has_a_card(name):
    c = card(name)
    for key in ("test_elbo", "test_nll", "test_nll_se", "n_importance", "seed", "n_test",
                "published_nll", "epochs", "train_seconds", "command", "evaluate_command"):
        assert key in c, key
    assert npvae.load(PRETRAINED / name).n_iter_ == c["epochs"]


needs_mnist = pytest.mark.skipif(not os.environ.get("NPVAE_DATA"),
                                 reason="needs MNIST: set NPVAE_DATA")


@needs_mnist
@pytest.mark.parametrize("name", sorted(listed()))
def test_test_elbo_as_the_card_says(name):
    """The whole test set's ELBO (one draw of z, seed 0): seconds, so in the default run."""
    from npvae.data import load_dataset

    c = card(name)
    x = load_dataset("mnist", binarization="dynamic").as_float("test", "float32")[:c["n_test"]]
    elbo = npvae.load(PRETRAINED / name).score_samples(x, random_state=c["seed"])
    assert float(elbo.mean()) == pytest.approx(c["test_elbo"], abs=1e-3)


@pytest.mark.slow
@needs_mnist
@pytest.mark.parametrize("name", sorted(listed()))
def test_npvae_evaluate_reproduces_the_card(name, tmp_path):
    """``npvae evaluate --checkpoint pretrained/NAME --n-importance 5000``: the README's
    number (minutes: K = 5000 on all 10,000 test images)."""
    from npvae.cli import main

    c = card(name)
    assert main(["evaluate", "--checkpoint", str(PRETRAINED / name), "--n-importance",
                 str(c["n_importance"]), "--seed", str(c["seed"]), "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "evaluation-test.json").read_text())
    assert res["n_examples"] == c["n_test"]
    assert res["nll"] == pytest.approx(c["test_nll"], abs=1e-3)
    assert res["elbo"] == pytest.approx(c["test_elbo"], abs=1e-3)
