"""``stefaland export``: arguments (the work: ``stefaland_hf.experiments.export``)."""

from __future__ import annotations

from . import runs
from .checks import paths


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="a finetuned resConn adapter as one complete model folder (loads without PEFT or a separate base)",
        description=(
            "Load ADAPTER on the base it names, make its head the model's own, and write OUT: config.json, "
            "model.safetensors, finetuning.json (its training basins and periods) and a model card; "
            "with --benchmark, the card states the held-out skill the benchmark measured for the same recipe."
        ),
    )
    parser.add_argument("adapter", help="the adapter/ folder of a resConn finetuning run (with report.json beside it)")
    parser.add_argument("out", help="the complete model folder to write (e.g. modeling/NAME for the model zoo)")
    parser.add_argument("--benchmark", metavar="RESULTS", help="results.json of a `stefaland benchmark` run of the same recipe")
    parser.add_argument("--benchmark-model", default="StefaLand resConn", metavar="LABEL", help="that benchmark's label of the model")
    parser.add_argument("--benchmark-command", metavar="TEXT", help="the command that ran the benchmark, quoted on the card")
    parser.add_argument("--summary", metavar="TEXT", help="the card's opening paragraph (default: generated)")
    parser.add_argument("--card-location", metavar="NAME", help="what the card's code loads the model by: a model-zoo short name or Hub id (default: OUT)")
    parser.add_argument("--host", metavar="TEXT", help="the finetuning's machine, precision and threads, for the card")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT")
    parser.set_defaults(func=runs("stefaland_hf.experiments.export", "run_cli", paths(("adapter",), adapter="folder", benchmark="file")))
