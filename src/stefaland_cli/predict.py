"""``stefaland predict``: arguments (the work: ``stefaland_hf.experiments.prediction``)."""

from __future__ import annotations

import argparse

from . import runs
from .checks import iso_dates, paths, period


DESCRIPTION = """\
Run a finetuned resConn adapter (on its frozen base) or a complete direct/scratch model over every
day of a period at the listed basins, e.g. basins without a gauge; writes OUT/timeseries/<basin>.csv
(units and provenance in the header), OUT/hydrographs/<basin>.png and OUT/summary.csv."""

LAYOUT = """\
folders (the raw CAMELS-US layout; an --extra-data-dir holds its forcing and streamflow parts):
  DATA_DIR/camels_attributes_v2.0/camels_{topo,soil,geol,vege,clim}.txt
      attributes (from --data-dir only)
  DIR/basin_mean_forcing/daymet/<HUC02>/<gauge_id>_lump_cida_forcing_leap.txt
      daily forcings
  DIR/usgs_streamflow/<HUC02>/<gauge_id>_streamflow_qc.txt
      observations, where the basin has a gauge

No basin is skipped silently: one without a forcing file or an attribute row is an error naming
it, and one without a streamflow file is an error unless --ungauged lists it (then it is predicted
without observations). Days get no prediction (empty cells; summary.csv counts days_predicted)
where the forcings are missing, or the record starts fewer than --warmup days before them."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="daily streamflow of a finetuned model at any CAMELS-layout basins, gauged or not (CSV + hydrographs)",
        description=DESCRIPTION,
        epilog=LAYOUT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--adapter", required=True, metavar="DIR", help="adapter/ (resConn) or model/ (direct, scratch) folder of a finetuning run, or a Hub id")
    parser.add_argument("--base", default=None, metavar="MODEL", help="the adapter's pretrained base (default: the one it was trained on)")
    parser.add_argument("--data-dir", required=True, metavar="DATA_DIR", help="raw CAMELS-US release folder (attributes; forcings)")
    parser.add_argument("--extra-data-dir", action="append", default=[], metavar="DIR", help="another folder with forcings, e.g. camels_us_ungauged/ (repeatable)")
    parser.add_argument("--ungauged", default=None, metavar="FILE", help="basin list of the basins without a streamflow file")
    parser.add_argument("--basins", required=True, metavar="FILE", help="basins to predict, one gauge id per line")
    parser.add_argument("--period", required=True, nargs="+", metavar="START,END", type=iso_dates, help="days to predict, inclusive (or START END)")
    parser.add_argument("--seq-len", type=int, default=None, help="window length in days (default: as finetuned)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up days per window (default: as finetuned)")
    parser.add_argument("--batch-size", type=int, default=64, help="windows per forward pass")
    parser.add_argument("--no-plots", action="store_true", help="write the CSVs only")
    parser.add_argument("--cache-dir", default=None, metavar="DIR", help="datasets cache folder")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace the prediction in --out")
    parser.set_defaults(func=runs("stefaland_hf.experiments.prediction", "run_cli",
                                  paths(data_dir="folder", extra_data_dir="folder", ungauged="list", basins="file"), period()))
