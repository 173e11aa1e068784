"""The hierarchical VAE (MATH §7): gradients, L = 1 against the VAE, the forward against
the math, the IWAE bound, backends, training, checkpoints, errors."""
import json

import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy import stats
from scipy.special import logsumexp
from sklearn.base import clone

import npvae
from npvae.gradcheck import numerical_gradient, relative_error
from npvae.layers.activations import ACTIVATIONS

from test_vae import lik_params, make_data, random_direction_error

INFERENCES = ["independent", "markov"]
OBJECTIVES = ["elbo", "iwae"]


def make_hvae(likelihood="bernoulli", **kw):
    name, _, variance = likelihood.partition("-")
    return npvae.HierarchicalVAE(likelihood=name, likelihood_params=lik_params(name, variance),
                                 **kw)


def jitter(m, rng, scale=0.1):
    """Move every parameter off its initial value (the prior log-variance heads start
    at zero, which would leave their path into z_{l+1} untested)."""
    m.flat_params_ += scale * rng.standard_normal(m.flat_params_.size)
    return m


def flat_grad(m, grads):
    return np.concatenate([grads[k].ravel() for k in m.params_])


def synthetic_binary(n, rng, D=36, n_protos=6, flip=0.05):
    """Noisy copies of a few random binary prototypes ``(n, D)``."""
    protos = rng.random((n_protos, D)) < 0.5
    x = protos[rng.integers(0, n_protos, n)]
    return (x ^ (rng.random((n, D)) < flip)).astype(np.float64)


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian-per_output"])
@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("inference", INFERENCES)
def test_every_parameter_by_finite_differences(inference, objective, likelihood, backend, rng):
    """Centred differences of every entry of every parameter; three levels, one of
    them without hidden layers (the bottom-up path passes h_1 through)."""
    X = make_data(likelihood, 4, 5, rng)
    m = make_hvae(likelihood, latent_sizes=(3, 2, 2), hidden_sizes=((3,), (), (2,)),
                  inference=inference, objective=objective, k=3, n_samples=2,
                  beta=0.7 if objective == "elbo" else 1.0, activation="tanh",
                  random_state=1).initialize(5)
    jitter(m, rng)
    eps = m.draw_noise(4, random_state=2)
    assert [e.shape for e in eps] == [(2 if objective == "elbo" else 3, 4, Z) for Z in (3, 2, 2)]
    _, grads = m.loss_and_grads(X, eps)
    for name, p in m.params_.items():
        num = numerical_gradient(lambda: m.loss_and_grads(X, eps)[0], p, h=1e-5)
        assert relative_error(grads[name], num) < 1e-7, name


@st.composite
def hvae_settings(draw):
    L = draw(st.integers(1, 4))
    hidden = tuple(tuple(draw(st.lists(st.integers(1, 16), max_size=2))) for _ in range(L))
    objective = draw(st.sampled_from(OBJECTIVES))
    return dict(latent_sizes=tuple(draw(st.integers(1, 6)) for _ in range(L)),
                hidden_sizes=hidden, inference=draw(st.sampled_from(INFERENCES)),
                objective=objective, n_samples=draw(st.integers(1, 3)), k=draw(st.integers(1, 8)),
                activation=draw(st.sampled_from(ACTIVATIONS)),
                beta=draw(st.floats(0.01, 4.0)) if objective == "elbo" else 1.0)


@given(settings=hvae_settings(), N=st.integers(1, 5), D=st.integers(1, 8),
       likelihood=st.sampled_from(["bernoulli", "gaussian-scalar"]), seed=st.integers(0, 2**31))
def test_random_direction_gradient(settings, N, D, likelihood, seed):
    rng = np.random.default_rng(seed)
    X = make_data(likelihood, N, D, rng)
    m = jitter(make_hvae(likelihood, random_state=seed, **settings).initialize(D), rng)
    eps = m.draw_noise(N, random_state=seed + 1)
    assert random_direction_error(m, X, eps, rng) < 1e-7


