"""The forward passes against the mathematics, independently of the backward."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy import stats
from scipy.special import log_softmax

from npvae.gradcheck import kernel_index

K = kernel_index()


@given(Z=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_kl_standard_normal_against_monte_carlo(Z, seed):
    """MATH §3: the closed form equals E_q[log q(z) − log p(z)], estimated with 200k samples."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0, 1, (1, Z))
    logvar = rng.normal(0, 0.5, (1, Z))
    kl, _ = K.kl_standard_normal_forward(mu, logvar)
    eps = rng.standard_normal((200_000, 1, Z))
    z, _ = K.reparameterize_forward(mu, logvar, eps)
    log_q = stats.norm.logpdf(z, mu, np.exp(0.5 * logvar)).sum(-1)
    log_p = stats.norm.logpdf(z).sum(-1)
    diff = log_q - log_p
    se = diff.std() / np.sqrt(diff.size)
    assert abs(kl[0] - diff.mean()) < 5 * se + 1e-9


def test_kl_diagonal_against_monte_carlo_and_standard_case(rng):
    mu_q, lv_q, mu_p, lv_p = rng.normal(0, 0.7, (4, 1, 3))
    kl, _ = K.kl_diagonal_forward(mu_q, lv_q, mu_p, lv_p)
    z = mu_q + np.exp(0.5 * lv_q) * rng.standard_normal((400_000, 1, 3))
    diff = (stats.norm.logpdf(z, mu_q, np.exp(0.5 * lv_q))
            - stats.norm.logpdf(z, mu_p, np.exp(0.5 * lv_p))).sum(-1)
    assert abs(kl[0] - diff.mean()) < 5 * diff.std() / np.sqrt(diff.size)
    # with p = N(0, I) it is the KL to the standard normal
    zero = np.zeros_like(mu_q)
    np.testing.assert_allclose(K.kl_diagonal_forward(mu_q, lv_q, zero, zero)[0],
                               K.kl_standard_normal_forward(mu_q, lv_q)[0], rtol=1e-14)
    # KL(q‖q) = 0
    np.testing.assert_allclose(K.kl_diagonal_forward(mu_q, lv_q, mu_q, lv_q)[0], 0, atol=1e-14)


def test_reparameterized_moments(rng):
    """MATH §2: z = μ + σ ε has mean μ and variance exp(λ)."""
    mu = np.array([[0.5, -2.0, 3.0]])
    logvar = np.array([[0.0, np.log(0.25), np.log(4.0)]])
    S = 400_000
    z, _ = K.reparameterize_forward(mu, logvar, rng.standard_normal((S, 1, 3)))
    var = np.exp(logvar[0])
    np.testing.assert_array_less(np.abs(z.mean(axis=(0, 1)) - mu[0]), 5 * np.sqrt(var / S))
    # the sample variance has standard error ≈ var·sqrt(2/S)
    np.testing.assert_array_less(np.abs(z.var(axis=(0, 1)) - var), 5 * var * np.sqrt(2 / S))


def test_log_q_is_the_density_of_z(rng):
    """MATH §2: the change of variables gives log N(z; μ, σ²) at z = μ + σ ε."""
    mu, logvar = rng.standard_normal((2, 4, 3))
    eps = rng.standard_normal((5, 4, 3))
    z, _ = K.reparameterize_forward(mu, logvar, eps)
    log_q, _ = K.log_q_forward(logvar, eps)
    expected = stats.norm.logpdf(z, mu, np.exp(0.5 * logvar)).sum(-1)
    np.testing.assert_allclose(log_q, expected, rtol=1e-12)
    np.testing.assert_allclose(K.log_normal_forward(z, mu, logvar)[0], expected, rtol=1e-12)
    np.testing.assert_allclose(K.log_normal_forward(z, 0.0, 0.0)[0],
                               stats.norm.logpdf(z).sum(-1), rtol=1e-12)


