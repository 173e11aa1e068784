"""Reparameterisable samplers beyond the Gaussian, against the mathematics
(docs/09-reparameterisable-distributions.md).

* samples: Kolmogorov–Smirnov tests (20k samples, fixed seed, p > 1e-3) against
  CDFs from scipy.stats or in closed form, and KS tests that reject a wrong
  parameter (p < 1e-6), so the KS tests can fail;
* log_prob: against scipy.stats, or numerical integration;
* pathwise gradients: ``mean(∂f/∂x · ∂x/∂θ)`` equals centred differences of the
  Monte Carlo objective ``mean f(sample(θ ± h, u))`` under common random numbers;
* ``sample_backward``: per element against :func:`npvae.gradcheck.numerical_gradient`;
* the numerical Gamma-shape derivative: against a 40-digit mpmath reference;
* bad inputs raise ``ValueError``.

scipy.stats, scipy.integrate and mpmath are imported inside the tests (import time).
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy.special import expit, gammaincinv, logit, softmax

from npvae import distributions as D
from npvae.gradcheck import numerical_gradient, relative_error

N_KS = 20_000
KS_P_MIN = 1e-3
# Pathwise gradient against the CRN finite difference (relative error, gradcheck's
# definition).  Measured: 1e-12 .. 1e-10 for every case, including the numerical
# Gamma shape (its per-sample error, ~1e-9 against mpmath, averages out).
EXACT_TOL = 1e-8        # closed-form pathwise derivatives
GAMMA_SHAPE_TOL = 1e-6  # looser, stated: the Gamma-shape (and Dirichlet) derivative is numerical


def uniforms(rng, shape):
    return rng.uniform(size=shape)


def ks_pvalue(samples, cdf):
    from scipy import stats

    return stats.kstest(np.ravel(samples), cdf).pvalue


def binary_concrete_cdf(t, logits, tau):
    """``P(y_1 ≤ t)`` for the Concrete with ``K = 2``.

    ``y_1 = σ((Δ + g_1 − g_2)/τ)`` with ``Δ = logits_1 − logits_2``, and the
    difference of two independent standard Gumbels is standard logistic,
    ``L = g_1 − g_2``, ``P(L ≤ l) = σ(l)``.  As ``σ`` is increasing,
    ``y_1 ≤ t  ⇔  (Δ + L)/τ ≤ logit t  ⇔  L ≤ τ logit t − Δ``, so
    ``P(y_1 ≤ t) = σ(τ logit(t) − Δ)``.
    """
    return expit(tau * logit(t) - (logits[0] - logits[1]))


def kumaraswamy_cdf(t, a, b):
    """``F(t) = 1 − (1 − t^a)^b`` (Kumaraswamy 1980), written independently of the module."""
    return 1 - (1 - t ** a) ** b


# ----------------------------------------------------------- KS: samples
def test_ks_gumbel(rng):
    from scipy import stats

    loc, scale = 0.7, 1.8
    x = D.Gumbel.sample(loc, scale, uniforms(rng, N_KS))
    assert ks_pvalue(x, stats.gumbel_r(loc, scale).cdf) > KS_P_MIN


@pytest.mark.parametrize("a, b", [(2.5, 0.7), (0.5, 3.0), (1.0, 1.0)])
def test_ks_kumaraswamy(rng, a, b):
    x = D.Kumaraswamy.sample(a, b, uniforms(rng, N_KS))
    assert ks_pvalue(x, lambda t: kumaraswamy_cdf(t, a, b)) > KS_P_MIN


@pytest.mark.parametrize("alpha, rate", [(0.4, 2.0), (5.0, 0.5), (60.0, 3.0)])
def test_ks_gamma(rng, alpha, rate):
    from scipy import stats

    x = D.Gamma.sample(alpha, rate, uniforms(rng, N_KS))
    assert ks_pvalue(x, stats.gamma(alpha, scale=1 / rate).cdf) > KS_P_MIN


def test_ks_dirichlet_marginals(rng):
    """Each marginal of Dirichlet(α) is Beta(α_k, Σα − α_k)."""
    from scipy import stats

    alpha = np.array([0.3, 1.5, 4.0])
    x = D.Dirichlet.sample(alpha, uniforms(rng, (N_KS, 3)))
    np.testing.assert_allclose(x.sum(-1), 1.0, atol=1e-12)
    for k in range(3):
        beta = stats.beta(alpha[k], alpha.sum() - alpha[k])
        assert ks_pvalue(x[:, k], beta.cdf) > KS_P_MIN, k


@pytest.mark.parametrize("tau", [0.3, 0.6, 2.0])
def test_ks_binary_concrete(rng, tau):
    logits = np.array([0.4, -0.9])
    y = D.Concrete.sample(logits, tau, uniforms(rng, (N_KS, 2)))
    assert ks_pvalue(y[:, 0], lambda t: binary_concrete_cdf(t, logits, tau)) > KS_P_MIN


@pytest.mark.parametrize("case", ["gamma shape", "kumaraswamy a", "concrete temperature",
                                  "dirichlet alpha"])
def test_ks_rejects_a_wrong_parameter(rng, case):
    """The KS tests above have power: a 10–20% error in one parameter is rejected."""
    from scipy import stats

    if case == "gamma shape":
        x = D.Gamma.sample(2.0, 1.0, uniforms(rng, N_KS))
        p = ks_pvalue(x, stats.gamma(2.2).cdf)
    elif case == "kumaraswamy a":
        x = D.Kumaraswamy.sample(2.5, 0.7, uniforms(rng, N_KS))
        p = ks_pvalue(x, lambda t: kumaraswamy_cdf(t, 2.75, 0.7))
    elif case == "concrete temperature":
        logits = np.array([0.4, -0.9])
        y = D.Concrete.sample(logits, 0.6, uniforms(rng, (N_KS, 2)))
        p = ks_pvalue(y[:, 0], lambda t: binary_concrete_cdf(t, logits, 0.5))
    else:
        alpha = np.array([0.3, 1.5, 4.0])
        x = D.Dirichlet.sample(alpha, uniforms(rng, (N_KS, 3)))
        p = ks_pvalue(x[:, 1], stats.beta(1.5, 3.8).cdf)      # Σα − α_1 is 4.3
    assert p < 1e-6, p


def test_hard_is_gumbel_max_categorical(rng):
    """``hard(y)`` is the Gumbel-max sample: one-hot, and categorical(softmax(logits))
    for any temperature (Maddison, Mnih & Teh 2017, §3.2)."""
    logits = np.array([1.0, 0.0, -0.5, 0.3])
    u = uniforms(rng, (N_KS, 4))
    h1 = D.Concrete.hard(D.Concrete.sample(logits, 0.5, u))
    h2 = D.Concrete.hard(D.Concrete.sample(logits, 3.0, u))
    np.testing.assert_array_equal(h1, h2)
    assert set(np.unique(h1)) == {0.0, 1.0} and np.all(h1.sum(-1) == 1)
    freq, p = h1.mean(0), softmax(logits)
    assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / N_KS))


# ----------------------------------------------------------- log_prob
def test_log_prob_gumbel_against_scipy(rng):
    from scipy import stats

    loc, scale = rng.normal(size=(3, 1)), rng.uniform(0.3, 3, size=(1, 4))
    x = rng.normal(0, 3, size=(3, 4))
    np.testing.assert_allclose(D.Gumbel.log_prob(loc, scale, x),
                               stats.gumbel_r.logpdf(x, loc, scale), rtol=1e-12, atol=1e-12)


def test_log_prob_gamma_against_scipy(rng):
    from scipy import stats

    alpha, rate = rng.uniform(0.1, 20, size=(5, 1)), rng.uniform(0.1, 5, size=(1, 6))
    x = rng.gamma(2.0, size=(5, 6)) + 1e-3
    np.testing.assert_allclose(D.Gamma.log_prob(alpha, rate, x),
                               stats.gamma.logpdf(x, alpha, scale=1 / rate), rtol=1e-11)


def test_log_prob_dirichlet_against_scipy(rng):
    from scipy import stats

    alpha = np.array([0.3, 1.5, 4.0, 0.9])
    x = rng.dirichlet(alpha + 1, size=50)
    np.testing.assert_allclose(D.Dirichlet.log_prob(alpha, x),
                               stats.dirichlet.logpdf(x.T, alpha), rtol=1e-11)


@pytest.mark.parametrize("a, b", [(2.5, 0.7), (0.5, 3.0), (1.0, 1.0), (7.0, 12.0)])
def test_log_prob_kumaraswamy_integrates_to_its_cdf(a, b):
    """``∫_0^t p = F(t) = 1 − (1 − t^a)^b``, and ``∫_0^1 p = 1`` (quadrature)."""
    from scipy.integrate import quad

    pdf = lambda t: float(np.exp(D.Kumaraswamy.log_prob(a, b, t)))
    total = quad(pdf, 0, 0.5, limit=200)[0] + quad(pdf, 0.5, 1, limit=200)[0]
    assert abs(total - 1) < 1e-7
    for t in (0.1, 0.45, 0.9):
        assert abs(quad(pdf, 0, t, limit=200)[0] - kumaraswamy_cdf(t, a, b)) < 1e-7
    # the module's expm1/log form is the more accurate one where F is small
    np.testing.assert_allclose(D.Kumaraswamy.cdf(a, b, np.array([0.1, 0.45, 0.9])),
                               kumaraswamy_cdf(np.array([0.1, 0.45, 0.9]), a, b), rtol=1e-9)


@pytest.mark.parametrize("tau", [0.6, 1.0, 2.5])
def test_log_prob_binary_concrete(tau):
    """K = 2: the density of ``y_1`` is the derivative of ``σ(τ logit t − Δ)``
    (centred difference), and integrates to 1."""
    from scipy.integrate import quad

    logits = np.array([0.4, -0.9])
    t = np.linspace(0.02, 0.98, 25)
    y = np.stack([t, 1 - t], axis=-1)
    density = np.exp(D.Concrete.log_prob(logits, tau, y))
    h = 1e-6
    cdf = lambda t: binary_concrete_cdf(t, logits, tau)
    dcdf = (cdf(t + h) - cdf(t - h)) / (2 * h)
    np.testing.assert_allclose(density, dcdf, rtol=1e-7)
    pdf = lambda s: float(np.exp(D.Concrete.log_prob(logits, tau, np.array([s, 1 - s]))))
    total = quad(pdf, 0, 0.5, limit=200)[0] + quad(pdf, 0.5, 1, limit=200)[0]
    assert abs(total - 1) < 1e-7


@pytest.mark.parametrize("tau", [1.0, 2.5])
def test_log_prob_concrete_k3_integrates_to_one(tau):
    """K = 3 over the simplex: the square ``(s, v)`` maps to the triangle by
    ``y = (s, (1 − s) v, (1 − s)(1 − v))`` (Jacobian ``1 − s``), and each of ``s, v``
    is the quintic smoothstep ``φ(t) = t³(10 − 15t + 6t²)`` of a Gauss–Legendre node
    ``t``, which flattens the density's non-smooth behaviour at the simplex's vertices
    (it behaves like ``r^{τ − 2}`` there), so 120² nodes reach ~1e-9."""
    logits = np.array([0.5, -1.0, 0.2])
    nodes, weights = np.polynomial.legendre.leggauss(120)
    t = (nodes + 1) / 2
    s = t ** 3 * (10 - 15 * t + 6 * t * t)
    ws = weights / 2 * 30 * t * t * (1 - t) ** 2          # dφ/dt = 30 t² (1 − t)²
    S, V = np.meshgrid(s, s, indexing="ij")
    y = np.stack([S, (1 - S) * V, (1 - S) * (1 - V)], axis=-1)
    density = np.exp(D.Concrete.log_prob(logits, tau, y)) * (1 - S)
    assert abs(ws @ density @ ws - 1) < 1e-8
    # log π is normalised inside: shifting the logits changes nothing
    np.testing.assert_allclose(D.Concrete.log_prob(logits + 3.0, tau, y),
                               D.Concrete.log_prob(logits, tau, y), rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------- pathwise gradients
def f_scalar(x):
    return np.sin(x) + x * x


def df_scalar(x):
    return np.cos(x) + 2 * x


W_LIN = np.array([0.7, -1.2, 0.4])
W_QUAD = np.array([[1.0, 0.3, -0.2], [0.3, 0.5, 0.1], [-0.2, 0.1, 2.0]])


def f_vector(x):
    """Fixed linear + quadratic function of a 3-vector, per sample."""
    return x @ W_LIN + np.einsum("...i,ij,...j->...", x, W_QUAD, x)


def df_vector(x):
    return W_LIN + x @ (W_QUAD + W_QUAD.T)


SCALAR_CASES = {
    "gumbel": (D.Gumbel, {"loc": 0.3, "scale": 1.4}),
    "kumaraswamy": (D.Kumaraswamy, {"a": 2.5, "b": 0.7}),
    "gamma": (D.Gamma, {"alpha": 2.7, "rate": 1.3}),
    "gamma small shape": (D.Gamma, {"alpha": 0.35, "rate": 0.8}),
}


def pathwise_vs_crn(dist, params, f, df, u, h=1e-5):
    """Pathwise ``∇_θ mean f(x)`` from ``sample_backward`` and, for each parameter
    and element, the centred difference of the Monte Carlo objective under
    common random numbers (the same ``u`` on both sides)."""
    params = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    x, cache = dist.sample_forward(*params.values(), u)
    n = np.prod(x.shape[:-1]) if f is f_vector else x.size
    dx = df(x) / n
    grads = dist.sample_backward(dx, cache)
    out = {}
    for name in dist.params:
        objective = lambda: float(np.mean(f(dist.sample(*params.values(), u))))
        numeric = numerical_gradient(objective, params[name], h=h)
        out[name] = relative_error(grads[name], numeric)
    return out


@pytest.mark.parametrize("case", SCALAR_CASES)
def test_pathwise_gradient_scalar(rng, case):
    dist, params = SCALAR_CASES[case]
    errors = pathwise_vs_crn(dist, params, f_scalar, df_scalar, uniforms(rng, 5000))
    for name, err in errors.items():
        tol = GAMMA_SHAPE_TOL if (dist is D.Gamma and name == "alpha") else EXACT_TOL
        assert err < tol, (name, err)


def test_pathwise_gradient_dirichlet(rng):
    """Through the normalisation and the (numerical) Gamma-shape derivative."""
    errors = pathwise_vs_crn(D.Dirichlet, {"alpha": [0.4, 1.5, 3.0]}, f_vector, df_vector,
                             uniforms(rng, (5000, 3)))
    assert errors["alpha"] < GAMMA_SHAPE_TOL, errors


@pytest.mark.parametrize("tau", [0.5, 2.0])
def test_pathwise_gradient_concrete(rng, tau):
    errors = pathwise_vs_crn(D.Concrete, {"logits": [0.5, -1.0, 0.2], "temperature": tau},
                             f_vector, df_vector, uniforms(rng, (5000, 3)))
    assert max(errors.values()) < EXACT_TOL, errors


@pytest.mark.parametrize("alpha", [0.05, 0.3, 1.0, 2.5, 10.0, 200.0])
def test_gamma_shape_gradient_matches_inverse_cdf_per_sample(rng, alpha):
    """The implicit derivative equals the centred difference of the inverse-CDF
    sample ``gammaincinv(α ± h, u)`` itself, per sample.  The reference's step is
    small, ``h = 1e-6 · min(α, √α)``: for ``α = 0.05`` the sample is extremely
    curved in ``α`` (``y ≈ (u Γ(α + 1))^{1/α}``), and ``h = 1e-5 · α`` leaves a 4e-7
    truncation error in the *reference*.  Measured: worst ≲ 1e-8, ~1e-10 in norm."""
    u = uniforms(rng, 2000)
    x, cache = D.Gamma.sample_forward(alpha, 1.7, u)
    implicit = D.gamma_shape_derivative(alpha, cache[2]) / 1.7
    h = 1e-6 * min(alpha, np.sqrt(alpha))
    numeric = (gammaincinv(alpha + h, u) - gammaincinv(alpha - h, u)) / (2 * h) / 1.7
    worst = np.max(np.abs(implicit - numeric) / np.abs(numeric))
    assert worst < 1e-7, worst
    assert relative_error(implicit, numeric) < 1e-8


def test_gamma_shape_derivative_accuracy_against_mpmath():
    """Measures the accuracy of the numerical ``∂y/∂α`` against 40-digit
    arithmetic: ``−(∂P/∂α)/p_α(y)`` with ``∂P/∂α`` by mpmath's differentiation of
    its regularised incomplete gamma.  Measured worst relative error 1.5e-9
    (α from 0.05 to 2000, u from 1e-10 to 1 − 1e-6)."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40
    worst = 0.0
    for alpha in (0.05, 0.7, 3.0, 40.0, 2000.0):
        u = np.array([1e-10, 1e-3, 0.3, 0.8, 1 - 1e-6])
        y = gammaincinv(alpha, u)
        got = D.gamma_shape_derivative(alpha, y)
        for yi, gi in zip(y, got):
            a, yy = mp.mpf(alpha), mp.mpf(yi)
            dP = mp.diff(lambda s: mp.gammainc(s, 0, yy, regularized=True), a)
            density = mp.exp((a - 1) * mp.log(yy) - yy - mp.loggamma(a))
            ref = float(-dP / density)
            worst = max(worst, abs(gi - ref) / abs(ref))
    assert worst < 2e-8, worst


