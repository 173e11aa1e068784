"""The sweep file of ``npvae sweep``: read, checked and expanded into runs.

A sweep file is TOML with a ``[base]`` table of ``npvae train`` settings (the keys
of a run's ``config.json``: ``epochs = 3``, ``hidden = [200, 200]``, ``no_figures =
true``), a ``[grid]`` table of lists (every combination is one run; ``seed`` is an
ordinary grid key) and an optional ``[evaluate]`` table (``n_importance = 5000``:
the importance-sampled test NLL of every run)::

    [base]
    dataset = "digits"
    epochs = 3

    [grid]
    k = [1, 5]
    objective = ["iwae"]
    seed = [0, 1]

Every run's settings go through the checks of ``npvae train`` that need no data
(argparse's types and ranges, then :func:`.train.check_settings` and the model's
own settings check), so a value that ``npvae train`` would refuse is refused here,
in one line, before anything runs.  Runs have ``threads = 1`` unless the file
says otherwise: a forced thread count keeps every run repeatable to the bit.
"""
from __future__ import annotations

import argparse
import itertools
import re
import sys

from .argtypes import hidden_list, latent_list
from .common import CLIError, build_model
from .parser import build_parser
from .resume import _show, flag
from .train_settings import _likelihood_params, check_settings

#: ``npvae train`` flags that the sweep sets itself (``--out``: DIR/<run name>)
SET_BY_SWEEP = ("out", "config", "resume", "overwrite", "quiet", "command")
#: the thread count of every run unless the file gives one (see the module docstring)
DEFAULT_THREADS = 1
#: the tables a sweep file may hold
TABLES = ("base", "grid", "evaluate")


class Run:
    """One run of a sweep: its name (the folder under DIR), its grid values and all
    its settings (``{key: TOML value}``), and its ``npvae train`` flags."""

    def __init__(self, name, values, settings):
        self.name, self.values, self.settings = name, values, settings
        self.argv = to_argv(settings)

    def __repr__(self):
        return f"Run({self.name!r})"


def read_toml(path):
    """The parsed TOML file (``tomllib``, or the ``tomli`` package on Python 3.10)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:                                    # pragma: no cover (3.10)
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise CLIError(f"no such sweep file {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CLIError(f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc}") from None


# ----------------------------------------------------------------------- settings
def _train_parser():
    """``npvae train``'s own parser, raising a CLIError instead of exiting."""
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]

    def error(message):
        raise CLIError(message)

    train.error = error
    return train


def _actions():
    """``{key: argparse action}`` of every ``npvae train`` setting a sweep may give."""
    return {a.dest: a for a in _train_parser()._actions
            if a.option_strings and a.dest not in SET_BY_SWEEP + ("help",)}


def _kind(action):
    """The TOML type a setting takes: bool, sizes (int or list), int, number or str."""
    if isinstance(action, argparse._StoreTrueAction):
        return "bool"
    if action.type in (latent_list, hidden_list):
        return "sizes"
    if action.type is None:
        return "str"
    return "int" if getattr(action.type, "__name__", "").startswith("integer") else "number"


def _is_sizes(value, nested):
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, list) and (
        all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or (nested and all(_is_sizes(v, False) and isinstance(v, list) for v in value)))


_TYPES = {"bool": ("true or false", lambda v: isinstance(v, bool)),
          "int": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
          "number": ("a number", lambda v: isinstance(v, (int, float))
                     and not isinstance(v, bool)),
          "str": ("a string", lambda v: isinstance(v, str))}


def _check_type(where, key, value, actions):
    """A one-line CLIError when ``value`` is not of the type ``key`` takes."""
    if key not in actions:
        known = ", ".join(sorted(actions))
        raise CLIError(f"{where}: unknown key {key!r} (npvae train settings: {known}; "
                       f"{', '.join(SET_BY_SWEEP[:2])} are set by the sweep)")
    kind = _kind(actions[key])
    if kind == "sizes":
        nested = actions[key].type is hidden_list
        if not _is_sizes(value, nested):
            what = "an integer or a list of integers" + (
                " (or of lists, one per level)" if nested else "")
            raise CLIError(f"{where}: {key} must be {what}, got {value!r}")
        return
    name, ok = _TYPES[kind]
    if not ok(value):
        raise CLIError(f"{where}: {key} must be {name}, got {value!r} "
                       f"({type(value).__name__})")


