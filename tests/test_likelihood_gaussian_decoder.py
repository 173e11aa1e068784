"""The Gaussian MLP decoder of Kingma & Welling (2014, appendix C.2): mean and
log-variance per dimension from the decoder, the mean optionally a sigmoid.
Forward values against scipy.stats, kernel and whole-model gradients against
finite differences (float64), the mean and the starting output bias."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit

import npvae
from npvae.distributions.likelihoods import Gaussian
from npvae.distributions.likelihoods.gaussian import (gaussian_decoder_backward,
                                                       gaussian_decoder_forward)
from npvae.gradcheck import check_kernel, directional_derivative, relative_error


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("sigmoid_mean", [False, True])
def test_forward_is_scipys_log_density(sigmoid_mean, rng):
    out = rng.normal(0, 1, (3, 4, 5, 2))
    x = rng.uniform(0, 1, (4, 5))
    log_p, _ = gaussian_decoder_forward(out, x, sigmoid_mean)
    m = expit(out[..., 0]) if sigmoid_mean else out[..., 0]
    expected = stats.norm.logpdf(x, m, np.exp(0.5 * out[..., 1])).sum(-1)
    np.testing.assert_allclose(log_p, expected, rtol=1e-12)


@pytest.mark.parametrize("sigmoid_mean", [False, True])
def test_kernel_gradient(sigmoid_mean, rng):
    out = rng.normal(0, 1, (2, 3, 4, 2))
    x = rng.uniform(0, 1, (3, 4))
    errors = check_kernel(lambda o, x: gaussian_decoder_forward(o, x, sigmoid_mean),
                          gaussian_decoder_backward, [out, x], {0: 0}, rng)
    assert errors[0] < 1e-7


@pytest.mark.parametrize("params", [{"variance": "decoder", "sigmoid_mean": True},
                                    {"variance": "decoder"},
                                    {"variance": "scalar", "sigmoid_mean": True},
                                    {"variance": "per_output", "sigmoid_mean": True},
                                    # floored (docs/04-likelihoods.md#a-floor-under-the-variance)
                                    {"variance": "decoder", "sigmoid_mean": True,
                                     "min_logvar": -3.0},
                                    {"variance": "scalar", "logvar": -1.0, "min_logvar": -3.0},
                                    {"variance": "per_output", "min_logvar": -3.0}])
@pytest.mark.parametrize("objective", ["elbo", "iwae"])
def test_whole_model_gradient(params, objective, rng):
    m = npvae.VAE(n_latent=3, hidden_sizes=(5,), activation="tanh", likelihood="gaussian",
                  likelihood_params=params, objective=objective, k=3, n_samples=2,
                  random_state=1).initialize(6)
    X = rng.uniform(0, 1, (4, 6))
    eps = m.draw_noise(4, random_state=2)
    _, grads = m.loss_and_grads(X, eps)
    g = np.concatenate([grads[k].ravel() for k in m.params_])
    v = rng.standard_normal(g.shape)
    num = directional_derivative(lambda: m.loss_and_grads(X, eps)[0], m.flat_params_, v)
    assert relative_error(np.array([g @ v]), np.array([num])) < 1e-7


def test_mean_and_output_bias(rng):
    lik = Gaussian(variance="decoder", sigmoid_mean=True)
    X = rng.uniform(0.1, 0.9, (200, 4))
    bias = lik.output_bias(X).reshape(4, 2)
    np.testing.assert_allclose(lik.mean(bias, {}), X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(np.exp(bias[:, 1]), X.var(axis=0), rtol=1e-12)
    assert lik.output_shape(4) == (4, 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        lik.check_data(np.array([[1.5]]))
    with pytest.raises(ValueError, match="sigmoid_mean"):
        Gaussian(sigmoid_mean="yes")


def test_hierarchical_with_the_decoder_variance(rng):
    m = npvae.HierarchicalVAE(latent_sizes=(3, 2), hidden_sizes=(5,), likelihood="gaussian",
                              likelihood_params={"variance": "decoder", "sigmoid_mean": True},
                              random_state=0).initialize(6)
    X = rng.uniform(0, 1, (4, 6))
    eps = m.draw_noise(4, random_state=2)
    _, grads = m.loss_and_grads(X, eps)
    g = np.concatenate([grads[k].ravel() for k in m.params_])
    v = rng.standard_normal(g.shape)
    num = directional_derivative(lambda: m.loss_and_grads(X, eps)[0], m.flat_params_, v)
    assert relative_error(np.array([g @ v]), np.array([num])) < 1e-7
    assert m.sample(3, random_state=0).shape == (3, 6)
