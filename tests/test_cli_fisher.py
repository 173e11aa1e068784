"""``npvae train --model fisher``: the Fisher autoencoder from the command line
(docs/14-fisher-autoencoder.md): grey levels, a Gaussian decoder of fixed variance,
tanh by default; the epoch line shows the Fisher loss, the best epoch is the one with
the lowest validation Fisher loss; the flags it cannot honour are refused in one line."""
from __future__ import annotations

import json
import os

import pytest

import npvae
from npvae import checkpoint
from npvae.cli import main

RUN = ["--dataset", "digits", "--epochs", "2", "--hidden", "16", "--latent", "2",
       "--batch-size", "100", "--gaussian-logvar", "-2", "--no-figures", "--dtype", "float64"]


def test_trains_resumes_and_evaluates(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "--model", "fisher", *RUN, "--out", out]) == 0
    err = capsys.readouterr().err
    assert "train Fisher loss" in err and "val Fisher loss" in err
    model = npvae.load(os.path.join(out, "checkpoint.npz"))
    assert isinstance(model, npvae.FisherAutoencoder)
    assert model.activation == "tanh" and model.decoder_logvar == -2.0
    config = json.loads(open(os.path.join(out, "config.json")).read())
    assert config["binarization"] == "none" and config["likelihood"] == "gaussian"
    meta = checkpoint.read_metadata(os.path.join(out, "best.npz"))
    vals = [h["val_fisher"] for h in model.history_]
    assert meta["best_val_bound"] == "fisher" and meta["best_val"] == min(vals)
    assert main(["train", "--out", out, "--resume", "--epochs", "3", "--kl-warmup", "2"]) == 2
    assert "does not apply to a --model fisher run" in capsys.readouterr().err
    assert main(["train", "--out", out, "--resume", "--epochs", "3", "--no-figures"]) == 0
    assert npvae.load(os.path.join(out, "checkpoint.npz")).n_iter_ == 3
    capsys.readouterr()
    assert main(["evaluate", "--out", out, "--n-importance", "10"]) == 0
    assert "best validation Fisher loss" in capsys.readouterr().out


@pytest.mark.parametrize("extra, said", [
    (["--objective", "iwae"], "leave out --objective"),
    (["--beta", "2"], "leave out --beta"),
    (["--gradient-estimator", "stl"], "leave out --gradient-estimator"),
    (["--gaussian-mean", "sigmoid"], "leave out --gaussian-mean"),
    (["--likelihood", "bernoulli"], "needs --likelihood gaussian"),
    (["--binarization", "dynamic"], "models grey levels"),
    (["--gaussian-variance", "decoder"], "leave out --gaussian-variance"),
    (["--activation", "relu"], "smooth activation"),
    (["--latent", "2,2"], "one --latent size")])
def test_refuses_what_it_cannot_honour(tmp_path, extra, said, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "fisher", *RUN, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert said in err and len(err.splitlines()) == 1, err
    assert not (out / "checkpoint.npz").exists()


def test_the_best_epoch_is_the_lowest_validation_fisher_loss():
    from npvae.training import selection

    assert selection(npvae.FisherAutoencoder()) == ("fisher", -1)
    assert selection(npvae.VAE()) == ("elbo", 1)
    assert selection(npvae.VAE(objective="iwae", k=3)) == ("iwae", 1)


def _vae_config(tmp_path, **changes):
    """A config.json as a VAE run writes it (every flag recorded, the VAE's values)."""
    config = {"dataset": "digits", "model": "vae", "latent": [2], "hidden": [16],
              "activation": "relu", "likelihood": "gaussian", "gaussian_variance": "decoder",
              "gaussian_mean": "sigmoid", "gaussian_logvar": -2.0, "objective": "elbo", "k": 1,
              "beta": 1.0, "epochs": 1, "batch_size": 100, "dtype": "float64",
              "binarization": "none", "out": str(tmp_path / "vae")}
    config.update(changes)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return str(path)


@pytest.mark.parametrize("changes, said", [
    ({}, "give --gaussian-variance fixed --gaussian-mean linear --activation tanh "
         "(--config holds other values)"),
    ({"likelihood": "bernoulli", "objective": "iwae", "k": 5},
     "give --objective elbo --k 1 --likelihood gaussian --gaussian-variance fixed"),
    ({"gaussian_variance": "fixed", "gaussian_mean": "linear", "activation": "softplus",
      "beta": 2.0}, "give --beta 1.0 (--config"),
    ({"likelihood": "bernoulli", "binarization": "dynamic"},         # a Bernoulli VAE's
     "give --likelihood gaussian --gaussian-variance fixed --gaussian-mean linear "
     "--activation tanh --binarization none (--config"),
    ({"dataset": "binarized_mnist", "binarization": "static", "likelihood": "bernoulli",
      "activation": "tanh"}, "--binarization none --dataset mnist (--config"),
    ({"model": "hvae", "latent": [4, 2], "hidden": [[16], [8]], "gaussian_variance": "fixed",
      "gaussian_mean": "linear", "activation": "tanh"},               # a hierarchical VAE's
     "give --latent Z (one size) --hidden WIDTHS (one group) (--config")])
def test_refuses_a_vae_config_it_cannot_honour(tmp_path, changes, said, capsys):
    """Values read from ``--config`` are the earlier run's choices: checked like typed
    ones (not overwritten), and the message says what to give instead."""
    out = tmp_path / "run"
    argv = ["train", "--model", "fisher", "--config", _vae_config(tmp_path, **changes),
            "--out", str(out), "--no-figures"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert said in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_trains_from_a_vae_config_once_the_decoder_is_given(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "fisher", "--config", _vae_config(tmp_path),
                 "--gaussian-variance", "fixed", "--gaussian-mean", "linear",
                 "--activation", "softplus", "--out", str(out), "--no-figures"]) == 0
    model = npvae.load(str(out / "checkpoint.npz"))
    assert isinstance(model, npvae.FisherAutoencoder)
    assert model.activation == "softplus" and model.decoder_logvar == -2.0
    assert tuple(model.hidden_sizes) == (16,) and model.n_iter_ == 1


def test_a_typed_likelihood_and_a_config_are_refused_together(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "fisher", "--config", _vae_config(tmp_path),
                 "--likelihood", "bernoulli", "--out", str(out), "--no-figures"]) == 2
    err = capsys.readouterr().err.strip()
    assert ("leave out --likelihood; give --gaussian-variance fixed --gaussian-mean linear "
            "--activation tanh (--config holds other values)") in err, err
    assert len(err.splitlines()) == 1 and not out.exists()
