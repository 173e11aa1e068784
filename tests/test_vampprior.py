"""The VampPrior (docs/17-vampprior.md): its kernels against scipy and finite differences,
the whole VAE and HierarchicalVAE by finite differences in float64, the public API with
it (fit, transform, sample, score, log_likelihood, save/load, checkpoints), its options
refused in one line, and the CLI's flags."""
import types

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats
from scipy.special import logsumexp

import npvae
from npvae.cli import main
from npvae.distributions.vamp_prior import (hardtanh_backward, hardtanh_forward,
                                            vamp_log_prior_backward, vamp_log_prior_forward)
from npvae.gradcheck import numerical_gradient, relative_error

from test_cli_errors import run
from test_vae import make_data, random_direction_error


def vamp_vae(K=4, **kw):
    kw.setdefault("prior_params", {"n_pseudo_inputs": K})
    return npvae.VAE(prior="vamp", **kw)


def vamp_hvae(K=4, **kw):
    kw.setdefault("prior_params", {"n_pseudo_inputs": K})
    return npvae.HierarchicalVAE(prior="vamp", **kw)


def inside(m, rng):
    """Pseudo-inputs well inside ``(0, 1)``: the hardtanh's kinks far from the steps."""
    m.params_["prior_u"][...] = rng.uniform(0.1, 0.9, m.params_["prior_u"].shape)
    return m


def mixture_log_pdf(z, mu_u, logvar_u):
    """``log (1/K) Σ_k N(z; μ_k, diag e^{λ_k})`` by scipy.stats, one component at a time."""
    comps = [stats.multivariate_normal(mu_u[k], np.diag(np.exp(logvar_u[k]))).logpdf(z)
             for k in range(mu_u.shape[0])]
    return logsumexp(np.stack(comps), axis=0) - np.log(mu_u.shape[0])


# ----------------------------------------------------------------- the kernels
def test_log_prior_against_scipy_mixture(rng):
    S, N, K, Z = 3, 5, 7, 4
    z = rng.normal(0, 1.5, (S, N, Z))
    mu_u, logvar_u = rng.normal(0, 1, (K, Z)), rng.normal(0, 0.7, (K, Z))
    log_p, _ = vamp_log_prior_forward(z, mu_u, logvar_u)
    np.testing.assert_allclose(log_p, mixture_log_pdf(z, mu_u, logvar_u), rtol=1e-11)
    # one component is that Gaussian
    one, _ = vamp_log_prior_forward(z, mu_u[:1], logvar_u[:1])
    np.testing.assert_allclose(one, stats.multivariate_normal(
        mu_u[0], np.diag(np.exp(logvar_u[0]))).logpdf(z), rtol=1e-11)


def test_log_prior_backward_by_finite_differences(rng):
    S, N, K, Z = 2, 3, 5, 3
    z = rng.normal(0, 1, (S, N, Z))
    mu_u, logvar_u = rng.normal(0, 1, (K, Z)), rng.normal(0, 0.5, (K, Z))
    w = rng.normal(0, 1, (S, N))                                 # a random upstream gradient
    f = lambda: float((w * vamp_log_prior_forward(z, mu_u, logvar_u)[0]).sum())
    dz, dmu, dlogvar = vamp_log_prior_backward(w, vamp_log_prior_forward(z, mu_u, logvar_u)[1])
    for analytic, x in ((dz, z), (dmu, mu_u), (dlogvar, logvar_u)):
        assert relative_error(analytic, numerical_gradient(f, x)) < 1e-8


def test_far_components_do_not_overflow(rng):
    """A sample far from every component: the logsumexp keeps log p finite."""
    z = np.full((1, 1, 2), 200.0)
    mu_u, logvar_u = np.zeros((3, 2)), np.full((3, 2), -6.0)
    log_p, c = vamp_log_prior_forward(z, mu_u, logvar_u)
    assert np.isfinite(log_p).all() and np.isfinite(vamp_log_prior_backward(np.ones((1, 1)), c)[0]).all()
    np.testing.assert_allclose(log_p, mixture_log_pdf(z, mu_u, logvar_u), rtol=1e-12)


def test_hardtanh():
    v = np.array([-0.5, 0.0, 0.3, 1.0, 1.7])
    u, c = hardtanh_forward(v)
    np.testing.assert_array_equal(u, [0, 0, 0.3, 1, 1])
    np.testing.assert_array_equal(hardtanh_backward(np.ones(5), c), [0, 0, 1, 0, 0])
    assert hardtanh_forward(v, enabled=False)[0] is v