def to_argv(settings):
    """``npvae train`` flags of the settings ``{key: TOML value}``."""
    argv = []
    for key, value in settings.items():
        if isinstance(value, bool):
            argv += [flag(key)] if value else []
        else:
            text = _show(value) if isinstance(value, list) else str(value)
            argv += [f"{flag(key)}=" + ("" if text == "''" else text)]
    return argv


def check_run(settings, where):
    """Refuse, in one line, settings that ``npvae train`` would refuse without the data."""
    argv = to_argv(settings)
    try:
        args = _train_parser().parse_args(argv)
        args.explicit_ = set(settings)
        _, key, binarization = check_settings(args)
        from ..data.datasets import likelihood_hint

        likelihood = args.likelihood or likelihood_hint(
            "mnist" if key == "auto" else key, binarization)
        params = _likelihood_params(args, likelihood, args.explicit_)
        # labels stand-in: the classes are the data's; only their presence matters here
        classes = None if key in ("binarized_mnist", "frey") else [0, 1]
        build_model(args, likelihood, classes, params)._check_settings()
    except (CLIError, ValueError, TypeError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CLIError(f"{where}: {message}") from None


# ----------------------------------------------------------------------- the grid
def _label(value):
    """A grid value in a folder name: ``5``, ``0.001``, ``200x200``, ``200x200-100``."""
    if isinstance(value, list):
        return "-".join(_label(v) for v in value) if any(
            isinstance(v, list) for v in value) else "x".join(map(str, value))
    text = f"{value:g}" if isinstance(value, float) else str(value).lower()
    return re.sub(r"[^A-Za-z0-9.+-]", "-", text) or "none"


def run_name(values):
    """The folder of a run under DIR: its grid values, ``k=5_seed=0``."""
    return "_".join(f"{key}={_label(value)}" for key, value in values.items())


def load_sweep(path):
    """``(runs, n_importance)``: every run of the sweep file ``path``, checked."""
    doc = read_toml(path)
    unknown = sorted(set(doc) - set(TABLES))
    if unknown:
        raise CLIError(f"{path}: unknown table or key {unknown[0]!r} (a sweep file holds "
                       "[base], [grid] and [evaluate])")
    for table in TABLES:
        if not isinstance(doc.get(table, {}), dict):
            raise CLIError(f"{path}: {table} must be a table, [{table}]")
    base, grid, evaluate = doc.get("base", {}), doc.get("grid", {}), doc.get("evaluate", {})
    n_importance = _evaluate_table(path, evaluate)
    if not grid:
        raise CLIError(f"{path}: [grid] is empty or missing: give at least one key with a "
                       "list of values (e.g. seed = [0, 1, 2])")
    actions = _actions()
    for key, value in base.items():
        _check_type(f"{path}: [base]", key, value, actions)
    for key, values in grid.items():
        where = f"{path}: [grid]"
        if key in base:
            raise CLIError(f"{where}: {key} is in [base] too; give it in one table")
        if not isinstance(values, list):
            raise CLIError(f"{where}: {key} must be a list of values, got {values!r}")
        if not values:
            raise CLIError(f"{where}: {key} is an empty list: give at least one value")
        for value in values:
            _check_type(where, key, value, actions)
    runs, names = [], {}
    for combination in itertools.product(*grid.values()):
        values = dict(zip(grid, combination))
        name = run_name(values)
        if name in names:
            raise CLIError(f"{path}: [grid] gives the run {name} twice ({names[name]} and "
                           f"{values}); remove the repeated value")
        names[name] = values
        settings = {"threads": DEFAULT_THREADS, **base, **values}
        check_run(settings, f"{path}: run {name}")
        runs.append(Run(name, values, settings))
    return runs, n_importance


def _evaluate_table(path, evaluate):
    unknown = sorted(set(evaluate) - {"n_importance"})
    if unknown:
        raise CLIError(f"{path}: [evaluate]: unknown key {unknown[0]!r} (it takes n_importance)")
    k = evaluate.get("n_importance", 0)
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise CLIError(f"{path}: [evaluate]: n_importance must be an integer >= 0, got {k!r}")
    return k
