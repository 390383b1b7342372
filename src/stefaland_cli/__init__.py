"""The ``stefaland`` command, parsed without importing torch, transformers or datasets.

``stefaland --help`` and every subcommand's ``--help`` answer at once: this package defines the arguments
(one module per subcommand) and imports the ``stefaland_hf`` code that does the work only when a command runs.
Lists of choices that the work's code also holds (presets, head modes) are checked against it by
``tests/test_cli.py``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# module of this package -> provides ``add_parser(subparsers)``
SUBCOMMANDS = ("demo", "benchmark", "compare", "reconstruct", "predict", "push", "convert")

# errors that describe bad input or a bad environment; anything else is reported as a likely bug
USER_ERRORS = (ValueError, LookupError, OSError)


def runs(module: str, function: str):
    """A parser ``func`` that imports ``module`` (heavy) only when the command runs, then calls ``function``."""

    def run(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), function)(args)

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stefaland", description="StefaLand land-surface foundation model tools")
    parser.add_argument("--debug", action="store_true", help="on an error, show the full traceback instead of one line")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Exception as error:  # one clear line for the user; the traceback with --debug
        if args.debug:
            raise
        message = str(error) if isinstance(error, USER_ERRORS) else f"unexpected {type(error).__name__}: {error}"
        hint = "" if isinstance(error, USER_ERRORS) else " (rerun as `stefaland --debug ...` for the traceback and report it)"
        print(f"stefaland {args.command}: error: {message}{hint}", file=sys.stderr)
        return 2


__all__ = ["build_parser", "main", "runs"]
