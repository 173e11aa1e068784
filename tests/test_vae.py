"""The VAE as a whole: gradient, objective against the math, estimator conventions, errors."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy import stats
from sklearn.base import clone

import npvae
from npvae.gradcheck import directional_derivative, relative_error
from npvae.layers.activations import ACTIVATIONS

LIKELIHOODS = ["bernoulli", "gaussian-fixed", "gaussian-scalar", "gaussian-per_output",
               "categorical"]


def make_data(likelihood, N, D, rng):
    if likelihood == "bernoulli":
        return (rng.random((N, D)) < 0.4).astype(float)
    if likelihood == "categorical":
        return rng.integers(0, 4, (N, D))
    return rng.standard_normal((N, D))


def lik_params(name, variance=""):
    """The likelihood options these tests use: a Gaussian with the given variance
    (log-variance 0.3), a categorical over 4 levels."""
    return {"gaussian": {"variance": variance or "fixed", "logvar": 0.3},
            "categorical": {"n_levels": 4}}.get(name)


def make_model(likelihood, **kw):
    name, _, variance = likelihood.partition("-")
    return npvae.VAE(likelihood=name, likelihood_params=lik_params(name, variance), **kw)


def generic_point(m, X, eps, rng, margin=1e-3):
    """Move biases until no ReLU-type pre-activation lies within ``margin`` of its
    kink (with zero biases an all-zero binary row sits exactly on it), so that
    the centred difference measures a derivative."""
    from npvae.gradcheck import kink_margin
    start = m.flat_params_.copy()
    for _ in range(50):
        for name, p in m.params_.items():
            if "_b" in name:
                p += rng.normal(0, 0.1, p.shape)
        if kink_margin(lambda: m.loss_and_grads(X, eps)) > margin:
            return
        m.flat_params_[...] = start
    pytest.skip("no point clear of ReLU kinks found")


def random_direction_error(m, X, eps, rng, h=1e-5):
    """Relative error of g·v against the centred difference of the loss along v."""
    generic_point(m, X, eps, rng)
    loss, grads = m.loss_and_grads(X, eps)
    flat_grad = np.concatenate([grads[k].ravel() for k in m.params_])
    v = rng.standard_normal(m.flat_params_.size)
    v /= np.linalg.norm(v)
    f = lambda: m.loss_and_grads(X, eps)[0]
    num = directional_derivative(f, m.flat_params_, v, h=h)
    return relative_error(flat_grad @ v, num)


@given(depth=st.integers(0, 3), width=st.integers(1, 64), Z=st.integers(1, 16),
       S=st.integers(1, 4), N=st.integers(1, 5), D=st.integers(1, 10),
       likelihood=st.sampled_from(LIKELIHOODS), activation=st.sampled_from(ACTIVATIONS),
       beta=st.floats(0.01, 4.0), seed=st.integers(0, 2**31))
def test_random_direction_gradient(depth, width, Z, S, N, D, likelihood, activation, beta, seed):
    rng = np.random.default_rng(seed)
    X = make_data(likelihood, N, D, rng)
    m = make_model(likelihood, n_latent=Z, hidden_sizes=(width,) * depth, activation=activation,
                   n_samples=S, beta=beta, random_state=seed).initialize(D)
    eps = m.draw_noise(N, random_state=seed + 1)
    assert random_direction_error(m, X, eps, rng) < 1e-7


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_every_parameter_by_finite_differences(likelihood, backend, rng):
    """Centred differences for every entry of every parameter of a small model."""
    from npvae.gradcheck import numerical_gradient
    X = make_data(likelihood, 4, 5, rng)
    m = make_model(likelihood, n_latent=2, hidden_sizes=(3, 4), decoder_hidden_sizes=(3,),
                   activation="tanh", n_samples=2, beta=0.7, random_state=1).initialize(5)
    eps = m.draw_noise(4, random_state=2)
    _, grads = m.loss_and_grads(X, eps)
    for name, p in m.params_.items():
        num = numerical_gradient(lambda: m.loss_and_grads(X, eps)[0], p)
        assert relative_error(grads[name], num) < 1e-7, name


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_loss_matches_elbo_terms_and_a_plain_computation(likelihood, rng):
    N, D, S, beta = 6, 7, 3, 1.7
    X = make_data(likelihood, N, D, rng)
    m = make_model(likelihood, n_latent=3, hidden_sizes=(5,), n_samples=S, beta=beta,
                   activation="tanh", random_state=3).initialize(D)
    eps = m.draw_noise(N, random_state=4)
    loss, _ = m.loss_and_grads(X, eps)
    terms = m.elbo_terms(X, eps)
    assert terms["reconstruction"].shape == terms["kl"].shape == (N,)
    np.testing.assert_allclose(loss, -np.mean(terms["reconstruction"] - beta * terms["kl"]),
                               rtol=1e-13)
    # plain computation from encode/decode, with scipy's densities
    mu, logvar = m.encode(X)
    sigma = np.exp(0.5 * logvar)
    z = mu + sigma * eps                                      # (S, N, Z)
    out = m.decode(z.reshape(S * N, -1)).reshape((S, N) + m.decode(mu).shape[1:])
    if likelihood == "bernoulli":
        log_px = stats.bernoulli.logpmf(X, 1 / (1 + np.exp(-out))).sum(-1)
    elif likelihood == "categorical":
        from scipy.special import log_softmax
        lp = log_softmax(out, axis=-1)
        log_px = np.take_along_axis(lp, np.broadcast_to(X[None, :, :, None], (S, N, D, 1)),
                                    -1)[..., 0].sum(-1)
    else:
        lv = m.params_.get("obs_logvar", 0.3)
        log_px = stats.norm.logpdf(X, out, np.exp(0.5 * np.asarray(lv))).sum(-1)
    kl_closed = 0.5 * (mu**2 + sigma**2 - 1 - logvar).sum(-1)
    np.testing.assert_allclose(terms["kl"], kl_closed, rtol=1e-12)
    np.testing.assert_allclose(terms["reconstruction"], log_px.mean(0), rtol=1e-12)
    np.testing.assert_allclose(loss, -np.mean(log_px.mean(0) - beta * kl_closed), rtol=1e-12)
    # the closed form is the expectation of the Monte Carlo terms log q(z) − log p(z)
    z_many = mu + sigma * rng.standard_normal((20000,) + mu.shape)              # (S', N, Z)
    kl_mc = (stats.norm.logpdf(z_many, mu, sigma) - stats.norm.logpdf(z_many)).sum(-1)
    se = kl_mc.std(axis=0) / np.sqrt(len(kl_mc))
    assert np.all(np.abs(kl_mc.mean(axis=0) - kl_closed) < 5 * se + 1e-12)


def test_params_are_live_and_grads_match_keys(rng):
    X = make_data("bernoulli", 5, 6, rng)
    m = npvae.VAE(n_latent=2, hidden_sizes=(4,), random_state=0).initialize(6)
    eps = m.draw_noise(5)
    loss0, grads = m.loss_and_grads(X, eps)
    assert set(grads) == set(m.params_)
    for k in grads:
        assert grads[k].shape == m.params_[k].shape
    m.params_["dec_out_b"] += 1.0                      # in place changes the model
    assert m.loss_and_grads(X, eps)[0] != loss0
    assert np.shares_memory(m.params_["enc_W0"], m.flat_params_)


def test_sklearn_conventions(rng):
    m = npvae.VAE(n_latent=3, hidden_sizes=(8,), beta=2.0, random_state=5)
    assert not hasattr(m, "params_")
    params = m.get_params()
    assert params["n_latent"] == 3 and params["beta"] == 2.0
    c = clone(m)
    assert c.get_params() == params and c is not m
    X = make_data("bernoulli", 40, 6, rng)
    assert m.fit(X, epochs=1, batch_size=10) is m
    assert m.n_features_in_ == 6
    assert not hasattr(clone(m), "params_")
    assert m.partial_fit(X) is m
    m.set_params(beta=0.5)
    eps = m.draw_noise(40)
    t = m.elbo_terms(X, eps)
    np.testing.assert_allclose(m.loss_and_grads(X, eps)[0],
                               -np.mean(t["reconstruction"] - 0.5 * t["kl"]))
    # same seed, same model
    a = npvae.VAE(n_latent=3, hidden_sizes=(8,), random_state=5).initialize(6)
    b = npvae.VAE(n_latent=3, hidden_sizes=(8,), random_state=5).initialize(6)
    np.testing.assert_array_equal(a.flat_params_, b.flat_params_)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_end_to_end(dtype, rng):
    X = make_data("bernoulli", 10, 6, rng)
    m = npvae.VAE(n_latent=2, hidden_sizes=(4,), dtype=dtype, random_state=0).initialize(6)
    loss, grads = m.loss_and_grads(X, m.draw_noise(10))
    assert all(g.dtype == np.dtype(dtype) for g in grads.values())
    assert all(p.dtype == np.dtype(dtype) for p in m.params_.values())
    assert m.transform(X).dtype == np.dtype(dtype)
    assert np.isfinite(loss)


def test_public_shapes(rng):
    X = make_data("bernoulli", 7, 6, rng)
    m = npvae.VAE(n_latent=3, hidden_sizes=(4,), random_state=0).fit(X, epochs=1, batch_size=4)
    mu, logvar = m.encode(X)
    assert mu.shape == logvar.shape == (7, 3)
    assert m.decode(mu).shape == (7, 6)
    assert m.transform(X).shape == (7, 3)
    assert m.score_samples(X).shape == (7,)
    assert np.isscalar(m.score(X))
    s = m.sample(4, random_state=0)
    assert s.shape == (4, 6) and np.all((s >= 0) & (s <= 1))
    np.testing.assert_array_equal(s, m.sample(4, random_state=0))
    assert m.reconstruct(X).shape == (7, 6)
    # score_samples is the β = 1 ELBO, not the β-weighted loss
    m.set_params(beta=3.0)
    np.testing.assert_allclose(m.score_samples(X, random_state=1),
                               m.score_samples(X, random_state=1))


def test_categorical_shapes(rng):
    X = rng.integers(0, 256, (5, 4))
    m = npvae.VAE(n_latent=2, hidden_sizes=(3,), likelihood="categorical",
                  random_state=0).fit(X, epochs=1)
    assert m.decode(m.transform(X)).shape == (5, 4, 256)
    r = m.reconstruct(X)
    assert r.shape == (5, 4) and r.min() >= 0 and r.max() <= 255


class TestBadInput:
    def setup_method(self):
        self.rng = np.random.default_rng(0)
        self.X = (self.rng.random((5, 6)) < 0.5).astype(float)
        self.m = npvae.VAE(n_latent=2, hidden_sizes=(3,), random_state=0).initialize(6)
        self.eps = self.m.draw_noise(5)

    @pytest.mark.parametrize("bad, match", [
        (np.zeros((5, 7)), "7 features.*expecting 6"),
        (np.zeros((0, 6)), "empty"),
        (np.zeros(6), "2-D"),
        (np.full((5, 6), np.nan), "NaN or inf"),
        (np.full((5, 6), np.inf), "NaN or inf"),
        (np.full((5, 6), 0.5), "not binary"),
        (np.array([["a"] * 6] * 5), "numeric"),
    ])
    def test_bad_X(self, bad, match):
        with pytest.raises(ValueError, match=match):
            self.m.loss_and_grads(bad, self.m.draw_noise(bad.shape[0] if bad.ndim else 1))

    @pytest.mark.parametrize("shape", [(5, 2), (1, 4, 2), (1, 5, 3), (2, 5, 2, 1)])
    def test_bad_eps_shape(self, shape):
        with pytest.raises(ValueError, match=r"eps must have shape \('S', 5, 2\)"):
            self.m.loss_and_grads(self.X, np.zeros(shape))

    def test_nan_eps(self):
        eps = self.eps.copy()
        eps[0, 0, 0] = np.nan
        with pytest.raises(ValueError, match="eps contains NaN"):
            self.m.loss_and_grads(self.X, eps)

    def test_nonbinary_allowed_when_asked(self):
        m = npvae.VAE(n_latent=2, hidden_sizes=(3,), likelihood_params={"allow_nonbinary": True},
                      random_state=0).initialize(6)
        assert np.isfinite(m.loss_and_grads(np.full((5, 6), 0.5), self.eps)[0])
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            m.loss_and_grads(np.full((5, 6), 1.5), self.eps)

    def test_categorical_out_of_range(self):
        m = npvae.VAE(n_latent=2, hidden_sizes=(3,), likelihood="categorical", likelihood_params={"n_levels": 4},
                      random_state=0).initialize(6)
        with pytest.raises(ValueError, match="integers in"):
            m.loss_and_grads(np.full((5, 6), 4), self.eps)

    @pytest.mark.parametrize("kw, match", [
        ({"dtype": "float16"}, "dtype"), ({"activation": "swish"}, "activation"),
        ({"likelihood": "poisson"}, "likelihood"), ({"n_latent": 0}, "n_latent"),
        ({"n_samples": 0}, "n_samples"), ({"beta": -1.0}, "beta"),
        ({"hidden_sizes": (0,)}, "width"), ({"likelihood": "gaussian", "likelihood_params": {"variance": "diag"}}, "variance"),
        ({"likelihood": "gaussian", "likelihood_params": {"colour": 1}}, "likelihood_params"),
    ])
    def test_bad_settings(self, kw, match):
        with pytest.raises(ValueError, match=match):
            npvae.VAE(**kw).initialize(6)

    def test_unfitted(self):
        with pytest.raises(ValueError, match="initialize"):
            npvae.VAE().transform(self.X)

    def test_decode_wrong_latent_size(self):
        with pytest.raises(ValueError, match="Z has 3 features"):
            self.m.decode(np.zeros((2, 3)))


def test_training_raises_the_elbo_on_digits(backend):
    from sklearn.datasets import load_digits
    X = (load_digits().data >= 8).astype(np.float64)          # (1797, 64) binary
    train, test = X[:1500], X[1500:]
    m = npvae.VAE(n_latent=8, hidden_sizes=(64,), random_state=0).initialize(64)
    before = m.score(test, random_state=0)
    m.fit(train, epochs=15, batch_size=50, learning_rate=3e-3)
    after = m.score(test, random_state=0)
    assert after > before + 10, (before, after)
    assert after > -30          # a trained model: about -25 nats on 64 binary pixels


def test_categorical_over_256_levels_trains_from_raw_levels():
    """The encoder reads levels scaled to [0, 1] (raw levels 0..255 gave losses ~1e245)."""
    from sklearn.datasets import load_digits
    X = (load_digits().data[:200] * 16).clip(0, 255).astype(np.int64)          # levels 0..255
    m = npvae.VAE(n_latent=4, hidden_sizes=(32,), likelihood="categorical", epochs=3,
                  batch_size=50, random_state=0).initialize(64)
    loss0, _ = m.loss_and_grads(X, m.draw_noise(200))
    assert loss0 < 2 * 64 * np.log(256)                      # near the uniform over levels
    m.fit(X)
    elbo = [h["train_elbo"] for h in m.history_]
    assert np.all(np.isfinite(elbo)) and elbo[-1] > elbo[0]
