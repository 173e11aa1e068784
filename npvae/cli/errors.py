"""The one exception the commands raise for the user to act on."""
from __future__ import annotations


class CLIError(Exception):
    """An error the user can act on: :func:`npvae.cli.main` prints ``npvae COMMAND:
    error: MESSAGE`` (one line) and exits with ``exit_code`` (2: a usage or data
    error; 1: a diverged run)."""

    def __init__(self, message, exit_code=2):
        super().__init__(message)
        self.exit_code = exit_code