# ------------------------------------------------------------ L = 1 is the VAE
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian-per_output"])
@pytest.mark.parametrize("inference, objective", [("independent", "elbo"),
                                                  ("independent", "iwae"), ("markov", "iwae")])
def test_one_level_is_the_vae(inference, objective, likelihood, rng):
    """Same parameters (``enc_*`` ↔ ``enc1_*``), same loss and gradients (MATH §7).
    (markov with L = 1 has the VAE's log-weights; its ELBO uses a Monte Carlo KL.)"""
    name, _, variance = likelihood.partition("-")
    common = dict(likelihood=name, likelihood_params=lik_params(name, variance),
                  activation="tanh", objective=objective, k=4, n_samples=3,
                  beta=1.3 if objective == "elbo" else 1.0, random_state=7)
    vae = npvae.VAE(n_latent=3, hidden_sizes=(4, 2), **common).initialize(5)
    hv = npvae.HierarchicalVAE(latent_sizes=(3,), hidden_sizes=(4, 2), inference=inference,
                               **common).initialize(5)
    rename = {k: k.replace("enc_", "enc1_") for k in vae.params_}
    assert list(hv.params_) == list(rename.values())                # same names, same order
    np.testing.assert_array_equal(hv.flat_params_, vae.flat_params_)  # same initial draws
    jitter(vae, rng, 0.3)
    for k, v in rename.items():
        hv.params_[v][...] = vae.params_[k]
    X = make_data(likelihood, 6, 5, rng)
    eps = vae.draw_noise(6, random_state=3)
    loss_v, grads_v = vae.loss_and_grads(X, eps)
    loss_h, grads_h = hv.loss_and_grads(X, [eps])
    np.testing.assert_allclose(loss_h, loss_v, rtol=1e-12)
    for k, v in rename.items():
        np.testing.assert_allclose(grads_h[v], grads_v[k], rtol=1e-12, atol=1e-14, err_msg=k)
    np.testing.assert_allclose(hv.log_weights(X, [eps]), vae.log_weights(X, eps), rtol=1e-12)


# ------------------------------------------------------- the forward, by hand
def ref_net(P, prefix, x, n_hidden):
    """A tanh MLP with μ and λ heads, straight from ``params_``."""
    h = x
    for i in range(n_hidden):
        h = np.tanh(h @ P[f"{prefix}_W{i}"] + P[f"{prefix}_b{i}"])
    return h, h @ P[f"{prefix}_mu_W"] + P[f"{prefix}_mu_b"], \
        h @ P[f"{prefix}_logvar_W"] + P[f"{prefix}_logvar_b"]


def ref_prior(P, l, z_above, hidden):
    """``μ^p, λ^p`` of ``p(z_{l+1} | z_{l+2})`` (0-based ``l``)."""
    return ref_net(P, f"prior{l + 1}", z_above, len(hidden[l + 1]))[1:]


