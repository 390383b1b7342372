"""Streamflow from a user's own tables: the function, the transformers pipeline, and the checks on bad tables."""

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY_DYNAMIC, tiny_config

import stefaland_hf
from stefaland_hf import StefaLandForTimeSeriesRegression
from stefaland_hf.evaluation import predict_sites
from stefaland_hf.experiments.tables import TableError, predict_streamflow, site_dataset, forcing_tables, attribute_table

WARMUP, SEQ_LEN = 10, 40


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return StefaLandForTimeSeriesRegression(tiny_config(head_mode="direct")).eval()


def forcings(days=100, seed=0, start="2001-01-01", drop=()):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "date": pd.date_range(start, periods=days, freq="D"),
        "precipitation": rng.gamma(0.5, 6.0, days),
        "temperature_max": 15 + 8 * rng.standard_normal(days),
        "temperature_min": 5 + 8 * rng.standard_normal(days),
        "shortwave_radiation": 150 + 50 * rng.random(days),
    })
    return frame.drop(columns=list(drop))


ATTRIBUTES = {"latitude": 44.6, "longitude": -70.1, "area": 573.6, "elevation": 300.0}


def test_one_basin_table_in_table_out_as_the_dataset_path_predicts(model):
    table = predict_streamflow(model, forcings(), ATTRIBUTES, warmup=WARMUP, seq_len=SEQ_LEN)
    assert list(table.columns) == ["date", "streamflow"] and len(table) == 100 - WARMUP
    assert table["date"].iloc[0] == pd.Timestamp("2001-01-11") and table["streamflow"].notna().all()
    # the same numbers as whole-period prediction of the same basin as a site dataset
    config = model.config
    dataset = site_dataset(forcing_tables(forcings()), attribute_table(ATTRIBUTES, ["basin"]), config.dynamic_variables, config.static_variables)
    direct = predict_sites(model, dataset, seq_len=SEQ_LEN, warmup=WARMUP, context_before_period=False,
                           dynamic_variables=config.dynamic_variables, static_variables=config.static_variables, target_variables=["streamflow"])
    np.testing.assert_allclose(table["streamflow"].to_numpy(), direct["predictions"][0, WARMUP:, 0], rtol=1e-6)
    report = table.attrs["report"]
    assert report["masked"]["basin"] == ["slope", "sand_fraction", "silt_fraction", "clay_fraction"]
    assert report["units"]["streamflow"] == "mm/day"


def test_several_basins_through_basin_id_and_missing_inputs_become_mask_tokens(model):
    two = pd.concat([forcings(seed=1).assign(basin_id="A"), forcings(seed=2, days=80, start="2003-05-01").assign(basin_id="B")])
    attributes = pd.DataFrame([{**ATTRIBUTES, "basin_id": "B"}, {**ATTRIBUTES, "basin_id": "A", "slope": 12.0}])
    table = predict_streamflow(model, two, attributes, warmup=WARMUP, seq_len=SEQ_LEN)
    assert list(table.columns) == ["date", "basin_id", "streamflow"]
    assert table.groupby("basin_id").size().to_dict() == {"A": 90, "B": 70}
    alone = predict_streamflow(model, forcings(seed=2, days=80, start="2003-05-01"), ATTRIBUTES, warmup=WARMUP, seq_len=SEQ_LEN)
    np.testing.assert_allclose(table[table.basin_id == "B"]["streamflow"].to_numpy(), alone["streamflow"].to_numpy(), rtol=1e-6)
    # a missing forcing (no column, or all NaN) is masked and reported; the prediction stays finite
    without = predict_streamflow(model, forcings(drop=["shortwave_radiation"]), ATTRIBUTES, warmup=WARMUP, seq_len=SEQ_LEN)
    assert "shortwave_radiation" in without.attrs["report"]["masked"]["basin"] and without["streamflow"].notna().all()
    assert not np.allclose(without["streamflow"], predict_streamflow(model, forcings(), ATTRIBUTES, warmup=WARMUP, seq_len=SEQ_LEN)["streamflow"])


