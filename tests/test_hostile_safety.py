"""Issue 31, memory safety and silent wrong results: data that no flag or callback may
carry into a kernel unchecked, checkpoints and sizes that must be refused before
anything large is allocated or decompressed, concurrent use of one estimator, and
non-finite outputs.

Cases that could crash the interpreter (a native out-of-bounds read) run in the
subprocess worker of tests/test_hostile.py (tests/_hostile_worker.py), so that a
signal fails the test and names the case instead of ending the run.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import npvae
from npvae.checkpoint import CheckpointError
from npvae.training import train
from test_hostile import Worker

LEVEL_SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    yield w
    w.close()


def refused(answer, case, words):
    assert answer.get("error") == "ValueError", f"not refused: {answer} on case {case}"
    assert words in answer["message"] and "\n" not in answer["message"], answer


# ------------------------------------------------------------ item 1: the kernels
bad_levels = st.lists(st.one_of(st.integers(-2 ** 40, -1), st.integers(4, 2 ** 40),
                                st.sampled_from([-1, 4, 5, 2 ** 31, -2 ** 31, 10 ** 8])),
                      min_size=1, max_size=3)


@LEVEL_SETTINGS
@given(bad=bad_levels, model=st.sampled_from(["vae", "hvae", "cvae"]),
       backend=st.sampled_from(["numba", "numpy"]))
def test_out_of_range_levels_never_reach_the_categorical_kernel(worker, bad, model, backend):
    """``loss_and_grads(check_input=False)`` used to read out of bounds (SIGSEGV for
    levels like 10**8; a silent wrong result for -1, which NumPy wraps around)."""
    case = {"op": "levels", "how": "loss_and_grads", "model": model, "V": 4, "bad": bad,
            "backend": backend}
    refused(worker.ask(case), case, "outside [0, n_levels)")


@pytest.mark.parametrize("how", ["fit", "train"])
@pytest.mark.parametrize("model", ["vae", "hvae", "cvae"])
def test_a_batch_transform_going_out_of_range_after_a_clean_batch_is_refused(worker, how,
                                                                              model):
    """The first batch was checked, later ones were not: a level of 10**8 then crashed."""
    case = {"op": "levels", "how": how, "model": model, "V": 4, "bad": [10 ** 8, -7]}
    refused(worker.ask(case), case, "the transformed batch 2 of epoch")


@pytest.mark.parametrize("how", ["fit", "train"])
def test_a_batch_transform_that_stops_binarising_is_refused(how):
    """A Bernoulli model trained silently on grey levels after the first batch."""
    X = (np.random.default_rng(0).random((12, 5)) > 0.5).astype(float)
    calls = []

    def transform(xb, rng):
        calls.append(1)
        return xb if len(calls) <= 2 else xb * 0.5
    m = npvae.VAE(n_latent=2, hidden_sizes=(4,), random_state=0, batch_size=4)
    with pytest.raises(ValueError, match="the transformed batch 2 of epoch [12] is not binary"):
        if how == "fit":
            m.fit(X, epochs=2, batch_transform=transform)
        else:
            m.fit(X, epochs=1)
            calls.append(1)
            train(m, X, epochs=1, batch_size=4, batch_transform=transform)


# ------------------------------------------------ item 5: outputs never NaN or inf
def tiny(kind, likelihood="bernoulli", dtype="float32"):
    kw = dict(hidden_sizes=(4,), likelihood=likelihood, dtype=dtype, random_state=0,
              likelihood_params={"n_levels": 4} if likelihood == "categorical" else None)
    if kind == "hvae":
        return npvae.HierarchicalVAE(latent_sizes=(2, 2), **kw)
    if kind == "cvae":
        return npvae.ConditionalVAE(n_latent=2, classes=[0, 1], **kw)
    return npvae.VAE(n_latent=2, **kw)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(kind=st.sampled_from(["vae", "hvae", "cvae"]),
       likelihood=st.sampled_from(["bernoulli", "gaussian", "categorical", "beta"]),
       dtype=st.sampled_from(["float32", "float64"]),
       value=st.sampled_from([0.0, 1e20, -1e20, 3e38, -3e38, 1e150, 1e300]))
def test_huge_parameters_loaded_from_a_checkpoint_never_sample_nan(tmp_path_factory, kind,
                                                                   likelihood, dtype, value):
    """Checkpoints whose parameters were all 1e20 or 3e38 loaded and sampled NaN."""
    m = tiny(kind, likelihood, dtype).initialize(3)
    m.flat_params_[...] = np.asarray(value).astype(dtype)
    path = tmp_path_factory.mktemp("c") / "c.npz"
    npvae.save(m, path)
    try:
        m = npvae.load(path)
    except CheckpointError as exc:                  # inf once stored as float32
        assert "not all finite" in str(exc)
        return
    calls = [lambda: m.sample(4, random_state=0) if kind != "cvae" else m.sample(4, 1, 0),
             lambda: m.decode(np.ones((3, 2))) if kind != "cvae" else m.decode(np.ones((3, 2)),
                                                                                1)]
    for call in calls:
        try:
            out = call()
        except ValueError as exc:
            assert "not finite" in str(exc) and "\n" not in str(exc)
        else:
            assert np.all(np.isfinite(out))


@pytest.mark.parametrize("kind", ["vae", "hvae", "cvae"])
def test_decode_refuses_latents_beyond_float32(kind):
    m = tiny(kind).initialize(3)
    Z = np.full((2, 2), 1e39)
    with pytest.raises(ValueError, match="Z contains NaN or inf once converted to float32"):
        m.decode(Z) if kind != "cvae" else m.decode(Z, 0)


# ----------------------------------------------------- item 6: masked arrays
@pytest.mark.parametrize("method", ["fit", "transform", "score", "partial_fit"])
def test_a_masked_array_is_refused(method):
    X = (np.random.default_rng(0).random((8, 3)) > 0.5).astype(float)
    Xm = np.ma.masked_array(X, mask=np.eye(8, 3, dtype=bool))
    m = npvae.VAE(n_latent=2, hidden_sizes=(4,), random_state=0, epochs=1)
    if method in ("transform", "score"):
        m.fit(X)
    with pytest.raises(ValueError, match="X is a masked array"):
        getattr(m, method)(Xm)


# ----------------------------------------------------- item 3: absurd sizes
SIZES = [({"params": {"hidden_sizes": (10 ** 9,)}}, "parameters"),
         ({"params": {"n_latent": 10 ** 9}}, "parameters"),
         ({"n_features": 2 ** 40}, "parameters"),
         ({"params": {"likelihood": "categorical", "likelihood_params": {"n_levels": 2 ** 40}}},
          "parameters"),
         ({"params": {"likelihood": "categorical", "likelihood_params": {"n_levels": 3 * 10 ** 6},
                      "hidden_sizes": (400,)}, "n_features": 784}, "parameters"),
         ({"sample": 10 ** 10}, "sample(10,000,000,000)")]


@pytest.mark.parametrize("model", ["vae", "hvae"])
@pytest.mark.parametrize("case, words", SIZES)
def test_sizes_that_cannot_fit_in_memory_are_refused_before_allocating(worker, model, case,
                                                                       words):
    """They ended in MemoryError tracebacks (or allocations the system kills)."""
    case = {"op": "sizes", "model": model, **case}
    if model == "hvae" and "n_latent" in case.get("params", {}):
        case["params"] = {"latent_sizes": (10 ** 9, 2)}
    answer = worker.ask(case)
    refused(answer, case, words)
    assert "more than this machine's memory" in answer["message"]
