"""Other load on the machine, made on purpose: spinning processes pinned to cores.

Users train on laptops and shared servers where something else is always
running.  ``busy_cores(n)`` starts ``n`` processes that spin in a Python loop,
each pinned to one of the *last* ``n`` allowed CPUs (``taskset -c 1 python3 -c
"while True: pass"`` on a 2-core machine), and stops them on exit::

    with busy_cores(1):
        ...  # time something while one core is taken

The benchmarks that take ``--busy-cores N`` (:mod:`benchmarks.throughput`,
:mod:`benchmarks.epoch_throughput`) use it around their timed turns.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

SPIN = "while True: pass"


def spinner_cpus(n):
    """The CPUs the ``n`` spinners are pinned to: the last ``n`` this process may use."""
    cpus = sorted(os.sched_getaffinity(0))
    if not 0 <= n <= len(cpus):
        raise ValueError(f"--busy-cores must be between 0 and {len(cpus)}, got {n}")
    return cpus[len(cpus) - n:]


@contextlib.contextmanager
def busy_cores(n):
    """Keep ``n`` cores busy with spinning processes while the block runs."""
    procs = []
    try:
        for cpu in spinner_cpus(n):
            p = subprocess.Popen([sys.executable, "-c", SPIN], stdin=subprocess.DEVNULL)
            os.sched_setaffinity(p.pid, {cpu})
            procs.append(p)
        if procs:
            time.sleep(0.2)                  # let them start spinning
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
