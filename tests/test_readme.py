"""The README's Python snippet runs as it stands (offline, on the digits that ship
with scikit-learn), in a fresh process in an empty folder."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def python_snippet():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_snippet_runs(tmp_path):
    code = python_snippet()
    assert "npvae.VAE" in code and "fit" in code
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    env.pop("NPVAE_DATA", None)                              # offline, shipped data only
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    elbo, log_px = (float(line) for line in out.stdout.split())
    assert -40 < elbo < log_px < 0                          # a bound below the estimate
    assert (tmp_path / "digits-vae.npz").exists()
