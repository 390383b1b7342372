"""``stefaland predict``: arguments (the work: ``stefaland_hf.experiments.prediction``)."""

from __future__ import annotations

from . import runs


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="daily streamflow of a finetuned model at any CAMELS-layout basins, gauged or not (CSV + hydrographs)",
        description=(
            "Run a finetuned resConn adapter (on its frozen base) or a complete direct/scratch model over every day of a "
            "period at the listed basins, e.g. basins without a gauge; writes OUT/timeseries/<basin>.csv (units and "
            "provenance in the header), OUT/hydrographs/<basin>.png and OUT/summary.csv."
        ),
    )
    parser.add_argument("--adapter", required=True, help="the adapter/ (resConn) or model/ (direct, scratch) folder of a finetuning run, or a Hub id")
    parser.add_argument("--base", default=None, help="the adapter's pretrained base (folder, short name or Hub id); default: the base it was trained on")
    parser.add_argument("--data-dir", required=True, help="raw CAMELS-US release folder (attributes; forcings of the gauged basins)")
    parser.add_argument("--extra-data-dir", action="append", default=[], metavar="DIR", help="another raw-layout folder with forcings, e.g. the unpacked camels_us_ungauged/ (repeatable)")
    parser.add_argument("--ungauged", default=None, metavar="FILE", help="basin-list file of the basins without a streamflow file (e.g. camels_us_ungauged/basin_list.txt)")
    parser.add_argument("--basins", required=True, metavar="FILE", help="basins to predict, one gauge id per line")
    parser.add_argument("--period", required=True, nargs="+", metavar="START,END", help="days to predict, inclusive: START,END (or START END)")
    parser.add_argument("--seq-len", type=int, default=None, help="window length in days (default: as the model was finetuned)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up days per window (default: as the model was finetuned)")
    parser.add_argument("--batch-size", type=int, default=64, help="windows per forward pass")
    parser.add_argument("--no-plots", action="store_true", help="write the CSVs only")
    parser.add_argument("--cache-dir", default=None, help="datasets cache folder")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace the prediction in --out")
    parser.set_defaults(func=runs("stefaland_hf.experiments.prediction", "run_cli"))
