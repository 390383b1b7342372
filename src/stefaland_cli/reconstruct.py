"""``stefaland reconstruct``: arguments (the work: ``stefaland_hf.experiments.reconstruction``)."""

from __future__ import annotations

from . import runs
from .checks import iso_date, only_for, paths, period, positive_int


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "reconstruct",
        help="zero-shot reconstruction of pretrained encoders on held-out sites (no finetuning)",
        description=(
            "Hide one forcing over whole windows (or one static group) at sites no model was pretrained on, "
            "reconstruct it, and tabulate median NSE per forcing and NSE across sites per attribute, one column per model."
        ),
    )
    parser.add_argument("--models", nargs="+", required=True, metavar="MODEL", help="pretrained models: folders, short names or Hub ids")
    parser.add_argument("--dataset", choices=["camels_us", "hydrodl_smap"], default="camels_us", help="site dataset of the held-out sites")
    parser.add_argument("--data-dir", required=True, help="raw release folder")
    parser.add_argument("--extra-data-dir", action="append", default=[], metavar="DIR", help="camels_us: another raw-layout folder (repeatable)")
    parser.add_argument("--ungauged", default=None, metavar="FILE", help="camels_us: basin-list file of basins without streamflow")
    parser.add_argument("--sites", required=True, metavar="FILE", help="site ids to score, one per line (sites kept out of every model's pretraining)")
    parser.add_argument("--period", nargs=2, metavar=("START", "END"), type=iso_date, default=["1989-10-01", "1999-09-30"], help="days scored (inclusive)")
    parser.add_argument("--seq-len", type=int, default=365, help="window length in days")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="windows per forward pass")
    parser.add_argument("--out", default="reconstruction", help="folder for reconstruction.md and reconstruction.json")
    parser.set_defaults(func=runs("stefaland_hf.experiments.reconstruction", "run_cli", paths(data_dir="folder", extra_data_dir="folder", ungauged="list", sites="file"),
                                 only_for("camels_us", "extra_data_dir", "ungauged"), period()))