def ref_forward(m, X, eps, hidden):
    """Every density of MATH §7 from ``params_`` with scipy, no npvae code."""
    P, L = m.params_, len(eps)
    mus, logvars, zs = [], [], []
    h = X
    for l in range(L):
        if m.inference == "independent":
            h, mu, logvar = ref_net(P, f"enc{l + 1}", h, len(hidden[l]))     # (N, Z)
        else:
            _, mu, logvar = ref_net(P, f"enc{l + 1}", X if l == 0 else zs[-1], len(hidden[l]))
        mus.append(mu)
        logvars.append(logvar)
        zs.append(mu + np.exp(0.5 * logvar) * eps[l])                         # (S, N, Z)
    log_q = [stats.norm.logpdf(z, mu, np.exp(0.5 * lv)).sum(-1)
             for z, mu, lv in zip(zs, mus, logvars)]                          # (S, N) each
    log_p, kl_closed = [], []
    for l in range(L - 1):
        mp, lvp = ref_prior(P, l, zs[l + 1], hidden)
        log_p.append(stats.norm.logpdf(zs[l], mp, np.exp(0.5 * lvp)).sum(-1))
        kl_closed.append(0.5 * (lvp - logvars[l] + (np.exp(logvars[l]) + (mus[l] - mp) ** 2)
                                / np.exp(lvp) - 1).sum(-1).mean(0))
    log_p.append(stats.norm.logpdf(zs[-1]).sum(-1))
    kl_closed.append(0.5 * (mus[-1] ** 2 + np.exp(logvars[-1]) - 1 - logvars[-1]).sum(-1))
    h = zs[0]
    for i in range(len(hidden[0])):
        h = np.tanh(h @ P[f"dec_W{i}"] + P[f"dec_b{i}"])
    logits = h @ P["dec_out_W"] + P["dec_out_b"]
    log_px = stats.bernoulli.logpmf(X, 1 / (1 + np.exp(-logits))).sum(-1)     # (S, N)
    return dict(log_px=log_px, log_q=log_q, log_p=log_p, kl_closed=kl_closed, mus=mus,
                logvars=logvars)


HIDDEN = ((5,), (4, 3), (3,))


@pytest.mark.parametrize("inference", INFERENCES)
def test_forward_against_the_math(inference, rng):
    N, D, S, beta = 5, 6, 3, 1.7
    X = make_data("bernoulli", N, D, rng)
    m = jitter(make_hvae(latent_sizes=(4, 3, 2), hidden_sizes=HIDDEN, inference=inference,
                         activation="tanh", n_samples=S, beta=beta,
                         random_state=0).initialize(D), rng, 0.3)
    eps = m.draw_noise(N, random_state=1)
    ref = ref_forward(m, X, eps, HIDDEN)
    terms = m.elbo_terms(X, eps)
    assert list(terms) == ["reconstruction", "kl_1", "kl_2", "kl_3", "kl", "elbo"]
    assert all(v.shape == (N,) for v in terms.values())
    np.testing.assert_allclose(terms["reconstruction"], ref["log_px"].mean(0), rtol=1e-12)
    for l in range(3):
        expected = (ref["kl_closed"][l] if inference == "independent"       # closed form
                    else (ref["log_q"][l] - ref["log_p"][l]).mean(0))        # Monte Carlo
        np.testing.assert_allclose(terms[f"kl_{l + 1}"], expected, rtol=1e-10, err_msg=l)
    np.testing.assert_allclose(terms["kl"], terms["kl_1"] + terms["kl_2"] + terms["kl_3"],
                               rtol=1e-13)
    np.testing.assert_allclose(terms["elbo"], terms["reconstruction"] - terms["kl"], rtol=1e-13)
    loss, _ = m.loss_and_grads(X, eps)
    np.testing.assert_allclose(loss, -np.mean(terms["reconstruction"] - beta * terms["kl"]),
                               rtol=1e-13)
    log_w = ref["log_px"] + sum(ref["log_p"]) - sum(ref["log_q"])              # (S, N)
    np.testing.assert_allclose(m.log_weights(X, eps), log_w, rtol=1e-10)
    mus, logvars = m.encode(X)
    if inference == "independent":
        for l in range(3):
            np.testing.assert_allclose(mus[l], ref["mus"][l], rtol=1e-12)
            np.testing.assert_allclose(logvars[l], ref["logvars"][l], rtol=1e-12)
    np.testing.assert_allclose(m.transform(X), np.concatenate(mus, axis=1))


