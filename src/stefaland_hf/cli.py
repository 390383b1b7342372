"""The ``stefaland`` command. Each subcommand lives beside the code it drives.

Modules that provide a subcommand expose ``add_cli_parser(subparsers)``, which registers a parser
whose ``func`` attribute takes the parsed arguments.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# module -> provides `add_cli_parser(subparsers)`
SUBCOMMAND_MODULES = (
    "stefaland_hf.experiments.demo",
    "stefaland_hf.experiments.benchmark",
    "stefaland_hf.experiments.compare",
    "stefaland_hf.hub",
    "stefaland_hf.convert_original",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stefaland", description="StefaLand land-surface foundation model tools")
    parser.add_argument("--debug", action="store_true", help="on an error, show the full traceback instead of one line")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        module.add_cli_parser(subparsers)
    return parser


# errors that describe bad input or a bad environment; anything else is reported as a likely bug
USER_ERRORS = (ValueError, LookupError, OSError)


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


if __name__ == "__main__":
    sys.exit(main())
