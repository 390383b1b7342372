"""The example scripts' command line, answered and checked before torch, transformers or datasets load.

An example script (``examples/pretrain.py``, ``examples/finetune_*.py``) defines ``build_parser()`` (its
``HfArgumentParser``: building it imports transformers and torch), ``main(argv)`` (the work) and ``MAIN_OPTIONS``
(the dests ``--help`` shows), and ends in ``sys.exit(run_script(sys.modules[__name__]))``.
:func:`run_script` then

- answers ``--help`` with the main options (one screen) and ``--help-all`` with every option;
- parses the command line against the script's options as ``examples/script_options.json`` records them (every
  option's flags, arity, choices and int/float type, and the help of the main ones), so that a mistyped option, a
  wrong choice, a missing argument or a missing folder fails at once. The file is written from ``build_parser()``
  by ``python -m stefaland_cli.scripts --write`` (tests/test_scripts.py checks that it is current) under one
  transformers version; with another, the options are read from ``build_parser()`` itself (slower, as exact);
- then runs ``main`` and reports an error as ``stefaland`` does (:func:`stefaland_cli.report_errors`): one line
  ``examples/NAME.py: error: ...`` and exit status 2, or the traceback with ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import sys
import textwrap
from pathlib import Path
from typing import Callable, Sequence

from . import report_errors
from .checks import needs_data_dir, only_for, paths

SPEC_FILE = "script_options.json"
# what every script's data options must satisfy (the dests of stefaland_hf.training.arguments.DataArguments)
CHECKS = (
    paths(data_dir="folder", extra_data_dir="folder", basins="list", ungauged="list", recipe="path"),
    needs_data_dir(),
    only_for(("camels_us", "caravan"), "basins"),
    only_for("camels_us", "extra_data_dir", "ungauged"),
    only_for("hydrodl_smap", "missing_targets"),
)
_TYPES = {"int": int, "float": float}


class UsageError(ValueError):
    """A command line the script's options do not accept."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(f"{message} (see --help)")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """The docstring as written; each option once (its dashed spelling, a short metavar), its help up to two lines
    and its default where it has one."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        flag = next((f for f in reversed(action.option_strings) if "_" not in f), action.option_strings[-1])
        if action.nargs == 0 or action.nargs == "?" and action.const is True:  # a flag, or a true/false option
            return flag
        return f"{flag} {self._format_args(action, action.dest.rsplit('_', 1)[-1].upper())}"

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help if len(action.help) <= 100 else action.help[: action.help.rfind(" ", 0, 98)] + " ..."
        shown = action.default not in (None, False, argparse.SUPPRESS) and "default" not in text
        return text + (" (default: %(default)s)" if shown else "")


def describe(parser: argparse.ArgumentParser, shown: Sequence[str]) -> list[dict]:
    """Every option of ``parser`` as JSON: flags, dest, arity, const, choices, required, int/float type, metavar and
    default (each left out where None, required where false); the options whose dest is in ``shown`` (the first of
    that dest) come first, in that order, with their help."""
    actions = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    first: dict[str, argparse.Action] = {}
    for action in actions:
        first.setdefault(action.dest, action)
    unknown = [dest for dest in shown if dest not in first]
    if unknown:
        raise ValueError(f"MAIN_OPTIONS {unknown}: not options of the parser")
    main = [first[dest] for dest in shown]
    options = []
    for action in main + [a for a in actions if not any(a is m for m in main)]:
        option = {"flags": list(action.option_strings), "dest": action.dest, "nargs": action.nargs,
                  "const": action.const if isinstance(action.const, (bool, int, float, str)) else None,
                  "choices": None if action.choices is None else [str(c) for c in action.choices],
                  "required": bool(action.required), "type": action.type.__name__ if action.type in (int, float) else None,
                  "metavar": action.metavar if isinstance(action.metavar, str) else None, "default": _plain(action.default)}
        option = {key: value for key, value in option.items() if value is not None and (key, value) != ("required", False)}
        if any(action is m for m in main):
            option["help"] = action.help
        options.append(option)
    return options


def _plain(value):
    """``value`` as JSON: as it is when a bool, number, string or list of them (a list option's default, e.g.
    ``--quantiles``), else its text; None stays None."""
    if value is None or value is argparse.SUPPRESS or isinstance(value, (bool, int, float, str)):
        return None if value is argparse.SUPPRESS else value
    return value if isinstance(value, list) and all(isinstance(v, (bool, int, float, str)) for v in value) else str(value)


def _transformers_version() -> str | None:
    try:
        return importlib.metadata.version("transformers")
    except importlib.metadata.PackageNotFoundError:
        return None


def script_options(script: str | Path, build_parser: Callable[[], argparse.ArgumentParser], shown: Sequence[str]) -> list[dict]:
    """The options of ``script``: from its folder's ``script_options.json`` when written under the installed
    transformers version, else from ``build_parser()`` (importing transformers)."""
    spec = Path(script).with_name(SPEC_FILE)
    if spec.is_file():
        recorded = json.loads(spec.read_text())
        if recorded.get("transformers") == _transformers_version() and Path(script).stem in recorded["scripts"]:
            return recorded["scripts"][Path(script).stem]
    return describe(build_parser(), shown)


