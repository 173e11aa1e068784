"""The VAE's written-out step (:meth:`npvae.models.vae.VAE._diagonal_elbo`): equal to the
composed path, a true gradient, three files to read, and only where it applies."""
import os
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

import npvae
from npvae.backend import get_backend
from npvae.gradcheck import kink_margin
from npvae.layers.activations import ACTIVATIONS, bias_activation_forward
from npvae.models.vae import VAE
from test_vae import random_direction_error

#: likelihood name, its options, data of its support
LIKELIHOODS = {
    "bernoulli": (None, lambda rng, N, D: (rng.random((N, D)) < 0.4).astype(float)),
    "gaussian-fixed": ({"variance": "fixed", "logvar": 0.3},
                       lambda rng, N, D: rng.standard_normal((N, D))),
    "gaussian-per_output": ({"variance": "per_output"},
                            lambda rng, N, D: rng.standard_normal((N, D))),
    "gaussian-decoder": ({"variance": "decoder", "sigmoid_mean": True, "min_logvar": -4.0},
                         lambda rng, N, D: rng.uniform(0.05, 0.95, (N, D))),
    "categorical": ({"n_levels": 4}, lambda rng, N, D: rng.integers(0, 4, (N, D))),
    "beta": (None, lambda rng, N, D: rng.uniform(0.05, 0.95, (N, D))),
}


def model_and_data(likelihood, N, D, seed, **kw):
    params, data = LIKELIHOODS[likelihood]
    m = VAE(likelihood=likelihood.partition("-")[0], likelihood_params=params,
            random_state=seed, **kw).initialize(D)
    return m, data(np.random.default_rng(seed), N, D)


def composed(m, X, eps, need_grads=True):
    """The same objective through the composed path (networks, posterior, objectives)."""
    m._written_out = False
    try:
        loss, flat, terms = m._elbo_objective(m.validate_input(X), eps, m.beta, need_grads)
        return loss, (None if flat is None else flat.copy()), terms
    finally:
        m._written_out = True


def written_out(m, X, eps, need_grads=True):
    assert m._written_out                                  # the dispatch takes the step
    loss, flat, terms = m._elbo_objective(m.validate_input(X), eps, m.beta, need_grads)
    return loss, (None if flat is None else flat.copy()), terms


@given(enc=st.lists(st.integers(1, 9), max_size=2), dec=st.none() | st.lists(st.integers(1, 9),
       max_size=2), activation=st.sampled_from(ACTIVATIONS),
       likelihood=st.sampled_from(sorted(LIKELIHOODS)), S=st.integers(1, 3), N=st.integers(1, 5),
       Z=st.integers(1, 4), beta=st.floats(0.05, 3.0).filter(lambda b: b != 1),
       estimator=st.sampled_from(["standard", "stl"]), backend=st.sampled_from(["numpy", "numba"]),
       seed=st.integers(0, 2**31))
def test_written_out_step_equals_the_composed_path(enc, dec, activation, likelihood, S, N, Z,
                                                   beta, estimator, backend, seed):
    """Loss, terms and every gradient to 1e-12 in float64, on both backends."""
    with npvae.use_backend(backend):
        m, X = model_and_data(likelihood, N, 5, seed, n_latent=Z, hidden_sizes=tuple(enc),
                              decoder_hidden_sizes=None if dec is None else tuple(dec),
                              activation=activation, n_samples=S, beta=beta,
                              gradient_estimator=estimator)
        for p in m.params_.values():                       # biases off zero: no ties at kinks
            p += np.random.default_rng(seed).normal(0, 0.1, p.shape)
        eps = m.draw_noise(N, random_state=seed + 1)
        for need_grads in (True, False):
            loss, flat, terms = written_out(m, X, eps, need_grads)
            loss_c, flat_c, terms_c = composed(m, X, eps, need_grads)
            assert loss == pytest.approx(loss_c, rel=1e-12, abs=1e-12)
            for k in terms_c:
                np.testing.assert_allclose(terms[k], terms_c[k], rtol=1e-12, atol=1e-12)
            if need_grads:
                grads, grads_c = m.layout_.views(flat), m.layout_.views(flat_c)
                for name in grads_c:
                    np.testing.assert_allclose(grads[name], grads_c[name], rtol=1e-12,
                                               atol=1e-12 * (1 + np.abs(grads_c[name]).max()),
                                               err_msg=name)


@pytest.mark.parametrize("likelihood,hidden,activation", [
    ("bernoulli", (6,), "relu"), ("gaussian-per_output", (5, 4), "tanh"),
    ("categorical", (), "softplus"), ("beta", (4,), "leaky_relu")])
def test_written_out_step_by_finite_differences(likelihood, hidden, activation, backend):
    """The whole model's gradient through the new path against a centred difference
    along a random direction (float64)."""
    m, X = model_and_data(likelihood, 4, 6, 7, n_latent=3, hidden_sizes=hidden,
                          activation=activation, n_samples=2, beta=0.6)
    assert m._written_out
    eps = m.draw_noise(4, random_state=8)
    assert random_direction_error(m, X, eps, np.random.default_rng(9)) < 1e-7