def test_closed_form_kls_match_monte_carlo(rng):
    """Independent inference: each closed-form KL term (MATH §3) is the expectation
    of ``log q(z_l|x) − log p(z_l|z_{l+1})`` over many samples."""
    N, D, S = 4, 6, 20000
    X = make_data("bernoulli", N, D, rng)
    m = jitter(make_hvae(latent_sizes=(4, 3, 2), hidden_sizes=HIDDEN, activation="tanh",
                         n_samples=S, random_state=2).initialize(D), rng, 0.3)
    eps = m.draw_noise(N, random_state=3)
    terms = m.elbo_terms(X, eps)
    ref = ref_forward(m, X, eps, HIDDEN)
    for l in range(3):
        mc = ref["log_q"][l] - ref["log_p"][l]                               # (S, N)
        se = mc.std(0) / np.sqrt(S)
        assert np.all(np.abs(mc.mean(0) - terms[f"kl_{l + 1}"]) < 5 * se + 1e-3), l


def test_sample_is_ancestral(rng):
    m = jitter(make_hvae(latent_sizes=(4, 3, 2), hidden_sizes=HIDDEN, activation="tanh",
                         random_state=0).initialize(6), rng, 0.3)
    g = np.random.default_rng(5)
    z = g.standard_normal((1, 7, 2))
    for l in (1, 0):
        mp, lvp = ref_prior(m.params_, l, z, HIDDEN)
        z = mp + np.exp(0.5 * lvp) * g.standard_normal(mp.shape)
    np.testing.assert_allclose(m.sample(7, random_state=5), m._decode_means(z[0]), rtol=1e-12)


# ------------------------------------------------------- training, the bound
@pytest.fixture(scope="module", params=INFERENCES)
def trained(request):
    rng = np.random.default_rng(0)
    X = synthetic_binary(640, rng)
    train, test = X[:600], X[600:]
    m = npvae.HierarchicalVAE(latent_sizes=(4, 2), hidden_sizes=((32,), (16,)),
                              inference=request.param, random_state=0).initialize(X.shape[1])
    before = m.score(test, random_state=0)
    m.fit(train, epochs=30, batch_size=50, learning_rate=3e-3)
    return m, test, before


def test_fit_raises_the_elbo(trained):
    m, X, before = trained
    after = m.score(X, random_state=0)
    assert after > before + 5, (before, after)
    assert {"train_kl_1", "train_kl_2", "train_elbo"} <= set(m.history_[-1])
    au = m.active_units(X)
    assert isinstance(au, list) and len(au) == 2 and au[0] > 0


def test_l1_is_the_elbo(trained):
    """``L_1 = E[log w]`` (MATH §6): for markov the same Monte Carlo estimate as the
    ELBO on the same noise; for independent equal in expectation."""
    m, X, _ = trained
    S = 4000
    eps = m.draw_noise(len(X), n_samples=S, random_state=1)
    l1 = m.log_weights(X, eps)                                                # (S, N)
    elbo = m.elbo_terms(X, eps)["elbo"]
    if m.inference == "markov":
        np.testing.assert_allclose(l1.mean(0), elbo, rtol=1e-12)
    se = l1.std(0) / np.sqrt(S)
    assert np.all(np.abs(l1.mean(0) - elbo) < 5 * se + 0.05)


def test_bound_grows_with_k_and_stays_below_the_estimate(trained):
    m, X, _ = trained
    bounds = {K: np.mean([m.log_likelihood(X, n_importance=K, random_state=r)
                          for r in range(20)]) for K in (1, 5, 50)}          # ≈ L_K
    ll = m.log_likelihood(X, n_importance=2000, random_state=99).mean()
    assert bounds[1] < bounds[5] < bounds[50] < ll + 0.05, (bounds, ll)
    assert ll - bounds[1] > 0.1, (bounds, ll)


def test_iwae_training_reports_the_bound():
    X = synthetic_binary(200, np.random.default_rng(1))
    m = npvae.HierarchicalVAE(latent_sizes=(3, 2), hidden_sizes=(16,), inference="markov",
                              objective="iwae", k=5, random_state=0)
    m.fit(X, epochs=3, batch_size=50)
    assert m.history_[-1]["train_iwae"] >= m.history_[-1]["train_elbo"]


