"""The ``stefaland`` command, parsed without importing torch, transformers or datasets.

``stefaland --help`` and every subcommand's ``--help`` answer at once: this package defines the arguments
(one module per subcommand) and imports the ``stefaland_hf`` code that does the work only when a command runs,
after the checks that need no import (files and folders exist, dates, options that go together:
:mod:`stefaland_cli.checks`), so a wrong argument fails before torch loads. Lists of choices that the work's code
also holds (presets, head modes, datasets, ``--set`` sections) are checked against it by ``tests/test_cli.py``.
The example scripts report errors the same way (:mod:`stefaland_cli.scripts`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable

# module of this package -> provides ``add_parser(subparsers)``
SUBCOMMANDS = ("demo", "benchmark", "probe_curve", "compare", "reconstruct", "predict", "push", "export", "convert")

# errors that describe bad input or a bad environment; anything else is reported as a likely bug
USER_ERRORS = (ValueError, LookupError, OSError)


def runs(module: str, function: str, *checks: Callable[[argparse.Namespace], None]):
    """A parser ``func`` that runs ``checks`` (light: :mod:`stefaland_cli.checks`), then imports ``module`` (heavy)
    and calls ``function``: a missing file or a wrong combination of options fails before torch loads."""

    def run(args: argparse.Namespace) -> int:
        for check in checks:
            check(args)
        return getattr(importlib.import_module(module), function)(args)

    return run


def report_errors(prog: str, work: Callable[[], int | None], debug: bool = False, rerun: str = "rerun with --debug") -> int:
    """``work()``'s exit status; an error becomes one line ``PROG: error: ...`` on stderr and status 2 (``debug``:
    the exception propagates, traceback and all). ``USER_ERRORS`` are bad input or a bad environment; anything else
    is reported as a likely bug, with how to ``rerun`` for the traceback. ``stefaland`` and the example scripts
    (:func:`stefaland_cli.scripts.run_script`) both report this way."""
    try:
        return int(work() or 0)
    except Exception as error:  # one clear line for the user; the traceback with --debug
        if debug:
            raise
        user = isinstance(error, USER_ERRORS)
        message = str(error) if user else f"unexpected {type(error).__name__}: {error}"
        hint = "" if user else f" ({rerun} for the traceback and report it)"
        print(f"{prog}: error: {message}{hint}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stefaland", description="StefaLand land-surface foundation model tools")
    parser.add_argument("--debug", action="store_true", help="on an error, show the full traceback instead of one line")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return report_errors(f"stefaland {args.command}", lambda: args.func(args), args.debug, "rerun as `stefaland --debug ...`")


__all__ = ["build_parser", "main", "runs", "report_errors", "USER_ERRORS"]
