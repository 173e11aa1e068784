"""The small-batch training step with the big weight gradients fused into Adam
(npvae/fused_step.py, docs/11-optimisation.md#fusing-the-weight-gradient-into-adam)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import npvae
from npvae import fused_step
from npvae.backend import use_backend
from npvae.optim import SGD, Adam, adam_folded_step, adam_outer_step
from npvae.training import TrainingDiverged, train_step


def _model(dtype, S=1, random_state=0):
    m = npvae.VAE(n_latent=20, hidden_sizes=(400,), n_samples=S, dtype=dtype,
                  random_state=random_state)
    return m.initialize(784) or m


def _steps(m, N, opt, n_steps=3, clip_norm=None, seed=1):
    rng = np.random.default_rng(seed)
    for i in range(n_steps):
        x = (rng.random((N, 784)) < 0.3).astype(m.dtype_)
        train_step(m, x, m.draw_noise(N, random_state=i), opt, clip_norm=clip_norm)
    return m.flat_params_.copy(), {k: np.array(v) for k, v in m.optimizer_state_.items()}


def _fused_and_plain(monkeypatch, dtype, N, S):
    """Parameters and Adam state after three steps, fused and materialised."""
    calls = []
    monkeypatch.setattr(fused_step, "MAX_ROWS", 4)           # beyond the default's 2 rows
    real = Adam.step_factored
    monkeypatch.setattr(Adam, "step_factored", lambda *a, **k: calls.append(1) or real(*a, **k))
    fused = _steps(_model(dtype, S), N, Adam(1e-3))
    assert calls, "the fused step was not taken"
    monkeypatch.setattr(fused_step, "MAX_ROWS", 0)           # every batch materialised
    plain = _steps(_model(dtype, S), N, Adam(1e-3))
    assert len(calls) == 3
    return fused, plain


@pytest.mark.parametrize("N, S", [(1, 1), (2, 1), (4, 1), (2, 2)])
def test_fused_step_equals_the_materialised_one_in_float64(monkeypatch, N, S):
    (p1, s1), (p0, s0) = _fused_and_plain(monkeypatch, "float64", N, S)
    np.testing.assert_allclose(p1, p0, rtol=1e-12, atol=1e-14)
    for k in s0:
        np.testing.assert_allclose(s1[k], s0[k], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("N", [1, 2, 4])
def test_fused_step_in_float32(monkeypatch, N):
    """Batch 1: bit for bit (the same products a_i·da_j, the same folded update).  Batch > 1:
    Σ_r a_ri da_rj is summed in order, BLAS in its own, so the gradient differs by float32
    rounding (~1e-7 relative, more where the R products nearly cancel); Adam's m/√v passes
    that on, and after three steps the parameters agree to 1e-6 absolute (their scale is
    ~0.05, the step 1e-3), the moments to 1e-5 of their largest entry."""
    (p1, s1), (p0, s0) = _fused_and_plain(monkeypatch, "float32", N, 1)
    assert p1.dtype == np.float32 and s1["m"].dtype == np.float32
    if N == 1:
        np.testing.assert_array_equal(p1, p0)
        for k in s0:
            np.testing.assert_array_equal(s1[k], s0[k])
    else:
        np.testing.assert_allclose(p1, p0, rtol=0, atol=1e-6)
        for k in ("m", "v"):             # an entry near cancellation differs relatively more
            np.testing.assert_allclose(s1[k], s0[k], rtol=1e-4, atol=1e-5 * np.abs(s0[k]).max())


@pytest.mark.parametrize("opt, clip, N", [(SGD(1e-2), None, 1), (Adam(1e-3), 1e3, 1),
                                          (Adam(1e-3), None, fused_step.MAX_ROWS + 1)])
def test_other_steps_take_the_materialised_path(monkeypatch, opt, clip, N):
    monkeypatch.setattr(Adam, "step_factored", lambda *a, **k: pytest.fail("fused"))
    _steps(_model("float64"), N, opt, n_steps=1, clip_norm=clip)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("R", [1, 2, 3, 4])
def test_outer_kernel_equals_adam_on_the_materialised_gradient(backend, dtype, R):
    rng = np.random.default_rng(R)
    I, J = 7, 33
    a = rng.standard_normal((R, 2 * I)).astype(dtype)[:, ::2]            # not contiguous
    da = rng.standard_normal((R, J)).astype(dtype)
    theta, m, v = (rng.standard_normal(I * J).astype(dtype) for _ in range(3))
    v = np.abs(v)
    want = [theta.copy(), m.copy(), v.copy()]
    with use_backend(backend):
        adam_folded_step(want[0], (a.T @ da).ravel(), want[1], want[2], 1e-3, 0.9, 0.999, 1e-8)
        adam_outer_step(theta, a, da, m, v, 1e-3, 0.9, 0.999, 1e-8)
    tol = 1e-6 if dtype == "float32" else 1e-14
    for got, ref in zip([theta, m, v], want):
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)


def test_loss_and_grads_still_returns_the_whole_gradient():
    m = _model("float64")
    rng = np.random.default_rng(3)
    x = (rng.random((1, 784)) < 0.3).astype(float)
    eps = m.draw_noise(1, random_state=0)
    train_step(m, x, eps, Adam(1e-3))                 # leaves the workspace's W slices stale
    _, grads = m.loss_and_grads(x, eps)
    twin = _model("float64")
    twin.flat_params_[...] = m.flat_params_
    _, want = twin.loss_and_grads(x, eps)
    for k in want:
        np.testing.assert_array_equal(grads[k], want[k])
    # the fused matrix's gradient itself: dW = xᵀ da, da = the bias's gradient at batch 1
    np.testing.assert_allclose(grads["enc_W0"], x.T @ grads["enc_b0"][None], rtol=1e-12)
    assert np.abs(grads["enc_W0"]).max() > 0


@settings(max_examples=12, deadline=None)
@given(name=st.sampled_from(["enc_W0", "dec_out_W", "enc_mu_W", "dec_W0"]),
       log_scale=st.floats(0, 40), dtype=st.sampled_from(["float32", "float64"]))
def test_a_huge_weight_diverges_or_steps_as_the_materialised_path(name, log_scale, dtype):
    """A weight scaled by up to 1e40: where the bound cannot show the gradient finite the
    step falls back to the materialised path, which raises with nothing changed; either
    way the outcome is the materialised step's."""
    outcomes = []
    for max_rows in (fused_step.MAX_ROWS, 0):
        saved, fused_step.MAX_ROWS = fused_step.MAX_ROWS, max_rows
        try:
            m = _model(dtype)
            with np.errstate(all="ignore"):
                m.params_[name][...] *= np.asarray(10.0 ** log_scale).astype(dtype)
            before = m.flat_params_.copy()
            x = (np.random.default_rng(0).random((1, 784)) < 0.3).astype(dtype)
            try:                 # (the materialised check's dot may warn of its overflow)
                with np.errstate(all="ignore"):
                    train_step(m, x, m.draw_noise(1, random_state=0), Adam(1e-3))
                outcomes.append(m.flat_params_.copy())
            except TrainingDiverged:
                np.testing.assert_array_equal(m.flat_params_, before)
                assert int(m.optimizer_state_["t"]) == 0 and not m.optimizer_state_["m"].any()
                outcomes.append("diverged")
        finally:
            fused_step.MAX_ROWS = saved
    if isinstance(outcomes[1], str):
        assert outcomes[0] == "diverged"
    else:
        assert not isinstance(outcomes[0], str)
        np.testing.assert_array_equal(outcomes[0], outcomes[1])


