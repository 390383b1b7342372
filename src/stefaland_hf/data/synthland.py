"""SynthLand: the embedded default dataset (seeded virtual catchments with known truth).

SynthLand draws virtual sites on a CONUS-like box (28–50 °N, 124–70 °W), gives them correlated
static attributes, drives a stochastic weather generator with them, and runs the HBV-like model of
:mod:`stefaland_hf.data.hbv` with parameters that are smooth monotone functions of the attributes
plus site-level random effects. Streamflow, soil moisture and soil texture are therefore learnable
from attributes + forcings, and the noise-free run with the true parameters (``oracle``) is the best
prediction any model could make.

Everything is vectorized over sites (numpy ``[sites, days]``); the only Python loops are over days
where state is carried (occurrence Markov chain, temperature anomalies, HBV), over the ≤7 routing
lags, and over fixed blocks of :data:`SITE_BLOCK` sites (to bound memory for the ``large`` config).

Determinism
-----------
Same ``(n_sites, start, end, seed)`` → bit-identical arrays. Site attributes come from
``SeedSequence(seed, spawn_key=(0, i))`` (one stream per attribute), daily weather and noise of site
block ``b`` from ``SeedSequence(seed, spawn_key=(1, b))``. Only the drawn attributes are prefix-stable (the
first k sites' id, region, coordinates, topography, soil, geology and vegetation do not depend on ``n_sites``);
their weather, streamflow and the climate indices computed from that weather do, so a site id names the same
catchment only within one config.

Static attributes (canonical names/units of :mod:`stefaland_hf.variables`)
---------------------------------------------------------------------------
Spatially smooth latent fields ``f_*(lat, lon)`` (sums of 12 random Fourier modes, unit variance)
make nearby sites similar, so PUB (random sites) is easier than PUR (held-out regions).

- ``latitude`` U(28, 50), ``longitude`` U(−124, −70); ``region`` ``R1``..``R6`` from a 2×3 grid:
  south/north of 39 °N × west of 106 °W / 106–88 °W / east of 88 °W
  (R1–R3 south, west→east; R4–R6 north, west→east).
- ``elevation`` m: a western range (Gaussian ridge at 112 °W, 1700 m), an eastern range (80 °W,
  500 m), 350·f_elev, site noise; ≥ 0.
- ``slope`` m/km: ``exp(2.2 + 1.2·elev_km + 0.6·N)``, clipped to 0.5–400.
- ``aspect_cosine`` U(−1, 1); ``area`` km²: log-normal (median 300, σ_log 1.0), 5–10000.
- Precipitation climate (drives the weather generator and, through it, the climate indices): mean
  daily precipitation ``Pm = 0.8 + 2.6·σ((lon+98)/7) + 2.2·exp(−((lon+123)/3)²)·σ((lat−40)/2.5)
  + 0.6·elev_km + 0.4·f_prec + 0.2·N``, clipped to 0.3–9 mm/day; ``σ`` is the logistic function.
- ``forest_fraction`` = σ(1.6·(Pm − 2.2) − 0.08·(Tann − 12) + 0.5·f_veg + 0.4·N);
  ``ndvi`` = clip(0.12 + 0.55·forest + 0.08·tanh(Pm − 2) + 0.04·N, 0.05, 0.92).
- Soil texture: softmax of three logits (sand: 0.55·f_soil + 0.35·ln(2/Pm) + 0.2·z_slope + 0.35·N;
  silt: 0.25·N; clay: −0.5·f_soil + 0.25·(Pm − 2) − 0.2·z_slope + 0.35·N, with a −0.4 offset) →
  ``sand_fraction + silt_fraction + clay_fraction = 1``.
- ``soil_depth`` m: ``exp(−0.5·z_slope + 0.2·f_soil + 0.3·N)``, 0.2–3;
  ``soil_porosity`` (Cosby et al. 1984): ``0.505 − 0.142·sand − 0.037·clay + 0.015·N``;
  ``soil_conductivity`` cm/h (Cosby): ``2.54·10^(−0.6 + 1.26·sand − 0.64·clay)``;
  ``max_water_content`` m = soil_depth·soil_porosity.
- ``geology_permeability`` log10(m²): ``−14 + 1.1·f_geo + 1.5·(sand − 0.4) + 0.4·N``, −17…−10.
- Climate indices, computed honestly from the generated forcings over the whole period
  (CAMELS definitions; ``Tmean = (Tmax + Tmin)/2``): ``mean_precipitation``, ``mean_pet``,
  ``mean_temperature``, ``aridity`` (= mean_pet / mean_precipitation), ``precipitation_seasonality``
  (Woods 2009: δP·cos(φP − φT) from first-harmonic fits), ``snow_fraction`` (share of precipitation
  on days with Tmean < 0), ``high_precipitation_frequency`` (days/yr with P ≥ 5·mean) and
  ``_duration`` (mean run length), ``low_precipitation_frequency`` (days/yr with P < 1 mm) and
  ``_duration``.

Weather generator (per site; ``doy`` day of year, ``ω = 2π/365.25``)
--------------------------------------------------------------------
- Occurrence: two-state Markov chain with seasonal wet fraction
  ``π_t = π·(1 + 0.5·aP·cos(ω(doy − peak)))``, ``π = clip(0.12 + 0.09·Pm, 0.1, 0.65)`` and lag-1
  persistence r = 0.35: ``p01 = π_t(1 − r)``, ``p11 = p01 + r``. The seasonal amplitude
  ``aP`` is large for the winter-wet west coast (peak mid-January) and moderate for the summer-wet
  interior (peak early July).
- Amounts: gamma with shape 0.75 and mean ``Pm·(1 + aP·cos(ω(doy − peak))) / π_t`` on wet days.
- Temperature: ``Tmean = Tann − A·cos(ω(doy − 20)) + anomaly``, ``Tann = 24 − 0.75·(lat − 28)
  − 5.5·elev_km + 0.5·f_temp + 0.7·N``, amplitude ``A`` growing with latitude and continentality (damped on the
  west coast), AR(1) anomalies (φ = 0.7, σ = 2 + 0.08·(lat − 28) °C). Diurnal range
  ``DTR = clip(15 − 1.3·Pm, 6, 18)``, ×0.6 on wet days; ``Tmax/Tmin = Tmean ± DTR/2``.
- ``shortwave_radiation`` W/m²: clear-sky ``(0.75 + 2e-5·z)·Ra`` (FAO-56) times a cloud factor
  (dry days 0.78–0.98, wet days 0.3–0.65), MJ m⁻² d⁻¹ → W/m² (×11.574).
- ``vapor_pressure`` Pa: ``e_s(Tmin)·h`` with ``h = clip(0.55 + 0.06·Pm + 0.15·wet + 0.05·N, 0.3, 1)``.
- ``potential_evapotranspiration``: Hargreaves (see :mod:`.hbv`).

HBV parameters from attributes
------------------------------
``σ`` is the logistic function; ``u ~ N(0, 0.35²)`` is a per-site, per-parameter random effect
(``FC`` uses a multiplicative ``exp(u)``, σ = 0.15). Standardized attributes use fixed reference
values, so a site's parameters depend only on its own attributes:
``z_slope = ln(slope/20)``, ``z_elev = (elev − 800)/600``, ``z_forest = (forest − 0.5)/0.25``,
``z_depth = ln(soil_depth)/0.5``, ``z_perm = (permeability + 14)/1.2``, ``z_sand = (sand − 0.4)/0.15``,
``z_clay = (clay − 0.2)/0.1``, ``z_area = ln(area/300)``.

=========  ==================================================================
TT         −2.5 + 5·σ(−0.6 z_elev + 0.4 z_forest + u)
CFMAX      0.5 + 7.5·σ(0.6 z_elev − 0.8 z_forest + u)      (canopy shades the pack)
SFCF       0.4 + 0.6·σ(1 + 0.5 z_forest − 0.4 z_slope + u) (wind loss on steep, open terrain)
CFR        0.1·σ(0.5 z_elev + u)
CWH        0.2·σ(0.5 z_forest + u)
FC         500·soil_depth·soil_porosity·exp(u)             (mm, i.e. half the pore volume)
LP         0.3 + 0.7·σ(0.6 z_clay + 0.5 z_forest + u)
BETA       1 + 5·σ(−0.9 z_slope + 0.5 z_depth + u)
PERC       6·σ(0.9 z_perm + 0.6 z_sand − 0.5 + u)
UZL        100·σ(0.7 z_depth − 0.6 z_slope − 0.5 + u)
K0         0.05 + 0.6·σ(1.2 z_slope + u)
K1         0.01 + 0.3·σ(0.6 z_slope − 0.5 z_depth − 0.5 + u)
K2         0.002 + 0.1·σ(0.6 z_perm + 0.4 z_sand − 1 + u)
MAXBAS     1 + 6·σ(0.9 z_area − 0.5 z_slope − 0.5 + u)
=========  ==================================================================

All are clipped to :data:`stefaland_hf.data.hbv.HBV_PARAMETER_RANGES`.

Targets and oracle
------------------
- ``streamflow`` mm/day: the routed HBV discharge × mean-one log-normal noise (σ_log = 0.1), with
  gauge gaps: random outages (on average one every two years, geometric length, mean 15 days) and,
  for 15 % of sites, one long outage of 20–50 % of the record.
- ``soil_moisture`` m³/m³: ``θ = θ_res + (porosity − θ_res)·SM/FC`` with ``θ_res = 0.02 + 0.15·clay``,
  plus N(0, 0.02²) retrieval noise (clipped to [0.01, porosity]); observed only on satellite
  overpass days (every 2 or 3 days at random, ≈ 40 % of days), NaN otherwise. (Frozen-ground
  flags are deliberately not applied, so every site keeps 33–50 % observed days.)
- ``oracle`` [T, 2]: the same two variables from the true-parameter run without noise or gaps
  (never NaN).

Dataset layout
--------------
The builder writes one split, ``"train"``, holding every site (``"all"`` is a reserved keyword in
``datasets``, which maps ``as_dataset(split="all")`` to the union of splits, i.e. the same sites).
Temporal / PUB / PUR splits are done elsewhere, from ``site_id``, ``region`` and ``dates``. Rows use the schema of
:func:`stefaland_hf.data.schema.site_features` plus ``oracle``. ``DatasetInfo.description`` is JSON
with the variable names and units, the config and the generator version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..variables import VARIABLES, validate_names
from .hbv import HBV_PARAMETER_RANGES, HBV_PARAMETERS, day_of_year, extraterrestrial_radiation, hargreaves_pet, run_hbv

# 1.1.0: rows carry the schema's ``gauged`` column (every SynthLand site is gauged); values as in 1.0.0.
# It is the builder version too, so caches written without the column are not served.
GENERATOR_VERSION = "1.1.0"
SITE_BLOCK = 256  # sites simulated together; part of the seed contract (do not change casually)

DYNAMIC_VARIABLES: list[str] = [
    "precipitation",
    "temperature_max",
    "temperature_min",
    "shortwave_radiation",
    "vapor_pressure",
    "potential_evapotranspiration",
]
STATIC_VARIABLES: list[str] = [
    "latitude",
    "longitude",
    "elevation",
    "slope",
    "aspect_cosine",
    "area",
    "sand_fraction",
    "silt_fraction",
    "clay_fraction",
    "soil_depth",
    "soil_porosity",
    "soil_conductivity",
    "max_water_content",
    "geology_permeability",
    "forest_fraction",
    "ndvi",
    "mean_precipitation",
    "mean_pet",
    "mean_temperature",
    "aridity",
    "precipitation_seasonality",
    "snow_fraction",
    "high_precipitation_frequency",
    "high_precipitation_duration",
    "low_precipitation_frequency",
    "low_precipitation_duration",
]
TARGET_VARIABLES: list[str] = ["streamflow", "soil_moisture"]
CLIMATE_INDICES: list[str] = STATIC_VARIABLES[STATIC_VARIABLES.index("mean_precipitation") :]

validate_names(DYNAMIC_VARIABLES, "SynthLand dynamic variables", kinds=["dynamic"])
validate_names(STATIC_VARIABLES, "SynthLand static variables", kinds=["static"])
validate_names(TARGET_VARIABLES, "SynthLand target variables", kinds=["target"])

LAT_RANGE = (28.0, 50.0)
LON_RANGE = (-124.0, -70.0)
REGION_LAT_EDGES = (39.0,)
REGION_LON_EDGES = (-106.0, -88.0)
OMEGA = 2.0 * np.pi / 365.25


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _stream(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=tuple(key))))


def region_labels(latitude: np.ndarray, longitude: np.ndarray) -> np.ndarray:
    """``R1``..``R6`` from the 2×3 lat/lon grid (R1–R3 south of 39 °N, west→east; R4–R6 north)."""
    lat_band = np.digitize(latitude, REGION_LAT_EDGES)
    lon_band = np.digitize(longitude, REGION_LON_EDGES)
    idx = 1 + lon_band + (len(REGION_LON_EDGES) + 1) * lat_band
    return np.array([f"R{int(i)}" for i in idx], dtype=object)


def _smooth_field(rng: np.random.Generator, lat: np.ndarray, lon: np.ndarray, n_modes: int = 12) -> np.ndarray:
    """Unit-variance spatially smooth random field (random Fourier modes, length scales ~5–20°)."""
    wavelength = rng.uniform(8.0, 35.0, n_modes)
    angle = rng.uniform(0.0, 2.0 * np.pi, n_modes)
    phase = rng.uniform(0.0, 2.0 * np.pi, n_modes)
    k = 2.0 * np.pi / wavelength
    arg = np.outer(lon, k * np.cos(angle)) + np.outer(lat, k * np.sin(angle)) + phase
    return np.sqrt(2.0 / n_modes) * np.cos(arg).sum(axis=1)


def generate_site_attributes(n_sites: int, seed: int) -> dict[str, np.ndarray]:
    """Static attributes (not the climate indices) and weather-generator settings, all [n_sites]."""
    if n_sites < 1:
        raise ValueError(f"n_sites must be >= 1, got {n_sites}")
    keys = iter(range(1000))

    def rng():
        return _stream(seed, 0, next(keys))

    def normal():
        return rng().standard_normal(n_sites)

    fields_rng = rng()
    lat = rng().uniform(*LAT_RANGE, n_sites)
    lon = rng().uniform(*LON_RANGE, n_sites)
    f = {name: _smooth_field(fields_rng, lat, lon) for name in ("elev", "prec", "veg", "soil", "geo", "temp")}

    elev = (
        1700.0 * np.exp(-(((lon + 112.0) / 7.0) ** 2))
        + 500.0 * np.exp(-(((lon + 80.0) / 3.5) ** 2))
        + 250.0
        + 350.0 * f["elev"]
        + 150.0 * normal()
    )
    elev = np.maximum(elev, 0.0)
    elev_km = elev / 1000.0
    slope = np.clip(np.exp(2.2 + 1.2 * elev_km + 0.6 * normal()), 0.5, 400.0)
    aspect = rng().uniform(-1.0, 1.0, n_sites)
    area = np.clip(np.exp(np.log(300.0) + 1.0 * normal()), 5.0, 10000.0)
    z_slope = np.log(slope / 20.0)

    pm = (
        0.8
        + 2.6 * _sig((lon + 98.0) / 7.0)
        + 2.2 * np.exp(-(((lon + 123.0) / 3.0) ** 2)) * _sig((lat - 40.0) / 2.5)
        + 0.6 * elev_km
        + 0.4 * f["prec"]
        + 0.2 * normal()
    )
    pm = np.clip(pm, 0.3, 9.0)
    tann = 24.0 - 0.75 * (lat - 28.0) - 5.5 * elev_km + 0.5 * f["temp"] + 0.7 * normal()

    forest = _sig(1.6 * (pm - 2.2) - 0.08 * (tann - 12.0) + 0.5 * f["veg"] + 0.4 * normal())
    ndvi = np.clip(0.12 + 0.55 * forest + 0.08 * np.tanh(pm - 2.0) + 0.04 * normal(), 0.05, 0.92)

    logits = np.stack(
        [
            0.55 * f["soil"] + 0.35 * np.log(2.0 / pm) + 0.2 * z_slope + 0.35 * normal(),
            0.25 * normal(),
            -0.4 - 0.5 * f["soil"] + 0.25 * (pm - 2.0) - 0.2 * z_slope + 0.35 * normal(),
        ],
        axis=1,
    )
    tex = np.exp(logits - logits.max(axis=1, keepdims=True))
    tex /= tex.sum(axis=1, keepdims=True)
    sand, silt, clay = tex[:, 0], tex[:, 1], tex[:, 2]

    depth = np.clip(np.exp(-0.5 * z_slope + 0.2 * f["soil"] + 0.3 * normal()), 0.2, 3.0)
    porosity = np.clip(0.505 - 0.142 * sand - 0.037 * clay + 0.015 * normal(), 0.3, 0.6)
    conductivity = 2.54 * 10.0 ** (-0.6 + 1.26 * sand - 0.64 * clay)
    perm = np.clip(-14.0 + 1.1 * f["geo"] + 1.5 * (sand - 0.4) + 0.4 * normal(), -17.0, -10.0)

    # weather-generator settings
    west = _sig(-(lon + 113.0) / 3.0)
    a_p = np.clip(0.55 * west + 0.35 * np.exp(-(((lon + 100.0) / 8.0) ** 2)) * (1 - west) + 0.05 * normal(), 0.0, 0.85)
    peak = np.where(west > 0.5, 15.0, 185.0) + 15.0 * normal()
    continental = np.exp(-(((lon + 97.0) / 15.0) ** 2))
    amp = (4.0 + 0.45 * (lat - 28.0) + 4.0 * continental) * (1.0 - 0.5 * _sig(-(lon + 119.0) / 2.0))
    return dict(
        latitude=lat,
        longitude=lon,
        elevation=elev,
        slope=slope,
        aspect_cosine=aspect,
        area=area,
        sand_fraction=sand,
        silt_fraction=silt,
        clay_fraction=clay,
        soil_depth=depth,
        soil_porosity=porosity,
        soil_conductivity=conductivity,
        max_water_content=depth * porosity,
        geology_permeability=perm,
        forest_fraction=forest,
        ndvi=ndvi,
        # generator settings (not written as attributes)
        _pm=pm,
        _tann=tann,
        _amp=amp,
        _ap=a_p,
        _peak=peak,
        _param_noise=rng().standard_normal((n_sites, len(HBV_PARAMETERS))),
    )


def hbv_parameters(attrs: dict[str, np.ndarray], random_effects: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """True HBV parameters from attributes (table in the module docstring).

    ``random_effects`` [S, 14] standard normals (column order :data:`HBV_PARAMETERS`); ``None`` gives
    the attribute-only part (what a perfect attribute→parameter regression could recover).
    """
    n = len(attrs["slope"])
    u = np.zeros((n, len(HBV_PARAMETERS))) if random_effects is None else np.asarray(random_effects, dtype=np.float64)
    re = {name: 0.35 * u[:, i] for i, name in enumerate(HBV_PARAMETERS)}
    z_slope = np.log(attrs["slope"] / 20.0)
    z_elev = (attrs["elevation"] - 800.0) / 600.0
    z_forest = (attrs["forest_fraction"] - 0.5) / 0.25
    z_depth = np.log(attrs["soil_depth"]) / 0.5
    z_perm = (attrs["geology_permeability"] + 14.0) / 1.2
    z_sand = (attrs["sand_fraction"] - 0.4) / 0.15
    z_clay = (attrs["clay_fraction"] - 0.2) / 0.1
    z_area = np.log(attrs["area"] / 300.0)
    p = {
        "TT": -2.5 + 5.0 * _sig(-0.6 * z_elev + 0.4 * z_forest + re["TT"]),
        "CFMAX": 0.5 + 7.5 * _sig(0.6 * z_elev - 0.8 * z_forest + re["CFMAX"]),
        "SFCF": 0.4 + 0.6 * _sig(1.0 + 0.5 * z_forest - 0.4 * z_slope + re["SFCF"]),
        "CFR": 0.1 * _sig(0.5 * z_elev + re["CFR"]),
        "CWH": 0.2 * _sig(0.5 * z_forest + re["CWH"]),
        "FC": 500.0 * attrs["soil_depth"] * attrs["soil_porosity"] * np.exp(0.15 / 0.35 * re["FC"]),
        "LP": 0.3 + 0.7 * _sig(0.6 * z_clay + 0.5 * z_forest + re["LP"]),
        "BETA": 1.0 + 5.0 * _sig(-0.9 * z_slope + 0.5 * z_depth + re["BETA"]),
        "PERC": 6.0 * _sig(0.9 * z_perm + 0.6 * z_sand - 0.5 + re["PERC"]),
        "UZL": 100.0 * _sig(0.7 * z_depth - 0.6 * z_slope - 0.5 + re["UZL"]),
        "K0": 0.05 + 0.6 * _sig(1.2 * z_slope + re["K0"]),
        "K1": 0.01 + 0.3 * _sig(0.6 * z_slope - 0.5 * z_depth - 0.5 + re["K1"]),
        "K2": 0.002 + 0.1 * _sig(0.6 * z_perm + 0.4 * z_sand - 1.0 + re["K2"]),
        "MAXBAS": 1.0 + 6.0 * _sig(0.9 * z_area - 0.5 * z_slope - 0.5 + re["MAXBAS"]),
    }
    return {k: np.clip(v, *HBV_PARAMETER_RANGES[k]) for k, v in p.items()}


def _dates(start: str, end: str) -> np.ndarray:
    d0, d1 = np.datetime64(start, "D"), np.datetime64(end, "D")
    if d1 < d0:
        raise ValueError(f"end {end!r} is before start {start!r}")
    return np.arange(d0, d1 + np.timedelta64(1, "D"), dtype="datetime64[D]")


def _weather(a: dict[str, np.ndarray], doy: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Daily forcings [S, T] for one block of sites."""
    n_s, n_t = len(a["latitude"]), len(doy)
    pm, a_p, peak = a["_pm"][:, None], a["_ap"][:, None], a["_peak"][:, None]
    season = np.cos(OMEGA * (doy[None, :] - peak))
    pi0 = np.clip(0.12 + 0.09 * pm, 0.1, 0.65)
    pi_t = np.clip(pi0 * (1.0 + 0.5 * a_p * season), 0.03, 0.9)
    r = 0.35
    p01 = pi_t * (1.0 - r)
    p11 = p01 + r
    u = rng.random((n_s, n_t))
    wet = np.empty((n_s, n_t), dtype=bool)
    state = u[:, 0] < pi_t[:, 0]
    wet[:, 0] = state
    for t in range(1, n_t):  # Markov chain: loop over days only
        state = u[:, t] < np.where(state, p11[:, t], p01[:, t])
        wet[:, t] = state
    shape = 0.75
    mean_amount = pm * (1.0 + a_p * season) / pi_t
    precip = np.where(wet, rng.standard_gamma(shape, (n_s, n_t)) * (mean_amount / shape), 0.0)

    elev_m = a["elevation"][:, None]
    phi = 0.7
    sigma = (2.0 + 0.08 * (a["latitude"] - 28.0))[:, None]
    eps = rng.standard_normal((n_s, n_t)) * (np.sqrt(1.0 - phi**2) * sigma)
    anom = np.empty((n_s, n_t))
    anom[:, 0] = eps[:, 0] / np.sqrt(1.0 - phi**2)
    for t in range(1, n_t):  # AR(1) anomalies: loop over days only
        anom[:, t] = phi * anom[:, t - 1] + eps[:, t]
    tmean = a["_tann"][:, None] - a["_amp"][:, None] * np.cos(OMEGA * (doy[None, :] - 20.0)) + anom
    dtr = np.clip(15.0 - 1.3 * pm, 6.0, 18.0) * np.where(wet, 0.6, 1.0)
    dtr = dtr * np.exp(0.1 * rng.standard_normal((n_s, n_t)))
    tmax, tmin = tmean + dtr / 2.0, tmean - dtr / 2.0

    ra = extraterrestrial_radiation(a["latitude"], doy)
    rso = (0.75 + 2e-5 * elev_m) * ra
    cloud = np.where(wet, rng.uniform(0.3, 0.65, (n_s, n_t)), rng.uniform(0.78, 0.98, (n_s, n_t)))
    sw = rso * cloud * (1e6 / 86400.0)

    humid = np.clip(0.55 + 0.06 * pm + 0.15 * wet + 0.05 * rng.standard_normal((n_s, n_t)), 0.3, 1.0)
    vp = 610.8 * np.exp(17.27 * tmin / (tmin + 237.3)) * humid
    pet = hargreaves_pet(tmax, tmin, ra)
    return dict(
        precipitation=precip,
        temperature_max=tmax,
        temperature_min=tmin,
        shortwave_radiation=sw,
        vapor_pressure=vp,
        potential_evapotranspiration=pet,
    )


