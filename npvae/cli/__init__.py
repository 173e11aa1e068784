"""The ``npvae`` command: train, evaluate, sample and plot.

``npvae train`` writes a run folder (``--out``) holding ``config.json``,
``checkpoint.npz`` (after every epoch; ``--resume`` continues from it),
``best.npz`` (best validation ELBO), ``history.jsonl``, ``results.json`` and
``figures/*.png``.  ``python -m npvae`` is the same command.

One module per concern, imports flowing one way (parser and common first):

* :mod:`.parser` — the argument parser (every flag, the ``--likelihood`` choices);
* :mod:`.common` — messages, data loading, run folders, ``_build_model``;
* :mod:`.figures` — :func:`write_figures`, the figures of a run folder;
* :mod:`.evaluate` — ``evaluate``, ``sample`` and ``plot``;
* :mod:`.train` — ``train``.
"""
from __future__ import annotations

import os
import sys

from .evaluate import cmd_evaluate, cmd_plot, cmd_sample
from .figures import write_figures
from .parser import DESCRIPTION, build_parser
from .train import cmd_train

__all__ = ["main", "build_parser", "cmd_train", "cmd_evaluate", "cmd_sample", "cmd_plot",
           "write_figures", "DESCRIPTION"]


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"train": cmd_train, "evaluate": cmd_evaluate, "sample": cmd_sample,
                "plot": cmd_plot}
    try:
        return handlers[args.command](args)
    except (ValueError, FileNotFoundError, OSError) as exc:
        if os.environ.get("NPVAE_DEBUG"):
            raise
        print(f"npvae {args.command}: error: {exc}", file=sys.stderr)
        return 2
