"""Every CLI command on a tiny run; every figure written and non-empty."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.image import imread

import npvae
from npvae import data
from npvae.cli import main

TINY = ["--dataset", "synthetic", "--epochs", "2", "--hidden", "16", "--latent", "2",
        "--max-examples", "300", "--batch-size", "50", "--quiet", "--dtype", "float64"]
FIGURES = ["reconstructions", "samples", "training_curves", "latent", "manifold",
           "interpolation"]


def assert_png(path):
    assert os.path.getsize(path) > 1000, path
    img = imread(path)
    assert img.ndim == 3 and np.unique(img.reshape(-1, img.shape[-1]), axis=0).shape[0] > 2


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("cli") / "run")
    assert main(["train", *TINY, "--out", out]) == 0
    return out


def test_train_writes_a_complete_run_folder(run):
    for name in ("checkpoint.npz", "best.npz", "history.jsonl", "config.json", "results.json"):
        assert os.path.exists(os.path.join(run, name)), name
    for name in FIGURES:
        assert_png(os.path.join(run, "figures", f"{name}.png"))
    history = [json.loads(l) for l in open(os.path.join(run, "history.jsonl"))]
    assert len(history) == 2
    res = json.load(open(os.path.join(run, "results.json")))
    assert res["dataset"] == "synthetic" and np.isfinite(res["elbo"])
    assert json.load(open(os.path.join(run, "config.json")))["latent"] == [2]


def test_resume_continues_the_run(run, tmp_path):
    import shutil
    copy = str(tmp_path / "copy")
    shutil.copytree(run, copy)
    # --epochs is the total: the 2-epoch run trains one more
    assert main(["train", "--out", copy, "--resume", "--epochs", "3", "--quiet",
                 "--no-figures"]) == 0
    assert npvae.load(os.path.join(copy, "checkpoint.npz")).n_iter_ == 3
    assert len(open(os.path.join(copy, "history.jsonl")).readlines()) == 3


def test_evaluate(run, capsys):
    assert main(["evaluate", "--out", run, "--n-importance", "20", "--max-examples", "50"]) == 0
    out = capsys.readouterr().out
    assert "test ELBO" in out and "NLL (K=20)" in out and "bits/dim" in out
    assert "active units: [" in out
    res = json.load(open(os.path.join(run, "evaluation-test.json")))
    assert res["nll"] >= -res["elbo"] - 1.0 and res["n_examples"] == 50


def test_evaluate_a_checkpoint_into_a_new_folder(run, tmp_path):
    """``--checkpoint`` with an ``--out`` that does not exist yet: the folder is made
    (it used to fail with a bare errno message after the whole evaluation)."""
    out = str(tmp_path / "new" / "eval")
    assert main(["evaluate", "--checkpoint", os.path.join(run, "checkpoint.npz"), "--out", out,
                 "--max-examples", "20"]) == 0
    assert json.load(open(os.path.join(out, "evaluation-test.json")))["n_examples"] == 20


@pytest.mark.parametrize("posterior", ["dirichlet", "concrete"])
def test_evaluate_does_not_count_active_units_of_codes_on_the_simplex(posterior, tmp_path,
                                                                      capsys):
    """Burda's active units (the variance of a Gaussian posterior mean) printed "0" for a
    Dirichlet VAE that uses its codes; now the line says why it is not counted."""
    out = str(tmp_path / posterior)
    assert main(["train", *TINY, "--posterior", posterior, "--no-figures", "--out", out]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--out", out, "--max-examples", "30"]) == 0
    printed = capsys.readouterr().out
    assert f"active units: not counted for posterior={posterior}" in printed
    assert "active_units" not in json.load(open(os.path.join(out, "evaluation-test.json")))


def test_sample(run, tmp_path):
    target = str(tmp_path / "s.png")
    assert main(["sample", "--out", run, "-n", "16", "--seed", "3", "--output", target]) == 0
    assert_png(target)
    means = np.load(str(tmp_path / "s.npy"))
    assert means.shape == (16, 256) and means.min() >= 0 and means.max() <= 1


def test_plot(run):
    for name in FIGURES:
        os.remove(os.path.join(run, "figures", f"{name}.png"))
    assert main(["plot", "--out", run]) == 0
    for name in FIGURES:
        assert_png(os.path.join(run, "figures", f"{name}.png"))


def test_a_checkpoint_elsewhere_writes_its_figures_to_out(run, tmp_path):
    """``--checkpoint FILE --out DIR``: sample and plot write into DIR, never beside FILE
    (a shipped model's folder stays as it was)."""
    import shutil

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    ckpt = shipped / "model.npz"
    shutil.copy(os.path.join(run, "best.npz"), ckpt)
    out = tmp_path / "mine"
    assert main(["sample", "--checkpoint", str(ckpt), "--out", str(out), "--seed", "1"]) == 0
    assert_png(str(out / "figures" / "samples-prior-seed1.png"))
    assert main(["plot", "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    for name in FIGURES:
        assert_png(str(out / "figures" / f"{name}.png"))
    assert sorted(os.listdir(shipped)) == ["model.npz"]
    assert main(["sample", "--checkpoint", str(ckpt), "--seed", "2"]) == 0    # no --out: beside it
    assert_png(str(shipped / "figures" / "samples-prior-seed2.png"))


def test_auto_falls_back_to_digits_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("NPVAE_DATA", raising=False)
    monkeypatch.setenv("NPVAE_CACHE", str(tmp_path / "cache"))

    def offline(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(data.files, "_open_url", offline)
    out = str(tmp_path / "auto")
    assert main(["train", "--epochs", "1", "--hidden", "8", "--latent", "2", "--out", out,
                 "--no-figures", "--quiet"]) == 0
    said = capsys.readouterr().err                 # on stderr, even with --quiet
    assert "MNIST not available" in said and "offline 8x8 digits" in said
    assert json.load(open(os.path.join(out, "results.json")))["dataset"] == "digits"


def test_errors_are_messages_not_tracebacks(tmp_path, capsys):
    assert main(["evaluate", "--out", str(tmp_path / "nothing")]) == 2
    assert "no such folder" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    assert main(["evaluate", "--checkpoint", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "not an npvae checkpoint" in err or "not a readable npvae checkpoint" in err
    assert main(["train", "--dataset", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "nope" in capsys.readouterr().err


def test_module_entry_point_and_help(capsys):
    r = subprocess.run([sys.executable, "-m", "npvae", "--help"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "usage: npvae" in r.stdout and "train" in r.stdout
    for command in ("train", "evaluate", "sample", "plot"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--seed", "--out", "--dataset", "--data-dir", "--kl-warmup", "--clip-norm",
                 "--patience", "--resume", "--lr-schedule", "--n-importance", "--label"):
        assert flag in text, flag


@pytest.mark.parametrize("extra", [["--model", "cvae"], ["--model", "hvae", "--latent", "3,2",
                                                         "--hidden", "16;8"],
                                   ["--posterior", "full"], ["--objective", "iwae", "--k", "3"]])
def test_other_models_from_the_cli(tmp_path, extra, capsys):
    out = str(tmp_path / "run")
    i = TINY.index("--latent")
    args = TINY[:i] + TINY[i + 2:]                       # TINY without its --latent 2
    args += [] if "--latent" in extra else ["--latent", "2"]
    assert main(["train", *args, *extra, "--out", out]) == 0
    for name in ("reconstructions", "samples", "training_curves", "latent", "interpolation"):
        assert_png(os.path.join(out, "figures", f"{name}.png"))
    assert main(["evaluate", "--out", out, "--n-importance", "10", "--max-examples", "20"]) == 0
    said = capsys.readouterr().out
    assert "NLL (K=10)" in said
    assert "parameters: " in said and "best.npz" in said      # which parameters were scored
    if extra[1] == "hvae":
        assert "active units: [" in said and "," in said.split("active units: [")[1].split("]")[0]
    target = str(tmp_path / "s.png")
    if extra[1] == "cvae":
        assert main(["sample", "--out", out, "--label", "2", "-n", "8", "--output", target]) == 0
        assert_png(target)
        assert main(["sample", "--out", out, "--label", "2", "-n", "4"]) == 0
        assert_png(os.path.join(out, "figures", "samples-label2-seed0.png"))
        assert main(["train", "--out", out, "--resume", "--epochs", "3", "--quiet",
                     "--no-figures"]) == 0
        assert npvae.load(os.path.join(out, "checkpoint.npz")).n_iter_ == 3
    else:
        assert main(["sample", "--out", out, "--label", "2", "--output", target]) == 2
        assert "conditional" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["vae", "hvae", "cvae"])
def test_the_report_scores_in_chunks_as_one_call_would(kind):
    """``_evaluate_and_report`` converts and scores a split CHUNK rows at a time (so a
    split is never held as floats in full); its ELBO and active units are those of one
    ``score_samples(x, random_state=seed)`` / ``active_units(x)`` on the whole split."""
    from types import SimpleNamespace

    from npvae.cli.evaluate import _evaluate_and_report
    from npvae.models.base import CHUNK

    rng = np.random.default_rng(0)
    n = 2 * CHUNK + 37                                       # three chunks, the last short
    bits = (rng.random((n, 12)) < 0.3).astype(np.uint8)
    stored = 255 * bits                                      # binary sets store 0/255
    y = rng.integers(0, 3, n)
    ds = SimpleNamespace(x_train=None, x_valid=None, x_test=stored, y_test=y, y_train=None,
                         y_valid=None, name="toy", binarization="static")
    small = dict(hidden_sizes=(8,), dtype="float32", random_state=0)
    model = {"vae": lambda: npvae.VAE(n_latent=3, **small),
             "hvae": lambda: npvae.HierarchicalVAE(latent_sizes=(3, 2), **small),
             "cvae": lambda: npvae.ConditionalVAE(n_latent=3, classes=[0, 1, 2], **small)}[kind]()
    model.initialize(12)
    x = bits.astype(np.float32)
    cond = (y,) if kind == "cvae" else ()
    res = _evaluate_and_report(model, ds, "test", 5, 0, quiet=True)
    whole = model.score_samples(x, *cond, random_state=5)
    assert res["n_examples"] == n
    assert res["elbo"] == pytest.approx(float(whole.mean()), rel=1e-6)
    assert res["active_units"] == model.active_units(x, *cond)
    part = _evaluate_and_report(model, ds, "test", 5, 0, quiet=True, max_examples=CHUNK + 1)
    first = model.score_samples(x[:CHUNK + 1], *(c[:CHUNK + 1] for c in cond), random_state=5)
    assert part["elbo"] == pytest.approx(float(first.mean()), rel=1e-6)
