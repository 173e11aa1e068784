"""scikit-learn's estimator contract, and copies of fitted models that keep working.

``check_estimator`` runs in full for the VAE (Gaussian likelihood) and the
hierarchical VAE; pickle, deepcopy, clone and set_params round trips leave models
that train, score and save as the original; the boundary refuses what would
otherwise reach the compiled kernels with the wrong shapes."""
from __future__ import annotations

import copy
import pickle

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

import npvae

SMALL = dict(likelihood="gaussian", epochs=2, batch_size=10, random_state=0)


with warnings.catch_warnings():
    # npvae's models follow the estimator protocol without inheriting BaseEstimator
    # (npvae/models/sklearn_api.py says why); scikit-learn warns about it when collecting
    warnings.filterwarnings("ignore", message="Estimator .* does not inherit")
    _CHECKS = parametrize_with_checks([
        npvae.VAE(n_latent=2, hidden_sizes=(4,), **SMALL),
        npvae.HierarchicalVAE(latent_sizes=(2, 2), hidden_sizes=(4,), **SMALL),
        npvae.LadderVAE(latent_sizes=(2, 2), hidden_sizes=(4,), **SMALL)])


@_CHECKS
def test_sklearn_check_estimator(estimator, check):
    check(estimator)


@pytest.fixture
def fitted():
    X = np.random.default_rng(0).standard_normal((60, 5))
    return npvae.VAE(n_latent=2, hidden_sizes=(4,), **SMALL).fit(X), X


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_copy_trains_scores_and_saves_itself(fitted, how, tmp_path):
    m, X = fitted
    c = pickle.loads(pickle.dumps(m)) if how == "pickle" else copy.deepcopy(m)
    np.testing.assert_array_equal(c.transform(X), m.transform(X))
    for name, view in c.params_.items():
        assert np.shares_memory(view, c.flat_params_), name
        assert not np.shares_memory(view, m.flat_params_), name
    before = m.flat_params_.copy()
    c.partial_fit(X)
    assert not np.array_equal(c.flat_params_, before)           # the copy trained
    np.testing.assert_array_equal(m.flat_params_, before)       # the original did not
    assert c.score(X) != m.score(X)
    loaded = npvae.load(npvae.save(c, tmp_path / "c.npz"))
    np.testing.assert_array_equal(loaded.transform(X), c.transform(X))


def test_params_cannot_be_rebound_but_change_in_place(fitted):
    m, X = fitted
    with pytest.raises(TypeError, match=r"\[\.\.\.\]"):
        m.params_["dec_out_b"] = np.zeros(5)
    before = m.transform(X)
    m.params_["enc_mu_b"][...] += 1.0
    np.testing.assert_allclose(m.transform(X), before + 1.0)


def test_architecture_changed_by_set_params_is_refused(fitted, tmp_path):
    m, X = fitted
    m.set_params(n_latent=5)
    for call in (lambda: m.score(X), lambda: m.transform(X),
                 lambda: m.loss_and_grads(X, np.zeros((1, 60, 5))),
                 lambda: npvae.save(m, tmp_path / "x.npz")):
        with pytest.raises(ValueError, match="no longer match"):
            call()
    m.set_params(n_latent=2)                                   # back: works again
    assert np.isfinite(m.score(X))
    m.set_params(dtype="float32")
    with pytest.raises(ValueError, match="no longer match"):
        m.transform(X)


def test_noise_of_the_wrong_shape_is_refused_even_unchecked(fitted):
    m, X = fitted
    with pytest.raises(ValueError, match="eps must have shape"):
        m.loss_and_grads(X, np.zeros((1, 60, 3)), check_input=False)


def test_unfitted_is_not_fitted_error():
    with pytest.raises(NotFittedError):
        npvae.VAE().transform(np.zeros((2, 3)))


