"""Trainer and checkpoints: schedules, warm-up, NaN stop, early stopping, exact resume."""
import json
import os

import numpy as np
import pytest

import npvae
from npvae import checkpoint
from npvae.training import TrainingDiverged, kl_weight, learning_rate_at, train


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    protos = rng.random((4, 16)) < 0.5
    X = protos[rng.integers(0, 4, 300)] ^ (rng.random((300, 16)) < 0.05)
    return X.astype(np.uint8)


def small(**kw):
    args = dict(n_latent=2, hidden_sizes=(8,), batch_size=32, random_state=0)
    args.update(kw)
    return npvae.VAE(**args)


def test_schedules():
    assert learning_rate_at(3, 0.1) == 0.1
    assert learning_rate_at(2, 0.1, "exponential", 0.5) == pytest.approx(0.025)
    assert learning_rate_at(0, 0.1, "cosine", epochs=10) == pytest.approx(0.1)
    assert learning_rate_at(5, 0.1, "cosine", epochs=10) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="lr_schedule"):
        learning_rate_at(0, 0.1, "linear")
    assert kl_weight(0, 1.0, 10) == 0 and kl_weight(5, 2.0, 10) == 1.0
    assert kl_weight(50, 1.0, 10) == 1.0 and kl_weight(0, 1.0, 0) == 1.0


def test_history_and_run_folder(data, tmp_path):
    m = small().initialize(16)
    train(m, data[:200], X_val=data[200:], epochs=3, batch_size=32, run_dir=tmp_path,
          kl_warmup_epochs=2, metadata={"dataset": "toy"})
    lines = [json.loads(l) for l in open(tmp_path / "history.jsonl")]
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    for key in ("train_elbo", "val_elbo", "train_reconstruction", "train_kl", "val_kl",
                "seconds", "examples_per_second"):
        assert all(np.isfinite(r[key]) for r in lines), key
    assert lines[0]["beta"] < 1 and lines[-1]["beta"] == 1.0      # warm-up ramps β
    assert (tmp_path / "checkpoint.npz").exists() and (tmp_path / "best.npz").exists()
    assert checkpoint.read_metadata(tmp_path / "checkpoint.npz")["dataset"] == "toy"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def test_nan_stops_training_with_a_clear_message(data, tmp_path):
    m = small().initialize(16)
    train(m, data, epochs=1, run_dir=tmp_path)
    saved = npvae.load(tmp_path / "checkpoint.npz").flat_params_.copy()
    m.params_["enc_logvar_b"][...] = 1e4            # exp(λ) overflows: the loss is inf
    with pytest.raises(TrainingDiverged, match=r"epoch 2, batch 1 \(step"):
        train(m, data, epochs=1, run_dir=tmp_path)
    # the last good checkpoint is kept
    np.testing.assert_array_equal(npvae.load(tmp_path / "checkpoint.npz").flat_params_,
                                  saved)


def test_early_stopping_restores_the_best(data):
    m = small().initialize(16)
    train(m, data[:200], X_val=data[200:], epochs=30, learning_rate=0.05, patience=2)
    vals = [h["val_elbo"] for h in m.history_]
    assert len(vals) < 30
    assert np.argmax(vals) == len(vals) - 3
    best = max(vals)
    from npvae.training import _evaluate
    assert _evaluate(m, data[200:].astype(float), 500, 0)["elbo"] == pytest.approx(best)
    with pytest.raises(ValueError, match="X_val"):
        train(m, data, patience=2)


def test_clipping_and_sgd(data):
    m = small(optimizer="sgd", learning_rate=0.01).initialize(16)
    train(m, data, epochs=2, clip_norm=1.0, learning_rate=0.01)
    assert m.history_[-1]["train_elbo"] > m.history_[0]["train_elbo"] - 1


def test_dynamic_binarisation_transform(rng):
    pixels = rng.integers(0, 256, (100, 16)).astype(np.uint8)
    seen = []

    def binarize(xb, r):
        out = (r.random(xb.shape) < xb / 255).astype(np.uint8)
        seen.append(out)
        return out

    m = small().initialize(16)
    train(m, pixels, epochs=2, batch_transform=binarize)
    assert all(set(np.unique(s)) <= {0, 1} for s in seen)
    with pytest.raises(ValueError, match="not binary"):
        train(m, pixels, epochs=1)


