"""CAMELS-US (Newman et al. 2015; Addor et al. 2017) from its raw release layout, as a ``datasets`` builder.

Usage::

    b = CamelsUS(data_dir="/path/camels_us", cache_dir=tmp, forcing="daymet", basins=["01022500"])
    b.download_and_prepare()
    ds = b.as_dataset(split="all")   # one example per basin, schema of ``schema.site_features``

Layout read (``data_dir`` is the folder holding these):

- ``basin_mean_forcing/<product>/<HUC02>/<gauge_id>_lump_<tag>_forcing_leap.txt`` (tag ``cida`` for
  Daymet, ``maurer``, ``nldas``): 3 header lines (latitude, elevation m, area m²), one column line,
  then rows ``Year Mnth Day Hr dayl prcp srad swe tmax tmin vp``. Rows are parsed **by column
  position**, never by the column line (a few original files have a malformed one).
- ``usgs_streamflow/<HUC02>/<gauge_id>_streamflow_qc.txt``: ``gauge_id year month day Q flag``, Q in
  ft³/s, ``-999`` = missing (flag ``M``).
- ``camels_attributes_v2.0/camels_{topo,soil,geol,vege,clim}.txt``: ``;``-separated statics.
- ``basin_list.txt``: default basin list.

Documented choices:

- **Dynamic inputs** (canonical names, ``DYNAMIC_VARIABLES``): prcp → precipitation (mm/day),
  tmax/tmin → temperature_max/min (°C), srad × dayl / 86,400 → shortwave_radiation (W/m², the 24-hour
  mean of the vocabulary: every CAMELS product's ``srad`` is a mean over the daylight hours, 1.5–3x the
  24-hour mean; ``benchmarks/camels_conventions.py``), vp → vapor_pressure (Pa), dayl → daylength (s),
  and temperature_mean = (tmax + tmin)/2
  (the usual daily-mean approximation; the products carry no mean temperature). In the Maurer and
  NLDAS files of the original release tmax equals tmin: both hold the daily mean (their midpoint
  matches Daymet's). A file whose tmax and tmin are the same series over the period therefore gives
  ``temperature_mean`` only, and ``temperature_max``/``temperature_min`` are NaN (missing, so a model
  masks them) rather than a mean under the name of an extreme.
- **swe is not an input**: in the forcing files it is not an observation but the output of the
  Daymet-driven SNOW-17 model run by the CAMELS authors, and in most files it is all zeros.
- **Streamflow** (target ``streamflow``, mm/day) = Q × 0.0283168 × 86400 × 1000 / area_m², with the
  area from the forcing-file header (``area_source="forcing_header"``, NeuralHydrology's convention);
  ``area_source="area_gages2"`` uses the GAGES-II area (km²) from ``camels_topo.txt`` instead, as
  hydroDL (the paper authors' loaders) and CAMELS' own ``q_mean`` do. Over the 67 basins here the
  header area is 0.378–1.135x ``area_gages2`` (06468170: its mm/day differ by 2.65x;
  ``benchmarks/camels_conventions.py``). ``-999`` → NaN; the record is reindexed onto the full
  daily period, dates absent from the file are NaN.
- **Static attributes** (``ATTRIBUTE_SOURCES``): percentages (sand/silt/clay) become fractions 0–1;
  other units are the canonical ones already (slope m/km, area km², depths m, conductivity cm/h,
  permeability log10 m²). ``soil_depth`` comes from ``soil_depth_statsgo`` by default (m, 0–1.5 m,
  the same STATSGO source as porosity, conductivity and max_water_content); the Pelletier
  depth-to-bedrock (capped at 50 m, very skewed) is available with ``soil_depth_source="pelletier"``.
  The vocabulary has one soil depth, so the paper's two depths cannot both be used.
  ``"NA"`` cells become NaN. Categorical attributes (geol_1st/2nd_class, dom_land_cover,
  high/low_prec_timing) are left out (the schema's statics are numeric), and ``camels_hydro.txt``
  (streamflow signatures, derived from the target) is never read.
- ``region`` is the two-digit HUC-02 of the folder holding the forcing file.
- **Missing values and physical ranges**: ``-999``, the release's missing-value code (documented for
  streamflow), is read as missing (NaN) in the streamflow and in the forcing columns: no forcing can
  be -999 and taking it as a number gave -999 mm/day or -999 °C. ``NA`` attribute cells are NaN.
  Every other value, after conversion to canonical units, must lie in its variable's physical range
  (``Variable.valid_min/valid_max`` in :mod:`stefaland_hf.variables`, e.g. daylength 0–86,400 s,
  precipitation 0–1,825 mm/day, air temperature −90–60 °C, fractions 0–1, discharge ≥ 0); one that
  does not is a :class:`~stefaland_hf.data.errors.DataFormatError` naming the file, line, column,
  variable and value. ``out_of_range="nan"`` reads such values as missing instead and logs, with
  ``logging.warning``, how many of each variable and where the first was.

Every format problem raises :class:`~stefaland_hf.data.errors.DataFormatError` naming the file and
line. With ``skip_bad_basins=True`` a basin with such a problem in its forcing or streamflow file, or
one absent from an attribute table, is left out, logged with ``logging.warning`` and listed in
``builder.skipped_basins`` as ``(gauge_id, reason)`` (filled only when the dataset is generated, not
when it is loaded from the cache).

**Ungauged basins** (no streamflow record) and **several folders**:

- ``ungauged=`` declares the basins that have no streamflow: gauge ids, or a basin-list file such
  as ``camels_us_ungauged/basin_list.txt``. A declared basin is built from its forcings and
  attributes alone: ``targets`` all NaN and ``gauged=False`` (the schema column; true for every
  other basin). The build logs (``logging.warning``) ``N of M basins are ungauged (no streamflow
  file): ...`` and lists them in ``builder.ungauged_basins`` (filled when the dataset is generated).
  The declaration is explicit and per basin on purpose: a basin that is not declared and has no
  streamflow file stays a ``DataFormatError`` naming it and the folders searched, so a gauged basin
  whose file went missing never passes as ungauged; a declared basin that has a streamflow file is
  an error too (the declaration would throw its observations away).
- ``extra_data_dirs=`` adds folders in the same raw layout whose ``basin_mean_forcing/`` and
  ``usgs_streamflow/`` (either may be absent) are searched together with ``data_dir``'s; a basin
  with files in two folders is an error. Attributes are read from ``data_dir`` only (the CAMELS
  tables cover all 671 basins). With ``basins=None`` the basins are those of ``basin_list.txt`` in
  ``data_dir`` and in every extra folder, in that order, each once (the forcings-only and the streamflow archive
  of the shared data list the same 603 basins).

The 670 basins of the shared data (67 gauged, 603 forcings-only; see its README)::

    mkdir -p DIR && tar -xJf camels_us_ungauged.tar.xz -C DIR      # -> DIR/camels_us_ungauged/
    b = CamelsUS(data_dir="camels_us", extra_data_dirs=["DIR/camels_us_ungauged"],
                 ungauged="DIR/camels_us_ungauged/basin_list.txt", cache_dir=tmp)

Do not unpack the archive over ``camels_us/`` itself: its ``basin_list.txt`` would replace the
67-basin list.

Cache: the built dataset is stored under ``<cache_dir>/camels_us/<config>/<version>/<fingerprint>/``
(``cache_dir`` defaults to ``$HF_DATASETS_CACHE``, itself ``~/.cache/huggingface/datasets``;
``builder.cache_dir`` is the exact folder). The config part holds every config field; the
fingerprint holds the path, size and modification time of every raw file the build reads (basin
lists and the ``ungauged`` list included) and the basin ids the basin list resolved to, so editing
or replacing a raw file or changing the basin list builds a new cache instead of serving the old one. Old caches are never reused and never removed:
delete ``<cache_dir>/camels_us`` (or ``builder.cache_dir``) to reclaim the space.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import datasets
import numpy as np
import pandas as pd

from ..variables import DYNAMIC, STATIC, TARGET, validate_names
from .cache_key import raw_files_fingerprint
from .errors import DataFormatError, PhysicalRangeCheck, read_text_table, unwrap_data_format_error
from .schema import site_features

logger = logging.getLogger(__name__)

__all__ = [
    "ATTRIBUTE_SOURCES",
    "CFS_TO_M3S",
    "CamelsUS",
    "CamelsUSConfig",
    "DYNAMIC_VARIABLES",
    "FORCING_PRODUCTS",
    "ForcingHeader",
    "MISSING",
    "PAPER_ATTRIBUTES",
    "TARGET_VARIABLES",
    "cfs_to_mm_per_day",
    "find_forcing_file",
    "find_streamflow_file",
    "load_basin",
    "read_basin_list",
    "read_camels_attributes",
    "read_forcing_file",
    "read_streamflow_file",
]

CFS_TO_M3S = 0.0283168  # 1 ft³/s in m³/s
MISSING = -999.0  # the release's missing-value code


@dataclass(frozen=True)
class ForcingProduct:
    folder: str
    file_tag: str
    start: str
    end: str


FORCING_PRODUCTS: dict[str, ForcingProduct] = {
    "daymet": ForcingProduct("daymet", "cida", "1980-01-01", "2014-12-31"),
    "maurer": ForcingProduct("maurer", "maurer", "1980-01-01", "2008-12-31"),
    "nldas": ForcingProduct("nldas", "nldas", "1980-01-01", "2014-12-31"),
}

FORCING_COLUMNS = ("Year", "Mnth", "Day", "Hr", "dayl", "prcp", "srad", "swe", "tmax", "tmin", "vp")
_FC = {name: i for i, name in enumerate(FORCING_COLUMNS)}
_FORCING_FIRST_LINE = 5  # 3 header lines and the column line come first
_STREAMFLOW_FIRST_LINE = 1  # no header
SECONDS_PER_DAY = 86_400.0
# basin lists that ship with the package, by name: camels_us_531 is the standard subset (530 of 531 here; the file says
# which one is missing)
SHIPPED_BASIN_LISTS = {path.stem: path for path in (Path(__file__).parent / "basin_lists").glob("*.txt")}

DYNAMIC_VARIABLES: tuple[str, ...] = (
    "precipitation",
    "temperature_max",
    "temperature_min",
    "temperature_mean",
    "shortwave_radiation",
    "vapor_pressure",
    "daylength",
)
TARGET_VARIABLES: tuple[str, ...] = ("streamflow",)
# forcing column of each dynamic variable; temperature_mean is computed from tmax and tmin
_FORCING_SOURCES = {
    "precipitation": "prcp",
    "temperature_max": "tmax",
    "temperature_min": "tmin",
    "shortwave_radiation": "srad",
    "vapor_pressure": "vp",
    "daylength": "dayl",
}

# canonical name -> (table, column, scale). soil_depth's column depends on soil_depth_source.
ATTRIBUTE_SOURCES: dict[str, tuple[str, str, float]] = {
    "latitude": ("topo", "gauge_lat", 1.0),
    "longitude": ("topo", "gauge_lon", 1.0),
    "elevation": ("topo", "elev_mean", 1.0),
    "slope": ("topo", "slope_mean", 1.0),
    "area": ("topo", "area_gages2", 1.0),
    "soil_depth": ("soil", "soil_depth_statsgo", 1.0),
    "soil_porosity": ("soil", "soil_porosity", 1.0),
    "soil_conductivity": ("soil", "soil_conductivity", 1.0),
    "max_water_content": ("soil", "max_water_content", 1.0),
    "sand_fraction": ("soil", "sand_frac", 0.01),
    "silt_fraction": ("soil", "silt_frac", 0.01),
    "clay_fraction": ("soil", "clay_frac", 0.01),
    "carbonate_rocks_fraction": ("geol", "carbonate_rocks_frac", 1.0),
    "geology_permeability": ("geol", "geol_permeability", 1.0),
    "geology_porosity": ("geol", "geol_porostiy", 1.0),  # sic: the column name is misspelt in CAMELS
    "forest_fraction": ("vege", "frac_forest", 1.0),
    "lai_max": ("vege", "lai_max", 1.0),
    "lai_diff": ("vege", "lai_diff", 1.0),
    "gvf_max": ("vege", "gvf_max", 1.0),
    "gvf_diff": ("vege", "gvf_diff", 1.0),
    "mean_precipitation": ("clim", "p_mean", 1.0),
    "mean_pet": ("clim", "pet_mean", 1.0),
    "aridity": ("clim", "aridity", 1.0),
    "precipitation_seasonality": ("clim", "p_seasonality", 1.0),
    "snow_fraction": ("clim", "frac_snow", 1.0),
    "high_precipitation_frequency": ("clim", "high_prec_freq", 1.0),
    "high_precipitation_duration": ("clim", "high_prec_dur", 1.0),
    "low_precipitation_frequency": ("clim", "low_prec_freq", 1.0),
    "low_precipitation_duration": ("clim", "low_prec_dur", 1.0),
}
_SOIL_DEPTH_COLUMNS = {"statsgo": "soil_depth_statsgo", "pelletier": "soil_depth_pelletier"}

# The paper's CAMELS attribute set (spec §4), with its two soil depths collapsed into one
# ``soil_depth`` because the vocabulary has a single name: 25 attributes.
PAPER_ATTRIBUTES: tuple[str, ...] = (
    "elevation",
    "slope",
    "area",
    "forest_fraction",
    "lai_max",
    "lai_diff",
    "gvf_max",
    "gvf_diff",
    "soil_depth",
    "soil_porosity",
    "soil_conductivity",
    "max_water_content",
    "sand_fraction",
    "silt_fraction",
    "clay_fraction",
    "carbonate_rocks_fraction",
    "geology_permeability",
    "mean_precipitation",
    "mean_pet",
    "aridity",
    "snow_fraction",
    "high_precipitation_frequency",
    "high_precipitation_duration",
    "low_precipitation_frequency",
    "low_precipitation_duration",
)

_ATTRIBUTE_DIR = "camels_attributes_v2.0"
_FORBIDDEN_TABLES = ("hydro",)  # streamflow signatures: derived from the target, never inputs
_BASIN_ID = re.compile(r"^\d{8}$")


# --------------------------------------------------------------------------------------------
# file readers (usable on their own)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForcingHeader:
    latitude: float
    elevation: float  # m
    area: float  # m²


def _epoch_days(years: np.ndarray, months: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Vectorized (year, month, day) -> days since 1970-01-01 (int64); invalid dates -> -2**62."""
    frame = pd.DataFrame({"year": years, "month": months, "day": days})
    bad_int = ~np.all(np.isfinite(frame.to_numpy()) & (frame.to_numpy() == np.round(frame.to_numpy())), axis=1)
    frame.loc[bad_int, :] = 1
    dt = pd.to_datetime(frame.astype(np.int64), errors="coerce")
    out = dt.to_numpy().astype("datetime64[D]").astype(np.int64)
    invalid = dt.isna().to_numpy() | bad_int
    out[invalid] = -(2**62)
    return out


