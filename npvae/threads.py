"""How many threads a training step uses: measured while training, never assumed.

A training step runs on two thread pools, OpenBLAS's (the matrix products) and
Numba's OpenMP (the ``prange`` kernels).  Both split a parallel region into
one piece per thread and wait at its end for the slowest piece.  On an idle
machine that is the fastest way to run a step; on a machine where another
program holds a core, the piece of a thread that is not running holds every
other thread at the barrier, several times per step.  Measured on a 2-core
AMD EPYC with one core kept busy by a spinning process (issue 26): two threads
ran a batch-16 epoch at 0.23x the speed of one thread.

So npvae does not trust the core count.  :class:`ThreadPolicy` times the step
itself: it tries each candidate thread count (1, 2, 4, ... up to the cores
this process may use) for a short trial, keeps the fastest, watches the
step's time per example, and tries again when it gets slower than the chosen
count's trial by ``slow_factor`` (another program started), and after 2, 4,
8, ... seconds while its choice holds, then every ``recheck_seconds`` (one
stopped, or a passing disturbance misled the last trial).  A trial costs a
fraction of a second; with two candidates, one of them four times slower,
the trials of a five-minute run cost under 2% of it (a test holds that).

What a change of thread count changes: nothing in npvae's own kernels (the
parallel bias gradient sums blocks of rows fixed by the shape,
``npvae.layers.activations_numba``), and nothing in float64 products on the
development machine; but OpenBLAS blocks the shared dimension of a float32
product differently when it runs threaded, so float32 results at 1 and 2
threads differ in their last bits (up to 7e-5 in a 784x400 product).  A float32
run whose thread count the policy changed is therefore not repeatable to the
bit: give ``--threads N`` (``npvae.set_num_threads(n)``) when it must be, as
the long benchmark runs do.  (npvae's own tiled products on a caller-runs pool
would have made every count give the same bits; they were measured and dropped:
see docs/11-optimisation.md#threads, as was a second caller-runs pool that shared
out whole products and their row blocks: slower than OpenBLAS's two threads when
quiet, slower than one thread with a core busy).

``npvae.set_num_threads(n)`` or ``--threads N`` force a count; the policy
then stays out of the way.
"""
from __future__ import annotations

import functools
import math
import os
import time

#: the default trial length per candidate (seconds of steps), the time between
#: rechecks while nothing changes, and the slow-down that triggers a new trial
TRIAL_SECONDS = 0.25
RECHECK_SECONDS = 30.0
#: the first recheck after a trial chose a new count comes this soon; the interval
#: doubles while the choice holds, up to ``recheck_seconds`` (a trial that a passing
#: disturbance misled is corrected within seconds, a steady choice costs little)
FIRST_RECHECK_SECONDS = 2.0
SLOW_FACTOR = 1.3
#: a window of steps between two looks at the step time (seconds)
WINDOW_SECONDS = 0.5
#: more threads must be at least this much faster to be chosen over fewer
MARGIN = 0.03


