"""``stefaland compare``: arguments (the work: ``stefaland_hf.experiments.compare``)."""

from __future__ import annotations

from pathlib import Path

from . import runs
from .checks import label_and_folder, paths


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("compare", help="benchmark runs on the same folds side by side, paired against a reference")
    parser.add_argument("--run", action="append", required=True, metavar="LABEL=DIR", type=label_and_folder, help="a benchmark output folder (results.json, or seed_N/results.json of --training-seeds); repeatable")
    parser.add_argument("--reference", nargs=2, required=True, metavar=("LABEL", "MODEL"), help="run label and model to pair against")
    parser.add_argument("--metric", default="nse", help="a per-basin metric of results.json (nse, kge, rmse, ...)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    parser.set_defaults(func=runs("stefaland_hf.experiments.compare", "run_cli", paths(run="labelled folder")))
