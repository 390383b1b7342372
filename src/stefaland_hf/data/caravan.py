"""Caravan (Kratzert et al. 2023, Scientific Data 10, 61) from its release layout, as a ``datasets`` builder.

Usage::

    b = Caravan(data_dir="/path/Caravan", cache_dir=tmp, sources=["camels", "camelsgb"])
    b.download_and_prepare()
    ds = b.as_dataset(split="all")   # one example per basin, schema of ``schema.site_features``

Layout read (``data_dir`` holds these; gauge ids are ``<source>_<id>``, e.g. ``camels_01022500``):

- ``timeseries/csv/<source>/<gauge_id>.csv``: a header line, then one row per day: ``date`` (YYYY-MM-DD) and one
  column per series (ERA5-Land aggregates such as ``total_precipitation_sum``, ``temperature_2m_max``, and
  ``streamflow``); an empty cell is a missing value. Columns are found by name, never by position. The netCDF copies
  under ``timeseries/netcdf/`` hold the same series and are not read.
- ``attributes/<source>/attributes_other_<source>.csv`` (``gauge_lat``, ``gauge_lon``, ``area`` in km²),
  ``attributes_caravan_<source>.csv`` (climate indices from the ERA5-Land series) and
  ``attributes_hydroatlas_<source>.csv`` (HydroATLAS), each keyed by ``gauge_id``.

Documented choices (Caravan converted ERA5-Land to hydrology's units itself, ``era5l_unit_conversion`` of its code:
K → °C, m → mm, J/m² per hour → W/m², Pa → kPa; its daily values are local-time days):

- **Dynamic inputs** (``dynamic_columns(pet)``): ``total_precipitation_sum`` (mm/day) → precipitation;
  ``temperature_2m_max`` / ``_min`` / ``_mean`` (°C) → temperature_max / _min / _mean (the mean of the hourly values,
  not CAMELS' (max + min) / 2); ``u_`` / ``v_component_of_wind_10m_mean`` (m/s) → wind_u / wind_v;
  ``snow_depth_water_equivalent_mean`` (mm) → snow_water_equivalent (ERA5-Land's modelled snowpack);
  potential evapotranspiration (mm/day) from ``potential_evaporation_sum_ERA5_LAND`` (``potential_evaporation_sum`` in
  releases before it was renamed) or, with ``pet="fao_penman_monteith"``, ``potential_evaporation_sum_FAO_PENMAN_MONTEITH``;
  vapor_pressure = 610.94 · exp(17.625 Td / (Td + 243.04)) Pa from ``dewpoint_temperature_2m_mean`` Td (°C; the Magnus
  form of Alduchov & Eskridge 1996, evaluated at the daily mean dewpoint); daylength (s) computed from ``gauge_lat``
  and the day of year (sun's centre on the horizon, declination of Cooper 1969; within 4.1 minutes of Daymet's
  ``dayl`` over the 67 CAMELS-US basins of the shared data, 1980-2014).
- **Negative potential evaporation**: ERA5-Land's potential evaporation is negative on days of net condensation
  (e.g. -0.07 mm); evaporative demand cannot be negative, so such values are read as 0, counted and logged
  (``builder.negative_pet_days``).
- **Not read** (:data:`UNREAD_COLUMNS`, with the reason; the builder's ``info.description`` lists them too):
  ``surface_net_solar_radiation_*`` and ``surface_net_thermal_radiation_*`` are net fluxes, while the vocabulary's
  shortwave/longwave_radiation are downward ones and Caravan gives no albedo or emissivity to convert them, so those
  stay missing (mask tokens); ``surface_pressure_*`` and ``volumetric_soil_water_layer_*`` (ERA5-Land's modelled soil
  water) have no canonical variable; the ``_min``/``_max`` aggregates other than temperature's are not inputs. Any
  other column is listed in ``builder.unread_columns`` and logged.
- **Target**: ``streamflow`` (mm/day, as Caravan gives it) → streamflow. A basin whose file has no ``streamflow``
  column or no value in it has no streamflow record: it is built with NaN targets and ``gauged=False``, logged and
  listed in ``builder.ungauged_basins``; every other basin is gauged, whatever its observations in the period.
- **Statics** (``attribute_sources(pet)``): ``gauge_lat``, ``gauge_lon`` → latitude, longitude; ``area`` (km²) →
  area; from the Caravan climate indices ``p_mean`` → mean_precipitation, ``pet_mean[_ERA5_LAND|_FAO_PM]`` → mean_pet,
  ``aridity[_ERA5_LAND|_FAO_PM]`` (PET/P) → aridity, ``high_prec_dur``/``low_prec_dur`` (days) → high/low_precipitation_
  duration, and ``high_prec_freq``/``low_prec_freq``, which Caravan gives as a **fraction of days**, × 365.25 →
  high/low_precipitation_frequency (days/yr, CAMELS' unit). Caravan's ``frac_snow`` (monthly means, Knoben et al.),
  ``moisture_index`` and ``seasonality`` are other definitions than the vocabulary's snow_fraction and
  precipitation_seasonality and are not read. From HydroATLAS: ``ele_mt_sav`` (m) → elevation; ``slp_dg_sav``
  (degrees × 10) → slope = tan(value / 10 °) × 1000 m/km; ``snd/slt/cly_pc_sav`` (%, SoilGrids) → sand/silt/
  clay_fraction_soilgrids (/ 100; not CAMELS' STATSGO ``sand_fraction``); ``soc_th_sav`` (t/ha) →
  soil_organic_carbon_stock; ``for/urb/gla/prm_pc_sse`` (%) → forest/urban/glacier/permafrost_fraction (/ 100);
  ``ppd_pk_sav`` (people/km²) → population_density; ``ero_kh_sav`` (kg/ha/yr) → soil_erosion (/ 1000, t/ha/yr);
  ``tmp_dc_syr`` (°C × 10) → mean_temperature. Other HydroATLAS columns are not read.
- ``region`` is the source (``camels``, ``camelsgb``, ...).
- **Missing inputs**: ``missing_inputs="error"`` (default): a column, an attribute table or an attribute row the
  build reads that is absent, or a file that does not cover the period, is a :class:`DataFormatError` naming the file;
  ``"nan"`` reads them as missing (mask tokens), logging each. **Physical ranges** as in every builder
  (``out_of_range``): a value outside its variable's range after conversion is a ``DataFormatError`` naming file,
  line, column and value, or missing with ``out_of_range="nan"``.

Cache: ``<cache_dir>/caravan/<config>/<version>/<fingerprint>/``, the fingerprint over the path, size and
modification time of every file the build reads and the basin ids, as for CAMELS-US (``builder.cache_dir``).

Licence: Caravan is CC-BY-4.0; cite its source datasets as well (its ``licenses/`` folder).
"""