def _run_lengths(mask: np.ndarray) -> np.ndarray:
    """Mean length of runs of True per row (0 where there are none)."""
    starts = mask[:, 0].astype(np.int64) + (mask[:, 1:] & ~mask[:, :-1]).sum(axis=1)
    total = mask.sum(axis=1)
    return np.where(starts > 0, total / np.maximum(starts, 1), 0.0)


def climate_indices(precipitation: np.ndarray, tmax: np.ndarray, tmin: np.ndarray, pet: np.ndarray, doy: np.ndarray) -> dict[str, np.ndarray]:
    """CAMELS-style climate indices [S] from [S, T] forcings (names in :data:`CLIMATE_INDICES`)."""
    p = precipitation
    tmean = 0.5 * (tmax + tmin)
    n_t = p.shape[1]
    years = n_t / 365.25
    mp = p.mean(axis=1)
    basis = np.stack([np.cos(OMEGA * doy), np.sin(OMEGA * doy)], axis=1) * (2.0 / n_t)
    hp, ht = p @ basis, tmean @ basis
    delta_p = np.hypot(hp[:, 0], hp[:, 1]) / np.maximum(mp, 1e-9)
    phase_p, phase_t = np.arctan2(hp[:, 1], hp[:, 0]), np.arctan2(ht[:, 1], ht[:, 0])
    high = p >= 5.0 * mp[:, None]
    low = p < 1.0
    return {
        "mean_precipitation": mp,
        "mean_pet": pet.mean(axis=1),
        "mean_temperature": tmean.mean(axis=1),
        "aridity": pet.mean(axis=1) / np.maximum(mp, 1e-9),
        "precipitation_seasonality": delta_p * np.cos(phase_p - phase_t),
        "snow_fraction": (p * (tmean < 0.0)).sum(axis=1) / np.maximum(p.sum(axis=1), 1e-9),
        "high_precipitation_frequency": high.sum(axis=1) / years,
        "high_precipitation_duration": _run_lengths(high),
        "low_precipitation_frequency": low.sum(axis=1) / years,
        "low_precipitation_duration": _run_lengths(low),
    }


