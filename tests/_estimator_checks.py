"""Checks shared by the gradient-estimator tests of the one-level and the hierarchical
VAE (tests/test_gradient_estimators.py, tests/test_gradient_estimators_hierarchical.py)."""
from __future__ import annotations

import numpy as np

from npvae.gradcheck import directional_derivative


def is_encoder(m):
    """``(P,)`` True on the encoders' entries of the flat parameter vector."""
    return np.concatenate([np.full(int(np.prod(s)), name.startswith("enc"))
                           for name, s in m.layout_.shapes.items()])


def flat_grad(m, X, eps):
    return m.training_objective(X, eps, m.beta)[1].copy()


def only_the_encoder_changes(make, estimators, X, noise_seed=4):
    """``make(estimator)`` models: loss and non-encoder gradient bit for bit the
    standard ones at one fixed noise, the encoders' gradient not."""
    std = make("standard")
    eps = std.draw_noise(X.shape[0], random_state=noise_seed)
    loss0, g0 = std.training_objective(X, eps, 1.0)[:2]
    g0, enc = g0.copy(), is_encoder(std)
    for name in estimators:
        loss, g = make(name).training_objective(X, eps, 1.0)[:2]
        assert loss == loss0
        np.testing.assert_array_equal(g[~enc], g0[~enc])
        assert not np.allclose(g[enc], g0[enc])


def agrees_along(g, f, params, v):
    """``g · v`` against the central difference of ``f()`` along ``v`` (``params``
    perturbed in place): relative difference below 1e-7."""
    num = directional_derivative(f, params, v)
    assert abs(g @ v - num) / (abs(g @ v) + abs(num)) < 1e-7


def z_scores(a, b, X, draws):
    """Per encoder parameter, ``mean(g_a − g_b) / its standard error`` over ``draws``
    noise draws (the same noise for both: a paired comparison)."""
    enc = is_encoder(a)
    n = X.shape[0]
    diffs = np.array([(flat_grad(a, X, e) - flat_grad(b, X, e))[enc]
                      for e in (a.draw_noise(n, random_state=i) for i in range(draws))])
    se = diffs.std(axis=0, ddof=1) / np.sqrt(draws)
    keep = se > 0
    return diffs.mean(axis=0)[keep] / se[keep]


def assert_unbiased(z):
    assert z.size > 10
    assert np.mean(z ** 2) < 2.0 and np.max(np.abs(z)) < 5.0, (np.mean(z ** 2), z)


def exact_gradient_of_the_surrogate(m, X, eps, estimator, objective, surrogate, seed=7):
    """At fixed noise the estimator's gradient is the exact gradient of
    ``surrogate(coef)`` along the encoders' parameters, ``coef`` the frozen
    coefficients of the log-weights (``w̃`` for STL, ``w̃²`` for DReG, ``1/S`` for
    the ELBO), and of the loss itself along the others."""
    from scipy.special import softmax

    rng = np.random.default_rng(seed)
    log_w = m.log_weights_forward(X, eps)[0]                                 # (K, N)
    coef = {"dreg": softmax(log_w, axis=0) ** 2, "stl": softmax(log_w, axis=0)}[estimator]
    if objective == "elbo":
        coef = np.full(log_w.shape, 1.0 / log_w.shape[0])                     # (S, N)
    g, enc = flat_grad(m, X, eps), is_encoder(m)
    for _ in range(3):
        agrees_along(g, lambda: surrogate(coef), m.flat_params_,
                     rng.standard_normal(g.size) * enc)
        agrees_along(g, lambda: m.training_objective(X, eps, 1.0, False)[0], m.flat_params_,
                     rng.standard_normal(g.size) * ~enc)


def one_sample_identities(model, X):
    """With one sample DReG is STL, and STL on the IWAE bound is STL on the ELBO.
    ``model(estimator, objective, k)`` builds the model."""
    eps = model("standard", "iwae", 1).draw_noise(X.shape[0], n_samples=1, random_state=6)
    dreg = flat_grad(model("dreg", "iwae", 1), X, eps)
    stl = flat_grad(model("stl", "iwae", 1), X, eps)
    np.testing.assert_array_equal(dreg, stl)
    np.testing.assert_allclose(flat_grad(model("stl", "elbo", 1), X, eps), stl, rtol=1e-10,
                               atol=1e-14)
