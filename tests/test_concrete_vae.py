"""The VAE with categorical latents relaxed by the Concrete / Gumbel-softmax
(docs/15-discrete-latents.md): the whole-model gradient, every log-density and KL
against scipy.stats, the evaluation with hard samples, training, checkpoints, errors."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy import stats
from scipy.special import expit, softmax

import npvae
from npvae.distributions.concrete_posterior import ConcretePosterior
from npvae.gradcheck import numerical_gradient, relative_error

from test_vae import make_data, random_direction_error


def concrete(M=2, K=3, tau=0.7, **kw):
    params = {"n_categories": K, "temperature": tau}
    params.update(kw.pop("posterior_params", {}))
    return npvae.VAE(n_latent=M, posterior="concrete", posterior_params=params, **kw)


def perturbed(m, rng, scale=0.3):
    for p in m.params_.values():
        p += rng.normal(0, scale, p.shape)
    return m


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("anneal", [0.0, 0.4])
def test_every_parameter_by_finite_differences(likelihood, anneal, rng):
    """The whole model in float64: every entry of every parameter, relative error < 1e-7,
    also at an annealed temperature (epoch 3)."""
    X = make_data(likelihood, 4, 6, rng)
    m = concrete(M=2, K=3, hidden_sizes=(5,), activation="tanh", likelihood=likelihood,
                 n_samples=2, beta=0.8, random_state=0,
                 posterior_params={"anneal_rate": anneal}).initialize(6)
    m.n_iter_ = 3
    perturbed(m, rng)
    eps = m.draw_noise(4, random_state=1)
    assert eps.shape == (2, 4, 6) and eps.min() > 0 and eps.max() < 1
    _, grads = m.loss_and_grads(X, eps)
    assert "enc_mu_W" not in grads and grads["enc_logits_W"].shape == (5, 6)
    for name, p in m.params_.items():
        num = numerical_gradient(lambda: m.loss_and_grads(X, eps)[0], p)
        assert relative_error(grads[name], num) < 1e-7, name


@given(depth=st.integers(0, 2), width=st.integers(1, 16), M=st.integers(1, 4),
       K=st.integers(2, 6), S=st.integers(1, 3), N=st.integers(1, 4), D=st.integers(1, 8),
       tau=st.floats(0.3, 3.0), seed=st.integers(0, 2**31))
def test_random_direction_gradient(depth, width, M, K, S, N, D, tau, seed):
    rng = np.random.default_rng(seed)
    X = make_data("bernoulli", N, D, rng)
    m = concrete(M=M, K=K, tau=tau, hidden_sizes=(width,) * depth, activation="tanh",
                 n_samples=S, random_state=seed).initialize(D)
    eps = m.draw_noise(N, random_state=seed + 1)
    assert random_direction_error(m, X, eps, rng) < 1e-7


def test_densities_and_kl_against_scipy(rng):
    N, M, K, S = 3, 4, 5, 6
    post = ConcretePosterior({"n_categories": K})
    logits = rng.normal(0, 2, (N, M * K))
    u = post.draw_noise(rng, (S, N, M * K), np.float64)
    pi = softmax(logits.reshape(N, M, K), axis=-1)
    # the KL to the uniform prior, per example
    kl, _ = post.kl_forward(None, logits)
    expected = [sum(stats.entropy(pi[n, m], np.full(K, 1 / K)) for m in range(M)) for n in range(N)]
    np.testing.assert_allclose(kl, expected, rtol=1e-12)
    # the Gumbel noise path: g = −log(−log u) is the Gumbel inverse CDF
    hard = post.at(0, training=False)
    c, _ = hard.sample_forward(None, logits, u)
    g = stats.gumbel_r.ppf(u).reshape(S, N, M, K)
    np.testing.assert_array_equal(c.reshape(S, N, M, K).argmax(-1),
                                  (logits.reshape(N, M, K) + g).argmax(-1))
    # log q(c|x) and log p(c) of the one-hot samples: categorical (multinomial with n = 1)
    log_q, _ = hard.log_q_forward(logits, u)
    onehot = c.reshape(S, N, M, K)
    expected = stats.multinomial.logpmf(onehot, 1, pi).sum(-1)
    np.testing.assert_allclose(log_q, expected, rtol=1e-12)
    log_p, _ = hard.log_prior_forward(c)
    np.testing.assert_allclose(log_p, stats.multinomial.logpmf(onehot, 1, np.full(K, 1 / K)).sum(-1),
                               rtol=1e-12)


def test_gumbel_max_samples_follow_the_posterior(rng):
    """The evaluation samples are exact categorical draws: frequencies against π."""
    post = ConcretePosterior({"n_categories": 4}).at(0, training=False)
    logits = np.array([[0.0, 1.0, -1.0, 2.0]])
    u = post.draw_noise(rng, (20000, 1, 4), np.float64)
    counts = post.sample_forward(None, logits, u)[0].sum(axis=(0, 1))
    assert stats.chisquare(counts, 20000 * softmax(logits[0])).pvalue > 1e-3


def test_log_weights_and_elbo_are_the_discrete_models(rng):
    """Evaluation: one-hot codes by the Gumbel-max trick, log w = log p(x|c) + log p(c) −
    log q(c|x), each term by scipy; the ELBO of elbo_terms is the discrete model's."""
    N, D, M, K, S = 3, 5, 2, 3, 4
    X = make_data("bernoulli", N, D, rng)
    m = perturbed(concrete(M=M, K=K, hidden_sizes=(4,), random_state=2).initialize(D), rng)
    eps = m.draw_noise(N, n_samples=S, random_state=3)
    pi = m.transform(X).reshape(N, M, K)
    logits = m._encoder_heads(X)[1].reshape(N, M, K)
    onehot = np.eye(K)[(logits + stats.gumbel_r.ppf(eps).reshape(S, N, M, K)).argmax(-1)]
    log_px = stats.bernoulli.logpmf(X, expit(m.decode(onehot.reshape(S * N, M * K)))
                                    .reshape(S, N, D)).sum(-1)
    log_w = (log_px + stats.multinomial.logpmf(onehot, 1, np.full(K, 1 / K)).sum(-1)
             - stats.multinomial.logpmf(onehot, 1, pi).sum(-1))
    np.testing.assert_allclose(m.log_weights(X, eps), log_w, rtol=1e-10)
    m.set_params(n_samples=S)
    terms = m.elbo_terms(X, eps)
    kl = [sum(stats.entropy(pi[n, j], np.full(K, 1 / K)) for j in range(M)) for n in range(N)]
    np.testing.assert_allclose(terms["reconstruction"], log_px.mean(0), rtol=1e-10)
    np.testing.assert_allclose(terms["elbo"], log_px.mean(0) - kl, rtol=1e-10)


