"""The Caravan builder on a small Caravan-shaped release written here: canonical names and units, bad files named,
and ``stefaland predict`` and streamflow finetuning reading it as they read CAMELS-US."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import CAMELS_US, needs_camels, tiny_config

from stefaland_hf.data import load_site_dataset
from stefaland_hf.data.caravan import DYNAMIC_VARIABLES, Caravan, daylength
from stefaland_hf.data.errors import DataFormatError

START, DAYS = "2000-01-01", 1096  # 2000-01-01 .. 2002-12-31
BASINS = {"camels": ["camels_01013500", "camels_01022500"], "camelsgb": ["camelsgb_10002"]}
ERA5_BANDS = ["snow_depth_water_equivalent", "surface_net_solar_radiation", "surface_net_thermal_radiation", "surface_pressure",
              "temperature_2m", "dewpoint_temperature_2m", "u_component_of_wind_10m", "v_component_of_wind_10m",
              *(f"volumetric_soil_water_layer_{k}" for k in range(1, 5))]


def _series(seed: int, source: str) -> pd.DataFrame:
    """A basin's daily table with Caravan's columns (the camelsgb source in the later naming of potential evaporation)."""
    rng = np.random.default_rng(seed)
    season = np.sin(2 * np.pi * np.arange(DAYS) / 365.25)
    frame = pd.DataFrame({"date": pd.date_range(START, periods=DAYS, freq="D").strftime("%Y-%m-%d")})
    for band in ERA5_BANDS:
        for aggregate in ("mean", "min", "max"):
            frame[f"{band}_{aggregate}"] = 0.3 + 0.1 * rng.random(DAYS)  # within any range; checked where read
    frame["temperature_2m_mean"] = 8 + 10 * season
    frame["temperature_2m_max"], frame["temperature_2m_min"] = frame["temperature_2m_mean"] + 5, frame["temperature_2m_mean"] - 5
    frame["dewpoint_temperature_2m_mean"] = frame["temperature_2m_mean"] - 3
    frame.loc[0, "dewpoint_temperature_2m_mean"], frame.loc[1, "dewpoint_temperature_2m_mean"] = 0.0, 10.0
    frame["u_component_of_wind_10m_mean"], frame["v_component_of_wind_10m_mean"] = 2 * season, -season
    frame["snow_depth_water_equivalent_mean"] = np.clip(-40 * season, 0, None)
    frame["total_precipitation_sum"] = rng.gamma(0.6, 5.0, DAYS)
    pet = 2.5 + 1.5 * season
    pet[10] = -0.07  # ERA5-Land's condensation day
    if source == "camelsgb":
        frame["potential_evaporation_sum_ERA5_LAND"], frame["potential_evaporation_sum_FAO_PENMAN_MONTEITH"] = pet, 0.8 * np.abs(pet)
    else:
        frame["potential_evaporation_sum"] = pet
    flow = 0.5 + frame["total_precipitation_sum"].rolling(10, min_periods=1).mean()
    frame["streamflow"] = flow.where(np.arange(DAYS) % 7 != 3)  # gauge gaps: empty cells
    if source == "camelsgb":
        frame["streamflow"] = np.nan  # a basin without a streamflow record
        frame["eobs"] = 1.0  # a column Caravan's standard set lacks
    return frame.round(4)


def _attributes(source: str, ids: list[str]) -> dict[str, pd.DataFrame]:
    n = len(ids)
    suffixed = source == "camelsgb"  # the later naming of the climate indices
    climate = {"gauge_id": ids, "p_mean": [2.4] * n, "frac_snow": [0.1] * n, "moisture_index": [-0.08] * n, "seasonality": [1.4] * n,
               "high_prec_freq": [0.0375] * n, "high_prec_dur": [1.1] * n, "low_prec_freq": [0.5769] * n, "low_prec_dur": [3.68] * n}
    if suffixed:
        climate.update(pet_mean_ERA5_LAND=[3.4] * n, pet_mean_FAO_PM=[2.6] * n, aridity_ERA5_LAND=[1.41] * n, aridity_FAO_PM=[1.08] * n)
    else:
        climate.update(pet_mean=[3.4] * n, aridity=[1.41] * n)
    return {
        "other": pd.DataFrame({"gauge_id": ids, "gauge_lat": [44.6 + i for i in range(n)], "gauge_lon": [-70.1] * n,
                               "gauge_name": [f"River {i}, at Town" for i in range(n)], "country": ["X"] * n, "area": [573.6 + i for i in range(n)]}),
        "caravan": pd.DataFrame(climate),
        "hydroatlas": pd.DataFrame({"gauge_id": ids, "ele_mt_sav": [253.8] * n, "slp_dg_sav": [35.7] * n, "snd_pc_sav": [40.0] * n,
                                    "slt_pc_sav": [38.0] * n, "cly_pc_sav": [22.0] * n, "soc_th_sav": [81.0] * n, "for_pc_sse": [29.6] * n,
                                    "urb_pc_sse": [5.0] * n, "gla_pc_sse": [0.0] * n, "prm_pc_sse": [0.0] * n, "ppd_pk_sav": [325.7] * n,
                                    "ero_kh_sav": [334.99] * n, "tmp_dc_syr": [83.0] * n, "cls_cl_smj": [7] * n, "ari_ix_sav": [110] * n}),
    }


def make_caravan(root: Path) -> Path:
    """A Caravan-shaped release: 2 CAMELS basins and a CAMELS-GB basin without streamflow, 2000-2002."""
    for source, ids in BASINS.items():
        (root / "timeseries" / "csv" / source).mkdir(parents=True)
        (root / "attributes" / source).mkdir(parents=True)
        for seed, gauge in enumerate(ids):
            _series(seed, source).to_csv(root / "timeseries" / "csv" / source / f"{gauge}.csv", index=False, na_rep="")
        for kind, table in _attributes(source, ids).items():
            table.to_csv(root / "attributes" / source / f"attributes_{kind}_{source}.csv", index=False)
    return root


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return make_caravan(tmp_path_factory.mktemp("caravan") / "Caravan")


def _build(data_dir, cache_dir, **config):
    builder = Caravan(data_dir=str(data_dir), cache_dir=str(cache_dir), **config)
    builder.download_and_prepare()
    return builder, builder.as_dataset(split="all")


def test_caravan_in_canonical_names_and_units(release, tmp_path):
    builder, ds = _build(release, tmp_path)
    assert ds["site_id"] == [*BASINS["camels"], *BASINS["camelsgb"]] and ds["region"] == ["camels", "camels", "camelsgb"]
    assert ds["gauged"] == [True, True, False] and builder.ungauged_basins == ["camelsgb_10002"]
    assert ds[0]["dynamic_variables"] == list(DYNAMIC_VARIABLES) and builder.unread_columns == {"eobs"}
    raw = pd.read_csv(release / "timeseries" / "csv" / "camels" / "camels_01013500.csv")
    dynamic, variables = np.asarray(ds[0]["dynamic"]), list(DYNAMIC_VARIABLES)
    column = {name: dynamic[:, variables.index(name)] for name in variables}
    np.testing.assert_allclose(column["precipitation"], raw["total_precipitation_sum"], rtol=1e-6)
    np.testing.assert_allclose(column["temperature_max"], raw["temperature_2m_max"], rtol=1e-6)
    np.testing.assert_allclose(column["snow_water_equivalent"], raw["snow_depth_water_equivalent_mean"], rtol=1e-6)
    # saturation vapour pressure over water at the dewpoint: 611 Pa at 0 degC, 1228 Pa at 10 degC (psychrometric tables)
    np.testing.assert_allclose(column["vapor_pressure"][:2], [611.0, 1228.0], rtol=3e-3)
    assert column["potential_evapotranspiration"][10] == 0.0 and builder.negative_pet_days == 3  # one day in each file
    np.testing.assert_allclose(column["potential_evapotranspiration"][11:20], raw["potential_evaporation_sum"][11:20], rtol=1e-6)
    # 44.6 N, sun's centre on the horizon: cos(h) = -tan(44.6) tan(-+23.44), h = 64.69 / 115.31 degrees: 8.63 h on the
    # winter solstice (2000-12-21), 15.37 h on the summer one (2000-06-21)
    np.testing.assert_allclose(column["daylength"][[355, 172]] / 3600, [8.63, 15.37], atol=0.02)
    targets = np.asarray(ds[0]["targets"])[:, 0]
    assert np.isnan(targets[3::7]).all() and np.isfinite(np.delete(targets, np.s_[3::7])).all()
    np.testing.assert_allclose(targets[:3], raw["streamflow"][:3], rtol=1e-6)
    assert np.isnan(np.asarray(ds[2]["targets"])).all()
    static = dict(zip(ds[0]["static_variables"], ds[0]["static"]))
    expected = {"latitude": 44.6, "area": 573.6, "mean_pet": 3.4, "aridity": 1.41, "elevation": 253.8,
                "slope": np.tan(np.radians(3.57)) * 1000,  # 35.7 tenths of a degree: 62.4 m/km
                "high_precipitation_frequency": 0.0375 * 365.25, "low_precipitation_frequency": 0.5769 * 365.25,
                "sand_fraction_soilgrids": 0.40, "forest_fraction": 0.296, "soil_erosion": 0.33499, "mean_temperature": 8.3}
    np.testing.assert_allclose([static[k] for k in expected], list(expected.values()), rtol=1e-5)
    assert static["slope"] == pytest.approx(62.4, abs=0.05) and static["high_precipitation_frequency"] == pytest.approx(13.70, abs=0.01)
    assert ds[1]["latitude"] == pytest.approx(45.6) and "snow_fraction" not in ds[0]["static_variables"]
    assert "surface_net_solar_radiation" in builder.info.description and "no albedo" in builder.info.description
    assert load_site_dataset("caravan", data_dir=str(release), cache_dir=str(tmp_path))["site_id"] == ds["site_id"]  # by name, cached


def test_the_pet_choice_picks_its_columns_and_indices_and_is_the_config(release, tmp_path):
    builder, ds = _build(release, tmp_path, pet="fao_penman_monteith", sources=["camelsgb"])
    assert builder.config.name == "fao_penman_monteith" and ds["site_id"] == ["camelsgb_10002"]
    raw = pd.read_csv(release / "timeseries" / "csv" / "camelsgb" / "camelsgb_10002.csv")
    pet = np.asarray(ds[0]["dynamic"])[:, list(DYNAMIC_VARIABLES).index("potential_evapotranspiration")]
    np.testing.assert_allclose(pet, raw["potential_evaporation_sum_FAO_PENMAN_MONTEITH"], rtol=1e-6)
    assert dict(zip(ds[0]["static_variables"], ds[0]["static"]))["mean_pet"] == pytest.approx(2.6)
    # the camels files and tables here are of a release before the FAO Penman-Monteith series
    with pytest.raises(DataFormatError, match=r"attributes_caravan_camels.csv: no column pet_mean_FAO_PM \(mean_pet\)"):
        _build(release, tmp_path, pet="fao_penman_monteith", sources=["camels"])
    with pytest.raises(DataFormatError, match=r"camels_01013500.csv: no column potential_evaporation_sum_FAO_PENMAN_MONTEITH"):
        _build(release, tmp_path, pet="fao_penman_monteith", sources=["camels"], attributes=["elevation"])


def _edited(release, tmp_path, edit) -> Path:
    import shutil

    copy = tmp_path / "Caravan"
    shutil.copytree(release, copy)
    edit(copy)
    return copy


def _edit_series(name, change):
    def edit(root):
        path = root / "timeseries" / "csv" / "camels" / f"{name}.csv"
        path.write_text(change(path.read_text()))
    return edit


def _frame_edit(change):
    def edit(text):
        frame = pd.read_csv(pd.io.common.StringIO(text), dtype=str, keep_default_na=False)
        return change(frame).to_csv(index=False)
    return edit


def _set_cell(row, column, value):
    def change(frame):
        frame.loc[row, column] = value
        return frame
    return _frame_edit(change)


def _edit_attributes(kind, change):
    def edit(root):
        path = root / "attributes" / "camels" / f"attributes_{kind}_camels.csv"
        change(path)
    return edit


@pytest.mark.parametrize("edit, message", [
    (_edit_series("camels_01022500", lambda t: t.rstrip("\n").rsplit(",", 3)[0] + "\n"), r"camels_01022500.csv, line 1097: expected \d+ columns, found \d+ \(truncated last line\?\)"),
    (_edit_series("camels_01022500", lambda t: t.replace("2001-03-01,", "2001-03-02,", 1)), r"camels_01022500.csv, line 427: dates must be consecutive days: 2001-03-02 follows 2001-02-28"),
    (_edit_series("camels_01013500", _set_cell(4, "total_precipitation_sum", "1,2")), r"camels_01013500.csv, line 6: expected \d+ columns, found \d+"),
    (_edit_series("camels_01013500", _set_cell(4, "temperature_2m_min", "n/a")), r"camels_01013500.csv, line 6: column temperature_2m_min: expected a number, found 'n/a'"),
    (_edit_series("camels_01013500", _set_cell(7, "total_precipitation_sum", "-5")),
     r"camels_01013500.csv, line 9: column total_precipitation_sum: precipitation = -5 mm/day is outside its physical range 0..1825"),
    (_edit_series("camels_01013500", _frame_edit(lambda f: f.drop(columns="temperature_2m_max"))),
     r"camels_01013500.csv: no column temperature_2m_max \(temperature_max\); missing_inputs='nan' reads it as missing"),
    (_edit_attributes("hydroatlas", lambda p: p.unlink()), r"attributes_hydroatlas_camels.csv: attribute table not found"),
    (_edit_attributes("other", lambda p: p.write_text("\n".join(p.read_text().splitlines()[:2]) + "\n")), r"attributes_other_camels.csv: no row for basins \['camels_01022500'\]"),
    (_edit_attributes("other", lambda p: p.write_text(p.read_text().replace("573.6", "-5"))), r"attributes_other_camels.csv, line 2: column area: area = -5 km2 is outside its physical range"),
])
def test_bad_files_are_refused_naming_file_line_and_column(release, tmp_path, edit, message):
    with pytest.raises(DataFormatError, match=message):
        _build(_edited(release, tmp_path, edit), tmp_path / "cache")


def test_missing_inputs_nan_reads_absent_tables_and_columns_as_missing(release, tmp_path, caplog):
    def edit(root):
        (root / "attributes" / "camels" / "attributes_hydroatlas_camels.csv").unlink()
        _edit_series("camels_01013500", _frame_edit(lambda f: f.drop(columns="dewpoint_temperature_2m_mean")))(root)

    _, ds = _build(_edited(release, tmp_path, edit), tmp_path / "cache", missing_inputs="nan", sources=["camels"])
    static = dict(zip(ds[0]["static_variables"], ds[0]["static"]))
    assert np.isnan(static["elevation"]) and static["area"] == pytest.approx(573.6)
    vapor = np.asarray(ds["dynamic"][0])[:, list(DYNAMIC_VARIABLES).index("vapor_pressure")]
    assert np.isnan(vapor).all() and np.isfinite(np.asarray(ds["dynamic"][1])[:, list(DYNAMIC_VARIABLES).index("vapor_pressure")]).all()
    assert "attributes_hydroatlas_camels.csv: attribute table not found" in caplog.text and "no column dewpoint_temperature_2m_mean" in caplog.text


@needs_camels
def test_computed_daylength_is_within_minutes_of_daymets():
    """The docs' claim: within 4.1 minutes of Daymet's dayl over the 67 CAMELS-US basins of the shared data."""
    worst = 0.0
    for path in sorted((CAMELS_US / "basin_mean_forcing" / "daymet").glob("*/*_forcing_leap.txt")):
        latitude = float(path.read_text().split("\n", 1)[0])
        table = pd.read_csv(path, sep=r"\s+", skiprows=3)
        dates = pd.to_datetime(dict(year=table["Year"], month=table["Mnth"], day=table["Day"])).to_numpy()
        worst = max(worst, float(np.abs(daylength(latitude, dates) - table["dayl(s)"].to_numpy()).max()))
    assert 60 < worst < 4.1 * 60


def test_predict_and_streamflow_finetuning_read_caravan_like_camels(release, tmp_path, capsys):
    from stefaland_cli import main
    from stefaland_hf import StefaLandForTimeSeriesRegression
    from stefaland_hf.training.finetune import FINETUNING_FILE

    torch.manual_seed(0)
    StefaLandForTimeSeriesRegression(tiny_config(head_mode="direct")).save_pretrained(tmp_path / "model")
    (tmp_path / "basins.txt").write_text("\n".join(b for ids in BASINS.values() for b in ids) + "\n")
    argv = ["predict", "--dataset", "caravan", "--data-dir", str(release), "--basins", str(tmp_path / "basins.txt"),
            "--cache-dir", str(tmp_path / "cache"), "--no-plots"]
    windows = ["--seq-len", "60", "--warmup", "20"]
    assert main([*argv, *windows, "--adapter", str(tmp_path / "model"), "--period", "2002-01-01,2002-12-31", "--out", str(tmp_path / "out")]) == 0
    assert "predicting with caravan's era5_land forcings" in capsys.readouterr().out
    summary = pd.read_csv(tmp_path / "out" / "summary.csv").set_index("site_id")
    assert summary["gauged"].to_dict() == {"camels_01013500": True, "camels_01022500": True, "camelsgb_10002": False}
    raw = pd.read_csv(release / "timeseries" / "csv" / "camels" / "camels_01022500.csv", parse_dates=["date"])
    observed = raw.loc[raw["date"].dt.year == 2002, "streamflow"].notna().sum()
    assert summary.loc["camels_01022500", "observed_days"] == observed and summary.loc["camelsgb_10002", "observed_days"] == 0
    frame = pd.read_csv(tmp_path / "out" / "timeseries" / "camels_01022500.csv", comment="#")
    assert len(frame) == 365 and frame["streamflow_predicted_mm_per_day"].notna().all()
    assert main([*argv, *windows, "--adapter", str(tmp_path / "model"), "--period", "2002-01-01,2002-12-31", "--ungauged",
                 str(tmp_path / "basins.txt"), "--out", str(tmp_path / "o2")]) == 2
    assert "--ungauged: apply to --dataset camels_us, not caravan" in capsys.readouterr().err

    spec = importlib.util.spec_from_file_location("finetune_streamflow_example", Path(__file__).resolve().parents[1] / "examples" / "finetune_streamflow.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.main(["--dataset", "caravan", "--data-dir", str(release), "--cache-dir", str(tmp_path / "cache"), "--split", "temporal",
                  "--train-period", "2000-01-01", "2001-06-30", "--test-period", "2001-07-01", "2002-12-31", "--head-mode", "direct",
                  "--max-steps", "2", "--eval-steps", "1", "--seq-len", "60", "--warmup", "20", "--per-device-train-batch-size", "4",
                  "--head-hidden-size", "8", "--output-dir", str(tmp_path / "ft"), "--disable-tqdm", "true"])
    record = json.loads((tmp_path / "ft" / "model" / FINETUNING_FILE).read_text())
    assert record["data"]["builder"] == "caravan" and record["data"]["config"] == "era5_land"
    assert record["data"]["trained_on"]["site_ids"] == BASINS["camels"]  # the gauged basins
    capsys.readouterr()
    # the finetuned model's own windows and forcing product (its record): no warning, and its training days flagged
    assert main([*argv, "--adapter", str(tmp_path / "ft" / "model"), "--period", "2001-01-01,2001-12-31", "--out", str(tmp_path / "out_ft")]) == 0
    printed = capsys.readouterr().out
    assert "forcing product" not in printed and "finetuned on part of this period" in printed
