"""Full-covariance Gaussian posterior (docs/03-kl-divergences.md): kernels, the math, the VAE option."""
import numpy as np
import pytest
from scipy import stats

import npvae
from npvae.gradcheck import kernel_index

K = kernel_index()
from npvae.gradcheck import numerical_gradient, relative_error
from npvae.distributions import full_gaussian as F

from test_kernel_gradients import check
from test_vae import make_data, random_direction_error


def random_L(rng, N, Z):
    v = rng.normal(0, 0.5, (N, F.n_cholesky_entries(Z)))
    return F.cholesky_from_vector_forward(v, Z)[0], v


def test_kernels_by_finite_differences(rng):
    N, Z, S = 3, 4, 2
    v = rng.normal(0, 0.5, (N, F.n_cholesky_entries(Z)))
    mu = rng.standard_normal((N, Z))
    eps = rng.standard_normal((S, N, Z))
    L, _ = random_L(rng, N, Z)
    tril = np.tril(np.ones((Z, Z), bool))

    check(lambda v: F.cholesky_from_vector_forward(v, Z),
          lambda d, c: (F.cholesky_from_vector_backward(d, c),), [v], {0: 0}, rng)
    # L's free entries are its lower triangle: check through the packing
    def via_v(fwd, bwd):
        def forward(mu, v):
            Lv, lc = F.cholesky_from_vector_forward(v, Z)
            out, c = fwd(mu, Lv)
            return out, (lc, c)

        def backward(d, cache):
            lc, c = cache
            dmu, dL = bwd(d, c)
            assert not np.any(dL[:, ~tril])            # the upper triangle gets nothing
            return dmu, F.cholesky_from_vector_backward(dL, lc)
        return forward, backward

    check(*via_v(lambda m, L: F.reparameterize_full_forward(m, L, eps),
                 F.reparameterize_full_backward), [mu, v.copy()], {0: 0, 1: 1}, rng)
    def kl(mu, v):
        Lv, lc = F.cholesky_from_vector_forward(v, Z)
        out, c = F.kl_full_standard_normal_forward(mu, Lv, F.log_diagonal(v, Z))
        return out, (lc, c)

    def kl_backward(d, cache):
        lc, c = cache
        dmu, dL, ds = F.kl_full_standard_normal_backward(d, c)
        assert not np.any(dL[:, ~tril])
        return dmu, F.cholesky_from_vector_backward(dL, lc, ds)
    check(kl, kl_backward, [mu, v.copy()], {0: 0, 1: 1}, rng)

    def log_q(v):
        Lv, lc = F.cholesky_from_vector_forward(v, Z)
        out, c = F.log_q_full_forward(F.log_diagonal(v, Z), eps)
        return out, (lc, c)
    check(log_q, lambda d, c: (F.cholesky_from_vector_backward(None, c[0],
                                                               F.log_q_full_backward(d, c[1])),),
          [v.copy()], {0: 0}, rng)


def test_stable_where_the_diagonal_underflows():
    """``s = −120`` in float32: ``exp(s)`` is 0, yet the KL and log q are finite (they
    use ``s``, never ``log L_jj``), and so are their gradients."""
    from npvae.distributions.posteriors import FullCovarianceGaussian
    post = FullCovarianceGaussian()
    v = np.zeros((2, 6), np.float32)
    v[:, [0, 2, 5]] = -120
    mu = np.zeros((2, 3), np.float32)
    kl, c = post.kl_forward(mu, v)
    np.testing.assert_allclose(kl, 0.5 * (-3 + 2 * 360), rtol=1e-6)
    assert np.all(np.isfinite(post.kl_backward(np.ones(2, np.float32), c)[1]))
    log_q, c = post.log_q_forward(v, np.zeros((1, 2, 3), np.float32))
    assert np.all(np.isfinite(log_q)) and np.all(np.isfinite(post.log_q_backward(log_q, c)))
    np.testing.assert_allclose(post.marginal_logvar(v, 3), -240.0)


def test_positive_diagonal_and_lower_triangle(rng):
    L, v = random_L(rng, 5, 3)
    assert np.all(np.triu(L, 1) == 0)
    assert np.all(np.diagonal(L, axis1=1, axis2=2) > 0)
    np.testing.assert_allclose(np.log(np.diagonal(L, axis1=1, axis2=2)), v[:, [0, 2, 5]])


def test_sample_covariance_is_L_Lt(rng):
    L, _ = random_L(rng, 1, 3)
    mu = np.array([[1.0, -2.0, 0.5]])
    S = 200_000
    z, _ = F.reparameterize_full_forward(mu, L, rng.standard_normal((S, 1, 3)))
    cov = np.cov(z[:, 0].T)
    sigma = L[0] @ L[0].T
    np.testing.assert_allclose(z[:, 0].mean(0), mu[0], atol=5 * np.sqrt(sigma.diagonal().max() / S))
    np.testing.assert_allclose(cov, sigma, atol=0.02 * np.abs(sigma).max())


