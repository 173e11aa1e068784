"""npvae._allocator: training keeps freed memory, so a step's arrays do not fault in
fresh pages (docs/11-optimisation.md#memory-the-step-gives-back).  Each check runs in a
fresh interpreter: the setting is once per process."""
import json
import os
import platform
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _run(code, **env):
    clean = {k: v for k, v in os.environ.items()
             if not (k.startswith("MALLOC_") or k in ("GLIBC_TUNABLES", "NPVAE_MALLOC_TUNING"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(clean, PYTHONPATH=ROOT, **env), timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


FAULTS = """
import json, resource, numpy as np
from npvae._allocator import keep_freed_memory
done = keep_freed_memory() if TUNE else None
def step():                               # a step's worth of same-sized arrays, touched
    a = np.ones((1024, 784), np.float32); b = a * 2; c = np.exp(b); return float(c[0, 0])
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(json.dumps({"done": done, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


@pytest.mark.skipif(not GLIBC, reason="tunes glibc's malloc only")
def test_reused_pages_after_tuning():
    # three 3.2 MB arrays a step: ~2,400 pages; 20 steps faulting them afresh would be ~48,000
    tuned = _run(FAULTS.replace("TUNE", "True"))
    assert tuned["done"] is True
    assert tuned["faults"] < 2_000, tuned


@pytest.mark.skipif(not GLIBC, reason="tunes glibc's malloc only")
def test_training_applies_it_once():
    r = _run("""
import json, numpy as np, npvae
from npvae import _allocator
before = _allocator._done
m = npvae.VAE(n_latent=2, hidden_sizes=(8,), random_state=0, epochs=1, batch_size=10)
m.fit((np.random.default_rng(0).random((20, 6)) < 0.5).astype(float))
print(json.dumps({"before": before, "after": _allocator._done,
                  "again": _allocator.keep_freed_memory()}))
""")
    assert r == {"before": None, "after": True, "again": True}


@pytest.mark.parametrize("env", [{"NPVAE_MALLOC_TUNING": "0"}, {"MALLOC_TOP_PAD_": "4096"},
                                 {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1048576"}])
def test_opt_out_and_the_users_own_settings_are_left_alone(env):
    r = _run("import json; from npvae._allocator import keep_freed_memory;"
             "print(json.dumps({'done': keep_freed_memory()}))", **env)
    assert r == {"done": False}
