"""What a newcomer hit (issue 32): the Gaussian likelihood on the offline digits, the
CLI's messages and flags, and running without scikit-learn."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import npvae
from npvae.cli import main
from npvae.data import load_dataset, quantization_step
from npvae.distributions.likelihoods import Gaussian
from npvae.distributions.likelihoods.gaussian import (floored_logvar, gaussian_decoder_backward,
                                                       gaussian_decoder_forward)
from npvae.gradcheck import check_kernel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--hidden", "16", "--latent", "2", "--batch-size", "50", "--quiet", "--no-figures"]


# ----------------------------------------------------------------------- the variance floor
def test_quantization_step_of_the_digits_and_of_binary_input():
    ds = load_dataset("digits", binarization="none")
    assert quantization_step(ds.x_train) == pytest.approx(15 / 255)     # 17 levels
    assert quantization_step(ds.x_train, "dynamic") == 1.0
    assert quantization_step(np.arange(256, dtype=np.uint8)) == pytest.approx(1 / 255)


@pytest.mark.parametrize("sigmoid_mean", [False, True])
def test_floored_decoder_kernel_gradient(sigmoid_mean):
    rng = np.random.default_rng(0)
    out = rng.normal(0, 3, (2, 3, 4, 2))
    x = rng.uniform(0, 1, (3, 4))
    errors = check_kernel(lambda o, x: gaussian_decoder_forward(o, x, sigmoid_mean, -2.0),
                          gaussian_decoder_backward, [out, x], {0: 0}, rng)
    assert errors[0] < 1e-7


def test_the_floor_bounds_the_log_density_where_a_pixel_never_changes():
    # a pixel that is 0 in every image: without a floor log p grows without bound as the
    # decoder's log-variance falls; with one it stays below -1/2 (log 2 pi + floor)
    x = np.zeros((1, 1))
    out = np.zeros((1, 1, 1, 2))
    out[..., 0] = 0.0                                  # mean 0 (linear)
    floor = np.log((15 / 255) ** 2 / 12)
    for b in (-10.0, -100.0, -600.0):
        out[..., 1] = b
        free, _ = gaussian_decoder_forward(out, x)
        floored, _ = gaussian_decoder_forward(out, x, False, floor)
        assert free[0, 0] == pytest.approx(-0.5 * (np.log(2 * np.pi) + b))
        assert floored[0, 0] <= -0.5 * (np.log(2 * np.pi) + floor)
    lam, dlam = floored_logvar(np.array([-1e4, floor, 50.0]), floor)
    np.testing.assert_allclose(lam, [floor, floor + np.log(2), 50.0], rtol=1e-12)
    np.testing.assert_allclose(dlam, [0.0, 0.5, 1.0], atol=1e-12)


@pytest.mark.parametrize("variance", ["scalar", "per_output"])
def test_a_floored_learned_variance_starts_at_logvar(variance):
    # (the floored model's gradients: tests/test_likelihood_gaussian_decoder.py)
    m = npvae.VAE(n_latent=2, hidden_sizes=(5,), likelihood="gaussian",
                  likelihood_params={"variance": variance, "logvar": -1.0, "min_logvar": -3.0},
                  random_state=1).initialize(6)
    lam, _ = floored_logvar(m.params_["obs_logvar"], -3.0)
    np.testing.assert_allclose(lam, -1.0, rtol=1e-5)


def test_min_logvar_is_checked_and_kept_by_checkpoints(tmp_path):
    with pytest.raises(ValueError, match="min_logvar"):
        Gaussian(variance="decoder", min_logvar=float("nan"))
    with pytest.raises(ValueError, match="fixed"):
        Gaussian(variance="fixed", min_logvar=-3)
    m = npvae.VAE(n_latent=2, hidden_sizes=(4,), likelihood="gaussian",
                  likelihood_params={"variance": "decoder", "min_logvar": -5.0}).initialize(3)
    npvae.save(m, tmp_path / "m.npz")
    assert npvae.load(tmp_path / "m.npz")._lik.min_logvar == -5.0
    assert "min_logvar" not in Gaussian(variance="decoder").options()   # old files unchanged


def test_the_cli_floors_a_learned_variance_from_the_data(tmp_path, capsys):
    out = str(tmp_path / "g")
    assert main(["train", "--dataset", "digits", "--likelihood", "gaussian",
                 "--binarization", "none", "--epochs", "0", *FAST, "--out", out]) == 0
    config = json.load(open(os.path.join(out, "config.json")))
    floor = config["likelihood_params"]["min_logvar"]
    assert floor == pytest.approx(np.log((15 / 255) ** 2 / 12), abs=1e-4)
    out2 = str(tmp_path / "none")
    assert main(["train", "--dataset", "digits", "--likelihood", "gaussian",
                 "--gaussian-min-logvar", "none", "--epochs", "0", *FAST, "--out", out2]) == 0
    config = json.load(open(os.path.join(out2, "config.json")))
    assert "min_logvar" not in config["likelihood_params"]
    assert main(["train", "--dataset", "digits", "--likelihood", "gaussian",
                 "--gaussian-variance", "fixed", "--gaussian-min-logvar", "-3",
                 *FAST, "--out", str(tmp_path / "f")]) == 2
    assert "--gaussian-min-logvar floors a learned variance" in capsys.readouterr().err
    assert main(["train", "--dataset", "digits", "--gaussian-min-logvar", "-3",
                 *FAST, "--out", str(tmp_path / "b")]) == 2
    assert "--gaussian-min-logvar applies to --likelihood gaussian only" in capsys.readouterr().err


def _cli(*argv, timeout=1200):
    env = dict(os.environ, PYTHONPATH=ROOT, MPLBACKEND="Agg")
    env.pop("NPVAE_DATA", None)
    return subprocess.run([sys.executable, "-m", "npvae", *argv], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


@pytest.mark.slow
def test_gaussian_on_the_digits_trains_at_the_default_settings(tmp_path):
    out = str(tmp_path / "g")
    proc = _cli("train", "--likelihood", "gaussian", "--dataset", "digits", "--quiet",
                "--no-figures", "--out", out)
    assert proc.returncode == 0, proc.stderr
    results = json.load(open(os.path.join(out, "results.json")))
    assert results["epochs"] == 100 and np.isfinite(results["elbo"])


@pytest.mark.slow
def test_the_divergence_advice_for_a_gaussian_works(tmp_path):
    # without the floor the variance runs to 0 and the run diverges (at epoch 14); the
    # message's advice, taken as written, trains
    out = str(tmp_path / "g")
    proc = _cli("train", "--likelihood", "gaussian", "--dataset", "digits", "--quiet",
                "--no-figures", "--gaussian-min-logvar", "none", "--epochs", "30", "--out", out)
    assert proc.returncode == 1
    line = proc.stderr.strip().splitlines()[-1]
    assert "training diverged" in line and "`" in line
    advice = line.split("`")[1].split()
    assert advice[:3] == ["--out", out, "--overwrite"]
    proc = _cli("train", "--likelihood", "gaussian", "--dataset", "digits", "--quiet",
                "--no-figures", "--epochs", "30", *advice)
    assert proc.returncode == 0, proc.stderr
    assert np.isfinite(json.load(open(os.path.join(out, "results.json")))["elbo"])


# ----------------------------------------------------------------------- without scikit-learn
#: run first in a subprocess: every import of sklearn fails, as where it is not installed
_HIDE_SKLEARN = """
import sys
class _Hide:
    def find_spec(self, name, path=None, target=None):
        if name == "sklearn" or name.startswith("sklearn."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _Hide())