def _check_dates(table, days: np.ndarray, what: str) -> None:
    bad = np.flatnonzero(days == -(2**62))
    if len(bad):
        row = int(bad[0])
        raise DataFormatError(table.path, f"invalid {what} date", line=table.line_of(row))


def _day(value) -> np.datetime64:
    return np.datetime64(pd.Timestamp(value).date(), "D")


def read_forcing_file(path: str | os.PathLike) -> tuple[ForcingHeader, np.ndarray, np.ndarray]:
    """Read one CAMELS basin-mean forcing file.

    Returns ``(header, dates, values)``: ``dates`` datetime64[D] [T] (checked to be consecutive
    days) and ``values`` float64 [T, 11] in the column order of ``FORCING_COLUMNS``, with ``-999``
    in the data columns (``dayl`` … ``vp``) as NaN. Row ``i`` is line ``5 + i`` of the file.
    Physical ranges are checked by :func:`load_basin`, which knows the canonical variables.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "forcing file not found")
    header_values = []
    with open(path, "r", encoding="utf-8", errors="replace") as fh:
        for i, name in enumerate(("latitude", "elevation (m)", "area (m2)", "column line")):
            line = fh.readline()
            if not line:
                raise DataFormatError(
                    path, f"file ends in the header: expected 3 header lines (latitude, elevation, area) and a column line", line=i + 1
                )
            if i < 3:
                try:
                    header_values.append(float(line.strip()))
                except ValueError:
                    raise DataFormatError(path, f"header: expected the {name} as one number, found {line.strip()!r}", line=i + 1) from None
    header = ForcingHeader(*header_values)
    if not np.isfinite(header.area) or header.area <= 0:
        raise DataFormatError(path, f"header: expected a positive basin area in m², found {header.area}", line=3)
    table = read_text_table(
        path, sep=r"\s+", skiprows=_FORCING_FIRST_LINE - 1, n_columns=len(FORCING_COLUMNS),
        numeric_columns=range(len(FORCING_COLUMNS)), column_names=FORCING_COLUMNS,
    )
    values = table.numeric
    days = _epoch_days(values[:, 0], values[:, 1], values[:, 2])
    _check_dates(table, days, "Year/Mnth/Day")
    step = np.diff(days)
    bad = np.flatnonzero(step != 1)
    if len(bad):
        row = int(bad[0]) + 1
        raise DataFormatError(
            path,
            f"dates must be consecutive days: {np.datetime64(int(days[row]), 'D')} follows "
            f"{np.datetime64(int(days[row - 1]), 'D')}",
            line=table.line_of(row),
        )
    data = values[:, _FC["dayl"] :]
    data[data == MISSING] = np.nan
    return header, days.astype("datetime64[D]"), values


def read_streamflow_file(path: str | os.PathLike, basin: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read one ``<id>_streamflow_qc.txt``: ``(dates datetime64[D], Q float64 in ft³/s)``, -999 → NaN.

    Dates need not be contiguous but must be increasing (a repeated date is an error). The QC flag
    column is optional (5 or 6 columns). Row ``i`` is line ``1 + i`` of the file. Physical ranges
    (discharge ≥ 0) are checked by :func:`load_basin`.
    """
    path = Path(path)
    table = read_text_table(
        path, sep=r"\s+", skiprows=_STREAMFLOW_FIRST_LINE - 1, n_columns=(5, 6), numeric_columns=(1, 2, 3, 4), string_columns=(0,),
        column_names=("gauge_id", "year", "month", "day", "Q", "flag"),
    )
    if basin is not None:
        wrong = np.flatnonzero(table.strings[0] != basin)
        if len(wrong):
            row = int(wrong[0])
            raise DataFormatError(path, f"expected gauge_id {basin!r}, found {table.strings[0][row]!r}", line=table.line_of(row))
    v = table.numeric
    days = _epoch_days(v[:, 0], v[:, 1], v[:, 2])
    _check_dates(table, days, "year/month/day")
    bad = np.flatnonzero(np.diff(days) <= 0)
    if len(bad):
        row = int(bad[0]) + 1
        raise DataFormatError(path, f"dates must increase: {np.datetime64(int(days[row]), 'D')} after {np.datetime64(int(days[row - 1]), 'D')}", line=table.line_of(row))
    q = v[:, 3].copy()
    q[q == MISSING] = np.nan
    return days.astype("datetime64[D]"), q


