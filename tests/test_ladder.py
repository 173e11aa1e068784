"""The Ladder VAE (docs/16-ladder-vae.md): batch norm and the precision-weighted merge
against finite differences and their definitions, the whole model's gradient in
training mode, the KL terms, evaluation mode, the log-likelihood, checkpoints and
the benchmark's exact resume."""
import json
import types

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import integrate, stats

import npvae
from npvae.gradcheck import check_kernel, numerical_gradient, relative_error
from npvae.layers.batchnorm import BN_MOMENTUM, batchnorm_backward, batchnorm_forward
from npvae.distributions.precision import precision_merge_backward, precision_merge_forward

from test_vae import make_data, random_direction_error

SMOOTH = ["tanh", "softplus", "sigmoid", "identity"]


def small(**kw):
    base = dict(latent_sizes=(3, 2, 2), hidden_sizes=((4, 3), (3,), ()), activation="tanh",
                n_samples=2, random_state=1)
    base.update(kw)
    return npvae.LadderVAE(**base)


def jitter(m, rng, scale=0.2):
    """Every parameter off its initial value (γ = 1, zero heads would hide paths)."""
    m.flat_params_ += scale * rng.standard_normal(m.flat_params_.size)
    return m


# ------------------------------------------------------------------- kernels
@given(N=st.integers(3, 7), H=st.integers(1, 5), training=st.booleans(),
       seed=st.integers(0, 2**31))
def test_batchnorm_kernel_by_finite_differences(N, H, training, seed):
    """(Two rows normalise to ±1 whatever the input: a flat function whose tiny gradient
    finite differences cannot resolve; three or more.)"""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((N, H)) * rng.uniform(0.5, 3, H) + rng.standard_normal(H)
    gamma, beta = rng.standard_normal(H), rng.standard_normal(H)
    stats_ = None if training else (rng.standard_normal(H), rng.uniform(0.5, 2, H))
    fwd = lambda a, g, b: batchnorm_forward(a, g, b, stats_)
    errors = check_kernel(fwd, batchnorm_backward, [a, gamma, beta], {0: 0, 1: 1, 2: 2}, rng)
    assert max(errors.values()) < 1e-7, errors


def test_batchnorm_normalises_each_column(rng):
    a = rng.standard_normal((50, 3)) * [1, 10, 0.1] + [5, -2, 0]
    y, cache = batchnorm_forward(a, np.ones(3), np.zeros(3))
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=0), a.var(axis=0) / (a.var(axis=0) + 1e-5))
    m, v = cache[-1]
    np.testing.assert_allclose(m, a.mean(axis=0))
    np.testing.assert_allclose(v, a.var(axis=0))            # biased, as normalised


