"""The thread policy (npvae/threads.py): it times the step, keeps the fastest count,
tries again when steps get slower or after a while, and never changes a result of
npvae's own kernels."""
import numpy as np
import pytest

import npvae
from npvae import threads
from npvae.threads import ThreadPolicy, candidates


class FakeMachine:
    """A step whose seconds per example depend on the thread count in force."""

    def __init__(self, per_example):
        self.per_example = dict(per_example)   # threads -> seconds per example
        self.now = 0.0
        self.applied = []

    def apply(self, n):
        self.applied.append(n)

    def steps(self, policy, n, batch=100):
        for _ in range(n):
            seconds = self.per_example[policy.threads] * batch
            self.now += seconds
            policy.observe(batch, seconds)


def make(per_example, max_threads=2, **kw):
    m = FakeMachine(per_example)
    p = ThreadPolicy(max_threads, apply=m.apply, **kw)
    p.start("step")
    return m, p


def test_candidates():
    assert candidates(1) == [1]
    assert candidates(2) == [1, 2]
    assert candidates(6) == [1, 2, 4, 6]
    assert candidates(16) == [1, 2, 4, 8, 16]


def test_chooses_the_fastest_count_and_reports_it():
    m, p = make({1: 1e-4, 2: 4e-4})           # a busy core: two threads 4x slower
    m.steps(p, 200)
    assert p.threads == 1
    (change,) = p.changes
    assert change["to"] == 1 and change["reason"] == "start"
    assert change["examples_per_second"][1] == pytest.approx(1e4)
    assert "threads 1 (timed: 1 -> 10,000 ex/s, 2 -> 2,500 ex/s)" == threads.describe(change)
    m2, p2 = make({1: 2e-4, 2: 1e-4})         # quiet: two threads twice as fast
    m2.steps(p2, 200)
    assert p2.threads == 2


def test_fewer_threads_when_nearly_as_fast():
    m, p = make({1: 1.00e-4, 2: 0.99e-4})
    m.steps(p, 200)
    assert p.threads == 1


def test_tries_again_when_steps_get_slower():
    m, p = make({1: 2e-4, 2: 1e-4}, recheck_seconds=1e9)
    m.steps(p, 100)
    assert p.threads == 2
    p.changes.clear()
    m.per_example[2] = 8e-4                  # another program takes a core
    m.steps(p, 300)
    assert p.threads == 1
    assert [c["reason"] for c in p.changes] == ["slower"]


def test_rechecks_after_a_while_and_takes_back_freed_cores():
    m, p = make({1: 1e-4, 2: 4e-4}, recheck_seconds=5.0)
    m.steps(p, 100)
    assert p.threads == 1
    m.per_example[2] = 0.5e-4                # the other program ended
    m.steps(p, 2000)
    assert p.threads == 2
    assert p.changes[-1]["reason"] == "recheck"


def test_one_core_means_no_trial():
    m, p = make({1: 1e-4}, max_threads=1)
    m.steps(p, 50)
    assert p.threads == 1 and m.applied == [1]


def test_trials_cost_little():
    """With two threads four times slower, the time lost to trials in a long run is
    a small fraction of it (the module docstring says about 1%)."""
    m, p = make({1: 1e-4, 2: 4e-4})
    m.steps(p, 30000)                         # 300 s of steps at one thread
    ideal = 30000 * 100 * 1e-4
    assert m.now / ideal < 1.02


def test_set_num_threads_auto_and_forced():
    try:
        npvae.set_num_threads(1)
        assert npvae.backend.get_num_threads() == 1
        assert threads.training_policy() is None     # forced: the policy stays out
        npvae.set_num_threads("auto")
        assert npvae.backend.get_num_threads() is None
        assert isinstance(threads.training_policy(), ThreadPolicy)
        with pytest.raises(ValueError, match="'auto'"):
            npvae.set_num_threads("all")
    finally:
        npvae.set_num_threads("auto")


def test_training_records_the_threads_in_force(monkeypatch):
    monkeypatch.setattr(threads, "_POLICY", [ThreadPolicy(trial_seconds=0.0)])
    X = (np.random.default_rng(0).random((300, 20)) < 0.3).astype(float)
    m = npvae.VAE(n_latent=2, hidden_sizes=(8,), random_state=0).fit(X, epochs=2,
                                                                     batch_size=50)
    assert all(h["threads"] in candidates(threads.usable_cores()) for h in m.history_)
    assert "thread_changes" in m.history_[0]


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_parallel_bias_gradient_is_the_same_at_any_thread_count(activation):
    """The compiled bias + activation backward sums db over blocks fixed by the shape:
    bit-identical at 1 and 2 threads (it summed one block per thread before)."""
    numba = pytest.importorskip("numba")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one Numba thread only")
    from npvae.layers import activations_numba as A

    rng = np.random.default_rng(1)
    a = rng.standard_normal((1000, 300)).astype(np.float32)     # above the parallel size
    dh = rng.standard_normal(a.shape).astype(np.float32)
    assert A._parallel(a.size)
    out = []
    before = numba.get_num_threads()
    try:
        for n in (1, 2):
            numba.set_num_threads(n)
            h, cache = A.bias_activation_forward(a.copy(), np.zeros(300, np.float32),
                                                 activation)
            out.append(A.bias_activation_backward(dh, cache))
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(out[0][0], out[1][0])
    assert np.array_equal(out[0][1], out[1][1])


def test_a_pause_between_training_calls_brings_no_trial():
    """partial_fit in a loop with other work between the calls: rechecks count seconds
    of steps, so a new call goes on with the last choice."""
    m, p = make({1: 1e-4, 2: 4e-4})
    m.steps(p, 100)
    assert p.threads == 1
    applied = len(m.applied)
    m.now += 3600.0                           # an hour elsewhere
    p.start("step")
    m.steps(p, 5)
    assert len(m.applied) == applied and not p._queue


def test_log_likelihood_chunks_are_timed_by_the_policy(monkeypatch):
    """A long evaluation is a run of the policy too: its chunks are observed, and the
    estimate does not depend on the thread count chosen."""
    seen = []

    class Spy(ThreadPolicy):
        def observe(self, examples, seconds):
            seen.append(examples)
            super().observe(examples, seconds)

    monkeypatch.setattr(threads, "_POLICY", [Spy(trial_seconds=0.0)])
    X = (np.random.default_rng(0).random((40, 12)) < 0.3).astype(float)
    m = npvae.VAE(n_latent=2, hidden_sizes=(8,), random_state=0, epochs=1).fit(X)
    seen.clear()
    ll = m.log_likelihood(X, n_importance=50, random_state=0, max_rows=200)
    assert seen and sum(seen) == 40 * 50
    npvae.set_num_threads(1)
    try:
        assert np.array_equal(ll, m.log_likelihood(X, n_importance=50, random_state=0,
                                                   max_rows=200))
    finally:
        npvae.set_num_threads("auto")
