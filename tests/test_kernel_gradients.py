"""Centred finite differences in float64 for every kernel and activation
(relative error below 1e-7, against a random upstream gradient), on both backends."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from npvae.gradcheck import kernel_index

K = kernel_index()
from npvae.gradcheck import check_kernel
from npvae.layers.activations import ACTIVATIONS

TOL = 1e-7


def away_from_kinks(a):
    """Move values away from 0, where relu/leaky relu have a kink."""
    return a + 0.1 * np.sign(a)


def check(forward, backward, inputs, wrt, rng):
    """Assert npvae.gradcheck.check_kernel's errors are below TOL for every input."""
    errors = check_kernel(forward, backward, inputs, wrt, rng)
    for i, err in errors.items():
        assert err < TOL, f"input {i}: relative error {err:.2e}"
    return max(errors.values())


@pytest.mark.parametrize("activation", ACTIVATIONS)
@given(n=st.integers(1, 6), m=st.integers(1, 6), seed=st.integers(0, 2**31))
def test_bias_activation(activation, n, m, seed):
    for be in ("numpy", "numba"):
        import npvae
        with npvae.use_backend(be):
            rng = np.random.default_rng(seed)
            a = away_from_kinks(rng.standard_normal((n, m)) * 2)
            b = rng.standard_normal(m) * 0.01
            check(lambda a, b: K.bias_activation_forward(a, b, activation),
                  K.bias_activation_backward, [a, b], {0: 0, 1: 1}, rng)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_without_bias(activation, backend, rng):
    a = away_from_kinks(rng.standard_normal((4, 5)))
    check(lambda a: K.activation_forward(a, activation),
          lambda d, c: (K.activation_backward(d, c),), [a], {0: 0}, rng)


@pytest.mark.parametrize("n_rows", [1, 5])          # one row takes the outer-product path
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense(activation, backend, rng, n_rows):
    x = rng.standard_normal((n_rows, 4))
    W = rng.standard_normal((4, 3))
    b = rng.standard_normal(3)
    # keep pre-activations away from relu kinks
    while np.min(np.abs(x @ W + b)) < 1e-3:
        b += 0.01
    check(lambda x, W, b: K.dense_forward(x, W, b, activation), K.dense_backward,
          [x, W, b], {0: 0, 1: 1, 2: 2}, rng)


def test_mlp(backend, rng):
    x = rng.standard_normal((6, 4))
    weights = [(rng.standard_normal((4, 5)), rng.standard_normal(5)),
               (rng.standard_normal((5, 3)), rng.standard_normal(3))]
    acts = ["tanh", "softplus"]

    def forward(x, W0, b0, W1, b1):
        return K.mlp_forward(x, [(W0, b0), (W1, b1)], acts)

    def backward(d, caches):
        dx, grads = K.mlp_backward(d, caches)
        return (dx,) + tuple(g for pair in grads for g in pair)

    inputs = [x] + [p for pair in weights for p in pair]
    check(forward, backward, inputs, {i: i for i in range(5)}, rng)


@given(S=st.integers(1, 4), N=st.integers(1, 5), Z=st.integers(1, 5), seed=st.integers(0, 2**31))
def test_reparameterize(S, N, Z, seed):
    import npvae
    for be in ("numpy", "numba"):
        with npvae.use_backend(be):
            rng = np.random.default_rng(seed)
            mu, logvar = rng.standard_normal((2, N, Z))
            eps = rng.standard_normal((S, N, Z))
            check(lambda m, l: K.reparameterize_forward(m, l, eps), K.reparameterize_backward,
                  [mu, logvar], {0: 0, 1: 1}, rng)


def test_kl_standard_normal(backend, rng):
    mu, logvar = rng.standard_normal((2, 7, 4))
    check(K.kl_standard_normal_forward, K.kl_standard_normal_backward, [mu, logvar],
          {0: 0, 1: 1}, rng)


@pytest.mark.parametrize("lead", [(), (3,)])
def test_kl_diagonal(backend, rng, lead):
    mu_q, lv_q, mu_p, lv_p = rng.standard_normal((4,) + lead + (5, 3))
    check(K.kl_diagonal_forward, K.kl_diagonal_backward, [mu_q, lv_q, mu_p, lv_p],
          {0: 0, 1: 1, 2: 2, 3: 3}, rng)


def test_log_q(rng):
    logvar = rng.standard_normal((5, 3))
    eps = rng.standard_normal((2, 5, 3))
    check(lambda lv: K.log_q_forward(lv, eps), lambda d, c: (K.log_q_backward(d, c),),
          [logvar], {0: 0}, rng)


@pytest.mark.parametrize("mu_shape", [(5, 3), (2, 5, 3), (1, 3)])
def test_log_normal(rng, mu_shape):
    z = rng.standard_normal((2, 5, 3))
    mu = rng.standard_normal(mu_shape)
    logvar = rng.standard_normal(mu_shape)
    check(K.log_normal_forward, K.log_normal_backward, [z, mu, logvar], {0: 0, 1: 1, 2: 2}, rng)


def test_bernoulli(backend, rng):
    logits = rng.standard_normal((3, 4, 6)) * 3
    x = (rng.random((4, 6)) < 0.5).astype(float)
    check(lambda l: K.bernoulli_forward(l, x), lambda d, c: (K.bernoulli_backward(d, c),),
          [logits], {0: 0}, rng)


@pytest.mark.parametrize("lv_shape", [(), (6,)])
def test_gaussian(backend, rng, lv_shape):
    mean = rng.standard_normal((2, 4, 6))
    logvar = np.array(rng.standard_normal(lv_shape) * 0.5)  # 0-d array, not a scalar
    x = rng.standard_normal((4, 6))
    check(lambda m, lv: K.gaussian_forward(m, lv, x), K.gaussian_backward, [mean, logvar],
          {0: 0, 1: 1}, rng)


def test_categorical(backend, rng):
    logits = rng.standard_normal((2, 3, 4, 7))
    x = rng.integers(0, 7, size=(3, 4))
    check(lambda l: K.categorical_forward(l, x), lambda d, c: (K.categorical_backward(d, c),),
          [logits], {0: 0}, rng)