@given(S=st.integers(1, 3), N=st.integers(1, 4), Z=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_precision_merge_by_finite_differences_and_definition(S, N, Z, seed):
    rng = np.random.default_rng(seed)
    mu_hat, lv_hat = rng.standard_normal((N, Z)), 2 * rng.standard_normal((N, Z))
    mu_p, lv_p = rng.standard_normal((S, N, Z)), 2 * rng.standard_normal((S, N, Z))
    mu_q, lv_q, _ = precision_merge_forward(mu_hat, lv_hat, mu_p, lv_p)
    prec_hat, prec_p = np.exp(-lv_hat), np.exp(-lv_p)                 # the paper's eq.
    var_q = 1 / (prec_hat + prec_p)
    np.testing.assert_allclose(np.exp(lv_q), var_q, rtol=1e-12)
    np.testing.assert_allclose(mu_q, (mu_hat * prec_hat + mu_p * prec_p) * var_q, rtol=1e-10,
                               atol=1e-12)

    def fwd(*args):
        mu, lv, c = precision_merge_forward(*args)
        return np.stack([mu, lv]), c

    def bwd(dout, c):
        return precision_merge_backward(dout[0], dout[1], c)

    errors = check_kernel(fwd, bwd, [mu_hat, lv_hat, mu_p, lv_p], {0: 0, 1: 1, 2: 2, 3: 3}, rng)
    assert max(errors.values()) < 1e-7, errors


# ------------------------------------------------------------ whole model
@pytest.mark.parametrize("activation", ["tanh", "leaky_relu"])
def test_every_parameter_by_finite_differences(activation, rng):
    """Every entry of every parameter, batch norm in training mode (float64)."""
    X = make_data("bernoulli", 6, 5, rng)
    m = jitter(small(activation=activation, beta=0.7).initialize(5), rng)
    eps = m.draw_noise(6, random_state=2)
    _, grads = m.loss_and_grads(X, eps)
    for name, p in m.params_.items():
        num = numerical_gradient(lambda: m.loss_and_grads(X, eps)[0], p, h=1e-5)
        if name.endswith(("_mean", "_var")):                 # running statistics: unused
            assert not grads[name].any() and not num.any(), name
        else:
            assert relative_error(grads[name], num) < 1e-7, name


@settings(max_examples=25, deadline=None)
@given(bias=st.floats(-1e4, 1e4), seed=st.integers(0, 2**31))
def test_extreme_variance_heads_stay_finite_in_float32(bias, seed):
    """The paper run diverged at epoch 73 (float32): a top-down head's log-variance
    reached −88.8, ``e^{−λ}`` in the KL overflowed.  With ``σ² = softplus(a) + 1e-4``
    any head output gives a finite loss and gradient, and every head's ``λ ≥ log 1e-4``,
    so a merged ``q`` has ``λ ≥ log(1e-4/2)`` (docs/16-ladder-vae.md#the-variance-heads)."""
    rng = np.random.default_rng(seed)
    X = make_data("bernoulli", 6, 5, rng)
    m = jitter(small(dtype="float32").initialize(5), rng)
    for name, p in m.params_.items():                       # every variance head: a = bias
        if name.startswith(("up", "prior")) and "var_" in name and "_bn" not in name:
            p[...] = bias if name.endswith("_b") else 0
    loss, grads = m.loss_and_grads(X, m.draw_noise(6, random_state=seed))
    assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads.values())
    assert all(np.all(lv >= np.float32(np.log(0.5e-4)) - 1e-3) for lv in m.encode(X)[1])


@st.composite
def ladder_settings(draw):
    L = draw(st.integers(1, 4))
    hidden = tuple(tuple(draw(st.lists(st.integers(1, 8), max_size=2))) for _ in range(L))
    return dict(latent_sizes=tuple(draw(st.integers(1, 5)) for _ in range(L)),
                hidden_sizes=hidden, n_samples=draw(st.integers(1, 3)),
                activation=draw(st.sampled_from(SMOOTH)), beta=draw(st.floats(0.01, 4.0)))


@settings(max_examples=40)
@given(kw=ladder_settings(), N=st.integers(2, 6), D=st.integers(1, 8),
       seed=st.integers(0, 2**31))
def test_random_direction_gradient(kw, N, D, seed):
    rng = np.random.default_rng(seed)
    X = make_data("bernoulli", N, D, rng)
    m = jitter(npvae.LadderVAE(random_state=seed, **kw).initialize(D), rng)
    eps = m.draw_noise(N, random_state=seed + 1)
    assert random_direction_error(m, X, eps, rng) < 1e-7


def test_loss_is_deterministic_at_fixed_noise(rng):
    X = make_data("bernoulli", 8, 5, rng)
    m = jitter(small().initialize(5), rng)
    eps = m.draw_noise(8, random_state=3)
    before = m.flat_params_.copy()
    a, ga = m.loss_and_grads(X, eps)
    b, gb = m.loss_and_grads(X, eps)
    assert a == b and all(np.array_equal(ga[k], gb[k]) for k in ga)
    np.testing.assert_array_equal(m.flat_params_, before)   # running stats move in training only


