"""Settings read from a file (``--config``, a checkpoint's stored run) checked by the
same argparse types and choices as the flags typed: one validation path for both."""
from __future__ import annotations

import argparse

from .parser import build_parser


#: keys of a run's config.json that are not flags (written by ``npvae train``)
RECORDED_ONLY = ("command", "likelihood_params")


def train_actions():
    """``{dest: action}`` of every ``npvae train`` flag."""
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    return {a.dest: a for a in train._actions if a.option_strings and a.dest != "help"}


def _as_flag_text(value):
    """A JSON value as it would be typed after its flag, or None when no flag takes it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, list):
        if value and all(isinstance(v, list) for v in value):
            parts = [_as_flag_text(v) for v in value]
            return None if None in parts else ";".join(parts)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return ",".join(map(str, value))
    return None


def check_setting(key, value, action):
    """``value`` (read from a JSON file) as the flag of ``action`` would parse it: the same
    type, range and choices as typed (one validation path for flags and files); a
    ``ValueError`` in one line otherwise."""
    name = action.option_strings[-1]
    if value is None and action.default is None:
        return None
    if isinstance(action, argparse._StoreTrueAction):
        if not isinstance(value, bool):
            raise ValueError(f"{key}: {name} is a switch: true or false, got {value!r}")
        return value
    text = _as_flag_text(value)
    if text is None:
        raise ValueError(f"{key}: {value!r} is not a value of {name}")
    try:
        parsed = action.type(text) if action.type else text
    except argparse.ArgumentTypeError as exc:
        raise ValueError(f"{key}: {name} {exc}") from None
    if action.choices is not None and parsed not in action.choices:
        raise ValueError(f"{key}: {name} must be one of {', '.join(map(str, action.choices))}, "
                         f"got {value!r}")
    return parsed


def check_settings(config, unknown="refuse"):
    """Every flag's value in ``config`` (a run's recorded settings) checked and parsed as
    if typed (:func:`check_setting`); returns ``{key: parsed}``.  Keys that are no flag
    are refused (``unknown="refuse"``) or left out (``"skip"``)."""
    actions, parsed = train_actions(), {}
    strange = sorted(str(k) for k in config if k not in actions and k not in RECORDED_ONLY)
    if strange and unknown == "refuse":
        raise ValueError(f"unknown settings {', '.join(strange[:5])}"
                         + (" ..." if len(strange) > 5 else "")
                         + " (a run's config.json holds npvae train's flags, e.g. "
                         "\"epochs\", \"lr\")")
    for key, value in config.items():
        if key in actions:
            parsed[key] = check_setting(key, value, actions[key])
    return parsed