def summary(doc: str | None) -> str:
    """A script docstring's opening: its first paragraph and the example command lines after it."""
    paragraphs = (doc or "").strip().split("\n\n")
    kept = paragraphs[:1] + [p for p in paragraphs[1:2] if p.startswith("    ")]
    return "\n\n".join(kept)


def light_parser(prog: str, options: list[dict], description: str = "") -> argparse.ArgumentParser:
    """An ``argparse`` parser of ``options`` (:func:`describe`) that imports nothing: it checks flags, arity,
    choices, required options and int/float values; its help lists the options that carry a help text."""
    shown = sum("help" in o for o in options)
    parser = _Parser(
        prog=prog, usage="%(prog)s [options]", description=description, add_help=False, formatter_class=_Formatter,
        epilog=textwrap.fill(f"--help-all: all {len(options)} options (with every transformers.TrainingArguments field where the "
                             "script trains with Trainer). --debug (without a value): on an error, the full traceback.", 100),
    )
    parser.add_argument("-h", "--help", action="help", help=f"these {shown} main options")
    for option in options:
        kwargs = {"dest": option["dest"], "required": option.get("required", False), "help": option.get("help", argparse.SUPPRESS),
                  "default": option.get("default")}
        nargs, const, choices = option.get("nargs"), option.get("const"), option.get("choices")
        if nargs == 0:
            kwargs.update(action="store_const", const=const)
        else:  # choices are compared as written, so a typed option with choices keeps its text
            kwargs.update(nargs=nargs, choices=choices, type=None if choices else _TYPES.get(option.get("type")))
            if nargs == "?":
                kwargs["const"] = const
            if option.get("metavar") or choices and len(",".join(choices)) > 40:
                kwargs["metavar"] = option.get("metavar") or option["dest"].rsplit("_", 1)[-1].upper()
        parser.add_argument(*option["flags"], **kwargs)
    parser.add_argument("--help-all", action="store_true", help="all options")
    return parser


def _traceback_flag(argv: list[str]) -> tuple[bool, list[str]]:
    """Whether ``--debug`` asks for the traceback, and ``argv`` without it. A ``--debug`` followed by a value is
    Trainer's own option (``TrainingArguments.debug``) and stays."""
    debug, rest = False, []
    for i, word in enumerate(argv):
        if word == "--debug" and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            debug = True
        else:
            rest.append(word)
    return debug, rest


def run_script(script, argv: list[str] | None = None) -> int:
    """The exit status of the example ``script`` (its module: ``build_parser``, ``main``, ``MAIN_OPTIONS``, its
    docstring) run with ``argv`` (default: ``sys.argv[1:]``); see the module docstring."""
    path = Path(script.__file__)
    prog = f"{path.parent.name}/{path.name}"
    debug, argv = _traceback_flag(sys.argv[1:] if argv is None else list(argv))
    if "--help-all" in argv:
        return report_errors(prog, lambda: script.build_parser().print_help(), debug)

    def check() -> None:
        options = script_options(path, script.build_parser, script.MAIN_OPTIONS)
        args = light_parser(prog, options, summary(script.__doc__)).parse_args(argv)
        for each in CHECKS:
            each(args)

    return report_errors(prog, check, debug) or report_errors(prog, lambda: script.main(argv), debug)


def load_example(path: Path):
    """The example script at ``path`` as a module (not run as ``__main__``)."""
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def recorded_options(folder: str | Path) -> dict:
    """``script_options.json`` for the example scripts in ``folder`` (those with ``MAIN_OPTIONS``), as it should be now."""
    scripts = {}
    for path in sorted(Path(folder).glob("*.py")):
        module = load_example(path)
        if hasattr(module, "MAIN_OPTIONS"):
            scripts[path.stem] = describe(module.build_parser(), module.MAIN_OPTIONS)
    return {"written_by": "python -m stefaland_cli.scripts --write (tests/test_scripts.py checks that it is current)",
            "transformers": _transformers_version(), "scripts": scripts}


def dumps(recorded: dict) -> str:
    """The file's text: one option per line, so that a change to an option is a one-line diff."""
    lines = ["{", f' "written_by": {json.dumps(recorded["written_by"])},', f' "transformers": {json.dumps(recorded["transformers"])},',
             ' "scripts": {']
    for i, (name, options) in enumerate(recorded["scripts"].items()):
        lines.append(f'  {json.dumps(name)}: [')
        lines += [f"   {json.dumps(o)}" + ("," if k < len(options) - 1 else "") for k, o in enumerate(options)]
        lines.append("  ]" + ("," if i < len(recorded["scripts"]) - 1 else ""))
    return "\n".join(lines + [" }", "}", ""])


if __name__ == "__main__":
    cli = argparse.ArgumentParser(prog="python -m stefaland_cli.scripts", description="write or check examples/script_options.json")
    cli.add_argument("--write", action="store_true", help="write the file (default: say whether it is current)")
    cli.add_argument("--folder", default=str(Path(__file__).resolve().parents[2] / "examples"), help="the example scripts' folder")
    options = cli.parse_args()
    text, target = dumps(recorded_options(options.folder)), Path(options.folder) / SPEC_FILE
    if options.write:
        target.write_text(text)
        print(f"wrote {target}")
    else:
        print(f"{target}: {'current' if target.is_file() and target.read_text() == text else 'out of date: rerun with --write'}")
