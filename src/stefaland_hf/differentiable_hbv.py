"""Differentiable HBV 1.1p (δHBV) in PyTorch: the physics of the ``hbv`` and ``resconn_hbv`` heads.

The model is HBV 1.1p as the differentiable HBV of Feng et al. (2022, WRR) and the hydrodl2 package describe it
(Bergström 1995; HBV-light, Seibert 2005), for ``nmul`` parallel components per basin whose generated runoff is
averaged and then routed. One day, states in mm, every operation on [basins, components] tensors:

1. **Snow.** Precipitation falls as snow (times ``SFCF``, 1 unless given) when ``T < TT``, else as rain. Melt
   ``min(CFMAX·max(T − TT, 0), SP)`` moves to the liquid water ``WC`` of the pack; refreezing
   ``min(CFR·CFMAX·max(TT − T, 0), WC)`` moves it back; liquid water above ``CWH·SP`` leaves the pack.
2. **Soil.** Of the input ``I`` (rain + water leaving the pack) the recharge ``I·min(SM/FC, 1)^BETA`` goes on, the
   rest fills ``SM``, whose excess over ``FC`` goes on too. Evapotranspiration ``min(PET·min(SM/(LP·FC), 1)^BETAET,
   SM)``. Capillary rise (the "1.1p" change) ``min(SLZ, C·SLZ·(1 − min(SM/FC, 1)))`` moves water from the lower zone
   back into the soil.
3. **Response.** Recharge and excess enter the upper zone ``SUZ``; percolation ``min(SUZ, PERC)`` feeds the lower
   zone ``SLZ``; ``Q0 = K0·max(SUZ − UZL, 0)``, ``Q1 = K1·SUZ``, ``Q2 = K2·SLZ``.
4. **Routing.** The component mean of ``Q0 + Q1 + Q2`` is convolved with a unit hydrograph: a gamma density of shape
   ``ROUTE_SHAPE`` and scale ``ROUTE_SCALE`` days sampled at the middle of each of :data:`GAMMA_ROUTING_DAYS` days and
   scaled to sum 1 (δHBV's; its ``route_a``/``route_b`` are shape − 0.1 and scale − 0.5), or SynthLand's
   triangle of base ``MAXBAS`` days. Days before the first are taken equal to it.

Every flux is bounded by the store it leaves, so no store goes negative, and the water balance closes to round-off:
``Σ(rain + SFCF·snow) = Σ(Q0 + Q1 + Q2) + ΣET + ΔS`` per component, with ``S = SP + WC + SM + SUZ + SLZ``. Powers
of a store ratio that may be 0 are taken so that their gradient stays finite.

**Spin-up** (SynthLand's, :mod:`stefaland_hf.data.hbv`): the stores start empty except ``SM = FC/2``; the first
``warmup_days`` run once, the lower zone is reset to the quasi-equilibrium ``mean percolation / K2`` of that pass,
and they run again. The simulation then continues from there (``rerun_warmup=False``: the second pass is the
simulation of the warm-up days) or starts again at day 0 from the spun-up states (``rerun_warmup=True``, as the
SynthLand generator does). Spin-up passes run without autograd, as δHBV's warm-up does.

**Parameters** come from a network as numbers in (0, 1) (a sigmoid) scaled linearly into :data:`HBV_PARAMETER_RANGES`
(:func:`parameters_from_network`): ``nmul`` values of each component parameter and one pair of routing parameters per
basin; dynamic parameters take the network's value of each day, static ones its value on the window's last day.

**PET** when no PET input exists: Hargreaves (1985), ``0.0023·Ra·(Tmean + 17.8)·sqrt(Tmax − Tmin)`` with the
extraterrestrial radiation ``Ra`` (FAO-56 eq. 21, as mm/day of evaporation) computed from latitude and day length,
since the models take no dates: the sunset hour angle is ``ω = π·N/24`` (N the day length in hours), the solar
declination follows from ``cos ω = −tan φ·tan δ`` (bounded by ±23.45°), and the Earth–Sun distance factor, which needs
the day of year, is taken as its annual mean 1 (it lies within ±3.3 %, so Ra and PET are within -3.2 % to +3.4 % of
FAO-56's).

Why this module and ``stefaland_hf.data.hbv`` both exist: this one is remote code (``modeling_stefaland`` imports it
and ``save_pretrained`` copies it beside the weights, so it may import torch only, and it is a flat module rather than
a ``physics/`` package because transformers copies only a model's relative imports from its own folder), while
SynthLand's generator is numpy in float64 under a bit-identity contract (``GENERATOR_VERSION``). ``tests/test_differentiable_hbv.py`` holds
them together: given SynthLand's true parameters (one component, static parameters, ``BETAET = 1``, ``C = 0``,
triangular routing, ``rerun_warmup=True``) this module reproduces the generator's streamflow to round-off in float64.
"""