def test_the_transformers_pipeline_gives_the_same_table(model):
    from transformers import pipeline

    pipe = pipeline("streamflow-prediction", model=model)
    assert isinstance(pipe, stefaland_hf.StreamflowPredictionPipeline)
    expected = stefaland_hf.predict_streamflow(model, forcings(), ATTRIBUTES, warmup=WARMUP, seq_len=SEQ_LEN)
    pd.testing.assert_frame_equal(pipe(forcings(), attributes=ATTRIBUTES, warmup=WARMUP, seq_len=SEQ_LEN), expected)


def test_a_saved_model_folder_loads_by_path(model, tmp_path):
    from transformers import pipeline

    model.save_pretrained(tmp_path / "m")
    by_path = pipeline("streamflow-prediction", model=str(tmp_path / "m"))
    expected = predict_streamflow(model, forcings(), ATTRIBUTES, warmup=WARMUP, seq_len=SEQ_LEN)
    pd.testing.assert_frame_equal(by_path(forcings(), attributes=ATTRIBUTES, warmup=WARMUP, seq_len=SEQ_LEN), expected)
    pd.testing.assert_frame_equal(predict_streamflow(str(tmp_path / "m"), forcings(), ATTRIBUTES, warmup=WARMUP, seq_len=SEQ_LEN), expected)


def _gapped():
    frame = forcings()
    return frame.drop(index=[50])


@pytest.mark.parametrize("table, attributes, message", [
    (forcings().drop(columns="date"), ATTRIBUTES, "no 'date' column and no DatetimeIndex"),
    (_gapped(), ATTRIBUTES, r"consecutive days: 2001-02-21 follows 2001-02-19"),
    (pd.concat([forcings()[:60], forcings()[59:]]), ATTRIBUTES, "date 2001-03-01 appears twice"),
    (forcings().rename(columns={"precipitation": "precip"}), ATTRIBUTES, r"unknown column 'precip'; did you mean 'precipitation'"),
    (forcings().assign(temperature_max=lambda f: f.temperature_max + 273.15), ATTRIBUTES, r"'temperature_max' = \d{3}.* outside -90..60 degC.*look like kelvin"),
    (forcings(days=400).assign(precipitation=lambda f: f.precipitation / 1000), ATTRIBUTES, r"never exceeds .* over 400 days: expected mm/day"),
    (forcings().assign(precipitation=lambda f: f.precipitation - 5), ATTRIBUTES, r"'precipitation' = -.* outside 0..1825"),
    (forcings().assign(precipitation=lambda f: f.precipitation.where(f.index != 3, np.inf)), ATTRIBUTES, "only NaN means missing"),
    (forcings(days=8), ATTRIBUTES, r"8 days, fewer than warmup=10 \+ 1"),
    (forcings(), pd.DataFrame([ATTRIBUTES, ATTRIBUTES]), "2 rows and no 'basin_id' column"),
    (forcings(), {**ATTRIBUTES, "aridty": 1.0}, r"unknown column 'aridty'; did you mean 'aridity'"),
    (forcings().rename(columns={"date": "Date"}), ATTRIBUTES, r"no 'date' column .* rename 'Date' with rename=\{'Date': 'date'\}"),
    (forcings(days=100).assign(date=pd.date_range("2001-01-01", periods=100, freq="h")), ATTRIBUTES,
     r"rows are 0 days 01:00:00 apart .* expected one row per day; aggregate sub-daily data"),
    (forcings(days=24).assign(date=pd.date_range("2001-01-01", periods=24, freq="MS")), ATTRIBUTES, r"rows are 3\d days apart .* expected daily data"),
    (forcings().assign(precipitation=lambda f: f.precipitation.astype(object).where(f.index != 3, "12,5")), ATTRIBUTES,
     r"column 'precipitation' holds '12,5' at row 2001-01-04: expected a number"),
    (forcings(days=400).assign(vapor_pressure=1.2), ATTRIBUTES, r"'vapor_pressure' never exceeds 1.2 over 400 days: expected Pa \(hPa or kPa"),
    (forcings().assign(temperature_max=lambda f: f.temperature_max * 1.8 + 32), ATTRIBUTES, r"look like degrees Fahrenheit"),
    (forcings(), {**ATTRIBUTES, "sand_fraction": 40.0}, r"'sand_fraction' = 40 .* outside 0..1 .*a percentage\? divide by 100"),
    (forcings(), {**ATTRIBUTES, "elevation": -999.0}, r"'elevation' = -999 .* outside -450..8850 m"),
])
def test_bad_tables_are_refused_naming_table_column_and_expectation(model, table, attributes, message):
    with pytest.raises(TableError, match=message):
        predict_streamflow(model, table, attributes, warmup=WARMUP, seq_len=SEQ_LEN)