def cfs_to_mm_per_day(q_cfs, area_m2: float) -> np.ndarray:
    """Discharge in ft³/s → basin-area-normalized depth in mm/day."""
    return np.asarray(q_cfs, dtype=np.float64) * CFS_TO_M3S * SECONDS_PER_DAY * 1000.0 / float(area_m2)


def _as_dirs(data_dir: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    return [Path(data_dir)] if isinstance(data_dir, (str, os.PathLike)) else [Path(d) for d in data_dir]


def _matches(roots: Sequence[Path], pattern: str) -> list[Path]:
    """Files matching ``pattern`` under every existing folder of ``roots``."""
    return sorted(m for root in roots if root.is_dir() for m in root.glob(pattern))


def _searched(roots: Sequence[Path]) -> str:
    return "any HUC-02 folder" if len(roots) == 1 else f"any HUC-02 folder of {', '.join(map(str, roots))}"


def _find_one(roots: Sequence[Path], pattern: str, what: str, basin: str, matches: list[Path] | None = None) -> Path:
    """The one file matching ``pattern`` under ``roots`` (``matches``: the search already made)."""
    matches = _matches(roots, pattern) if matches is None else matches
    if not matches:
        raise DataFormatError(roots[0] / pattern, f"no {what} file for basin {basin} in {_searched(roots)}")
    if len(matches) > 1:
        raise DataFormatError(matches[1], f"more than one {what} file for basin {basin}: {[str(m) for m in matches]}")
    return matches[0]


def _existing_roots(roots: list[Path], what: str) -> list[Path]:
    if not any(r.is_dir() for r in roots):
        also = "" if len(roots) == 1 else f" (nor {', '.join(map(str, roots[1:]))})"
        raise DataFormatError(roots[0], f"{what} not found{also}")
    return roots


def find_forcing_file(data_dir: str | os.PathLike | Sequence[str | os.PathLike], forcing: str, basin: str) -> Path:
    """``basin_mean_forcing/<product>/<HUC02>/<basin>_lump_<tag>_forcing_leap.txt`` (glob over HUC
    folders). ``data_dir`` may be a list of folders, searched together: a basin with a file in two
    of them is an error."""
    product = _product(forcing)
    roots = _existing_roots([d / "basin_mean_forcing" / product.folder for d in _as_dirs(data_dir)], f"forcing folder for product {forcing!r}")
    return _find_one(roots, f"*/{basin}_lump_{product.file_tag}_forcing_leap.txt", f"{forcing} forcing", basin)


def find_streamflow_file(data_dir: str | os.PathLike | Sequence[str | os.PathLike], basin: str) -> Path:
    """``usgs_streamflow/<HUC02>/<basin>_streamflow_qc.txt``; ``data_dir`` as in :func:`find_forcing_file`."""
    roots = _existing_roots([d / "usgs_streamflow" for d in _as_dirs(data_dir)], "streamflow folder")
    return _find_one(roots, f"*/{basin}_streamflow_qc.txt", "streamflow", basin)


def _normalize_basin(b, argument: str = "basins") -> str:
    if isinstance(b, (int, np.integer)):
        b = f"{int(b):08d}"
    b = str(b).strip()
    if not _BASIN_ID.match(b):
        raise ValueError(f"{argument}: {b!r} is not a CAMELS gauge id (8 digits, as a string with leading zeros)")
    return b


def read_basin_list(path: str | os.PathLike) -> list[str]:
    """One 8-digit gauge id per line (blank lines and ``#`` comments ignored, duplicates are an error)."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "basin list file not found")
    out: list[str] = []
    seen: dict[str, int] = {}
    for i, line in enumerate(path.read_text().splitlines(), start=1):  # tens to hundreds of lines
        token = line.partition("#")[0].strip()
        if not token:
            continue
        if not _BASIN_ID.match(token):
            raise DataFormatError(path, f"expected an 8-digit gauge id, found {token!r}", line=i)
        if token in seen:
            raise DataFormatError(path, f"gauge id {token} is listed twice (first on line {seen[token]})", line=i)
        seen[token] = i
        out.append(token)
    if not out:
        raise DataFormatError(
            path, "basin list is empty: expected one 8-digit gauge id per line (this is the file the builder's "
            "basins= argument names, or basin_list.txt in data_dir when basins is None)"
        )
    return out


def _read_attribute_table(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    if not path.is_file():
        raise DataFormatError(path, "attribute table not found")
    try:
        df = pd.read_csv(path, sep=";", dtype={"gauge_id": str}, keep_default_na=False, na_values=[], engine="c")
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataFormatError(path, f"not a ';'-separated table with a header line ({exc})") from None
    if "gauge_id" not in df.columns:
        raise DataFormatError(path, f"expected a 'gauge_id' column, found columns {list(df.columns)}", line=1)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataFormatError(path, f"expected column(s) {missing}, found {list(df.columns)}", line=1)
    ids = df["gauge_id"].astype(str).str.strip()
    dup = np.flatnonzero(ids.duplicated().to_numpy())
    if len(dup):
        raise DataFormatError(path, f"gauge_id {ids.iloc[dup[0]]} appears twice", line=int(dup[0]) + 2)
    out = pd.DataFrame(index=pd.Index(ids, name="gauge_id"))
    for c in columns:
        col = df[c]
        if col.dtype.kind in "fiu":
            out[c] = col.to_numpy(dtype=np.float64)
            continue
        tokens = col.astype(str).str.strip()
        values = pd.to_numeric(tokens.where(~tokens.isin(["", "NA", "NaN", "nan"]), "nan"), errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy() & ~tokens.isin(["", "NA", "NaN", "nan"]).to_numpy())
        if len(bad):
            raise DataFormatError(path, f"column {c!r}: expected a number or NA, found {tokens.iloc[bad[0]]!r}", line=int(bad[0]) + 2)
        out[c] = values.to_numpy(dtype=np.float64)
    return out


def _attribute_sources(attributes: Sequence[str], soil_depth_source: str) -> dict[str, tuple[str, str, float]]:
    """``(table, column, scale)`` of each canonical attribute, after checking the names."""
    attributes = validate_names(attributes, "attributes", kinds=[STATIC])
    unknown = [a for a in attributes if a not in ATTRIBUTE_SOURCES]
    if unknown:
        raise ValueError(f"attributes: {unknown} have no CAMELS-US source; available: {sorted(ATTRIBUTE_SOURCES)}")
    if soil_depth_source not in _SOIL_DEPTH_COLUMNS:
        raise ValueError(f"soil_depth_source must be one of {sorted(_SOIL_DEPTH_COLUMNS)}, got {soil_depth_source!r}")
    sources = {a: ATTRIBUTE_SOURCES[a] for a in attributes}
    if "soil_depth" in sources:
        sources["soil_depth"] = ("soil", _SOIL_DEPTH_COLUMNS[soil_depth_source], 1.0)
    assert not any(table in _FORBIDDEN_TABLES for table, _, _ in sources.values())
    return sources


def _attribute_table_path(data_dir: str | os.PathLike, table: str) -> Path:
    return Path(data_dir) / _ATTRIBUTE_DIR / f"camels_{table}.txt"


def read_camels_attributes(
    data_dir: str | os.PathLike,
    basins: Sequence[str],
    attributes: Sequence[str] = PAPER_ATTRIBUTES,
    soil_depth_source: str = "statsgo",
    ranges: PhysicalRangeCheck | None = None,
) -> pd.DataFrame:
    """Static attributes (canonical names and units) for ``basins``: DataFrame indexed by gauge_id.

    A basin absent from a table is a ``DataFormatError``; ``NA`` cells are NaN; values outside
    their variable's physical range are handled by ``ranges`` (default: an error).
    """
    sources = _attribute_sources(attributes, soil_depth_source)
    ranges = ranges if ranges is not None else PhysicalRangeCheck()
    basins = list(basins)
    tables: dict[str, tuple[Path, pd.DataFrame]] = {}
    for table in dict.fromkeys(t for t, _, _ in sources.values()):
        path = _attribute_table_path(data_dir, table)
        df = _read_attribute_table(path, [c for t, c, _ in sources.values() if t == table])
        absent = [b for b in basins if b not in df.index]
        if absent:
            raise DataFormatError(path, f"no row for basin(s) {absent}")
        tables[table] = (path, df)
    # every table is read before any value is range-checked, so a basin missing from a table fails
    # before anything is counted (CamelsUS retries such builds basin by basin)
    out = pd.DataFrame(index=pd.Index(basins, name="gauge_id"), columns=list(sources), dtype=np.float64)
    for a, (table, column, scale) in sources.items():
        path, df = tables[table]
        rows = df.index.get_indexer(basins)
        values = df[column].to_numpy(dtype=np.float64)[rows] * scale

        def locate(index, rows=rows, column=column):
            # line 1 is the header; a basin's row follows in file order
            return int(rows[index[0]]) + 2, f"column {column} (basin {basins[index[0]]})"

        ranges(values, a, path, locate)
        out[a] = values
    return out


def _product(forcing: str) -> ForcingProduct:
    try:
        return FORCING_PRODUCTS[forcing]
    except KeyError:
        raise ValueError(f"forcing must be one of {sorted(FORCING_PRODUCTS)}, got {forcing!r}") from None


def load_basin(
    data_dir: str | os.PathLike | Sequence[str | os.PathLike],
    basin: str,
    forcing: str = "daymet",
    start: str | None = None,
    end: str | None = None,
    area_m2: float | None = None,
    forcing_file: str | os.PathLike | None = None,
    streamflow_file: str | os.PathLike | None = None,
    ranges: PhysicalRangeCheck | None = None,
    gauged: bool = True,
) -> dict:
    """One basin's dynamic inputs and streamflow over ``start..end`` (defaults: the product's period).

    Returns ``{"region", "header", "dates", "dynamic" [T, 7] float32, "targets" [T, 1] float32}``.
    ``area_m2`` overrides the forcing-header area used for the mm/day conversion;
    ``forcing_file``/``streamflow_file`` skip the search in the standard layout of ``data_dir`` (one
    folder or a list, see :func:`find_forcing_file`). ``gauged=False``
    reads no streamflow (an ungauged basin): ``targets`` are all NaN. Values of the
    period outside their variable's physical range are handled by ``ranges`` (default: an error).
    """
    ranges = ranges if ranges is not None else PhysicalRangeCheck()
    product = _product(forcing)
    start_d, end_d = _day(start or product.start), _day(end or product.end)
    ffile = Path(forcing_file) if forcing_file is not None else find_forcing_file(data_dir, forcing, basin)
    header, fdates, values = read_forcing_file(ffile)
    if fdates[0] > start_d or fdates[-1] < end_d:
        raise DataFormatError(
            ffile,
            f"forcings cover {fdates[0]}..{fdates[-1]}, the requested period is {start_d}..{end_d} (truncated file?)",
        )
    i0 = int((start_d - fdates[0]).astype(np.int64))
    n = int((end_d - start_d).astype(np.int64)) + 1
    columns = {}
    for name, column in _FORCING_SOURCES.items():
        x = values[i0 : i0 + n, _FC[column]].copy()
        ranges(x, name, ffile, lambda index, column=column: (_FORCING_FIRST_LINE + i0 + index[0], f"column {column}"))
        columns[name] = x
    # the products' srad is a mean over the daylight hours; the vocabulary's shortwave_radiation a 24-hour mean
    columns["shortwave_radiation"] = columns["shortwave_radiation"] * columns["daylength"] / SECONDS_PER_DAY
    # within range whenever tmax and tmin are
    columns["temperature_mean"] = 0.5 * (columns["temperature_max"] + columns["temperature_min"])
    if np.array_equal(columns["temperature_max"], columns["temperature_min"], equal_nan=True):
        columns["temperature_max"] = columns["temperature_min"] = np.full(n, np.nan)  # the daily mean, not extremes
    dynamic = np.stack([columns[name] for name in DYNAMIC_VARIABLES], axis=1).astype(np.float32)
    dates = np.arange(start_d, end_d + np.timedelta64(1, "D"), dtype="datetime64[D]")
    targets = np.full((n, 1), np.nan, dtype=np.float32)
    if not gauged:
        return {"region": ffile.parent.name, "header": header, "dates": dates, "dynamic": dynamic, "targets": targets}

    qfile = Path(streamflow_file) if streamflow_file is not None else find_streamflow_file(data_dir, basin)
    qdates, q = read_streamflow_file(qfile, basin)
    pos = (qdates - start_d).astype(np.int64)
    rows = np.flatnonzero((pos >= 0) & (pos < n))
    q_mm = cfs_to_mm_per_day(q[rows], header.area if area_m2 is None else area_m2)

    def locate(index):
        row = int(rows[index[0]])
        return _STREAMFLOW_FIRST_LINE + row, f"column Q ({q[row]:g} ft3/s)"

    ranges(q_mm, "streamflow", qfile, locate)
    targets[pos[rows], 0] = q_mm
    return {"region": ffile.parent.name, "header": header, "dates": dates, "dynamic": dynamic, "targets": targets}


# --------------------------------------------------------------------------------------------
# builder
# --------------------------------------------------------------------------------------------


@dataclass
class CamelsUSConfig(datasets.BuilderConfig):
    """Configuration of :class:`CamelsUS`; every field is part of the cache key.

    Args:
        forcing: ``"daymet"``, ``"maurer"`` or ``"nldas"``.
        basins: ``None`` (``basin_list.txt`` in ``data_dir``), a path to a basin-list file (relative
            paths are tried in the working directory, then in ``data_dir``), the name of a list shipped with
            the package (``"camels_us_531"``: the standard 531-basin subset less 02464000, absent from the
            shared data), or a list of gauge ids.
        start_date, end_date: ISO dates; default the product's whole period.
        attributes: canonical static names (keys of ``ATTRIBUTE_SOURCES``); default ``PAPER_ATTRIBUTES``.
        soil_depth_source: ``"statsgo"`` (default) or ``"pelletier"``.
        area_source: ``"forcing_header"`` (default) or ``"area_gages2"`` for the cfs → mm/day conversion.
        skip_bad_basins: leave out (and report) basins whose forcing or streamflow files are bad, or
            that an attribute table lacks, instead of raising.
        out_of_range: ``"error"`` (default): a value outside its variable's physical range is a
            ``DataFormatError`` naming file, line, variable and value; ``"nan"``: such values are
            read as missing and their count per variable is logged (``logging.warning``) and kept
            in ``builder.range_check.counts``. Documented sentinels (``-999``) are NaN either way.
        ungauged: basins declared to have no streamflow record: ``None`` (default, none), a list
            of gauge ids, or a basin-list file (resolved like ``basins``), e.g.
            ``camels_us_ungauged/basin_list.txt``. Each declared basin that is built must have no
            streamflow file and gets all-NaN targets and ``gauged=False``; the count is logged.
            Ids not among ``basins`` are ignored (the list may be a catalogue). Every other basin
            must have a streamflow file: a missing one is an error (or, with ``skip_bad_basins``,
            the basin is skipped), never an ungauged basin by default.
        extra_data_dirs: further folders in the raw layout (e.g. the unpacked
            ``camels_us_ungauged/``) searched for forcing and streamflow files beside ``data_dir``;
            with ``basins=None`` their ``basin_list.txt`` files are added to ``data_dir``'s.
            Attributes always come from ``data_dir``.
    """

    forcing: str = "daymet"
    basins: str | list[str] | None = None
    start_date: str | None = None
    end_date: str | None = None
    attributes: list[str] | None = None
    soil_depth_source: str = "statsgo"
    area_source: str = "forcing_header"
    skip_bad_basins: bool = False
    out_of_range: str = "error"
    ungauged: str | list[str] | None = None
    extra_data_dirs: list[str] | None = None


class CamelsUS(datasets.GeneratorBasedBuilder):
    """CAMELS-US builder: one example per basin (see the module docstring, also for where the cache
    lives and how to clear it).

    ``as_dataset(split="all")`` returns every basin. ``datasets`` reserves the name "all" for the
    union of splits, so the one stored split is called "train"; splitting into train/val/test by
    site or period is done by :mod:`stefaland_hf.data.splits`, not here.
    """

    # a few sites per Arrow record batch: the build holds only that many sites in memory
    DEFAULT_WRITER_BATCH_SIZE = 16
    BUILDER_CONFIG_CLASS = CamelsUSConfig
    BUILDER_CONFIGS = [
        # 1.2.0: rows carry the schema's ``gauged`` column (old caches lack it and are not served)
        CamelsUSConfig(name=name, forcing=name, version=datasets.Version("1.4.0"), description=f"CAMELS-US with {name} forcings")
        for name in FORCING_PRODUCTS
    ]
    DEFAULT_CONFIG_NAME = "daymet"

    def __init__(self, *args, **kwargs):
        # ``forcing=...`` selects the matching named config, so the cache folder is named after it
        if kwargs.get("config_name") is None and not args and kwargs.get("forcing") in FORCING_PRODUCTS:
            kwargs["config_name"] = kwargs.pop("forcing")
        for key in ("basins", "ungauged"):
            if isinstance(kwargs.get(key), (list, tuple)):
                kwargs[key] = [_normalize_basin(b, key) for b in kwargs[key]]
            elif isinstance(kwargs.get(key), os.PathLike):
                kwargs[key] = os.fspath(kwargs[key])
        extra = kwargs.get("extra_data_dirs")
        if extra is not None:
            kwargs["extra_data_dirs"] = [os.fspath(d) for d in ([extra] if isinstance(extra, (str, os.PathLike)) else extra)]
        if isinstance(kwargs.get("attributes"), tuple):
            kwargs["attributes"] = list(kwargs["attributes"])
        super().__init__(*args, **kwargs)
        self.skipped_basins: list[tuple[str, str]] = []
        self.ungauged_basins: list[str] = []
        self.range_check = PhysicalRangeCheck(self.config.out_of_range)

    def _build_cache_dir(self):
        # ``datasets`` calls this once the config is resolved and before it looks for a cached copy:
        # the place to check the config and to key the cache by the raw files (see cache_key)
        self._validate_config()
        self.hash = raw_files_fingerprint(*self._raw_files())
        return super()._build_cache_dir()

    def _raw_files(self) -> tuple[list[Path], list[str]]:
        """Every file the build reads, and the basin ids (the basin list's contents)."""
        data_dir = self._data_dir()
        basins = self.basin_ids()
        declared = set(self.ungauged_ids())
        ungauged_list = self._ungauged_list_file()
        files = self._basin_list_files() + ([] if ungauged_list is None else [ungauged_list])
        extra = list(basins)
        for basin in basins:
            try:
                forcing_file, streamflow_file = self._locate(basin, declared)
                files += [forcing_file] + ([] if streamflow_file is None else [streamflow_file])
            except DataFormatError as exc:  # reported (or skipped) by the build itself
                extra.append(str(exc))
        sources = _attribute_sources(self._attributes_read(), self.config.soil_depth_source)
        files += [_attribute_table_path(data_dir, table) for table in dict.fromkeys(t for t, _, _ in sources.values())]
        return files, extra

    def download_and_prepare(self, *args, **kwargs):
        """As in ``datasets``, but a bad raw file surfaces as :class:`DataFormatError` itself, not
        wrapped in ``datasets``' ``DatasetGenerationError``."""
        return unwrap_data_format_error(super().download_and_prepare, *args, **kwargs)

    # -- config helpers -----------------------------------------------------------------------
    def _validate_config(self) -> None:
        c = self.config
        product = _product(c.forcing)
        if c.name in FORCING_PRODUCTS and c.name != c.forcing:
            raise ValueError(f"config_name={c.name!r} conflicts with forcing={c.forcing!r}; pass one of them")
        if c.soil_depth_source not in _SOIL_DEPTH_COLUMNS:
            raise ValueError(f"soil_depth_source must be one of {sorted(_SOIL_DEPTH_COLUMNS)}, got {c.soil_depth_source!r}")
        if c.area_source not in ("forcing_header", "area_gages2"):
            raise ValueError(f"area_source must be 'forcing_header' or 'area_gages2', got {c.area_source!r}")
        PhysicalRangeCheck(c.out_of_range)  # checks the value
        _attribute_sources(self.attributes, c.soil_depth_source)
        if isinstance(c.basins, list) and not c.basins:
            raise ValueError(
                "basins: empty list; pass gauge ids, a basin-list file, or None for basin_list.txt in data_dir"
            )
        if isinstance(c.ungauged, list):
            dup = sorted({b for b in c.ungauged if c.ungauged.count(b) > 1})
            if dup:
                raise ValueError(f"ungauged: {dup} listed more than once")
        elif c.ungauged is not None and not isinstance(c.ungauged, str):
            raise ValueError(f"ungauged must be None, a list of gauge ids or a basin-list file, got {c.ungauged!r}")
        for d in self._data_dirs()[1:]:
            if not d.is_dir():
                raise DataFormatError(d, "extra_data_dirs: folder not found (expected a folder in the raw CAMELS layout, e.g. the unpacked camels_us_ungauged/)")
        dirs = [os.path.abspath(d) for d in self._data_dirs()]
        if len(set(dirs)) != len(dirs):
            raise ValueError(f"extra_data_dirs: {self.config.extra_data_dirs} repeats a folder or data_dir; every folder is searched once")
        start, end = _day(c.start_date or product.start), _day(c.end_date or product.end)
        if end < start:
            raise ValueError(f"end_date {end} is before start_date {start}")
        validate_names(DYNAMIC_VARIABLES, "dynamic variables", kinds=[DYNAMIC])
        validate_names(TARGET_VARIABLES, "target variables", kinds=[TARGET])

    @property
    def attributes(self) -> list[str]:
        return list(self.config.attributes) if self.config.attributes is not None else list(PAPER_ATTRIBUTES)

    def _attributes_read(self) -> list[str]:
        """The requested attributes plus the location and area every build needs."""
        return list(dict.fromkeys(self.attributes + ["latitude", "longitude", "area"]))

    @property
    def period(self) -> tuple[np.datetime64, np.datetime64]:
        product = _product(self.config.forcing)
        return _day(self.config.start_date or product.start), _day(self.config.end_date or product.end)

    def _data_dir(self) -> Path:
        if not self.config.data_dir:
            raise ValueError("CamelsUS needs data_dir= (the folder holding basin_mean_forcing/, usgs_streamflow/, camels_attributes_v2.0/)")
        return Path(self.config.data_dir)

    def _data_dirs(self) -> list[Path]:
        """``data_dir`` and then ``extra_data_dirs``: the folders searched for time-series files."""
        return [self._data_dir()] + [Path(d) for d in self.config.extra_data_dirs or []]

    def _list_file(self, name: str) -> Path:
        """A basin-list path as given: absolute, or relative to the working directory, else to data_dir; else a list
        shipped with the package by name (``camels_us_531``)."""
        p = Path(name)
        if p.is_absolute() or p.exists():
            return p
        if (self._data_dir() / p).exists() or str(name) not in SHIPPED_BASIN_LISTS:
            return self._data_dir() / p
        return SHIPPED_BASIN_LISTS[str(name)]

    def _basin_list_files(self) -> list[Path]:
        """The basin-list files ``basins`` refers to (none when it is a list of ids)."""
        basins = self.config.basins
        if basins is None:
            return [d / "basin_list.txt" for d in self._data_dirs()]
        if isinstance(basins, (str, os.PathLike)):
            return [self._list_file(basins)]
        return []

    def basin_ids(self) -> list[str]:
        """The basins to build, in order (``basins``; see :class:`CamelsUSConfig`)."""
        files = self._basin_list_files()
        if not files:
            ids = [_normalize_basin(b) for b in self.config.basins]
            dup = {b for b in ids if ids.count(b) > 1}
            if dup:
                raise ValueError(f"basins: {sorted(dup)} listed more than once")
            return ids
        # a basin in the lists of two folders (forcings in one, streamflow in the other, as the shared archives come) is
        # built once from both: the folders' files are searched together, and a file found twice is an error there
        return list(dict.fromkeys(basin for path in files for basin in read_basin_list(path)))

    def _ungauged_list_file(self) -> Path | None:
        u = self.config.ungauged
        return self._list_file(u) if isinstance(u, str) else None

    def ungauged_ids(self) -> list[str]:
        """The basins declared ungauged by ``ungauged=`` (built or not)."""
        path = self._ungauged_list_file()
        if path is not None:
            return read_basin_list(path)
        return list(self.config.ungauged or [])

    def _describe_ungauged(self) -> str:
        path = self._ungauged_list_file()
        return f"ungauged={str(path)!r}" if path is not None else "the ungauged= list"

    def _locate(self, basin: str, declared: set[str]) -> tuple[Path, Path | None]:
        """The basin's forcing file and streamflow file; ``None`` for the latter when ``basin`` is in
        ``declared`` (ungauged), which requires that it has none. An undeclared basin without a
        streamflow file is an error: a missing file must not pass for an ungauged basin."""
        dirs = self._data_dirs()
        forcing_file = find_forcing_file(dirs, self.config.forcing, basin)
        roots = [d / "usgs_streamflow" for d in dirs]
        pattern = f"*/{basin}_streamflow_qc.txt"
        found = _matches(roots, pattern)
        if basin in declared:
            if found:
                raise DataFormatError(
                    found[0], f"basin {basin} is declared ungauged by {self._describe_ungauged()} but has this streamflow "
                    "file; take it out of ungauged= to use its observations, or remove the file"
                )
            return forcing_file, None
        if not found:
            raise DataFormatError(
                roots[0] / pattern, f"no streamflow file for basin {basin} in {_searched(roots)}; if the basin has no "
                "streamflow record, declare it with ungauged= (gauge ids or a basin-list file) to build it with NaN targets"
            )
        return forcing_file, _find_one(roots, pattern, "streamflow", basin, found)

    # -- datasets API ---------------------------------------------------------------------------
    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description="CAMELS-US basin-mean forcings, USGS streamflow (mm/day) and static attributes, one example per basin.",
            features=site_features(len(DYNAMIC_VARIABLES), len(self.attributes), len(TARGET_VARIABLES)),
            homepage="https://ral.ucar.edu/solutions/products/camels",
            citation="Newman et al. (2015), HESS 19, 209-223; Addor et al. (2017), HESS 21, 5293-5313.",
            license="cc-by-4.0",
        )

    def _split_generators(self, dl_manager):
        # ``datasets`` reserves "all" as the union of every split, so the single split is stored as
        # "train"; ``as_dataset(split="all")`` (or "train") returns every basin.
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs={})]

    def _skip(self, basin: str, exc: DataFormatError) -> None:
        if not self.config.skip_bad_basins:
            raise exc
        logger.warning("CamelsUS: skipping basin %s: %s", basin, exc)
        self.skipped_basins.append((basin, str(exc)))

    def _generate_examples(self):
        data_dir = self._data_dir()
        basins = self.basin_ids()
        attributes = self.attributes
        start, end = self.period
        self.skipped_basins, self.ungauged_basins = [], []
        self.range_check = PhysicalRangeCheck(self.config.out_of_range)
        # 1) locate every basin's files first, so an unknown basin is reported as such
        declared = set(self.ungauged_ids())
        files: dict[str, tuple[Path, Path | None]] = {}
        for basin in basins:
            try:
                files[basin] = self._locate(basin, declared)
            except DataFormatError as exc:
                self._skip(basin, exc)
        basins = [b for b in basins if b in files]
        # 2) attributes of all those basins in one read per table
        attr_frame, location, gages_area = self._attributes(data_dir, basins, attributes) if basins else (None, {}, None)
        # 3) time series, one basin at a time
        dyn_names, stat_names, tgt_names = list(DYNAMIC_VARIABLES), list(attributes), list(TARGET_VARIABLES)
        n_written = 0
        for basin in basins:
            try:
                if basin in location["errors"]:
                    raise location["errors"][basin]
                area_m2 = gages_area[basin] * 1e6 if self.config.area_source == "area_gages2" else None
                gauged = files[basin][1] is not None
                rec = load_basin(
                    data_dir, basin, self.config.forcing, str(start), str(end), area_m2=area_m2,
                    forcing_file=files[basin][0], streamflow_file=files[basin][1], ranges=self.range_check, gauged=gauged,
                )
            except DataFormatError as exc:
                self._skip(basin, exc)
                continue
            n_written += 1
            if not gauged:
                self.ungauged_basins.append(basin)
            yield basin, {
                "site_id": basin,
                "region": rec["region"],
                "latitude": float(location["latitude"][basin]),
                "longitude": float(location["longitude"][basin]),
                "dates": rec["dates"].tolist(),  # datetime.date objects: encode reliably to date32
                "dynamic": rec["dynamic"],
                "static": attr_frame.loc[basin].to_numpy(dtype=np.float32),
                "targets": rec["targets"],
                "gauged": gauged,
                "dynamic_variables": dyn_names,
                "static_variables": stat_names,
                "target_variables": tgt_names,
            }
        if n_written == 0:
            raise DataFormatError(data_dir, f"no basin could be read; skipped: {self.skipped_basins}")
        if self.ungauged_basins:
            shown = ", ".join(self.ungauged_basins[:10]) + (", ... (all in builder.ungauged_basins)" if len(self.ungauged_basins) > 10 else "")
            logger.warning(
                "CamelsUS: %d of %d basins are ungauged (no streamflow file; declared by %s): all-NaN targets, gauged=False: %s",
                len(self.ungauged_basins), n_written, self._describe_ungauged(), shown,
            )
        if self.range_check.counts:
            logger.warning("CamelsUS: out_of_range='nan' read values outside their physical range as missing: %s", self.range_check.summary())

    def _attributes(self, data_dir: Path, basins: list[str], attributes: list[str]):
        """Attributes for all basins at once; with skip_bad_basins, basins absent from a table are
        recorded per basin instead of failing the whole build."""
        wanted = self._attributes_read()
        try:
            frame = read_camels_attributes(data_dir, basins, wanted, self.config.soil_depth_source, self.range_check)
            errors = {}
        except DataFormatError as exc:
            if not self.config.skip_bad_basins or "no row for basin" not in exc.reason:
                raise
            # find which basins are readable: retry one by one (rare path). A missing row fails before
            # any value is range-checked; the probes only look for missing rows, so they read out-of-range
            # values as NaN, uncounted, and the final read applies the build's check once
            good, errors = [], {}
            for b in basins:
                try:
                    read_camels_attributes(data_dir, [b], wanted, self.config.soil_depth_source, PhysicalRangeCheck("nan"))
                    good.append(b)
                except DataFormatError as e:
                    errors[b] = e
            frame = (
                read_camels_attributes(data_dir, good, wanted, self.config.soil_depth_source, self.range_check)
                if good
                else pd.DataFrame(columns=wanted)
            )
        location = {"latitude": frame["latitude"], "longitude": frame["longitude"], "errors": errors}
        return frame[list(attributes)], location, frame["area"]
