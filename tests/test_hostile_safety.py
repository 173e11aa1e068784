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
from hypothesis import example, given, settings, strategies as st

import npvae
from npvae._exclusive import LOCK
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
# the hierarchical VAE's top-down prior overflowed outside np.errstate (a RuntimeWarning
# from npvae, an error under setup.cfg's filter); found by a replayed example, kept here
@example(kind="hvae", likelihood="bernoulli", dtype="float32", value=3e38)
def test_huge_parameters_loaded_from_a_checkpoint_never_sample_nan(tmp_path_factory, kind,
                                                                   likelihood, dtype, value):
    """Checkpoints whose parameters were all 1e20 or 3e38 loaded and sampled NaN."""
    m = tiny(kind, likelihood, dtype).initialize(3)
    with np.errstate(over="ignore"):                # 1e150 as float32 is inf, on purpose
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


# ------------------------------------------------ item 2: the loader trusts no size
import io          # noqa: E402
import json        # noqa: E402
import zipfile     # noqa: E402

from npvae.models.base import BaseVAE   # noqa: E402


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    X = (np.random.default_rng(0).random((20, 5)) > 0.5).astype(float)
    m = npvae.VAE(n_latent=2, hidden_sizes=(4,), random_state=0).fit(X, epochs=1)
    path = tmp_path_factory.mktemp("ckpt") / "c.npz"
    npvae.save(m, path)
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def write(tmp_path, arrays, name="c.npz"):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


big = st.integers(10 ** 5, 2 ** 40)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(setting=st.sampled_from(["hidden_sizes", "n_latent", "n_features_in", "n_levels"]),
       value=big)
def test_declared_sizes_are_checked_against_the_stored_arrays_before_allocating(
        tmp_path_factory, saved, setting, value):
    """hidden_sizes [2000000] in a 41 KB file allocated 2.1 GB before the layout check;
    n_features_in 2**40 or n_levels 3e6 ended in MemoryError."""
    arrays = dict(saved)
    params = json.loads(str(arrays["model_params"]))
    if setting == "n_features_in":
        arrays["n_features_in"] = np.array(value)
    elif setting == "n_levels":
        params.update(likelihood="categorical", likelihood_params={"n_levels": value})
    else:
        params[setting] = [value] if setting == "hidden_sizes" else value
    arrays["model_params"] = np.array(json.dumps(params))
    path = write(tmp_path_factory.mktemp("c"), arrays)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(BaseVAE, "initialize", lambda self, n: pytest.fail("allocated first"))
        with pytest.raises(CheckpointError) as info:
            npvae.load(path)
    assert "\n" not in str(info.value)


def bytes_read(monkeypatch):
    """A counter of the bytes read from archive members."""
    count = [0]
    read = zipfile.ZipExtFile.read

    def counting(self, n=-1):
        out = read(self, n)
        count[0] += len(out)
        return out
    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting)
    return count


def test_an_unknown_member_is_refused_before_it_is_decompressed(tmp_path, saved, monkeypatch):
    """Every member was decompressed, known or not (a deflated 1 GiB extra cost 1 GiB)."""
    path = tmp_path / "c.npz"
    np.savez(path, **saved)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z:
        buf = io.BytesIO()
        np.save(buf, np.zeros(8 * 2 ** 20, np.uint8))          # 8 MiB, deflated to ~8 KB
        z.writestr("extra.npy", buf.getvalue())
    count = bytes_read(monkeypatch)
    with pytest.raises(CheckpointError, match="unknown member 'extra.npy'"):
        npvae.load(path)
    assert count[0] < 2 ** 20, f"{count[0]:,} bytes decompressed"


def test_a_known_member_declaring_absurd_text_is_refused_unread(tmp_path, saved, monkeypatch):
    path = write(tmp_path, saved)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<U300000000", "fortran_order": False,
                                                  "shape": ()})
    arrays = {k: v for k, v in saved.items() if k != "history"}
    np.savez(path, **arrays)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("history.npy", np.lib.format.magic(1, 0) + header.getvalue()[8:] + b"x" * 100)
    count = bytes_read(monkeypatch)
    with pytest.raises(CheckpointError, match="member 'history' declares 1,200,000,000 bytes"):
        npvae.load(path)
    assert count[0] < 2 ** 20


