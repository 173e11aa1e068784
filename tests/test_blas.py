"""npvae._blas: OpenBLAS kernel selection is conservative and never overrides the user."""
import sys

import pytest

from npvae import _blas

AVX512 = "fpu avx2 fma avx512f avx512cd avx512bw avx512dq avx512vl"


@pytest.fixture
def fresh(monkeypatch):
    # setenv first, so that monkeypatch records the variable and removes what
    # select_openblas_kernels sets: a bare delenv of an unset variable records nothing,
    # and a leaked OPENBLAS_CORETYPE=SkylakeX crashed every later subprocess with an
    # illegal instruction on CPUs without AVX-512
    monkeypatch.setenv("OPENBLAS_CORETYPE", "")
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    monkeypatch.delenv("NPVAE_BLAS_TUNING", raising=False)
    monkeypatch.delitem(sys.modules, "numpy", raising=False)   # as if npvae came first
    yield monkeypatch


def cpu(monkeypatch, vendor, flags):
    monkeypatch.setattr(_blas, "_cpu", lambda: (vendor, set(flags.split())))


def test_amd_with_avx512_gets_skylakex(fresh):
    cpu(fresh, "AuthenticAMD", AVX512)
    assert _blas.select_openblas_kernels() == "SkylakeX"
    import os
    assert os.environ["OPENBLAS_CORETYPE"] == "SkylakeX"


@pytest.mark.parametrize("vendor, flags", [("AuthenticAMD", "fpu avx2 fma avx512f"),
                                           ("GenuineIntel", AVX512), ("", "")])
def test_left_alone_without_every_subset_or_on_other_vendors(fresh, vendor, flags):
    cpu(fresh, vendor, flags)
    assert _blas.select_openblas_kernels() is None


def test_never_overrides_the_user(fresh):
    cpu(fresh, "AuthenticAMD", AVX512)
    fresh.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert _blas.select_openblas_kernels() is None
    fresh.delenv("OPENBLAS_CORETYPE")
    fresh.setenv("NPVAE_BLAS_TUNING", "0")
    assert _blas.select_openblas_kernels() is None


def test_too_late_once_numpy_is_loaded(fresh):
    cpu(fresh, "AuthenticAMD", AVX512)
    fresh.setitem(sys.modules, "numpy", object())
    assert _blas.select_openblas_kernels() is None


@pytest.mark.parametrize("given, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_openmp_workers_wait_passively_unless_told_otherwise(given, expected):
    """npvae/backend.py: spinning OpenMP workers starve OpenBLAS's threads; set when the
    compiled kernels first run, never on import."""
    import os
    import subprocess
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    out = subprocess.run([sys.executable, "-c", "import os, numpy as np, npvae; npvae.VAE(random_state=0).initialize(4)"
                          ".score(np.zeros((1, 4))); print(os.environ['OMP_WAIT_POLICY'])"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == expected, out.stderr


def test_import_changes_no_environment():
    import os
    import subprocess
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY",
                                                            "OPENBLAS_CORETYPE")}
    code = ("import os; before = dict(os.environ); import npvae; "
            "print(sorted(set(os.environ.items()) ^ set(before.items())))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_an_unknown_backend_in_the_environment_is_one_line(tmp_path):
    """NPVAE_BACKEND is read on first use: a bad value fails there with a ValueError
    (from the command line, one line and exit 2), never at import."""
    import os
    import subprocess
    env = dict(os.environ, NPVAE_BACKEND="foo")
    out = subprocess.run([sys.executable, "-c", "import npvae, numpy as np\n"
                          "try:\n    npvae.get_backend()\nexcept ValueError as e:\n"
                          "    print('ValueError', e)"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.startswith("ValueError NPVAE_BACKEND='foo'"), out.stderr
    cli = subprocess.run([sys.executable, "-m", "npvae", "train", "--dataset", "digits",
                          "--epochs", "1", "--quiet", "--no-figures", "--out",
                          str(tmp_path / "made" / "run")],
                         env=env, capture_output=True, text=True, timeout=120)
    assert cli.returncode == 2 and "Traceback" not in cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1, cli.stderr
    # a failed start leaves nothing behind: not the run folder, nor the folder above it
    # that the command made (as root, "/nonexistent/x" used to be made and left)
    assert os.listdir(tmp_path) == []


def test_the_fixture_leaves_no_core_type_behind():
    """Runs after the tests above (file order): what they set was undone."""
    import os
    assert os.environ.get("OPENBLAS_CORETYPE") != "SkylakeX" or _blas._cpu()[1] >= set(
        AVX512.split())
