"""The contracts new code is added through: Likelihood and Posterior.

A posterior without a closed-form KL gets the Monte Carlo estimate
``log q(z|x) − log p(z)`` with its pathwise gradient; a likelihood that misses a
method of the contract cannot be built."""
from __future__ import annotations

import os

import numpy as np
import pytest

import npvae
from npvae import checkpoint
from npvae.distributions import posteriors
from npvae.distributions.likelihoods import LIKELIHOODS, Likelihood, make_likelihood
from npvae.distributions.posteriors import DiagonalGaussian, Posterior, make_posterior
from npvae.gradcheck import directional_derivative, relative_error


class MonteCarloDiagonal(DiagonalGaussian):
    """The diagonal Gaussian, pretending it has no closed-form KL."""

    name = "diagonal-mc"
    closed_form_kl = False


@pytest.fixture
def mc_posterior(monkeypatch):
    monkeypatch.setitem(posteriors.POSTERIORS, "diagonal-mc", MonteCarloDiagonal)
    return "diagonal-mc"


def _model(posterior, **kw):
    return npvae.VAE(n_latent=3, hidden_sizes=(5,), activation="tanh", posterior=posterior,
                     random_state=0, **kw).initialize(6)


def test_monte_carlo_kl_gradient(mc_posterior):
    m = _model(mc_posterior, n_samples=3, beta=0.7)
    rng = np.random.default_rng(1)
    X = (rng.random((4, 6)) < 0.5).astype(float)
    eps = m.draw_noise(4, random_state=2)
    _, grads = m.loss_and_grads(X, eps)
    g = np.concatenate([grads[k].ravel() for k in m.params_])
    v = rng.standard_normal(g.shape)
    num = directional_derivative(lambda: m.loss_and_grads(X, eps)[0], m.flat_params_, v)
    assert relative_error(np.array([g @ v]), np.array([num])) < 1e-7


def test_monte_carlo_kl_estimates_the_closed_form(mc_posterior):
    mc, exact = _model(mc_posterior), _model("diagonal")
    X = (np.random.default_rng(1).random((3, 6)) < 0.5).astype(float)
    eps = mc.draw_noise(3, n_samples=20000, random_state=3)
    kl_mc = mc.elbo_terms(X, eps)["kl"]
    kl = exact.elbo_terms(X, eps[:1])["kl"]
    assert np.all(np.abs(kl_mc - kl) < 0.05 * np.maximum(kl, 0.2))
    # the same reconstruction term: only the KL's estimator differs
    np.testing.assert_allclose(mc.elbo_terms(X, eps[:5])["reconstruction"],
                               exact.elbo_terms(X, eps[:5])["reconstruction"], rtol=1e-12)


def test_an_incomplete_likelihood_cannot_be_built():
    class Half(Likelihood):
        name = "half"

        def output_shape(self, n_features):
            return (n_features,)

    with pytest.raises(TypeError, match="abstract"):
        Half()


def test_an_incomplete_posterior_cannot_be_built():
    class Half(Posterior):
        def head_size(self, Z):
            return Z

    with pytest.raises(TypeError, match="abstract"):
        Half()


def test_registries_name_their_choices():
    assert set(LIKELIHOODS) >= {"bernoulli", "gaussian", "categorical", "beta"}
    with pytest.raises(ValueError, match="choose one of"):
        make_likelihood("poisson")
    with pytest.raises(ValueError, match="choose one of"):
        make_posterior("student")
    with pytest.raises(ValueError, match="likelihood_params"):
        make_likelihood("gaussian", {"varience": "scalar"})


def test_likelihood_options_round_trip_through_a_checkpoint(tmp_path):
    m = npvae.VAE(n_latent=2, hidden_sizes=(3,), likelihood="gaussian",
                  likelihood_params={"variance": "per_output", "logvar": -1.0},
                  random_state=0).initialize(4)
    m2 = npvae.load(npvae.save(m, tmp_path / "m.npz"))
    assert m2.get_params()["likelihood_params"] == {"variance": "per_output", "logvar": -1.0}
    np.testing.assert_array_equal(m2.params_["obs_logvar"], np.full(4, -1.0))