def test_a_single_npy_file_is_named_as_such(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(CheckpointError, match="a single .npy array, not an .npz archive"):
        npvae.load(tmp_path / "a.npy")


def test_a_pickled_member_is_called_pickled(tmp_path, saved):
    """It was refused as 'not an .npz archive'."""
    path = write(tmp_path, {**saved, "history": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(CheckpointError, match="member 'history' holds pickled"):
        npvae.load(path)


# ------------------------------------------- item 4: one estimator, one thread
import copy        # noqa: E402
import pickle      # noqa: E402
import threading   # noqa: E402


@pytest.mark.parametrize("second", ["fit", "partial_fit", "train", "transform",
                                    "loss_and_grads"])
def test_a_second_thread_is_refused_while_one_fits(second):
    """Two threads fitting one estimator: no error, parameters mixed from both fits."""
    X = (np.random.default_rng(0).random((16, 5)) > 0.5).astype(float)
    inside, release = threading.Event(), threading.Event()

    def transform(xb, rng):                 # holds the first thread inside fit
        inside.set()
        assert release.wait(60)
        return xb
    m = npvae.VAE(n_latent=2, hidden_sizes=(4,), random_state=0, batch_size=16)
    m.fit(X, epochs=1)
    alone = npvae.VAE(n_latent=2, hidden_sizes=(4,), random_state=0, batch_size=16)
    alone.fit(X, epochs=2, batch_transform=lambda xb, rng: xb)
    errors = []
    first = threading.Thread(target=lambda: m.fit(X, epochs=2, batch_transform=transform))
    first.start()
    try:
        assert inside.wait(60)
        calls = {"fit": lambda: m.fit(X, epochs=1), "partial_fit": lambda: m.partial_fit(X),
                 "train": lambda: train(m, X, epochs=1), "transform": lambda: m.transform(X),
                 "loss_and_grads": lambda: m.loss_and_grads(X, m.draw_noise(16, 1, 0))}
        with pytest.raises(RuntimeError, match="being changed .* in another thread") as info:
            calls[second]()
        errors.append(str(info.value))
    finally:
        release.set()
        first.join(60)
    assert "\n" not in errors[0]
    np.testing.assert_array_equal(m.flat_params_, alone.flat_params_)
    m.fit(X, epochs=1)                       # the lock is free again


def test_the_lock_travels_neither_in_pickles_nor_in_copies():
    X = (np.random.default_rng(0).random((16, 5)) > 0.5).astype(float)
    m = npvae.VAE(n_latent=2, hidden_sizes=(4,), random_state=0).fit(X, epochs=1)
    for other in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        assert LOCK not in vars(other)
        other.fit(X, epochs=1)


NEWER = {
    "vae": dict(),
    "vamp": dict(prior="vamp", prior_params={"n_pseudo_inputs": 3}),
    "planar": dict(posterior="planar"),
    "iaf": dict(posterior="iaf"),
    "full": dict(posterior="full"),
}


@pytest.mark.parametrize("value", [3e38, -3e38, 1e20, -1e20])
@pytest.mark.parametrize("kind", list(NEWER) + ["hvae-vamp", "ladder"])
def test_huge_parameters_give_finite_answers_or_one_line_errors_everywhere(kind, value):
    """``transform``, ``sample`` and ``decode`` with every parameter at ``value``: finite,
    or a one-line ``ValueError`` — never NaN, inf or a RuntimeWarning from npvae (an error
    under setup.cfg's filter).  ``transform`` overflowed unguarded in every model's encoder,
    and the VampPrior's pseudo-input encoder and the flows' means with it."""
    if kind == "ladder":
        m = npvae.LadderVAE(latent_sizes=(2, 2), hidden_sizes=((4,), (4,)), dtype="float32",
                            random_state=0)
    elif kind == "hvae-vamp":
        m = npvae.HierarchicalVAE(latent_sizes=(2, 2), hidden_sizes=((4,), (4,)), prior="vamp",
                                  prior_params={"n_pseudo_inputs": 3}, dtype="float32",
                                  random_state=0)
    else:
        m = npvae.VAE(n_latent=2, hidden_sizes=(4,), dtype="float32", random_state=0,
                      **NEWER[kind])
    m.initialize(6)
    m.flat_params_[...] = np.float32(value)
    x = (np.random.default_rng(0).random((5, 6)) < 0.5).astype(float)
    for call in (lambda: m.transform(x), lambda: m.sample(4, random_state=0),
                 lambda: m.decode(np.ones((3, 2)))):
        try:
            out = call()
        except ValueError as exc:       # (a negative running variance: "damaged")
            assert ("not finite" in str(exc) or "damaged" in str(exc)) and "\n" not in str(exc)
        else:
            assert np.all(np.isfinite(out))