def _gauge_gaps(rng: np.random.Generator, n_s: int, n_t: int) -> np.ndarray:
    """Boolean [S, T] mask of missing streamflow (random outages + long outages at 15 % of sites)."""
    delta = np.zeros((n_s, n_t + 1), dtype=np.int64)
    max_events = max(1, int(np.ceil(n_t / 365.25 * 0.5 * 3 + 5)))
    n_events = np.minimum(rng.poisson(n_t / 365.25 * 0.5, n_s), max_events)
    starts = rng.integers(0, n_t, (n_s, max_events))
    lengths = rng.geometric(1.0 / 15.0, (n_s, max_events))
    active = np.arange(max_events)[None, :] < n_events[:, None]
    long_site = rng.random(n_s) < 0.15
    long_len = (rng.uniform(0.2, 0.5, n_s) * n_t).astype(np.int64)
    long_start = (rng.random(n_s) * (n_t - long_len + 1)).astype(np.int64)
    rows = np.repeat(np.arange(n_s), max_events)
    s, e = starts.ravel(), np.minimum(starts + lengths, n_t).ravel()
    act = active.ravel()
    np.add.at(delta, (rows[act], s[act]), 1)
    np.add.at(delta, (rows[act], e[act]), -1)
    ls = np.flatnonzero(long_site)
    np.add.at(delta, (ls, long_start[ls]), 1)
    np.add.at(delta, (ls, np.minimum(long_start[ls] + long_len[ls], n_t)), -1)
    return np.cumsum(delta[:, :n_t], axis=1) > 0


