"""The conditional VAE (MATH §8): gradients, the forward against a plain computation,
the one-class identity with the VAE, conditioning on digits, labels, checkpoints."""
import json

import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy import stats
from scipy.special import expit, log_softmax
from sklearn.base import clone

import npvae
from npvae.training import train
from npvae.gradcheck import (directional_derivative, kink_margin, numerical_gradient,
                             relative_error)
from npvae.layers.activations import ACTIVATIONS

from test_vae import LIKELIHOODS, lik_params, make_data

CLASSES = [2, 5, 7]          # not 0..C-1, so that label -> column mapping is exercised


def make_cvae(likelihood, **kw):
    name, _, variance = likelihood.partition("-")
    kw.setdefault("classes", CLASSES)
    return npvae.ConditionalVAE(likelihood=name, likelihood_params=lik_params(name, variance),
                                **kw)


def labels(N, rng, classes=CLASSES):
    return rng.choice(classes, N)


def generic_point(m, X, y, eps, rng, margin=1e-3):
    """Move biases until no ReLU-type pre-activation is within ``margin`` of its kink
    (as ``test_vae.generic_point``), so that centred differences measure a derivative."""
    start = m.flat_params_.copy()
    for _ in range(50):
        for name, p in m.params_.items():
            if "_b" in name:
                p += rng.normal(0, 0.1, p.shape)
        if kink_margin(lambda: m.loss_and_grads(X, y, eps)) > margin:
            return
        m.flat_params_[...] = start
    pytest.skip("no point clear of ReLU kinks found")


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize("objective", ["elbo", "iwae"])
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_every_parameter_by_finite_differences(likelihood, objective, backend, rng):
    """Centred differences for every entry of every parameter, ReLU network at a
    point clear of its kinks, float64."""
    N, D = 4, 5
    X = make_data(likelihood, N, D, rng)
    y = labels(N, rng)
    kw = dict(n_samples=2, beta=0.7) if objective == "elbo" else dict(objective="iwae", k=3)
    m = make_cvae(likelihood, n_latent=2, hidden_sizes=(3, 4), decoder_hidden_sizes=(3,),
                  activation="relu", random_state=1, **kw).initialize(D)
    eps = m.draw_noise(N, random_state=2)
    generic_point(m, X, y, eps, rng)
    _, grads = m.loss_and_grads(X, y, eps)
    assert set(grads) == set(m.params_)
    for name, p in m.params_.items():
        num = numerical_gradient(lambda: m.loss_and_grads(X, y, eps)[0], p)
        assert relative_error(grads[name], num) < 1e-7, name


@given(depth=st.integers(0, 2), dec_depth=st.integers(0, 2), width=st.integers(1, 16),
       Z=st.integers(1, 6), S=st.integers(1, 3), N=st.integers(1, 5), D=st.integers(1, 8),
       C=st.integers(1, 4), likelihood=st.sampled_from(LIKELIHOODS),
       activation=st.sampled_from(ACTIVATIONS), objective=st.sampled_from(["elbo", "iwae"]),
       posterior=st.sampled_from(["diagonal", "full"]), seed=st.integers(0, 2**31))
def test_random_direction_gradient(depth, dec_depth, width, Z, S, N, D, C, likelihood,
                                   activation, objective, posterior, seed):
    rng = np.random.default_rng(seed)
    X = make_data(likelihood, N, D, rng)
    classes = list(range(10, 10 + C))
    y = labels(N, rng, classes)
    kw = dict(n_samples=S, beta=0.5 + S / 2) if objective == "elbo" else dict(objective="iwae", k=S)
    m = make_cvae(likelihood, n_latent=Z, hidden_sizes=(width,) * depth,
                  decoder_hidden_sizes=(width + 1,) * dec_depth, activation=activation,
                  posterior=posterior, classes=classes, random_state=seed, **kw).initialize(D)
    eps = m.draw_noise(N, random_state=seed + 1)
    generic_point(m, X, y, eps, rng)
    _, grads = m.loss_and_grads(X, y, eps)
    flat_grad = np.concatenate([grads[k].ravel() for k in m.params_])
    v = rng.standard_normal(m.flat_params_.size)
    v /= np.linalg.norm(v)
    num = directional_derivative(lambda: m.loss_and_grads(X, y, eps)[0], m.flat_params_, v,
                                 h=1e-5)
    assert relative_error(flat_grad @ v, num) < 1e-7