# ----------------------------------------------------------- VJPs per element
def vjp_check(dist, params, u, rng, tol, h=1e-6):
    params = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    x, cache = dist.sample_forward(*params.values(), u)
    dx = rng.standard_normal(x.shape)
    grads = dist.sample_backward(dx, cache)
    for name in dist.params:
        assert grads[name].shape == params[name].shape, name
        f = lambda: float(np.sum(dist.sample(*params.values(), u) * dx))
        err = relative_error(grads[name], numerical_gradient(f, params[name], h=h))
        assert err < tol[name], (name, err)


@given(seed=st.integers(0, 2**31), n=st.integers(1, 4),
       broadcast=st.sampled_from(["full", "row", "scalar"]))
def test_vjp_scalar_distributions(seed, n, broadcast):
    """Each parameter full-shape ``(n, 3)``, a row ``(1, 3)`` or a 0-d scalar."""
    rng = np.random.default_rng(seed)
    shape = {"full": (n, 3), "row": (1, 3), "scalar": ()}[broadcast]
    u = rng.uniform(0.02, 0.98, size=(n, 3))
    pos = lambda lo, hi: rng.uniform(lo, hi, size=shape)
    vjp_check(D.Gumbel, {"loc": rng.normal(size=shape), "scale": pos(0.2, 3)}, u, rng,
              {"loc": 1e-8, "scale": 1e-8})
    vjp_check(D.Kumaraswamy, {"a": pos(0.3, 5), "b": pos(0.3, 5)}, u, rng,
              {"a": 1e-7, "b": 1e-7})
    vjp_check(D.Gamma, {"alpha": pos(0.3, 20), "rate": pos(0.2, 4)}, u, rng,
              {"alpha": 1e-6, "rate": 1e-8}, h=1e-5)


