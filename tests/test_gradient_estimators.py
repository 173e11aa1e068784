"""STL and DReG (docs/05-elbo.md#sticking-the-landing,
docs/06-importance-weighting.md#doubly-reparameterised-gradients).

* The decoder's gradient is the standard one, bit for bit, at any fixed noise.
* Averaged over noise, the encoder's gradient of DReG (IWAE) and of STL (ELBO,
  and IWAE with K = 1) equals the standard one within a few standard errors;
  STL on IWAE with K > 1 is biased (Tucker et al. 2019), and the test sees it.
* At fixed noise each estimator is the exact gradient of a surrogate: the
  objective with ``log q``'s parameters and the weights' coefficients frozen
  (checked by finite differences), so the hand-written seeds are right.
* The setting is validated, cloned, checkpointed and reachable from the CLI.

The hierarchical VAE's estimators: tests/test_gradient_estimators_hierarchical.py.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import npvae
from npvae.cli import main
from npvae.distributions.diagonal_gaussian import LOG_2PI, log_normal_forward
from npvae.gradcheck import directional_derivative

from _estimator_checks import (assert_unbiased, exact_gradient_of_the_surrogate, flat_grad,
                               one_sample_identities, only_the_encoder_changes, z_scores)

D, N = 6, 3


def data(seed=0):
    return (np.random.default_rng(seed).random((N, D)) < 0.5).astype(float)


def model(estimator="standard", objective="iwae", k=5, posterior="diagonal", **kw):
    settings = dict(n_latent=2, hidden_sizes=(4,), activation="tanh", objective=objective,
                    k=k, posterior=posterior, gradient_estimator=estimator, random_state=1)
    settings.update(kw)
    return npvae.VAE(**settings).initialize(D)


# ------------------------------------------------------------------ decoder identity
@pytest.mark.parametrize("objective, k, estimators", [
    ("iwae", 5, ("stl", "dreg")), ("elbo", 1, ("stl",))])
@pytest.mark.parametrize("posterior", ["diagonal", "full"])
def test_decoder_gradient_and_loss_are_the_standard_ones(objective, k, estimators, posterior):
    only_the_encoder_changes(lambda name: model(name, objective, k, posterior, n_samples=3),
                             estimators, data())


# ------------------------------------------------------------------ unbiasedness
@pytest.mark.parametrize("estimator, objective, k, posterior", [
    ("dreg", "iwae", 5, "diagonal"), ("dreg", "iwae", 5, "full"),
    ("stl", "elbo", 1, "diagonal"), ("stl", "elbo", 1, "full"), ("stl", "iwae", 1, "diagonal")])
def test_encoder_gradient_is_unbiased(estimator, objective, k, posterior):
    X = data()
    z = z_scores(model(estimator, objective, k, posterior, n_samples=2),
                 model("standard", objective, k, posterior, n_samples=2), X, 1500)
    assert_unbiased(z)


def test_stl_is_biased_for_iwae_with_several_samples():
    """The score term's mean ``−Σ w̃_k ∂log q(z_k)/∂φ`` is not zero when the weights depend
    on the samples: STL on IWAE is biased (Tucker et al. 2019), and the test above would see it."""
    z = z_scores(model("stl"), model("standard"), data(), 1500)
    assert np.mean(z ** 2) > 20, np.mean(z ** 2)


# ------------------------------------------------------------------ exact surrogates
def log_q_frozen(z, mu0, head0, posterior, m):
    """``log q(z|x)`` with the posterior's parameters fixed at ``mu0, head0``."""
    if posterior == "diagonal":
        return log_normal_forward(z, mu0, head0)[0]
    L = m._post.cholesky(head0, z.shape[-1])                                  # (N, Z, Z)
    u = np.linalg.solve(L, (z - mu0).transpose(1, 2, 0)).transpose(2, 0, 1)  # L⁻¹(z − μ)
    log_det = np.log(np.abs(np.diagonal(L, axis1=1, axis2=2))).sum(-1)       # (N,)
    return -0.5 * (LOG_2PI * z.shape[-1] + (u * u).sum(-1)) - log_det


def surrogate(m, X, eps, coef, mu0, head0, posterior):
    """``−(1/N) Σ coef ⊙ [log p(x|z) + log p(z) − log q_{φ0}(z)]`` at ``z = g(ε, φ)``:
    the function whose exact gradient STL/DReG give the encoder."""
    mu, head, _ = m._encode_forward(X, None)
    z, _ = m._post.sample_forward(mu, head, eps)
    log_px, _ = m._decoder.forward(m.params_, z, X)
    log_w = log_px + log_normal_forward(z, 0.0, 0.0)[0] - log_q_frozen(z, mu0, head0,
                                                                       posterior, m)
    return -float((coef * log_w).sum()) / X.shape[0]


@pytest.mark.parametrize("estimator, objective, k", [
    ("dreg", "iwae", 4), ("stl", "iwae", 4), ("stl", "elbo", 1)])