from __future__ import annotations

import io
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import datasets
import numpy as np
import pandas as pd

from ..variables import DYNAMIC, STATIC, TARGET, validate_names
from .cache_key import raw_files_fingerprint
from .errors import DataFormatError, PhysicalRangeCheck, unwrap_data_format_error
from .schema import site_features

logger = logging.getLogger(__name__)

__all__ = [
    "Caravan",
    "CaravanConfig",
    "PET_SOURCES",
    "UNREAD_COLUMNS",
    "attribute_sources",
    "daylength",
    "dynamic_columns",
    "read_attribute_table",
    "read_timeseries",
    "vapor_pressure",
]

DATE = "date"
STREAMFLOW = "streamflow"
TARGET_VARIABLES: tuple[str, ...] = ("streamflow",)
MISSING_POLICIES = ("error", "nan")
DAYS_PER_YEAR = 365.25
_NAN_TOKENS = ["", "nan", "NaN"]

#: the potential-evaporation columns of each ``pet`` choice (first present wins: names changed between releases) and
#: the climate-index suffix of the attributes computed from it
PET_SOURCES: dict[str, tuple[tuple[str, ...], str]] = {
    "era5_land": (("potential_evaporation_sum_ERA5_LAND", "potential_evaporation_sum"), "ERA5_LAND"),
    "fao_penman_monteith": (("potential_evaporation_sum_FAO_PENMAN_MONTEITH",), "FAO_PM"),
}

#: Caravan columns (or prefixes of them) that are not inputs, and why
UNREAD_COLUMNS: dict[str, str] = {
    "surface_net_solar_radiation": "net shortwave; the vocabulary's shortwave_radiation is downward and Caravan gives no albedo",
    "surface_net_thermal_radiation": "net longwave; the vocabulary's longwave_radiation is downward",
    "surface_pressure": "no canonical variable",
    "volumetric_soil_water_layer": "ERA5-Land's modelled soil water: no canonical input (soil moisture is a target)",
    **{
        f"{band}_{extreme}": f"a daily {extreme}imum; {name} is read from the daily mean"
        for band, name in (("dewpoint_temperature_2m", "vapor_pressure"), ("u_component_of_wind_10m", "wind_u"),
                           ("v_component_of_wind_10m", "wind_v"), ("snow_depth_water_equivalent", "snow_water_equivalent"))
        for extreme in ("min", "max")
    },
}


def _pet(pet: str) -> tuple[tuple[str, ...], str]:
    if pet not in PET_SOURCES:
        raise ValueError(f"pet must be one of {sorted(PET_SOURCES)}, got {pet!r}")
    return PET_SOURCES[pet]