from __future__ import annotations

import math
from typing import Mapping, NamedTuple, Sequence

import torch

# One table: every learnable HBV parameter's range (δHBV 1.1p's bounds; hydrodl2's ``parameter_bounds`` and routing
# bounds, the latter written as the gamma's shape and scale). Units: TT degC, CFMAX mm/degC/day, FC/UZL mm,
# PERC mm/day, K0/K1/K2 1/day, ROUTE_SCALE days; the others are dimensionless.
HBV_PARAMETER_RANGES: dict[str, tuple[float, float]] = {
    "BETA": (1.0, 6.0),  # shape of the recharge function
    "FC": (50.0, 1000.0),  # field capacity of the soil store
    "K0": (0.05, 0.9),  # recession of the upper zone above UZL (fast runoff)
    "K1": (0.01, 0.5),  # recession of the upper zone (interflow)
    "K2": (0.001, 0.2),  # recession of the lower zone (baseflow)
    "LP": (0.2, 1.0),  # soil moisture (fraction of FC) above which ET is potential
    "PERC": (0.0, 10.0),  # maximum percolation to the lower zone
    "UZL": (0.0, 100.0),  # upper-zone threshold of fast runoff
    "TT": (-2.5, 2.5),  # threshold temperature of snowfall and melt
    "CFMAX": (0.5, 10.0),  # degree-day melt factor
    "CFR": (0.0, 0.1),  # refreezing coefficient
    "CWH": (0.0, 0.2),  # water-holding capacity of the snowpack
    "BETAET": (0.3, 5.0),  # shape of the ET reduction (HBV 1.1p; 1 in classic HBV)
    "C": (0.0, 1.0),  # capillary rise from the lower zone (HBV 1.1p; 0 in classic HBV)
    "ROUTE_SHAPE": (0.1, 3.0),  # gamma unit hydrograph: shape
    "ROUTE_SCALE": (0.5, 7.0),  # gamma unit hydrograph: scale (days)
}
ROUTING_PARAMETERS: tuple[str, ...] = ("ROUTE_SHAPE", "ROUTE_SCALE")  # one value per basin, from the last day
COMPONENT_PARAMETERS: tuple[str, ...] = tuple(name for name in HBV_PARAMETER_RANGES if name not in ROUTING_PARAMETERS)
# Time-varying by default: those of the paper's hybrid (its Tab. 17: parBETA, parK0, parBETAET); Feng et al. (2022)
# made BETA and the ET shape (BETAET here) dynamic.
DEFAULT_DYNAMIC_PARAMETERS: tuple[str, ...] = ("BETA", "K0", "BETAET")
GAMMA_ROUTING_DAYS = 15  # length of the gamma unit hydrograph (δHBV's lenF)