@pytest.mark.parametrize("model_kw", [{}, {"optimizer": "sgd"}])
def test_resume_is_bit_exact(data, tmp_path, model_kw):
    """Training 2 epochs equals training 1, saving, loading and training 1 more (NumPy, 1 thread)."""
    npvae.set_num_threads(1)
    try:
        with npvae.use_backend("numpy"):
            kw = dict(batch_size=32, X_val=data[250:], kl_warmup_epochs=1.5,
                      lr_schedule="exponential", lr_decay=0.5)
            a = small(**model_kw).initialize(16)
            train(a, data[:250], epochs=2, **kw)
            b = small(**model_kw).initialize(16)
            train(b, data[:250], epochs=1, run_dir=tmp_path, **kw)
            c = npvae.load(tmp_path / "checkpoint.npz")
            train(c, data[:250], epochs=1, **kw)
    finally:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=None)
    assert c.n_iter_ == 2
    np.testing.assert_array_equal(a.flat_params_, c.flat_params_)
    for k in a.optimizer_state_:
        np.testing.assert_array_equal(a.optimizer_state_[k], c.optimizer_state_[k])
    assert a.history_[-1]["train_elbo"] == c.history_[-1]["train_elbo"]
    assert a.rng_.bit_generator.state == c.rng_.bit_generator.state