# ----------------------------------------------------------- the whole models
@pytest.mark.parametrize("objective,k", [("elbo", 1), ("iwae", 3)])
def test_vae_every_parameter_by_finite_differences(objective, k, rng):
    X = make_data("bernoulli", 4, 6, rng)
    m = inside(vamp_vae(K=4, n_latent=3, hidden_sizes=(5,), activation="tanh", n_samples=2,
                        objective=objective, k=k, beta=0.7 if objective == "elbo" else 1.0,
                        random_state=0).initialize(6), rng)
    eps = m.draw_noise(4, random_state=1)
    _, grads = m.loss_and_grads(X, eps)
    assert grads["prior_u"].shape == (4, 6)
    for name, p in m.params_.items():
        num = numerical_gradient(lambda: m.loss_and_grads(X, eps)[0], p)
        assert relative_error(grads[name], num) < 1e-7, name


@pytest.mark.parametrize("objective,k", [("elbo", 1), ("iwae", 3)])
def test_hierarchical_every_parameter_by_finite_differences(objective, k, rng):
    X = make_data("bernoulli", 3, 6, rng)
    m = vamp_hvae(K=3, latent_sizes=(3, 2), hidden_sizes=((5,), (4,)), n_samples=2,
                  objective=objective, k=k, random_state=0).initialize(6)
    for p in m.params_.values():
        p += rng.normal(0, 0.1, p.shape)
    inside(m, rng)
    eps = m.draw_noise(3, random_state=1)
    _, grads = m.loss_and_grads(X, eps)
    for name, p in m.params_.items():
        num = numerical_gradient(lambda: m.loss_and_grads(X, eps)[0], p)
        assert relative_error(grads[name], num) < 1e-7, name


@settings(max_examples=25, deadline=None)
@given(depth=st.integers(0, 2), width=st.integers(1, 12), Z=st.integers(1, 5),
       K=st.integers(1, 6), S=st.integers(1, 3), N=st.integers(1, 4), D=st.integers(1, 8),
       hardtanh=st.booleans(), seed=st.integers(0, 2**31))
def test_random_direction_gradient(depth, width, Z, K, S, N, D, hardtanh, seed):
    rng = np.random.default_rng(seed)
    X = make_data("bernoulli", N, D, rng)
    m = vamp_vae(n_latent=Z, hidden_sizes=(width,) * depth, activation="tanh", n_samples=S,
                 prior_params={"n_pseudo_inputs": K, "hardtanh": hardtanh},
                 random_state=seed).initialize(D)
    inside(m, rng)
    assert random_direction_error(m, X, m.draw_noise(N, random_state=seed + 1), rng) < 1e-7


def test_elbo_and_log_weights_use_the_mixture(rng):
    """The KL is ``mean_s [log q(z_s|x) − log p(z_s)]`` and ``log w = log p(x|z) + log p(z) −
    log q(z|x)`` with ``p`` the mixture of the posteriors at the pseudo-inputs, by scipy."""
    X = make_data("bernoulli", 3, 5, rng)
    m = inside(vamp_vae(K=4, n_latent=2, hidden_sizes=(6,), n_samples=3,
                        random_state=0).initialize(5), rng)
    eps = m.draw_noise(3, random_state=2)
    mu, logvar = m.encode(X)
    z = mu + np.exp(0.5 * logvar) * eps                                     # (S, N, Z)
    mu_u, logvar_u = m._encode(m.pseudo_inputs(), None)      # (encode refuses grey levels)
    log_pz = mixture_log_pdf(z, mu_u, logvar_u)
    log_q = np.stack([[stats.multivariate_normal(mu[n], np.diag(np.exp(logvar[n]))).logpdf(z[s, n])
                       for n in range(3)] for s in range(3)])
    np.testing.assert_allclose(m.elbo_terms(X, eps)["kl"], (log_q - log_pz).mean(0), rtol=1e-10)
    logits = m.decode(z.reshape(-1, 2)).reshape(3, 3, 5)
    log_px = stats.bernoulli(1 / (1 + np.exp(-logits))).logpmf(X).sum(-1)
    np.testing.assert_allclose(m.log_weights(X, eps), log_px + log_pz - log_q, rtol=1e-10)


def test_hierarchical_top_prior_is_the_mixture(rng):
    X = make_data("bernoulli", 3, 5, rng)
    m = inside(vamp_hvae(K=3, latent_sizes=(3, 2), hidden_sizes=((6,), (4,)),
                         random_state=0).initialize(5), rng)
    eps = m.draw_noise(3, n_samples=2, random_state=3)
    std = npvae.HierarchicalVAE(latent_sizes=(3, 2), hidden_sizes=((6,), (4,)), random_state=0)
    std.initialize(5)
    for name, p in std.params_.items():
        p[...] = m.params_[name]
    mus, logvars = m.encode(X)
    z2 = mus[1] + np.exp(0.5 * logvars[1]) * eps[1]
    mu_u, logvar_u = [a[1] for a in m._encode_checked(m.pseudo_inputs())]
    shift = (mixture_log_pdf(z2, mu_u, logvar_u)
             - stats.multivariate_normal(np.zeros(2)).logpdf(z2))           # (S, N)
    np.testing.assert_allclose(m.log_weights(X, eps), std.log_weights(X, eps) + shift,
                               rtol=1e-10)