# Limits any configured range must respect: beyond them a store could go negative or a ratio divide by zero.
PHYSICAL_LIMITS: dict[str, tuple[float, float, str]] = {
    "BETA": (0.0, math.inf, "an exponent of the soil wetness: positive"),
    "FC": (0.0, math.inf, "a storage capacity in mm: positive (it divides the soil moisture)"),
    "K0": (0.0, 1.0, "a daily recession fraction: in (0, 1], else the upper zone would go negative"),
    "K1": (0.0, 1.0, "a daily recession fraction: in (0, 1], else the upper zone would go negative"),
    "K2": (0.0, 1.0, "a daily recession fraction: in (0, 1], else the lower zone would go negative"),
    "LP": (0.0, 1.0, "a fraction of FC: in (0, 1] (it divides the soil moisture)"),
    "PERC": (0.0, math.inf, "a percolation rate in mm/day: non-negative"),
    "UZL": (0.0, math.inf, "a storage threshold in mm: non-negative"),
    "TT": (-math.inf, math.inf, "a temperature in degC: finite"),
    "CFMAX": (0.0, math.inf, "a melt rate: non-negative"),
    "CFR": (0.0, math.inf, "a refreezing coefficient: non-negative"),
    "CWH": (0.0, math.inf, "a water-holding fraction of the pack: non-negative"),
    "BETAET": (0.0, math.inf, "an exponent of the ET reduction: positive"),
    "C": (0.0, 1.0, "a daily fraction of the lower zone: in [0, 1]"),
    "ROUTE_SHAPE": (0.0, math.inf, "a gamma shape: positive"),
    "ROUTE_SCALE": (0.0, math.inf, "a gamma scale in days: positive"),
}
_OPEN_AT_ZERO = {"BETA", "FC", "K0", "K1", "K2", "LP", "BETAET", "ROUTE_SHAPE", "ROUTE_SCALE"}  # 0 itself is refused

STATE_NAMES: tuple[str, ...] = ("snowpack", "meltwater", "soil_moisture", "upper_zone", "lower_zone")


def check_parameter_ranges(overrides: Mapping[str, Sequence[float]] | None = None) -> dict[str, tuple[float, float]]:
    """:data:`HBV_PARAMETER_RANGES` with ``overrides`` applied, each range checked: known name, two finite numbers,
    ``low < high``, within :data:`PHYSICAL_LIMITS`. Errors name the parameter and what was expected."""
    ranges = dict(HBV_PARAMETER_RANGES)
    for name, bounds in (overrides or {}).items():
        where = f"hbv_parameter_ranges[{name!r}]"
        if name not in HBV_PARAMETER_RANGES:
            raise ValueError(f"{where}: unknown HBV parameter; the parameters are {list(HBV_PARAMETER_RANGES)}")
        if not (isinstance(bounds, (list, tuple)) and len(bounds) == 2 and all(_is_real(b) and math.isfinite(b) for b in bounds)):
            raise ValueError(f"{where}: expected [low, high], two finite numbers, got {bounds!r}")
        low, high = float(bounds[0]), float(bounds[1])
        if not low < high:
            raise ValueError(f"{where} = [{low:g}, {high:g}] is reversed or empty: expected low < high")
        limit_low, limit_high, why = PHYSICAL_LIMITS[name]
        too_low = low <= limit_low if name in _OPEN_AT_ZERO else low < limit_low
        if too_low or high > limit_high:
            raise ValueError(f"{where} = [{low:g}, {high:g}] is outside the physical limits of {name}: {why}")
        ranges[name] = (low, high)
    return ranges


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ================================================================================================
# Forcings
# ================================================================================================
class HBVForcingSources(NamedTuple):
    """Where HBV's forcings come from among a model's variables (column indices; None where unused).

    ``temperature_mean``: the daily mean temperature column, else the mean of ``temperature_max``/``temperature_min``.
    ``pet``: the PET column, else Hargreaves from ``temperature_max``/``temperature_min``, ``daylength`` and the
    static ``latitude``.
    """

    precipitation: int
    temperature_mean: int | None
    temperature_max: int | None
    temperature_min: int | None
    pet: int | None
    daylength: int | None
    latitude: int | None