def _overpass_days(rng: np.random.Generator, n_s: int, n_t: int) -> np.ndarray:
    """Boolean [S, T]: satellite overpass every 2 or 3 days (random), random start offset per site."""
    n_steps = n_t // 2 + 2
    steps = rng.choice(np.array([2, 3]), (n_s, n_steps))
    offset = rng.integers(0, 3, n_s)
    pos = offset[:, None] + np.concatenate([np.zeros((n_s, 1), dtype=np.int64), np.cumsum(steps, axis=1)[:, :-1]], axis=1)
    obs = np.zeros((n_s, n_t), dtype=bool)
    rows = np.repeat(np.arange(n_s), n_steps).reshape(n_s, n_steps)
    keep = pos < n_t
    obs[rows[keep], pos[keep]] = True
    return obs


def _simulate_block(a: dict[str, np.ndarray], dates: np.ndarray, rng: np.random.Generator, diagnostics: bool):
    doy = day_of_year(dates)
    w = _weather(a, doy, rng)
    params = hbv_parameters(a, a["_param_noise"])
    tmean = 0.5 * (w["temperature_max"] + w["temperature_min"])
    sim = run_hbv(w["precipitation"], tmean, w["potential_evapotranspiration"], params, return_states=diagnostics)
    n_s, n_t = w["precipitation"].shape

    q_true = sim["streamflow"]
    theta_res = (0.02 + 0.15 * a["clay_fraction"])[:, None]
    por = a["soil_porosity"][:, None]
    theta_true = theta_res + (por - theta_res) * sim["soil_storage"] / params["FC"][:, None]

    q_obs = q_true * np.exp(0.1 * rng.standard_normal((n_s, n_t)) - 0.5 * 0.1**2)
    q_obs[_gauge_gaps(rng, n_s, n_t)] = np.nan
    theta_obs = np.clip(theta_true + 0.02 * rng.standard_normal((n_s, n_t)), 0.01, por)
    observed = _overpass_days(rng, n_s, n_t)
    theta_obs = np.where(observed, theta_obs, np.nan)

    ci = climate_indices(
        w["precipitation"], w["temperature_max"], w["temperature_min"], w["potential_evapotranspiration"], doy
    )
    static_values = {**{k: v for k, v in a.items() if not k.startswith("_")}, **ci}
    out = {
        "dynamic": np.stack([w[v] for v in DYNAMIC_VARIABLES], axis=-1).astype(np.float32),
        "static": np.stack([static_values[v] for v in STATIC_VARIABLES], axis=-1).astype(np.float32),
        "targets": np.stack([q_obs, theta_obs], axis=-1).astype(np.float32),
        "oracle": np.stack([q_true, theta_true], axis=-1).astype(np.float32),
        "hbv_parameters": np.stack([params[p] for p in HBV_PARAMETERS], axis=-1).astype(np.float32),
    }
    if diagnostics:
        out["diagnostics"] = {**sim, "temperature_mean": tmean, "overpass": observed, **params}
    return out