def test_samples_come_from_a_pseudo_input_component(rng):
    """With one pseudo-input the prior is ``q(z | u_1)``: the sample's moments are its."""
    m = inside(vamp_vae(K=1, n_latent=2, hidden_sizes=(4,), random_state=0).initialize(5), rng)
    mu_u, logvar_u = m._encode(m.pseudo_inputs(), None)
    z = m._prior_draw(np.random.default_rng(0), 200_000, 2)
    np.testing.assert_allclose(z.mean(0), mu_u[0], atol=5 * np.exp(0.5 * logvar_u[0]).max() / 400)
    np.testing.assert_allclose(z.var(0), np.exp(logvar_u[0]), rtol=0.02)
    assert m.sample(5, random_state=1).shape == (5, 5)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    return (load_digits().data >= 8).astype(float)


@pytest.mark.parametrize("make", [lambda: vamp_vae(K=20, n_latent=4, hidden_sizes=(32,)),
                                  lambda: vamp_hvae(K=20, latent_sizes=(6, 3),
                                                    hidden_sizes=((32,), (16,)))])
def test_fit_transform_sample_score_save_load(make, digits, tmp_path):
    X = digits[:600]
    m = make().set_params(random_state=0, epochs=4, batch_size=50, learning_rate=3e-3)
    u0 = None
    m.initialize(X.shape[1])
    u0 = m.pseudo_inputs()
    m.fit(X, run_dir=tmp_path / "run")
    assert m.history_[-1]["train_elbo"] > m.history_[0]["train_elbo"]
    assert not np.array_equal(m.pseudo_inputs(), u0)                       # they learn
    assert m.pseudo_inputs().min() >= 0 and m.pseudo_inputs().max() <= 1
    assert m.transform(X[:5]).shape[0] == 5 and m.sample(3).shape == (3, 64)
    ll = m.log_likelihood(X[:20], n_importance=50, random_state=0)
    assert np.isfinite(ll).all() and ll.mean() > m.score(X[:20]) - 1.0
    r = npvae.load(npvae.save(m, tmp_path / "vamp.npz"))
    assert r.prior == "vamp" and r.prior_params == m.prior_params
    assert r.score(X[:50]) == m.score(X[:50])
    np.testing.assert_array_equal(r.pseudo_inputs(), m.pseudo_inputs())
    ckpt = npvae.load(tmp_path / "run" / "checkpoint.npz")
    np.testing.assert_array_equal(ckpt.params_["prior_u"], m.params_["prior_u"])


def test_standard_prior_unchanged(rng):
    """``prior="standard"`` draws the same parameters and has no ``prior_u``."""
    a = npvae.VAE(n_latent=3, random_state=0).initialize(6)
    b = npvae.VAE(n_latent=3, random_state=0, prior="standard").initialize(6)
    assert "prior_u" not in a.params_
    np.testing.assert_array_equal(a.flat_params_, b.flat_params_)
    with pytest.raises(ValueError, match="prior='standard' has no pseudo-inputs|no pseudo-inputs"):
        a.pseudo_inputs()


@pytest.mark.parametrize("kw,match", [
    ({"prior": "mixture"}, "unknown prior 'mixture'"),
    ({"prior": "vamp", "prior_params": {"n_pseudo_inputs": 0}}, r"n_pseudo_inputs'\] must be"),
    ({"prior": "vamp", "prior_params": {"n_pseudo_inputs": 2.5}}, r"n_pseudo_inputs'\] must be"),
    ({"prior": "vamp", "prior_params": {"n_pseudo_inputs": True}}, r"n_pseudo_inputs'\] must be"),
    ({"prior": "vamp", "prior_params": {"components": 3}}, "unknown prior_params"),
    ({"prior": "vamp", "prior_params": {"hardtanh": "yes"}}, "hardtanh"),
    ({"prior": "vamp", "prior_params": {"init_std": -1}}, "init_std"),
    ({"prior": "vamp", "prior_params": {"init_mean": float("nan")}}, "init_mean"),
    ({"prior": "vamp", "prior_params": [3]}, "prior_params must be a dict"),
    ({"prior": "standard", "prior_params": {"n_pseudo_inputs": 3}}, "takes no prior_params"),
    ({"prior": "vamp", "posterior": "full"}, "needs posterior='diagonal'"),
    ({"prior": "vamp", "gradient_estimator": "stl"}, "needs gradient_estimator='standard'"),
])
def test_bad_settings_refused_in_one_line(kw, match):
    with pytest.raises(ValueError, match=match) as e:
        npvae.VAE(**kw).initialize(4)
    assert "\n" not in str(e.value)