"""


def _without_sklearn(code, tmp_path, timeout=600):
    env = dict(os.environ, PYTHONPATH=ROOT, MPLBACKEND="Agg")
    env.pop("NPVAE_DATA", None)
    return subprocess.run([sys.executable, "-c", _HIDE_SKLEARN + code], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=str(tmp_path))


def test_the_offline_digits_without_sklearn_is_one_line(tmp_path):
    proc = _without_sklearn("from npvae.cli import main; sys.exit(main(['train', '--dataset', "
                            "'digits', '--epochs', '1', '--quiet', '--out', 'r']))", tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "scikit-learn" in proc.stderr and "internal error" not in proc.stderr


def test_latent_figure_and_not_fitted_error_without_sklearn(tmp_path):
    # a PCA latent plot (Z = 3 > 2) and an unfitted transform, with sklearn unimportable
    code = """
from npvae.cli import main
rc = main(['train', '--dataset', 'synthetic', '--epochs', '1', '--max-examples', '100',
           '--latent', '3', '--hidden', '8', '--quiet', '--out', 'r'])
assert rc == 0, rc
import os, npvae
assert os.path.getsize('r/figures/latent.png') > 1000
try:
    npvae.VAE().transform([[0.0, 1.0]])
except Exception as exc:
    print(type(exc).__name__, isinstance(exc, ValueError), isinstance(exc, AttributeError))
