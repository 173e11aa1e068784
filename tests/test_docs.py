"""The book in docs/ and the links into it: every reference resolves, every code
link names a function that exists, nothing points outside the repository, and
every notebook runs (its own assertions check the mathematics)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NOTEBOOKS = sorted((DOCS / "notebooks").glob("*.py"))
#: where readers and users look: nothing here may point outside the repository
PUBLIC = ["README.md", "npvae", "docs", "demos", "benchmarks", "setup.cfg", "pyproject.toml"]


def slug(heading):
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(md_path):
    text = Path(md_path).read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)          # headings, not code comments
    return {slug(h) for h in re.findall(r"^#{1,6}\s+(.*)$", text, re.M)}


def _files(suffixes):
    for entry in PUBLIC:
        path = ROOT / entry
        paths = [path] if path.is_file() else path.rglob("*")
        for p in paths:
            if p.is_file() and p.suffix in suffixes and "figures" not in p.parts:
                yield p


def test_slug_is_githubs():
    assert slug("Backward of the affine map") == "backward-of-the-affine-map"
    assert slug("The example of E x squared") == "the-example-of-e-x-squared"
    assert slug("KL to N(0, I)") == "kl-to-n0-i"


def test_every_book_reference_resolves():
    """``docs/<chapter>.md#<heading>`` in code, docs and README points at a heading."""
    bad = []
    for path in _files({".py", ".md", ".cfg"}):
        for m in re.finditer(r"(docs/[\w./-]+\.md)(?:#([\w\-.%]+))?", path.read_text("utf-8")):
            target = ROOT / m.group(1)
            if path.is_relative_to(DOCS) and not m.group(0).startswith("docs/"):
                continue
            if not target.is_file() or (m.group(2) and m.group(2) not in anchors(target)):
                bad.append(f"{path.relative_to(ROOT)}: {m.group(0)}")
    assert not bad, "dangling references into the book:\n" + "\n".join(bad)


def _markdown_links():
    for path in [ROOT / "README.md", *DOCS.rglob("*.md"), ROOT / "demos" / "README.md",
                 ROOT / "benchmarks" / "README.md"]:
        if not path.is_file():
            continue
        text = re.sub(r"```.*?```", "", path.read_text("utf-8"), flags=re.S)
        for m in re.finditer(r"\[([^\]]*)\]\(([^)\s]+)\)", text):
            yield path, m.group(1), m.group(2)


def test_relative_markdown_links_resolve():
    bad = []
    for path, _, href in _markdown_links():
        if re.match(r"[a-z]+:", href):
            continue                                          # https:, mailto:
        file_part, _, anchor = href.partition("#")
        target = (path.parent / file_part).resolve() if file_part else path
        if not target.exists():
            bad.append(f"{path.relative_to(ROOT)}: {href} (no such file)")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            bad.append(f"{path.relative_to(ROOT)}: {href} (no such heading)")
    assert not bad, "\n".join(bad)


def test_code_links_name_a_definition():
    """``[`name`](../npvae/....py)``: the file defines ``name`` (a function, class or method)."""
    bad, seen = [], 0
    for path, text, href in _markdown_links():
        m = re.fullmatch(r"`(\w+)`", text)
        if not m or not href.split("#")[0].endswith(".py"):
            continue
        target = (path.parent / href.split("#")[0]).resolve()
        seen += 1
        if not target.is_file() or not re.search(
                rf"^\s*(def|class)\s+{m.group(1)}\b", target.read_text("utf-8"), re.M):
            bad.append(f"{path.relative_to(ROOT)}: [{text}]({href})")
    assert seen > 50, f"only {seen} code links found"
    assert not bad, "code links to names that are not defined there:\n" + "\n".join(bad)


def test_nothing_points_outside_the_repository():
    pattern = re.compile(r"\.\./shared|shared/MATH|MATH\.md|MATH §")
    bad = [f"{p.relative_to(ROOT)}:{i}" for p in _files({".py", ".md", ".cfg", ".toml"})
           for i, line in enumerate(p.read_text("utf-8").splitlines(), 1) if pattern.search(line)]
    assert not bad, "references outside the repository:\n" + "\n".join(bad)


def test_every_chapter_has_derivations_and_code_links():
    chapters = sorted(DOCS.glob("[0-9][0-9]-*.md"))
    assert len(chapters) == 16
    for ch in chapters:
        text = ch.read_text("utf-8")
        assert text.count("$$") >= 4, f"{ch.name}: no display math"
        assert ch.name in (DOCS / "README.md").read_text("utf-8"), f"{ch.name} not in contents"


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(notebook, tmp_path):
    """Each notebook runs top to bottom (jupytext percent format is plain Python) and
    its assertions hold; it writes its figures next to the chapters."""
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, str(notebook)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