def test_score_is_deterministic_and_per_example(fitted):
    m, X = fitted
    s = m.score_samples(X)
    np.testing.assert_array_equal(s, m.score_samples(X))
    np.testing.assert_array_equal(m.score_samples(X[::-1]), s[::-1])
    np.testing.assert_array_equal(m.score_samples(X[:7]), s[:7])
    assert not np.array_equal(m.score_samples(X, random_state=1), s)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_outputs_keep_the_model_dtype(dtype):
    X = np.random.default_rng(0).standard_normal((20, 5))
    m = npvae.VAE(n_latent=2, hidden_sizes=(4,), **dict(SMALL, epochs=1), dtype=dtype).fit(X)
    for out in (m.transform(X), m.score_samples(X), m.log_likelihood(X, n_importance=7),
                m.sample(3), m.reconstruct(X)):
        assert out.dtype == np.dtype(dtype)
    assert m.loss_and_grads(X, m.draw_noise(20))[1]["enc_mu_W"].dtype == np.dtype(dtype)


def test_clone_keeps_settings_not_parameters(fitted):
    m, _ = fitted
    c = clone(m)
    assert c.get_params() == m.get_params() and not hasattr(c, "params_")


def test_set_output_pandas(fitted):
    pd = pytest.importorskip("pandas")
    m, X = fitted
    out = m.set_output(transform="pandas").transform(X)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == ["vae0", "vae1"]
    m.set_output(transform="default")


def test_global_transform_output_and_its_override(fitted):
    pd = pytest.importorskip("pandas")
    import sklearn

    m, X = fitted
    with sklearn.config_context(transform_output="pandas"):
        out = m.transform(X)
        assert isinstance(out, pd.DataFrame) and list(out.columns) == ["vae0", "vae1"]
        assert isinstance(m.set_output(transform="default").transform(X), np.ndarray)
    df = pd.DataFrame(X, index=np.arange(100, 160))
    assert list(m.set_output(transform="pandas").transform(df).index) == list(range(100, 160))


def test_hierarchical_feature_names_and_pandas_output():
    pd = pytest.importorskip("pandas")
    X = np.random.default_rng(0).standard_normal((60, 5))
    m = npvae.HierarchicalVAE(latent_sizes=(2, 3), hidden_sizes=(4,), **SMALL).fit(X)
    names = ["hierarchicalvae0", "hierarchicalvae1", "hierarchicalvae2", "hierarchicalvae3",
             "hierarchicalvae4"]
    assert list(m.get_feature_names_out()) == names
    out = m.set_output(transform="pandas").transform(X)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == names and out.shape == (60, 5)


def test_set_output_and_feature_names_refuse_with_one_line(fitted):
    m, _ = fitted
    with pytest.raises(ValueError, match="one of"):
        m.set_output(transform="arrow")
    assert list(m.get_feature_names_out(list("abcde"))) == ["vae0", "vae1"]
    with pytest.raises(ValueError, match="length"):
        m.get_feature_names_out(["a"])
    with pytest.raises(NotFittedError):
        npvae.VAE().get_feature_names_out()


@pytest.mark.parametrize("bad, match", [
    (np.ones((3, 5), dtype=complex), "Complex"),
    (np.full((3, 5), 1e39), "float32"),
    (np.array([["a"] * 5] * 3), "numeric"),
])
def test_inputs_refused_with_one_line(bad, match):
    X = np.random.default_rng(0).standard_normal((20, 5))
    m = npvae.VAE(n_latent=2, hidden_sizes=(4,), **dict(SMALL, epochs=1), dtype="float32").fit(X)
    with pytest.raises(ValueError, match=match) as info:
        m.score(bad)
    assert "\n" not in str(info.value)


def test_sparse_input_says_sparse():
    sparse = pytest.importorskip("scipy.sparse")
    m = npvae.VAE(n_latent=2, hidden_sizes=(4,), **dict(SMALL, epochs=1))
    with pytest.raises(ValueError, match="sparse"):
        m.fit(sparse.random(20, 5, density=0.5, format="csr"))


