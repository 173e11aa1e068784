"""``--likelihood beta`` (dequantised grey levels) and the Gaussian's
``--gaussian-variance`` / ``--gaussian-logvar`` from the command line."""
import json
import os

import numpy as np
import pytest

import npvae
from npvae import data
from npvae.cli import main
from npvae.cli.common import dataset_for_run, make_batch_transform, split_x

FAST = ["--hidden", "16", "--latent", "2", "--batch-size", "50", "--quiet"]


def test_beta_trains_and_evaluates_on_dequantised_digits(tmp_path, capsys):
    out = str(tmp_path / "beta")
    assert main(["train", "--dataset", "digits", "--likelihood", "beta", "--epochs", "2",
                 *FAST, "--out", out]) == 0
    model = npvae.load(os.path.join(out, "checkpoint.npz"))
    assert model.likelihood == "beta" and model.n_iter_ == 2
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["likelihood"] == "beta" and config["binarization"] == "none"
    assert os.path.getsize(os.path.join(out, "figures", "samples.png")) > 1000
    capsys.readouterr()
    assert main(["evaluate", "--out", out, "--n-importance", "5", "--max-examples", "30"]) == 0
    said = capsys.readouterr().out
    assert "binarization=none" in said and "likelihood=beta" in said
    res = json.load(open(os.path.join(out, "evaluation-test.json")))
    assert np.isfinite(res["elbo"]) and np.isfinite(res["nll"])
    # every split the model sees is (pixel + 0.5) / 256, strictly inside (0, 1)
    meta = npvae.checkpoint.read_metadata(os.path.join(out, "checkpoint.npz"))
    ds = dataset_for_run(type("A", (), {"data_dir": None})(), meta, out)
    for split in ("valid", "test"):
        x = split_x(ds, split, model)
        np.testing.assert_array_equal(x, data.dequantize(getattr(ds, f"x_{split}"), model.dtype))
        assert x.min() > 0 and x.max() < 1 and len(np.unique(x)) > 2
    xb = make_batch_transform(ds, model)(ds.x_train[:50], np.random.default_rng(0))
    np.testing.assert_array_equal(xb, data.dequantize(ds.x_train[:50], model.dtype))


def test_beta_refuses_binary_data(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert main(["train", "--dataset", "digits", "--likelihood", "beta", "--binarization",
                 "dynamic", *FAST, "--out", out]) == 2
    assert "--binarization" in capsys.readouterr().err
    assert main(["train", "--dataset", "binarized_mnist", "--likelihood", "beta", *FAST,
                 "--out", out]) == 2
    assert "binarized_mnist is binary" in capsys.readouterr().err
    assert not os.path.exists(out)


@pytest.mark.parametrize("variance", ["fixed", "scalar", "per_output", "decoder"])
def test_gaussian_variance_options(tmp_path, variance):
    out = str(tmp_path / variance)
    assert main(["train", "--dataset", "synthetic", "--likelihood", "gaussian", "--epochs", "1",
                 "--max-examples", "200", "--gaussian-variance", variance,
                 "--gaussian-logvar", "-1.5", *FAST, "--no-figures", "--out", out]) == 0
    model = npvae.load(os.path.join(out, "checkpoint.npz"))
    floor = {} if variance == "fixed" else {"min_logvar": -2.4849}   # log(1/12): binary data
    assert model.likelihood_params == {"variance": variance, "logvar": -1.5,
                                       "sigmoid_mean": True, **floor}
    assert ("obs_logvar" in model.params_) == (variance in ("scalar", "per_output"))


def test_the_default_gaussian_is_kingma_and_wellings_decoder(tmp_path):
    """Real-valued data get a learned variance by default: the decoder's own, with a
    sigmoid mean (a variance fixed at 1 on pixels in [0, 1] collapses the posterior)."""
    out = str(tmp_path / "g")
    assert main(["train", "--dataset", "synthetic", "--likelihood", "gaussian", "--epochs", "1",
                 "--max-examples", "200", *FAST, "--no-figures", "--out", out]) == 0
    model = npvae.load(os.path.join(out, "checkpoint.npz"))
    options = model.likelihood_.options()
    assert options["variance"] == "decoder" and options["sigmoid_mean"] is True


@pytest.mark.parametrize("flags", [["--likelihood", "bernoulli", "--gaussian-variance", "scalar"],
                                   ["--likelihood", "beta", "--gaussian-logvar", "-1"],
                                   ["--gaussian-variance", "per_output"]])   # synthetic: bernoulli
def test_gaussian_flags_are_refused_for_other_likelihoods(tmp_path, flags, capsys):
    out = str(tmp_path / "r")
    rc = main(["train", "--dataset", "synthetic", "--epochs", "1", *FAST, *flags, "--out", out])
    err = capsys.readouterr().err
    assert rc == 2 and "gaussian only" in err and len(err.strip().splitlines()) == 1
    assert not os.path.exists(out)


def test_categorical_trains_on_the_levels(tmp_path, capsys):
    """The categorical likelihood over 256 levels reads the stored levels themselves
    (its encoder scales them to [0, 1]); it could not train from the command line."""
    out = str(tmp_path / "cat")
    assert main(["train", "--dataset", "digits", "--likelihood", "categorical", "--epochs", "3",
                 *FAST, "--no-figures", "--out", out]) == 0
    model = npvae.load(os.path.join(out, "checkpoint.npz"))
    elbo = [h["train_elbo"] for h in model.history_]
    assert all(np.isfinite(elbo)) and elbo[-1] > elbo[0]
    assert -64 * np.log(256) < elbo[-1] < 0
    assert json.load(open(os.path.join(out, "config.json")))["binarization"] == "none"