def test_unbounded_factors_fall_back_to_the_materialised_path(monkeypatch):
    """Factors too large for the bound (here faked): nothing is updated from them; the
    step is the materialised one."""
    m = _model("float32")
    real = type(m).factored_objective

    def huge(self, *args):
        loss, g, terms, factors = real(self, *args)
        return loss, g, terms, {k: (a * np.float32(1e30), da) for k, (a, da) in factors.items()}

    monkeypatch.setattr(type(m), "factored_objective", huge)
    monkeypatch.setattr(Adam, "step_factored", lambda *a, **k: pytest.fail("fused"))
    got = _steps(m, 1, Adam(1e-3), n_steps=1)
    monkeypatch.undo()
    monkeypatch.setattr(fused_step, "MAX_ROWS", 0)
    want = _steps(_model("float32"), 1, Adam(1e-3), n_steps=1)
    np.testing.assert_array_equal(got[0], want[0])


@pytest.mark.parametrize("dtype, big", [("float64", 1e150), ("float32", 1e19)])
def test_the_bound_says_no_without_raising_where_it_overflows(dtype, big):
    """A float64 bound past 1e308 (Python's ``x ** 2`` raised OverflowError there)."""
    a = np.full((2, 3), big, dtype)
    g = np.zeros(4, dtype)
    with np.errstate(over="ignore"):
        assert not fused_step._bounded(1.0, g, [(0, 4)], [(0, a, a)], dtype)
    assert fused_step._bounded(1.0, g, [(0, 4)], [(0, a / big, a / big)], dtype)
    assert not fused_step._bounded(float("nan"), g, [(0, 4)], [(0, a / big, a / big)], dtype)