def test_kl_against_monte_carlo_and_the_diagonal_formula(rng):
    L, _ = random_L(rng, 1, 3)
    mu = rng.standard_normal((1, 3))
    kl, _ = F.kl_full_standard_normal_forward(mu, L, np.log(np.diagonal(L, axis1=1, axis2=2)))
    z, _ = F.reparameterize_full_forward(mu, L, rng.standard_normal((200_000, 1, 3)))
    diff = (stats.multivariate_normal(mu[0], L[0] @ L[0].T).logpdf(z[:, 0])
            - stats.norm.logpdf(z[:, 0]).sum(-1))
    assert abs(kl[0] - diff.mean()) < 5 * diff.std() / np.sqrt(diff.size)
    # L diagonal: the diagonal formula with λ = 2 log L_jj
    logvar = rng.normal(0, 0.5, (4, 3))
    Ld = np.einsum("nj,jk->njk", np.exp(0.5 * logvar), np.eye(3))
    np.testing.assert_allclose(F.kl_full_standard_normal_forward(mu.repeat(4, 0), Ld,
                                                                 0.5 * logvar)[0],
                               K.kl_standard_normal_forward(mu.repeat(4, 0), logvar)[0],
                               rtol=1e-13)


def test_log_q_is_the_density(rng):
    L, _ = random_L(rng, 2, 3)
    mu = rng.standard_normal((2, 3))
    eps = rng.standard_normal((4, 2, 3))
    z, _ = F.reparameterize_full_forward(mu, L, eps)
    log_q, _ = F.log_q_full_forward(np.log(np.diagonal(L, axis1=1, axis2=2)), eps)
    for n in range(2):
        expected = stats.multivariate_normal(mu[n], L[n] @ L[n].T).logpdf(z[:, n])
        np.testing.assert_allclose(log_q[:, n], expected, rtol=1e-12)


@pytest.mark.parametrize("objective", ["elbo", "iwae"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_vae_with_full_posterior_gradients(objective, likelihood, rng):
    X = make_data(likelihood, 4, 5, rng)
    m = npvae.VAE(n_latent=3, hidden_sizes=(4,), activation="tanh", likelihood=likelihood,
                  posterior="full", objective=objective, k=3, n_samples=2,
                  random_state=0).initialize(5)
    assert m.params_["enc_chol_W"].shape == (4, 6) and "enc_logvar_W" not in m.params_
    for p in m.params_.values():
        p += rng.normal(0, 0.1, p.shape)
    eps = m.draw_noise(4, random_state=1)
    _, grads = m.loss_and_grads(X, eps)
    for name, p in m.params_.items():
        num = numerical_gradient(lambda: m.loss_and_grads(X, eps)[0], p)
        assert relative_error(grads[name], num) < 1e-7, name
    assert random_direction_error(m, X, eps, rng) < 1e-7


def test_vae_full_posterior_forward_against_scipy(rng):
    X = make_data("bernoulli", 3, 6, rng)
    m = npvae.VAE(n_latent=2, hidden_sizes=(5,), posterior="full", objective="iwae", k=4,
                  random_state=2).initialize(6)
    m.params_["enc_chol_b"] += rng.normal(0, 0.5, 3)
    eps = m.draw_noise(3, random_state=3)
    mu, L = m.encode_cholesky(X)
    z = mu + np.einsum("nij,snj->sni", L, eps)
    logits = m.decode(z.reshape(-1, 2)).reshape(4, 3, 6)
    log_w = (stats.bernoulli.logpmf(X, 1 / (1 + np.exp(-logits))).sum(-1)
             + stats.norm.logpdf(z).sum(-1)
             - np.stack([stats.multivariate_normal(mu[n], L[n] @ L[n].T).logpdf(z[:, n])
                         for n in range(3)], axis=1))
    np.testing.assert_allclose(m.log_weights(X, eps), log_w, rtol=1e-10)
    _, logvar = m.encode(X)
    np.testing.assert_allclose(np.exp(logvar), np.einsum("nij,nij->ni", L, L), rtol=1e-12)


def test_full_posterior_trains_and_checkpoints(tmp_path):
    from sklearn.datasets import load_digits
    X = (load_digits().data >= 8).astype(float)
    m = npvae.VAE(n_latent=2, hidden_sizes=(32,), posterior="full", random_state=0)
    m.fit(X[:1000], epochs=5, batch_size=50, learning_rate=3e-3)
    assert m.history_[-1]["train_elbo"] > m.history_[0]["train_elbo"]
    r = npvae.load(npvae.save(m, tmp_path / "full.npz"))
    np.testing.assert_array_equal(r.encode_cholesky(X[:5])[1], m.encode_cholesky(X[:5])[1])
    with pytest.raises(ValueError, match="posterior"):
        npvae.VAE(posterior="cholesky").initialize(4)
