"""SMAP L3 surface soil moisture with NLDAS forcings, hydroDL CONUS layout (Fang et al. 2017), as a builder.

Usage::

    b = HydroDLSmap(data_dir="/path/hydrodl_smap_conus", cache_dir=tmp, years=[2015, 2016])
    b.download_and_prepare()
    ds = b.as_dataset(split="all")   # one example per SMAP pixel, schema of ``schema.site_features``

Layout read (``data_dir`` holds these):

- ``crd.csv``: ``lat,lon`` per pixel, no header; the row order is the pixel order everywhere.
- ``<year>/`` folders, each running April 1 → March 31 of the next year: ``timeStr.csv`` (one ISO
  date per line) and ``<VAR>.csv`` matrices, one row per pixel and one column per date.
- ``const/<Name>.csv``: one static value per pixel row.

Documented choices:

- **Dynamic inputs** (``DYNAMIC_VARIABLES``; NLDAS hourly means averaged over the day):
  APCP_FORA (kg m⁻² h⁻¹) × 24 → precipitation (mm/day); TMP_2_FORA − 273.15 → temperature_mean
  (°C); DSWRF_FORA → shortwave_radiation and DLWRF_FORA → longwave_radiation (W/m²); SPFH_2_FORA →
  specific_humidity (kg/kg); UGRD_10_FORA / VGRD_10_FORA → wind_u / wind_v (m/s).
- **Target**: SMAP_AM → soil_moisture (m³/m³). It is sparse (satellite revisit, about 42 % of days
  valid). A selected year folder without ``SMAP_AM.csv`` is an error naming the file, like a missing
  forcing file: an absent file must not pass for days without observations. ``years=None`` therefore
  selects the year folders that hold ``SMAP_AM.csv`` (2015 and 2016 in the example data; the others
  are named in a ``logging.warning``). ``missing_targets="nan"`` accepts year folders without it
  (``years=None`` then selects every folder) and gives their days NaN targets, with a warning naming
  the absent files: use it to pretrain on the forcings of years without SMAP. Every pixel's
  ``gauged`` is true when a selected year has ``SMAP_AM.csv`` and false when none has (all
  targets NaN: usable for pretraining, refused by :func:`~stefaland_hf.data.splits.require_gauged`).
- **Statics** (``STATIC_VARIABLES``): Sand/Silt/Clay are stored in percent (21–70 in the data, despite
  the data README calling them fractions) → /100 → sand/silt/clay_fraction; Capa (field capacity, in
  volumetric percent, 7–32) → /100 → field_capacity; Bulk → bulk_density (g/cm³); NDVI → ndvi;
  plus latitude/longitude from ``crd.csv``. The ``flag_*`` quality masks are not inputs.
- ``-9999`` (any variable), the format's documented missing value, → NaN. One pixel of the example
  data has ``-9999`` statics; it is kept (its statics are NaN).
- **Physical ranges**: every other value, after conversion to canonical units, must lie in its
  variable's physical range (``Variable.valid_min/valid_max`` in :mod:`stefaland_hf.variables`, e.g.
  soil moisture 0–1 m³/m³, air temperature −90–60 °C, precipitation 0–1,825 mm/day); one that does
  not (such as ``-999`` K, i.e. −1272 °C) is a :class:`~stefaland_hf.data.errors.DataFormatError`
  naming the file, line (pixel row + 1), column (day) and value. ``out_of_range="nan"`` reads such
  values as missing instead and logs how many of each variable, and where the first was.
- **Years**: ``years=None`` takes every ``<year>/`` folder; the selected folders must join into one
  contiguous daily record (a gap is an error naming the ``timeStr.csv``).
- **region**: with ``region_grid_deg=g`` (default 10) the label of the g°×g° cell holding the pixel,
  named by its south-west corner, e.g. ``"lat40_lon-110"`` = 40–50 °N, 110–100 °W (about 18 cells over
  CONUS, for spatial hold-out tests); ``region_grid_deg="conus"`` (or ``None``) labels every pixel
  ``"conus"``.
- ``site_id`` is ``"pixel_NNNN"``, the 0-based row in ``crd.csv``.

Cache: the built dataset is stored under ``<cache_dir>/hydrodl_smap/<config>/<version>/<fingerprint>/``
(``cache_dir`` defaults to ``$HF_DATASETS_CACHE``, itself ``~/.cache/huggingface/datasets``;
``builder.cache_dir`` is the exact folder). The fingerprint holds the path, size and modification
time of every file the build reads (and whether each expected file exists), so an edited, replaced
or added file builds a new cache. Old caches are never reused and never removed: delete
``<cache_dir>/hydrodl_smap`` (or ``builder.cache_dir``) to reclaim the space.

Licence: the data ship with hydroDL under a non-commercial licence (``LICENSE-hydroDL.txt``, which
must travel with redistributions); SMAP and NLDAS are NASA open data.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from ..variables import DYNAMIC, STATIC, TARGET, validate_names
from .cache_key import raw_files_fingerprint
from .errors import DataFormatError, PhysicalRangeCheck, read_text_table, unwrap_data_format_error
from .schema import site_features

logger = logging.getLogger(__name__)

__all__ = [
    "DYNAMIC_SOURCES",
    "DYNAMIC_VARIABLES",
    "HydroDLSmap",
    "HydroDLSmapConfig",
    "MISSING",
    "STATIC_SOURCES",
    "STATIC_VARIABLES",
    "TARGET_VARIABLES",
    "available_years",
    "read_coordinates",
    "read_matrix",
    "read_static",
    "read_time_str",
    "region_label",
]

MISSING = -9999.0  # the format's missing value
MISSING_TARGETS_POLICIES = ("error", "nan")

# canonical name -> (file stem, scale, offset): value = raw * scale + offset
DYNAMIC_SOURCES: dict[str, tuple[str, float, float]] = {
    "precipitation": ("APCP_FORA", 24.0, 0.0),
    "temperature_mean": ("TMP_2_FORA", 1.0, -273.15),
    "shortwave_radiation": ("DSWRF_FORA", 1.0, 0.0),
    "longwave_radiation": ("DLWRF_FORA", 1.0, 0.0),
    "specific_humidity": ("SPFH_2_FORA", 1.0, 0.0),
    "wind_u": ("UGRD_10_FORA", 1.0, 0.0),
    "wind_v": ("VGRD_10_FORA", 1.0, 0.0),
}
DYNAMIC_VARIABLES: tuple[str, ...] = tuple(DYNAMIC_SOURCES)

STATIC_SOURCES: dict[str, tuple[str, float]] = {
    "sand_fraction": ("Sand", 0.01),
    "silt_fraction": ("Silt", 0.01),
    "clay_fraction": ("Clay", 0.01),
    "bulk_density": ("Bulk", 1.0),
    "field_capacity": ("Capa", 0.01),
    "ndvi": ("NDVI", 1.0),
}
STATIC_VARIABLES: tuple[str, ...] = tuple(STATIC_SOURCES) + ("latitude", "longitude")

TARGET_SOURCE = "SMAP_AM"
TARGET_VARIABLES: tuple[str, ...] = ("soil_moisture",)


# --------------------------------------------------------------------------------------------
# file readers
# --------------------------------------------------------------------------------------------


def _sentinel_to_nan(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    a[a == MISSING] = np.nan
    return a


def read_coordinates(data_dir: str | os.PathLike) -> np.ndarray:
    """``crd.csv`` → float64 [P, 2] (lat, lon), checked to lie in [-90, 90] × [-180, 360]."""
    path = Path(data_dir) / "crd.csv"
    t = read_text_table(path, sep=",", skiprows=0, n_columns=2, numeric_columns=(0, 1), column_names=("lat", "lon"))
    crd = t.numeric
    bad = np.flatnonzero(~((np.abs(crd[:, 0]) <= 90) & (crd[:, 1] >= -180) & (crd[:, 1] <= 360)))
    if len(bad):
        raise DataFormatError(path, f"expected lat,lon in degrees, found {crd[bad[0]].tolist()}", line=t.line_of(bad[0]))
    return crd


def read_time_str(path: str | os.PathLike) -> np.ndarray:
    """``timeStr.csv`` → datetime64[D] [T], checked to be consecutive days."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "date file not found")
    try:
        s = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, skip_blank_lines=False).iloc[:, 0]
    except pd.errors.EmptyDataError:
        raise DataFormatError(path, "empty date file") from None
    except pd.errors.ParserError as exc:
        raise DataFormatError(path, f"expected one date per line ({exc})") from None
    s = s.str.strip()
    s = s.iloc[: int(np.flatnonzero((s != "").to_numpy())[-1]) + 1] if (s != "").any() else s.iloc[:0]
    if len(s) == 0:
        raise DataFormatError(path, "empty date file")
    dt = pd.to_datetime(s, format="%Y-%m-%d", errors="coerce")
    bad = np.flatnonzero(dt.isna().to_numpy())
    if len(bad):
        raise DataFormatError(path, f"expected a YYYY-MM-DD date, found {s.iloc[bad[0]]!r}", line=int(bad[0]) + 1)
    days = dt.to_numpy().astype("datetime64[D]")
    step = np.diff(days.astype(np.int64))
    bad = np.flatnonzero(step != 1)
    if len(bad):
        row = int(bad[0]) + 1
        raise DataFormatError(path, f"dates must be consecutive days: {days[row]} follows {days[row - 1]}", line=row + 1)
    return days