@pytest.mark.parametrize("posterior", ["diagonal", "full"])
def test_encoder_gradient_is_the_exact_gradient_of_the_frozen_surrogate(estimator, objective,
                                                                        k, posterior):
    X = data()
    m = model(estimator, objective, k, posterior, n_samples=3)
    eps = m.draw_noise(N, random_state=3)
    mu0, head0, _ = m._encode_forward(X, None)
    exact_gradient_of_the_surrogate(
        m, X, eps, estimator, objective,
        lambda coef: surrogate(m, X, eps, coef, mu0.copy(), head0.copy(), posterior))


@pytest.mark.parametrize("objective", ["elbo", "iwae"])
def test_standard_is_still_the_exact_gradient(objective):
    X, rng = data(), np.random.default_rng(8)
    m = model("standard", objective, 4, n_samples=2)
    eps = m.draw_noise(N, random_state=5)
    g = flat_grad(m, X, eps)
    v = rng.standard_normal(g.size)
    num = directional_derivative(lambda: m.training_objective(X, eps, 1.0, False)[0],
                                 m.flat_params_, v)
    assert abs(g @ v - num) / (abs(g @ v) + abs(num)) < 1e-7


def test_with_one_sample_dreg_is_stl_and_stl_iwae_is_stl_elbo():
    one_sample_identities(model, data())


# ------------------------------------------------------------------ the setting
@pytest.mark.parametrize("kw, match", [
    (dict(gradient_estimator="reinforce"), "unknown gradient_estimator 'reinforce'"),
    (dict(gradient_estimator=None), "unknown gradient_estimator None"),
    (dict(gradient_estimator="dreg", objective="elbo"), "is for objective='iwae'")])
def test_bad_settings_are_one_line_errors(kw, match):
    with pytest.raises(ValueError, match=match) as info:
        npvae.VAE(n_latent=2, hidden_sizes=(4,), **kw).initialize(D)
    assert "\n" not in str(info.value)
    m = model()
    m.set_params(**kw)                                    # validated at use, as scikit-learn asks
    with pytest.raises(ValueError, match=match):
        m.loss_and_grads(data(), m.draw_noise(N))


def test_parameter_clone_and_conditional():
    from sklearn.base import clone
    m = npvae.VAE(objective="iwae", k=3, gradient_estimator="dreg")
    assert m.get_params()["gradient_estimator"] == "dreg"
    assert clone(m).gradient_estimator == "dreg"
    c = npvae.ConditionalVAE(n_latent=2, hidden_sizes=(4,), classes=[0, 1], objective="iwae",
                             k=3, gradient_estimator="dreg", random_state=0).initialize(D)
    assert clone(c).get_params()["gradient_estimator"] == "dreg"
    y = np.array([0, 1, 1])
    loss, grads = c.loss_and_grads(data(), y, c.draw_noise(N))
    assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads.values())


def test_checkpoint_round_trip_and_older_checkpoints(tmp_path):
    m = model("dreg")
    path = npvae.save(m, tmp_path / "m.npz")
    back = npvae.load(path)
    assert back.gradient_estimator == "dreg"
    X, eps = data(), m.draw_noise(N, random_state=0)
    np.testing.assert_array_equal(flat_grad(back, X, eps), flat_grad(m, X, eps))
    with np.load(path) as f:                               # as written before the option existed
        arrays = {k: f[k] for k in f.files}
    params = json.loads(str(arrays["model_params"]))
    del params["gradient_estimator"]
    arrays["model_params"] = np.array(json.dumps(params))
    old = tmp_path / "old.npz"
    np.savez(old, **arrays)
    assert npvae.load(old).gradient_estimator == "standard"


# ------------------------------------------------------------------ the command line
TINY = ["--dataset", "synthetic", "--epochs", "1", "--hidden", "8", "--latent", "2",
        "--max-examples", "100", "--batch-size", "50", "--quiet", "--no-figures",
        "--dtype", "float64"]


def test_cli_trains_with_dreg(tmp_path):
    out = str(tmp_path / "run")
    assert main(["train", *TINY, "--objective", "iwae", "--k", "3", "--gradient-estimator",
                 "dreg", "--out", out]) == 0
    assert npvae.load(os.path.join(out, "checkpoint.npz")).gradient_estimator == "dreg"


def test_cli_trains_the_hierarchical_vae_with_stl(tmp_path):
    out = str(tmp_path / "run")
    i = TINY.index("--latent")
    args = TINY[:i] + ["--latent", "2,2"] + TINY[i + 2:]
    assert main(["train", *args, "--model", "hvae", "--inference", "markov",
                 "--gradient-estimator", "stl", "--out", out]) == 0
    assert npvae.load(os.path.join(out, "checkpoint.npz")).gradient_estimator == "stl"


@pytest.mark.parametrize("extra, said", [
    (["--gradient-estimator", "dreg"], "is for --objective iwae"),
    (["--gradient-estimator", "dreg", "--model", "hvae", "--latent", "2,2"], "is for --objective iwae")])
def test_cli_refuses_what_does_not_apply(tmp_path, extra, said, capsys):
    i = TINY.index("--latent")
    args = TINY[:i] + TINY[i + 2:] + ([] if "--latent" in extra else ["--latent", "2"])
    assert main(["train", *args, *extra, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert said in err and len(err.splitlines()) == 1, err
    assert not os.path.exists(tmp_path / "run" / "checkpoint.npz")