def test_checkpoints_from_before_likelihood_params_still_load(tmp_path):
    """Format-1 files written before the options moved into ``likelihood_params``
    carried ``obs_variance``, ``obs_logvar``, ``n_levels``, ``allow_nonbinary``."""
    import json

    m = npvae.VAE(n_latent=2, hidden_sizes=(3,), likelihood="gaussian",
                  likelihood_params={"variance": "scalar", "logvar": 0.5},
                  random_state=0).initialize(4)
    path = npvae.save(m, tmp_path / "new.npz")
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    params = json.loads(str(arrays["model_params"]))
    del params["likelihood_params"]
    params.update(obs_variance="scalar", obs_logvar=0.5, n_levels=256, allow_nonbinary=False)
    arrays["model_params"] = np.array(json.dumps(params))
    np.savez(tmp_path / "old.npz", **arrays)
    old = npvae.load(tmp_path / "old.npz")
    assert old.get_params()["likelihood_params"] == {"variance": "scalar", "logvar": 0.5}
    np.testing.assert_array_equal(old.flat_params_, m.flat_params_)


def test_load_in_a_fresh_process(tmp_path):
    """Models register on import; npvae imports them lazily, so load must find them."""
    import subprocess
    import sys
    m = npvae.VAE(n_latent=2, hidden_sizes=(3,), random_state=0).initialize(4)
    path = npvae.save(m, tmp_path / "m.npz")
    for code in ("import npvae; print(type(npvae.load(%r)).__name__)",
                 "from npvae.models import load; print(type(load(%r)).__name__)"):
        out = subprocess.run([sys.executable, "-c", code % str(path)], capture_output=True,
                             text=True, timeout=120)
        assert out.stdout.strip() == "VAE", out.stderr


def test_a_compressed_checkpoint_loads_the_same_and_is_smaller(tmp_path):
    """``save(compress=True)``: the same model back (parameters, history, metadata, RNG),
    with the history's text deflated."""
    X = (np.random.default_rng(0).random((40, 6)) < 0.4).astype(np.float64)
    m = npvae.VAE(n_latent=2, hidden_sizes=(4,), epochs=60, batch_size=20,
                  random_state=0).fit(X)
    plain = npvae.save(m, tmp_path / "plain.npz", {"note": "x"})
    packed = npvae.save(m, tmp_path / "packed.npz", {"note": "x"}, compress=True)
    assert os.path.getsize(packed) < 0.5 * os.path.getsize(plain)
    a, b = npvae.load(plain), npvae.load(packed)
    np.testing.assert_array_equal(a.flat_params_, b.flat_params_)
    assert a.history_ == b.history_ == m.history_ and len(b.history_) == 60
    assert checkpoint.read_metadata(packed) == {"note": "x"}
    assert a.rng_.bit_generator.state == b.rng_.bit_generator.state


def test_the_second_head_is_named_by_meaning():
    """Issue 27: the posterior's second head was called ``head`` where the book says
    ``λ = log σ²`` or ``L``.  The contract calls it ``scale_params``, the diagonal Gaussian
    ``logvar``, the full one ``chol``; no posterior method takes an argument ``head``."""
    import inspect

    # every family registered (the subclasses are found through their base)
    from npvae.distributions import (concrete_posterior, dirichlet_posterior,  # noqa: F401
                                     iaf, planar, stick_breaking)

    def subclasses(cls):
        return {cls} | {s for c in cls.__subclasses__() for s in subclasses(c)}

    found = []
    for cls in subclasses(Posterior):
        for name, f in vars(cls).items():
            if inspect.isfunction(f) and {"head", "dhead"} & set(inspect.signature(f).parameters):
                found.append(f"{cls.__name__}.{name}")
    assert not found, found
    assert "scale_params" in inspect.signature(Posterior.sample_forward).parameters
    assert "logvar" in inspect.signature(DiagonalGaussian.kl_forward).parameters
    assert "chol" in inspect.signature(posteriors.FullCovarianceGaussian.kl_forward).parameters
