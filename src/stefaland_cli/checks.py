"""Checks of command-line values that need no heavy import, for ``stefaland`` and the example scripts.

``argparse`` checks types and choices while it parses: :func:`iso_date`, :func:`assignment` and
:func:`label_and_folder` are such types. What a parse should not check (whether a file or folder exists,
options that only go together) is checked after it and before the work's modules load, by the functions
that :func:`paths` and :func:`needs_data_dir` return: they take the parsed namespace and raise a
``ValueError``/``FileNotFoundError`` naming the option, so a mistyped path fails at once rather than after
torch has loaded. (Parsing alone stays free of the file system, so documented command lines can be
parsed where their folders do not exist.)
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
from pathlib import Path
from typing import Callable

#: site datasets read from a raw release folder (``--data-dir``); the others are generated (the values of
#: ``stefaland_hf.data.BUILDERS``, checked by tests/test_cli.py)
RAW_DATASETS = ("camels_us", "hydrodl_smap", "caravan")
DATASETS = ("synthland", *RAW_DATASETS)

Check = Callable[[argparse.Namespace], None]


def flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _is_there(value: str, kind: str, data_dir: str | None) -> bool:
    path = Path(value).expanduser()
    if kind == "folder":
        return path.is_dir()
    if kind == "path":
        return path.exists()
    # a basin list ("list") is looked for in the working directory, then in --data-dir, as the builders do, or names a
    # list shipped with the package
    if kind == "list" and value in shipped_basin_lists():
        return True
    return path.is_file() or (kind == "list" and bool(data_dir) and not path.is_absolute() and (Path(data_dir) / path).is_file())


def shipped_basin_lists() -> set[str]:
    """Names of the basin lists in ``stefaland_hf/data/basin_lists`` (found without importing the package)."""
    spec = importlib.util.find_spec("stefaland_hf")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "basin_lists"
    return {path.stem for path in folder.glob("*.txt")}


_WHAT = {"folder": "no such folder", "file": "no such file", "path": "no such file or folder",
         "list": "no such file (looked in the working directory and in --data-dir) nor a shipped list (camels_us_531)"}


def paths(positional: tuple[str, ...] = (), **kinds: str) -> Check:
    """A check that each named option, when given, exists: ``kinds`` maps its dest to ``"file"``, ``"folder"``,
    ``"path"`` (either), ``"list"`` (a basin-list file, also looked for in ``--data-dir``) or ``"labelled folder"``
    (``LABEL=DIR``); a list value (``--extra-data-dir A --extra-data-dir B``) is checked item by item. Errors name
    an option by its flag, a ``positional`` argument by its name."""

    def check(args: argparse.Namespace) -> None:
        for dest, kind in kinds.items():
            value = getattr(args, dest, None)
            for item in value if isinstance(value, list) else [value] if value else []:
                path, is_a = (item.partition("=")[2], "folder") if kind == "labelled folder" else (item, kind)
                if not _is_there(path, is_a, getattr(args, "data_dir", None)):
                    raise FileNotFoundError(f"{dest if dest in positional else flag(dest)} {item}: {_WHAT[is_a]}")

    return check


def needs_data_dir(dataset_dest: str = "dataset") -> Check:
    """A check that a dataset read from raw files (:data:`RAW_DATASETS`) comes with ``--data-dir``."""

    def check(args: argparse.Namespace) -> None:
        dataset = getattr(args, dataset_dest, None)
        if dataset in RAW_DATASETS and not getattr(args, "data_dir", None):
            raise ValueError(f"--data-dir: {dataset} is read from its raw release folder; name it with --data-dir DIR")

    return check


def iso_date(value: str) -> str:
    """An ``argparse`` type: an ISO date ``YYYY-MM-DD`` (kept as the string)."""
    try:
        datetime.date.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO date (YYYY-MM-DD)") from None
    return value.strip()


def iso_dates(value: str) -> str:
    """An ``argparse`` type: ``DATE`` or ``DATE,DATE`` (ISO dates; the count is the command's to check)."""
    for part in value.split(","):
        if part.strip():
            iso_date(part)
    return value


def period(dest: str = "period") -> Check:
    """A check that ``--period`` (items of :func:`iso_dates`) holds two dates, the start not after the end."""

    def check(args: argparse.Namespace) -> None:
        dates = [p.strip() for v in getattr(args, dest) for p in v.split(",") if p.strip()]
        if len(dates) != 2:
            raise ValueError(f"{flag(dest)} {' '.join(getattr(args, dest))}: expected START,END (two ISO dates, e.g. 1989-10-01,1999-09-30)")
        if dates[0] > dates[1]:
            raise ValueError(f"{flag(dest)} {dates[0]},{dates[1]}: the start is after the end")

    return check


def assignment(sections: tuple[str, ...]) -> Callable[[str], str]:
    """An ``argparse`` type for ``--set SECTION.FIELD=VALUE`` with SECTION one of ``sections`` (the field and its
    value are checked against the section's arguments class when the command runs)."""

    def parse(value: str) -> str:
        key, equals, _ = value.partition("=")
        section, dot, name = key.partition(".")
        if not (equals and dot and name) or section not in sections:
            raise argparse.ArgumentTypeError(f"{value!r}: expected SECTION.FIELD=VALUE with SECTION one of {list(sections)}")
        return value

    return parse


def label_and_folder(value: str) -> str:
    """An ``argparse`` type for ``LABEL=DIR``."""
    label, equals, folder = value.partition("=")
    if not (label and equals and folder):
        raise argparse.ArgumentTypeError(f"{value!r}: expected LABEL=DIR")
    return value


def hub_repo_id(value: str) -> str:
    """An ``argparse`` type: a Hub repo id ``NAMESPACE/NAME`` (new repos always have a namespace)."""
    if value.count("/") != 1 or not all(value.split("/")):
        raise argparse.ArgumentTypeError(f"{value!r}: expected a Hub repo id NAMESPACE/NAME (e.g. your user name or organisation / a repo name)")
    return value


def only_for(dataset: str | tuple[str, ...], *dests: str) -> Check:
    """A check that builder options ``dests`` come only with ``--dataset dataset`` (one name or several; they mean
    nothing to another)."""
    datasets = (dataset,) if isinstance(dataset, str) else tuple(dataset)

    def check(args: argparse.Namespace) -> None:
        given = [flag(d) for d in dests if getattr(args, d, None)]
        if given and getattr(args, "dataset", datasets[0]) not in datasets:
            raise ValueError(f"{'/'.join(given)}: apply to --dataset {' or '.join(datasets)}, not {args.dataset}")

    return check


def distinct(dest: str, what: str) -> Check:
    """A check that the list option ``dest`` names nothing twice."""

    def check(args: argparse.Namespace) -> None:
        values = getattr(args, dest, None) or []
        if len(set(values)) != len(values):
            raise ValueError(f"{flag(dest)} {' '.join(map(str, values))}: {what} is listed twice")

    return check


def positive_int(value: str) -> int:
    """An ``argparse`` type: an integer of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return number