def test_a_rename_of_a_column_neither_table_has_is_refused(model):
    with pytest.raises(TableError, match=r"rename names columns \['prcp'\] that neither table has"):
        predict_streamflow(model, forcings(), ATTRIBUTES, warmup=WARMUP, seq_len=SEQ_LEN, rename={"prcp": "precipitation"})


def test_stefaland_predict_reads_table_files_and_writes_the_table_report_and_hydrographs(model, tmp_path, capsys):
    import json

    from stefaland_cli import main

    model.save_pretrained(tmp_path / "model")
    two = pd.concat([forcings(seed=1).assign(basin_id="A"), forcings(seed=2).assign(basin_id="B")])
    two.rename(columns={"precipitation": "prcp"}).to_csv(tmp_path / "forcings.csv", index=False)
    pd.DataFrame([{**ATTRIBUTES, "basin_id": "A"}, {**ATTRIBUTES, "basin_id": "B", "area": 86.4}]).to_parquet(tmp_path / "attributes.parquet")
    argv = ["predict", "--model", str(tmp_path / "model"), "--forcings", str(tmp_path / "forcings.csv"), "--attributes",
            str(tmp_path / "attributes.parquet"), "--rename", "prcp=precipitation", "--warmup", "10", "--seq-len", "40", "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    table = pd.read_csv(tmp_path / "out" / "predictions.csv")
    expected = predict_streamflow(model, two, pd.read_parquet(tmp_path / "attributes.parquet"), warmup=WARMUP, seq_len=SEQ_LEN)
    np.testing.assert_allclose(table["streamflow"], expected["streamflow"], atol=1e-4)
    b = table[table.basin_id == "B"]
    np.testing.assert_allclose(b["streamflow_m3_per_s"], b["streamflow"], atol=2e-4)  # 86.4 km2: 1 mm/day is 1 m3/s
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["masked"]["A"] == ["slope", "sand_fraction", "silt_fraction", "clay_fraction"] and report["warmup_days"] == 10
    assert "in_sample" not in table.columns and report["in_sample_days"] is None  # a model without a finetuning record
    assert sorted(p.name for p in (tmp_path / "out" / "hydrographs").iterdir()) == ["A.png", "B.png"]
    assert main(argv) == 2 and "not empty; pass --overwrite" in capsys.readouterr().err
    assert main(["predict", "--model", "m", "--forcings", "f.csv", "--data-dir", ".", "--out", "o"]) == 2
    assert "--forcings: predicts from tables; drop --data-dir" in capsys.readouterr().err
    assert main(["predict", "--model", "m", "--out", "o"]) == 2
    assert "give --forcings FILE (tables), or --data-dir, --basins and --period" in capsys.readouterr().err


def test_errors_name_the_file_and_nan_days_are_masked_and_reported(model, tmp_path):
    """A table given as a file is named in its errors; NaN days are masked (a finite prediction) and counted."""
    _gapped().to_csv(tmp_path / "gapped.csv", index=False)
    with pytest.raises(TableError, match=r"forcings .*gapped.csv: dates must be consecutive days"):
        predict_streamflow(model, tmp_path / "gapped.csv", ATTRIBUTES, warmup=WARMUP, seq_len=SEQ_LEN)
    pd.DataFrame([ATTRIBUTES, ATTRIBUTES]).to_csv(tmp_path / "two_rows.csv", index=False)
    with pytest.raises(TableError, match=r"attributes .*two_rows.csv: 2 rows and no 'basin_id' column"):
        predict_streamflow(model, forcings(), tmp_path / "two_rows.csv", warmup=WARMUP, seq_len=SEQ_LEN)
    holes = forcings().assign(precipitation=lambda f: f.precipitation.where(~f.index.isin([20, 21, 22, 60, 61])))
    holes.assign(basin_id="A").to_csv(tmp_path / "holes.csv", index=False)
    table = predict_streamflow(model, tmp_path / "holes.csv", ATTRIBUTES, warmup=WARMUP, seq_len=SEQ_LEN)  # one basin by id, one row
    assert table["streamflow"].notna().all() and set(table["basin_id"]) == {"A"}
    assert table.attrs["report"]["missing_days"]["A"] == {"precipitation": 5}
    assert "precipitation" not in table.attrs["report"]["masked"]["A"]


def test_an_adapter_folder_loads_in_the_pipeline_with_the_windows_it_was_finetuned_with(tmp_path):
    """transformers.pipeline built the adapter's base from the base's config (no targets) and failed; it now loads the
    folder as predict_streamflow does: on the base finetuning.json names, refused on another encoder."""
    import json

    from peft import get_peft_model
    from transformers import pipeline

    from stefaland_hf import ResConnConfig, StefaLandForPretraining
    from stefaland_hf.checkpoint_binding import backbone_fingerprint
    from stefaland_hf.training.finetune import FINETUNING_FILE

    torch.manual_seed(0)
    StefaLandForPretraining(tiny_config(target_variables=None, target_mean=None, target_std=None)).save_pretrained(tmp_path / "base")
    base = StefaLandForTimeSeriesRegression.from_pretrained(tmp_path / "base", target_variables=["streamflow"])
    adapter = get_peft_model(base, ResConnConfig(target_mean=[1.0], target_std=[2.0], head_hidden_size=12)).eval()
    adapter.save_pretrained(tmp_path / "adapter")
    record = {"head_mode": "resconn", "target_variables": ["streamflow"], "seq_len": SEQ_LEN, "warmup": WARMUP,
              "base_model": {"name": str(tmp_path / "base"), "backbone_sha256": backbone_fingerprint(base.stefaland)}}
    (tmp_path / "adapter" / FINETUNING_FILE).write_text(json.dumps(record))
    expected = predict_streamflow(adapter, forcings(), ATTRIBUTES, warmup=WARMUP, seq_len=SEQ_LEN)
    pipe = pipeline("streamflow-prediction", model=str(tmp_path / "adapter"))
    pd.testing.assert_frame_equal(pipe(forcings(), attributes=ATTRIBUTES), expected)  # warm-up and windows of the record
    pd.testing.assert_frame_equal(predict_streamflow(str(tmp_path / "adapter"), forcings(), ATTRIBUTES), expected)
    (tmp_path / "adapter" / FINETUNING_FILE).write_text(json.dumps({**record, "base_model": {**record["base_model"], "backbone_sha256": "0" * 64}}))
    with pytest.raises(ValueError, match="is not the one the adapter"):
        pipeline("streamflow-prediction", model=str(tmp_path / "adapter"))


def _adapter_run(tmp_path):
    """A resConn adapter in a run folder (adapter/ with finetuning.json) on a saved tiny base, as finetuning writes it."""
    import json

    from peft import get_peft_model

    from stefaland_hf import ResConnConfig, StefaLandForPretraining
    from stefaland_hf.checkpoint_binding import backbone_fingerprint
    from stefaland_hf.training.finetune import FINETUNING_FILE

    torch.manual_seed(0)
    StefaLandForPretraining(tiny_config(target_variables=None, target_mean=None, target_std=None)).save_pretrained(tmp_path / "base")
    base = StefaLandForTimeSeriesRegression.from_pretrained(tmp_path / "base", target_variables=["streamflow"])
    adapter = get_peft_model(base, ResConnConfig(target_mean=[1.0], target_std=[2.0], head_hidden_size=12)).eval()
    adapter.save_pretrained(tmp_path / "run" / "adapter")
    record = {"head_mode": "resconn", "target_variables": ["streamflow"], "seq_len": SEQ_LEN, "warmup": WARMUP,
              "base_model": {"name": str(tmp_path / "base"), "backbone_sha256": backbone_fingerprint(base.stefaland)},
              "data": {"builder": "camels_us", "config": "daymet",
                       "trained_on": {"site_ids": ["basin"], "periods": [["2001-01-01", "2001-02-28"], ["2001-03-01", "2001-03-31"]]}}}
    (tmp_path / "run" / "adapter" / FINETUNING_FILE).write_text(json.dumps(record))
    return tmp_path / "run" / "adapter"


def test_an_exported_adapter_predicts_the_same_by_folder_and_by_short_name(tmp_path, monkeypatch):
    """`stefaland export`: one complete folder, no PEFT or base needed; its card states the benchmark's held-out skill,
    its finetuning.json still flags in-sample days, and a short name reaches it (pipeline included)."""
    import json

    from transformers import pipeline

    from stefaland_hf.experiments.export import export_complete_model
    from stefaland_hf.hub.zoo_cache import install_model

    adapter = _adapter_run(tmp_path)
    folds = [{"models": {"StefaLand resConn": {"summary": {"nse": nse}, "n_test_sites_observed": 20}}} for nse in (0.5, 0.6)]
    (tmp_path / "results.json").write_text(json.dumps({"kind": "pub", "n_basins": 40, "folds": folds}))
    out = export_complete_model(adapter, tmp_path / "stefaland-mine", benchmark=tmp_path / "results.json",
                                benchmark_command="stefaland benchmark pub ...")
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "benchmark_skill.json", "config.json", "finetuning.json", "model.safetensors"]
    card = (out / "README.md").read_text()
    assert "median NSE 0.550 ± 0.050 (s.e. over 2 folds; per fold 0.500 / 0.600) over 40 held-out basins of 40, ungauged basins (PUB)" in card
    assert "1 basins of `camels_us` (config `daymet`" in card
    expected = predict_streamflow(str(adapter), forcings(), ATTRIBUTES)
    by_folder = predict_streamflow(str(out), forcings(), ATTRIBUTES)
    pd.testing.assert_frame_equal(by_folder, expected)
    from stefaland_hf.experiments.tables import in_sample, load_model

    flags = in_sample(by_folder, load_model(str(out))[1])  # basin-days of its training basins and periods
    assert flags is not None and flags.sum() == in_sample(expected, load_model(str(adapter))[1]).sum() == 80
    monkeypatch.setenv("STEFALAND_WEIGHTS", str(tmp_path))
    install_model("stefaland-mine", out)  # as `import stefaland_hf` installs the zoo's models into the HF cache
    pd.testing.assert_frame_equal(predict_streamflow("stefaland-mine", forcings(), ATTRIBUTES), expected)
    pd.testing.assert_frame_equal(pipeline("streamflow-prediction", model="stefaland-mine")(forcings(), attributes=ATTRIBUTES), expected)
    with pytest.raises(ValueError, match="a pretrained encoder has no trained head"):  # by name too, never a random head
        predict_streamflow("stefaland-conus", forcings(), ATTRIBUTES)
    with pytest.raises(FileNotFoundError, match="stefaland-mine"):  # a typo: the closest names
        predict_streamflow("stefaland-mien", forcings(), ATTRIBUTES)
    with pytest.raises(FileExistsError, match="overwrite"):
        export_complete_model(adapter, out)
    with pytest.raises(ValueError, match="'LSTM SL': not in the benchmark's results \\(models: \\['StefaLand resConn'\\]\\)"):
        export_complete_model(adapter, tmp_path / "other", benchmark=tmp_path / "results.json", benchmark_model="LSTM SL")
    assert not (tmp_path / "other").exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_table_whose_maxima_equal_its_minima_is_reported_as_another_product(model):
    """The CAMELS-US Maurer and NLDAS files carry tmax == tmin; a model trained on Daymet's should say so."""
    from stefaland_hf.experiments.tables import report_lines

    flat = forcings().assign(temperature_min=lambda f: f.temperature_max)
    report = predict_streamflow(model, flat, ATTRIBUTES, warmup=WARMUP, seq_len=SEQ_LEN).attrs["report"]
    assert report["product_hints"]["basin"] == [
        "temperature_max equals temperature_min on 100% of days, as in the CAMELS-US Maurer and NLDAS files: not daily maxima and minima"]
    report.update(trained_on_dataset="camels_us", trained_on_forcing_product="daymet")
    lines = report_lines(report)
    assert any(line.startswith("another forcing product than the model's (daymet)? temperature_max equals") for line in lines)
    assert predict_streamflow(model, forcings(), ATTRIBUTES, warmup=WARMUP, seq_len=SEQ_LEN).attrs["report"]["product_hints"] == {"basin": []}
