"""The ``npvae`` command: train, evaluate, sample and plot.

``npvae train`` writes a run folder (``--out``) holding ``config.json``,
``checkpoint.npz`` (after every epoch; ``--resume`` continues from it),
``best.npz`` (the best epoch by the validation objective: ELBO, IWAE bound or Fisher
loss), ``history.jsonl``, ``results.json`` and
``figures/*.png``.  ``python -m npvae`` is the same command.  One command at a time
writes a run folder: ``train`` holds its lock (``.npvae.lock``, npvae/_fsafe.py)
from before it reads the folder until it ends.

Every failure is one line on stderr and a non-zero exit status, never a
traceback (``NPVAE_DEBUG=1`` re-raises): a bad flag is argparse's error (2); a
usage, data or checkpoint error ``npvae COMMAND: error: ...`` (2); a diverged
run (1); anything else ``npvae COMMAND: internal error: ...`` (1); Ctrl-C
``interrupted`` (130) and SIGTERM ``terminated`` (143).  A warning is one line
too, ``npvae COMMAND: warning: ...``.

One module per concern, imports flowing one way (parser and common first):

* :mod:`.parser` — the argument parser (every flag, its type and range, the
  ``--likelihood`` choices);
* :mod:`.common` — messages, data loading, run folders, ``build_model``;
* :mod:`.prior_flags` — ``--prior vamp`` and ``--n-pseudo-inputs`` as the model's settings;
* :mod:`.figures` — :func:`write_figures`, the figures of a run folder;
* :mod:`.evaluate` — ``evaluate``, ``sample`` and ``plot``;
* :mod:`.settings` — settings read from a file, checked by the flags' own types;
* :mod:`.resume` — what ``train --resume`` keeps and what it may change;
* :mod:`.train` — ``train``;
* :mod:`.sweep_file` and :mod:`.sweep` — ``sweep``: the sweep file, and its runs on Dask.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import warnings

# The command is an entry point: it may choose OpenBLAS's kernels, which must happen
# before NumPy loads OpenBLAS (npvae/_blas.py; never overriding the user's choice).
from .._blas import select_openblas_kernels

select_openblas_kernels()

# Only the parser (the standard library) here: the commands, NumPy and Numba are
# imported after main() has installed its SIGTERM handler, so that a kill during the
# second of imports also ends in one line and 143 (it ended by the signal, -15).
from .parser import DESCRIPTION, build_parser, explicit_flags  # noqa: E402

__all__ = ["main", "build_parser", "cmd_train", "cmd_evaluate", "cmd_sample", "cmd_plot",
           "write_figures", "DESCRIPTION", "Terminated"]

#: command -> (module, function), imported when the command runs
HANDLERS = {"train": ("train", "cmd_train"), "evaluate": ("evaluate", "cmd_evaluate"),
            "sample": ("evaluate", "cmd_sample"), "plot": ("evaluate", "cmd_plot"),
            "sweep": ("sweep", "cmd_sweep")}
_LAZY = {name: module for module, name in HANDLERS.values()} | {"write_figures": "figures"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Terminated(KeyboardInterrupt):
    """Raised by the SIGTERM handler of :func:`main`: a kill ends the command as
    Ctrl-C does (the checkpoint kept, one line), with exit status 143."""


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv=None):
    previous, code = None, None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = _main(argv)
        return code
    finally:
        if previous is not None:
            # the command itself (no argv given) terminated: it is ending with 143, and a
            # second SIGTERM while the interpreter shuts down (saved files flushed, threads
            # joined) would end it by the signal instead (-15); it is ignored
            ended = code == 143 and argv is None
            signal.signal(signal.SIGTERM, signal.SIG_IGN if ended else previous)


def _main(argv):
    try:
        _replace_unencodable()
        argv = sys.argv[1:] if argv is None else list(argv)
        parser = build_parser()
        args = parser.parse_args(argv)          # a bad flag: argparse's error, exit 2
        args.explicit_ = explicit_flags(argv)
        try:
            _check_environment()
        except ValueError as exc:
            print(f"npvae {args.command}: error: {exc}", file=sys.stderr, flush=True)
            return 2
        return _run(args)
    except Terminated:                      # during parsing, before _run's own handler
        print("npvae: terminated", file=sys.stderr, flush=True)
        return 143


def _replace_unencodable():
    """Print what the terminal's encoding cannot show as ``?`` (``PYTHONIOENCODING=ascii``
    and a "±" made the report fail after training) instead of failing."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="replace")
        except (AttributeError, ValueError, OSError):
            pass                         # not a text stream of io's (a test's capture)


def _check_environment():
    """Environment variables that the libraries would read with a traceback or a
    multi-line warning: refused in one line (exit 2)."""
    value = os.environ.get("NUMBA_NUM_THREADS")
    if value is not None and not (value.strip().isdigit() and int(value) >= 1):
        raise ValueError(f"NUMBA_NUM_THREADS={value!r} is not a whole number >= 1 (unset it, "
                         "or use --threads N)")


def _run(args):
    command = args.command
    debug = bool(os.environ.get("NPVAE_DEBUG"))

    def fail(message, code):
        return _fail(command, message, code)

    def show_warning(message, category, filename, lineno, file=None, line=None):
        text = str(message).strip().splitlines()          # one line, not the source line
        print(f"npvae {command}: warning: {text[0] if text else category.__name__}",
              file=sys.stderr, flush=True)

    try:
        from ..training import TrainingDiverged
        from .common import CLIError, one_line
    except Terminated:
        return _fail(command, "terminated", 143)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            if command == "train" and args.config:
                from .resume import apply_config
                apply_config(args)
            import importlib

            module, name = HANDLERS[command]
            return getattr(importlib.import_module(f".{module}", __name__), name)(args)
    except KeyboardInterrupt as exc:
        if debug:
            raise
        what, code = ("terminated", 143) if isinstance(exc, Terminated) else ("interrupted", 130)
        note = str(exc.args[0]) if exc.args else ""
        return fail(f"{what}: {note}" if note else what, code)
    except CLIError as exc:
        if debug:
            raise
        return fail(f"error: {one_line(exc)}", exc.exit_code)
    except TrainingDiverged as exc:
        if debug:
            raise
        return fail(f"training diverged: {one_line(exc)}", 1)
    except MemoryError as exc:          # a size given or stored, too large for this machine
        if debug:
            raise
        return fail(f"error: not enough memory ({one_line(exc)}): a size given or stored in "
                    "the checkpoint (--hidden, --latent, --samples, --k, -n, --n-importance, "
                    "--batch-size) is too large for this machine", 2)
    except RecursionError:              # a file nested deeper than Python can read
        if debug:
            raise
        return fail("error: a file read is nested too deeply to be an npvae file", 2)
    except BrokenPipeError:              # `npvae ... | head`: the reader has gone
        _silence_stdout()
        return 141
    except (ValueError, OSError) as exc:
        if debug:
            raise
        return fail(f"error: {one_line(exc)}", 2)
    except Exception as exc:            # noqa: BLE001 (the last resort: one line, not a traceback)
        if debug:
            raise
        return fail(f"internal error: {type(exc).__name__}: {one_line(exc)} "
                    "(set NPVAE_DEBUG=1 for the traceback)", 1)


def _fail(command, message, code):
    sys.stdout.flush()
    print(f"npvae {command}: {message}", file=sys.stderr, flush=True)
    return code


def _silence_stdout():
    """Point stdout at /dev/null so that the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
