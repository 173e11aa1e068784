"""The pretrained models in ``pretrained/``: each file listed in ``SHA256SUMS`` with
its digest, float32 and no bigger than its parameters (no optimiser state, the
history compressed), loadable offline with its history and the data
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
    model = npvae.load(path)
    assert model.flat_params_.dtype == np.float32
    # float32 parameters barely deflate (~6%); the history must, and the Adam state
    # (twice the parameters again) must not be there: raw parameters + 200 kB.
    assert path.stat().st_size < 4 * model.flat_params_.size + 200_000
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


def test_shipping_keeps_the_parameters_and_rounds_only_the_history(tmp_path):
    """``benchmarks.ship_pretrained``: the file it writes scores exactly as the run's
    final model, its history floats keep 7 significant digits, its digest is listed
    and on the card."""
    from benchmarks.ship_pretrained import ship

    x = (np.random.default_rng(1).random((40, 12)) < 0.3).astype(np.float32)
    m = npvae.VAE(n_latent=2, hidden_sizes=(5,), random_state=0).fit(x, epochs=2, batch_size=10)
    m.optimizer_state_ = None
    (tmp_path / "run" / "vae-2").mkdir(parents=True)
    npvae.save(m, tmp_path / "run" / "vae-2" / "final.npz", {"data": {"dataset": "toy"}})
    row = {"model": "vae-2", "epochs": 2, "train_seconds": 1.23456, "test_nll": 5.0,
           "test_nll_se": 0.1, "test_elbo": -6.0, "active_units": [1]}
    settings = {"batch_size": 10, "threads": 1, "n_test": 40, "k_eval": 7}
    (tmp_path / "res.json").write_text(json.dumps({"settings": settings, "rows": [row]}))
    out = tmp_path / "pretrained"
    out.mkdir()
    (out / "SHA256SUMS").write_text("0" * 64 + "  other.npz\n")
    c = ship("vae-2", tmp_path / "run", tmp_path / "res.json", out_dir=out)

    shipped = npvae.load(out / "burda-vae-2level.npz")
    assert np.array_equal(shipped.flat_params_, m.flat_params_)
    assert shipped.optimizer_state_ is None
    assert checkpoint.read_metadata(out / "burda-vae-2level.npz")["data"] == {"dataset": "toy"}
    for mine, theirs in zip(shipped.history_, m.history_):
        assert mine.keys() == theirs.keys()
        assert mine["train_elbo"] == pytest.approx(theirs["train_elbo"], rel=1e-6)
        assert len(repr(abs(mine["train_elbo"])).replace(".", "").lstrip("0")) <= 8
    sums = dict(reversed(line.split()) for line in (out / "SHA256SUMS").read_text().splitlines())
    assert sums == {"other.npz": "0" * 64, "burda-vae-2level.npz": c["sha256"]}
    assert sha256_file(out / "burda-vae-2level.npz") == c["sha256"]
    assert c["published_nll"] == 85.33 and c["n_importance"] == 7
    assert "--models vae-2" in c["command"] and "burda-vae-2level.npz" in c["evaluate_command"]
    assert json.loads((out / "burda-vae-2level.json").read_text()) == c


def test_shipping_the_ladder_vae_from_its_benchmark_run(tmp_path, monkeypatch):
    """``ship_pretrained --model ladder`` reads ``benchmarks.ladder_vae``'s run folder and
    its ``ladder.json`` (one ``row``): the shipped file keeps the parameters and the batch
    norm's running statistics, and the card names the Ladder VAE's paper, schedule and
    command."""
    import types

    from benchmarks import ladder_vae
    from benchmarks.ship_pretrained import ship

    rng = np.random.default_rng(0)
    pixels = (rng.random((120, 12)) * 255).astype(np.uint8)
    fake = types.SimpleNamespace(x_train=pixels, n_features=12,
                                 as_float=lambda split, dtype: (pixels[:20] > 127).astype(dtype))
    monkeypatch.setattr(ladder_vae, "load_dataset", lambda *a, **k: fake)
    run = tmp_path / "run"
    row = ladder_vae.main(["--epochs", "2", "--warmup-epochs", "1", "--n-test", "20",
                           "--k-eval", "3", "--threads", "1", "--latent-sizes", "3,2",
                           "--hidden-sizes", "8,4", "--batch-size", "50", "--run-dir", str(run)])
    out = tmp_path / "pretrained"
    c = ship("ladder", run, run / "ladder.json", out_dir=out)
    shipped = npvae.load(out / "ladder-vae-mnist.npz")
    final = npvae.load(run / "ladder" / "final.npz")
    assert np.array_equal(shipped.flat_params_, final.flat_params_)
    assert shipped.n_iter_ == 2 and shipped.optimizer_state_ is None
    assert c["test_nll"] == row["test_nll"] and c["published_nll"] == 81.74
    assert c["reference"].startswith("Sønderby") and "warm" not in c["reference"]
    assert "2 epochs, Adam at learning rate 0.002, batch 50" in c["schedule"]
    assert "benchmarks.ladder_vae" in c["command"] and "--threads 1" in c["command"]
    assert "ladder-vae-mnist.npz" in c["evaluate_command"]
    assert (out / "SHA256SUMS").read_text() == f"{c['sha256']}  ladder-vae-mnist.npz\n"


def test_results_figure_draws_every_shipped_model(tmp_path):
    from benchmarks import burda_figure

    found = burda_figure.entries(PRETRAINED)
    expected = [label for stem, (label, *_) in burda_figure.MODELS.items()
                if f"{stem}.npz" in listed()]
    assert expected and [f[0] for f in found] == expected
    for _, key, _, history, card in found:
        assert len(history) == card["epochs"] and all(key in h for h in history)
    out = burda_figure.plot(found, tmp_path / "f.png")
    assert Path(out).stat().st_size > 10_000


@pytest.mark.parametrize("name", sorted(listed()))
def test_npvae_sample_uses_the_shipped_file_offline(name, tmp_path, capsys, monkeypatch):
    """``npvae sample --checkpoint pretrained/NAME``: no data needed."""
    from npvae.cli import main

    monkeypatch.delenv("NPVAE_DATA", raising=False)
    assert main(["sample", "--checkpoint", str(PRETRAINED / name), "-n", "16",
                 "--out", str(tmp_path), "--threads", "1"]) == 0
    assert (tmp_path / "figures" / "samples-prior-seed0.png").stat().st_size > 5_000
    assert "error" not in capsys.readouterr().err


@needs_mnist
@pytest.mark.parametrize("name", sorted(listed()))
def test_npvae_plot_uses_the_shipped_file(name, tmp_path, capsys):
    """``npvae plot --checkpoint pretrained/NAME``: the figures a user would look at
    first, from the file and the test images."""
    from npvae.cli import main

    assert main(["plot", "--checkpoint", str(PRETRAINED / name), "--out", str(tmp_path),
                 "--threads", "1"]) == 0
    figures = {p.name for p in (tmp_path / "figures").glob("*.png")}
    assert {"samples.png", "reconstructions.png", "training_curves.png",
            "latent.png"} <= figures
    assert "error" not in capsys.readouterr().err
