"""The canonical variable vocabulary shared by every dataset and model.

Datasets map their columns into these names and units; the model keys its per-variable
embeddings by them, so a model pretrained on one forcing product can be finetuned on another.
This module is copied next to the modeling code by ``save_pretrained``, so it imports only the
standard library and numpy.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

DYNAMIC = "dynamic"
STATIC = "static"
TARGET = "target"


@dataclass(frozen=True)
class Variable:
    """One canonical variable.

    ``valid_min``/``valid_max`` bound the physically possible values in ``unit`` (inclusive;
    ``math.inf`` where nature sets no bound) and ``range_reason`` says where the bound comes from.
    The builders reject raw values outside it (see ``stefaland_hf.data.errors.PhysicalRangeCheck``):
    the bounds are deliberately loose, to catch sentinels, unit mix-ups and corrupt files, never
    to judge plausible extremes.
    """

    name: str
    unit: str
    kind: str
    description: str
    valid_min: float
    valid_max: float
    range_reason: str

    @property
    def allow_negative(self) -> bool:
        return self.valid_min < 0


def _v(kind: str, name: str, unit: str, description: str, valid: tuple[float, float, str]) -> Variable:
    lo, hi, reason = valid
    return Variable(name=name, unit=unit, kind=kind, description=description, valid_min=float(lo), valid_max=float(hi), range_reason=reason)


_INF = math.inf
# Physical ranges (min, max, why). Weather records are those of the WMO Archive of Weather and
# Climate Extremes (https://wmo.asu.edu); ranges hold for any site and any averaging period.
_FRACTION = (0, 1, "a fraction of a whole")
_AIR_TEMPERATURE = (-90, 60, "world records of air temperature: -89.2 degC (Vostok, 1983) and 56.7 degC (Death Valley, 1913)")
_DAILY_PRECIPITATION = (0, 1825, "world-record 24-hour rainfall: 1,825 mm (Foc-Foc, La Reunion, 7-8 January 1966)")
_MEAN_PRECIPITATION = (0, 75, "world-record 12-month rainfall: 26,470 mm (Cherrapunji, Aug 1860 - Jul 1861), i.e. 72.5 mm/day")
_SHORTWAVE = (0, 1420, "a daily mean cannot exceed the top-of-atmosphere irradiance at perihelion (1,361 W/m2 x 1.034 = 1,408 W/m2)")
_LONGWAVE = (0, 700, "a blackbody sky at the 60 degC air-temperature bound emits sigma*T^4 = 699 W/m2")
_SPECIFIC_HUMIDITY = (0, 0.14, "saturation specific humidity at 60 degC and 1013 hPa is 0.13 kg/kg")
_RELATIVE_HUMIDITY = (0, 105, "100 % is saturation; gridded products overshoot it slightly (supersaturation over ice, interpolation)")
_PET = (0, 50, "evaporating 50 mm takes 122 MJ/m2 (latent heat 2.45 MJ/kg), the whole top-of-atmosphere irradiance of a day (1,408 W/m2 x 86,400 s)")
_WIND_COMPONENT = (-115, 115, "world-record surface wind gust: 113.2 m/s (Barrow Island, 1996)")
_WIND_SPEED = (0, 115, "world-record surface wind gust: 113.2 m/s (Barrow Island, 1996)")
_SEASONALITY = (-2, 2, "delta*cos(phase): the first-harmonic amplitude of a non-negative series is at most twice its mean")
_NON_NEGATIVE = "non-negative; nature sets no upper bound"

_ALL = [
    # --- daily forcings --------------------------------------------------------------------
    _v(DYNAMIC, "precipitation", "mm/day", "daily total precipitation (rain + snow, water equivalent)", _DAILY_PRECIPITATION),
    _v(DYNAMIC, "temperature_max", "degC", "daily maximum 2 m air temperature", _AIR_TEMPERATURE),
    _v(DYNAMIC, "temperature_min", "degC", "daily minimum 2 m air temperature", _AIR_TEMPERATURE),
    _v(DYNAMIC, "temperature_mean", "degC", "daily mean 2 m air temperature", _AIR_TEMPERATURE),
    _v(DYNAMIC, "shortwave_radiation", "W/m2", "daily mean downward shortwave radiation at the surface", _SHORTWAVE),
    _v(DYNAMIC, "longwave_radiation", "W/m2", "daily mean downward longwave radiation at the surface", _LONGWAVE),
    _v(DYNAMIC, "vapor_pressure", "Pa", "daily mean near-surface water vapour pressure",
       (0, 20000, "saturation vapour pressure at the 60 degC air-temperature bound is 19.9 kPa (Tetens)")),
    _v(DYNAMIC, "specific_humidity", "kg/kg", "daily mean 2 m specific humidity", _SPECIFIC_HUMIDITY),
    _v(DYNAMIC, "relative_humidity", "%", "daily mean 2 m relative humidity", _RELATIVE_HUMIDITY),
    _v(DYNAMIC, "potential_evapotranspiration", "mm/day", "potential evapotranspiration (e.g. Hargreaves)", _PET),
    _v(DYNAMIC, "wind_u", "m/s", "daily mean 10 m eastward wind", _WIND_COMPONENT),
    _v(DYNAMIC, "wind_v", "m/s", "daily mean 10 m northward wind", _WIND_COMPONENT),
    _v(DYNAMIC, "wind_speed", "m/s", "daily mean 10 m wind speed", _WIND_SPEED),
    _v(DYNAMIC, "daylength", "s", "length of daylight", (0, 86400, "a day has 86,400 s")),
    _v(DYNAMIC, "snow_water_equivalent", "mm", "snow water equivalent of the snowpack",
       (0, 12000, "the deepest snow cover measured, 11.82 m (Mount Ibuki, Japan, 1927), holds less than 11,820 mm of water")),
    # --- static attributes: location and topography ------------------------------------------
    _v(STATIC, "latitude", "degree_north", "latitude of the site or basin outlet/centroid", (-90, 90, "degrees from the equator to a pole")),
    _v(STATIC, "longitude", "degree_east", "longitude of the site or basin outlet/centroid",
       (-180, 360, "degrees east, as -180..180 or 0..360")),
    _v(STATIC, "elevation", "m", "mean elevation above sea level",
       (-450, 8850, "from the lowest land, the Dead Sea shore (-430 m), to Mount Everest (8,849 m)")),
    _v(STATIC, "slope", "m/km", "mean terrain slope", (0, _INF, "a gradient: unbounded short of a vertical wall")),
    _v(STATIC, "aspect_cosine", "1", "cosine of the mean terrain aspect", (-1, 1, "a cosine lies in -1..1")),
    _v(STATIC, "area", "km2", "catchment or pixel area",
       (0, 7.5e6, "the largest drainage basin, the Amazon's, is about 7 million km2")),
    # --- soils and geology ---------------------------------------------------------------
    _v(STATIC, "sand_fraction", "1", "sand fraction of the soil (0-1)", _FRACTION),
    _v(STATIC, "silt_fraction", "1", "silt fraction of the soil (0-1)", _FRACTION),
    _v(STATIC, "clay_fraction", "1", "clay fraction of the soil (0-1)", _FRACTION),
    _v(STATIC, "soil_depth", "m", "depth to bedrock or soil depth", (0, _INF, "non-negative; depth to bedrock reaches hundreds of metres")),
    _v(STATIC, "soil_porosity", "1", "volumetric soil porosity (0-1)", _FRACTION),
    _v(STATIC, "soil_conductivity", "cm/h", "saturated hydraulic conductivity of the soil",
       (0, 360000, "clean gravel, the most conductive material, reaches 1 m/s = 360,000 cm/h (Freeze & Cherry 1979, table 2.2)")),
    _v(STATIC, "max_water_content", "m", "maximum water content of the soil column", (0, _INF, "non-negative; bounded by soil depth x porosity")),
    _v(STATIC, "bulk_density", "g/cm3", "soil bulk density",
       (0, 2.65, "bulk density = particle density x (1 - porosity), and mineral particles (quartz) are 2.65 g/cm3")),
    _v(STATIC, "field_capacity", "1", "volumetric water content at field capacity", _FRACTION),
    _v(STATIC, "geology_permeability", "log10(m2)", "subsurface permeability (GLHYMPS)",
       (-25, -5, "from unfractured crystalline rock (~1e-20 m2) to clean gravel (~1e-7 m2) (Freeze & Cherry 1979, table 2.2), with margin")),
    _v(STATIC, "geology_porosity", "1", "subsurface porosity (GLHYMPS)", _FRACTION),
    _v(STATIC, "gravel_fraction", "1", "gravel (coarse fragment) fraction of the soil (HWSD)", _FRACTION),
    _v(STATIC, "sand_fraction_soilgrids", "1", "sand fraction of the soil from SoilGrids", _FRACTION),
    _v(STATIC, "silt_fraction_soilgrids", "1", "silt fraction of the soil from SoilGrids", _FRACTION),
    _v(STATIC, "clay_fraction_soilgrids", "1", "clay fraction of the soil from SoilGrids", _FRACTION),
    _v(STATIC, "soil_organic_carbon_stock", "t/ha", "soil organic carbon stock (SoilGrids)", (0, _INF, _NON_NEGATIVE)),
    _v(STATIC, "soil_erosion", "t/ha/yr", "soil erosion rate", (0, _INF, _NON_NEGATIVE)),
    _v(STATIC, "mean_soil_moisture", "m3/m3", "long-term mean soil moisture (a static attribute, not the target)",
       (0, 1, "a volumetric fraction: water cannot fill more than the whole volume")),
    _v(STATIC, "glacier_fraction", "1", "glacier-covered fraction", _FRACTION),
    _v(STATIC, "permafrost_fraction", "1", "permafrost fraction", _FRACTION),
    _v(STATIC, "carbonate_rocks_fraction", "1", "fraction of carbonate sedimentary rocks (GLiM)", _FRACTION),
    # --- vegetation and land cover ---------------------------------------------------------
    _v(STATIC, "forest_fraction", "1", "forest cover fraction (most recent land-cover year)", _FRACTION),
    _v(STATIC, "forest_fraction_1992", "1", "forest cover fraction in 1992 (ESA CCI)", _FRACTION),
    _v(STATIC, "forest_fraction_2000", "1", "forest cover fraction in 2000", _FRACTION),
    _v(STATIC, "grassland_fraction_2000", "1", "grassland cover fraction in 2000", _FRACTION),
    _v(STATIC, "agriculture_fraction", "1", "agricultural land fraction (most recent land-cover year)", _FRACTION),
    _v(STATIC, "agriculture_fraction_2000", "1", "agricultural land fraction in 2000", _FRACTION),
    _v(STATIC, "urban_fraction", "1", "urban land fraction (most recent land-cover year)", _FRACTION),
    _v(STATIC, "urban_fraction_2000", "1", "urban land fraction in 2000", _FRACTION),
    _v(STATIC, "intact_forest_fraction", "1", "fraction of intact forest landscape", _FRACTION),
    _v(STATIC, "grassland_fraction", "1", "grassland cover fraction", _FRACTION),
    _v(STATIC, "ndvi", "1", "mean normalized difference vegetation index", (-1, 1, "(NIR - red) / (NIR + red) lies in -1..1 by definition")),
    _v(STATIC, "lai_max", "m2/m2", "maximum monthly mean leaf area index",
       (0, 20, "satellite LAI stops at 10 (MODIS MOD15 valid range 0-10); 20 leaves room for field-based products")),
    _v(STATIC, "lai_diff", "m2/m2", "difference between max and min monthly leaf area index",
       (0, 20, "a difference of two LAI values, each within 0..20")),
    _v(STATIC, "gvf_max", "1", "maximum monthly mean green vegetation fraction", _FRACTION),
    _v(STATIC, "gvf_diff", "1", "difference between max and min monthly green vegetation fraction", _FRACTION),
    # --- climate indices (derived from forcings, never from the target) ---------------------------
    _v(STATIC, "mean_precipitation", "mm/day", "long-term mean daily precipitation", _MEAN_PRECIPITATION),
    _v(STATIC, "mean_pet", "mm/day", "long-term mean daily potential evapotranspiration", _PET),
    _v(STATIC, "mean_temperature", "degC", "long-term mean daily air temperature", _AIR_TEMPERATURE),
    _v(STATIC, "mean_precipitation_mswep", "mm/day", "long-term mean daily precipitation from MSWEP", _MEAN_PRECIPITATION),
    _v(STATIC, "mean_pet_mswx", "mm/day", "long-term mean daily potential evapotranspiration from MSWX", _PET),
    _v(STATIC, "mean_temperature_mswx", "degC", "long-term mean daily air temperature from MSWX", _AIR_TEMPERATURE),
    _v(STATIC, "mean_temperature_max", "degC", "long-term mean daily maximum air temperature", _AIR_TEMPERATURE),
    _v(STATIC, "mean_temperature_min", "degC", "long-term mean daily minimum air temperature", _AIR_TEMPERATURE),
    _v(STATIC, "mean_shortwave_radiation", "W/m2", "long-term mean downward shortwave radiation", _SHORTWAVE),
    _v(STATIC, "mean_longwave_radiation", "W/m2", "long-term mean downward longwave radiation", _LONGWAVE),
    _v(STATIC, "mean_relative_humidity", "%", "long-term mean relative humidity", _RELATIVE_HUMIDITY),
    _v(STATIC, "mean_specific_humidity", "kg/kg", "long-term mean specific humidity", _SPECIFIC_HUMIDITY),
    _v(STATIC, "mean_wind_speed", "m/s", "long-term mean wind speed", _WIND_SPEED),
    _v(STATIC, "aridity", "1", "ratio of mean PET to mean precipitation", (0, _INF, "PET / P grows without bound as P goes to 0")),
    _v(STATIC, "precipitation_seasonality", "1", "seasonality and timing of precipitation", _SEASONALITY),
    _v(STATIC, "pet_seasonality", "1", "seasonality of potential evapotranspiration", _SEASONALITY),
    _v(STATIC, "snowfall_fraction", "1", "fraction of precipitation falling as snow", _FRACTION),
    _v(STATIC, "snow_fraction", "1", "fraction of precipitation falling on days below 0 degC", _FRACTION),
    _v(STATIC, "high_precipitation_frequency", "days/yr", "frequency of days with >= 5x mean precipitation", (0, 366, "days in a year")),
    _v(STATIC, "high_precipitation_duration", "days", "mean duration of high-precipitation events", (0, _INF, "a run length in days")),
    _v(STATIC, "low_precipitation_frequency", "days/yr", "frequency of dry days (< 1 mm/day)", (0, 366, "days in a year")),
    _v(STATIC, "low_precipitation_duration", "days", "mean duration of dry periods", (0, _INF, "a run length in days; dry spells last years")),
    # --- socio-economic ------------------------------------------------------------------
    _v(STATIC, "population_density", "1/km2", "population density", (0, _INF, _NON_NEGATIVE)),
    _v(STATIC, "gdp_density", "USD/km2", "gross domestic product per area (Kummu et al.)", (0, _INF, _NON_NEGATIVE)),
    # --- targets --------------------------------------------------------------------------
    _v(TARGET, "streamflow", "mm/day", "daily mean discharge divided by catchment area",
       (0, _INF, "non-negative; no area-independent upper bound (flood peaks per area of small catchments exceed any fixed depth)")),
    _v(TARGET, "soil_moisture", "m3/m3", "volumetric surface soil moisture",
       (0, 1, "a volumetric fraction: water cannot fill more than the whole volume")),
]

VARIABLES: dict[str, Variable] = {v.name: v for v in _ALL}


#: Dynamic variables that builders compute from others: CAMELS' temperature_mean is (max + min) / 2, so with two of
#: the three shown the third is known exactly. Whatever hides one of a family to test a model hides all of it.
DERIVED_DYNAMIC: dict[str, tuple[str, ...]] = {"temperature_mean": ("temperature_max", "temperature_min")}


def get_variable(name: str, argument: str = "variable") -> Variable:
    """The vocabulary entry for ``name``; an unknown name is a ``ValueError`` with suggestions."""
    try:
        return VARIABLES[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(VARIABLES), n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"{argument}: unknown variable {name!r}{hint} (known variables are listed in stefaland_hf.variables.VARIABLES)"
        ) from None


def validate_names(names: Sequence[str], argument: str, kinds: Iterable[str] | None = None) -> list[str]:
    """Check that ``names`` are unique canonical names of the allowed kinds; return them as a list."""
    names = list(names)
    kinds = set(kinds) if kinds is not None else None
    seen = set()
    for name in names:
        var = get_variable(name, argument)
        if kinds is not None and var.kind not in kinds:
            raise ValueError(f"{argument}: {name!r} is a {var.kind} variable, expected one of {sorted(kinds)}")
        if name in seen:
            raise ValueError(f"{argument}: variable {name!r} is listed twice")
        seen.add(name)
    return names


def align_variables(
    values: np.ndarray,
    source_names: Sequence[str],
    target_names: Sequence[str],
    argument: str = "values",
    ignore: Iterable[str] = (),
) -> np.ndarray:
    """Reorder the last axis of ``values`` from ``source_names`` to ``target_names``.

    Variables the source lacks become NaN, which the model treats as masked (the paper's mechanism
    for finetuning on a different forcing product). Names are matched exactly, never by position.
    Both lists must be canonical names. A source variable that is not among ``target_names`` is an
    error unless it is listed in ``ignore``: a column dropped because its name did not match would
    leave the target's variable all-NaN, and the model would answer with plausible numbers anyway.
    """
    values = np.asarray(values)
    source_names = validate_names(source_names, f"{argument} source names")
    if values.shape[-1] != len(source_names):
        raise ValueError(
            f"{argument}: last axis has {values.shape[-1]} columns but {len(source_names)} variable names were given"
        )
    validate_names(target_names, f"{argument} target names")
    ignored = set(validate_names(ignore, f"{argument} ignore"))
    dropped = [name for name in source_names if name not in target_names and name not in ignored]
    if dropped:
        raise ValueError(
            f"{argument}: source variable(s) {dropped} are not among the target variables {list(target_names)}; "
            f"pass ignore={dropped!r} to drop them on purpose"
        )
    index = {name: i for i, name in enumerate(source_names)}
    out = np.full(values.shape[:-1] + (len(target_names),), np.nan, dtype=np.float32)
    for j, name in enumerate(target_names):
        if name in index:
            out[..., j] = values[..., index[name]]
    return out