def iter_synthland(
    n_sites: int = 16,
    start: str = "2000-01-01",
    end: str = "2002-12-31",
    seed: int = 0,
    diagnostics: bool = False,
) -> Iterator[dict]:
    """Yield SynthLand in blocks of at most :data:`SITE_BLOCK` sites (bounded memory).

    Each block is a dict like :func:`generate_synthland`'s (``dates`` and the variable lists repeat);
    ``diagnostics=True`` adds a ``diagnostics`` dict (HBV states/fluxes [S, T] float64 and the true
    parameters) for tests and analysis.
    """
    n_sites = int(n_sites)
    attrs = generate_site_attributes(n_sites, seed)
    dates = _dates(start, end)
    regions = region_labels(attrs["latitude"], attrs["longitude"])
    for b, lo in enumerate(range(0, n_sites, SITE_BLOCK)):
        hi = min(lo + SITE_BLOCK, n_sites)
        block = {k: v[lo:hi] for k, v in attrs.items()}
        out = _simulate_block(block, dates, _stream(seed, 1, b), diagnostics)
        out.update(
            site_id=np.array([f"SL{i:05d}" for i in range(lo, hi)], dtype=object),
            region=regions[lo:hi],
            latitude=attrs["latitude"][lo:hi].astype(np.float32),
            longitude=attrs["longitude"][lo:hi].astype(np.float32),
            dates=dates,
            dynamic_variables=list(DYNAMIC_VARIABLES),
            static_variables=list(STATIC_VARIABLES),
            target_variables=list(TARGET_VARIABLES),
            parameter_names=list(HBV_PARAMETERS),
        )
        yield out