def vapor_pressure(dewpoint_celsius: np.ndarray) -> np.ndarray:
    """Water vapour pressure (Pa) at the dewpoint (°C): the Magnus form of Alduchov & Eskridge (1996)."""
    return 610.94 * np.exp(17.625 * dewpoint_celsius / (dewpoint_celsius + 243.04))


def daylength(latitude: float, dates: np.ndarray) -> np.ndarray:
    """Seconds from sunrise to sunset (sun's centre on the horizon) at ``latitude`` (degrees north) on ``dates``;
    polar day and night give 86,400 and 0. Declination of Cooper (1969)."""
    day_of_year = pd.DatetimeIndex(dates).day_of_year.to_numpy()
    declination = np.radians(23.44) * np.sin(2 * np.pi * (284 + day_of_year) / 365.0)
    cos_hour_angle = np.clip(-np.tan(np.radians(latitude)) * np.tan(declination), -1.0, 1.0)
    return np.arccos(cos_hour_angle) / np.pi * 86_400.0


def _identity(values: np.ndarray) -> np.ndarray:
    return values


def _percent(values: np.ndarray) -> np.ndarray:
    return values / 100.0


def _per_year(values: np.ndarray) -> np.ndarray:
    return values * DAYS_PER_YEAR


@dataclass(frozen=True)
class VariableSource:
    """Where a canonical variable comes from: a table (a time-series file or an attribute table), the columns that may
    hold it (the first present is read) and the conversion to the canonical unit."""

    table: str
    columns: tuple[str, ...]
    convert: Callable[[np.ndarray], np.ndarray] = _identity


def dynamic_columns(pet: str = "era5_land") -> dict[str, VariableSource]:
    """The dynamic inputs read from a time-series file (daylength, computed, is not among them)."""
    return {
        "precipitation": VariableSource("timeseries", ("total_precipitation_sum",)),
        "temperature_max": VariableSource("timeseries", ("temperature_2m_max",)),
        "temperature_min": VariableSource("timeseries", ("temperature_2m_min",)),
        "temperature_mean": VariableSource("timeseries", ("temperature_2m_mean",)),
        "potential_evapotranspiration": VariableSource("timeseries", _pet(pet)[0]),
        "vapor_pressure": VariableSource("timeseries", ("dewpoint_temperature_2m_mean",), vapor_pressure),
        "wind_u": VariableSource("timeseries", ("u_component_of_wind_10m_mean",)),
        "wind_v": VariableSource("timeseries", ("v_component_of_wind_10m_mean",)),
        "snow_water_equivalent": VariableSource("timeseries", ("snow_depth_water_equivalent_mean",)),
    }


DYNAMIC_VARIABLES: tuple[str, ...] = (*dynamic_columns(), "daylength")


def attribute_sources(pet: str = "era5_land") -> dict[str, VariableSource]:
    """The static attributes, by canonical name (see the module docstring for the units)."""
    suffix = _pet(pet)[1]
    # releases before the FAO Penman-Monteith indices named the ERA5-Land ones without a suffix
    plain = ("",) if pet == "era5_land" else ()
    return {
        "latitude": VariableSource("other", ("gauge_lat",)),
        "longitude": VariableSource("other", ("gauge_lon",)),
        "area": VariableSource("other", ("area",)),
        "mean_precipitation": VariableSource("caravan", ("p_mean",)),
        "mean_pet": VariableSource("caravan", tuple(f"pet_mean{s}" for s in (f"_{suffix}", *plain))),
        "aridity": VariableSource("caravan", tuple(f"aridity{s}" for s in (f"_{suffix}", *plain))),
        "high_precipitation_frequency": VariableSource("caravan", ("high_prec_freq",), _per_year),
        "high_precipitation_duration": VariableSource("caravan", ("high_prec_dur",)),
        "low_precipitation_frequency": VariableSource("caravan", ("low_prec_freq",), _per_year),
        "low_precipitation_duration": VariableSource("caravan", ("low_prec_dur",)),
        "elevation": VariableSource("hydroatlas", ("ele_mt_sav",)),
        "slope": VariableSource("hydroatlas", ("slp_dg_sav",), lambda tenths: np.tan(np.radians(tenths / 10.0)) * 1000.0),
        "sand_fraction_soilgrids": VariableSource("hydroatlas", ("snd_pc_sav",), _percent),
        "silt_fraction_soilgrids": VariableSource("hydroatlas", ("slt_pc_sav",), _percent),
        "clay_fraction_soilgrids": VariableSource("hydroatlas", ("cly_pc_sav",), _percent),
        "soil_organic_carbon_stock": VariableSource("hydroatlas", ("soc_th_sav",)),
        "forest_fraction": VariableSource("hydroatlas", ("for_pc_sse",), _percent),
        "urban_fraction": VariableSource("hydroatlas", ("urb_pc_sse",), _percent),
        "glacier_fraction": VariableSource("hydroatlas", ("gla_pc_sse",), _percent),
        "permafrost_fraction": VariableSource("hydroatlas", ("prm_pc_sse",), _percent),
        "population_density": VariableSource("hydroatlas", ("ppd_pk_sav",)),
        "soil_erosion": VariableSource("hydroatlas", ("ero_kh_sav",), lambda kg: kg / 1000.0),
        "mean_temperature": VariableSource("hydroatlas", ("tmp_dc_syr",), lambda tenths: tenths / 10.0),
    }