def forcing_sources(
    dynamic_variables: Sequence[str], static_variables: Sequence[str], owner: str = "the HBV physics"
) -> HBVForcingSources:
    """How HBV gets precipitation, temperature and PET from these variables; a clear error (beginning with ``owner``)
    names what is missing."""
    dynamic, static = list(dynamic_variables), list(static_variables)
    index = lambda name: dynamic.index(name) if name in dynamic else None  # noqa: E731
    missing = []
    if "precipitation" not in dynamic:
        missing.append("the dynamic variable 'precipitation' (mm/day)")
    has_extremes = "temperature_max" in dynamic and "temperature_min" in dynamic
    if "temperature_mean" not in dynamic and not has_extremes:
        missing.append("temperature: the dynamic variable 'temperature_mean', or both 'temperature_max' and 'temperature_min' (degC)")
    if "potential_evapotranspiration" not in dynamic:
        hargreaves = [f"the dynamic variable {name!r}" for name in ("temperature_max", "temperature_min", "daylength") if name not in dynamic]
        if "latitude" not in static:
            hargreaves.append("the static variable 'latitude'")
        if hargreaves:
            missing.append(
                "PET: the dynamic variable 'potential_evapotranspiration' (mm/day), or for Hargreaves PET "
                + ", ".join(hargreaves)
            )
    if missing:
        raise ValueError(
            f"{owner} needs " + "; and ".join(missing)
            + f" (this model's dynamic_variables are {dynamic}, its static_variables {static})"
        )
    pet = index("potential_evapotranspiration")
    return HBVForcingSources(
        precipitation=dynamic.index("precipitation"),
        temperature_mean=index("temperature_mean"),
        temperature_max=index("temperature_max"),
        temperature_min=index("temperature_min"),
        pet=pet,
        daylength=None if pet is not None else dynamic.index("daylength"),
        latitude=None if pet is not None else static.index("latitude"),
    )


SOLAR_CONSTANT = 0.0820  # MJ m-2 min-1 (FAO-56)
MJ_TO_MM = 0.408  # MJ m-2 day-1 -> mm/day of evaporation equivalent (FAO-56 eq. 20)
MAX_DECLINATION = 0.4093  # rad, 23.45 degrees


def extraterrestrial_radiation(latitude_deg: torch.Tensor, daylength_s: torch.Tensor) -> torch.Tensor:
    """Daily extraterrestrial radiation in MJ m-2 day-1 from latitude (degrees) and day length (seconds).

    FAO-56 eq. 21 with the sunset hour angle from the day length and the declination from eq. 25 solved for it; the
    Earth–Sun distance factor is 1 (module docstring). Shapes broadcast, e.g. latitude [B, 1] with day length [B, T].
    """
    latitude = torch.deg2rad(latitude_deg)
    sunset = (torch.pi * daylength_s / 86400.0).clamp(0.0, torch.pi)  # ω = π·N/24 with N in hours
    tan_lat = torch.tan(latitude)
    tan_lat = torch.where(tan_lat.abs() < 1e-6, torch.full_like(tan_lat, 1e-6), tan_lat)  # the equator: δ unknowable
    declination = torch.atan(-torch.cos(sunset) / tan_lat).clamp(-MAX_DECLINATION, MAX_DECLINATION)
    ra = (24.0 * 60.0 / torch.pi) * SOLAR_CONSTANT * (
        sunset * torch.sin(latitude) * torch.sin(declination) + torch.cos(latitude) * torch.cos(declination) * torch.sin(sunset)
    )
    return ra.clamp(min=0.0)


def hargreaves_pet(temperature_max: torch.Tensor, temperature_min: torch.Tensor, radiation_mj: torch.Tensor) -> torch.Tensor:
    """Hargreaves (1985) PET in mm/day from Tmax/Tmin (degC) and extraterrestrial radiation (MJ m-2 day-1); >= 0."""
    mean = 0.5 * (temperature_max + temperature_min)
    spread = (temperature_max - temperature_min).clamp(min=0.0)
    return (0.0023 * MJ_TO_MM * radiation_mj * (mean + 17.8) * spread.sqrt()).clamp(min=0.0)