def read_matrix(path: str | os.PathLike, n_rows: int, n_columns: int) -> np.ndarray:
    """A pixel × day ``<VAR>.csv`` → float64 [n_rows, n_columns], ``-9999`` → NaN."""
    path = Path(path)
    t = read_text_table(path, sep=",", skiprows=0, n_columns=n_columns, numeric_columns=range(n_columns))
    if t.numeric.shape[0] != n_rows:
        raise DataFormatError(
            path, f"expected {n_rows} rows (one per pixel in crd.csv), found {t.numeric.shape[0]}"
            + (" (truncated file?)" if t.numeric.shape[0] < n_rows else "")
        )
    return _sentinel_to_nan(t.numeric)


def read_static(data_dir: str | os.PathLike, name: str, n_rows: int) -> np.ndarray:
    """``const/<name>.csv`` → float64 [n_rows], ``-9999`` → NaN."""
    return read_matrix(Path(data_dir) / "const" / f"{name}.csv", n_rows, 1)[:, 0]


def available_years(data_dir: str | os.PathLike) -> list[int]:
    """The ``<year>/`` folders under ``data_dir``, sorted."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DataFormatError(root, "data folder not found")
    return sorted(int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit() and len(p.name) == 4)


def region_label(lat, lon, grid_deg: float | None) -> np.ndarray:
    """Coarse-grid region labels (south-west corner of the cell) or ``"conus"`` when ``grid_deg`` is None."""
    lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    if grid_deg is None:
        return np.full(lat.shape, "conus", dtype=object)
    g = float(grid_deg)
    la, lo = np.floor(lat / g) * g, np.floor(lon / g) * g
    return np.array([f"lat{a:g}_lon{b:g}" for a, b in zip(la.ravel(), lo.ravel())], dtype=object).reshape(lat.shape)


# --------------------------------------------------------------------------------------------
# builder
# --------------------------------------------------------------------------------------------


@dataclass
class HydroDLSmapConfig(datasets.BuilderConfig):
    """Configuration of :class:`HydroDLSmap`; every field is part of the cache key.

    Args:
        years: year folders to read (each April 1 → March 31); ``None`` = every folder holding
            ``SMAP_AM.csv`` (every folder with ``missing_targets="nan"``). They must join into one
            contiguous record.
        region_grid_deg: size of the lat/lon cells used as ``region`` labels; ``"conus"`` (or ``None``,
            stored as ``"conus"``) labels every pixel ``"conus"``.
        out_of_range: ``"error"`` (default): a value outside its variable's physical range is a
            ``DataFormatError`` naming file, line, column, variable and value; ``"nan"``: such values
            are read as missing and their count per variable is logged (``logging.warning``) and
            kept in ``builder.range_check.counts``. ``-9999`` is NaN either way.
        missing_targets: ``"error"`` (default): a selected year folder without ``SMAP_AM.csv`` is a
            ``DataFormatError`` naming the file; ``"nan"``: its days get NaN targets (logged).
    """

    years: list[int] | None = None
    region_grid_deg: float | str = 10.0
    out_of_range: str = "error"
    missing_targets: str = "error"


class HydroDLSmap(datasets.GeneratorBasedBuilder):
    """hydroDL CONUS SMAP builder: one example per pixel (see the module docstring, also for where the
    cache lives and how to clear it).

    ``as_dataset(split="all")`` returns every pixel; the one stored split is named "train" because
    ``datasets`` reserves "all" for the union of splits.
    """

    # a few sites per Arrow record batch: the build holds only that many sites in memory
    DEFAULT_WRITER_BATCH_SIZE = 16
    BUILDER_CONFIG_CLASS = HydroDLSmapConfig
    # 1.2.0: rows carry the schema's ``gauged`` column (old caches lack it and are not served)
    BUILDER_CONFIGS = [HydroDLSmapConfig(name="conus", version=datasets.Version("1.2.0"), description="hydroDL CONUSv4f1 SMAP pixels")]
    DEFAULT_CONFIG_NAME = "conus"

    def __init__(self, *args, **kwargs):
        if isinstance(kwargs.get("years"), (tuple, range, np.ndarray)):
            kwargs["years"] = [int(y) for y in kwargs["years"]]
        elif isinstance(kwargs.get("years"), (int, np.integer)):
            kwargs["years"] = [int(kwargs["years"])]
        if "region_grid_deg" in kwargs and kwargs["region_grid_deg"] is None:
            kwargs["region_grid_deg"] = "conus"  # datasets ignores None overrides of a named config
        super().__init__(*args, **kwargs)
        self.range_check = PhysicalRangeCheck(self.config.out_of_range)

    def _build_cache_dir(self):
        # ``datasets`` calls this once the config is resolved and before it looks for a cached copy:
        # the place to check the config and to key the cache by the raw files (see cache_key)
        self._validate_config()
        years = self.years()
        self.hash = raw_files_fingerprint(self._raw_files(years), extra=[str(y) for y in years])
        return super()._build_cache_dir()

    def _validate_config(self) -> None:
        c = self.config
        if c.years is not None and (not c.years or len(set(c.years)) != len(c.years)):
            raise ValueError(f"years must be a non-empty list of distinct years, got {c.years!r}")
        if c.region_grid_deg != "conus" and not (isinstance(c.region_grid_deg, (int, float)) and c.region_grid_deg > 0):
            raise ValueError(f"region_grid_deg must be a positive number of degrees or 'conus', got {c.region_grid_deg!r}")
        PhysicalRangeCheck(c.out_of_range)  # checks the value
        if c.missing_targets not in MISSING_TARGETS_POLICIES:
            raise ValueError(f"missing_targets must be one of {list(MISSING_TARGETS_POLICIES)}, got {c.missing_targets!r}")
        validate_names(DYNAMIC_VARIABLES, "dynamic variables", kinds=[DYNAMIC])
        validate_names(STATIC_VARIABLES, "static variables", kinds=[STATIC])
        validate_names(TARGET_VARIABLES, "target variables", kinds=[TARGET])

    def _raw_files(self, years: list[int]) -> list[Path]:
        """Every file the build of ``years`` reads (expected ones that are absent count as absent)."""
        data_dir = self._data_dir()
        files = [data_dir / "crd.csv"] + [data_dir / "const" / f"{name}.csv" for name, _ in STATIC_SOURCES.values()]
        for year in years:
            folder = data_dir / str(year)
            files += [folder / "timeStr.csv", folder / f"{TARGET_SOURCE}.csv"]
            files += [folder / f"{stem}.csv" for stem, _, _ in DYNAMIC_SOURCES.values()]
        return files

    def download_and_prepare(self, *args, **kwargs):
        """As in ``datasets``, but a bad raw file surfaces as :class:`DataFormatError` itself."""
        return unwrap_data_format_error(super().download_and_prepare, *args, **kwargs)

    def _data_dir(self) -> Path:
        if not self.config.data_dir:
            raise ValueError("HydroDLSmap needs data_dir= (the folder holding crd.csv, const/ and the <year>/ folders)")
        return Path(self.config.data_dir)

    def years(self) -> list[int]:
        """The selected year folders (see ``HydroDLSmapConfig.years``)."""
        data_dir = self._data_dir()
        if self.config.years is None:
            years = available_years(data_dir)
            if not years:
                raise DataFormatError(data_dir, "no <year>/ folders found")
            if self.config.missing_targets == "nan":
                return years
            without = [y for y in years if not (data_dir / str(y) / f"{TARGET_SOURCE}.csv").is_file()]
            if without == years:
                raise DataFormatError(
                    data_dir, f"no <year>/ folder holds {TARGET_SOURCE}.csv (the soil-moisture target); "
                    "missing_targets='nan' builds the forcings alone"
                )
            if without:
                logger.warning(
                    "HydroDLSmap: years=None leaves out the year folder(s) %s, which have no %s.csv "
                    "(missing_targets='nan' keeps them, with NaN targets)", without, TARGET_SOURCE,
                )
            return [y for y in years if y not in without]
        years = sorted(int(y) for y in self.config.years)
        for y in years:
            if not (data_dir / str(y)).is_dir():
                raise DataFormatError(data_dir / str(y), f"year folder for {y} not found (available: {available_years(data_dir)})")
        return years

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description="SMAP L3 surface soil moisture with NLDAS forcings for 412 CONUS pixels (hydroDL CONUSv4f1), one example per pixel.",
            features=site_features(len(DYNAMIC_VARIABLES), len(STATIC_VARIABLES), len(TARGET_VARIABLES)),
            homepage="https://github.com/mhpi/hydroDL",
            citation="Fang, K., Shen, C., Kifer, D., & Yang, X. (2017). Prolongation of SMAP to spatiotemporally seamless coverage of continental U.S. using a deep learning neural network. GRL 44.",
            license="hydroDL non-commercial licence (LICENSE-hydroDL.txt); SMAP and NLDAS are NASA open data",
        )

    def _split_generators(self, dl_manager):
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs={})]

    def load_arrays(self) -> dict:
        """Everything as arrays: ``dates`` [T], ``dynamic`` [P, T, F], ``targets`` [P, T, 1],
        ``static`` [P, C] (float32), ``crd`` [P, 2], ``gauged`` (bool: a selected year had the
        target file, so the pixels have SMAP observations). Out-of-range values are handled by
        ``self.range_check`` (reset here)."""
        data_dir = self._data_dir()
        self.range_check = ranges = PhysicalRangeCheck(self.config.out_of_range)
        crd = read_coordinates(data_dir)
        n_pix = len(crd)
        dates, dyn_blocks, tgt_blocks = [], [], []
        gauged = False
        for year in self.years():
            folder = data_dir / str(year)
            days = read_time_str(folder / "timeStr.csv")
            if dates and days[0] != dates[-1][-1] + np.timedelta64(1, "D"):
                raise DataFormatError(
                    folder / "timeStr.csv",
                    f"year {year} starts on {days[0]} but the previous selected year ends on {dates[-1][-1]}: the selected years must be contiguous",
                    line=1,
                )
            n_t = len(days)

            def locate(index, days=days):  # a matrix row is a pixel, a column a day
                return index[0] + 1, f"column {index[1] + 1} ({days[index[1]]})"

            block = np.empty((n_pix, n_t, len(DYNAMIC_VARIABLES)), dtype=np.float32)
            for j, (name, (stem, scale, offset)) in enumerate(DYNAMIC_SOURCES.items()):
                path = folder / f"{stem}.csv"
                values = read_matrix(path, n_pix, n_t) * scale + offset
                ranges(values, name, path, locate)
                block[:, :, j] = values
            target_file = folder / f"{TARGET_SOURCE}.csv"
            if target_file.is_file():
                tgt = read_matrix(target_file, n_pix, n_t)
                ranges(tgt, TARGET_VARIABLES[0], target_file, locate)
                gauged = True
            elif self.config.missing_targets == "nan":
                logger.warning("HydroDLSmap: %s absent: soil_moisture is NaN for %s..%s (missing_targets='nan')", target_file, days[0], days[-1])
                tgt = np.full((n_pix, n_t), np.nan)
            else:
                raise DataFormatError(
                    target_file, f"file not found: the soil-moisture target of year {year} ({days[0]}..{days[-1]}); "
                    "select years that have it, or pass missing_targets='nan' to keep this year's forcings with NaN targets"
                )
            dates.append(days)
            dyn_blocks.append(block)
            tgt_blocks.append(tgt[:, :, None].astype(np.float32))
        static = np.empty((n_pix, len(STATIC_VARIABLES)), dtype=np.float32)
        for j, (name, (stem, scale)) in enumerate(STATIC_SOURCES.items()):
            values = read_static(data_dir, stem, n_pix) * scale
            ranges(values, name, data_dir / "const" / f"{stem}.csv", lambda index: (index[0] + 1, "column 1"))
            static[:, j] = values
        static[:, -2:] = crd  # checked by read_coordinates
        if ranges.counts:
            logger.warning("HydroDLSmap: out_of_range='nan' read values outside their physical range as missing: %s", ranges.summary())
        return {
            "dates": np.concatenate(dates),
            "dynamic": np.concatenate(dyn_blocks, axis=1),
            "targets": np.concatenate(tgt_blocks, axis=1),
            "static": static,
            "crd": crd,
            "gauged": gauged,
        }

    def _generate_examples(self):
        arrays = self.load_arrays()
        crd = arrays["crd"]
        grid = None if self.config.region_grid_deg == "conus" else float(self.config.region_grid_deg)
        regions = region_label(crd[:, 0], crd[:, 1], grid)
        dates = arrays["dates"].tolist()
        width = max(4, len(str(len(crd) - 1)))
        dyn_names, stat_names, tgt_names = list(DYNAMIC_VARIABLES), list(STATIC_VARIABLES), list(TARGET_VARIABLES)
        for i in range(len(crd)):
            site = f"pixel_{i:0{width}d}"
            yield site, {
                "site_id": site,
                "region": str(regions[i]),
                "latitude": float(crd[i, 0]),
                "longitude": float(crd[i, 1]),
                "dates": dates,
                "dynamic": arrays["dynamic"][i],
                "static": arrays["static"][i],
                "targets": arrays["targets"][i],
                "gauged": arrays["gauged"],
                "dynamic_variables": dyn_names,
                "static_variables": stat_names,
                "target_variables": tgt_names,
            }