def usable_cores() -> int:
    """The CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota
    (``cpu.max``, as containers set it)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def candidates(max_threads: int) -> list[int]:
    """1, 2, 4, ... and ``max_threads`` itself: the thread counts worth a trial."""
    out, n = [], 1
    while n < max_threads:
        out.append(n)
        n *= 2
    return out + [max_threads]


class _Pools:
    """Sets the thread count of both pools quickly (a C call each, no library scan)."""

    def __init__(self):
        from threadpoolctl import ThreadpoolController

        self.blas = [c for c in ThreadpoolController().lib_controllers
                     if c.user_api == "blas"]
        try:
            import numba
        except ImportError:          # the NumPy backend needs no Numba
            numba = None
        self.numba = numba

    def set(self, n):
        for c in self.blas:
            c.set_num_threads(n)
        if self.numba is not None:
            self.numba.set_num_threads(1)        # one pool: see apply_threads


_POOLS = []


def apply_threads(n: int) -> None:
    """Give the step ``n`` threads: BLAS's pool runs the matrix products on ``n``, and
    Numba's loops run on the calling thread (no validation: callers pass 1..cores).

    One pool, not two: OpenBLAS's idle threads spin for a while after each product,
    and a Numba ``prange`` loop that needs the same cores waits for them.  Measured on
    the 2-core development machine (quiet; examples/s of the 784-400-20 VAE step at
    batch 16 / 128 / 1024): BLAS 2 + Numba 2 threads 1,840 / 5,878 / 12,670; BLAS 2 +
    Numba 1 4,617 / 32,693 / 36,739; one thread of each 6,319 / 19,541 / 22,878.
    """
    if not _POOLS:
        _POOLS.append(_Pools())
    _POOLS[0].set(n)


class ThreadPolicy:
    """Chooses the step's thread count by timing steps (see the module docstring).

    Call :meth:`observe` after every step with the examples it processed and the
    seconds it took (measured by the caller, data preparation included: that is
    what the user waits for).  ``threads`` is the count in force; ``changes``
    collects one dict per change (``from``, ``to``, ``reason``, and the trial's
    ``examples_per_second`` per count) for the caller to report and clear.
    Rechecks count seconds of observed steps, not of the wall clock, so that a
    pause between ``partial_fit`` calls does not bring one on.  ``apply`` is
    replaceable for tests.
    """

    def __init__(self, max_threads=None, *, trial_seconds=TRIAL_SECONDS,
                 recheck_seconds=RECHECK_SECONDS, slow_factor=SLOW_FACTOR,
                 window_seconds=WINDOW_SECONDS, apply=apply_threads):
        self.candidates = candidates(max_threads or usable_cores())
        self.trial_seconds = trial_seconds
        self.recheck_seconds = recheck_seconds
        self.slow_factor = slow_factor
        self.window_seconds = window_seconds
        self.apply = apply
        self.trained = 0.0               # seconds of steps observed: the clock of rechecks
        self.threads = None
        self.changes = []
        self.timings = {}                # candidate -> seconds per example in its last trial
        self._queue = []                 # candidates still to try in this trial
        self._acc = [0.0, 0, 0]          # seconds, examples, steps of the current trial/window
        self._skip = 0                   # steps not counted after a switch (pools wake up)
        self._reference = None           # seconds per example of the chosen count
        self._last_trial = None
        self._reason = "start"
        self._chosen = None              # the count the last trial chose
        self._key = None                 # what kind of step the last trial timed
        self._interval = FIRST_RECHECK_SECONDS   # until the next recheck

    # ------------------------------------------------------------ driving
    def start(self, key=None):
        """Before the first step of a training run.  A trial begins unless the last one
        timed the same kind of step (``key``, e.g. the model and batch size) recently."""
        if self.threads is None or key != self._key:
            self._begin_trial("start")
        elif len(self.candidates) > 1 and self.trained - self._last_trial > self._interval:
            self._begin_trial("recheck")
        else:
            self._acc = [0.0, 0, 0]
        self._key = key
        self._skip = 1

    def skip(self):
        """Do not count the next step (time spent between epochs, say)."""
        self._skip = max(self._skip, 1)

    def observe(self, examples, seconds):
        """One step of ``examples`` took ``seconds``; may change the thread count."""
        if self._skip:
            self._skip -= 1
            return
        self.trained += seconds
        acc = self._acc
        acc[0] += seconds
        acc[1] += examples
        acc[2] += 1
        if self._queue:                                  # in a trial
            if acc[0] >= self.trial_seconds and acc[2] >= 2:
                self.timings[self._queue.pop(0)] = acc[0] / acc[1]
                self._acc = [0.0, 0, 0]
                if self._queue:
                    self._switch(self._queue[0])
                else:
                    self._choose()
        elif acc[0] >= self.window_seconds and acc[2] >= 2:
            per_example = acc[0] / acc[1]
            self._acc = [0.0, 0, 0]
            if len(self.candidates) == 1:
                return
            if per_example > self.slow_factor * self._reference:
                self._begin_trial("slower")
            elif self.trained - self._last_trial > self._interval:
                self._begin_trial("recheck")
            else:
                self._reference = min(self._reference, per_example)

    # ------------------------------------------------------------ internals
    def _begin_trial(self, reason):
        first = self.threads if self.threads in self.candidates else self.candidates[-1]
        self._queue = [first] + [c for c in self.candidates if c != first]
        self._reason = reason
        self.timings = {}
        self._acc = [0.0, 0, 0]
        self._last_trial = self.trained
        if len(self.candidates) == 1:
            self._queue = []
            self._set(first, reason)
            self._reference = math.inf
            return
        self._switch(first)

    def _switch(self, n):
        if n != self.threads:
            self.apply(n)
            self.threads = n
        self._skip = 1

    def _choose(self):
        best = min(self.timings, key=self.timings.get)
        for n in sorted(self.timings):               # fewer threads when nearly as fast
            if self.timings[n] <= (1 + MARGIN) * self.timings[best]:
                best = n
                break
        self._set(best, self._reason)
        self._reference = self.timings[best]
        self._last_trial = self.trained

    def _set(self, n, reason):
        if n != self.threads:
            self.apply(n)
            self.threads = n
        if self._chosen == n:                    # the choice held: look again less often
            self._interval = min(2 * self._interval, self.recheck_seconds)
        else:
            self._interval = min(FIRST_RECHECK_SECONDS, self.recheck_seconds)
        if self._chosen != n:
            self.changes.append({"from": self._chosen, "to": n, "reason": reason,
                                 "examples_per_second": {c: 1.0 / t for c, t
                                                         in sorted(self.timings.items())}})
        self._chosen = n
        self._skip = 1


#: why a trial ran, as the epoch line says it
REASONS = {"start": "timed", "slower": "steps got slower", "recheck": "rechecked"}


def describe(change):
    """One change for the epoch line: ``threads 2->1 (steps got slower: 1 -> 8,100 ex/s,
    2 -> 2,050 ex/s)``."""
    rates = ", ".join(f"{n} -> {r:,.0f} ex/s" for n, r in change["examples_per_second"].items())
    old = "" if change["from"] is None else f"{change['from']}->"
    return f"threads {old}{change['to']} ({REASONS[change['reason']]}" + \
        (f": {rates})" if rates else ")")


_POLICY = []


def training_policy():
    """The process's policy for training steps (one, so that ``partial_fit`` calls go on
    from the last choice), or None when a thread count is forced
    (``npvae.set_num_threads(n)``)."""
    from . import backend

    if backend.get_num_threads() is not None:
        return None
    if not _POLICY:
        _POLICY.append(ThreadPolicy())
    return _POLICY[0]


def timed(key):
    """Decorator for the chunks of a long evaluation (importance-sampled ``log p(x)``):
    each call is a step of the process's policy, timed per row of noise it evaluated,
    so evaluating on a busy machine gets the thread count training would.  ``key``
    names the kind of chunk.  Does nothing when a count is forced."""
    def wrap(fn):
        state = {}

        @functools.wraps(fn)
        def run(rows, eps):
            policy = training_policy()
            if policy is None:
                return fn(rows, eps)
            if not state:
                state["started"] = True
                policy.start(key)
            t0 = time.perf_counter()
            out = fn(rows, eps)
            policy.observe(out.size, time.perf_counter() - t0)
            return out

        return run

    return wrap


class TimedSteps:
    """The training loop's hook (a :class:`npvae.training.Callback`) that times every
    step for ``policy``, which may change the thread count; each epoch's record gets
    ``threads`` and, when it changed, ``thread_changes`` (the epoch line says so)."""

    def __init__(self, policy, key):
        self.policy = policy
        policy.start(key)
        self.last = (time.perf_counter(), 0)

    def on_batch_end(self, state, done, total, elbo_so_far, rate):
        now, before = time.perf_counter(), self.last[1]
        if done > before:                   # (a new epoch's first step is not counted)
            self.policy.observe(done - before, now - self.last[0])
        else:
            self.policy.skip()
        self.last = (now, done)

    def on_epoch_end(self, state, record):
        record["threads"] = self.policy.threads
        if self.policy.changes:
            record["thread_changes"] = [describe(c) for c in self.policy.changes]
            self.policy.changes.clear()
        self.policy.skip()                  # the next step's time includes the hooks after this
        return False