# ================================================================================================
# Parameters
# ================================================================================================
def network_outputs(nmul: int, dynamic: Sequence[str] = ()) -> tuple[int, int]:
    """How many numbers a parameter network produces: (from the last day: static component parameters x nmul and the
    routing parameters; per day: dynamic parameters x nmul)."""
    return (len(COMPONENT_PARAMETERS) - len(dynamic)) * nmul + len(ROUTING_PARAMETERS), len(dynamic) * nmul


def parameters_from_network(
    last_day: torch.Tensor,
    daily: torch.Tensor | None,
    ranges: Mapping[str, tuple[float, float]],
    nmul: int,
    dynamic: Sequence[str] = (),
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Network outputs -> physical parameters, each a sigmoid scaled linearly into its range: ``low + (high − low)·s``.

    last_day [B, n_static]: the static component parameters (in :data:`COMPONENT_PARAMETERS` order, ``nmul`` values
    each), then the routing parameters; daily [B, T, n_dynamic]: the ``dynamic`` ones (same order), None without any.
    Sizes: :func:`network_outputs`. Returns (component parameters: name -> [B, nmul], or [B, T, nmul] if dynamic;
    routing parameters: name -> [B]).
    """
    static_size, dynamic_size = network_outputs(nmul, dynamic)
    got = (last_day.shape[-1], 0 if daily is None else daily.shape[-1])
    if got != (static_size, dynamic_size):
        raise ValueError(f"HBV parameters: expected {static_size} last-day and {dynamic_size} daily network outputs "
                         f"(nmul={nmul}, dynamic parameters {list(dynamic)}), got {got[0]} and {got[1]}")
    static_names = [name for name in COMPONENT_PARAMETERS if name not in dynamic]
    dynamic_names = [name for name in COMPONENT_PARAMETERS if name in dynamic]
    last_unit = torch.sigmoid(last_day)
    scaled = lambda name, unit: ranges[name][0] + (ranges[name][1] - ranges[name][0]) * unit  # noqa: E731
    per_component = last_unit[:, : len(static_names) * nmul].unflatten(-1, (len(static_names), nmul))
    component = {name: scaled(name, per_component[:, i]) for i, name in enumerate(static_names)}
    if dynamic_names:
        per_day = torch.sigmoid(daily).unflatten(-1, (len(dynamic_names), nmul))
        component.update({name: scaled(name, per_day[:, :, i]) for i, name in enumerate(dynamic_names)})
    routing = {name: scaled(name, last_unit[:, len(static_names) * nmul + i]) for i, name in enumerate(ROUTING_PARAMETERS)}
    return {name: component[name] for name in COMPONENT_PARAMETERS}, routing


# ================================================================================================
# Routing
# ================================================================================================
def gamma_unit_hydrograph(shape: torch.Tensor, scale: torch.Tensor, length: int = GAMMA_ROUTING_DAYS) -> torch.Tensor:
    """[B] shape and scale (days) -> [B, length] weights: the gamma density at days 0.5, 1.5, ... scaled to sum 1."""
    days = torch.arange(length, dtype=shape.dtype, device=shape.device) + 0.5
    log_density = (shape.unsqueeze(-1) - 1.0) * torch.log(days) - days / scale.unsqueeze(-1)  # Γ(a)·θ^a cancels
    return torch.softmax(log_density, dim=-1)


def triangular_unit_hydrograph(maxbas: torch.Tensor, length: int = 7) -> torch.Tensor:
    """[B] base lengths (days, 1..length) -> [B, length] weights: the area of a unit triangle over each whole day."""
    base = maxbas.clamp(1.0, float(length)).unsqueeze(-1)
    edges = torch.arange(length + 1, dtype=maxbas.dtype, device=maxbas.device).expand(base.shape[0], -1)
    x = torch.minimum(edges, base)
    cumulative = torch.where(x <= base / 2.0, 2.0 * x**2 / base**2, 1.0 - 2.0 * (base - x) ** 2 / base**2)
    weights = cumulative.diff(dim=-1)
    return weights / weights.sum(-1, keepdim=True)


def route(runoff: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Convolve [B, T] runoff with [B, L] unit-hydrograph weights; days before the first equal the first."""
    length = weights.shape[-1]
    padded = torch.cat([runoff[:, :1].expand(-1, length - 1), runoff], dim=1)
    windows = padded.unfold(1, length, 1)  # [B, T, L]: days t - L + 1 .. t
    return (windows * weights.flip(-1).unsqueeze(1)).sum(-1)


# ================================================================================================
# Simulation
# ================================================================================================
class HBVSimulation(NamedTuple):
    """What :func:`simulate` returns. [B, T] basin series; [B, T, nmul] per component; mm and mm/day."""

    streamflow: torch.Tensor  # routed component-mean runoff [B, T]
    runoff: torch.Tensor  # component-mean Q0 + Q1 + Q2 before routing [B, T]
    component_runoff: torch.Tensor  # [B, T, nmul]
    evapotranspiration: torch.Tensor  # [B, T, nmul]
    effective_precipitation: torch.Tensor  # rain + SFCF·snow [B, T, nmul]
    snowpack: torch.Tensor  # SP [B, T, nmul], end of day
    meltwater: torch.Tensor  # WC
    soil_moisture: torch.Tensor  # SM
    upper_zone: torch.Tensor  # SUZ
    lower_zone: torch.Tensor  # SLZ
    initial_storage: torch.Tensor  # SP + WC + SM + SUZ + SLZ before the first simulated day [B, nmul]


def _power_of_fraction(ratio: torch.Tensor, exponent: torch.Tensor) -> torch.Tensor:
    """``min(ratio, 1)^exponent`` for ratio >= 0. The ratio is raised to at least the dtype's smallest normal number
    (at 0 the result is then at most about 1e-11 in float32 and 0 in float64, and its gradient finite); ``exp(e·log r)``
    costs less than ``r**e`` forward and backward, and this runs twice a day in the loop."""
    return torch.exp(exponent * torch.log(ratio.clamp(torch.finfo(ratio.dtype).tiny, 1.0)))


class _DailyInputs(NamedTuple):
    """What each day of the loop reads, unbound along time: forcings split by the snow routine, PET, parameters."""

    rain: tuple[torch.Tensor, ...]  # [B, nmul] per day
    snow: tuple[torch.Tensor, ...]  # SFCF x precipitation on cold days
    melt_potential: tuple[torch.Tensor, ...]  # CFMAX x max(T - TT, 0)
    refreezing_potential: tuple[torch.Tensor, ...]  # CFR x CFMAX x max(TT - T, 0)
    pet: tuple[torch.Tensor, ...]  # [B, 1] per day
    static: dict[str, torch.Tensor]  # [B, nmul]
    dynamic: dict[str, tuple[torch.Tensor, ...]]  # [B, nmul] per day
    effective_precipitation: torch.Tensor  # rain + snow [B, T, nmul], for the water balance


def _daily_inputs(precipitation, temperature, pet, parameters) -> _DailyInputs:
    """Everything that does not depend on the stores, computed for all days at once (vectorized over time too)."""
    over_days = {name: value if value.dim() == 3 else value.unsqueeze(1) for name, value in parameters.items()}
    temperature = temperature.unsqueeze(-1)
    cold = temperature < over_days["TT"]
    precipitation = precipitation.unsqueeze(-1)
    snowfall = precipitation if "SFCF" not in over_days else precipitation * over_days["SFCF"]
    melt = over_days["CFMAX"] * (temperature - over_days["TT"]).clamp(min=0.0)
    refreezing = over_days["CFR"] * over_days["CFMAX"] * (over_days["TT"] - temperature).clamp(min=0.0)
    split = lambda value: value.unbind(1)  # noqa: E731
    store_parameters = {name: value for name, value in parameters.items() if name not in ("TT", "CFMAX", "CFR", "SFCF")}
    lp_fc = over_days["LP"] * over_days["FC"]  # [B, 1, nmul] unless one of them is dynamic
    store_parameters["LPFC"] = lp_fc.squeeze(1) if lp_fc.shape[1] == 1 else lp_fc
    rain = torch.where(cold, 0.0, precipitation).expand_as(cold)
    snow = torch.where(cold, snowfall, 0.0).expand_as(cold)
    return _DailyInputs(
        rain=split(rain),
        snow=split(snow),
        melt_potential=split(melt.expand_as(cold)),
        refreezing_potential=split(refreezing.expand_as(cold)),
        pet=split(pet.unsqueeze(-1)),
        static={name: value for name, value in store_parameters.items() if value.dim() == 2},
        dynamic={name: split(value) for name, value in store_parameters.items() if value.dim() == 3},
        effective_precipitation=rain + snow,
    )


def _run_days(daily: _DailyInputs, states, days: range, record: bool):
    """Advance the stores over ``days``; returns (states, the recorded tensors of each day if ``record`` else None,
    the percolation summed over the days if not ``record`` else 0: what the spin-up's lower-zone reset needs)."""
    snowpack, meltwater, soil, upper, lower = states
    records = [] if record else None
    percolation_sum = torch.zeros_like(soil)
    for t in days:  # the only loop: over days, vectorized over basins x components
        p = {**daily.static, **{name: value[t] for name, value in daily.dynamic.items()}}
        # snow
        snowpack = snowpack + daily.snow[t]
        melt = daily.melt_potential[t].clamp(max=snowpack)
        snowpack = snowpack - melt
        meltwater = meltwater + melt
        refreezing = daily.refreezing_potential[t].clamp(max=meltwater)
        snowpack = snowpack + refreezing
        meltwater = meltwater - refreezing
        to_soil = torch.relu(meltwater - p["CWH"] * snowpack)
        meltwater = meltwater - to_soil
        # soil
        infiltration = daily.rain[t] + to_soil
        recharge = infiltration * _power_of_fraction(soil / p["FC"], p["BETA"])
        soil = soil + infiltration - recharge
        excess = torch.relu(soil - p["FC"])
        soil = soil - excess
        evaporation = (daily.pet[t] * _power_of_fraction(soil / p["LPFC"], p["BETAET"])).clamp(max=soil)
        soil = soil - evaporation
        capillary = (p["C"] * lower * (1.0 - (soil / p["FC"]).clamp(max=1.0))).clamp(max=lower)
        soil = soil + capillary
        lower = lower - capillary
        # response
        upper = upper + recharge + excess
        percolation = p["PERC"].clamp(max=upper)
        upper = upper - percolation
        q0 = p["K0"] * torch.relu(upper - p["UZL"])
        upper = upper - q0
        q1 = p["K1"] * upper
        upper = upper - q1
        lower = lower + percolation
        q2 = p["K2"] * lower
        lower = lower - q2
        if record:
            records.append((q0 + q1 + q2, evaporation, snowpack, meltwater, soil, upper, lower))
        else:
            percolation_sum = percolation_sum + percolation
    return (snowpack, meltwater, soil, upper, lower), records, percolation_sum


def simulate(
    precipitation: torch.Tensor,
    temperature: torch.Tensor,
    pet: torch.Tensor,
    parameters: Mapping[str, torch.Tensor],
    unit_hydrograph: torch.Tensor,
    warmup_days: int = 0,
    rerun_warmup: bool = False,
) -> HBVSimulation:
    """Run HBV for B basins x nmul components over T days.

    precipitation (mm/day), temperature (daily mean, degC), pet (mm/day): [B, T]; negative precipitation and PET are
    taken as 0. parameters: every name of :data:`COMPONENT_PARAMETERS` -> [B, nmul] (static) or [B, T, nmul]
    (dynamic), and optionally ``SFCF`` (snowfall correction, 1 when absent). unit_hydrograph: [B, L] routing weights
    (:func:`gamma_unit_hydrograph`, :func:`triangular_unit_hydrograph`). Spin-up over the first ``warmup_days``
    (< T) and ``rerun_warmup``: see the module docstring. Computes in float32 or float64 (the inputs' dtype), never
    under autocast.
    """
    missing = [name for name in COMPONENT_PARAMETERS if name not in parameters]
    if missing:
        raise ValueError(f"simulate: missing HBV parameters {missing}")
    if not precipitation.shape == temperature.shape == pet.shape or precipitation.dim() != 2:
        raise ValueError(
            f"simulate: precipitation, temperature and pet must share one [basins, days] shape, got "
            f"{tuple(precipitation.shape)}, {tuple(temperature.shape)}, {tuple(pet.shape)}"
        )
    n_basins, n_days = precipitation.shape
    if not 0 <= warmup_days < n_days:
        raise ValueError(f"simulate: warmup_days={warmup_days} must be at least 0 and fewer than the {n_days} days simulated")
    dtype = precipitation.dtype if precipitation.dtype == torch.float64 else torch.float32
    with torch.autocast(precipitation.device.type, enabled=False):
        precipitation = precipitation.to(dtype).clamp(min=0.0)
        temperature, pet = temperature.to(dtype), pet.to(dtype).clamp(min=0.0)
        params = {name: value.to(dtype) for name, value in parameters.items()}
        first_day = {name: value if value.dim() == 2 else value[:, 0] for name, value in params.items()}
        zeros = torch.zeros_like(first_day["FC"])
        states = (zeros, zeros, 0.5 * first_day["FC"], zeros, zeros)
        daily = _daily_inputs(precipitation, temperature, pet, params)
        records = []
        if warmup_days > 0:
            warmup = range(warmup_days)
            with torch.no_grad():
                states, _, percolation_sum = _run_days(daily, states, warmup, record=False)
                k2 = params["K2"] if params["K2"].dim() == 2 else params["K2"][:, warmup_days - 1]
                states = (*states[:4], percolation_sum / warmup_days / k2)
                start_states = states
                states, records, _ = _run_days(daily, states, warmup, record=not rerun_warmup)
            if rerun_warmup:
                start_states = states
        else:
            start_states = states
        first = 0 if rerun_warmup else warmup_days
        states, main, _ = _run_days(daily, states, range(first, n_days), record=True)
        days = (records or []) + main  # one tuple of recorded tensors per simulated day
        series = [torch.stack(values, dim=1) for values in zip(*days)]
        component_runoff, evaporation, snowpack, meltwater, soil, upper, lower = series
        runoff = component_runoff.mean(-1)
        return HBVSimulation(
            streamflow=route(runoff, unit_hydrograph.to(dtype)),
            runoff=runoff,
            component_runoff=component_runoff,
            evapotranspiration=evaporation,
            effective_precipitation=daily.effective_precipitation,
            snowpack=snowpack,
            meltwater=meltwater,
            soil_moisture=soil,
            upper_zone=upper,
            lower_zone=lower,
            initial_storage=sum(start_states),
        )


__all__ = [
    "HBV_PARAMETER_RANGES",
    "COMPONENT_PARAMETERS",
    "ROUTING_PARAMETERS",
    "DEFAULT_DYNAMIC_PARAMETERS",
    "PHYSICAL_LIMITS",
    "STATE_NAMES",
    "HBVForcingSources",
    "HBVSimulation",
    "check_parameter_ranges",
    "forcing_sources",
    "extraterrestrial_radiation",
    "hargreaves_pet",
    "network_outputs",
    "parameters_from_network",
    "gamma_unit_hydrograph",
    "triangular_unit_hydrograph",
    "route",
    "simulate",
]