# -------------------------------------------------------------------- backends
@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("inference", INFERENCES)
def test_backends_agree(inference, objective, rng):
    X = make_data("bernoulli", 6, 7, rng)
    m = jitter(make_hvae(latent_sizes=(4, 3, 2), hidden_sizes=((5,), (), (3, 2)),
                         inference=inference, objective=objective, k=4, n_samples=3,
                         beta=0.8 if objective == "elbo" else 1.0,
                         random_state=0).initialize(7), rng)
    eps = m.draw_noise(6, random_state=1)
    out = {}
    for be in ("numpy", "numba"):
        with npvae.use_backend(be):
            loss, grads = m.loss_and_grads(X, eps)
            out[be] = loss, flat_grad(m, grads)
    np.testing.assert_allclose(out["numba"][0], out["numpy"][0], rtol=1e-12)
    g = out["numpy"][1]
    np.testing.assert_allclose(out["numba"][1], g, rtol=1e-12, atol=1e-12 * np.abs(g).max())


# ------------------------------------------------------------- public surface
def test_public_shapes_and_sklearn_conventions(rng):
    X = make_data("bernoulli", 7, 6, rng)
    m = npvae.HierarchicalVAE(latent_sizes=(3, 2), hidden_sizes=((5,), (4,)), random_state=0)
    assert not hasattr(m, "params_")
    c = clone(m)
    assert c.get_params() == m.get_params() and c is not m
    m.fit(X, epochs=1, batch_size=4)
    mus, logvars = m.encode(X)
    assert [a.shape for a in mus] == [a.shape for a in logvars] == [(7, 3), (7, 2)]
    Z = m.transform(X)
    assert Z.shape == (7, 5)
    np.testing.assert_array_equal(m.decode(Z), m.decode(Z[:, :3]))
    assert m.decode(Z).shape == (7, 6)
    assert m.reconstruct(X).shape == (7, 6)
    np.testing.assert_array_equal(m.reconstruct(X), m._decode_means(Z))
    s = m.sample(4, random_state=0)
    assert s.shape == (4, 6) and np.all((s >= 0) & (s <= 1))
    np.testing.assert_array_equal(s, m.sample(4, random_state=0))
    assert m.score_samples(X).shape == (7,) and np.isscalar(m.score(X))
    assert len(m.active_units(X)) == 2
    assert [e.shape for e in m.draw_noise(7, n_samples=2)] == [(2, 7, 3), (2, 7, 2)]
    assert not hasattr(clone(m), "params_")


@pytest.mark.parametrize("inference", INFERENCES)
def test_float32_end_to_end(inference, rng):
    X = make_data("bernoulli", 10, 6, rng)
    m = npvae.HierarchicalVAE(latent_sizes=(3, 2), hidden_sizes=(4,), inference=inference,
                              dtype="float32", random_state=0).initialize(6)
    eps = [e.astype(np.float64) for e in m.draw_noise(10)]           # converted to float32
    for objective in OBJECTIVES:
        m.set_params(objective=objective, k=2)
        loss, grads = m.loss_and_grads(X, eps)
        assert np.isfinite(loss) and all(g.dtype == np.float32 for g in grads.values())
    assert m.transform(X).dtype == np.float32 and m.sample(3).dtype == np.float32


@pytest.mark.parametrize("inference", INFERENCES)
@pytest.mark.parametrize("hidden", [((4,), ()), (3, 2), ()])
def test_checkpoint_round_trip(inference, hidden, tmp_path, rng):
    X = make_data("bernoulli", 20, 6, rng)
    m = npvae.HierarchicalVAE(latent_sizes=(3, 2), hidden_sizes=hidden, inference=inference,
                              random_state=0).fit(X, epochs=1, batch_size=10)
    json.dumps(m.get_params())
    path = npvae.save(m, tmp_path / "hvae.npz")
    back = npvae.load(path)
    assert type(back) is npvae.HierarchicalVAE
    assert back.get_params() == m.get_params()
    np.testing.assert_array_equal(back.transform(X), m.transform(X))
    np.testing.assert_array_equal(back.flat_params_, m.flat_params_)


