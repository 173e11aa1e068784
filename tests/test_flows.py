"""Normalising-flow posteriors, planar and IAF (docs/18-normalising-flows.md): each kernel
by finite differences, log-determinants against numpy.linalg.slogdet of a numerical
Jacobian, the invertibility constraint, the MADE Jacobian's triangle, the whole model in
float64, training, scoring, checkpoints and the errors."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import npvae
from npvae.distributions.iaf import IAFPosterior, iaf_step_backward, iaf_step_forward, made_masks
from npvae.distributions.planar import (PlanarPosterior, planar_constraint_backward,
                                        planar_constraint_forward, planar_step_backward,
                                        planar_step_forward)
from npvae.gradcheck import numerical_gradient, relative_error

from test_concrete_vae import assert_train_refused
from test_vae import make_data, random_direction_error

FLOWS = [("planar", {"n_flows": 3}), ("iaf", {"n_flows": 2, "hidden_size": 5, "context_size": 2})]


def flow_model(posterior, params, **kw):
    kw = {"n_latent": 3, "hidden_sizes": (5,), "activation": "tanh", "random_state": 0, **kw}
    return npvae.VAE(posterior=posterior, posterior_params=params, **kw)


def scalar_check(forward, backward, inputs, rng):
    """Relative error of every input's gradient of ``Σ_k out_k ⊙ dout_k`` (a kernel with
    several outputs) against centred differences."""
    outs = forward(*inputs)[0]
    douts = tuple(rng.standard_normal(np.shape(o)) for o in outs)
    grads = backward(douts, forward(*inputs)[1])

    def f():
        return sum(float(np.sum(o * d)) for o, d in zip(forward(*inputs)[0], douts))
    return [relative_error(g, numerical_gradient(f, x)) for g, x in zip(grads, inputs)]


def jacobian(fn, z, h=1e-6):
    """``∂fn(z)/∂z`` ``(Z, Z)`` of a map of one vector, by centred differences."""
    J = np.empty((z.size, z.size))
    for i in range(z.size):
        e = np.zeros_like(z)
        e[i] = h
        J[:, i] = (fn(z + e) - fn(z - e)) / (2 * h)
    return J


# ------------------------------------------------------------------------- planar
@given(N=st.integers(1, 4), Z=st.integers(1, 5), scale=st.floats(0.1, 20.0),
       seed=st.integers(0, 2**31))
def test_planar_constraint_gradient_and_invertibility(N, Z, scale, seed):
    """û keeps wᵀû = m(wᵀu) ≥ −1 for any u, w (also far into wᵀu ≪ 0), ρ = 1 + wᵀû,
    and the kernel's gradient is the centred difference's."""
    rng = np.random.default_rng(seed)
    u, w = rng.normal(0, scale, (N, Z)), rng.normal(0, 1, (N, Z))
    (u_hat, rho), _ = planar_constraint_forward(u, w)
    wu = np.einsum("nz,nz->n", w, u_hat)
    assert np.all(wu >= -1) and np.all(rho > 0)
    np.testing.assert_allclose(1 + wu, rho, atol=1e-9 * (1 + scale ** 2) * Z)
    u, w = rng.normal(0, 1, (N, Z)), rng.normal(0, 1, (N, Z))
    errors = scalar_check(planar_constraint_forward, planar_constraint_backward, (u, w), rng)
    assert max(errors) < 1e-7


def test_planar_constraint_at_w_zero_is_the_identity_correction():
    u, w = np.array([[1.0, -2.0]]), np.zeros((1, 2))
    (u_hat, rho), c = planar_constraint_forward(u, w)
    np.testing.assert_array_equal(u_hat, u)
    assert rho[0] == 1 and np.all(np.isfinite(planar_constraint_backward((u, rho), c)[1]))


@given(S=st.integers(1, 3), N=st.integers(1, 3), Z=st.integers(1, 5), seed=st.integers(0, 2**31))
def test_planar_step_gradient(S, N, Z, seed):
    rng = np.random.default_rng(seed)
    (u_hat, rho), _ = planar_constraint_forward(rng.normal(0, 1, (N, Z)), rng.normal(0, 1, (N, Z)))
    # away from tanh's saturation, where the gradients are tiny and differences only noise
    inputs = (rng.normal(0, 0.5, (S, N, Z)), u_hat, rng.normal(0, 0.5, (N, Z)),
              rng.normal(0, 0.5, N), rho)
    assert max(scalar_check(planar_step_forward, planar_step_backward, inputs, rng)) < 1e-7


@given(Z=st.integers(1, 6), wu=st.floats(-30, 30), seed=st.integers(0, 2**31))
def test_planar_log_det_is_that_of_the_numerical_jacobian(Z, wu, seed):
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 1, (1, Z))
    u = rng.normal(0, 1, (1, Z))
    u += (wu - np.sum(w * u)) * w / np.sum(w * w)                    # wᵀu = wu exactly-ish
    (u_hat, rho), _ = planar_constraint_forward(u, w)
    b, z = rng.normal(0, 1, 1), rng.normal(0, 1, Z)
    (_, logdet), _ = planar_step_forward(z[None, None], u_hat, w, b, rho)

    def step(v):
        return planar_step_forward(v[None, None], u_hat, w, b, rho)[0][0][0, 0]
    sign, expected = np.linalg.slogdet(jacobian(step, z))
    assert sign > 0
    assert logdet[0, 0] == pytest.approx(expected, abs=1e-6)


# -------------------------------------------------------------------------- IAF
def test_made_masks_are_autoregressive():
    for Z, H in [(1, 3), (2, 4), (5, 7), (6, 12)]:
        for reverse in (False, True):
            M1, M2 = made_masks(Z, H, reverse)
            reach = (M1 @ M2) > 0                                 # input i reaches output j
            order = np.arange(Z)[::-1] if reverse else np.arange(Z)
            allowed = order[:, None] < order[None, :]
            assert not np.any(reach & ~allowed)
            if Z > 1 and H >= Z - 1:                               # and uses every allowed path
                assert np.array_equal(reach, allowed)


def iaf_inputs(rng, R, Z, H, C, reverse=False):
    masks = made_masks(Z, H, reverse)
    W, V, Wm, Ws = (rng.normal(0, 0.7, s) for s in [(Z, H), (C, H), (H, Z), (H, Z)])
    return (rng.normal(0, 1, (R, Z)), rng.normal(0, 1, (R, C)), W, V, rng.normal(0, 1, H), Wm,
            rng.normal(0, 1, Z), Ws, rng.normal(0, 1, Z), masks)


@given(R=st.integers(1, 4), Z=st.integers(1, 5), H=st.integers(1, 6), C=st.integers(1, 3),
       reverse=st.booleans(), seed=st.integers(0, 2**31))
def test_iaf_step_gradient(R, Z, H, C, reverse, seed):
    rng = np.random.default_rng(seed)
    inputs = iaf_inputs(rng, R, Z, H, C, reverse)
    (z_new, logdet), cache = iaf_step_forward(*inputs)
    dz_new, dl = rng.standard_normal(z_new.shape), rng.standard_normal(logdet.shape)
    dz, dh, grads = iaf_step_backward((dz_new, dl), cache)
    args = list(inputs)

    def f():
        (zn, ld), _ = iaf_step_forward(*args)
        return float(np.sum(zn * dz_new) + np.sum(ld * dl))
    names = ["z", "h", "W", "V", "b", "Wm", "bm", "Ws", "bs"]
    analytic = {"z": dz, "h": dh, **grads}
    for i, name in enumerate(names):
        num = numerical_gradient(f, args[i])
        if name in ("W", "Wm", "Ws"):                # masked entries have no effect, no gradient
            mask = inputs[-1][0] if name == "W" else inputs[-1][1]
            num = num * mask
        assert relative_error(analytic[name], num) < 1e-7, name


@given(Z=st.integers(1, 6), H=st.integers(1, 8), reverse=st.booleans(), seed=st.integers(0, 2**31))
def test_iaf_jacobian_is_triangular_with_log_det_sum_log_sigma(Z, H, reverse, seed):
    rng = np.random.default_rng(seed)
    z, h, *weights, masks = iaf_inputs(rng, 1, Z, H, 2, reverse)

    def step(v):
        return iaf_step_forward(v[None], h, *weights, masks)[0][0][0]
    J = jacobian(step, z[0])
    order = np.arange(Z)[::-1] if reverse else np.arange(Z)
    later = order[:, None] < order[None, :]        # output i, input j with d(j) > d(i)
    assert np.all(np.abs(J[later]) < 1e-9)          # autoregressive: triangular in the order
    sign, expected = np.linalg.slogdet(J)
    logdet = iaf_step_forward(z, h, *weights, masks)[0][1][0]
    assert sign > 0 and logdet == pytest.approx(expected, abs=1e-6)


# ------------------------------------------------------------- the whole model
@pytest.mark.parametrize("posterior, params", FLOWS)
@pytest.mark.parametrize("objective, likelihood", [("elbo", "bernoulli"), ("iwae", "gaussian")])
def test_every_parameter_by_finite_differences(posterior, params, objective, likelihood, rng):
    """The whole model in float64: every entry of every parameter, relative error < 1e-7."""
    X = make_data(likelihood, 4, 6, rng)
    m = flow_model(posterior, params, likelihood=likelihood, n_samples=2, objective=objective,
                   k=3).initialize(6)
    for p in m.params_.values():
        p += rng.normal(0, 0.3, p.shape)
    eps = m.draw_noise(4, random_state=1)
    _, grads = m.loss_and_grads(X, eps)
    assert grads[f"enc_{posterior}_W"].shape == (5, m._post.head_size(3))
    for name, p in m.params_.items():
        num = numerical_gradient(lambda: m.loss_and_grads(X, eps)[0], p)
        assert relative_error(grads[name], num) < 1e-7, name


@given(posterior=st.sampled_from(["planar", "iaf"]), depth=st.integers(0, 2),
       width=st.integers(1, 12), Z=st.integers(1, 4), F=st.integers(1, 3), S=st.integers(1, 3),
       N=st.integers(1, 4), D=st.integers(1, 6), seed=st.integers(0, 2**31))
def test_random_direction_gradient(posterior, depth, width, Z, F, S, N, D, seed):
    rng = np.random.default_rng(seed)
    X = make_data("bernoulli", N, D, rng)
    m = flow_model(posterior, {"n_flows": F}, n_latent=Z, hidden_sizes=(width,) * depth,
                   n_samples=S, random_state=seed).initialize(D)
    eps = m.draw_noise(N, random_state=seed + 1)
    assert random_direction_error(m, X, eps, rng) < 1e-7


@pytest.mark.parametrize("posterior, params", FLOWS)
def test_log_q_is_the_change_of_variables_from_the_noise(posterior, params, rng):
    """log q(z_F|x) = log N(ε; 0, I) − log |det ∂z_F/∂ε|, the Jacobian of the whole
    sample path (σ and every flow) by differences; log w uses it and N(z_F; 0, I)."""
    X = make_data("bernoulli", 2, 6, rng)
    m = flow_model(posterior, params).initialize(6)
    for p in m.params_.values():
        p += rng.normal(0, 0.3, p.shape)
    post = m._posterior_at(False)
    mu, head, _ = m._encode_forward(X, None)
    eps = rng.standard_normal((1, 2, 3))
    log_q = post.log_q_mu_forward(mu, head, eps)[0]
    for n in range(2):
        def path(e):
            full = eps.copy()
            full[0, n] = e
            return post.sample_forward(mu, head, full)[0][0, n]
        sign, logdet = np.linalg.slogdet(jacobian(path, eps[0, n]))
        expected = -0.5 * np.sum(eps[0, n] ** 2) - 1.5 * np.log(2 * np.pi) - logdet
        assert sign > 0 and log_q[0, n] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("posterior, params", FLOWS)
def test_fit_transform_sample_score_and_checkpoint(posterior, params, tmp_path):
    from sklearn.datasets import load_digits
    X = (load_digits().data >= 8).astype(float)
    m = flow_model(posterior, params, n_latent=4, hidden_sizes=(64,))
    m.fit(X[:1000], epochs=3, batch_size=50, learning_rate=3e-3, X_val=X[1000:1200],
          run_dir=tmp_path / "run")
    h = m.history_
    assert h[-1]["train_elbo"] > h[0]["train_elbo"] and np.isfinite(h[-1]["val_elbo"])
    z = m.transform(X[:7])
    assert z.shape == (7, 4) and np.all(np.isfinite(z))
    s = m.sample(5, random_state=0)
    assert s.shape == (5, 64) and np.all((s >= 0) & (s <= 1))
    score, ll = m.score(X[1500:1600]), m.log_likelihood(X[1500:1600], n_importance=50).mean()
    assert np.isfinite(score) and score <= ll + 1.0 and score == m.score(X[1500:1600])
    assert m.active_units(X[1500:1600])[0] <= 4
    r = npvae.load(npvae.save(m, tmp_path / "flow.npz"))
    assert r.posterior == posterior and r.posterior_params == params
    np.testing.assert_array_equal(r.transform(X[:7]), z)
    assert r.score(X[1500:1600]) == score
    eps = m.draw_noise(10, random_state=1)
    assert r.loss_and_grads(X[:10], eps)[0] == m.loss_and_grads(X[:10], eps)[0]
    c = npvae.load(tmp_path / "run" / "checkpoint.npz")          # the trainer's checkpoint
    np.testing.assert_array_equal(c.flat_params_, m.flat_params_)
    if posterior == "iaf":
        assert "iaf1_Ws" in r.params_ and np.array_equal(r.params_["iaf1_Ws"], m.params_["iaf1_Ws"])
        M2 = made_masks(4, 5, reverse=True)[1]
        assert np.all(r.params_["iaf1_Ws"][M2 == 0] == 0)        # masked entries stay 0


@pytest.mark.parametrize("settings, message", [
    ({"posterior_params": {"n_flows": 0}}, r"posterior_params\['n_flows'\] must be an integer"),
    ({"posterior_params": {"n_flows": 2.0}}, "must be an integer"),
    ({"posterior_params": {"n_flows": True}}, "must be an integer"),
    ({"posterior_params": {"flows": 2}}, "unknown posterior_params"),
    ({"posterior_params": [2]}, "must be a dict"),
    ({"gradient_estimator": "stl"}, "gradient_estimator='standard'"),
    ({"objective": "iwae", "k": 2, "gradient_estimator": "dreg"}, "gradient_estimator='standard'"),
])
@pytest.mark.parametrize("posterior", ["planar", "iaf"])
def test_bad_settings_are_refused_in_one_line(posterior, settings, message):
    with pytest.raises(ValueError, match=message) as info:
        npvae.VAE(posterior=posterior, **settings).initialize(4)
    assert "\n" not in str(info.value)


def test_iaf_options_refused_and_set_params_checked(rng):
    with pytest.raises(ValueError, match=r"\['hidden_size'\] must be an integer"):
        npvae.VAE(posterior="iaf", posterior_params={"hidden_size": -1}).initialize(4)
    m = flow_model("iaf", {"n_flows": 2}).initialize(6)
    m.set_params(posterior_params={"n_flows": 3})          # more weights than params_ holds
    with pytest.raises(ValueError, match="no longer match its parameters"):
        m.transform(make_data("bernoulli", 2, 6, rng))
    m.set_params(posterior_params={"n_flows": 2})
    assert m.transform(make_data("bernoulli", 2, 6, rng)).shape == (2, 3)


def test_flows_are_not_gaussian_and_log_q_needs_mu(rng):
    m = flow_model("planar", None).initialize(6)
    with pytest.raises(ValueError, match="no Gaussian covariance"):
        m.encode_cholesky(make_data("bernoulli", 2, 6, rng))
    with pytest.raises(ValueError, match="depends on μ"):
        PlanarPosterior().log_q_forward(np.zeros((1, 3 + 4 * 7)), np.zeros((1, 1, 3)))
    assert PlanarPosterior().n_flows == 4 and IAFPosterior().n_flows == 2


def test_an_all_zero_input_gives_finite_gradients():
    """w = 0 for a zero input at initialisation (zero biases): û = u, no division by 0."""
    m = flow_model("planar", {"n_flows": 2}, hidden_sizes=(4,), activation="relu").initialize(5)
    X = np.zeros((2, 5))
    loss, grads = m.loss_and_grads(X, m.draw_noise(2, random_state=0))
    assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads.values())


def test_cli_trains_a_flow_vae_and_reruns_its_config(tmp_path, capsys):
    from npvae.cli import main
    out = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--posterior", "iaf", "--n-flows", "2",
                 "--flow-hidden", "6", "--flow-context", "3", "--latent", "2", "--hidden", "16",
                 "--epochs", "1", "--max-examples", "300", "--threads", "1",
                 "--out", str(out)]) == 0
    m = npvae.load(out / "checkpoint.npz")
    assert m.posterior == "iaf" and m.posterior_params == {
        "n_flows": 2, "hidden_size": 6, "context_size": 3}
    assert m.params_["iaf1_W"].shape == (2, 6) and (out / "figures" / "latent.png").exists()
    again = tmp_path / "again"
    assert main(["train", "--config", str(out / "config.json"), "--out", str(again)]) == 0
    assert npvae.load(again / "checkpoint.npz").posterior_params == m.posterior_params


@pytest.mark.parametrize("argv, message", [
    (["--n-flows", "3"], "--n-flows: for --posterior planar or iaf only"),
    (["--posterior", "planar", "--flow-hidden", "3"], "--flow-hidden: for --posterior iaf only"),
    (["--posterior", "planar", "--model", "hvae", "--latent", "2,2"], "is for --model vae"),
    (["--posterior", "iaf", "--gradient-estimator", "stl"], "gradient_estimator='standard'"),
    (["--posterior", "planar", "--n-flows", "0"], "--n-flows"),
])
def test_cli_refuses_bad_flow_flags_in_one_line(argv, message, tmp_path, capsys):
    assert_train_refused(argv, message, tmp_path, capsys)