# -------------------------------------------------------------------- forward
def _mlp(x, layers):
    """A plain tanh MLP, identity on the last layer."""
    for i, (W, b) in enumerate(layers):
        x = x @ W + b
        if i < len(layers) - 1:
            x = np.tanh(x)
    return x


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_forward_against_a_plain_computation(likelihood, rng):
    """encode/decode/elbo_terms/log_weights against the networks run by hand on
    ``x ⊕ onehot(c)`` and ``z ⊕ onehot(c)``, with scipy's densities (MATH §8)."""
    N, D, S, Z, beta = 6, 7, 3, 3, 1.7
    X = make_data(likelihood, N, D, rng)
    y = labels(N, rng)
    m = make_cvae(likelihood, n_latent=Z, hidden_sizes=(5,), decoder_hidden_sizes=(4,),
                  n_samples=S, beta=beta, activation="tanh", random_state=3).initialize(D)
    P = m.params_
    onehot = (y[:, None] == np.array(CLASSES)[None, :]).astype(float)      # (N, C) by hand
    assert onehot.sum(1).tolist() == [1] * N
    x_in = X / 3.0 if likelihood == "categorical" else X     # levels 0..V−1 scaled to [0, 1]
    xc = np.concatenate([x_in, onehot], axis=1)                            # (N, D + C)
    h = np.tanh(xc @ P["enc_W0"] + P["enc_b0"])
    mu, logvar = h @ P["enc_mu_W"] + P["enc_mu_b"], h @ P["enc_logvar_W"] + P["enc_logvar_b"]
    mu_m, logvar_m = m.encode(X, y)
    np.testing.assert_allclose(mu_m, mu, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(logvar_m, logvar, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(m.transform(X, y), mu, rtol=1e-12, atol=1e-14)

    eps = m.draw_noise(N, random_state=4)
    sigma = np.exp(0.5 * logvar)
    z = mu + sigma * eps                                                   # (S, N, Z)
    zc = np.concatenate([z, np.broadcast_to(onehot, (S, N, len(CLASSES)))], axis=-1)
    dec = [(P["dec_W0"], P["dec_b0"]), (P["dec_out_W"], P["dec_out_b"])]
    out = _mlp(zc.reshape(S * N, -1), dec)
    out_m = m.decode(z.reshape(S * N, Z), np.tile(y, S))
    np.testing.assert_allclose(out_m.reshape(S * N, -1), out, rtol=1e-11, atol=1e-13)
    out = out.reshape((S, N) + out_m.shape[1:])
    if likelihood == "bernoulli":
        log_px = stats.bernoulli.logpmf(X, expit(out)).sum(-1)
    elif likelihood == "categorical":
        out = out.reshape(S, N, D, 4)
        log_px = np.take_along_axis(log_softmax(out, axis=-1),
                                    np.broadcast_to(X[None, :, :, None], (S, N, D, 1)),
                                    -1)[..., 0].sum(-1)
    else:
        lv = P.get("obs_logvar", 0.3)
        log_px = stats.norm.logpdf(X, out, np.exp(0.5 * np.asarray(lv))).sum(-1)
    kl = 0.5 * (mu**2 + sigma**2 - 1 - logvar).sum(-1)
    terms = m.elbo_terms(X, y, eps)
    np.testing.assert_allclose(terms["reconstruction"], log_px.mean(0), rtol=1e-11)
    np.testing.assert_allclose(terms["kl"], kl, rtol=1e-11)
    loss, _ = m.loss_and_grads(X, y, eps)
    np.testing.assert_allclose(loss, -np.mean(log_px.mean(0) - beta * kl), rtol=1e-11)
    log_w = log_px + stats.norm.logpdf(z).sum(-1) - stats.norm.logpdf(z, mu, sigma).sum(-1)
    np.testing.assert_allclose(m.log_weights(X, y, eps), log_w, rtol=1e-10)
    # a single label for every row is the same as repeating it
    np.testing.assert_array_equal(m.encode(X, 5)[0], m.encode(X, np.full(N, 5))[0])
    # check_input=False is a hot-path shortcut, not a different function
    assert m.loss_and_grads(X, y, eps, check_input=False)[0] == loss


@pytest.mark.parametrize("objective", ["elbo", "iwae"])
@pytest.mark.parametrize("hidden", [(4,), ()])
def test_one_class_is_a_vae_with_the_extra_row_folded_into_the_bias(hidden, objective, rng):
    """With C = 1 the one-hot column is all ones, so the first layers' extra input rows
    act as biases: the ConditionalVAE with parameters P equals the VAE with
    ``b' = b + W[extra row]``, ``W' = W[:-1]`` (encoder and decoder), loss and every
    gradient — the extra row's gradient equals the bias gradient (MATH §8)."""
    N, D, Z = 5, 6, 2
    X = make_data("bernoulli", N, D, rng)
    kw = dict(n_latent=Z, hidden_sizes=hidden, activation="tanh", objective=objective,
              k=3 if objective == "iwae" else 1, n_samples=2 if objective == "elbo" else 1)
    cv = npvae.ConditionalVAE(classes=[4], random_state=0, **kw).initialize(D)
    vae = npvae.VAE(random_state=1, **kw).initialize(D)
    enc_first = ["enc_W0"] if hidden else ["enc_mu_W", "enc_logvar_W"]
    dec_first = ["dec_W0"] if hidden else ["dec_out_W"]
    for name, p in vae.params_.items():
        q = cv.params_[name]
        if name in enc_first + dec_first:
            assert q.shape == (p.shape[0] + 1, p.shape[1])
            p[...] = q[:-1]
            vae.params_[name.replace("_W", "_b")][...] = (cv.params_[name.replace("_W", "_b")]
                                                         + q[-1])
        elif name.replace("_b", "_W") not in enc_first + dec_first:
            p[...] = q
    eps = cv.draw_noise(N, random_state=3)
    loss_c, g_c = cv.loss_and_grads(X, 4, eps)
    loss_v, g_v = vae.loss_and_grads(X, eps)
    np.testing.assert_allclose(loss_c, loss_v, rtol=1e-13)
    for name in g_v:
        if name in enc_first + dec_first:
            np.testing.assert_allclose(g_c[name][:-1], g_v[name], rtol=1e-11, atol=1e-14)
            np.testing.assert_allclose(g_c[name][-1], g_c[name.replace("_W", "_b")],
                                       rtol=1e-11, atol=1e-14)
        else:
            np.testing.assert_allclose(g_c[name], g_v[name], rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(cv.log_likelihood(X, 4, n_importance=7, random_state=5),
                               vae.log_likelihood(X, n_importance=7, random_state=5), rtol=1e-12)
    np.testing.assert_allclose(cv.sample(3, 4, random_state=6), vae.sample(3, random_state=6),
                               rtol=1e-12)


# ----------------------------------------------------------- trained on digits
@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    d = load_digits()
    return (d.data >= 8).astype(np.float64), d.target                      # (1797, 64), (1797,)


@pytest.fixture(scope="module")
def trained(digits):
    X, y = digits
    with npvae.use_backend("numpy"):                  # the fast backend for tiny layers
        m = npvae.ConditionalVAE(n_latent=4, hidden_sizes=(32,), random_state=0)
        m.fit(X[:1500], y[:1500], epochs=8, batch_size=50, learning_rate=5e-3,
              X_val=X[1500:], y_val=y[1500:])
    return m


def test_sampling_a_class_generates_that_class(trained, digits):
    """``sample(n, 3)`` is nearest to the mean image of 3 (nearest-class-mean classifier
    on the 64 pixels), and so is every other class: the label conditions the decoder."""
    X, y = digits
    means = np.array([X[y == c].mean(0) for c in range(10)])               # (10, 64)
    s = trained.sample(200, 3, random_state=0)                             # (200, 64)
    d2 = ((s[:, None, :] - means[None]) ** 2).mean(-1)                     # (200, 10)
    assert np.argmin(d2.mean(0)) == 3, d2.mean(0)
    assert np.mean(d2.argmin(1) == 3) > 0.8
    agreement = []
    for c in range(10):
        s = trained.sample(100, c, random_state=c)
        agreement.append(np.mean(((s[:, None, :] - means[None]) ** 2).mean(-1).argmin(1) == c))
    assert np.mean(agreement) > 0.8, agreement
    # an array of labels: row i is of class y_i
    s = trained.sample(10, np.arange(10), random_state=1)
    assert np.mean(((s[:, None, :] - means[None]) ** 2).mean(-1).argmin(1) == np.arange(10)) >= 0.7


def test_training_improved_the_bound(trained, digits):
    X, y = digits
    h = trained.history_
    assert len(h) == 8 and h[-1]["val_elbo"] > h[0]["val_elbo"] and "val_kl" in h[-1]
    assert trained.score(X[1500:], y[1500:], random_state=0) > -30
    # the label carries information: the right labels score better than wrong ones
    assert (trained.score(X[1500:], y[1500:], random_state=0)
            > trained.score(X[1500:], (y[1500:] + 1) % 10, random_state=0) + 2)


def test_public_shapes(trained, digits):
    X, y = digits
    X, y = X[:7], y[:7]
    m = trained
    assert m.n_features_in_ == 64 and m.n_classes_ == 10
    np.testing.assert_array_equal(m.classes_, np.arange(10))
    mu, logvar = m.encode(X, y)
    assert mu.shape == logvar.shape == (7, 4) and m.transform(X, y).shape == (7, 4)
    assert m.encode_cholesky(X, y)[1].shape == (7, 4, 4)
    assert m.decode(mu, y).shape == (7, 64) and m.decode(mu, 3).shape == (7, 64)
    assert m.reconstruct(X, y).shape == (7, 64)
    assert m.score_samples(X, y).shape == (7,) and isinstance(m.score(X, y), float)
    assert m.log_likelihood(X, y, n_importance=20, random_state=0).shape == (7,)
    au = m.active_units(X, y)
    assert isinstance(au, list) and len(au) == 1 and 0 <= au[0] <= 4
    s = m.sample(5, 3, random_state=0)
    assert s.shape == (5, 64) and np.all((s >= 0) & (s <= 1))
    np.testing.assert_array_equal(s, m.sample(5, np.full(5, 3), random_state=0))
    assert m.draw_noise(7).shape == (1, 7, 4)
    loss, grads = m.loss_and_grads(X, y, m.draw_noise(7, random_state=0))
    assert np.isfinite(loss) and grads["enc_W0"].shape == (64 + 10, 32)
    assert grads["dec_W0"].shape == (4 + 10, 32)


def test_fit_partial_fit_and_sklearn_conventions(digits):
    X, y = digits
    X, y = X[:60], y[:60]
    m = npvae.ConditionalVAE(n_latent=2, hidden_sizes=(8,), batch_size=20, random_state=0)
    assert m.fit(X, y, epochs=1) is m
    assert m.get_params()["classes"] == list(range(10))                    # learned, as ints
    json.dumps(m.get_params())
    assert m.classes is None                                               # fit leaves params
    c = clone(m)
    assert c.get_params() == m.get_params() and not hasattr(c, "params_")
    # a second fit learns its classes afresh
    m.fit(X[y < 3], y[y < 3], epochs=1)
    assert m.classes_.tolist() == [0, 1, 2]
    # partial_fit: classes fixed by the first call ...
    p = npvae.ConditionalVAE(n_latent=2, hidden_sizes=(8,), batch_size=20, random_state=0)
    assert p.partial_fit(X[y < 5], y[y < 5]) is p and p.n_classes_ == 5
    assert p.partial_fit(X[y < 5], y[y < 5]).n_iter_ == 2
    with pytest.raises(ValueError, match=r"unseen label.*\[5\b"):
        p.partial_fit(X[y == 5], y[y == 5])
    # ... unless given to the constructor
    q = npvae.ConditionalVAE(n_latent=2, hidden_sizes=(8,), classes=list(range(10)),
                             random_state=0)
    q.partial_fit(X[y < 5], y[y < 5]).partial_fit(X[y >= 5], y[y >= 5])
    assert q.n_classes_ == 10 and q.n_iter_ == 2
    assert np.isfinite(q.score(X, y))
    # float32 end to end
    f = npvae.ConditionalVAE(n_latent=2, hidden_sizes=(8,), dtype="float32",
                             random_state=0).fit(X, y, epochs=1)
    assert f.transform(X, y).dtype == np.float32 and f.sample(2, 1).dtype == np.float32


def test_batch_transform_sees_only_the_data(digits):
    """With a batch_transform (e.g. dynamic binarisation, MATH §12) the transform gets the
    data columns only, and the labels reach the model beside them."""
    from sklearn.datasets import load_digits
    grey = load_digits().data[:100] / 16.0                                 # (100, 64) in [0, 1]
    y = digits[1][:100]
    seen = []

    def binarise(xb, rng):
        seen.append(xb.shape)
        return (rng.random(xb.shape) < xb).astype(np.float64)

    m = npvae.ConditionalVAE(n_latent=2, hidden_sizes=(8,), random_state=0)
    m.fit(grey, y, epochs=2, batch_size=30, batch_transform=binarise)
    # one look at the whole set for the output bias, then 2 epochs of batches
    assert seen and all(s[1] == 64 for s in seen) and sum(s[0] for s in seen) == 100 + 200
    assert np.isfinite(m.history_[-1]["train_elbo"])


# -------------------------------------------------------------------- labels
class TestLabels:
    def setup_method(self):
        self.rng = np.random.default_rng(0)
        self.X = make_data("bernoulli", 5, 6, self.rng)
        self.m = npvae.ConditionalVAE(n_latent=2, hidden_sizes=(3,), classes=CLASSES,
                                      random_state=0).initialize(6)
        self.eps = self.m.draw_noise(5)

    def test_unseen_label_names_it_and_the_classes(self):
        msg = r"unseen label \[3\].*classes \[2, 5, 7\]"
        with pytest.raises(ValueError, match=msg):
            self.m.score_samples(self.X, [2, 5, 3, 7, 2])
        with pytest.raises(ValueError, match=msg):
            self.m.sample(4, 3)
        with pytest.raises(ValueError, match=r"unseen labels \[0, 9\]"):
            self.m.loss_and_grads(self.X, [0, 9, 2, 2, 2], self.eps)
        with pytest.raises(ValueError, match=r"unseen label \[8\]"):
            npvae.ConditionalVAE(classes=[1, 2], hidden_sizes=(3,)).fit(self.X, [1, 2, 8, 1, 2])

    @pytest.mark.parametrize("y, match", [
        ([2, 5, 7], "3 labels for 5 rows"),
        (np.full((5, 3), 2), "1-D"),
        ([2.5, 2, 2, 2, 2], "integer class labels"),
        (["a"] * 5, "integer class labels"),
        (np.full(5, np.nan), "integer class labels"),
    ])
    def test_bad_labels(self, y, match):
        with pytest.raises(ValueError, match=match):
            self.m.encode(self.X, y)

    def test_integer_valued_floats_are_labels(self):
        np.testing.assert_array_equal(self.m.encode(self.X, np.full(5, 5.0))[0],
                                      self.m.encode(self.X, 5)[0])

    def test_bad_X_and_unfitted(self):
        with pytest.raises(ValueError, match="7 features.*expecting 6"):
            self.m.encode(np.zeros((5, 7)), 2)
        with pytest.raises(ValueError, match="not binary"):
            self.m.score_samples(np.full((5, 6), 0.5), 2)
        with pytest.raises(ValueError, match="classes"):
            npvae.ConditionalVAE().initialize(6)
        with pytest.raises(ValueError, match="initialize"):
            npvae.ConditionalVAE(classes=[1]).transform(self.X, 1)
        with pytest.raises(ValueError, match="y_val"):
            train(self.m, self.X, np.full(len(self.X), 2), X_val=self.X)


# --------------------------------------------------------------- checkpoints
def test_save_load_round_trip(trained, digits, tmp_path):
    X, y = digits
    path = npvae.save(trained, tmp_path / "cvae.npz")
    m = npvae.load(path)
    assert type(m) is npvae.ConditionalVAE
    np.testing.assert_array_equal(m.classes_, trained.classes_)
    assert m.n_classes_ == 10 and m.n_features_in_ == 64
    np.testing.assert_array_equal(m.flat_params_, trained.flat_params_)
    assert m.get_params() == {**trained.get_params(), "classes": tuple(range(10))}
    np.testing.assert_array_equal(m.score_samples(X[:20], y[:20], random_state=1),
                                  trained.score_samples(X[:20], y[:20], random_state=1))
    np.testing.assert_array_equal(m.sample(4, 3, random_state=2),
                                  trained.sample(4, 3, random_state=2))
    assert m.history_ == json.loads(json.dumps(trained.history_))


def test_checkpoints_written_during_training_load_and_resume(digits, tmp_path):
    """train()'s own checkpoints (run_dir) are ConditionalVAE checkpoints with
    n_features_in = D, and training resumes from them exactly."""
    X, y = digits
    X, y = X[:200], y[:200]
    kw = dict(n_latent=2, hidden_sizes=(8,), random_state=0)
    full = npvae.ConditionalVAE(**kw).fit(X, y, epochs=2, batch_size=50)
    half = npvae.ConditionalVAE(**kw).fit(X, y, epochs=1, batch_size=50, run_dir=tmp_path)
    m = npvae.load(tmp_path / "checkpoint.npz")
    assert m.n_features_in_ == 64 and m.classes_.tolist() == list(range(10))
    np.testing.assert_array_equal(m.flat_params_, half.flat_params_)
    train(m, X, y, epochs=1, batch_size=50, learning_rate=full.learning_rate)
    np.testing.assert_allclose(m.flat_params_, full.flat_params_, rtol=1e-12)


# ------------------------------------------------- scikit-learn's y=None (issue 27)
def test_without_labels_score_is_the_bound_on_log_p_x_and_transform_the_mixture_mean(
        trained, digits):
    """``score_samples(X)``: ``logsumexp_c ELBO(x, c) − log C`` (docs/08#without-a-label),
    at least each class's bound minus log C; ``transform(X)``: ``Σ_c softmax_c ELBO · μ(x, c)``."""
    X = digits[0][1500:1520]
    per_class = np.stack([trained.score_samples(X, c) for c in trained.classes_])   # (C, N)
    bound = trained.score_samples(X)
    np.testing.assert_allclose(bound, np.log(np.mean(np.exp(per_class), axis=0)), rtol=1e-12)
    assert np.all(bound >= per_class.max(axis=0) - np.log(10) - 1e-12)
    assert trained.score(X) == pytest.approx(bound.mean(), rel=1e-12)
    w = np.exp(per_class - per_class.max(axis=0))
    w /= w.sum(axis=0)
    means = np.stack([trained.encode(X, np.full(20, c))[0] for c in trained.classes_])
    np.testing.assert_allclose(trained.transform(X), np.einsum("cn,cnz->nz", w, means),
                               rtol=1e-10, atol=1e-12)


def test_a_pipeline_fits_with_labels_and_transforms_and_scores_without(digits):
    from sklearn.pipeline import make_pipeline
    X, y = digits
    with npvae.use_backend("numpy"):
        pipe = make_pipeline(npvae.ConditionalVAE(n_latent=2, hidden_sizes=(8,), epochs=1,
                                                  random_state=0)).fit(X[:200], y[:200])
        assert pipe.transform(X[:5]).shape == (5, 2)
        assert np.isfinite(pipe.score(X[:5]))


@pytest.mark.parametrize("call", ["fit", "partial_fit", "encode", "loss_and_grads"])
def test_methods_that_need_labels_say_so_in_one_line(trained, digits, call):
    X = digits[0][:5]
    m = npvae.ConditionalVAE(n_latent=2, hidden_sizes=(8,)) if "fit" in call else trained
    args = {"fit": (X,), "partial_fit": (X,), "encode": (X, None),
            "loss_and_grads": (X, None, trained.draw_noise(5, random_state=0))}[call]
    with pytest.raises(ValueError, match="needs the labels y") as err:
        getattr(m, call)(*args)
    assert "\n" not in str(err.value)


def test_the_labels_become_the_condition_in_one_place():
    """No private twin of a public method carries the condition (``_loss_and_grads``,
    ``_score_samples``, ...): the public methods take ``y`` and call ``_condition`` once."""
    from npvae.models.base import BaseVAE
    twins = [name for name in dir(BaseVAE) if name.startswith("_") and not name.startswith("__")
             and hasattr(BaseVAE, name[1:])]
    assert twins == [], twins