def generate_synthland(
    n_sites: int = 16, start: str = "2000-01-01", end: str = "2002-12-31", seed: int = 0, diagnostics: bool = False
) -> dict:
    """Generate the whole SynthLand dataset in memory.

    Returns a dict of numpy arrays: ``site_id`` [S] (str), ``region`` [S] (str), ``latitude``,
    ``longitude`` [S] float32, ``dates`` [T] datetime64[D], ``dynamic`` [S, T, F], ``static`` [S, C],
    ``targets`` [S, T, 2] (NaN = unobserved), ``oracle`` [S, T, 2], ``hbv_parameters`` [S, 14]
    (all float32), and the name lists ``dynamic_variables``, ``static_variables``,
    ``target_variables``, ``parameter_names``. ``end`` is inclusive.
    """
    blocks = list(iter_synthland(n_sites, start, end, seed, diagnostics))
    out = dict(blocks[0])
    for key in ("site_id", "region", "latitude", "longitude", "dynamic", "static", "targets", "oracle", "hbv_parameters"):
        out[key] = np.concatenate([b[key] for b in blocks], axis=0)
    if diagnostics:
        out["diagnostics"] = {
            k: np.concatenate([b["diagnostics"][k] for b in blocks], axis=0) for k in blocks[0]["diagnostics"]
        }
    return out