@given(seed=st.integers(0, 2**31), n=st.integers(1, 4), K=st.integers(2, 5),
       per_row=st.booleans())
def test_vjp_vector_distributions(seed, n, K, per_row):
    rng = np.random.default_rng(seed)
    pshape = (n, K) if per_row else (K,)
    u = rng.uniform(0.02, 0.98, size=(n, K))
    vjp_check(D.Dirichlet, {"alpha": rng.uniform(0.3, 8, size=pshape)}, u, rng,
              {"alpha": 1e-6}, h=1e-5)
    tau = rng.uniform(0.2, 3, size=(n,) if per_row else ())
    vjp_check(D.Concrete, {"logits": rng.normal(size=pshape), "temperature": tau}, u, rng,
              {"logits": 1e-7, "temperature": 1e-7})


# ----------------------------------------------------------- bad inputs
u3 = np.full(3, 0.5)
u23 = np.full((2, 3), 0.5)
simplex = np.array([0.2, 0.3, 0.5])

BAD = {
    "gumbel scale 0": lambda: D.Gumbel.sample(0.0, 0.0, u3),
    "gumbel u = 0": lambda: D.Gumbel.sample(0.0, 1.0, np.array([0.0, 0.5])),
    "gumbel u = 1": lambda: D.Gumbel.sample(0.0, 1.0, np.array([0.5, 1.0])),
    "gumbel u nan": lambda: D.Gumbel.sample(0.0, 1.0, np.array([np.nan])),
    "gumbel loc shape": lambda: D.Gumbel.sample(np.zeros(4), 1.0, u3),
    "gumbel loc bigger than u": lambda: D.Gumbel.sample(np.zeros((2, 3)), 1.0, u3),
    "gumbel string": lambda: D.Gumbel.sample("a", 1.0, u3),
    "kumaraswamy a < 0": lambda: D.Kumaraswamy.sample(-1.0, 1.0, u3),
    "kumaraswamy b = 0": lambda: D.Kumaraswamy.sample(1.0, np.array([1.0, 0.0, 1.0]), u3),
    "kumaraswamy u > 1": lambda: D.Kumaraswamy.sample(1.0, 1.0, np.array([1.5])),
    "kumaraswamy log_prob x = 1": lambda: D.Kumaraswamy.log_prob(1.0, 1.0, 1.0),
    "gamma alpha 0": lambda: D.Gamma.sample(0.0, 1.0, u3),
    "gamma rate < 0": lambda: D.Gamma.sample(1.0, -2.0, u3),
    "gamma alpha inf": lambda: D.Gamma.sample(np.inf, 1.0, u3),
    "gamma log_prob x < 0": lambda: D.Gamma.log_prob(1.0, 1.0, -1.0),
    "dirichlet K = 1": lambda: D.Dirichlet.sample(np.ones(1), np.full((2, 1), 0.5)),
    "dirichlet K mismatch": lambda: D.Dirichlet.sample(np.ones(4), u23),
    "dirichlet alpha 0": lambda: D.Dirichlet.sample(np.array([1.0, 0.0, 1.0]), u23),
    "dirichlet u = 0": lambda: D.Dirichlet.sample(np.ones(3), np.array([[0.5, 0.0, 0.5]])),
    "dirichlet log_prob off simplex": lambda: D.Dirichlet.log_prob(np.ones(3), simplex * 1.1),
    "dirichlet log_prob zero": lambda: D.Dirichlet.log_prob(np.ones(3), np.array([0.0, 0.5, 0.5])),
    "concrete tau 0": lambda: D.Concrete.sample(np.zeros(3), 0.0, u23),
    "concrete tau shape": lambda: D.Concrete.sample(np.zeros(3), np.ones(3), u23),
    "concrete logits K": lambda: D.Concrete.sample(np.zeros(2), 1.0, u23),
    "concrete 0-d noise": lambda: D.Concrete.sample(np.zeros(1), 1.0, 0.5),
    "concrete log_prob off simplex": lambda: D.Concrete.log_prob(np.zeros(3), 1.0, simplex + 0.1),
    "backward dx shape": lambda: D.Gumbel.sample_backward(
        np.ones(2), D.Gumbel.sample_forward(0.0, 1.0, u3)[1]),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_inputs_raise(case):
    with pytest.raises(ValueError):
        BAD[case]()
