"""The package's shape: imports flow one way, modules stay short.

The import graph counts every import statement, including those inside
functions (a cycle held together by a function-level import is still a cycle),
and every ``importlib.import_module("npvae.x")`` call with a literal name: it is
an import too, and importing a package runs its ``__init__``, which imports its
children.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "npvae"
MAX_LINES = 400


def _modules():
    """``{dotted name: path}`` of every module of the package."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name, path, modules):
    """The package modules that module ``name`` imports, anywhere in its body."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # ``from pkg import mod`` imports the module pkg.mod when there is one,
            # else a name defined in pkg itself
            targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in modules else prefix
                       for a in node.names]
        elif _is_import_module_call(node):
            targets = [node.args[0].value]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _is_import_module_call(node):
    """``import_module("literal")`` or ``importlib.import_module("literal")``."""
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)):
        return False
    func = node.func
    return (func.attr if isinstance(func, ast.Attribute)
            else getattr(func, "id", None)) == "import_module"


def import_graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def find_cycle(graph):
    """One import cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == 1:
                return stack[stack.index(v):] + [v]
            if not state.get(v):
                cycle = visit(v)
                if cycle:
                    return cycle
        stack.pop()
        state[u] = 2
        return None

    for u in sorted(graph):
        if not state.get(u):
            cycle = visit(u)
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_counts_import_module_with_a_literal_name(tmp_path):
    """``importlib.import_module("npvae.models")`` imports the package, and through its
    ``__init__`` every model: a cycle closed that way is a cycle (issue 27)."""
    source = ('import importlib\n'
              'def f():\n'
              '    importlib.import_module("npvae.models")\n'
              '    importlib.import_module(name)\n')        # not a literal: not counted
    path = tmp_path / "mod.py"
    path.write_text(source, encoding="utf-8")
    modules = _modules()
    assert _imports("npvae.checkpoint", path, modules) == {"npvae.models"}
    graph = import_graph()
    assert {"npvae.models.vae", "npvae.models.registry"} <= graph["npvae.models"]


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    # npvae.backend routes kernels by module name only; models import the objectives
    assert "npvae.objectives" in graph["npvae.models.vae"]
    assert "npvae.checkpoint" not in graph or not any(
        m.startswith("npvae.models") for m in graph["npvae.checkpoint"])


@pytest.mark.parametrize("name, path", sorted(_modules().items()))
def test_module_is_short(name, path):
    n = sum(1 for _ in path.open(encoding="utf-8"))
    assert n <= MAX_LINES, f"{name} has {n} lines (at most {MAX_LINES}): split it by concept"


# ------------------------------------------------ kernels cite the book (issue 27)
#: at least this share of the compiled functions cite their ``docs/`` section
MIN_CITED = 0.9


def _is_compiled(node):
    """A function decorated with ``njit`` / ``jit`` (called or not)."""
    return isinstance(node, ast.FunctionDef) and any(
        "jit" in ast.unparse(d).split("(")[0] for d in node.decorator_list)


def compiled_functions():
    """``(where, cites docs/)`` for every compiled function of the package: the citation
    is in its docstring or in the comment lines right above its decorators."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if not _is_compiled(node):
                continue
            i = min([d.lineno for d in node.decorator_list] + [node.lineno]) - 2
            above = []
            while i >= 0 and lines[i].lstrip().startswith("#"):
                above.append(lines[i])
                i -= 1
            cites = "docs/" in (ast.get_docstring(node) or "") or any("docs/" in l for l in above)
            out.append((f"{path.relative_to(ROOT)}:{node.lineno} {node.name}", cites))
    return out


def test_the_citation_count_reads_docstrings_and_comments_above():
    found = dict(compiled_functions())
    cited = {k.split()[-1] for k, v in found.items() if v}
    assert {"_act", "_reparam_fwd", "_adam_kernel"} <= cited    # comment, comment, comment
    assert "_dact" in cited                                      # docstring


def test_compiled_kernels_cite_their_book_section():
    found = compiled_functions()
    assert len(found) >= 20
    missing = [k for k, v in found if not v]
    assert len(missing) <= (1 - MIN_CITED) * len(found), f"no docs/ section cited: {missing}"


# ------------------------------------------------ repeated code (issue 27)
#: at most this many pairs of places inside npvae/ share six or more lines
MAX_DUPLICATE_PAIRS = 10


def test_the_package_repeats_itself_in_at_most_ten_pairs_of_places():
    """``duplicates --repo npvae`` (the development tool; skipped where it is absent)."""
    import re
    import shutil
    import subprocess

    tool = shutil.which("duplicates")
    if tool is None:
        pytest.skip("the duplicates tool is not installed here")
    out = subprocess.run([tool, "--repo", str(PACKAGE), "--most", "200", "--seconds", "60"],
                         capture_output=True, text=True, timeout=120).stdout
    assert "incomplete" not in out, out
    first = out.splitlines()[0] if out else ""
    pairs = 0 if first.startswith("no duplicates") else int(re.match(r"(\d+) pairs", first).group(1))
    assert pairs <= MAX_DUPLICATE_PAIRS, out


# ------------------------------------------------ private names stay private (issue 27)
#: at most this many ``from module import _name`` across modules of the package
MAX_PRIVATE_IMPORTS = 25


def private_imports():
    """``module: name`` for every ``from x import _name`` in the package (dunders aside):
    a name the other module marked as its own."""
    out = []
    for name, path in sorted(_modules().items()):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                out += [f"{name}: {'.' * node.level}{node.module or ''}.{a.name}"
                        for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")]
    return out


def test_the_private_import_count_sees_relative_and_absolute_imports():
    found = private_imports()
    assert any(f.startswith("npvae.data.datasets: .registry._canonical_name") for f in found)


def test_modules_import_few_private_names_of_other_modules():
    found = private_imports()
    assert len(found) <= MAX_PRIVATE_IMPORTS, "\n".join(found)


# ------------------------------------------------ names by meaning (issue 27)
def test_estimator_and_gaussian_each_name_one_module():
    """Four modules called "estimator(s)" meant three things (the statistical gradient
    estimators, score-function baselines, scikit-learn's API, the EM mixture) and two were
    ``gaussian.py`` (the diagonal Gaussian's kernels, the likelihood)."""
    names = sorted(p.name for p in PACKAGE.rglob("*.py"))
    assert [n for n in names if "estimator" in n] == ["gradient_estimators.py"]
    assert names.count("gaussian.py") == 1