def variable_info() -> dict:
    """Names, units and descriptions of the variables SynthLand writes (goes into the description)."""

    def entries(names):
        return [{"name": n, "unit": VARIABLES[n].unit, "description": VARIABLES[n].description} for n in names]

    return {
        "dynamic_variables": entries(DYNAMIC_VARIABLES),
        "static_variables": entries(STATIC_VARIABLES),
        "target_variables": entries(TARGET_VARIABLES),
    }


# --------------------------------------------------------------------------------------------
# datasets builder
# --------------------------------------------------------------------------------------------
import datasets  # noqa: E402
import pyarrow as pa  # noqa: E402

from .schema import site_features  # noqa: E402

SPLIT = "train"  # ``"all"`` is reserved by datasets; ``as_dataset(split="all")`` returns this split


@dataclass
class SynthLandConfig(datasets.BuilderConfig):
    """SynthLand size and seed (``end`` inclusive); field defaults are those of the ``default`` config."""

    n_sites: int = 300
    start: str = "1995-01-01"
    end: str = "2009-12-31"
    seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        if self.version is None or str(self.version) == "0.0.0":
            self.version = datasets.Version(GENERATOR_VERSION)


def _list_array(values: pa.Array, n_rows: int, row_len: int) -> pa.Array:
    offsets = pa.array(np.arange(n_rows + 1, dtype=np.int64) * row_len, type=pa.int32())
    return pa.ListArray.from_arrays(offsets, values)