# ----------------------------------------------------------------------- errors
class TestBadInput:
    def setup_method(self):
        rng = np.random.default_rng(0)
        self.X = make_data("bernoulli", 5, 6, rng)
        self.m = npvae.HierarchicalVAE(latent_sizes=(3, 2), hidden_sizes=(4,),
                                       random_state=0).initialize(6)
        self.eps = self.m.draw_noise(5, n_samples=2)

    def test_eps_not_a_list(self):
        with pytest.raises(ValueError, match="list of 2 arrays, one per stochastic level"):
            self.m.loss_and_grads(self.X, self.eps[0])

    def test_eps_wrong_number_of_levels(self):
        with pytest.raises(ValueError, match=r"one array per stochastic level \(2\).*got 1"):
            self.m.loss_and_grads(self.X, self.eps[:1])
        with pytest.raises(ValueError, match="got 3 arrays"):
            self.m.loss_and_grads(self.X, self.eps + [self.eps[1]])

    @pytest.mark.parametrize("shape", [(2, 5, 3), (2, 4, 2), (5, 2), (2, 5, 2, 1)])
    def test_eps_wrong_shape_names_the_level(self, shape):
        with pytest.raises(ValueError, match=r"eps\[1\] \(level 2\) must have shape "
                                             r"\('S', 5, 2\)"):
            self.m.loss_and_grads(self.X, [self.eps[0], np.zeros(shape)])

    def test_eps_different_samples_per_level(self):
        with pytest.raises(ValueError, match="same number of samples S.*level 1: 2, level 2: 3"):
            self.m.loss_and_grads(self.X, [self.eps[0], np.zeros((3, 5, 2))])

    def test_eps_nan(self):
        bad = self.eps[1].copy()
        bad[0, 0, 0] = np.nan
        with pytest.raises(ValueError, match=r"eps\[1\] \(level 2\) contains NaN"):
            self.m.elbo_terms(self.X, [self.eps[0], bad])

    @pytest.mark.parametrize("kw, match", [
        ({"latent_sizes": ()}, "at least one stochastic level"),
        ({"latent_sizes": 3}, "latent_sizes must be a tuple"),
        ({"latent_sizes": (3, 0)}, r"latent_sizes\[1\] \(Z_2\) must be an integer >= 1"),
        ({"latent_sizes": (3, 2.5)}, r"latent_sizes\[1\]"),
        ({"hidden_sizes": ((4,), (3,), (2,))}, "3 per-level tuples but latent_sizes has 2"),
        ({"hidden_sizes": ((4,),)}, "1 per-level tuples but latent_sizes has 2"),
        ({"hidden_sizes": (4, (3,))}, "mixes ints and tuples"),
        ({"hidden_sizes": ((4,), (0,))}, r"width \(level 2\)"),
        ({"hidden_sizes": 4}, "hidden_sizes must be a tuple"),
        ({"inference": "ladder"}, "inference must be one of"),
        ({"activation": "swish"}, "activation"),
        ({"objective": "iwae", "k": 3, "beta": 0.5}, "beta=1"),
        ({"n_samples": 0}, "n_samples"), ({"beta": -1.0}, "beta"), ({"dtype": "int8"}, "dtype"),
    ])
    def test_bad_settings(self, kw, match):
        params = dict(latent_sizes=(3, 2), hidden_sizes=(4,))
        params.update(kw)
        with pytest.raises(ValueError, match=match):
            npvae.HierarchicalVAE(**params).initialize(6)

    def test_decode_wrong_width(self):
        with pytest.raises(ValueError, match=r"Z has 4 features.*\(M, 3\).*\(M, 5\)"):
            self.m.decode(np.zeros((2, 4)))

    def test_unfitted(self):
        with pytest.raises(ValueError, match="initialize"):
            npvae.HierarchicalVAE().transform(self.X)