def test_evaluation_noise_is_per_example_and_independent():
    from npvae.objectives import example_keyed_noise
    X = np.random.default_rng(0).standard_normal((400, 5))
    X[1] = X[0]
    eps, = example_keyed_noise(X, [3], 2, np.float64)
    assert eps.shape == (2, 400, 3)
    np.testing.assert_array_equal(eps[:, 0], eps[:, 1])          # same example, same noise
    flat = eps[:, 2:].reshape(-1)
    assert abs(flat.mean()) < 0.1 and abs(flat.std() - 1) < 0.1  # standard normal
    corr = np.corrcoef(eps[0, 2:, 0], eps[0, 3:, 0].tolist() + [0.0])[0, 1]
    assert abs(corr) < 0.15                                       # neighbours independent
    np.testing.assert_array_equal(example_keyed_noise(X[::-1], [3], 2, np.float64)[0],
                                  eps[:, ::-1])                   # order does not matter


# ------------------------------------------------ the protocol without BaseEstimator
def test_training_and_scoring_do_not_import_sklearn():
    """The reason npvae/models/sklearn_api.py exists: ~90 MiB and a second of start-up."""
    import subprocess
    import sys

    code = ("import sys, numpy as np, npvae\n"
            "X = np.random.default_rng(0).standard_normal((40, 5))\n"
            "m = npvae.VAE(n_latent=2, hidden_sizes=(4,), likelihood='gaussian', epochs=1)\n"
            "m.fit(X).score_samples(X); m.transform(X); repr(m)\n"
            "m.set_params(beta=0.5).fit(X)\n"
            "print(sorted(k for k in sys.modules if k.split('.')[0] in ('sklearn', 'pandas')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1]
    assert out == "[]", out
    with pytest.raises(NotFittedError, match="no parameters yet"):      # scikit-learn's own
        npvae.VAE().transform(np.zeros((2, 3)))


def test_repr_set_params_and_errors():
    m = npvae.VAE(n_latent=3, hidden_sizes=(8,), learning_rate=0.01)
    assert repr(m) == "VAE(hidden_sizes=(8,), learning_rate=0.01, n_latent=3)"
    assert repr(npvae.VAE()) == "VAE()"
    assert m.set_params(beta=0.5) is m and m.beta == 0.5
    with pytest.raises(ValueError, match="Invalid parameter 'nope' for estimator"):
        m.set_params(nope=1)
    assert clone(m).get_params() == m.get_params()


def test_feature_count_checked_without_sklearn(fitted):
    m, X = fitted
    assert m.n_features_in_ == 5 and not hasattr(m, "feature_names_in_")
    with pytest.raises(ValueError, match="X has 4 features, but VAE is expecting 5"):
        m.transform(X[:, :4])
    assert m.transform(X.tolist()).shape == (60, 2)          # lists as arrays


def test_data_frames_feature_names_and_pandas_output(fitted):
    pd = pytest.importorskip("pandas")
    _, X = fitted
    df = pd.DataFrame(X, columns=list("abcde"))
    m = npvae.VAE(n_latent=2, hidden_sizes=(4,), **SMALL).fit(df)
    assert list(m.feature_names_in_) == list("abcde")
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        m.transform(X)                                       # fitted with names, given none
    with pytest.raises(ValueError, match="feature names"):
        m.transform(df.rename(columns={"a": "z"}))
    out = m.set_output(transform="pandas").transform(df)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == ["vae0", "vae1"]
    np.testing.assert_array_equal(out.to_numpy(), m.set_output(transform="default").transform(df))
    m.fit(X)                                                 # refit on an array: names gone
    assert not hasattr(m, "feature_names_in_")
    assert list(m.get_feature_names_out()) == ["vae0", "vae1"]


def test_pipeline_and_grid_search():
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.random.default_rng(1).standard_normal((60, 5))
    pipe = make_pipeline(StandardScaler(), npvae.VAE(n_latent=2, hidden_sizes=(4,), **SMALL))
    assert pipe.fit_transform(X).shape == (60, 2)
    search = GridSearchCV(npvae.VAE(n_latent=2, hidden_sizes=(4,), **SMALL),
                          {"beta": [0.5, 1.0]}, cv=2).fit(X)
    assert search.best_params_["beta"] in (0.5, 1.0)
