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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
