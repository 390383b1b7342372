"""The differentiable HBV (``stefaland_hf.differentiable_hbv``): mass balance, non-negative stores, drainage, SynthLand's
generator reproduced to round-off, PET from day length, routing, parameter scaling, and the refused bad settings."""

import math

import numpy as np
import pytest
import torch

from stefaland_hf import differentiable_hbv as hbv
from stefaland_hf.data import hbv as generator
from stefaland_hf.data.synthland import generate_synthland

STORES = ("snowpack", "meltwater", "soil_moisture", "upper_zone", "lower_zone")


def _storage(simulation) -> torch.Tensor:
    return sum(getattr(simulation, name) for name in STORES)


def _random_parameters(n_basins: int, nmul: int, n_days: int, dynamic=(), seed: int = 0) -> dict[str, torch.Tensor]:
    """Parameters drawn uniformly over the whole table, in float64; ``dynamic`` ones differ by day."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name in hbv.COMPONENT_PARAMETERS:
        low, high = hbv.HBV_PARAMETER_RANGES[name]
        shape = (n_basins, n_days, nmul) if name in dynamic else (n_basins, nmul)
        out[name] = low + (high - low) * torch.rand(shape, generator=g, dtype=torch.float64)
    out["SFCF"] = 0.4 + 0.6 * torch.rand(n_basins, nmul, generator=g, dtype=torch.float64)
    return out


def _weather(n_basins: int, n_days: int, seed: int = 0):
    """Seasonal float64 forcings with snow winters, rain spells and dry summers."""
    g = torch.Generator().manual_seed(seed)
    day = torch.arange(n_days, dtype=torch.float64)
    temperature = 8.0 - 14.0 * torch.cos(2 * math.pi * day / 365.25) + 4.0 * torch.randn(n_basins, n_days, generator=g, dtype=torch.float64)
    wet = torch.rand(n_basins, n_days, generator=g, dtype=torch.float64) < 0.35
    precipitation = torch.where(wet, 12.0 * torch.rand(n_basins, n_days, generator=g, dtype=torch.float64) ** 2, torch.zeros(()))
    pet = (2.5 - 2.0 * torch.cos(2 * math.pi * day / 365.25)).expand(n_basins, -1)
    return precipitation, temperature, pet


def _gamma(n_basins: int) -> torch.Tensor:
    return hbv.gamma_unit_hydrograph(torch.full((n_basins,), 1.5, dtype=torch.float64), torch.full((n_basins,), 2.0, dtype=torch.float64))


@pytest.mark.parametrize("rerun_warmup", [False, True])
def test_water_balance_closes_to_round_off_over_years_and_no_store_goes_negative(rerun_warmup):
    """precipitation (after the snowfall correction) = ET + runoff + change of storage, per basin and component, over
    five years with every parameter drawn from its range, dynamic BETA/K0/BETAET and capillary rise."""
    n_basins, nmul, n_days = 6, 4, 5 * 365
    precipitation, temperature, pet = _weather(n_basins, n_days)
    parameters = _random_parameters(n_basins, nmul, n_days, dynamic=("BETA", "K0", "BETAET"))
    simulation = hbv.simulate(precipitation, temperature, pet, parameters, _gamma(n_basins), warmup_days=365, rerun_warmup=rerun_warmup)
    inflow = simulation.effective_precipitation.sum(1)
    outflow = simulation.evapotranspiration.sum(1) + simulation.component_runoff.sum(1)
    change = _storage(simulation)[:, -1] - simulation.initial_storage
    assert inflow.min() > 1000.0  # a real test: thousands of mm passed through every component
    assert torch.allclose(inflow - outflow - change, torch.zeros_like(inflow), rtol=0, atol=1e-10 * float(inflow.max()))
    for name in STORES:
        assert getattr(simulation, name).min() >= 0.0, name
    assert simulation.evapotranspiration.min() >= 0.0 and simulation.component_runoff.min() >= 0.0
    assert simulation.streamflow.shape == (n_basins, n_days) and simulation.snowpack.shape == (n_basins, n_days, nmul)
    assert simulation.snowpack.max() > 10.0 and simulation.lower_zone.max() > 1.0  # snow and groundwater took part


def test_zero_precipitation_drains_monotonically():
    """After a wet year, three years without precipitation: the storage only falls (by ET + runoff each day) and the
    streamflow ends far below where it started."""
    n_basins, nmul, n_days = 4, 3, 4 * 365
    precipitation, _, pet = _weather(n_basins, n_days)
    precipitation[:, 365:] = 0.0
    temperature = torch.full((n_basins, n_days), 10.0, dtype=torch.float64)  # above every TT: no snow
    parameters = _random_parameters(n_basins, nmul, n_days)
    parameters["K2"] = torch.full_like(parameters["K2"], 0.05)
    simulation = hbv.simulate(precipitation, temperature, pet, parameters, _gamma(n_basins), warmup_days=100)
    storage = _storage(simulation)[:, 365:]
    assert (storage[:, 1:] - storage[:, :-1]).max() <= 1e-12
    assert (storage[:, 0] - storage[:, -1]).min() > 10.0
    assert bool((simulation.streamflow[:, -1] < 0.05 * simulation.streamflow[:, 380]).all())


def _synthland_inputs():
    data = generate_synthland(n_sites=6, start="2000-01-01", end="2002-12-31", seed=3)
    names = data["dynamic_variables"]
    column = lambda name: data["dynamic"][..., names.index(name)].astype(np.float64)  # noqa: E731
    temperature = 0.5 * (column("temperature_max") + column("temperature_min"))
    truth = {name: data["hbv_parameters"][:, i].astype(np.float64) for i, name in enumerate(data["parameter_names"])}
    return data, column("precipitation"), temperature, column("potential_evapotranspiration"), truth


def test_reproduces_synthlands_generator_given_its_true_parameters():
    """One component, static parameters, BETAET = 1 and C = 0 (classic HBV), the triangular routing and the
    generator's spin-up (rerun_warmup): SynthLand's streamflow to round-off in float64."""
    data, precipitation, temperature, pet, truth = _synthland_inputs()
    reference = generator.run_hbv(precipitation, temperature, pet, truth, warmup_days=365)
    parameters = {name: torch.tensor(values).unsqueeze(-1) for name, values in truth.items() if name != "MAXBAS"}
    parameters.update(BETAET=torch.ones(6, 1, dtype=torch.float64), C=torch.zeros(6, 1, dtype=torch.float64))
    routing = hbv.triangular_unit_hydrograph(torch.tensor(truth["MAXBAS"]))
    assert torch.allclose(routing, torch.tensor(generator.triangular_weights(truth["MAXBAS"])), rtol=0, atol=1e-15)
    simulation = hbv.simulate(*(torch.tensor(v) for v in (precipitation, temperature, pet)), parameters, routing,
                              warmup_days=365, rerun_warmup=True)
    np.testing.assert_allclose(simulation.streamflow.numpy(), reference["streamflow"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(simulation.soil_moisture[..., 0].numpy(), reference["soil_storage"], rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(simulation.snowpack[..., 0].numpy(), reference["snowpack"], rtol=1e-12, atol=1e-10)
    assert reference["streamflow"].mean() > 0.1 and reference["snowpack"].max() > 1.0
    # SynthLand's stored oracle came from the unrounded float64 forcings; these are its float32 columns
    np.testing.assert_allclose(simulation.streamflow.numpy(), data["oracle"][..., 0], rtol=1e-3, atol=1e-4)


def test_gradients_are_finite_where_the_soil_dries_out():
    """Dry, hot days empty the soil store (SM = 0): the powers of SM/FC keep a finite gradient there."""
    n_basins, nmul, n_days = 3, 2, 200
    precipitation = torch.zeros(n_basins, n_days)
    precipitation[:, :5] = 20.0
    temperature, pet = torch.full((n_basins, n_days), 25.0), torch.full((n_basins, n_days), 15.0)
    static_names = [name for name in hbv.COMPONENT_PARAMETERS if name != "BETA"]
    last_day = torch.zeros(n_basins, hbv.network_outputs(nmul, ("BETA",))[0])
    index = static_names.index("BETAET")
    last_day[:, index * nmul : (index + 1) * nmul] = -30.0  # a low ET shape lets ET take the soil's last water
    last_day.requires_grad_(True)
    daily = torch.zeros(n_basins, n_days, hbv.network_outputs(nmul, ("BETA",))[1], requires_grad=True)
    no_capillary_rise = dict(hbv.HBV_PARAMETER_RANGES, C=(0.0, 0.0))  # nothing refills the soil from below
    component, routing = hbv.parameters_from_network(last_day, daily, no_capillary_rise, nmul, ("BETA",))
    simulation = hbv.simulate(precipitation, temperature, pet, component,
                              hbv.gamma_unit_hydrograph(routing["ROUTE_SHAPE"], routing["ROUTE_SCALE"]), warmup_days=10)
    assert float(simulation.soil_moisture[:, -1].max().detach()) == 0.0
    simulation.streamflow[:, 10:].sum().backward()
    assert torch.isfinite(last_day.grad).all() and torch.isfinite(daily.grad).all()
    assert last_day.grad.abs().sum() > 0


def test_parameters_are_the_sigmoid_scaled_into_their_ranges():
    nmul, dynamic = 3, ("BETA", "BETAET")
    static_size, dynamic_size = hbv.network_outputs(nmul, dynamic)
    assert (static_size, dynamic_size) == ((len(hbv.COMPONENT_PARAMETERS) - 2) * 3 + 2, 2 * 3)
    daily = torch.zeros(2, 5, dynamic_size)
    daily[:, 4] = 1e6  # the last day's dynamic values saturate at the top of their ranges
    component, routing = hbv.parameters_from_network(torch.zeros(2, static_size), daily, hbv.HBV_PARAMETER_RANGES, nmul, dynamic)
    assert list(component) == list(hbv.COMPONENT_PARAMETERS)
    assert component["FC"].shape == (2, 3) and component["BETA"].shape == (2, 5, 3)
    assert torch.allclose(component["FC"], torch.full((2, 3), 525.0))  # the middle of 50..1000
    assert torch.allclose(component["BETA"][:, 4], torch.full((2, 3), 6.0)) and torch.allclose(component["BETA"][:, 0], torch.full((2, 3), 3.5))
    assert torch.allclose(routing["ROUTE_SCALE"], torch.full((2,), 3.75))
    with pytest.raises(ValueError, match="expected 38 last-day and 6 daily network outputs"):
        hbv.parameters_from_network(torch.zeros(2, 40), daily, hbv.HBV_PARAMETER_RANGES, nmul, dynamic)


def test_routing_keeps_a_constant_flow_and_delays_a_pulse():
    shape, scale = torch.tensor([0.5, 2.0, 3.0]), torch.tensor([1.0, 2.0, 5.0])
    weights = hbv.gamma_unit_hydrograph(shape, scale)
    assert weights.shape == (3, hbv.GAMMA_ROUTING_DAYS) and torch.allclose(weights.sum(-1), torch.ones(3))
    peaks = weights.argmax(-1)
    assert peaks[0] == 0 and peaks[0] < peaks[1] < peaks[2]  # the mode (shape - 1) x scale moves later
    constant = torch.full((3, 40), 2.5)
    assert torch.allclose(hbv.route(constant, weights), constant)
    pulse = torch.zeros(3, 40)
    pulse[:, 20] = 1.0
    assert torch.allclose(hbv.route(pulse, weights)[:, 20 : 20 + hbv.GAMMA_ROUTING_DAYS], weights)


def test_extraterrestrial_radiation_from_day_length_is_fao56_up_to_the_earth_sun_distance():
    """Day length -> sunset hour angle -> declination -> Ra: FAO-56's Ra without its distance factor dr (a ±3.3 %
    annual cycle), so within 3.5 % of FAO-56 itself; Hargreaves is then SynthLand's formula on that Ra."""
    doy = np.arange(1, 366)
    for latitude in (-33.0, 25.0, 38.5, 49.0):
        fao = generator.extraterrestrial_radiation(np.array([latitude]), doy)[0]
        lat, declination = np.deg2rad(latitude), 0.409 * np.sin(2 * np.pi / 365 * doy - 1.39)
        daylength_s = 86400.0 / np.pi * np.arccos(-np.tan(lat) * np.tan(declination))  # FAO-56 eq. 34, in seconds
        ours = hbv.extraterrestrial_radiation(torch.tensor(latitude, dtype=torch.float64), torch.tensor(daylength_s)).numpy()
        distance = 1 + 0.033 * np.cos(2 * np.pi / 365 * doy)
        np.testing.assert_allclose(ours, fao / distance, rtol=1e-9)
        assert np.abs(ours / fao - 1).max() < 0.035  # 1/dr: between 1/1.033 and 1/0.967
    tmax, tmin, radiation = np.array([[30.0, 12.0, -3.0]]), np.array([[15.0, 14.0, -9.0]]), np.array([[40.0, 20.0, 8.0]])
    np.testing.assert_allclose(hbv.hargreaves_pet(*(torch.tensor(v) for v in (tmax, tmin, radiation))).numpy(),
                               generator.hargreaves_pet(tmax, tmin, radiation), rtol=1e-12)