class TestCheckpointFile:
    def test_round_trip(self, tmp_path, data):
        m = small(likelihood="gaussian",
                  likelihood_params={"variance": "per_output"}, hidden_sizes=(5, 3),
                  dtype="float32").fit(data.astype(float), epochs=1)
        path = checkpoint.save(m, tmp_path / "m.npz")
        r = npvae.load(path)
        assert type(r) is npvae.VAE and r.get_params() == m.get_params()
        np.testing.assert_array_equal(r.flat_params_, m.flat_params_)
        assert r.flat_params_.dtype == np.float32
        np.testing.assert_array_equal(r.transform(data), m.transform(data))
        umask = os.umask(0)
        os.umask(umask)
        assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask   # not mkstemp's 0600
        # loaded with allow_pickle=False: no object arrays inside
        with np.load(path, allow_pickle=False) as f:
            assert all(f[k].dtype != object for k in f.files)

    def test_different_architecture(self, tmp_path, data):
        path = checkpoint.save(small().initialize(16), tmp_path / "m.npz")
        other = small(hidden_sizes=(9,)).initialize(16)
        with pytest.raises(checkpoint.CheckpointError, match=r"architecture differs.*enc_W0"):
            checkpoint.restore(other, path)

    def test_newer_format_version(self, tmp_path):
        path = checkpoint.save(small().initialize(16), tmp_path / "m.npz")
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
        arrays["format_version"] = np.array(checkpoint.FORMAT_VERSION + 1)
        np.savez(tmp_path / "new.npz", **arrays)
        with pytest.raises(checkpoint.CheckpointError, match="newer"):
            npvae.load(tmp_path / "new.npz")

    def test_corrupt_and_foreign_files(self, tmp_path):
        path = checkpoint.save(small().initialize(16), tmp_path / "m.npz")
        raw = open(path, "rb").read()
        open(tmp_path / "cut.npz", "wb").write(raw[: len(raw) // 2])
        with pytest.raises(checkpoint.CheckpointError, match="cut.npz"):
            npvae.load(tmp_path / "cut.npz")
        np.savez(tmp_path / "other.npz", x=np.zeros(3))
        with pytest.raises(checkpoint.CheckpointError, match="unknown member .x.npy."):
            npvae.load(tmp_path / "other.npz")

    def test_interrupted_save_leaves_the_old_file(self, tmp_path, monkeypatch):
        m = small().initialize(16)
        path = checkpoint.save(m, tmp_path / "m.npz")
        before = open(path, "rb").read()

        def boom(*a, **k):
            raise KeyboardInterrupt

        monkeypatch.setattr(np, "savez", boom)
        with pytest.raises(KeyboardInterrupt):
            checkpoint.save(m, path)
        assert open(path, "rb").read() == before
        assert os.listdir(tmp_path) == ["m.npz"]

    def test_compressed_files_hold_byte_planes(self, tmp_path, data):
        """``compress=True`` stores the parameters as byte planes (format 2): read back
        bit for bit; planes of the wrong shape are refused in one line."""
        m = small(dtype="float32").fit(data.astype(float), epochs=1)
        path = checkpoint.save(m, tmp_path / "m.npz", compress=True)
        with np.load(path) as f:
            assert "flat_params" not in f and f["flat_params_bytes"].shape == (4, m.flat_params_.size)
            assert int(f["format_version"]) == 2
            arrays = {k: f[k] for k in f.files}
        np.testing.assert_array_equal(npvae.load(path).flat_params_, m.flat_params_)
        arrays["flat_params_bytes"] = arrays["flat_params_bytes"][:, :-1]
        np.savez(tmp_path / "bad.npz", **arrays)
        with pytest.raises(checkpoint.CheckpointError, match="describe 340 float32 parameters, but .flat_params_bytes. holds uint8"):
            npvae.load(tmp_path / "bad.npz")

    def test_a_signal_just_after_the_temporary_file_is_made(self, tmp_path, monkeypatch):
        """A SIGTERM lands at a bytecode boundary; right after the temporary file is
        created (``mkstemp`` then still had to return its name) it left an orphan."""
        from npvae.cli.common import write_json
        m = small().initialize(16)
        path = checkpoint.save(m, tmp_path / "m.npz")
        before = open(path, "rb").read()
        real_open = os.open

        def open_then_signal(*a, **k):
            real_open(*a, **k)
            raise KeyboardInterrupt

        monkeypatch.setattr(os, "open", open_then_signal)
        with pytest.raises(KeyboardInterrupt):
            checkpoint.save(m, path)
        with pytest.raises(KeyboardInterrupt):
            write_json(str(tmp_path / "results.json"), {"a": 1})
        monkeypatch.undo()
        assert open(path, "rb").read() == before
        assert os.listdir(tmp_path) == ["m.npz"]


def test_fit_with_dynamic_binarisation_of_grey_levels(rng):
    from npvae.data import convert_batch
    pixels = rng.integers(0, 256, (200, 16)).astype(np.uint8)
    binarize = lambda xb, r: convert_batch(xb, "dynamic", np.float64, r)
    m = small().fit(pixels, epochs=0, batch_transform=binarize)
    # before any step the output bias is the logit of the binarised mean, ≈ logit(pixel mean / 255)
    p = pixels.mean(axis=0) / 255
    np.testing.assert_allclose(m.params_["dec_out_b"], np.log(p / (1 - p)), atol=0.5)
    assert m.fit(pixels, epochs=2, batch_transform=binarize).n_iter_ == 2
    with pytest.raises(ValueError, match="not binary"):
        small().fit(pixels, epochs=1)


# ------------------------------------------------------------- tests that can fail
def test_adam_is_algorithm_1_of_kingma_and_ba():
    """The folded update against Algorithm 1 written out: bias-corrected m̂, v̂,
    θ ← θ − α m̂ / (√v̂ + ε), 100 steps on both backends."""
    from npvae.optim import adam_update
    rng = np.random.default_rng(0)
    theta0 = rng.standard_normal(1000)
    grads = rng.standard_normal((100, 1000)) * np.logspace(-3, 1, 1000)
    alpha, b1, b2, eps = 3e-3, 0.9, 0.999, 1e-8
    ref, m, v = theta0.copy(), np.zeros(1000), np.zeros(1000)
    for t, g in enumerate(grads, 1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        ref = ref - alpha * m_hat / (np.sqrt(v_hat) + eps)
    for backend in ("numpy", "numba"):
        with npvae.use_backend(backend):
            theta, mm, vv = theta0.copy(), np.zeros(1000), np.zeros(1000)
            for t, g in enumerate(grads, 1):
                adam_update(theta, g, mm, vv, t, alpha, b1, b2, eps)
            np.testing.assert_allclose(theta, ref, rtol=1e-12, atol=1e-14)


def test_clipping_bounds_the_step():
    """With SGD (no momentum) one clipped step moves θ by exactly lr · clip_norm; without
    clipping by lr · ‖g‖ — so a no-op clip would fail."""
    from npvae.optim import SGD, clip_grad_norm
    g = np.random.default_rng(0).standard_normal(50) * 10
    clipped, norm = clip_grad_norm(g, 1.0)
    assert norm == pytest.approx(np.linalg.norm(g))
    assert np.linalg.norm(clipped) == pytest.approx(1.0)
    np.testing.assert_allclose(clipped / np.linalg.norm(clipped), g / norm)
    assert clip_grad_norm(g, 1e6)[0] is g
    X = (np.random.default_rng(1).random((40, 16)) < 0.5).astype(np.uint8)
    moves = {}
    for clip in (None, 1e-3):
        m = small(optimizer="sgd").initialize(16)
        m.optimizer = "sgd"
        before = m.flat_params_.copy()
        train(m, X, epochs=1, batch_size=40, learning_rate=0.1, clip_norm=clip)
        moves[clip] = np.linalg.norm(m.flat_params_ - before)
    assert moves[1e-3] == pytest.approx(0.1 * 1e-3, rel=1e-6)
    assert moves[None] > 100 * moves[1e-3]


def test_iwae_history_and_validation_use_the_iwae_bound(data, tmp_path):
    m = small(objective="iwae", k=3).initialize(16)
    train(m, data[:200], X_val=data[200:], epochs=2, batch_size=50, run_dir=tmp_path)
    for h in m.history_:
        assert "beta" not in h and "val_iwae" in h and h["val_iwae"] >= h["val_elbo"] - 1e-9
    meta = checkpoint.read_metadata(tmp_path / "checkpoint.npz")
    assert meta["best_val_bound"] == "iwae"
    assert meta["best_val"] == max(h["val_iwae"] for h in m.history_)


def test_a_run_that_stays_diverged_is_stopped():
    """Three epochs far below the first batch's ELBO end training with a report."""
    from npvae.training import TrainState, TrainingWarning, _check_progress
    m = small().initialize(16)
    state = TrainState(m, 10)
    state.reference = -20.0
    with pytest.warns(TrainingWarning, match="fell to"):
        _check_progress(state, {"train_elbo": -1e9, "epoch": 1})
    _check_progress(state, {"train_elbo": -25.0, "epoch": 2})        # recovered: counter reset
    for epoch in (3, 4):
        with pytest.warns(TrainingWarning):
            _check_progress(state, {"train_elbo": -5e228, "epoch": epoch})
    with pytest.raises(TrainingDiverged, match="3 epochs in a row"):
        _check_progress(state, {"train_elbo": -5e228, "epoch": 5})


def test_adagrad_is_its_formula_and_resumes_exactly(data, tmp_path):
    from npvae.optim import Adagrad
    rng = np.random.default_rng(0)
    theta, grads = rng.standard_normal(50), rng.standard_normal((20, 50))
    ref, G = theta.copy(), np.zeros(50)
    opt, state = Adagrad(0.1), Adagrad(0.1).init_state(50, np.float64)
    for g in grads:
        G += g * g
        ref -= 0.1 * g / (np.sqrt(G) + 1e-8)
        opt.step(theta, g, state)
    np.testing.assert_allclose(theta, ref, rtol=1e-14)
    full = small(optimizer="adagrad").initialize(16)
    train(full, data, epochs=2, batch_size=50, learning_rate=0.05)
    half = small(optimizer="adagrad").initialize(16)
    train(half, data, epochs=1, batch_size=50, learning_rate=0.05, run_dir=tmp_path)
    resumed = npvae.load(tmp_path / "checkpoint.npz")
    train(resumed, data, epochs=1, batch_size=50, learning_rate=0.05)
    np.testing.assert_array_equal(resumed.flat_params_, full.flat_params_)


def test_burda_schedule_stages():
    from npvae.training import burda_stage
    # stage i lasts 3^i epochs: 1, 3, 9, ... ; eight stages make 3,280 epochs
    lengths = np.bincount([burda_stage(e) for e in range(3280)])
    assert list(lengths) == [3 ** i for i in range(8)]
    assert burda_stage(3280) == 8
    assert learning_rate_at(0, 1e-3, "burda") == pytest.approx(1e-3)
    assert learning_rate_at(1, 1e-3, "burda") == pytest.approx(1e-3 * 10 ** (-1 / 7))
    assert learning_rate_at(3279, 1e-3, "burda") == pytest.approx(1e-4)


def test_optimizer_options():
    from npvae.optim import make_optimizer
    assert make_optimizer("adam", 1e-3, {"eps": 1e-4}).eps == 1e-4
    with pytest.raises(ValueError, match="unknown option 'epsilon'"):
        make_optimizer("adam", 1e-3, {"epsilon": 1e-4})
    with pytest.raises(ValueError, match="finite number"):
        make_optimizer("sgd", 1e-3, {"momentum": float("nan")})


def test_an_iwae_run_reports_the_bound_it_climbs(capsys):
    """The per-epoch line of an IWAE run names L_k, the objective, beside the ELBO."""
    x = (np.random.default_rng(0).random((60, 8)) < 0.4).astype(float)
    for objective, shows in (("iwae", True), ("elbo", False)):
        m = small(objective=objective, k=3).initialize(8)
        train(m, x, epochs=1, batch_size=20, X_val=x[:20], progress=True)
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert ("train L_3 " in line and "val L_3 " in line) == shows, line
        assert "train ELBO " in line and "val ELBO " in line
