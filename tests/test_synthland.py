"""SynthLand: determinism, physical plausibility, learnability, and the datasets builder round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stefaland_hf.data.hbv import (
    HBV_PARAMETER_RANGES,
    HBV_PARAMETERS,
    extraterrestrial_radiation,
    hargreaves_pet,
    run_hbv,
    triangular_weights,
)
from stefaland_hf.data.synthland import (
    DYNAMIC_VARIABLES,
    STATIC_VARIABLES,
    TARGET_VARIABLES,
    SynthLand,
    generate_site_attributes,
    generate_synthland,
    hbv_parameters,
)
from stefaland_hf.variables import VARIABLES

TINY = dict(n_sites=16, start="2000-01-01", end="2002-12-31", seed=0)


@pytest.fixture(scope="module")
def tiny():
    return generate_synthland(**TINY, diagnostics=True)


@pytest.fixture(scope="module")
def medium():
    # more sites, same short period: enough for correlation and gap statistics
    return generate_synthland(n_sites=96, start="2000-01-01", end="2002-12-31", seed=1)


def _static(d, name):
    return d["static"][:, STATIC_VARIABLES.index(name)]


def _dyn(d, name):
    return d["dynamic"][..., DYNAMIC_VARIABLES.index(name)]


# ---------------------------------------------------------------------------------- determinism
def test_deterministic(tiny):
    again = generate_synthland(**TINY)
    for key in ("dynamic", "static", "targets", "oracle", "hbv_parameters", "latitude", "longitude"):
        np.testing.assert_array_equal(tiny[key], again[key], err_msg=key)  # NaNs compare equal
    assert list(tiny["site_id"]) == list(again["site_id"])
    assert list(tiny["region"]) == list(again["region"])


def test_different_seeds_differ(tiny):
    other = generate_synthland(**{**TINY, "seed": 1})
    assert not np.allclose(tiny["static"], other["static"])
    assert not np.allclose(tiny["dynamic"], other["dynamic"])


def test_shapes_names_and_dtypes(tiny):
    s, t = 16, 1096
    assert tiny["dates"].shape == (t,) and tiny["dates"][0] == np.datetime64("2000-01-01")
    assert tiny["dates"][-1] == np.datetime64("2002-12-31")
    assert tiny["dynamic"].shape == (s, t, len(DYNAMIC_VARIABLES))
    assert tiny["static"].shape == (s, len(STATIC_VARIABLES))
    assert tiny["targets"].shape == tiny["oracle"].shape == (s, t, len(TARGET_VARIABLES))
    for key in ("dynamic", "static", "targets", "oracle", "latitude", "longitude"):
        assert tiny[key].dtype == np.float32, key
    for name in DYNAMIC_VARIABLES + STATIC_VARIABLES + TARGET_VARIABLES:
        assert name in VARIABLES
    assert TARGET_VARIABLES == ["streamflow", "soil_moisture"]
    assert set(tiny["region"]) <= {f"R{i}" for i in range(1, 7)}
    assert np.isfinite(tiny["dynamic"]).all() and np.isfinite(tiny["static"]).all()
    np.testing.assert_array_equal(tiny["latitude"], _static(tiny, "latitude"))


# ------------------------------------------------------------------------------------- attributes
def test_texture_fractions_sum_to_one(medium):
    tex = np.stack([_static(medium, n) for n in ("sand_fraction", "silt_fraction", "clay_fraction")], axis=1)
    assert (tex >= 0).all() and (tex <= 1).all()
    np.testing.assert_allclose(tex.sum(axis=1), 1.0, atol=1e-5)
    assert tex[:, 0].std() > 0.05 and tex[:, 2].std() > 0.05  # soil texture is a real regression target


def test_regions_follow_coarse_grid(medium):
    lat, lon = _static(medium, "latitude"), _static(medium, "longitude")
    north = lat >= 39.0
    for r, n in zip(medium["region"], north):
        assert (int(r[1:]) >= 4) == bool(n)
    assert len(set(medium["region"])) >= 5


def test_climate_indices_come_from_forcings(tiny):
    p = _dyn(tiny, "precipitation").astype(np.float64)
    pet = _dyn(tiny, "potential_evapotranspiration").astype(np.float64)
    np.testing.assert_allclose(_static(tiny, "mean_precipitation"), p.mean(1), rtol=1e-4)
    np.testing.assert_allclose(_static(tiny, "mean_pet"), pet.mean(1), rtol=1e-4)
    np.testing.assert_allclose(_static(tiny, "aridity"), pet.mean(1) / p.mean(1), rtol=1e-4)
    assert ((_static(tiny, "snow_fraction") >= 0) & (_static(tiny, "snow_fraction") <= 1)).all()


# --------------------------------------------------------------------------------------- physics
def test_forcings_are_plausible(tiny):
    assert (_dyn(tiny, "precipitation") >= 0).all()
    assert (_dyn(tiny, "potential_evapotranspiration") >= 0).all()
    assert (_dyn(tiny, "shortwave_radiation") >= 0).all() and _dyn(tiny, "shortwave_radiation").max() < 450
    assert (_dyn(tiny, "vapor_pressure") > 0).all()
    assert (_dyn(tiny, "temperature_max") > _dyn(tiny, "temperature_min")).all()
    wet = (_dyn(tiny, "precipitation") > 0).mean()
    assert 0.1 < wet < 0.7
    # summer is warmer than winter in the northern hemisphere
    month = tiny["dates"].astype("datetime64[M]").astype(int) % 12
    tmax = _dyn(tiny, "temperature_max")
    assert (tmax[:, month == 6].mean(1) > tmax[:, month == 0].mean(1) + 5).all()


def test_targets_nonnegative_and_bounded(tiny):
    q, sm = tiny["targets"][..., 0], tiny["targets"][..., 1]
    assert (q[np.isfinite(q)] >= 0).all() and (tiny["oracle"][..., 0] >= 0).all()
    por = _static(tiny, "soil_porosity")[:, None]
    assert (tiny["oracle"][..., 1] > 0).all() and (tiny["oracle"][..., 1] <= por + 1e-6).all()
    obs = np.isfinite(sm)
    assert (sm[obs] > 0).all() and (sm <= por + 1e-6)[obs].all()


def test_water_balance(tiny):
    dg = tiny["diagnostics"]
    peff = dg["effective_precipitation"]
    storage_end = dg["snowpack"][:, -1] + dg["liquid_water"][:, -1] + dg["soil_storage"][:, -1]
    storage_end = storage_end + dg["upper_zone"][:, -1] + dg["lower_zone"][:, -1]
    residual = peff.sum(1) - dg["generated_runoff"].sum(1) - dg["actual_et"].sum(1) - (storage_end - dg["initial_storage"])
    np.testing.assert_allclose(residual, 0.0, atol=1e-6 * peff.sum(1).max())  # closes exactly
    # long-term: mean streamflow + ET ≈ precipitation (storage change and snow undercatch are small)
    q = tiny["oracle"][..., 0].astype(np.float64).mean(1)
    et = dg["actual_et"].mean(1)
    p = _dyn(tiny, "precipitation").astype(np.float64).mean(1)
    np.testing.assert_allclose(q + et, peff.mean(1), rtol=0.08)
    np.testing.assert_allclose(q + et, p, rtol=0.3)  # SFCF < 1 loses some snow
    assert (q > 0.02 * p).all() and (et > 0.2 * p).all()


def test_snow_only_when_cold(tiny):
    dg = tiny["diagnostics"]
    sp, temp = dg["snowpack"], dg["temperature_mean"]
    grows = np.diff(sp, axis=1) > 1e-9
    assert grows.any()  # some sites do get snow
    assert (temp[:, 1:][grows] < dg["TT"].repeat(sp.shape[1] - 1).reshape(grows.shape)[grows]).all()
    assert (temp[:, 1:][grows] < 2.5).all()
    warm = temp.min(axis=1) > 3.0
    assert (sp[warm] == 0).all()


# ------------------------------------------------------------------------------- observation model
def test_soil_moisture_observed_every_two_to_three_days(tiny):
    frac = np.isfinite(tiny["targets"][..., 1]).mean(axis=1)
    assert ((frac >= 0.33) & (frac <= 0.5)).all(), frac


def test_streamflow_gaps(medium):
    q = medium["targets"][..., 0]
    missing = ~np.isfinite(q)
    assert 0.02 < missing.mean() < 0.4
    # longest missing stretch per site: some sites have long (> 180 day) gaps, most do not
    longest = []
    for row in missing:
        runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], row.astype(int), [0]]))))[::2]
        longest.append(runs.max() if len(runs) else 0)
    longest = np.array(longest)
    assert (longest > 180).any() and (longest > 180).mean() < 0.4


def test_oracle_is_complete_and_close_to_noisy_targets(medium):
    assert np.isfinite(medium["oracle"]).all()
    for k, bound in ((0, 0.9), (1, 0.8)):
        cors = []
        for obs, ora in zip(medium["targets"][..., k], medium["oracle"][..., k]):
            m = np.isfinite(obs)
            cors.append(np.corrcoef(obs[m], ora[m])[0, 1])
        assert np.median(cors) > bound, (TARGET_VARIABLES[k], np.median(cors))


# ---------------------------------------------------------------------------------- learnability
def test_attributes_explain_parameters():
    a = generate_site_attributes(1500, seed=3)
    true = hbv_parameters(a, a["_param_noise"])
    for name, (lo, hi) in HBV_PARAMETER_RANGES.items():
        assert (true[name] >= lo).all() and (true[name] <= hi).all(), name
    assert np.corrcoef(np.log(a["slope"]), true["K0"])[0, 1] >= 0.7
    assert np.corrcoef(a["soil_depth"] * a["soil_porosity"], true["FC"])[0, 1] >= 0.7
    assert np.corrcoef(a["geology_permeability"], true["PERC"])[0, 1] >= 0.5
    assert np.corrcoef(a["forest_fraction"], true["CFMAX"])[0, 1] <= -0.4
    # attributes explain most, but not all, of each parameter's variance
    attr_only = hbv_parameters(a, None)
    for name in HBV_PARAMETERS:
        r2 = np.corrcoef(attr_only[name], true[name])[0, 1] ** 2
        assert 0.3 < r2 < 0.999, (name, r2)


def test_attribute_streams_are_prefix_stable():
    small, big = generate_site_attributes(10, seed=7), generate_site_attributes(40, seed=7)
    for key in ("latitude", "elevation", "sand_fraction", "soil_depth"):
        np.testing.assert_array_equal(small[key], big[key][:10])


# ------------------------------------------------------------------------------------ hbv module
def test_hbv_helpers():
    # FAO-56 example 8: 20 °S, 3 September -> Ra = 32.2 MJ m-2 day-1
    ra = extraterrestrial_radiation(np.array([-20.0]), np.array([246]))
    assert abs(float(ra[0, 0]) - 32.2) < 0.2
    assert (hargreaves_pet(np.array([-30.0]), np.array([-40.0]), np.array([5.0])) == 0).all()
    w = triangular_weights(np.array([1.0, 2.5, 7.0]))
    np.testing.assert_allclose(w.sum(1), 1.0)
    assert w[0, 0] == pytest.approx(1.0) and (w[2] > 0).all()
    # a dry, warm, empty catchment produces nothing; parameters outside the ranges are clipped
    z = np.zeros((2, 30))
    params = {k: np.full(2, (lo + hi) / 2) for k, (lo, hi) in HBV_PARAMETER_RANGES.items()}
    out = run_hbv(z, z + 20.0, z + 3.0, {**params, "K0": np.array([5.0, 5.0])}, warmup_days=10)
    assert np.isfinite(out["streamflow"]).all() and (out["streamflow"] >= 0).all()
    with pytest.raises(ValueError, match="missing parameters"):
        run_hbv(z, z, z, {"TT": 0.0})


# --------------------------------------------------------------------------------------- builder
def test_builder_round_trip(tmp_path, tiny):
    b = SynthLand(config_name="tiny", cache_dir=str(tmp_path))
    b.download_and_prepare()
    ds = b.as_dataset(split="all")
    assert ds.num_rows == 16
    f = ds.features
    assert f["dynamic"].shape == (None, len(DYNAMIC_VARIABLES)) and f["dynamic"].dtype == "float32"
    assert f["targets"].shape == (None, len(TARGET_VARIABLES)) and f["targets"].dtype == "float32"
    assert f["oracle"].shape == (None, len(TARGET_VARIABLES)) and f["oracle"].dtype == "float32"
    assert f["static"].length == len(STATIC_VARIABLES) and f["static"].feature.dtype == "float32"
    assert str(b.config.version) != "0.0.0"

    row = ds.with_format("numpy")[3]
    assert row["dynamic"].dtype == np.float32
    np.testing.assert_array_equal(row["dynamic"], tiny["dynamic"][3])
    np.testing.assert_array_equal(row["targets"], tiny["targets"][3])  # NaNs survive
    np.testing.assert_array_equal(row["oracle"], tiny["oracle"][3])
    np.testing.assert_array_equal(row["static"], tiny["static"][3])
    np.testing.assert_array_equal(row["dates"], tiny["dates"])
    assert row["site_id"] == tiny["site_id"][3] and row["region"] == tiny["region"][3]
    assert list(row["dynamic_variables"]) == DYNAMIC_VARIABLES
    assert list(row["static_variables"]) == STATIC_VARIABLES
    assert list(row["target_variables"]) == TARGET_VARIABLES

    desc = json.loads(b.info.description)
    units = {v["name"]: v["unit"] for v in desc["dynamic_variables"] + desc["static_variables"] + desc["target_variables"]}
    assert units["precipitation"] == "mm/day" and units["streamflow"] == "mm/day"
    assert units["soil_moisture"] == VARIABLES["soil_moisture"].unit
    assert desc["config"]["n_sites"] == 16


def test_builder_overrides_and_configs(tmp_path):
    b = SynthLand(config_name="tiny", cache_dir=str(tmp_path), seed=4, n_sites=5)
    b.download_and_prepare()
    ds = b.as_dataset(split="all").with_format("numpy")
    ref = generate_synthland(n_sites=5, start=TINY["start"], end=TINY["end"], seed=4)
    assert ds.num_rows == 5
    np.testing.assert_array_equal(ds["static"], ref["static"])
    assert b.config_id != "tiny"
    sizes = {c.name: c for c in SynthLand.BUILDER_CONFIGS}
    assert set(sizes) == {"tiny", "default", "large"}
    assert sizes["default"].n_sites >= 200 and sizes["large"].n_sites >= 1000
    years = {n: (np.datetime64(c.end) - np.datetime64(c.start)).astype(int) / 365.25 for n, c in sizes.items()}
    assert years["default"] >= 10 and years["large"] >= 30


def test_a_data_dir_for_synthland_is_refused(tmp_path):
    """SynthLand reads no files: `--dataset synthland --data-dir X` silently generated the sites and ignored X."""
    from stefaland_hf.data import load_site_dataset

    with pytest.raises(ValueError, match="SynthLand generates its sites and reads no files"):
        load_site_dataset("synthland", config_name="tiny", data_dir=str(tmp_path), cache_dir=str(tmp_path / "cache"))