def test_straight_through_is_hard_forward_relaxed_backward(rng):
    X = make_data("bernoulli", 4, 6, rng)
    st_model = perturbed(concrete(hidden_sizes=(5,), random_state=0, posterior_params={
        "straight_through": True}).initialize(6), rng)
    relaxed = concrete(hidden_sizes=(5,), random_state=0).initialize(6)
    relaxed.flat_params_[...] = st_model.flat_params_
    eps = st_model.draw_noise(4, random_state=1)
    loss, grads = st_model.loss_and_grads(X, eps)
    # forward: the hard one-hot code, so the loss is the discrete model's −ELBO
    assert loss == pytest.approx(-st_model.elbo_terms(X, eps)["elbo"].mean(), rel=1e-12)
    # backward: the decoder's gradient is taken at the one-hot code, not the relaxed one
    _, relaxed_grads = relaxed.loss_and_grads(X, eps)
    assert not np.allclose(grads["dec_out_W"], relaxed_grads["dec_out_W"])
    assert np.all(np.isfinite(grads["enc_logits_W"])) and np.abs(grads["enc_logits_W"]).sum() > 0


def test_temperature_schedule():
    post = ConcretePosterior({"temperature": 2.0, "anneal_rate": 0.5, "min_temperature": 0.5})
    assert post.temperature_at(0) == 2.0
    assert post.temperature_at(1) == pytest.approx(2.0 * np.exp(-0.5))
    assert post.temperature_at(100) == 0.5
    assert ConcretePosterior({"temperature": 0.2}).temperature_at(50) == 0.2