# ------------------------------------------------------------------------------------------------
# bad settings
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"FC": [600.0, 100.0]}, r"hbv_parameter_ranges\['FC'\] = \[600, 100\] is reversed or empty: expected low < high"),
        ({"K0": [0.1, 1.5]}, r"hbv_parameter_ranges\['K0'\] = \[0.1, 1.5\] is outside the physical limits of K0: .*in \(0, 1\]"),
        ({"FC": [0.0, 100.0]}, r"outside the physical limits of FC: a storage capacity in mm: positive"),
        ({"C": [-0.1, 0.5]}, r"outside the physical limits of C"),
        ({"MAXBAS": [1.0, 7.0]}, r"hbv_parameter_ranges\['MAXBAS'\]: unknown HBV parameter; the parameters are \['BETA'"),
        ({"LP": [0.3]}, r"hbv_parameter_ranges\['LP'\]: expected \[low, high\], two finite numbers, got \[0.3\]"),
        ({"TT": [-1.0, float("inf")]}, r"two finite numbers"),
    ],
)
def test_parameter_ranges_reversed_or_outside_physical_limits_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        hbv.check_parameter_ranges(overrides)


def test_forcings_the_physics_needs_are_named_when_missing():
    statics = ["latitude", "elevation"]
    assert hbv.forcing_sources(["precipitation", "temperature_mean", "potential_evapotranspiration"], []).pet == 2
    hargreaves = hbv.forcing_sources(["daylength", "temperature_min", "temperature_max", "precipitation"], statics)
    assert (hargreaves.temperature_mean, hargreaves.daylength, hargreaves.latitude) == (None, 0, 0)
    with pytest.raises(ValueError, match=r"needs temperature: the dynamic variable 'temperature_mean', or both 'temperature_max' and "
                                         r"'temperature_min' \(degC\)"):
        hbv.forcing_sources(["precipitation", "temperature_max", "potential_evapotranspiration"], statics)
    with pytest.raises(ValueError, match=r"for Hargreaves PET the static variable 'latitude' \(this model's dynamic_variables"):
        hbv.forcing_sources(["precipitation", "temperature_max", "temperature_min", "daylength"], ["elevation"])
    with pytest.raises(ValueError, match=r"needs the dynamic variable 'precipitation' \(mm/day\); and temperature"):
        hbv.forcing_sources(["shortwave_radiation", "potential_evapotranspiration"], statics)


