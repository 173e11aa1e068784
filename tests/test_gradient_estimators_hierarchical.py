"""STL and DReG for the hierarchical VAE
(docs/07-hierarchical-vae.md#sticking-the-landing-with-several-levels).

* The score and path derivatives of ``log q`` at a sample add up to the change of
  variables' derivative (the kernel's bookkeeping).
* The generative networks' gradient (decoder and priors) and the loss are the
  standard ones at any fixed noise; the encoders' change.
* At fixed noise each estimator is the exact gradient of a surrogate: the objective
  with every encoder's weights frozen inside ``log q`` — for markov inference the
  frozen encoder still reads the live sample below — and the weights' coefficients
  frozen (finite differences).
* Averaged over noise, DReG (IWAE) and STL (ELBO) give the standard encoder gradient.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest

import npvae
from npvae.distributions.diagonal_gaussian import (log_normal_forward, log_q_backward,
                                                   log_q_dparams, log_q_dz, log_q_forward,
                                                   reparameterize_backward, reparameterize_forward)

from _estimator_checks import (assert_unbiased, exact_gradient_of_the_surrogate, flat_grad,
                               one_sample_identities, only_the_encoder_changes, z_scores)

D, N = 6, 3


def data(seed=0):
    return (np.random.default_rng(seed).random((N, D)) < 0.5).astype(float)


def model(estimator="standard", objective="iwae", k=4, inference="markov", **kw):
    settings = dict(latent_sizes=(3, 2), hidden_sizes=(4,), activation="tanh",
                    inference=inference, objective=objective, k=k,
                    gradient_estimator=estimator, random_state=1)
    settings.update(kw)
    m = npvae.HierarchicalVAE(**settings).initialize(D)
    rng = np.random.default_rng(2)          # nonzero log-variance heads: every path carries
    m.flat_params_[...] += 0.3 * rng.standard_normal(m.flat_params_.shape)
    return m


def test_score_and_path_derivatives_add_up_to_the_change_of_variables():
    rng = np.random.default_rng(0)
    mu, logvar = rng.standard_normal((2, 5, 3))                       # (N, Z)
    eps = rng.standard_normal((4, 5, 3))                              # (S, N, Z)
    dlog_q = rng.standard_normal((4, 5))                              # (S, N)
    _, z_c = reparameterize_forward(mu, logvar, eps)
    dmu_path, dlv_path = reparameterize_backward(log_q_dz(dlog_q, z_c), z_c)
    dmu_score, dlv_score = log_q_dparams(dlog_q, z_c)
    np.testing.assert_allclose(dmu_path + dmu_score.sum(axis=0), 0, atol=1e-13)
    np.testing.assert_allclose(dlv_path + dlv_score.sum(axis=0),
                               log_q_backward(dlog_q, log_q_forward(logvar, eps)[1]),
                               rtol=1e-12, atol=1e-13)
    # the score derivative by finite differences of log N(z; μ, e^λ) at fixed z
    z = mu + np.exp(0.5 * logvar) * eps
    f = lambda m_, l_: float((dlog_q * log_normal_forward(z, m_, l_)[0]).sum())
    v = rng.standard_normal(mu.shape)
    h = 1e-6
    num = (f(mu + h * v, logvar) - f(mu - h * v, logvar)) / (2 * h)
    assert abs(num - (dmu_score.sum(axis=0) * v).sum()) < 1e-7 * (1 + abs(num))
    num = (f(mu, logvar + h * v) - f(mu, logvar - h * v)) / (2 * h)
    assert abs(num - (dlv_score.sum(axis=0) * v).sum()) < 1e-7 * (1 + abs(num))


@pytest.mark.parametrize("objective, k, estimators, inference", [
    ("iwae", 4, ("stl", "dreg"), "markov"), ("iwae", 4, ("stl", "dreg"), "independent"),
    ("elbo", 1, ("stl",), "markov"), ("elbo", 1, ("stl",), "independent")])
def test_generative_gradient_and_loss_are_the_standard_ones(objective, k, estimators,
                                                           inference):
    only_the_encoder_changes(lambda name: model(name, objective, k, inference, n_samples=3),
                             estimators, data())


def surrogate(m, frozen, X, eps, coef):
    """``−(1/N) Σ coef ⊙ [log p(x, z) − Σ_l log q_{φ0}(z_l|·)]`` at the live samples
    ``z = g(ε, φ)``: ``frozen`` holds the encoders' weights ``φ0``; for markov inference
    its encoder of level ``l`` reads the live sample ``z_{l−1}``."""
    log_px, _, log_p, (inf_c, zs, *_) = m._log_densities_forward(X, eps)
    mus0, logvars0 = frozen._inference_forward(X, eps)[:2]
    log_q = 0.0
    for l, z in enumerate(zs):
        mu0, lv0 = mus0[l], logvars0[l]
        if m.inference == "markov" and l > 0:
            S, n, _ = z.shape
            _, mu0, lv0, _ = frozen._encoders[l].forward(frozen.params_,
                                                         zs[l - 1].reshape(S * n, -1))
            mu0, lv0 = mu0.reshape(S, n, -1), lv0.reshape(S, n, -1)
        log_q = log_q + log_normal_forward(z, mu0, lv0)[0]                 # (S, N)
    log_w = log_px + np.sum(log_p, axis=0) - log_q
    return -float((coef * log_w).sum()) / X.shape[0]


@pytest.mark.parametrize("estimator, objective, k", [
    ("dreg", "iwae", 4), ("stl", "iwae", 4), ("stl", "elbo", 1)])
@pytest.mark.parametrize("inference", ["markov", "independent"])
def test_encoder_gradient_is_the_exact_gradient_of_the_frozen_surrogate(estimator, objective,
                                                                        k, inference):
    X = data()
    m = model(estimator, objective, k, inference, n_samples=3)
    frozen = copy.deepcopy(m)
    eps = m.draw_noise(N, random_state=3)
    exact_gradient_of_the_surrogate(m, X, eps, estimator, objective,
                                    lambda coef: surrogate(m, frozen, X, eps, coef))


def test_the_markov_input_path_matters():
    """Dropping the path through the upper encoder's input (``z_1 → μ_2, λ_2`` with the
    weights fixed) would break the surrogate check: it is not zero here."""
    X = data()
    m = model("stl", "iwae", 4)
    eps = m.draw_noise(N, random_state=3)
    log_w, _, cache = m.log_weights_forward(X, eps)
    inf_c = cache[0]
    dzs = [np.zeros_like(z) for z in cache[1]]
    m._log_q_path_backward(dzs, [np.ones_like(log_w)] * 2, inf_c)
    only_z = m._post.log_q_dz(np.ones_like(log_w), inf_c[1][0])
    assert np.abs(dzs[0] - only_z).max() > 1e-3


@pytest.mark.parametrize("estimator, objective, k, inference", [
    ("dreg", "iwae", 4, "markov"), ("dreg", "iwae", 4, "independent"),
    ("stl", "elbo", 1, "markov"), ("stl", "elbo", 1, "independent")])
def test_encoder_gradient_is_unbiased(estimator, objective, k, inference):
    X = data()
    z = z_scores(model(estimator, objective, k, inference, n_samples=2),
                 model("standard", objective, k, inference, n_samples=2), X, 3000)
    assert_unbiased(z)


def test_stl_is_biased_for_iwae_with_several_samples():
    z = z_scores(model("stl"), model("standard"), data(), 1000)
    assert np.mean(z ** 2) > 20, np.mean(z ** 2)


def test_with_one_sample_dreg_is_stl_and_stl_iwae_is_stl_elbo():
    one_sample_identities(model, data())


def test_setting_is_validated_cloned_and_saved(tmp_path):
    from sklearn.base import clone

    with pytest.raises(ValueError, match="is for objective='iwae'"):
        npvae.HierarchicalVAE(gradient_estimator="dreg").initialize(D)
    m = model("dreg")
    assert clone(m).get_params()["gradient_estimator"] == "dreg"
    back = npvae.load(npvae.save(m, tmp_path / "m.npz"))
    X, eps = data(), m.draw_noise(N, random_state=0)
    assert back.gradient_estimator == "dreg"
    np.testing.assert_array_equal(flat_grad(back, X, eps), flat_grad(m, X, eps))


def test_copies_leave_the_workspaces_behind():
    X = data()
    m = model("dreg")
    m.loss_and_grads(X, m.draw_noise(N, random_state=0))
    assert hasattr(m, "_scratch_ws")
    state = m.__getstate__()
    assert not [k for k in state if k.endswith("_ws")]
    back = copy.deepcopy(m)
    eps = m.draw_noise(N, random_state=1)
    np.testing.assert_array_equal(flat_grad(back, X, eps), flat_grad(m, X, eps))
