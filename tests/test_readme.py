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


def layout_rows():
    """The rows of README's "Where things are" table: ``(where, what)`` cells."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("## Where things are", 1)[1].split("\n\n| where |", 1)[1]
    rows = [line.split(" | ") for line in table.split("\n\n", 1)[0].splitlines()[2:]]
    return [(r[0], r[1]) for r in rows]


def test_the_layout_table_names_every_module():
    """Every module of the package (``__init__`` of subpackages and ``__main__`` aside) is
    in a row: by its path, or by its file name in a row whose first cell names a path in
    its folder (``npvae/x/a.py``, ``b.py``) (issue 27)."""
    rows = layout_rows()
    missing = []
    for path in sorted((ROOT / "npvae").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if path.name == "__main__.py" or (path.name == "__init__.py"
                                          and path.parent.name != "npvae"):
            continue
        folder = rel.rsplit("/", 1)[0] + "/"
        if not any(f"`{rel}`" in where
                   or (f"`{folder}" in where and f"`{path.name}`" in where + what)
                   for where, what in rows):
            missing.append(rel)
    assert not missing, f"not in README's layout table: {missing}"