@pytest.mark.parametrize("inference", INFERENCES)
def test_log_likelihood_against_quadrature(inference):
    """The importance-sampled ``log p̂(x)`` of a trained two-level model with one unit
    per level against ``log ∬ p(x|z_1) p(z_1|z_2) N(z_2; 0, 1) dz_1 dz_2`` on a grid
    (whose p(x) sum to one over all 2^D images): an estimator that dropped or doubled
    a density would miss by far more than its standard error."""
    rng = np.random.default_rng(0)
    X = synthetic_binary(400, rng, D=6, n_protos=3)
    m = npvae.HierarchicalVAE(latent_sizes=(1, 1), hidden_sizes=((8,), (8,)),
                              inference=inference, random_state=0)
    m.fit(X, epochs=20, batch_size=40, learning_rate=1e-2)
    every_x = (np.arange(64)[:, None] >> np.arange(6) & 1).astype(float)   # (64, D)

    z1 = np.linspace(-12, 12, 2401)                                # grid of z_1, step 0.01
    z2 = np.linspace(-8, 8, 801)                                   # grid of z_2, step 0.02
    logits = m.decode(z1[:, None])                                 # (2401, D)
    log_px = every_x @ logits.T - np.logaddexp(0, logits).sum(1)   # (64, 2401): log p(x|z_1)
    mu, logvar, _ = m._prior_forward(0, z2[None, :, None])         # (1, 801, 1) each
    log_pz = (stats.norm.logpdf(z1[None, :], mu[0], np.exp(0.5 * logvar[0]))   # (801, 2401)
              + stats.norm.logpdf(z2)[:, None])                    # log p(z_1|z_2) p(z_2)
    exact = np.array([logsumexp(lp[None, :] + log_pz) for lp in log_px]) + np.log(0.01 * 0.02)
    assert abs(logsumexp(exact)) < 1e-6                            # (64,) log p(x): Σ p(x) = 1

    common = every_x[np.argsort(exact)[-6:]]                       # (6, D), the likeliest
    K = 20_000
    estimate = m.log_likelihood(common, n_importance=K, random_state=0)            # (6,)
    w = np.exp(m.log_weights(common, m.draw_noise(6, n_samples=K, random_state=1)))  # (K, 6)
    se = w.std(0) / (np.sqrt(K) * w.mean(0))                     # s.e. of log p̂ (delta method)
    assert np.all(se < 0.01) and np.ptp(np.sort(exact)[-6:]) > 0.3
    assert np.all(np.abs(estimate - np.sort(exact)[-6:]) < 4 * se + 1e-3), (estimate, exact, se)


def test_the_kl_between_levels_goes_through_the_posterior_contract(monkeypatch):
    """Issue 27: the hierarchical VAE computes ``KL(q_l ‖ p(z_l|z_{l+1}))`` with its
    posterior's ``kl_to_gaussian_forward``/``_backward``, not a kernel of its own choosing."""
    from npvae.distributions.posteriors import DiagonalGaussian
    seen = []
    for name in ("kl_to_gaussian_forward", "kl_to_gaussian_backward"):
        real = getattr(DiagonalGaussian, name)
        monkeypatch.setattr(DiagonalGaussian, name,
                            lambda self, *a, _real=real, _name=name: seen.append(_name)
                            or _real(self, *a))
    m = npvae.HierarchicalVAE(latent_sizes=(3, 2), hidden_sizes=(5, 4),
                              random_state=0).initialize(6)
    X = (np.random.default_rng(0).random((4, 6)) < 0.5).astype(float)
    m.loss_and_grads(X, m.draw_noise(4, random_state=1))
    assert seen == ["kl_to_gaussian_forward", "kl_to_gaussian_backward"]
