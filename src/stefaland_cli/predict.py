"""``stefaland predict``: arguments (the work: ``stefaland_hf.experiments.prediction``)."""

from __future__ import annotations

import argparse

from . import runs
from .checks import iso_dates, only_for, paths, period, positive_int


DESCRIPTION = """\
Run a finetuned model over every day at any basin. Tables: --forcings (daily, a date column, canonical
names; several basins by a basin_id column) and --attributes write OUT/predictions.csv, hydrographs
and OUT/report.json. CAMELS-US or Caravan layout (--dataset): --data-dir, --basins and --period write
OUT/timeseries/<basin>.csv, OUT/hydrographs/<basin>.png and OUT/summary.csv."""

LAYOUT = """\
Caravan layout (--dataset caravan; gauge ids <source>_<id>, e.g. camels_01022500): DATA_DIR/
  timeseries/csv/<source>/<id>.csv, attributes/<source>/attributes_{other,caravan,hydroatlas}_<source>.csv
CAMELS-US layout (an --extra-data-dir holds forcing and streamflow parts):
  DATA_DIR/camels_attributes_v2.0/camels_{topo,soil,geol,vege,clim}.txt  (attributes)
  DIR/basin_mean_forcing/daymet/<HUC02>/<gauge_id>_lump_cida_forcing_leap.txt
  DIR/usgs_streamflow/<HUC02>/<gauge_id>_streamflow_qc.txt  (where gauged)
No basin is skipped silently: one without forcings or an attribute row is an error naming it; a CAMELS
basin without a streamflow file is one unless --ungauged lists it. Days get no prediction (empty cells;
summary.csv counts days_predicted) where forcings are missing or fewer than --warmup days precede them."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="daily streamflow of a finetuned model at any basins (tables, CAMELS-US or Caravan layout), gauged or not",
        description=DESCRIPTION,
        epilog=LAYOUT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--adapter", "--model", required=True, metavar="DIR", help="adapter/ or model/ folder of a finetuning run, or a Hub id")
    parser.add_argument("--base", default=None, metavar="MODEL", help="the adapter's pretrained base (default: the one it was trained on)")
    parser.add_argument("--forcings", default=None, metavar="FILE", help="daily forcing table (.csv or .parquet)")
    parser.add_argument("--attributes", default=None, metavar="FILE", help="attribute table: one row, or one per basin_id")
    parser.add_argument("--rename", action="append", default=[], metavar="OLD=NEW", help="a column's canonical name (repeatable)")
    parser.add_argument("--dataset", default="camels_us", choices=["camels_us", "caravan"], metavar="LAYOUT", help="of --data-dir: camels_us (default) or caravan")
    parser.add_argument("--data-dir", default=None, metavar="DATA_DIR", help="raw CAMELS-US or Caravan release folder")
    parser.add_argument("--extra-data-dir", action="append", default=[], metavar="DIR", help="another folder with forcings, e.g. camels_us_ungauged/ (repeatable)")
    parser.add_argument("--ungauged", default=None, metavar="FILE", help="basin list of the basins without a streamflow file")
    parser.add_argument("--basins", default=None, metavar="FILE", help="basins to predict, one gauge id per line")
    parser.add_argument("--period", default=None, nargs="+", metavar="START,END", type=iso_dates, help="days to predict, inclusive (or START END)")
    parser.add_argument("--seq-len", type=int, default=None, help="window length in days (default: as finetuned)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up days per window (default: as finetuned)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="windows per forward pass")
    parser.add_argument("--no-plots", action="store_true", help="write the tables only")
    parser.add_argument("--cache-dir", default=None, metavar="DIR", help="datasets cache folder")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace the prediction in --out")
    parser.set_defaults(func=_dispatch)


def _one_mode(args: argparse.Namespace) -> None:
    tables, layout = args.forcings is not None, [f"--{n.replace('_', '-')}" for n in ("data_dir", "basins", "period") if getattr(args, n)]
    if tables and layout:
        raise ValueError(f"--forcings: predicts from tables; drop {', '.join(layout)} (the CAMELS-US and Caravan layouts' options)")
    if not tables and len(layout) < 3:
        raise ValueError("give --forcings FILE (tables), or --data-dir, --basins and --period (the CAMELS-US layout, or Caravan's with --dataset caravan)")


def _rename(value: str) -> str:
    if value.count("=") != 1 or not all(value.split("=")):
        raise ValueError(f"--rename {value!r}: expected OLD=NEW")
    return value


def _dispatch(args: argparse.Namespace) -> int:
    _one_mode(args)
    if args.forcings is not None:
        [_rename(value) for value in args.rename]
        return runs("stefaland_hf.experiments.tables", "run_cli", paths(forcings="file", attributes="file"))(args)
    return runs("stefaland_hf.experiments.prediction", "run_cli",
                paths(data_dir="folder", extra_data_dir="folder", ungauged="list", basins="file"), period(),
                only_for("camels_us", "extra_data_dir", "ungauged"))(args)