def files_run(m, X, eps):
    """The library files whose code runs during one ELBO step (loss and gradient)."""
    root = os.path.dirname(npvae.__file__)
    seen = set()

    def trace(frame, event, arg):
        if frame.f_code.co_filename.startswith(root):
            seen.add(os.path.relpath(frame.f_code.co_filename, root))

    X = m.validate_input(X)
    m._elbo_objective(X, eps, m.beta)                      # first call: buffers, compilation
    sys.settrace(trace)
    try:
        m._elbo_objective(X, eps, m.beta)
    finally:
        sys.settrace(None)
    return sorted(seen)


@pytest.mark.parametrize("backend,expected", [
    ("numpy", ["distributions/likelihoods/bernoulli.py", "layers/activations.py",
               "models/vae.py"]),
    ("numba", ["distributions/likelihoods/bernoulli.py",
               "distributions/likelihoods/kernels_numba.py", "layers/activations_numba.py",
               "models/vae.py"])])
def test_one_elbo_step_runs_in_three_files(backend, expected):
    """A reader follows one ELBO backward (Bernoulli, diagonal Gaussian) in the model's
    module, the activations and the likelihood; the compiled path adds the likelihood's
    compiled twin (before the written-out step: 13 and 14 files)."""
    with npvae.use_backend(backend):
        m, X = model_and_data("bernoulli", 8, 784, 0, hidden_sizes=(400,))
        assert files_run(m, X, m.draw_noise(8)) == expected


@pytest.mark.parametrize("kw", [
    {"posterior": "full"}, {"prior": "vamp", "prior_params": {"n_pseudo_inputs": 3}},
    {"objective": "iwae", "k": 3}, {"objective": "iwae", "k": 3, "gradient_estimator": "dreg"},
    {"posterior": "planar"}, "conditional"])
def test_other_configurations_take_the_composed_path(kw, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the written-out step ran")

    rng = np.random.default_rng(0)
    X = (rng.random((5, 6)) < 0.5).astype(float)
    if kw == "conditional":
        m = npvae.ConditionalVAE(n_latent=2, hidden_sizes=(4,), random_state=0)
        m, y = m.initialize(6, classes=[0, 1]), np.arange(5) % 2
    else:
        m, y = VAE(n_latent=2, hidden_sizes=(4,), random_state=0, **kw).initialize(6), None
    assert not m._written_out or kw.get("objective") == "iwae"
    monkeypatch.setattr(VAE, "_diagonal_elbo", refuse)
    if y is None:
        m.loss_and_grads(X, m.draw_noise(5))               # the training objective
    else:
        m.loss_and_grads(X, y, m.draw_noise(5))
    if m._written_out:                                     # IWAE: the ELBO it scores may
        return                                             # take the step (the same ELBO)
    m.score_samples(X, y=y)


def test_the_default_model_takes_the_step(monkeypatch):
    """The guard of the test above: the spy does catch the step where it applies."""
    m = VAE(n_latent=2, hidden_sizes=(4,), random_state=0).initialize(6)
    monkeypatch.setattr(VAE, "_diagonal_elbo", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        m.loss_and_grads(np.ones((2, 6)), m.draw_noise(2))


def test_a_model_pickled_before_the_step_uses_the_composed_path():
    """A pickle from before the written-out step has no ``_written_out``: it still trains."""
    import pickle

    m = VAE(n_latent=2, hidden_sizes=(4,), random_state=0).initialize(6)
    state = m.__getstate__()
    del state["_written_out"]
    old = VAE.__new__(VAE)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    X, eps = np.ones((2, 6)), m.draw_noise(2)
    np.testing.assert_allclose(old.loss_and_grads(X, eps)[0], m.loss_and_grads(X, eps)[0],
                               rtol=1e-12)


def test_kink_margin_sees_the_steps_activations(backend):
    """npvae.gradcheck.kink_margin watches the activation kernel the step calls
    (``kernel.impl``): a ReLU VAE with zero biases has pre-activations at 0."""
    m = VAE(n_latent=2, hidden_sizes=(4,), random_state=0).initialize(6)
    X = np.zeros((3, 6))
    assert kink_margin(lambda: m.loss_and_grads(X, m.draw_noise(3))) == 0.0


def test_kernel_impl_follows_the_backend():
    kernel = bias_activation_forward
    previous = get_backend()
    try:
        npvae.set_backend("numpy")
        assert kernel.impl is kernel.reference
        npvae.set_backend("numba")
        kernel(np.ones((2, 3)), np.zeros(3), "relu")
        assert kernel.impl is kernel.compiled is not kernel.reference
        assert kernel.compiled.__module__ == "npvae.layers.activations_numba"
    finally:
        npvae.set_backend(previous)
