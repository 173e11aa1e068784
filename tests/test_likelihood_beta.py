"""The Beta likelihood, added through the Likelihood contract alone: forward values
against scipy.stats, the kernel gradient and a whole model's gradient against finite
differences (float64), the mean, the support, training on grey levels."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import npvae
from npvae.data import dequantize
from npvae.distributions.likelihoods import LIKELIHOODS, Beta, make_likelihood
from npvae.distributions.likelihoods.beta import beta_backward, beta_forward
from npvae.gradcheck import check_kernel, directional_derivative, relative_error


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_registered():
    assert LIKELIHOODS["beta"] is Beta
    assert make_likelihood("beta", {"concentration": 3.0}).concentration == 3.0
    with pytest.raises(ValueError, match="concentration"):
        make_likelihood("beta", {"concentration": -1})


def test_forward_is_scipys_log_density(rng):
    out = rng.normal(0, 1.5, (3, 4, 5, 2))                          # (S, N, D, 2)
    x = rng.uniform(0.01, 0.99, (4, 5))
    log_p, _ = beta_forward(out, x)
    expected = stats.beta.logpdf(x, np.exp(out[..., 0]), np.exp(out[..., 1])).sum(-1)
    np.testing.assert_allclose(log_p, expected, rtol=1e-12)


def test_kernel_gradient_by_finite_differences(rng):
    out = rng.normal(0, 1, (2, 3, 4, 2))
    x = rng.uniform(0.05, 0.95, (3, 4))
    errors = check_kernel(beta_forward, beta_backward, [out, x], {0: 0}, rng)
    assert errors[0] < 1e-7


def test_mean_is_alpha_over_alpha_plus_beta(rng):
    out = rng.normal(0, 1, (5, 3, 2))
    a, b = np.exp(out[..., 0]), np.exp(out[..., 1])
    np.testing.assert_allclose(Beta().mean(out, {}), a / (a + b), rtol=1e-12)


def test_output_bias_puts_the_mean_at_the_data_mean(rng):
    X = rng.uniform(0.1, 0.9, (50, 4))
    bias = Beta(concentration=2.0).output_bias(X).reshape(4, 2)
    np.testing.assert_allclose(Beta().mean(bias, {}), X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(np.exp(bias).sum(axis=1), 2.0, rtol=1e-12)


@pytest.mark.parametrize("bad", [0.0, 1.0, 1.5, -0.1])
def test_support_is_the_open_interval(bad):
    m = npvae.VAE(n_latent=2, hidden_sizes=(3,), likelihood="beta", random_state=0).initialize(4)
    X = np.full((2, 4), 0.5)
    X[1, 2] = bad
    with pytest.raises(ValueError, match=r"inside \(0, 1\)"):
        m.loss_and_grads(X, m.draw_noise(2))


@pytest.mark.parametrize("model", ["vae", "hvae"])
def test_whole_model_gradient(model, rng):
    """Random-direction check of a whole model with the Beta likelihood, float64."""
    if model == "vae":
        m = npvae.VAE(n_latent=3, hidden_sizes=(5,), activation="tanh", likelihood="beta",
                      n_samples=2, random_state=1).initialize(6)
    else:
        m = npvae.HierarchicalVAE(latent_sizes=(3, 2), hidden_sizes=(5,), likelihood="beta",
                                  n_samples=2, random_state=1).initialize(6)
    X = rng.uniform(0.05, 0.95, (4, 6))
    eps = m.draw_noise(4, random_state=2)
    _, grads = m.loss_and_grads(X, eps)
    g = np.concatenate([grads[k].ravel() for k in m.params_])
    v = rng.standard_normal(g.shape)
    num = directional_derivative(lambda: m.loss_and_grads(X, eps)[0], m.flat_params_, v)
    assert relative_error(np.array([g @ v]), np.array([num])) < 1e-7


def test_trains_on_dequantized_grey_levels():
    from sklearn.datasets import load_digits
    pixels = (load_digits().data[:300] * 16).clip(0, 255).astype(np.uint8)
    X = dequantize(pixels, np.float64)
    assert X.min() > 0 and X.max() < 1
    m = npvae.VAE(n_latent=4, hidden_sizes=(32,), likelihood="beta", random_state=0)
    m.fit(X, epochs=8, batch_size=50, learning_rate=3e-3)
    elbo = [h["train_elbo"] for h in m.history_]
    assert np.all(np.isfinite(elbo)) and elbo[-1] > elbo[0]
    assert m.sample(3, random_state=0).shape == (3, 64)