STATIC_VARIABLES: tuple[str, ...] = tuple(attribute_sources())
_LOCATION = ("latitude", "longitude", "area")  # read for every build



# --------------------------------------------------------------------------------------------
# file readers
# --------------------------------------------------------------------------------------------


def _numeric(text: pd.Series, column: str, path: Path, lines: np.ndarray) -> np.ndarray:
    """A column's cells as float64, empty cells NaN; a text that is not a number is an error naming file, line
    (``lines``: the line of each cell) and column."""
    if pd.api.types.is_float_dtype(text):  # pandas parsed every cell as a number
        return text.to_numpy(dtype=np.float64, copy=True)  # writable: range checks may set NaN
    values = pd.to_numeric(text, errors="coerce")
    bad = np.flatnonzero(values.isna().to_numpy() & ~text.isna().to_numpy())
    if bad.size:
        raise DataFormatError(path, f"column {column}: expected a number, found {text.iloc[bad[0]]!r}", line=int(lines[bad[0]]))
    return values.to_numpy(dtype=np.float64, copy=True)  # writable: range checks may set NaN


def _fields_per_line(raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Per line of a comma-separated file (trailing empty lines dropped): the number of fields, and whether it is blank."""
    data = np.frombuffer(raw, dtype=np.uint8)
    newlines = np.flatnonzero(data == ord("\n"))
    starts, ends = np.r_[0, newlines + 1], np.r_[newlines, data.size]
    commas = np.r_[0, np.cumsum(data == ord(","))]
    blank = (ends - starts) - (data[np.maximum(ends - 1, 0)] == ord("\r")) * (ends > starts) <= 0
    last = np.flatnonzero(~blank)
    keep = slice(0, int(last[-1]) + 1 if last.size else 0)
    return (commas[ends] - commas[starts] + 1)[keep], blank[keep]


def read_timeseries(path: str | os.PathLike, columns: Iterable[str] | None = None) -> tuple[np.ndarray, pd.DataFrame, list[str]]:
    """One basin's ``<gauge_id>.csv``: ``(dates datetime64[D] [T], columns, header)``, rows checked to hold as many
    fields as the header and dates to be consecutive days; row ``i`` is line ``i + 2``. ``columns`` (default: all)
    limits the columns parsed to those of them the file has: floats where every cell is a number or empty, else text
    (:func:`_numeric` names the bad cell)."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "time-series file not found")
    raw = path.read_bytes()
    header = [name.strip() for name in raw.split(b"\n", 1)[0].decode("utf-8", "replace").split(",")]
    if DATE not in header:
        raise DataFormatError(path, f"no {DATE!r} column in the header (found {', '.join(header[:6])}, ...): expected Caravan's daily table", line=1)
    fields, blank = _fields_per_line(raw)
    if len(fields) < 2:
        raise DataFormatError(path, "no data rows after the header (file truncated?)")
    bad = np.flatnonzero((fields != len(header)) | blank)
    if bad.size:
        line = int(bad[0])
        what = "blank line inside the data" if blank[line] else f"expected {len(header)} columns, found {fields[line]}"
        truncated = line == len(fields) - 1 and fields[line] < len(header)
        raise DataFormatError(path, what + (" (truncated last line?)" if truncated else ""), line=line + 1)
    text = raw.decode("utf-8", "replace")
    wanted = [DATE, *(c for c in header if c != DATE and (columns is None or c in set(columns)))]
    frame = pd.read_csv(io.StringIO(text), usecols=wanted, dtype={DATE: str}, keep_default_na=False, na_values=_NAN_TOKENS, index_col=False)
    dates = pd.to_datetime(frame.pop(DATE), format="%Y-%m-%d", errors="coerce")
    bad = np.flatnonzero(dates.isna().to_numpy())
    if bad.size:
        raise DataFormatError(path, f"expected a YYYY-MM-DD date, found {text.split(chr(10))[int(bad[0]) + 1].split(',')[header.index(DATE)]!r}",
                              line=int(bad[0]) + 2)
    days = dates.to_numpy().astype("datetime64[D]")
    step = np.flatnonzero(np.diff(days.astype(np.int64)) != 1)
    if step.size:
        row = int(step[0]) + 1
        raise DataFormatError(path, f"dates must be consecutive days: {days[row]} follows {days[row - 1]}", line=row + 2)
    return days, frame, header


def file_period(path: str | os.PathLike) -> tuple[np.datetime64, np.datetime64]:
    """The first and last date of a time-series file, from its first and last rows alone (checked in full when read)."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "time-series file not found")
    with open(path, "rb") as handle:
        header = handle.readline().decode("utf-8", "replace").strip().split(",")
        first = handle.readline().decode("utf-8", "replace")
        handle.seek(max(0, path.stat().st_size - 4096))
        last = [line for line in handle.read().decode("utf-8", "replace").splitlines() if line.strip()][-1]
    if DATE not in header or not first.strip():
        return read_timeseries(path, ())[0][[0, -1]]  # the full read names the problem
    column = header.index(DATE)
    try:
        return tuple(np.datetime64(row.split(",")[column].strip(), "D") for row in (first, last))
    except (ValueError, IndexError):
        return read_timeseries(path, ())[0][[0, -1]]


def read_attribute_table(path: str | os.PathLike) -> pd.DataFrame:
    """An ``attributes_*_<source>.csv`` as text, indexed by ``gauge_id`` (checked unique); its ``line`` column gives
    each row's line in the file."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "attribute table not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=_NAN_TOKENS, index_col=False)
    except pd.errors.ParserError as error:
        raise DataFormatError(path, f"not a comma-separated table ({error})") from None
    if "gauge_id" not in frame.columns:
        raise DataFormatError(path, f"no 'gauge_id' column (found {', '.join(map(str, frame.columns[:6]))}, ...)", line=1)
    frame["line"] = np.arange(len(frame)) + 2
    duplicated = frame["gauge_id"].duplicated()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0])
        raise DataFormatError(path, f"gauge_id {frame['gauge_id'].iloc[row]} appears twice", line=row + 2)
    return frame.set_index("gauge_id")


