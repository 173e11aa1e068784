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