def test_bernoulli_against_scipy(backend, rng):
    logits = rng.normal(0, 3, (2, 5, 8))
    x = (rng.random((5, 8)) < 0.5).astype(float)
    p = 1 / (1 + np.exp(-logits))
    expected = stats.bernoulli.logpmf(x, p).sum(-1)
    np.testing.assert_allclose(K.bernoulli_forward(logits, x)[0], expected, rtol=1e-10)


def test_bernoulli_is_stable_for_huge_logits(backend):
    """|η| > 100 must give finite values: log p(x=1|η=200) = 0, log p(x=0|η=200) = -200."""
    logits = np.array([[[200.0, -200.0, 200.0, -200.0, 1e4]]])
    x = np.array([[1.0, 0.0, 0.0, 1.0, 1.0]])
    log_p, cache = K.bernoulli_forward(logits, x)
    np.testing.assert_allclose(log_p, [[-400.0]], rtol=1e-12)
    d = K.bernoulli_backward(np.ones((1, 1)), cache)
    assert np.all(np.isfinite(d))
    np.testing.assert_allclose(d, [[[0.0, 0.0, -1.0, 1.0, 0.0]]], atol=1e-12)


@pytest.mark.parametrize("lv_shape", [(), (6,)])
def test_gaussian_against_scipy(backend, rng, lv_shape):
    mean = rng.standard_normal((3, 4, 6))
    logvar = np.array(rng.normal(0, 0.5, lv_shape))
    x = rng.standard_normal((4, 6))
    expected = stats.norm.logpdf(x, mean, np.exp(0.5 * logvar)).sum(-1)
    np.testing.assert_allclose(K.gaussian_forward(mean, logvar, x)[0], expected, rtol=1e-12)


def test_categorical_by_hand(backend):
    """Two pixels, three levels: log p = log softmax(η_1)[x_1] + log softmax(η_2)[x_2]."""
    logits = np.array([[[[0.0, 1.0, 2.0], [3.0, 3.0, 3.0]]]])   # (S=1, N=1, D=2, V=3)
    x = np.array([[2, 0]])
    expected = (2 - np.log(1 + np.e + np.e**2)) + np.log(1 / 3)
    np.testing.assert_allclose(K.categorical_forward(logits, x)[0], [[expected]], rtol=1e-14)


def test_categorical_against_log_softmax(backend, rng):
    logits = rng.normal(0, 5, (2, 3, 4, 256))
    x = rng.integers(0, 256, (3, 4))
    lp = log_softmax(logits, axis=-1)
    expected = np.array([[sum(lp[s, n, d, x[n, d]] for d in range(4)) for n in range(3)]
                         for s in range(2)])
    np.testing.assert_allclose(K.categorical_forward(logits, x)[0], expected, rtol=1e-12)


@pytest.mark.parametrize("name, f", [
    ("relu", lambda a: np.maximum(a, 0)),
    ("leaky_relu", lambda a: np.where(a > 0, a, 0.01 * a)),
    ("tanh", np.tanh),
    ("sigmoid", lambda a: 1 / (1 + np.exp(-a))),
    ("softplus", lambda a: np.log1p(np.exp(a))),
    ("identity", lambda a: a),
])
def test_activation_values(backend, name, f):
    a = np.linspace(-5, 5, 41).reshape(1, -1)
    np.testing.assert_allclose(K.activation_forward(a, name)[0], f(a), rtol=1e-12, atol=1e-300)


def test_dense_is_affine(backend, rng):
    x, W, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal(2)
    np.testing.assert_allclose(K.dense_forward(x, W, b)[0], x @ W + b, rtol=1e-14)


def test_initialisers_have_the_stated_scale(rng):
    W = K.glorot_uniform(300, 200, rng)
    r = np.sqrt(6 / 500)
    assert W.min() >= -r and W.max() <= r
    np.testing.assert_allclose(W.var(), r * r / 3, rtol=0.05)
    H = K.he_normal(400, 300, rng)
    np.testing.assert_allclose(H.var(), 2 / 400, rtol=0.05)
    assert K.init_weight(10, 10, "relu", rng).dtype == np.float64
    assert K.init_weight(10, 10, "tanh", rng, np.float32).dtype == np.float32