def test_kl_per_level_is_the_gaussian_kl(rng):
    """Each level's KL term is KL(q(z_l|·) ‖ p(z_l|z_{l+1})) between the merged posterior
    and the top-down prior, checked by quadrature, and KL(q(z_L|x) ‖ N(0, I)) at the top."""
    X = make_data("bernoulli", 3, 5, rng)
    m = jitter(small(n_samples=1).initialize(5), rng)
    eps = m.draw_noise(3, random_state=4)
    terms = m._elbo_objective(X, eps, 1.0, False)[2]                   # evaluation mode
    mus, lvs, _, (_, priors, _, _, _) = m._inference_forward(X, eps)

    def kl_quad(mq, sq, mp, sp):
        q, p = stats.norm(mq, sq), stats.norm(mp, sp)
        return integrate.quad(lambda z: q.pdf(z) * (q.logpdf(z) - p.logpdf(z)),
                              mq - 12 * sq, mq + 12 * sq)[0]

    for l in range(2):
        mq, sq = mus[l][0], np.exp(0.5 * lvs[l][0])                     # (N, Z_l), S = 1
        mp, sp = priors[l][0][0], np.exp(0.5 * priors[l][1][0])
        expected = [sum(kl_quad(*v) for v in zip(mq[n], sq[n], mp[n], sp[n])) for n in range(3)]
        np.testing.assert_allclose(terms[f"kl_{l + 1}"], expected, rtol=1e-6)
    top = [sum(kl_quad(a, b, 0.0, 1.0) for a, b in zip(mus[2][n], np.exp(0.5 * lvs[2][n])))
           for n in range(3)]
    np.testing.assert_allclose(terms["kl_3"], top, rtol=1e-6)


def test_top_level_is_the_bottom_up_gaussian_and_below_merges(rng):
    X = make_data("bernoulli", 4, 5, rng)
    m = jitter(small().initialize(5), rng)
    eps = m.draw_noise(4, random_state=5)
    mus, lvs, zs, (up, priors, _, _, _) = m._inference_forward(X, eps)
    np.testing.assert_array_equal(mus[2], up[2][0])
    var = 1 / (np.exp(-up[0][1]) + np.exp(-priors[0][1]))
    np.testing.assert_allclose(np.exp(lvs[0]), var)
    np.testing.assert_allclose(zs[0], mus[0] + np.sqrt(var) * eps[0])


# --------------------------------------------------------- evaluation mode
@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    protos = rng.random((5, 20)) < 0.5
    X = (protos[rng.integers(0, 5, 300)] ^ (rng.random((300, 20)) < 0.05)).astype(float)
    m = npvae.LadderVAE(latent_sizes=(4, 2), hidden_sizes=((16,), (8,)), random_state=0,
                        batch_size=50)
    m.fit(X, epochs=8, kl_warmup_epochs=3)
    return m, X


def test_running_statistics_follow_one_step(rng):
    """After one step from the start, running mean = μ·m_batch and running variance =
    (1 − μ)·1 + μ·v_batch·n/(n − 1)."""
    from npvae.training import train_step
    X = make_data("bernoulli", 10, 5, rng)
    m = small().initialize(5)
    eps = m.draw_noise(10, random_state=0)
    m.training_objective(X, eps, 1.0, True)
    batch = {name: (mean.copy(), var.copy(), n) for name, mean, var, n in m._bn_batch_ws}
    train_step(m, X, eps)
    assert set(batch) == {n[:-4] for n in m.params_ if n.endswith("_mean")}
    for name, (mean, var, n) in batch.items():
        np.testing.assert_allclose(m.params_[name + "mean"], BN_MOMENTUM * mean)
        np.testing.assert_allclose(m.params_[name + "var"],
                                   1 - BN_MOMENTUM + BN_MOMENTUM * var * n / (n - 1))


def test_evaluation_uses_running_statistics(trained):
    """Each example's score, encoding and log-likelihood depend on that example alone,
    and differ from the batch-statistics (training) objective's."""
    m, X = trained
    assert m.history_[-1]["beta"] == 1.0 and m.history_[0]["beta"] < 1.0      # warm-up
    np.testing.assert_allclose(m.transform(X[:3]), m.transform(X)[:3], rtol=1e-12)
    np.testing.assert_allclose(m.score_samples(X[:3]), m.score_samples(X)[:3], rtol=1e-12)
    eps = m._evaluation_noise(X[:3], 1)
    training_loss = m.loss_and_grads(X[:3], eps)[0]                    # batch statistics
    terms = m.elbo_terms(X[:3], eps)                                   # running statistics
    np.testing.assert_array_equal(terms["elbo"], m.score_samples(X[:3]))
    assert not np.isclose(training_loss, -terms["elbo"].mean())
    assert np.abs(m.params_["up1_bn0_mean"]).max() > 0.01


