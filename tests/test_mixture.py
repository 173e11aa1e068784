"""Gaussian mixtures by EM, hard EM and an amortised encoder (npvae/mixture/,
docs/13-em-and-variance-reduction.md): EM's fixed point against scikit-learn's
GaussianMixture, the ELBO touching log p(x) after every E-step and never falling,
the amortised ELBO's gradient by finite differences."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from npvae.gradcheck import numerical_gradient, relative_error
from npvae.mixture import (AmortisedEncoder, GaussianMixtureEM, Mixture,
                           amortised_elbo_backward, amortised_elbo_forward, e_step,
                           fit_amortised, gaussian_log_density, log_joint, log_marginal, m_step,
                           mixture_elbo, point_mass_e_step)


def blobs(seed=0, n=(120, 120, 60), far=3.0):
    """Three 2-D Gaussian clusters, ``(N, 2)``, overlapping at ``far = 3``."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal([0, 0], 1.0, (n[0], 2)),
                           rng.normal([far, 1], [0.5, 1.5], (n[1], 2)),
                           rng.normal([1, far], 0.7, (n[2], 2))])


def start(x, C=3, seed=1):
    rng = np.random.default_rng(seed)
    cov = np.cov(x.T, bias=True)
    return Mixture(np.full(C, 1.0 / C), x[rng.choice(len(x), C, replace=False)],
                   np.broadcast_to(cov, (C, 2, 2)).copy())


def random_mixture(rng, C=3, D=2):
    A = rng.standard_normal((C, D, D))
    w = rng.uniform(0.5, 1.5, C)
    return Mixture(w / w.sum(), rng.standard_normal((C, D)) * 2,
                   A @ A.transpose(0, 2, 1) + 0.3 * np.eye(D))


def sklearn_fit(x, init, max_iter, reg_covar=1e-6):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    gm = GaussianMixture(len(init.weights), covariance_type="full", max_iter=max_iter, tol=0.0,
                         reg_covar=reg_covar, weights_init=init.weights, means_init=init.means,
                         precisions_init=np.linalg.inv(init.covariances))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return gm.fit(x)