# --------------------------------------------------------------------------------------------
# builder
# --------------------------------------------------------------------------------------------


@dataclass
class CaravanConfig(datasets.BuilderConfig):
    """Configuration of :class:`Caravan`; every field is part of the cache key.

    Args:
        sources: source folders under ``timeseries/csv/`` (``camels``, ``camelsgb``, ...); ``None``: every one (or those
            of ``basins``).
        basins: gauge ids (``<source>_<id>``) or a basin-list file (one id per line); ``None``: every file of the sources.
        start_date, end_date: ISO dates; default from the earliest to the latest day of the basins' files.
        attributes: canonical static names (keys of :func:`attribute_sources`); default all of them.
        pet: ``"era5_land"`` (default) or ``"fao_penman_monteith"``: the potential evaporation read as
            potential_evapotranspiration, and the climate indices (mean_pet, aridity) computed from it; each has its
            named config (``config_name``), which a finetuning run records.
        missing_inputs: ``"error"`` (default) or ``"nan"`` for an absent column, attribute table or row, or a file
            that does not cover the period (see the module docstring).
        out_of_range: ``"error"`` (default) or ``"nan"``, as for every builder.
    """

    sources: list[str] | None = None
    basins: str | list[str] | None = None
    start_date: str | None = None
    end_date: str | None = None
    attributes: list[str] | None = None
    pet: str = "era5_land"
    missing_inputs: str = "error"
    out_of_range: str = "error"