def _array2d(values: np.ndarray, ext_type) -> pa.Array:
    s, t, k = values.shape
    flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).ravel())
    inner = _list_array(flat, s * t, k)
    outer = _list_array(inner, s, t)
    return pa.ExtensionArray.from_storage(ext_type, outer)


def block_to_table(block: dict, features: datasets.Features) -> pa.Table:
    """Arrow table (one row per site) for a block from :func:`iter_synthland`."""
    schema = features.arrow_schema
    s, t = block["dynamic"].shape[:2]

    def names(lst):
        return _list_array(pa.array(list(lst) * s, type=pa.string()), s, len(lst))

    cols = {
        "site_id": pa.array(list(block["site_id"]), type=pa.string()),
        "region": pa.array(list(block["region"]), type=pa.string()),
        "latitude": pa.array(block["latitude"], type=pa.float32()),
        "longitude": pa.array(block["longitude"], type=pa.float32()),
        "dates": _list_array(pa.array(np.tile(block["dates"], s), type=pa.date32()), s, t),
        "dynamic": _array2d(block["dynamic"], schema.field("dynamic").type),
        "static": pa.FixedSizeListArray.from_arrays(
            pa.array(block["static"].ravel(), type=pa.float32()), block["static"].shape[1]
        ),
        "targets": _array2d(block["targets"], schema.field("targets").type),
        "gauged": pa.array(np.ones(s, dtype=bool)),  # every site has (gappy) target observations
        "dynamic_variables": names(block["dynamic_variables"]),
        "static_variables": names(block["static_variables"]),
        "target_variables": names(block["target_variables"]),
        "oracle": _array2d(block["oracle"], schema.field("oracle").type),
    }
    arrays = []
    for field in schema:
        arr = cols[field.name]
        if arr.type != field.type:
            arr = arr.cast(field.type)
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=schema)


class SynthLand(datasets.ArrowBasedBuilder):
    """SynthLand builder. ``SynthLand(config_name="tiny", cache_dir=..., seed=..., n_sites=...)``.

    One split, ``"train"``, with every site (``as_dataset(split="all")`` returns it too); see the module docstring for the generative model.
    """

    BUILDER_CONFIG_CLASS = SynthLandConfig
    BUILDER_CONFIGS = [
        SynthLandConfig(
            name="tiny",
            description="16 sites, 3 years (tests)",
            n_sites=16,
            start="2000-01-01",
            end="2002-12-31",
            seed=0,
            version=datasets.Version(GENERATOR_VERSION),
        ),
        SynthLandConfig(
            name="default",
            description="300 sites, 15 years (demo on a laptop CPU)",
            n_sites=300,
            start="1995-01-01",
            end="2009-12-31",
            seed=0,
            version=datasets.Version(GENERATOR_VERSION),
        ),
        SynthLandConfig(
            name="large",
            description="2048 sites, 35 years (GPU pretraining)",
            n_sites=2048,
            start="1980-01-01",
            end="2014-12-31",
            seed=0,
            version=datasets.Version(GENERATOR_VERSION),
        ),
    ]
    DEFAULT_CONFIG_NAME = "default"

    def _features(self) -> datasets.Features:
        return site_features(len(DYNAMIC_VARIABLES), len(STATIC_VARIABLES), len(TARGET_VARIABLES), extra_arrays=("oracle",))

    def _info(self) -> datasets.DatasetInfo:
        c = self.config
        description = {
            "dataset": "SynthLand",
            "generator_version": GENERATOR_VERSION,
            "config": {"name": c.name, "n_sites": c.n_sites, "start": c.start, "end": c.end, "seed": c.seed},
            "splits": [SPLIT],
            **variable_info(),
            "extra_arrays": {"oracle": "targets from the true-parameter HBV run, no noise or gaps"},
            "hbv_parameters": {k: list(v) for k, v in HBV_PARAMETER_RANGES.items()},
        }
        return datasets.DatasetInfo(
            description=json.dumps(description),
            features=self._features(),
            citation="Kraabel, Liu, Bian, Kifer, Shen (2025), StefaLand, arXiv:2509.17942",
        )

    def _split_generators(self, dl_manager):
        return [datasets.SplitGenerator(name=SPLIT, gen_kwargs={})]

    def _generate_tables(self):
        c = self.config
        features = self.info.features
        for b, block in enumerate(iter_synthland(c.n_sites, c.start, c.end, c.seed)):
            yield datasets.builder.Key(0, b), block_to_table(block, features)


__all__ = [
    "DYNAMIC_VARIABLES",
    "STATIC_VARIABLES",
    "TARGET_VARIABLES",
    "CLIMATE_INDICES",
    "SITE_BLOCK",
    "GENERATOR_VERSION",
    "SynthLand",
    "SynthLandConfig",
    "generate_synthland",
    "iter_synthland",
    "generate_site_attributes",
    "hbv_parameters",
    "climate_indices",
    "region_labels",
    "variable_info",
    "block_to_table",
]