assert 'sklearn' not in sys.modules
"""
    proc = _without_sklearn(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-3:] == ["NotFittedError", "True", "True"]


def test_threadpoolctl_is_declared():
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    required = cfg["options"]["install_requires"]
    assert "threadpoolctl" in required and "scikit-learn" in required


# ----------------------------------------------------------------------- the CLI's words
SYN = ["--dataset", "synthetic", "--max-examples", "100", "--epochs", "0", *FAST]


@pytest.mark.parametrize("argv, words", [
    (["--objective", "iwae"], "--objective iwae needs --k K, at least 2"),
    (["--objective", "iwae", "--k", "1"], "--objective iwae needs --k K, at least 2"),
    (["--k", "5"], "--k 5 applies to --objective iwae only"),
    (["--gradient-estimator", "dreg"], "--gradient-estimator dreg is for --objective iwae"),
    (["--dataset", "digits", "--likelihood", "bernoulli", "--binarization", "none"],
     "--likelihood bernoulli needs binary data"),
])
def test_errors_name_flags_not_python_parameters(argv, words, tmp_path, capsys):
    assert main(["train", *SYN, *argv, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1
    assert "='" not in err and "=[" not in err            # no gradient_estimator='dreg' etc.


def test_iwae_with_k_trains(tmp_path):
    assert main(["train", *SYN, "--objective", "iwae", "--k", "2",
                 "--out", str(tmp_path / "r")]) == 0


def test_sample_label_is_in_the_title_and_an_unknown_label_names_the_flag(tmp_path, capsys,
                                                                          monkeypatch):
    out = str(tmp_path / "c")
    assert main(["train", *SYN, "--model", "cvae", "--out", out]) == 0
    titles = []
    import npvae.plots

    original = npvae.plots.plot_samples
    monkeypatch.setattr(npvae.plots, "plot_samples",
                        lambda *a, **k: (titles.append(k.get("title")), original(*a, **k))[1])
    assert main(["sample", "--out", out, "-n", "4", "--label", "3"]) == 0
    assert main(["sample", "--out", out, "-n", "4"]) == 0
    assert "label 3" in titles[0] and "each label" in titles[1]
    capsys.readouterr()
    assert main(["sample", "--out", out, "-n", "4", "--label", "11"]) == 2
    err = capsys.readouterr().err
    assert "--label 11: this model knows the labels 0, 1, 2, 3" in err and "classes=" not in err


@pytest.mark.parametrize("argv, suggestion", [
    (["train", "--likelihod", "gaussian"], "did you mean --likelihood?"),
    (["train", "--gausian-variance", "fixed"], "did you mean --gaussian-variance?"),
    (["train", "--likelihood", "gausian"], "did you mean gaussian?"),
    (["trian"], "did you mean train?"),
    (["sample", "--lable", "3"], "did you mean --label?"),
])
def test_a_typo_gets_a_did_you_mean(argv, suggestion, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert suggestion in capsys.readouterr().err


def test_no_suggestion_for_a_flag_like_none(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--zzzzzz", "1"])
    assert "did you mean" not in capsys.readouterr().err


# ----------------------------------------------------------------------- the README
def _tables(text):
    """Blocks of consecutive lines that start with '|', outside code fences."""
    blocks, block, fenced = [], [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("|"):
            block.append(line)
            continue
        if block:
            blocks.append(block)
        block = []
    return blocks + ([block] if block else [])


@pytest.mark.parametrize("name", ["README.md", "docs/README.md", "pretrained/README.md",
                                  "demos/README.md"])
def test_every_table_is_one_contiguous_block(name):
    path = os.path.join(ROOT, name)
    if not os.path.exists(path):
        pytest.skip(f"{name} absent")
    for block in _tables(open(path, encoding="utf-8").read()):
        # a block that does not start with a header and its separator is the tail of a
        # table cut off by a blank line: Markdown renders it as text
        assert len(block) >= 2 and set(block[1].replace(" ", "")) <= set("|-:"), (
            f"{name}: a table's rows are split from its header: {block[0][:80]}")
        columns = block[0].count("|")
        assert all(row.count("|") - row.count("\\|") >= columns - row.count("`|")
                   for row in block), f"{name}: a row with fewer cells: {block[0][:60]}"


def test_the_quick_start_elbo_is_quoted_once():
    # the default 10-epoch MNIST run is quoted under the figures and in the Results table
    import re

    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    quoted = re.search(r"first command above; test ELBO\s+(−[\d.]+) nats", text).group(1)
    row = next(line for line in text.splitlines()
               if line.startswith("| MNIST") and "--dataset mnist --out runs/mnist" in line)
    assert f"| {quoted} ±" in row