def test_simulate_refuses_what_it_cannot_run():
    p, t, pet = torch.zeros(2, 30), torch.zeros(2, 30), torch.zeros(2, 30)
    parameters = _random_parameters(2, 1, 30)
    with pytest.raises(ValueError, match=r"simulate: missing HBV parameters \['C'\]"):
        hbv.simulate(p, t, pet, {k: v for k, v in parameters.items() if k != "C"}, _gamma(2))
    with pytest.raises(ValueError, match=r"warmup_days=30 must be at least 0 and fewer than the 30 days simulated"):
        hbv.simulate(p, t, pet, parameters, _gamma(2), warmup_days=30)
    with pytest.raises(ValueError, match=r"one \[basins, days\] shape, got \(2, 30\), \(2, 29\), \(2, 30\)"):
        hbv.simulate(p, t[:, 1:], pet, parameters, _gamma(2))


def test_the_documented_parameter_table_is_the_codes():
    """docs/hbv.md's table of ranges is HBV_PARAMETER_RANGES, row for row."""
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "hbv.md").read_text()
    rows = [line.split("|")[1:-1] for line in page.splitlines() if line.startswith("| ") and " … " in line]
    documented = {cells[0].strip(): tuple(float(v.replace("−", "-")) for v in cells[2].split("…")) for cells in rows}
    assert documented == hbv.HBV_PARAMETER_RANGES
