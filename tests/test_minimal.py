"""npvae/minimal.py, the one-page VAE: it computes what npvae.VAE computes (loss, every
gradient, Adam's steps), imports NumPy and the standard library only, stays one page,
and its training loop and command run."""
import ast
import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import npvae
from npvae import minimal
from npvae.training import train_step

SOURCE = Path(minimal.__file__)
BACKENDS = ["numpy", "numba"]


def library_model(D, H, Z, S=1, beta=1.0, seed=0, learning_rate=1e-3):
    return npvae.VAE(n_latent=Z, hidden_sizes=(H,), activation="relu", likelihood="bernoulli",
                     n_samples=S, beta=beta, learning_rate=learning_rate,
                     random_state=seed).initialize(D)


def copy_params(m):
    return {name: np.array(value) for name, value in m.params_.items()}


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=15, deadline=None)
@given(N=st.integers(1, 6), D=st.integers(1, 9), H=st.integers(1, 6), Z=st.integers(1, 4),
       S=st.integers(1, 3), beta=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
       scale=st.sampled_from([1.0, 300.0]), seed=st.integers(0, 2**16))
def test_loss_and_every_gradient_equal_the_library(backend, N, D, H, Z, S, beta, scale, seed):
    """Float64, fixed noise: loss and every gradient within 1e-12 of ``npvae.VAE``'s, for any
    sizes, ``S``, ``β``, and logits large enough (``scale``) that a naive sigmoid overflows."""
    rng = np.random.default_rng(seed)
    m = library_model(D, H, Z, S, beta, seed)
    m.params_["dec_out_W"][...] *= scale
    m.params_["enc_b0"][...] = rng.standard_normal(H)
    x = (rng.random((N, D)) < 0.4).astype(np.float64)
    eps = m.draw_noise(N)
    assert eps.shape == (S, N, Z)
    with npvae.use_backend(backend):
        loss, grads = m.loss_and_grads(x, eps)
    mine, my_grads = minimal.loss_and_grads(copy_params(m), x, eps, beta=beta)
    assert abs(mine - loss) <= 1e-12 * max(1.0, abs(loss))
    assert list(my_grads) == list(grads)
    for name in grads:
        assert my_grads[name].shape == grads[name].shape, name
        np.testing.assert_allclose(my_grads[name], grads[name], rtol=0, atol=1e-12, err_msg=name)


def test_init_params_are_the_library_initialisation():
    """Same names, shapes, order and values as ``initialize`` for the same seed; with the
    data's mean, the output bias ``fit`` starts from."""
    X = (np.random.default_rng(1).random((30, 10)) < 0.3).astype(np.float64)
    m = npvae.VAE(n_latent=3, hidden_sizes=(7,), random_state=5)
    m.fit(X, epochs=0)
    P = minimal.init_params(10, 7, 3, seed=5, x_mean=X.mean(axis=0))
    assert list(P) == list(m.params_)
    for name in P:
        np.testing.assert_allclose(P[name], m.params_[name], rtol=0, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fifty_adam_steps_equal_the_library(backend):
    """The same learning rate and noise: parameters after 50 steps of ``train_step`` (the
    step ``fit`` takes, Adam) and of :func:`minimal.adam_step` agree to 1e-12."""
    rng = np.random.default_rng(2)
    N, D, H, Z, S, lr = 8, 12, 6, 3, 2, 3e-3
    m = library_model(D, H, Z, S, beta=1.0, seed=4, learning_rate=lr)
    P, state = copy_params(m), minimal.adam_state()
    start = copy_params(m)
    with npvae.use_backend(backend):
        for _ in range(50):
            x = (rng.random((N, D)) < 0.4).astype(np.float64)
            eps = rng.standard_normal((S, N, Z))
            train_step(m, x, eps)
            minimal.adam_step(P, minimal.loss_and_grads(P, x, eps)[1], state, learning_rate=lr)
    assert int(m.optimizer_state_["t"]) == state["t"] == 50
    assert not np.allclose(P["enc_W0"], start["enc_W0"], rtol=0, atol=1e-3)   # they moved
    for name in P:
        np.testing.assert_allclose(P[name], m.params_[name], rtol=0, atol=1e-12, err_msg=name)


def test_it_imports_nothing_but_numpy_and_the_standard_library():
    tree = ast.parse(SOURCE.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import"
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(
                node.func, "attr", None)) in ("__import__", "import_module"):
            pytest.fail("imports by name")
    assert imported - set(sys.stdlib_module_names) == {"numpy"}


def test_it_is_one_page():
    n = len(SOURCE.read_text(encoding="utf-8").splitlines())
    assert n <= 300, f"npvae/minimal.py has {n} lines, comments included (at most 300)"


def test_the_training_loop_runs_on_a_tiny_synthetic_array():
    """Two blobs of 8x8 grey images: the loop runs, logs one line an epoch, and the ELBO
    of its last epoch is above its first's (deterministic: a fixed seed)."""
    rng = np.random.default_rng(0)
    pixels = np.where(rng.random((60, 16)) < 0.5, 30, 220).astype(np.uint8)
    pixels[30:, :8] = 250
    lines = []
    P = minimal.train(pixels, n_hidden=8, n_latent=2, epochs=15, batch_size=20, seed=0,
                      learning_rate=1e-2, log=lines.append)
    assert len(lines) == 15 and lines[0].startswith("epoch 1/15: train ELBO")
    elbos = [float(line.split("ELBO ")[1].split()[0]) for line in lines]
    assert elbos[-1] > elbos[0]
    assert all(np.all(np.isfinite(v)) for v in P.values())
    assert np.isfinite(minimal.elbo(P, pixels))


def _write_idx_images(path, images):
    n, rows, cols = images.shape
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">4I", 2051, n, rows, cols) + images.tobytes())


def _run(args, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NPVAE_DATA"}
    env["NPVAE_CACHE"] = str(tmp_path / "empty-cache")
    return subprocess.run([sys.executable, "-m", "npvae.minimal", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_the_command_trains_on_idx_files(tmp_path):
    """``python -m npvae.minimal --data-dir``: MNIST's file format read with gzip and NumPy
    (here two tiny files), trained, the test ELBO printed."""
    rng = np.random.default_rng(0)
    _write_idx_images(tmp_path / "train-images-idx3-ubyte.gz",
                      rng.integers(0, 256, (50, 4, 4)).astype(np.uint8))
    _write_idx_images(tmp_path / "t10k-images-idx3-ubyte.gz",
                      rng.integers(0, 256, (10, 4, 4)).astype(np.uint8))
    out = _run(["--data-dir", str(tmp_path), "--epochs", "2", "--hidden", "5", "--latent", "2",
                "--batch-size", "10"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "50 training images" in out.stdout and "epoch 2/2" in out.stdout
    assert "test ELBO" in out.stdout


@pytest.mark.parametrize("case", ["missing", "damaged"])
def test_the_command_says_in_one_line_when_mnist_is_missing_or_damaged(tmp_path, case):
    if case == "damaged":
        for name in minimal.MNIST_FILES:
            (tmp_path / name).write_bytes(gzip.compress(b"\x00\x00\x08\x03 not images"))
    out = _run(["--data-dir", str(tmp_path)], tmp_path)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert ("MNIST not found" if case == "missing" else "cannot read MNIST") in out.stderr
