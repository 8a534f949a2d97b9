"""What the commands share: the exit statuses, one-line errors, optional packages, a saved model."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any, NoReturn

#: Exit status of every error (bad usage and failures at run time alike), as argparse's.
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
#: Exit status when stdout's reader has gone (``| head``): a tool killed by SIGPIPE's, quietly.
EXIT_BROKEN_PIPE = 141
#: Set by ``main``'s SIGINT handler: a Ctrl-C that a library swallowed still ends the command.
SIGINT_SEEN: list[bool] = []
_ERRORS = (ValueError, TypeError, OSError, FloatingPointError)  # FileNotFoundError is an OSError


class CommandError(Exception):
    """A failure the command reports in one line (a missing optional package, bad input)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (``fastbp: error: ...``), status 2."""

    def error(self, message: str) -> NoReturn:
        hint = f"; see '{self.prog} --help'"
        self.exit(EXIT_ERROR, f"fastbp: error: {message}{hint}\n")


def _optional(module: str, extra: str, purpose: str) -> Any:
    """Import an optional package, or fail with one line saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = "Pillow" if module.startswith("PIL") else module
        raise CommandError(
            f"{purpose} needs {package}, which is not installed; "
            f"install it with: python -m pip install 'fastbp[{extra}]'"
        ) from None


def _load_model(path: str) -> Any:
    from ..network import Network

    if not Path(path).is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    return Network.load(path)