def test_log_likelihood_is_above_the_elbo(trained):
    m, X = trained
    ll = m.log_likelihood(X[:50], n_importance=100, random_state=0)
    elbo = m.score_samples(X[:50])
    assert ll.mean() > elbo.mean()
    assert ll.mean() < 0 and np.all(np.isfinite(ll))
    assert m.score(X) > -20 * np.log(2)                      # better than coin flips


def test_sample_and_active_units(trained):
    m, X = trained
    s = m.sample(5, random_state=0)
    assert s.shape == (5, 20) and np.all((s >= 0) & (s <= 1))
    assert len(m.active_units(X)) == 2


def test_checkpoint_round_trip(trained, tmp_path):
    m, X = trained
    json.dumps(m.get_params())
    back = npvae.load(npvae.save(m, tmp_path / "ladder.npz"))
    assert type(back) is npvae.LadderVAE and back.get_params() == m.get_params()
    np.testing.assert_array_equal(back.flat_params_, m.flat_params_)   # running stats too
    np.testing.assert_array_equal(back.transform(X), m.transform(X))
    np.testing.assert_array_equal(back.score_samples(X), m.score_samples(X))


# ------------------------------------------------------------------- errors
@pytest.mark.parametrize("kw, match", [
    (dict(latent_sizes=()), "latent_sizes is empty"),
    (dict(hidden_sizes=((3,), (2,))), "per-level tuples"),
    (dict(activation="nope"), "unknown activation"),
    (dict(n_samples=0), "n_samples"),
])
def test_bad_settings(kw, match):
    with pytest.raises(ValueError, match=match):
        small(**kw).initialize(5)


@pytest.mark.parametrize("value", [-1.0, np.nan])
def test_damaged_running_variance_is_one_line(value, rng):
    m = small().initialize(5)
    m.params_["up1_bn1_var"][0] = value
    X = make_data("bernoulli", 4, 5, rng)
    for call in (lambda: m.score(X), lambda: m.transform(X), lambda: m.sample(2)):
        with pytest.raises(ValueError, match=r"params_\['up1_bn1_var'\], a running variance"):
            call()


def test_iwae_is_not_a_setting():
    with pytest.raises(TypeError):
        npvae.LadderVAE(objective="iwae")


# ---------------------------------------------------------------- benchmark
def test_benchmark_resumes_exactly(tmp_path, monkeypatch):
    """benchmarks.ladder_vae: 3 epochs in one go equal 1 epoch, then the same command
    with --epochs 3 (resumed from the checkpoint): the same parameters bit for bit."""
    from benchmarks import ladder_vae
    rng = np.random.default_rng(0)
    pixels = (rng.random((120, 12)) * 255).astype(np.uint8)
    fake = types.SimpleNamespace(x_train=pixels, n_features=12,
                                 as_float=lambda split, dtype: (pixels[:20] > 127).astype(dtype))
    monkeypatch.setattr(ladder_vae, "load_dataset", lambda *a, **k: fake)
    common = ["--warmup-epochs", "2", "--n-test", "20", "--k-eval", "3", "--threads", "1",
              "--latent-sizes", "3,2", "--hidden-sizes", "8,4", "--batch-size", "50"]
    whole = ladder_vae.main(["--epochs", "3", "--run-dir", str(tmp_path / "a")] + common)
    ladder_vae.main(["--epochs", "1", "--run-dir", str(tmp_path / "b")] + common)
    resumed = ladder_vae.main(["--epochs", "3", "--run-dir", str(tmp_path / "b")] + common)
    a = npvae.load(tmp_path / "a" / "ladder" / "checkpoint.npz")
    b = npvae.load(tmp_path / "b" / "ladder" / "checkpoint.npz")
    assert a.n_iter_ == b.n_iter_ == 3
    np.testing.assert_array_equal(a.flat_params_, b.flat_params_)
    assert whole["test_nll"] == resumed["test_nll"]
