"""The VAE with simplex latents (docs/19-simplex-latents.md): Kumaraswamy stick-breaking
(Nalisnick & Smyth 2017) and Dirichlet codes by implicit reparameterisation (Figurnov,
Mohamed & Mnih 2018). The whole-model gradient, every log-density and KL against scipy,
the KL series' truncation error, evaluation, training, checkpoints, errors, the CLI."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import integrate, stats
from scipy.special import expit

import npvae
from npvae.distributions.dirichlet_posterior import DirichletPosterior
from npvae.distributions.stick_breaking import (KumaraswamyStickBreaking,
                                                kumaraswamy_beta_kl_backward,
                                                kumaraswamy_beta_kl_forward)
from npvae.gradcheck import numerical_gradient, relative_error

from test_concrete_vae import assert_noise_outside_the_open_interval_refused, assert_train_refused
from test_vae import make_data, random_direction_error

KINDS = ["kumaraswamy", "dirichlet"]


def simplex_vae(kind, Z=4, **kw):
    return npvae.VAE(n_latent=Z, posterior=kind, **kw)


def perturbed(m, rng, scale=0.3):
    for p in m.params_.values():
        p += rng.normal(0, scale, p.shape)
    return m


def kumaraswamy_log_pdf(a, b, v):
    """The closed-form density ``a b v^{a−1} (1 − v^a)^{b−1}`` (Kumaraswamy 1980)."""
    return np.log(a * b) + (a - 1) * np.log(v) + (b - 1) * np.log1p(-v ** a)


def fractions(pi):
    """``v_k = π_k / (1 − Σ_{j<k} π_j)`` from stick weights ``(..., T)``."""
    left = 1 - np.concatenate([np.zeros(pi.shape[:-1] + (1,)), np.cumsum(pi, -1)[..., :-2]], -1)
    return pi[..., :-1] / left


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_every_parameter_by_finite_differences(kind, likelihood, rng):
    """The whole model in float64: every entry of every parameter, relative error < 1e-7."""
    X = make_data(likelihood, 4, 6, rng)
    m = simplex_vae(kind, Z=4, hidden_sizes=(5,), activation="tanh", likelihood=likelihood,
                    n_samples=2, beta=0.8, random_state=0,
                    posterior_params={"prior_alpha": 0.7}).initialize(6)
    perturbed(m, rng)
    eps = m.draw_noise(4, random_state=1)
    assert eps.shape == (2, 4, 3 if kind == "kumaraswamy" else 4)
    _, grads = m.loss_and_grads(X, eps)
    assert "enc_mu_W" not in grads
    for name, p in m.params_.items():
        num = numerical_gradient(lambda: m.loss_and_grads(X, eps)[0], p)
        assert relative_error(grads[name], num) < 1e-7, name


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(KINDS), depth=st.integers(0, 2), width=st.integers(1, 12),
       Z=st.integers(2, 6), S=st.integers(1, 3), N=st.integers(1, 4), D=st.integers(1, 8),
       alpha0=st.floats(0.3, 6.0), seed=st.integers(0, 2**31))
def test_random_direction_gradient(kind, depth, width, Z, S, N, D, alpha0, seed):
    rng = np.random.default_rng(seed)
    X = make_data("bernoulli", N, D, rng)
    m = simplex_vae(kind, Z=Z, hidden_sizes=(width,) * depth, activation="tanh", n_samples=S,
                    random_state=seed, posterior_params={"prior_alpha": alpha0}).initialize(D)
    eps = m.draw_noise(N, random_state=seed + 1)
    assert random_direction_error(m, X, eps, rng) < 1e-7


def test_kumaraswamy_densities_against_scipy(rng):
    N, T, S = 3, 5, 4
    post = KumaraswamyStickBreaking({"prior_alpha": 3.0})
    head = rng.normal(0, 1, (N, 2 * (T - 1)))
    a, b, _, _ = post.shapes(head)
    u = post.draw_noise(rng, (S, N, T - 1), np.float64)
    pi, _ = post.sample_forward(None, head, u)
    np.testing.assert_allclose(pi.sum(-1), 1, rtol=1e-13)
    v = fractions(pi)
    # the sample is the inverse CDF at 1 − u: (1 − v^a)^b = 1 − F(v) = u
    np.testing.assert_allclose(np.exp(b * np.log1p(-v ** a)), u, rtol=1e-9)
    log_q, _ = post.log_q_forward(head, u)
    np.testing.assert_allclose(log_q, kumaraswamy_log_pdf(a, b, v).sum(-1), rtol=1e-9)
    log_p, _ = post.log_prior_forward(pi)
    np.testing.assert_allclose(log_p, stats.beta(1, 3.0).logpdf(v).sum(-1), rtol=1e-10)
    # the posterior mean of the weights against the mean of many samples
    u_many = post.draw_noise(rng, (40000, N, T - 1), np.float64)
    mc = post.sample_forward(None, head, u_many)[0]
    np.testing.assert_allclose(post.mean(None, head), mc.mean(0), atol=5e-3)
    np.testing.assert_allclose(np.exp(post.marginal_logvar(head)), mc.var(0), rtol=0.05, atol=1e-4)


def kl_by_quadrature(a, b, alpha0):
    q, p = (lambda v: kumaraswamy_log_pdf(a, b, v)), stats.beta(1, alpha0).logpdf
    return integrate.quad(lambda v: np.exp(q(v)) * (q(v) - p(v)), 0, 1, limit=500,
                          epsabs=1e-12, epsrel=1e-12)[0]


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("a, b", [(1.0, 1.0), (0.5, 0.5), (2.0, 5.0), (5.0, 2.0), (0.3, 3.0),
                                  (10.0, 10.0), (1.0, 0.3)])
def test_kumaraswamy_beta_kl_series_against_quadrature(a, b):
    """The series converges to the KL (scipy's quadrature); truncated after M terms it is
    low by the tail Σ_{m>M}, the error docs/19 tabulates; with α₀ = 1 the series drops out."""
    A, B = np.array([a]), np.array([b])
    exact = kl_by_quadrature(a, b, 5.0)
    errors = [kumaraswamy_beta_kl_forward(A, B, 5.0, M)[0][0] - exact for M in (10, 100, 3000)]
    assert errors[0] <= errors[1] + 1e-12 <= errors[2] + 2e-12 <= 1e-8    # a lower bias, shrinking
    assert abs(errors[2]) < (2e-3 if b >= 1 else 2.0)
    assert kumaraswamy_beta_kl_forward(A, B, 1.0, 10)[0][0] == pytest.approx(
        kl_by_quadrature(a, b, 1.0), abs=1e-8)


def test_kumaraswamy_beta_kl_gradient(rng):
    a, b = rng.uniform(0.2, 5, 6), rng.uniform(0.2, 5, 6)
    w = rng.normal(size=6)
    f = lambda: (w * kumaraswamy_beta_kl_forward(a, b, 2.5, 10)[0]).sum()
    da, db = kumaraswamy_beta_kl_backward(w, kumaraswamy_beta_kl_forward(a, b, 2.5, 10)[1])
    assert relative_error(da, numerical_gradient(f, a)) < 1e-8
    assert relative_error(db, numerical_gradient(f, b)) < 1e-8


def test_dirichlet_densities_and_kl_against_scipy(rng):
    N, K, S = 3, 4, 5
    post = DirichletPosterior({"prior_alpha": 0.8})
    head = rng.normal(0, 1.5, (N, K))
    alpha = post.concentrations(head)[0]
    u = post.draw_noise(rng, (S, N, K), np.float64)
    z, _ = post.sample_forward(None, head, u)
    log_q, _ = post.log_q_forward(head, u)
    log_p, _ = post.log_prior_forward(z)
    for s in range(S):
        for n in range(N):
            assert log_q[s, n] == pytest.approx(stats.dirichlet(alpha[n]).logpdf(z[s, n]), rel=1e-10)
            assert log_p[s, n] == pytest.approx(stats.dirichlet(np.full(K, 0.8)).logpdf(z[s, n]),
                                                rel=1e-10)
    # the Gamma draws are scipy's inverse CDF of the noise
    y = stats.gamma(alpha).ppf(u)
    np.testing.assert_allclose(z, y / y.sum(-1, keepdims=True), rtol=1e-10)
    # the KL: for K = 2 a Beta, by quadrature; for K = 4 −H(q) − E_q[log p] with scipy's entropy
    post2 = DirichletPosterior({"prior_alpha": 0.8})
    h2 = np.array([[0.3, -1.2]])
    a2 = post2.concentrations(h2)[0][0]
    q, p = stats.beta(*a2), stats.beta(0.8, 0.8)
    exact = integrate.quad(lambda t: q.pdf(t) * (q.logpdf(t) - p.logpdf(t)), 0, 1, limit=500)[0]
    assert post2.kl_forward(None, h2)[0][0] == pytest.approx(exact, rel=1e-7)
    zs = stats.dirichlet(alpha[0]).rvs(200000, random_state=1)
    mc = -stats.dirichlet(alpha[0]).entropy() - stats.dirichlet(np.full(K, 0.8)).logpdf(zs.T).mean()
    assert post.kl_forward(None, head)[0][0] == pytest.approx(mc, abs=0.02)
    # mean and variances of the marginals, Beta(α_k, Σα − α_k)
    a0 = alpha.sum(-1, keepdims=True)
    np.testing.assert_allclose(post.mean(None, head), alpha / a0, rtol=1e-12)
    np.testing.assert_allclose(np.exp(post.marginal_logvar(head)),
                               stats.beta(alpha, a0 - alpha).var(), rtol=1e-10)


def test_dirichlet_samples_follow_the_posterior(rng):
    """At uniform noise the sample is a Dirichlet draw: its first coordinate's law is
    Beta(α_1, Σα − α_1) (Kolmogorov–Smirnov)."""
    post = DirichletPosterior()
    head = np.array([[0.5, -1.0, 2.0]])
    alpha = post.concentrations(head)[0][0]
    z = post.sample_forward(None, head, post.draw_noise(rng, (5000, 1, 3), np.float64))[0]
    assert stats.kstest(z[:, 0, 0], stats.beta(alpha[0], alpha.sum() - alpha[0]).cdf).pvalue > 1e-3


@pytest.mark.parametrize("kind", KINDS)
def test_log_weights_and_elbo(kind, rng):
    """log w = log p(x|z) + log p(z) − log q(z|x), each term by scipy (the right proposal
    density), and elbo_terms' ELBO = reconstruction − KL."""
    N, D, Z, S = 3, 5, 4, 6
    X = make_data("bernoulli", N, D, rng)
    m = perturbed(simplex_vae(kind, Z=Z, hidden_sizes=(4,), random_state=2,
                              posterior_params={"prior_alpha": 2.0}).initialize(D), rng)
    eps = m.draw_noise(N, n_samples=S, random_state=3)
    head = m._encoder_heads(X)[1]
    post = m._post
    z = post.sample_forward(None, head, eps)[0]
    log_px = stats.bernoulli.logpmf(X, expit(m.decode(z.reshape(S * N, Z))).reshape(S, N, D)).sum(-1)
    if kind == "dirichlet":
        alpha = post.concentrations(head)[0]
        log_q = np.array([[stats.dirichlet(alpha[n]).logpdf(z[s, n]) for n in range(N)]
                          for s in range(S)])
        log_p = np.array([[stats.dirichlet(np.full(Z, 2.0)).logpdf(z[s, n]) for n in range(N)]
                          for s in range(S)])
    else:
        a, b, _, _ = post.shapes(head)
        v = fractions(z)
        log_q, log_p = kumaraswamy_log_pdf(a, b, v).sum(-1), stats.beta(1, 2.0).logpdf(v).sum(-1)
    np.testing.assert_allclose(m.log_weights(X, eps), log_px + log_p - log_q, rtol=1e-8)
    m.set_params(n_samples=S)
    terms = m.elbo_terms(X, eps)
    np.testing.assert_allclose(terms["elbo"], log_px.mean(0) - post.kl_forward(None, head)[0],
                               rtol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_log_q_gradient_at_the_reparameterised_sample(kind, rng):
    """log_q_backward is the total derivative of log q(g(head, u) | head) at fixed u."""
    post = npvae.distributions.posteriors.make_posterior(kind, {"prior_alpha": 1.5})
    head = rng.normal(0, 1, (3, post.head_size(4)))
    u = post.draw_noise(rng, (2, 3, post.noise_width(4)), np.float64)
    w = rng.normal(size=(2, 3))
    f = lambda: (w * post.log_q_forward(head, u)[0]).sum()
    d = post.log_q_backward(w, post.log_q_forward(head, u)[1])
    assert relative_error(d, numerical_gradient(f, head)) < 1e-7


@pytest.mark.parametrize("kind", KINDS)
def test_fit_transform_sample_score_and_checkpoint(kind, tmp_path):
    from sklearn.datasets import load_digits
    X = (load_digits().data >= 8).astype(float)
    m = simplex_vae(kind, Z=6, hidden_sizes=(64,), random_state=0)
    m.fit(X[:1200], epochs=4, batch_size=50, learning_rate=3e-3, X_val=X[1200:1500])
    h = m.history_
    assert h[-1]["train_elbo"] > h[0]["train_elbo"] and np.isfinite(h[-1]["val_elbo"])
    z = m.transform(X[:7])
    assert z.shape == (7, 6) and np.all(z > 0)
    np.testing.assert_allclose(z.sum(-1), 1, rtol=1e-12)
    s = m.sample(5, random_state=0)
    assert s.shape == (5, 64) and np.all((s >= 0) & (s <= 1))
    score, ll = m.score(X[1500:1600]), m.log_likelihood(X[1500:1600], n_importance=50).mean()
    assert np.isfinite(score) and score <= ll + 1.0 and score == m.score(X[1500:1600])
    r = npvae.load(npvae.save(m, tmp_path / f"{kind}.npz"))
    assert r.posterior == kind and r.posterior_params == m.posterior_params
    np.testing.assert_array_equal(r.transform(X[:5]), m.transform(X[:5]))
    assert r.score(X[1500:1600]) == score
    eps = m.draw_noise(10, random_state=1)
    assert r.loss_and_grads(X[:10], eps)[0] == m.loss_and_grads(X[:10], eps)[0]


@pytest.mark.parametrize("kind, settings, message", [
    ("kumaraswamy", {"objective": "iwae", "k": 3}, "objective='elbo'"),
    ("kumaraswamy", {"n_latent": 1}, "n_latent >= 2"),
    ("dirichlet", {"n_latent": 1}, "n_latent >= 2"),
    ("kumaraswamy", {"posterior_params": {"prior_alpha": 0}}, "prior_alpha"),
    ("dirichlet", {"posterior_params": {"prior_alpha": float("nan")}}, "prior_alpha"),
    ("kumaraswamy", {"posterior_params": {"series_terms": 0}}, "series_terms"),
    ("dirichlet", {"posterior_params": {"series_terms": 5}}, "unknown posterior_params"),
    ("dirichlet", {"posterior_params": [1.0]}, "must be a dict"),
])
def test_bad_settings_are_refused(kind, settings, message):
    with pytest.raises(ValueError, match=message):
        npvae.VAE(posterior=kind, **settings).initialize(4)


@pytest.mark.parametrize("kind", KINDS)
def test_noise_must_be_uniform(kind, rng):
    m = simplex_vae(kind, Z=3, hidden_sizes=(3,), random_state=0).initialize(4)
    assert_noise_outside_the_open_interval_refused(m, make_data("bernoulli", 2, 4, rng))


@pytest.mark.parametrize("kind", [pytest.param("kumaraswamy", marks=pytest.mark.slow), "dirichlet"])
def test_cli_trains_a_simplex_vae(kind, tmp_path):
    """npvae train with --prior-alpha, its figures, npvae evaluate (the same code path for
    both kinds: one is in the default suite, the run takes about a minute on a busy machine)."""
    from npvae.cli import main
    out = tmp_path / "run"
    main(["train", "--dataset", "digits", "--posterior", kind, "--latent", "5",
          "--prior-alpha", "2.5", "--hidden", "16", "--epochs", "2", "--max-examples", "300",
          "--threads", "1", "--out", str(out)])
    m = npvae.load(out / "checkpoint.npz")
    assert m.posterior == kind and m.posterior_params == {"prior_alpha": 2.5}
    assert (out / "figures" / "samples.png").exists()
    assert not (out / "figures" / "manifold.png").exists()     # no Φ⁻¹ grid of simplex codes
    assert main(["evaluate", "--out", str(out), "--n-importance", "20", "--max-examples", "50",
                 "--threads", "1"]) == 0


@pytest.mark.parametrize("argv, message", [
    (["--prior-alpha", "3"], "for --posterior kumaraswamy or dirichlet only"),
    (["--posterior", "dirichlet", "--categories", "3"], "for --posterior concrete only"),
    (["--posterior", "kumaraswamy", "--model", "hvae", "--latent", "2,2"], "--model vae"),
    (["--posterior", "kumaraswamy", "--latent", "1"], "n_latent >= 2"),
    (["--posterior", "dirichlet", "--prior-alpha", "0"], "--prior-alpha"),
    (["--posterior", "dirichlet", "--prior-alpha", "inf"], "--prior-alpha"),
])
def test_cli_refuses_bad_simplex_flags_in_one_line(argv, message, tmp_path, capsys):
    assert_train_refused(argv, message, tmp_path, capsys)
