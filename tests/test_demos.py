"""The demos of ``demos/`` run in their fast mode (offline 8x8 digits, few steps).

Each demo's ``main([... "--fast", "--out", tmp_path])`` runs in-process; the
test checks that every figure the demo announces exists and is a non-empty
PNG, that the numbers it returns and prints are finite, and that it says
which data it used.
"""
from __future__ import annotations

import importlib.util
import math
import re
import sys
from pathlib import Path

import pytest

DEMOS_DIR = Path(__file__).resolve().parent.parent / "demos"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

#: demo file stem -> the PNG files it must write
DEMOS = {
    "01_gradient_estimators": ["toy_variance.png", "vae_encoder_gradient.png"],
    "02_divergence_direction": ["mixture_fit.png", "factorised_fit.png"],
    "03_laplace_vs_variational": ["laplace_vs_variational.png"],
    "04_autoencoder_vs_vae": ["autoencoder_vs_vae.png"],
    "05_manifold_and_beta": ["manifold_and_interpolation.png", "beta_comparison.png"],
    "06_hierarchical_levels": ["levels.png", "kl_per_level.png"],
    "07_conditional_and_full_covariance": ["full_covariance.png"],
    "08_elbo_three_ways": ["elbo_three_ways.png"],
    "09_variance_reduction": ["x_squared_variance.png", "vae_variance.png"],
    "10_gradient_snr": ["gradient_snr.png", "test_nll.png", "gradient_snr_hierarchical.png"],
    "11_fisher_autoencoder": ["fisher_vs_vae.png"],
    "12_concrete_vae": ["switching.png", "clustering.png"],
    "13_normalising_flows": ["planar_flows.png"],
    "14_simplex_vae": ["sticks.png", "dirichlet.png", "corners.png"],
}
#: demos that use data (and must say which)
USES_DATA = {"01_gradient_estimators", "04_autoencoder_vs_vae", "05_manifold_and_beta",
             "06_hierarchical_levels", "07_conditional_and_full_covariance",
             "09_variance_reduction", "10_gradient_snr", "11_fisher_autoencoder", "12_concrete_vae",
             "14_simplex_vae"}

NUMBER_LINE = re.compile(r"^\s{2}(?P<key>.+?)\s+=\s+(?P<value>\S+)\s*$")


def load_demo(stem):
    """Import ``demos/<stem>.py`` (file names start with digits: not importable by name)."""
    if str(DEMOS_DIR) not in sys.path:
        sys.path.insert(0, str(DEMOS_DIR))
    spec = importlib.util.spec_from_file_location(f"npvae_demo_{stem}", DEMOS_DIR / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _no_mnist(monkeypatch):
    """--fast always uses the offline digits; make sure no data path is needed."""
    monkeypatch.delenv("NPVAE_DATA", raising=False)


def test_every_demo_is_listed():
    found = {p.stem for p in DEMOS_DIR.glob("[0-9][0-9]_*.py")}
    assert found == set(DEMOS)


@pytest.mark.parametrize("stem", sorted(DEMOS))
def test_demo_fast_mode(stem, tmp_path, capsys):
    import npvae

    module = load_demo(stem)
    threads_before = npvae.backend.get_num_threads()
    results = module.main(["--fast", "--out", str(tmp_path)])
    out = capsys.readouterr().out

    assert npvae.backend.get_num_threads() == threads_before   # the demo restored them
    expected = list(DEMOS[stem])
    if stem == "07_conditional_and_full_covariance":
        if hasattr(npvae, "ConditionalVAE"):
            expected.append("conditional_samples.png")
        else:
            assert "SKIPPED" in out and "ConditionalVAE" in out
    for name in expected:
        path = tmp_path / name
        assert path.is_file(), f"{stem} did not write {name}"
        data = path.read_bytes()
        assert len(data) > 1000 and data[:8] == PNG_MAGIC, f"{name} is not a PNG"
        assert f"wrote {path}" in out

    assert isinstance(results, dict) and results
    bad = {k: v for k, v in results.items() if not math.isfinite(v)}
    assert not bad, f"non-finite results: {bad}"
    printed = {}
    for line in out.splitlines():
        m = NUMBER_LINE.match(line)
        if m:
            printed[m["key"]] = m["value"]
    assert printed, "the demo printed no numbers"
    for key, value in printed.items():
        assert math.isfinite(float(value)), f"{key} = {value}"
    if stem in USES_DATA:
        assert "data: digits" in out
    assert "mode: fast" in out and "run time:" in out


def test_demo_7_without_conditional_vae(tmp_path, capsys, monkeypatch):
    """Without ``npvae.ConditionalVAE`` demo 7 says it skips part 1 and runs part 2."""
    import npvae

    # npvae loads its models on first use (a module __getattr__ reading npvae._LAZY):
    # remove the name from both, or hasattr() would load it again
    monkeypatch.delattr(npvae, "ConditionalVAE", raising=False)
    if "ConditionalVAE" in getattr(npvae, "_LAZY", {}):
        monkeypatch.delitem(npvae._LAZY, "ConditionalVAE")
    assert not hasattr(npvae, "ConditionalVAE")
    module = load_demo("07_conditional_and_full_covariance")
    results = module.main(["--fast", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "SKIPPED part 1" in out and "ConditionalVAE" in out
    assert (tmp_path / "full_covariance.png").is_file()
    assert not (tmp_path / "conditional_samples.png").exists()
    assert results and all(math.isfinite(v) for v in results.values())


def test_default_output_is_git_ignored():
    """Without ``--out`` a demo writes to ``runs/demos/<name>/`` in the repository, a
    folder git ignores, whatever the current folder."""
    import shutil
    import subprocess

    load_demo("01_gradient_estimators")               # puts demos/ on sys.path
    import _common as C

    root = DEMOS_DIR.parent
    for stem in DEMOS:
        out = C.default_out(stem)
        assert out == root / "runs" / "demos" / stem
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    probe = C.default_out("01_gradient_estimators") / "toy_variance.png"
    done = subprocess.run(["git", "-C", str(root), "check-ignore", "-q", str(probe)])
    assert done.returncode == 0, f"git does not ignore {probe}"


def test_demo_10_effective_sample_size():
    """Kish's (Σw)²/Σw² from log-weights (K, N): K for equal weights, 1 when one
    weight holds everything, (1 + r)²/(1 + r²) for two weights in ratio r; shifts of
    a column's log-weights (log p(x) is not known) leave it unchanged."""
    import numpy as np

    ess = load_demo("10_gradient_snr").effective_sample_size
    log_w = np.array([[0.0, -300.0, -1000.0], [0.0, -1000.0, -1000.0 + np.log(3)]])  # (2, 3)
    np.testing.assert_allclose(ess(log_w), [2.0, 1.0, 16 / 10], rtol=1e-12)
    np.testing.assert_allclose(ess(np.full((7, 2), -90.0)), [7.0, 7.0], rtol=1e-12)