class Caravan(datasets.GeneratorBasedBuilder):
    """Caravan builder: one example per basin (see the module docstring, also for where the cache lives).

    ``as_dataset(split="all")`` returns every basin (the one stored split is named "train": ``datasets`` reserves "all").
    """

    DEFAULT_WRITER_BATCH_SIZE = 16  # a few basins per Arrow record batch: the build holds only that many in memory
    BUILDER_CONFIG_CLASS = CaravanConfig
    # one config per potential evaporation, so that a run's record (the config name) says which one a model learned from
    BUILDER_CONFIGS = [
        CaravanConfig(name=pet, pet=pet, version=datasets.Version("1.0.0"), description=f"Caravan: ERA5-Land forcings ({pet} PET), streamflow, attributes")
        for pet in PET_SOURCES
    ]
    DEFAULT_CONFIG_NAME = "era5_land"

    def __init__(self, *args, **kwargs):
        if kwargs.get("config_name") is None and not args and kwargs.get("pet") in PET_SOURCES:
            kwargs["config_name"] = kwargs.pop("pet")  # pet=... selects its named config
        for key in ("sources", "attributes"):
            if isinstance(kwargs.get(key), (tuple, str)):
                kwargs[key] = [kwargs[key]] if isinstance(kwargs[key], str) else list(kwargs[key])
        if isinstance(kwargs.get("basins"), (tuple, os.PathLike)):
            kwargs["basins"] = os.fspath(kwargs["basins"]) if isinstance(kwargs["basins"], os.PathLike) else list(kwargs["basins"])
        super().__init__(*args, **kwargs)
        self.range_check = PhysicalRangeCheck(self.config.out_of_range)
        self.ungauged_basins: list[str] = []
        self.unread_columns: set[str] = set()
        self.negative_pet_days = 0

    # -- config ---------------------------------------------------------------------------------
    def _build_cache_dir(self):
        # called once the config is resolved, before a cached copy is looked for: check it and key the cache by the files
        self._validate_config()
        basins = self.basin_ids()
        self.hash = raw_files_fingerprint(self._raw_files(basins), extra=basins)
        return super()._build_cache_dir()

    def _validate_config(self) -> None:
        c = self.config
        _pet(c.pet)
        if c.name in PET_SOURCES and c.name != c.pet:
            raise ValueError(f"config_name={c.name!r} conflicts with pet={c.pet!r}; pass one of them")
        if c.missing_inputs not in MISSING_POLICIES:
            raise ValueError(f"missing_inputs must be one of {list(MISSING_POLICIES)}, got {c.missing_inputs!r}")
        PhysicalRangeCheck(c.out_of_range)
        unknown = sorted(set(self.attributes) - set(STATIC_VARIABLES))
        if unknown:
            raise ValueError(f"attributes: {unknown} are not read from Caravan; expected some of {list(STATIC_VARIABLES)}")
        if c.start_date and c.end_date and np.datetime64(c.end_date, "D") < np.datetime64(c.start_date, "D"):
            raise ValueError(f"end_date {c.end_date} is before start_date {c.start_date}")
        validate_names(DYNAMIC_VARIABLES, "dynamic variables", kinds=[DYNAMIC])
        validate_names(self.attributes, "attributes", kinds=[STATIC])
        validate_names(TARGET_VARIABLES, "target variables", kinds=[TARGET])

    @property
    def attributes(self) -> list[str]:
        return list(self.config.attributes) if self.config.attributes is not None else list(STATIC_VARIABLES)

    def _data_dir(self) -> Path:
        if not self.config.data_dir:
            raise ValueError("Caravan needs data_dir= (the folder holding timeseries/csv/ and attributes/)")
        return Path(self.config.data_dir)

    def _timeseries_dir(self) -> Path:
        folder = self._data_dir() / "timeseries" / "csv"
        if not folder.is_dir():
            raise DataFormatError(folder, "folder not found: expected Caravan's layout, timeseries/csv/<source>/<gauge_id>.csv")
        return folder

    def sources(self) -> list[str]:
        """The source folders read."""
        available = sorted(p.name for p in self._timeseries_dir().iterdir() if p.is_dir())
        wanted = self.config.sources or (sorted({_source_of(b) for b in self._listed_basins()}) if self.config.basins else available)
        missing = [s for s in wanted if s not in available]
        if missing:
            raise DataFormatError(self._timeseries_dir(), f"no source folder {missing}; found {available}")
        return list(wanted)

    def _basin_list_path(self) -> Path | None:
        """The basin-list file ``basins`` names (as given, else relative to ``data_dir``), or None for a list of ids."""
        basins = self.config.basins
        if not isinstance(basins, str):
            return None
        return Path(basins) if Path(basins).exists() else self._data_dir() / basins

    def _listed_basins(self) -> list[str]:
        basins, path = self.config.basins, self._basin_list_path()
        if path is not None:
            if not path.is_file():
                raise DataFormatError(path, "basin-list file not found")
            basins = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
        duplicated = sorted(b for b, n in Counter(basins).items() if n > 1)
        if duplicated:
            raise ValueError(f"basins: {duplicated} listed more than once")
        return list(basins)

    def basin_ids(self) -> list[str]:
        """The gauge ids to build, in order: those of ``basins``, else every file of the sources (sorted)."""
        if self.config.basins is None:
            basins = [p.stem for source in self.sources() for p in sorted((self._timeseries_dir() / source).glob("*.csv"))]
            if not basins:
                raise DataFormatError(self._timeseries_dir(), f"no <gauge_id>.csv file in the source folders {self.sources()}")
            return basins
        basins = self._listed_basins()
        if not basins:
            raise ValueError("basins: empty; pass gauge ids, a basin-list file, or None for every basin of the sources")
        sources = set(self.sources())
        outside = [b for b in basins if _source_of(b) not in sources]
        if outside:
            raise ValueError(f"basins: {outside[:5]} are not in sources={sorted(sources)} (gauge ids are <source>_<id>)")
        return basins

    def _table_path(self, kind: str, source: str) -> Path:
        return self._data_dir() / "attributes" / source / f"attributes_{kind}_{source}.csv"

    def _raw_files(self, basins: list[str]) -> list[Path]:
        tables = {s.table for name, s in attribute_sources(self.config.pet).items() if name in self._attributes_read()}
        files = [self._timeseries_dir() / _source_of(b) / f"{b}.csv" for b in basins]
        files += [self._table_path(kind, source) for source in dict.fromkeys(map(_source_of, basins)) for kind in sorted(tables)]
        if self._basin_list_path() is not None:
            files.append(self._basin_list_path())
        return files

    def _attributes_read(self) -> list[str]:
        return list(dict.fromkeys([*self.attributes, *_LOCATION]))

    def download_and_prepare(self, *args, **kwargs):
        """As in ``datasets``, but a bad raw file surfaces as :class:`DataFormatError` itself."""
        return unwrap_data_format_error(super().download_and_prepare, *args, **kwargs)

    # -- datasets API ---------------------------------------------------------------------------
    def _info(self) -> datasets.DatasetInfo:
        pet = self.config.pet if self.config.pet in PET_SOURCES else "era5_land"
        read = {name: "/".join(s.columns) for name, s in dynamic_columns(pet).items()}
        description = (
            "Caravan: daily ERA5-Land forcings, streamflow (mm/day) and attributes of basins worldwide, one example per basin. "
            f"Inputs read (canonical name <- Caravan column): {read}; daylength computed from gauge_lat and the date; "
            f"attributes: { {name: s.table + ':' + '/'.join(s.columns) for name, s in attribute_sources(pet).items()} }. "
            f"Columns not read, and why: {UNREAD_COLUMNS}."
        )
        return datasets.DatasetInfo(
            description=description,
            features=site_features(len(DYNAMIC_VARIABLES), len(self.attributes), len(TARGET_VARIABLES)),
            homepage="https://github.com/kratzert/Caravan",
            citation="Kratzert, F., et al. (2023). Caravan - A global community dataset for large-sample hydrology. Scientific Data 10, 61.",
            license="cc-by-4.0",
        )

    def _split_generators(self, dl_manager):
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs={})]

    def _missing(self, path: Path, reason: str) -> None:
        """An absent input: an error, or (``missing_inputs="nan"``) a warning and NaN."""
        if self.config.missing_inputs == "error":
            raise DataFormatError(path, f"{reason}; missing_inputs='nan' reads it as missing")
        logger.warning("Caravan: %s: %s; read as missing (missing_inputs='nan')", path, reason)

    def _generate_examples(self):
        basins = self.basin_ids()
        self.range_check = PhysicalRangeCheck(self.config.out_of_range)
        self.ungauged_basins, self.unread_columns, self.negative_pet_days = [], set(), 0
        statics = self._statics(basins)
        files = {basin: self._timeseries_dir() / _source_of(basin) / f"{basin}.csv" for basin in basins}
        start, end = (np.datetime64(d, "D") if d else None for d in (self.config.start_date, self.config.end_date))
        if start is None or end is None:  # the union of the files' periods
            periods = np.array([file_period(path) for path in files.values()])
            start, end = start or periods[:, 0].min(), end or periods[:, 1].max()
        dates = np.arange(start, end + np.timedelta64(1, "D"), dtype="datetime64[D]")
        static_names = list(self.attributes)
        wanted = {STREAMFLOW, *(c for spec in dynamic_columns(self.config.pet).values() for c in spec.columns)}
        # what is read, or known and documented as not read (the other potential evaporation, UNREAD_COLUMNS)
        known = wanted | {c for columns, _ in PET_SOURCES.values() for c in columns}
        for basin, path in files.items():
            days, frame, header = read_timeseries(path, wanted)
            self.unread_columns |= {c for c in header if c not in known and not c.startswith(tuple(UNREAD_COLUMNS))} - {DATE}
            dynamic, targets, gauged = self._basin_series(path, days, frame, dates, statics.loc[basin, "latitude"])
            if not gauged:
                self.ungauged_basins.append(basin)
            yield basin, {
                "site_id": basin,
                "region": _source_of(basin),
                "latitude": float(statics.loc[basin, "latitude"]),
                "longitude": float(statics.loc[basin, "longitude"]),
                "dates": dates.tolist(),
                "dynamic": dynamic,
                "static": statics.loc[basin, static_names].to_numpy(dtype=np.float32),
                "targets": targets,
                "gauged": gauged,
                "dynamic_variables": list(DYNAMIC_VARIABLES),
                "static_variables": static_names,
                "target_variables": list(TARGET_VARIABLES),
            }
        if self.ungauged_basins:
            logger.warning("Caravan: %d of %d basins have no streamflow record (no streamflow column or no value in it): "
                           "NaN targets, gauged=False: %s", len(self.ungauged_basins), len(basins), ", ".join(self.ungauged_basins[:10]))
        if self.unread_columns:
            logger.info("Caravan: columns not read (no canonical variable): %s", ", ".join(sorted(self.unread_columns)))
        if self.negative_pet_days:
            logger.warning("Caravan: %d basin-days of negative potential evaporation (condensation) read as 0", self.negative_pet_days)
        if self.range_check.counts:
            logger.warning("Caravan: out_of_range='nan' read values outside their physical range as missing: %s", self.range_check.summary())

    def _basin_series(self, path: Path, days: np.ndarray, frame: pd.DataFrame, dates: np.ndarray, latitude: float):
        """``(dynamic [T, F] float32, targets [T, 1] float32, gauged)`` on ``dates``."""
        if days[0] > dates[0] or days[-1] < dates[-1]:
            self._missing(path, f"covers {days[0]}..{days[-1]}, the period is {dates[0]}..{dates[-1]} (truncated file?)")
        inside = (days >= dates[0]) & (days <= dates[-1])
        rows = np.flatnonzero(inside)
        position = (days[rows] - dates[0]).astype(np.int64)
        dynamic = np.full((len(dates), len(DYNAMIC_VARIABLES)), np.nan, dtype=np.float32)
        for j, (name, spec) in enumerate(dynamic_columns(self.config.pet).items()):
            column = next((c for c in spec.columns if c in frame.columns), None)
            if column is None:
                self._missing(path, f"no column {' or '.join(spec.columns)} ({name})")
                continue
            values = spec.convert(_numeric(frame[column].iloc[rows], column, path, rows + 2))
            if name == "potential_evapotranspiration":
                negative = values < 0
                self.negative_pet_days += int(negative.sum())
                values[negative] = 0.0
            self.range_check(values, name, path, lambda index, column=column: (int(rows[index[0]]) + 2, f"column {column}"))
            dynamic[position, j] = values
        dynamic[:, DYNAMIC_VARIABLES.index("daylength")] = daylength(latitude, dates)
        targets = np.full((len(dates), 1), np.nan, dtype=np.float32)
        if STREAMFLOW not in frame.columns:
            return dynamic, targets, False
        flow = _numeric(frame[STREAMFLOW], STREAMFLOW, path, np.arange(len(frame)) + 2)
        gauged = bool(np.isfinite(flow).any())
        flow = flow[rows]
        self.range_check(flow, "streamflow", path, lambda index: (int(rows[index[0]]) + 2, f"column {STREAMFLOW}"))
        targets[position, 0] = flow
        return dynamic, targets, gauged

    def _statics(self, basins: list[str]) -> pd.DataFrame:
        """Canonical attributes of ``basins`` (rows) in canonical units, each table of each source read once."""
        specs = {name: attribute_sources(self.config.pet)[name] for name in self._attributes_read()}
        out = pd.DataFrame(np.nan, index=pd.Index(basins), columns=list(specs))
        for source in dict.fromkeys(map(_source_of, basins)):
            ids = [b for b in basins if _source_of(b) == source]
            for kind in dict.fromkeys(spec.table for spec in specs.values()):
                wanted = {name: spec for name, spec in specs.items() if spec.table == kind}
                path = self._table_path(kind, source)
                if not path.is_file():
                    self._missing(path, f"attribute table not found ({', '.join(wanted)})")
                    continue
                table = read_attribute_table(path)
                absent = [b for b in ids if b not in table.index]
                if absent:
                    self._missing(path, f"no row for basins {absent[:5]}" + (f" and {len(absent) - 5} more" if len(absent) > 5 else ""))
                rows = table.loc[[b for b in ids if b in table.index]]
                for name, spec in wanted.items():
                    column = next((c for c in spec.columns if c in table.columns), None)
                    if column is None:
                        self._missing(path, f"no column {' or '.join(spec.columns)} ({name})")
                        continue
                    lines = rows["line"].to_numpy()
                    values = spec.convert(_numeric(rows[column], column, path, lines))
                    self.range_check(values, name, path, lambda index, column=column, lines=lines: (int(lines[index[0]]), f"column {column}"))
                    out.loc[rows.index, name] = values
        return out


def _source_of(gauge_id: str) -> str:
    """``camels_01022500`` -> ``camels``."""
    source, separator, _ = str(gauge_id).partition("_")
    if not separator:
        raise ValueError(f"gauge id {gauge_id!r}: expected <source>_<id>, e.g. camels_01022500")
    return source