def test_log_density_matches_scipy(rng):
    x = rng.standard_normal((7, 3))
    mix = random_mixture(rng, C=4, D=3)
    got = gaussian_log_density(x, mix.means, mix.covariances)
    want = np.stack([multivariate_normal(m, S).logpdf(x)
                     for m, S in zip(mix.means, mix.covariances)], axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_elbo_is_log_px_minus_kl(rng):
    """ELBO = log p(x) − KL(q ‖ p(c|x)) for an arbitrary q, and = log p(x) at the posterior."""
    x = rng.standard_normal((20, 2))
    mix = random_mixture(rng)
    q = rng.dirichlet(np.ones(3), size=20)
    post, log_px = e_step(x, mix)
    kl = np.sum(q * (np.log(q) - np.log(post)), axis=1)
    np.testing.assert_allclose(mixture_elbo(x, q, mix), log_px - kl, rtol=1e-12)
    np.testing.assert_allclose(mixture_elbo(x, post, mix), log_px, rtol=1e-12)
    assert np.all(kl > 0)
    np.testing.assert_allclose(log_marginal(x, mix), log_px)


def test_m_step_maximises_the_elbo(rng):
    """No small perturbation of the M-step's θ raises the ELBO for the q it was given."""
    x = blobs()
    q = rng.dirichlet(np.ones(3), size=len(x))
    best = m_step(x, q, reg_covar=0.0)
    top = mixture_elbo(x, q, best).sum()
    for _ in range(20):
        d = rng.standard_normal((3, 2)) * 1e-3
        assert mixture_elbo(x, q, best._replace(means=best.means + d)).sum() < top
        S = rng.standard_normal((3, 2, 2)) * 1e-3
        cov = best.covariances + S @ S.transpose(0, 2, 1) - 1e-6 * np.eye(2)
        assert mixture_elbo(x, q, best._replace(covariances=cov)).sum() < top


@pytest.mark.parametrize("n_iter", [1, 5])
def test_em_iterations_equal_sklearn(n_iter):
    """Same init, same number of E+M iterations: the same θ to round-off."""
    x = blobs()
    init = start(x)
    em = GaussianMixtureEM(3, max_iter=n_iter, tol=0.0, weights_init=init.weights,
                           means_init=init.means, covariances_init=init.covariances).fit(x)
    sk = sklearn_fit(x, init, n_iter)
    assert sk.n_iter_ == em.n_iter_ == n_iter
    np.testing.assert_allclose(em.weights_, sk.weights_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(em.means_, sk.means_, rtol=0, atol=1e-11)
    np.testing.assert_allclose(em.covariances_, sk.covariances_, rtol=0, atol=1e-11)


def test_em_fixed_point_equals_sklearn():
    """Both run to their fixed point from the same init and land on the same θ (clusters
    far enough apart that 150 iterations converge: one more moves nothing, below)."""
    x = blobs(far=4.0)
    init = start(x)
    em = GaussianMixtureEM(3, max_iter=150, tol=0.0, weights_init=init.weights,
                           means_init=init.means, covariances_init=init.covariances).fit(x)
    sk = sklearn_fit(x, init, 150)
    np.testing.assert_allclose(em.means_, sk.means_, atol=1e-11)
    np.testing.assert_allclose(em.covariances_, sk.covariances_, atol=1e-11)
    np.testing.assert_allclose(em.weights_, sk.weights_, atol=1e-12)
    assert em.score(x) == pytest.approx(sk.score(x), abs=1e-12)
    np.testing.assert_allclose(em.predict_proba(x), sk.predict_proba(x), atol=1e-9)
    # a fixed point: one more EM iteration moves nothing
    again = m_step(x, e_step(x, em.mixture_)[0])
    np.testing.assert_allclose(again.means, em.means_, atol=1e-10)


def test_em_elbo_touches_log_px_and_never_falls():
    x = blobs(seed=3)
    em = GaussianMixtureEM(3, max_iter=60, tol=0.0, random_state=2).fit(x)
    h = em.history_
    np.testing.assert_allclose(h["elbo_e"], h["log_px"], rtol=0, atol=1e-10)  # E-step: no gap
    trace = np.ravel(np.column_stack([h["elbo_e"], h["elbo_m"]]))         # E, M, E, M, ...
    assert np.all(np.diff(trace) >= -1e-12)
    assert np.all(np.diff(h["log_px"]) >= -1e-12)
    # after an M-step the bound sits below the new log p(x): the gap reopens
    assert h["elbo_m"][0] < h["log_px"][1] - 1e-6


def test_point_mass_family_leaves_a_gap():
    """Hard EM: coordinate ascent too (never falls), but the bound stays below log p(x)."""
    x = blobs(seed=3)
    init = start(x)
    hard = GaussianMixtureEM(3, q_family="point_mass", max_iter=100, weights_init=init.weights,
                             means_init=init.means, covariances_init=init.covariances).fit(x)
    h = hard.history_
    trace = np.ravel(np.column_stack([h["elbo_e"], h["elbo_m"]]))
    assert np.all(np.diff(trace) >= -1e-12)
    assert hard.converged_
    assert np.all(h["log_px"] - h["elbo_e"] > 1e-3)
    q = point_mass_e_step(x, hard.mixture_)
    assert np.all(q.sum(axis=1) == 1) and set(np.unique(q)) == {0.0, 1.0}


def test_amortised_gradient_by_finite_differences(rng):
    x = blobs(n=(10, 10, 5))
    mix = random_mixture(rng)
    enc = AmortisedEncoder(2, 3, hidden_sizes=(5,), random_state=0)
    a = log_joint(x, mix)                                             # (N, C)
    _, cache = amortised_elbo_forward(x, enc, a)
    grad = np.zeros_like(enc.flat_)
    amortised_elbo_backward(1.0, cache, grad, enc)
    num = numerical_gradient(lambda: amortised_elbo_forward(x, enc, a)[0], enc.flat_)
    assert relative_error(grad, num) < 1e-7
    # the list form and the flat form agree
    listed = amortised_elbo_backward(1.0, cache)
    np.testing.assert_allclose(np.concatenate([a.ravel() for g in listed for a in g]), grad)


def test_amortised_fit_rises_and_leaves_a_small_gap():
    x = blobs()
    init = start(x)
    enc = AmortisedEncoder(2, 3, hidden_sizes=(16,), random_state=0)
    mix, h = fit_amortised(x, init, enc, n_iter=15, encoder_steps=20)
    assert h["elbo_m"][-1] > h["elbo_steps"][0] + 0.1
    assert np.all(h["elbo_m"] >= h["elbo_e"] - 1e-12)       # the M-step never lowers it
    assert 0 < h["gap"] < 0.2
    assert np.all(h["log_px"] >= h["elbo_e"] - 1e-12)


def test_bad_input_is_refused(rng):
    x = blobs()
    mix = start(x)
    with pytest.raises(ValueError, match="shapes"):
        GaussianMixtureEM(3, means_init=np.zeros((3, 5))).fit(x)
    with pytest.raises(ValueError, match="q_family"):
        GaussianMixtureEM(3, q_family="nope").fit(x)
    with pytest.raises(ValueError, match="not positive definite"):
        gaussian_log_density(x, mix.means, -mix.covariances)
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixtureEM(3).fit(np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="not fitted"):
        GaussianMixtureEM(3).predict(x)
    with pytest.raises(ValueError, match="q must be"):
        m_step(x, np.ones((3, 3)))
