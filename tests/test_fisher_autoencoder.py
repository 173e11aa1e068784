"""The Fisher autoencoder (docs/14-fisher-autoencoder.md): the input-gradient kernels
and their second-order backward by centred differences in float64, the whole
model's gradient along random directions, the loss against the closed-form Fisher
divergence of two Gaussians (linear encoder and decoder), and the estimator
contract (fit, transform, sample, checkpoints, scikit-learn's checks)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

import npvae
from npvae.gradcheck import check_kernel, directional_derivative, relative_error
from npvae.layers.activations import activation_derivative, activation_value
from npvae.layers.input_gradient import (activation_second_derivative, input_gradient_backward,
                                         input_gradient_forward, mlp_jet_backward,
                                         mlp_jet_forward)

TOL = 1e-7
SMOOTH = ("tanh", "softplus", "sigmoid", "identity")


def _layers(rng, widths):
    return [(rng.standard_normal((a, b)) * 0.7, rng.standard_normal(b) * 0.3)
            for a, b in zip(widths[:-1], widths[1:])]


def _flat_inputs(u, v, layers):
    return [u, v] + [p for W, b in layers for p in (W, b)]


def _unflat(params):
    return [(params[i], params[i + 1]) for i in range(0, len(params), 2)]


def _check(errors):
    for i, err in errors.items():
        assert err < TOL, f"input {i}: relative error {err:.2e}"


@pytest.mark.parametrize("activation", SMOOTH)
def test_second_derivative_of_each_activation(activation):
    a = np.linspace(-3, 3, 41)
    h = 1e-5
    num = (activation_derivative(activation_value(a + h, activation), activation)
           - activation_derivative(activation_value(a - h, activation), activation)) / (2 * h)
    got = activation_second_derivative(activation_value(a, activation), activation)
    got = np.zeros_like(a) if got is None else got
    np.testing.assert_allclose(got, num, atol=1e-8)


@pytest.mark.parametrize("widths", [(4, 3), (4, 5, 3), (3, 4, 5, 2)])
@pytest.mark.parametrize("activation", SMOOTH)
def test_mlp_jet_forward_backward(widths, activation, rng):
    layers = _layers(rng, widths)
    acts = [activation] * (len(layers) - 1) + ["identity"]
    u = rng.standard_normal((5, widths[0]))

    def forward(u, *params):
        return mlp_jet_forward(u, _unflat(params), acts)

    def backward(dy, cache):
        du, grads = mlp_jet_backward(dy, cache)
        return (du,) + tuple(g for pair in grads for g in pair)

    inputs = [u] + [p for W, b in layers for p in (W, b)]
    _check(check_kernel(forward, backward, inputs, {i: i for i in range(len(inputs))}, rng))


@pytest.mark.parametrize("widths", [(4, 3), (4, 5, 3), (3, 4, 5, 2)])
@pytest.mark.parametrize("activation", SMOOTH)
def test_input_gradient_second_order_backward(widths, activation, rng):
    """``r = J_g(u)ᵀ v`` and its backward with respect to ``u``, ``v`` and every weight:
    input_gradient_backward followed by mlp_jet_backward with the extra ``ā_i``."""
    layers = _layers(rng, widths)
    acts = [activation] * (len(layers) - 1) + ["identity"]
    u = rng.standard_normal((5, widths[0]))
    v = rng.standard_normal((5, widths[-1]))

    def forward(u, v, *params):
        _, cache = mlp_jet_forward(u, _unflat(params), acts)
        return input_gradient_forward(v, cache)

    def backward(dr, cache):
        dv, da_extra, dW_extra = input_gradient_backward(dr, cache)
        du, grads = mlp_jet_backward(None, cache[0], da_extra)
        flat = [g for (dW, db), extra in zip(grads, dW_extra) for g in (dW + extra, db)]
        return (du, dv) + tuple(flat)

    inputs = _flat_inputs(u, v, layers)
    _check(check_kernel(forward, backward, inputs, {i: i for i in range(len(inputs))}, rng))


@pytest.mark.parametrize("activation", SMOOTH)
def test_input_gradient_is_the_gradient_of_v_dot_g(activation, rng):
    layers = _layers(rng, (4, 6, 3))
    acts = [activation, "identity"]
    u, v = rng.standard_normal((3, 4)), rng.standard_normal((3, 3))
    r, _ = input_gradient_forward(v, mlp_jet_forward(u, layers, acts)[1])
    h = 1e-6
    num = np.zeros_like(u)
    for idx in np.ndindex(u.shape):
        up, um = u.copy(), u.copy()
        up[idx] += h
        um[idx] -= h
        num[idx] = (np.sum(v * mlp_jet_forward(up, layers, acts)[0])
                    - np.sum(v * mlp_jet_forward(um, layers, acts)[0])) / (2 * h)
    assert relative_error(r, num) < TOL


def _model(**kw):
    settings = dict(n_latent=3, hidden_sizes=(5,), activation="tanh", decoder_logvar=-0.5,
                    n_samples=2, random_state=0)
    settings.update(kw)
    return npvae.FisherAutoencoder(**settings)


@pytest.mark.parametrize("settings", [
    dict(), dict(hidden_sizes=(4, 3), activation="softplus"), dict(hidden_sizes=()),
    dict(hidden_sizes=(4,), decoder_hidden_sizes=(6, 2), activation="sigmoid", n_samples=1)])
def test_whole_model_gradient_along_random_directions(settings):
    m = _model(**settings).initialize(6)
    rng = np.random.default_rng(1)
    m.flat_params_[...] += 0.3 * rng.standard_normal(m.flat_params_.shape)
    X = rng.standard_normal((4, 6))
    eps = m.draw_noise(4, random_state=2)
    _, grads = m.loss_and_grads(X, eps)
    g = np.concatenate([grads[k].ravel() for k in m.params_])
    for _ in range(3):
        v = rng.standard_normal(g.shape)
        num = directional_derivative(lambda: m.loss_and_grads(X, eps)[0], m.flat_params_, v)
        assert relative_error(np.array([g @ v]), np.array([num])) < TOL


def _gaussian_fisher(m_q, S_q, m_p, S_p):
    """``E_q ‖∇ log p − ∇ log q‖²`` for Gaussians ``q = N(m_q, S_q)``, ``p = N(m_p, S_p)``."""
    P_q, P_p = np.linalg.inv(S_q), np.linalg.inv(S_p)
    A = P_q - P_p
    return float(np.trace(A @ S_q @ A.T) + np.sum((P_p @ (m_q - m_p)) ** 2))


def test_loss_is_the_fisher_divergence_of_linear_gaussian_joints():
    """Linear encoder (constant variance) and decoder on Gaussian data: both joints are
    Gaussian and ``E[loss] + E‖∇ log p_data‖² = F(q(x, z) ‖ p(x, z))`` in closed form."""
    D, Z, N = 3, 2, 200000
    rng = np.random.default_rng(0)
    m = _model(n_latent=Z, hidden_sizes=(), activation="identity", n_samples=1,
               decoder_logvar=-0.3).initialize(D)
    P = m.params_
    P["enc_mu_W"][...] = rng.standard_normal((D, Z)) * 0.5
    P["enc_mu_b"][...] = rng.standard_normal(Z) * 0.3
    P["enc_logvar_W"][...] = 0.0                             # q(z|x): variance free of x
    P["enc_logvar_b"][...] = rng.standard_normal(Z) * 0.3
    P["dec_out_W"][...] = rng.standard_normal((Z, D)) * 0.8
    P["dec_out_b"][...] = rng.standard_normal(D) * 0.3
    L = rng.standard_normal((D, D)) * 0.4 + np.eye(D)
    S_d, m_d = L @ L.T, rng.standard_normal(D) * 0.5          # p_data = N(m_d, S_d)
    X = m_d + rng.standard_normal((N, D)) @ L.T
    A, a = P["enc_mu_W"], P["enc_mu_b"]
    B, c = P["dec_out_W"], P["dec_out_b"]
    Lam = np.diag(np.exp(P["enc_logvar_b"]))
    m_q = np.concatenate([m_d, A.T @ m_d + a])
    S_q = np.block([[S_d, S_d @ A], [A.T @ S_d, A.T @ S_d @ A + Lam]])
    m_p = np.concatenate([c, np.zeros(Z)])
    S_p = np.block([[B.T @ B + np.exp(-0.3) * np.eye(D), B.T], [B, np.eye(Z)]])
    exact = _gaussian_fisher(m_q, S_q, m_p, S_p) - np.trace(np.linalg.inv(S_d))
    fisher = m.elbo_terms(X, m.draw_noise(N, random_state=1))["fisher"]
    se = fisher.std() / np.sqrt(N)
    print(f"MC {fisher.mean():.4f} ± {se:.4f}, closed form {exact:.4f}")
    assert abs(fisher.mean() - exact) < 4 * se, (fisher.mean(), exact, se)
    assert se < 0.02 * abs(exact) + 0.05                     # the test can tell a wrong value


def test_fit_transform_sample_shapes_and_the_loss_goes_down():
    X = np.random.default_rng(0).standard_normal((80, 6))
    m = _model(epochs=15, batch_size=20, learning_rate=3e-3).fit(X)
    assert m.transform(X).shape == (80, 3)
    assert m.sample(7, random_state=0).shape == (7, 6)
    assert m.reconstruct(X).shape == (80, 6)
    assert np.all(np.isfinite(m.log_likelihood(X[:5], n_importance=20, random_state=0)))
    losses = [h["train_fisher"] for h in m.history_]
    assert losses[-1] < losses[0] - 1.0
    assert set(m.elbo_terms(X, m.draw_noise(80))) == {"fisher", "reconstruction", "kl", "elbo"}


def test_save_load_round_trip(tmp_path):
    X = np.random.default_rng(0).standard_normal((40, 6))
    m = _model(epochs=2, batch_size=20, decoder_logvar=-1.25).fit(X)
    loaded = npvae.load(npvae.save(m, tmp_path / "fae.npz"))
    assert type(loaded) is npvae.FisherAutoencoder
    assert loaded.get_params() == m.get_params()
    np.testing.assert_array_equal(loaded.transform(X), m.transform(X))
    eps = m.draw_noise(40, random_state=3)
    assert loaded.loss_and_grads(X, eps)[0] == m.loss_and_grads(X, eps)[0]


@pytest.mark.parametrize("bad, match", [(dict(activation="relu"), "smooth activation"),
                                        (dict(decoder_logvar=float("nan")), "log-variance must be finite")])
def test_bad_settings_are_refused_in_one_line(bad, match):
    with pytest.raises(ValueError, match=match) as info:
        _model(**bad).initialize(4)
    assert "\n" not in str(info.value)


with warnings.catch_warnings():
    # npvae's models follow the estimator protocol without inheriting BaseEstimator
    # (npvae/models/sklearn_api.py says why); scikit-learn warns about it when collecting
    warnings.filterwarnings("ignore", message="Estimator .* does not inherit")
    _CHECKS = parametrize_with_checks([npvae.FisherAutoencoder(n_latent=2, hidden_sizes=(4,), epochs=2,
                                                      batch_size=10, random_state=0)])


@_CHECKS
def test_sklearn_check_estimator(estimator, check):
    check(estimator)