def test_hierarchical_needs_independent_inference():
    with pytest.raises(ValueError, match="needs inference='independent'"):
        vamp_hvae(inference="markov").initialize(4)


# ------------------------------------------------------------------------ CLI
def test_cli_trains_with_the_vampprior(tmp_path, capsys):
    code, out, err = run(["train", "--dataset", "digits", "--prior", "vamp",
                          "--n-pseudo-inputs", "7", "--epochs", "1", "--latent", "3",
                          "--hidden", "16", "--quiet", "--out", str(tmp_path / "r")], capsys)
    assert code == 0, err
    m = npvae.load(tmp_path / "r" / "checkpoint.npz")
    assert m.prior_params == {"n_pseudo_inputs": 7} and m.params_["prior_u"].shape == (7, 64)
    assert (tmp_path / "r" / "figures" / "pseudo_inputs.png").stat().st_size > 0


@pytest.mark.parametrize("argv,message", [
    (["--n-pseudo-inputs", "3"], "--n-pseudo-inputs: for --prior vamp only"),
    (["--prior", "vamp", "--model", "cvae"], "--prior vamp is for --model vae and hvae"),
    (["--prior", "vamp", "--posterior", "full"], "needs posterior='diagonal'"),
])
def test_cli_errors_are_one_line(argv, message, tmp_path, capsys):
    code, out, err = run(["train", "--dataset", "digits", "--epochs", "1", "--quiet",
                          "--out", str(tmp_path / "r"), *argv], capsys)
    assert code == 2 and message in err


@pytest.mark.parametrize("argv", [["--n-pseudo-inputs", "0"], ["--n-pseudo-inputs", "2.5"],
                                  ["--prior", "gauss"]])
def test_cli_bad_values_are_argparses_error(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", *argv, "--out", "nowhere"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("npvae train: error: argument " + argv[0])


def test_benchmark_resumes_exactly(tmp_path, monkeypatch):
    """benchmarks.vampprior --run-dir: a run interrupted after its first epoch and started
    again with the same command ends with the same parameters, bit for bit, as one that
    was not interrupted (the rate's decay spans --epochs, so the settings must match)."""
    from benchmarks import vampprior
    rng = np.random.default_rng(0)
    pixels = (rng.random((120, 12)) * 255).astype(np.uint8)
    fake = types.SimpleNamespace(x_train=pixels, n_features=12,
                                 as_float=lambda split, dtype: (pixels[:20] > 127).astype(dtype))
    monkeypatch.setattr(vampprior, "load_dataset", lambda *a, **k: fake)
    monkeypatch.setattr(vampprior, "plot_samples", lambda *a, **k: None)
    common = ["--models", "vae-vamp", "--epochs", "3", "--pseudo-inputs", "4", "--n-test", "20",
              "--k-eval", "3", "--threads", "1", "--out", str(tmp_path / "out.json"),
              "--figure-dir", str(tmp_path)]
    vampprior.main(common + ["--run-dir", str(tmp_path / "a")])
    real = vampprior.train

    def interrupted(m, x, *, epochs, **kw):      # stops after one epoch, as a killed run
        return real(m, x, epochs=min(epochs, 1), **kw)
    monkeypatch.setattr(vampprior, "train", interrupted)
    vampprior.main(common + ["--run-dir", str(tmp_path / "b")])
    assert npvae.load(tmp_path / "b" / "vae-vamp" / "checkpoint.npz").n_iter_ == 1
    asked = []

    def recorded(m, x, *, epochs, **kw):
        asked.append((m.n_iter_, epochs))
        return real(m, x, epochs=epochs, **kw)
    monkeypatch.setattr(vampprior, "train", recorded)
    vampprior.main(common + ["--run-dir", str(tmp_path / "b")])
    assert asked == [(1, 2)]                     # went on from epoch 1, did not start again
    a = npvae.load(tmp_path / "a" / "vae-vamp" / "checkpoint.npz")
    b = npvae.load(tmp_path / "b" / "vae-vamp" / "checkpoint.npz")
    assert a.n_iter_ == b.n_iter_ == 3
    np.testing.assert_array_equal(a.flat_params_, b.flat_params_)
    with pytest.raises(SystemExit, match="epochs=3"):          # other settings: refused
        vampprior.main(common[:3] + ["4"] + common[4:] + ["--run-dir", str(tmp_path / "b")])
