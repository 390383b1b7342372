"""``stefaland probe-curve``: arguments (the work: ``stefaland_hf.experiments.probe_curve``)."""

from __future__ import annotations

from . import runs
from .benchmark import PRESETS, SECTIONS
from .checks import assignment, needs_data_dir, paths

HEADS = ("linear_probe", "no_adapter", "resconn")  # stefaland_hf.experiments.probe_curve.HEADS


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "probe-curve", help="score frozen-encoder heads at each checkpoint of a pretraining run (step 0: a random encoder)",
        description="Finetune linear_probe, no_adapter and resconn on one fixed PUB split for step 0 (a random encoder of the "
                    "run's configuration) and every complete checkpoint of a pretraining run folder; writes probe_curve.json/.csv/.png.",
    )
    parser.add_argument("--run", required=True, help="pretraining run folder (its checkpoints/ holds config.json and step_N)")
    parser.add_argument("--dataset", default="camels_us", choices=["camels_us", "synthland"], help="site dataset (default camels_us)")
    parser.add_argument("--data-dir", default=None, help="raw CAMELS-US release folder (camels_us)")
    parser.add_argument("--basins", default=None, help="basin list file, or camels_us_531 (the standard subset; default: DIR/basin_list.txt)")
    parser.add_argument("--extra-data-dir", nargs="+", default=None, metavar="DIR",
                        help="more folders in the CAMELS raw layout searched for forcing and streamflow files (the unpacked shared archives)")
    parser.add_argument("--preset", choices=PRESETS, default="cpu-quick", help="finetuning settings and periods (benchmark presets)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE", type=assignment(SECTIONS),
                        help="change a preset field, as in stefaland benchmark (repeatable)")
    parser.add_argument("--folds", type=int, default=5, help="PUB folds drawn from --seed")
    parser.add_argument("--fold", type=int, default=0, help="the fold scored (default 0)")
    parser.add_argument("--seed", type=int, default=111, help="draws the folds, the random encoder and the finetuning")
    parser.add_argument("--steps", type=int, nargs="+", default=None, help="only these checkpoint steps (default: every complete one)")
    parser.add_argument("--heads", nargs="+", choices=HEADS, default=list(HEADS), help="heads to score (default: all three)")
    parser.add_argument("--cache-dir", default=None, help="datasets cache folder")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--resume", action="store_true", help="continue (and extend with new checkpoints) the curve in --out")
    parser.add_argument("--overwrite", action="store_true", help="replace the curve in --out")
    parser.set_defaults(func=runs("stefaland_hf.experiments.probe_curve", "run_cli", paths(run="folder", data_dir="folder", extra_data_dir="folder", basins="list"),
                                  needs_data_dir()))
