"""The canonical variable vocabulary shared by every dataset and model.

Datasets map their columns into these names and units; the model keys its per-variable
embeddings by them, so a model pretrained on one forcing product can be finetuned on another.
This module is copied next to the modeling code by ``save_pretrained``, so it imports only the
standard library and numpy.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

DYNAMIC = "dynamic"
STATIC = "static"
TARGET = "target"


@dataclass(frozen=True)
class Variable:
    name: str
    unit: str
    kind: str
    description: str
    allow_negative: bool = False


def _v(kind: str, name: str, unit: str, description: str, allow_negative: bool = False) -> Variable:
    return Variable(name=name, unit=unit, kind=kind, description=description, allow_negative=allow_negative)


_ALL = [
    # --- daily forcings --------------------------------------------------------------------
    _v(DYNAMIC, "precipitation", "mm/day", "daily total precipitation (rain + snow, water equivalent)"),
    _v(DYNAMIC, "temperature_max", "degC", "daily maximum 2 m air temperature", True),
    _v(DYNAMIC, "temperature_min", "degC", "daily minimum 2 m air temperature", True),
    _v(DYNAMIC, "temperature_mean", "degC", "daily mean 2 m air temperature", True),
    _v(DYNAMIC, "shortwave_radiation", "W/m2", "daily mean downward shortwave radiation at the surface"),
    _v(DYNAMIC, "longwave_radiation", "W/m2", "daily mean downward longwave radiation at the surface"),
    _v(DYNAMIC, "vapor_pressure", "Pa", "daily mean near-surface water vapour pressure"),
    _v(DYNAMIC, "specific_humidity", "kg/kg", "daily mean 2 m specific humidity"),
    _v(DYNAMIC, "relative_humidity", "%", "daily mean 2 m relative humidity"),
    _v(DYNAMIC, "potential_evapotranspiration", "mm/day", "potential evapotranspiration (e.g. Hargreaves)"),
    _v(DYNAMIC, "wind_u", "m/s", "daily mean 10 m eastward wind", True),
    _v(DYNAMIC, "wind_v", "m/s", "daily mean 10 m northward wind", True),
    _v(DYNAMIC, "wind_speed", "m/s", "daily mean 10 m wind speed"),
    _v(DYNAMIC, "daylength", "s", "length of daylight"),
    _v(DYNAMIC, "snow_water_equivalent", "mm", "snow water equivalent of the snowpack"),
    # --- static attributes: location and topography ------------------------------------------
    _v(STATIC, "latitude", "degree_north", "latitude of the site or basin outlet/centroid", True),
    _v(STATIC, "longitude", "degree_east", "longitude of the site or basin outlet/centroid", True),
    _v(STATIC, "elevation", "m", "mean elevation above sea level", True),
    _v(STATIC, "slope", "m/km", "mean terrain slope"),
    _v(STATIC, "aspect_cosine", "1", "cosine of the mean terrain aspect", True),
    _v(STATIC, "area", "km2", "catchment or pixel area"),
    # --- soils and geology ---------------------------------------------------------------
    _v(STATIC, "sand_fraction", "1", "sand fraction of the soil (0-1)"),
    _v(STATIC, "silt_fraction", "1", "silt fraction of the soil (0-1)"),
    _v(STATIC, "clay_fraction", "1", "clay fraction of the soil (0-1)"),
    _v(STATIC, "soil_depth", "m", "depth to bedrock or soil depth"),
    _v(STATIC, "soil_porosity", "1", "volumetric soil porosity (0-1)"),
    _v(STATIC, "soil_conductivity", "cm/h", "saturated hydraulic conductivity of the soil"),
    _v(STATIC, "max_water_content", "m", "maximum water content of the soil column"),
    _v(STATIC, "bulk_density", "g/cm3", "soil bulk density"),
    _v(STATIC, "field_capacity", "1", "volumetric water content at field capacity"),
    _v(STATIC, "geology_permeability", "log10(m2)", "subsurface permeability (GLHYMPS)", True),
    _v(STATIC, "geology_porosity", "1", "subsurface porosity (GLHYMPS)"),
    _v(STATIC, "gravel_fraction", "1", "gravel (coarse fragment) fraction of the soil (HWSD)"),
    _v(STATIC, "sand_fraction_soilgrids", "1", "sand fraction of the soil from SoilGrids"),
    _v(STATIC, "silt_fraction_soilgrids", "1", "silt fraction of the soil from SoilGrids"),
    _v(STATIC, "clay_fraction_soilgrids", "1", "clay fraction of the soil from SoilGrids"),
    _v(STATIC, "soil_organic_carbon_stock", "t/ha", "soil organic carbon stock (SoilGrids)"),
    _v(STATIC, "soil_erosion", "t/ha/yr", "soil erosion rate"),
    _v(STATIC, "mean_soil_moisture", "m3/m3", "long-term mean soil moisture (a static attribute, not the target)"),
    _v(STATIC, "glacier_fraction", "1", "glacier-covered fraction"),
    _v(STATIC, "permafrost_fraction", "1", "permafrost fraction"),
    _v(STATIC, "carbonate_rocks_fraction", "1", "fraction of carbonate sedimentary rocks (GLiM)"),
    # --- vegetation and land cover ---------------------------------------------------------
    _v(STATIC, "forest_fraction", "1", "forest cover fraction (most recent land-cover year)"),
    _v(STATIC, "forest_fraction_1992", "1", "forest cover fraction in 1992 (ESA CCI)"),
    _v(STATIC, "forest_fraction_2000", "1", "forest cover fraction in 2000"),
    _v(STATIC, "grassland_fraction_2000", "1", "grassland cover fraction in 2000"),
    _v(STATIC, "agriculture_fraction", "1", "agricultural land fraction (most recent land-cover year)"),
    _v(STATIC, "agriculture_fraction_2000", "1", "agricultural land fraction in 2000"),
    _v(STATIC, "urban_fraction", "1", "urban land fraction (most recent land-cover year)"),
    _v(STATIC, "urban_fraction_2000", "1", "urban land fraction in 2000"),
    _v(STATIC, "intact_forest_fraction", "1", "fraction of intact forest landscape"),
    _v(STATIC, "grassland_fraction", "1", "grassland cover fraction"),
    _v(STATIC, "ndvi", "1", "mean normalized difference vegetation index", True),
    _v(STATIC, "lai_max", "m2/m2", "maximum monthly mean leaf area index"),
    _v(STATIC, "lai_diff", "m2/m2", "difference between max and min monthly leaf area index"),
    _v(STATIC, "gvf_max", "1", "maximum monthly mean green vegetation fraction"),
    _v(STATIC, "gvf_diff", "1", "difference between max and min monthly green vegetation fraction"),
    # --- climate indices (derived from forcings, never from the target) ---------------------------
    _v(STATIC, "mean_precipitation", "mm/day", "long-term mean daily precipitation"),
    _v(STATIC, "mean_pet", "mm/day", "long-term mean daily potential evapotranspiration"),
    _v(STATIC, "mean_temperature", "degC", "long-term mean daily air temperature", True),
    _v(STATIC, "mean_precipitation_mswep", "mm/day", "long-term mean daily precipitation from MSWEP"),
    _v(STATIC, "mean_pet_mswx", "mm/day", "long-term mean daily potential evapotranspiration from MSWX"),
    _v(STATIC, "mean_temperature_mswx", "degC", "long-term mean daily air temperature from MSWX", True),
    _v(STATIC, "mean_temperature_max", "degC", "long-term mean daily maximum air temperature", True),
    _v(STATIC, "mean_temperature_min", "degC", "long-term mean daily minimum air temperature", True),
    _v(STATIC, "mean_shortwave_radiation", "W/m2", "long-term mean downward shortwave radiation"),
    _v(STATIC, "mean_longwave_radiation", "W/m2", "long-term mean downward longwave radiation"),
    _v(STATIC, "mean_relative_humidity", "%", "long-term mean relative humidity"),
    _v(STATIC, "mean_specific_humidity", "kg/kg", "long-term mean specific humidity"),
    _v(STATIC, "mean_wind_speed", "m/s", "long-term mean wind speed"),
    _v(STATIC, "aridity", "1", "ratio of mean PET to mean precipitation"),
    _v(STATIC, "precipitation_seasonality", "1", "seasonality and timing of precipitation", True),
    _v(STATIC, "pet_seasonality", "1", "seasonality of potential evapotranspiration", True),
    _v(STATIC, "snowfall_fraction", "1", "fraction of precipitation falling as snow"),
    _v(STATIC, "snow_fraction", "1", "fraction of precipitation falling on days below 0 degC"),
    _v(STATIC, "high_precipitation_frequency", "days/yr", "frequency of days with >= 5x mean precipitation"),
    _v(STATIC, "high_precipitation_duration", "days", "mean duration of high-precipitation events"),
    _v(STATIC, "low_precipitation_frequency", "days/yr", "frequency of dry days (< 1 mm/day)"),
    _v(STATIC, "low_precipitation_duration", "days", "mean duration of dry periods"),
    # --- socio-economic ------------------------------------------------------------------
    _v(STATIC, "population_density", "1/km2", "population density"),
    _v(STATIC, "gdp_density", "USD/km2", "gross domestic product per area (Kummu et al.)"),
    # --- targets --------------------------------------------------------------------------
    _v(TARGET, "streamflow", "mm/day", "daily mean discharge divided by catchment area"),
    _v(TARGET, "soil_moisture", "m3/m3", "volumetric surface soil moisture"),
]

VARIABLES: dict[str, Variable] = {v.name: v for v in _ALL}


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


def align_variables(values: np.ndarray, source_names: Sequence[str], target_names: Sequence[str], argument: str = "values") -> np.ndarray:
    """Reorder the last axis of ``values`` from ``source_names`` to ``target_names``.

    Variables the source lacks become NaN, which the model treats as masked (the paper's mechanism
    for finetuning on a different forcing product). Names are matched exactly, never by position.
    """
    values = np.asarray(values)
    source_names = list(source_names)
    if values.shape[-1] != len(source_names):
        raise ValueError(
            f"{argument}: last axis has {values.shape[-1]} columns but {len(source_names)} variable names were given"
        )
    validate_names(target_names, f"{argument} target names")
    index = {name: i for i, name in enumerate(source_names)}
    out = np.full(values.shape[:-1] + (len(target_names),), np.nan, dtype=np.float32)
    for j, name in enumerate(target_names):
        if name in index:
            out[..., j] = values[..., index[name]]
    return out
