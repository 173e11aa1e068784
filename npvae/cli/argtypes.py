"""The argument types of the ``npvae`` command's flags: each checks its range, so a
bad value is argparse's one-line error naming the flag, before anything runs.
Standard library only (``npvae --help`` stays fast)."""
from __future__ import annotations

import argparse
import math


def _converted(convert, text, expected):
    """``convert(text)``, or the argparse error "expected <expected>, got <text>"."""
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def int_at_least(minimum):
    """An argparse type: an integer ``>= minimum``."""
    def parse(text):
        value = _converted(int, text, f"an integer >= {minimum}")
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
        return value
    parse.__name__ = f"integer >= {minimum}"
    return parse


def finite_float(minimum=None, inclusive=False):
    """An argparse type: a finite number, above ``minimum`` (or at it when ``inclusive``)."""
    bound = ("" if minimum is None else f" {'>=' if inclusive else '>'} {minimum:g}")

    def parse(text):
        value = _converted(float, text, f"a finite number{bound}")
        ok = math.isfinite(value) and (minimum is None or value > minimum
                                       or (inclusive and value == minimum))
        if not ok:
            raise argparse.ArgumentTypeError(f"must be a finite number{bound}, got {text!r}")
        return value
    parse.__name__ = f"number{bound}"
    return parse


def min_logvar(text):
    """``--gaussian-min-logvar``: ``auto`` (None, from the data), ``none`` or a finite number."""
    if text.strip().lower() in ("auto", "none"):
        return None if text.strip().lower() == "auto" else "none"
    try:
        return finite_float()(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a finite number, 'auto' or 'none', got {text!r}") from None


def validation_size(text):
    """A fraction in (0, 1), a whole number of examples >= 1, or 0 (no validation split)."""
    message = ("must be a fraction in (0, 1), a whole number of examples >= 1, or 0 for "
               f"no validation split; got {text!r}")
    try:
        value = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(message) from None
        if math.isfinite(value) and 0.0 < value < 1.0:
            return value
        raise argparse.ArgumentTypeError(message) from None
    if value < 0 or text.strip().startswith("-"):         # "-0" is no size either
        raise argparse.ArgumentTypeError(message)
    return value


def int_list(text, what="sizes"):
    parts = [t.strip() for t in text.split(",")]
    if not text.strip():
        return ()
    try:
        values = tuple(int(t) for t in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers >= 1, got {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{what} must be integers >= 1, got {text!r}")
    return values


def latent_list(text):
    """``20``; for hvae one size per level, ``100,50``."""
    values = int_list(text, "latent sizes")
    if not values:
        raise argparse.ArgumentTypeError("expected at least one latent size, got ''")
    return values


def hidden_list(text):
    """``400`` or ``200,200`` (``''``: none); per level for hvae with ``;``: ``200,200;100,100``."""
    if ";" in text:
        return tuple(int_list(part, "hidden widths") for part in text.split(";"))
    return int_list(text, "hidden widths")


POSITIVE_INT = int_at_least(1)
COUNT = int_at_least(0)