def test_fit_transform_sample_score_and_checkpoint(tmp_path):
    from sklearn.datasets import load_digits
    X = (load_digits().data >= 8).astype(float)
    m = concrete(M=4, K=10, tau=1.0, hidden_sizes=(64,), random_state=0,
                 posterior_params={"anneal_rate": 0.2})
    m.fit(X[:1200], epochs=4, batch_size=50, learning_rate=3e-3, X_val=X[1200:1500])
    h = m.history_
    assert h[-1]["train_elbo"] > h[0]["train_elbo"] and np.isfinite(h[-1]["val_elbo"])
    pi = m.transform(X[:7])
    assert pi.shape == (7, 40)
    np.testing.assert_allclose(pi.reshape(7, 4, 10).sum(-1), 1, rtol=1e-12)
    s = m.sample(5, random_state=0)
    assert s.shape == (5, 64) and np.all((s >= 0) & (s <= 1))
    score, ll = m.score(X[1500:1600]), m.log_likelihood(X[1500:1600], n_importance=50).mean()
    assert np.isfinite(score) and score <= ll + 1.0 and score == m.score(X[1500:1600])
    r = npvae.load(npvae.save(m, tmp_path / "concrete.npz"))
    assert r.posterior_params == m.posterior_params and r.n_iter_ == 4
    np.testing.assert_array_equal(r.transform(X[:5]), m.transform(X[:5]))
    assert r.score(X[1500:1600]) == score
    eps = m.draw_noise(10, random_state=1)
    assert r.loss_and_grads(X[:10], eps)[0] == m.loss_and_grads(X[:10], eps)[0]


@pytest.mark.parametrize("settings, message", [
    ({"objective": "iwae", "k": 3}, "objective='elbo'"),
    ({"posterior_params": {"n_categories": 1}}, "n_categories"),
    ({"posterior_params": {"temperature": 0}}, "temperature"),
    ({"posterior_params": {"temperatur": 1}}, "unknown posterior_params"),
    ({"posterior_params": {"straight_through": 1}}, "straight_through"),
    ({"posterior_params": "K=3"}, "must be a dict"),
])
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        npvae.VAE(posterior="concrete", **settings).initialize(4)


def test_gaussians_take_no_posterior_params_and_noise_must_be_uniform(rng):
    with pytest.raises(ValueError, match="takes no posterior_params"):
        npvae.VAE(posterior_params={"n_categories": 3}).initialize(4)
    m = concrete(hidden_sizes=(3,), random_state=0).initialize(4)
    X = make_data("bernoulli", 2, 4, rng)
    assert_noise_outside_the_open_interval_refused(m, X)
    with pytest.raises(ValueError, match="no Gaussian covariance"):
        m.encode_cholesky(X)


def assert_noise_outside_the_open_interval_refused(m, X):
    """A model with uniform noise refuses 0, 1 and negative entries of ``eps``."""
    for bad in (0.0, 1.0, -0.5):
        eps = m.draw_noise(X.shape[0], random_state=0)
        eps[0, 0, 0] = bad
        with pytest.raises(ValueError, match=r"strictly inside \(0, 1\)"):
            m.loss_and_grads(X, eps)


def test_cli_trains_a_concrete_vae(tmp_path, capsys):
    from npvae.cli import main
    out = tmp_path / "run"
    main(["train", "--dataset", "digits", "--posterior", "concrete", "--latent", "3",
          "--categories", "4", "--temperature", "1.5", "--anneal-rate", "0.3", "--hidden", "16",
          "--epochs", "2", "--max-examples", "300", "--threads", "1", "--out", str(out)])
    m = npvae.load(out / "checkpoint.npz")
    assert m.posterior == "concrete" and m.posterior_params == {
        "n_categories": 4, "temperature": 1.5, "anneal_rate": 0.3}
    assert (out / "figures" / "samples.png").exists()
    assert not (out / "figures" / "manifold.png").exists()     # no Φ⁻¹ grid of one-hot codes


@pytest.mark.parametrize("argv, message", [
    (["--categories", "3"], "for --posterior concrete only"),
    (["--posterior", "concrete", "--model", "hvae", "--latent", "2,2"], "--model vae"),
    (["--posterior", "concrete", "--categories", "1"], "n_categories"),
    (["--posterior", "concrete", "--temperature", "0"], "temperature"),
])
def test_cli_refuses_bad_concrete_flags_in_one_line(argv, message, tmp_path, capsys):
    assert_train_refused(argv, message, tmp_path, capsys)


def assert_train_refused(argv, message, tmp_path, capsys):
    """``npvae train`` on the digits with ``argv`` exits 2 with ``message`` in its one last
    line of stderr and no traceback."""
    from npvae.cli import main
    try:
        rc = main(["train", "--dataset", "digits", "--epochs", "1", "--out",
                   str(tmp_path / "r")] + argv)
    except SystemExit as exit_:                   # argparse's own errors
        rc = exit_.code
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err.strip().splitlines()[-1] and "Traceback" not in err
