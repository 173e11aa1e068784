"""Importance weighting (MATH §6): IWAE gradient, the bound's properties, log p(x) estimates."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy import stats

import npvae
from npvae.gradcheck import numerical_gradient, relative_error
from npvae.layers.activations import ACTIVATIONS

from test_vae import LIKELIHOODS, make_data, make_model, random_direction_error


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_iwae_gradient_by_finite_differences(likelihood, backend, rng):
    X = make_data(likelihood, 4, 5, rng)
    m = make_model(likelihood, n_latent=2, hidden_sizes=(3,), activation="tanh",
                   objective="iwae", k=5, random_state=1).initialize(5)
    eps = m.draw_noise(4, random_state=2)
    assert eps.shape == (5, 4, 2)
    _, grads = m.loss_and_grads(X, eps)
    for name, p in m.params_.items():
        num = numerical_gradient(lambda: m.loss_and_grads(X, eps)[0], p)
        assert relative_error(grads[name], num) < 1e-7, name


@given(depth=st.integers(0, 3), width=st.integers(1, 64), Z=st.integers(1, 16),
       K=st.integers(1, 8), N=st.integers(1, 5), D=st.integers(1, 10),
       likelihood=st.sampled_from(LIKELIHOODS), activation=st.sampled_from(ACTIVATIONS),
       seed=st.integers(0, 2**31))
def test_iwae_random_direction(depth, width, Z, K, N, D, likelihood, activation, seed):
    rng = np.random.default_rng(seed)
    X = make_data(likelihood, N, D, rng)
    m = make_model(likelihood, n_latent=Z, hidden_sizes=(width,) * depth, activation=activation,
                   objective="iwae", k=K, random_state=seed).initialize(D)
    assert random_direction_error(m, X, m.draw_noise(N, random_state=seed + 1), rng) < 1e-7


def trained_model(objective="elbo", k=1):
    from sklearn.datasets import load_digits
    X = (load_digits().data >= 8).astype(float)
    m = npvae.VAE(n_latent=4, hidden_sizes=(32,), objective=objective, k=k, random_state=0)
    return m.fit(X[:1500], epochs=20, batch_size=50, learning_rate=3e-3), X[1500:1540]


@pytest.fixture(scope="module")
def trained():
    return trained_model()


def test_log_weights_are_the_joint_over_q(trained):
    m, X = trained
    eps = m.draw_noise(len(X), n_samples=3, random_state=0)
    log_w = m.log_weights(X, eps)
    mu, logvar = m.encode(X)
    z = mu + np.exp(0.5 * logvar) * eps
    logits = m.decode(z.reshape(-1, 4)).reshape(3, len(X), -1)
    expected = (stats.bernoulli.logpmf(X, 1 / (1 + np.exp(-logits))).sum(-1)
                + stats.norm.logpdf(z).sum(-1)
                - stats.norm.logpdf(z, mu, np.exp(0.5 * logvar)).sum(-1))
    np.testing.assert_allclose(log_w, expected, rtol=1e-10)


def test_l1_is_the_elbo(trained):
    """L_1 = E[log w] equals the closed-form-KL ELBO in expectation (MATH §6)."""
    m, X = trained
    S = 4000
    eps = m.draw_noise(len(X), n_samples=S, random_state=1)
    l1 = m.log_weights(X, eps)                       # (S, N): samples of the K = 1 bound
    t = m.elbo_terms(X, eps)                         # the same noise, closed-form KL
    elbo = t["reconstruction"] - t["kl"]
    se = l1.std(axis=0) / np.sqrt(S)
    assert np.all(np.abs(l1.mean(axis=0) - elbo) < 5 * se)
    iw = npvae.VAE(**dict(m.get_params(), objective="iwae", k=1)).initialize(X.shape[1])
    iw.flat_params_[...] = m.flat_params_
    np.testing.assert_allclose(iw.elbo_terms(X, eps[:1])["iwae"], l1[0], rtol=1e-12)


def test_bound_grows_with_k_and_stays_below_the_estimate(trained):
    m, X = trained
    bounds = {}
    for K in (1, 5, 50):
        vals = [m.log_likelihood(X, n_importance=K, random_state=r) for r in range(20)]
        bounds[K] = np.mean(vals)                      # ≈ L_K averaged over examples
    ll = m.log_likelihood(X, n_importance=5000, random_state=99).mean()
    assert bounds[1] < bounds[5] < bounds[50] < ll + 0.05, (bounds, ll)
    assert ll - bounds[1] > 0.1                        # the gap is real, not rounding


def test_log_likelihood_is_logsumexp_of_the_weights(trained):
    """One chunk: exactly logsumexp_k log w_k − log K on the same noise (MATH §6)."""
    from scipy.special import logsumexp
    m, X = trained
    a = m.log_likelihood(X[:5], n_importance=64, random_state=3, max_rows=10_000)
    eps = m.draw_noise(5, n_samples=64, random_state=3)
    np.testing.assert_allclose(a, logsumexp(m.log_weights(X[:5], eps), axis=0) - np.log(64),
                               rtol=1e-12)


@pytest.mark.parametrize("max_rows", [1, 7, 20, 45, 10_000])
def test_log_likelihood_in_chunks(max_rows):
    """K split across chunks and examples across batches: with the exact posterior
    every weight is p(x), so any chunking must return log p(x) exactly."""
    m, X, exact = linear_gaussian()
    np.testing.assert_allclose(m.log_likelihood(X[:9], n_importance=20, random_state=0,
                                                 max_rows=max_rows), exact[:9], rtol=1e-10)


def linear_gaussian(D=5, sigma2=0.3, seed=0):
    """x = w z + b + noise, z ~ N(0, 1): p(x) = N(b, w wᵀ + σ² I) in closed form."""
    rng = np.random.default_rng(seed)
    m = npvae.VAE(n_latent=1, hidden_sizes=(), likelihood="gaussian",
                  likelihood_params={"logvar": float(np.log(sigma2))}, random_state=seed).initialize(D)
    w = rng.normal(0, 1, D)
    b = rng.normal(0, 1, D)
    m.params_["dec_out_W"][...] = w[None, :]
    m.params_["dec_out_b"][...] = b
    # the exact posterior: variance s² = 1/(1 + wᵀw/σ²), mean s² wᵀ(x − b)/σ²
    s2 = 1 / (1 + w @ w / sigma2)
    m.params_["enc_mu_W"][...] = (s2 * w / sigma2)[:, None]
    m.params_["enc_mu_b"][...] = -(s2 * w / sigma2) @ b
    m.params_["enc_logvar_W"][...] = 0
    m.params_["enc_logvar_b"][...] = np.log(s2)
    X = rng.multivariate_normal(b, np.outer(w, w) + sigma2 * np.eye(D), size=50)
    exact = stats.multivariate_normal(b, np.outer(w, w) + sigma2 * np.eye(D)).logpdf(X)
    return m, X, exact


def test_log_likelihood_exact_with_the_true_posterior():
    """With q equal to the true posterior every weight equals p(x): the estimate is exact."""
    m, X, exact = linear_gaussian()
    np.testing.assert_allclose(m.log_likelihood(X, n_importance=3, random_state=0), exact,
                               rtol=1e-10)
    # every single log-weight is log p(x), whatever the noise
    log_w = m.log_weights(X, m.draw_noise(len(X), n_samples=4, random_state=1))
    np.testing.assert_allclose(log_w, np.broadcast_to(exact, log_w.shape), rtol=1e-10)


def test_log_likelihood_converges_with_an_approximate_posterior():
    m, X, exact = linear_gaussian()
    m.params_["enc_logvar_b"] += 1.0                 # q too wide, and off-centre
    m.params_["enc_mu_b"] += 0.5
    errors = [np.abs(m.log_likelihood(X, n_importance=K, random_state=1) - exact).mean()
              for K in (1, 50, 5000)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.01, errors


def test_iwae_training_runs_and_reports_the_bound():
    m, X = trained_model("iwae", k=5)
    assert "train_iwae" in m.history_[-1]
    assert m.history_[-1]["train_iwae"] >= m.history_[-1]["train_elbo"]


def test_active_units(trained):
    m, X = trained
    au = m.active_units(X)
    assert isinstance(au, list) and len(au) == 1 and 0 < au[0] <= 4
    m2 = npvae.VAE(**m.get_params()).initialize(X.shape[1])
    m2.flat_params_[...] = m.flat_params_
    m2.params_["enc_mu_W"][:, 0] = 0           # unit 0's mean no longer depends on x
    assert m2.active_units(X)[0] == au[0] - (1 if np.var(m.transform(X)[:, 0]) > 0.01 else 0)


def test_iwae_settings_errors():
    with pytest.raises(ValueError, match="objective"):
        npvae.VAE(objective="vi").initialize(3)
    with pytest.raises(ValueError, match="k must"):
        npvae.VAE(objective="iwae", k=0).initialize(3)
    with pytest.raises(ValueError, match="beta=1"):
        npvae.VAE(objective="iwae", k=2, beta=0.5).initialize(3)
