"""``stefaland predict``: a finetuned adapter run over basins with and without a gauge.

A tiny pretraining and resConn finetuning on a synthetic two-basin CAMELS layout (plus one ungauged
basin from an extra folder, as in the unpacked camels_us_ungauged archive); prediction must reproduce
the finetuning's own test-period predictions, write CSVs with units and provenance and hydrographs,
and refuse a base other than the adapter's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_camels_ungauged import NEW, _extra_folder
from test_camels_us import make_camels
from test_finetune import _finetune_args, _tiny_zoo_config

from stefaland_cli import main
from stefaland_hf.data import load_site_dataset
from stefaland_hf.data.splits import temporal_split
from stefaland_hf.experiments.prediction import load_trained_model, parse_period
from stefaland_hf.training.finetune import FINETUNING_FILE, finetune
from stefaland_hf.training.pretrain import PretrainArguments, config_for_dataset, pretrain

N_DAYS = 400  # 1980-01-01 .. 1981-02-03
TEST_PERIOD = ("1980-11-01", "1981-01-31")


def _seasonal(forcing: Path) -> None:
    """Replace the synthetic file's ramps (which leave the physical ranges after a few months) by seasons."""
    lines = forcing.read_text().splitlines(keepends=True)
    for i in range(4, len(lines)):
        date, _ = lines[i].split("\t", 1)
        season = np.sin(2 * np.pi * (i - 4) / 365.25)
        values = [36000 + 7000 * season, 3 + 3 * np.cos(i), 200 + 100 * season, 0.0, 12 + 10 * season, 2 + 10 * season, 800 + 400 * season]
        lines[i] = date + "\t" + "\t".join(f"{v:.2f}" for v in values) + "\n"
    forcing.write_text("".join(lines))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("camels")
    raw, extra = make_camels(root / "raw", N_DAYS), _extra_folder(root / "raw", root / "ungauged", N_DAYS)
    for forcing in [*raw.glob("basin_mean_forcing/*/*/*.txt"), *extra.glob("basin_mean_forcing/*/*/*.txt")]:
        _seasonal(forcing)
    dataset = load_site_dataset("camels_us", data_dir=str(raw), cache_dir=str(root / "cache"), end_date="1981-02-03")
    split = temporal_split(2, ("1980-01-01", "1980-06-30"), ("1980-07-01", "1980-10-31"), TEST_PERIOD, site_ids=list(dataset["site_id"]))
    config = config_for_dataset(_tiny_zoo_config(), dataset)
    bases = []
    for seed in (0, 1):
        out = root / f"pre{seed}"
        pretrain(config, dataset, split.sites("train"), split.period("train"),
                 PretrainArguments(output_dir=str(out), num_train_epochs=1, samples_per_epoch=16, per_device_train_batch_size=8, seq_len=60, seed=seed))
        bases.append(out / "model")
    report = finetune(bases[0], dataset, split, _finetune_args(root / "ft", "resconn"))
    basins = root / "basins.txt"
    basins.write_text("\n".join(list(dataset["site_id"]) + [NEW]) + "\n")
    return {"root": root, "raw": raw, "extra": extra, "bases": bases, "report": report, "basins": basins, "adapter": root / "ft" / "adapter"}


def _predict(trained, out, *extra_args):
    argv = ["predict", "--adapter", str(trained["adapter"]), "--data-dir", str(trained["raw"]), "--extra-data-dir", str(trained["extra"]),
            "--ungauged", str(trained["extra"] / "basin_list.txt"), "--basins", str(trained["basins"]), "--period", ",".join(TEST_PERIOD),
            "--cache-dir", str(trained["root"] / "cache"), "--out", str(out), *extra_args]
    return main(argv)


def test_finetuning_records_the_windows_and_the_base(trained):
    record = json.loads((trained["adapter"] / FINETUNING_FILE).read_text())
    assert record["seq_len"] == 60 and record["warmup"] == 20 and record["head_mode"] == "resconn"
    assert record["base_model"]["name"] == str(trained["bases"][0]) and len(record["base_model"]["backbone_sha256"]) == 64


def test_prediction_reproduces_the_finetuning_evaluation_and_covers_the_ungauged_basin(trained, tmp_path):
    assert _predict(trained, tmp_path / "out") == 0
    evaluation = trained["report"]["evaluation"]
    for i, site in enumerate(evaluation["site_ids"]):
        frame = pd.read_csv(tmp_path / "out" / "timeseries" / f"{site}.csv", comment="#")
        np.testing.assert_allclose(frame["streamflow_predicted_mm_per_day"], evaluation["predictions"][i, :, 0], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(frame["streamflow_observed_mm_per_day"], evaluation["observations"][i, :, 0], rtol=1e-4, equal_nan=True)
    ungauged = tmp_path / "out" / "timeseries" / f"{NEW}.csv"
    header = [line for line in ungauged.read_text().splitlines() if line.startswith("#")]
    assert f"# basin: {NEW}" in header and "# variable: streamflow (mm/day), daily" in header and "# observations in the period: none" in header
    frame = pd.read_csv(ungauged, comment="#")
    assert list(frame.columns) == ["date", "streamflow_predicted_mm_per_day"]
    assert frame["date"].iloc[0] == TEST_PERIOD[0] and frame["date"].iloc[-1] == TEST_PERIOD[1]
    assert np.isfinite(frame["streamflow_predicted_mm_per_day"]).all() and (frame["streamflow_predicted_mm_per_day"] >= 0).all()
    summary = pd.read_csv(tmp_path / "out" / "summary.csv", dtype={"site_id": str})
    assert dict(zip(summary["site_id"], summary["gauged"])) == {**{s: True for s in evaluation["site_ids"]}, NEW: False}
    assert sorted(p.name for p in (tmp_path / "out" / "hydrographs").iterdir()) == sorted(f"{s}.png" for s in summary["site_id"])


def test_an_adapter_on_another_base_is_refused(trained, tmp_path, capsys):
    assert _predict(trained, tmp_path / "out", "--base", str(trained["bases"][1])) == 2
    assert "is not the one the adapter" in capsys.readouterr().err
    assert not (tmp_path / "out" / "timeseries").exists()


def test_a_complete_model_needs_no_base(trained):
    with pytest.raises(ValueError, match="uses no base"):
        load_trained_model(trained["bases"][0], base=trained["bases"][1])  # config.json: a complete model
    with pytest.raises(FileNotFoundError, match="neither adapter_config.json"):
        load_trained_model(trained["root"] / "ft")


@pytest.mark.parametrize(
    "values, match",
    [
        (["1980-01-01"], "START,END"), (["1980-02-01,1980-01-01"], "after the end"), (["1980-13-01", "1981-01-01"], "not an ISO date"),
        (["2001-10,2002-09"], "a month or year alone is refused, not read as its first day"),  # was 2001-10-01..2002-09-01
        (["2001,2002"], "a month or year alone is refused"),
    ],
)
def test_bad_periods(values, match):
    with pytest.raises(ValueError, match=match):
        parse_period(values)
    assert parse_period(["1980-01-01", "1980-02-01"]) == parse_period(["1980-01-01,1980-02-01"]) == ("1980-01-01", "1980-02-01")


def test_a_pretrained_encoder_is_not_a_predictor(trained):
    with pytest.raises(ValueError, match="no trained head"):
        load_trained_model(trained["bases"][0])


def test_finetuning_records_the_data_it_saw(trained):
    data = json.loads((trained["adapter"] / FINETUNING_FILE).read_text())["data"]
    assert data["builder"] == "camels_us" and data["config"] == "daymet"
    assert data["trained_on"]["periods"] == [["1980-01-01", "1980-06-30"], ["1980-07-01", "1980-10-31"]]
    assert len(data["trained_on"]["site_ids"]) == 2


def _header(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.startswith("#")]


def test_in_sample_days_clipped_periods_and_gauged_basins_without_observations_are_said(trained, tmp_path, capsys):
    """Predicting over the training period scored in-sample basin-days without a flag; a period reaching past the
    record was reported as requested; a gauged basin without observations in the period was labelled ungauged."""
    assert _predict(trained, tmp_path / "in", "--period", "1979-06-01,1980-12-31") == 0
    out = capsys.readouterr().out
    assert "finetuned on part of this period" in out and "reaches beyond the record; predicted 1980-01-01 to 1980-12-31" in out
    summary = pd.read_csv(tmp_path / "in" / "summary.csv", dtype={"site_id": str}).set_index("site_id")
    training = json.loads((trained["adapter"] / FINETUNING_FILE).read_text())["data"]["trained_on"]["site_ids"]
    days = (np.datetime64("1980-10-31") - np.datetime64("1980-01-01")).astype(int) + 1  # train + val periods within it
    assert summary.loc[training, "in_sample_days"].tolist() == [days] * len(training) and summary.loc[NEW, "in_sample_days"] == 0
    header = _header(tmp_path / "in" / "timeseries" / f"{training[0]}.csv")
    assert "# period: 1980-01-01 to 1980-12-31 (requested 1979-06-01 to 1980-12-31, clipped to the record)" in header
    assert f"# in-sample days (training or validation basin and period: not an independent test): {days}" in header
    assert "# forcing: daymet" in header

    import shutil

    raw = tmp_path / "raw"  # the first basin's gauge records nothing in December 1980
    shutil.copytree(trained["raw"], raw)
    (flow,) = raw.glob(f"usgs_streamflow/*/{training[0]}_streamflow_qc.txt")
    lines = [line if " 1980 12 " not in line else line.rsplit(" ", 2)[0] + " -999.00 M\n" for line in flow.read_text().splitlines(keepends=True)]
    flow.write_text("".join(lines))
    trained = {**trained, "raw": raw, "root": tmp_path}
    assert _predict(trained, tmp_path / "gap", "--period", "1980-12-01,1980-12-31") == 0
    summary = pd.read_csv(tmp_path / "gap" / "summary.csv", dtype={"site_id": str}).set_index("site_id")
    assert summary.loc[training[0], "gauged"] and not summary.loc[training[0], "observed_in_period"]
    assert summary.loc[training[1], "observed_in_period"] and not summary.loc[NEW, "gauged"]
    assert "# gauged: yes" in _header(tmp_path / "gap" / "timeseries" / f"{training[0]}.csv")
    assert "1 ungauged, 1 gauged without observations in the period" in capsys.readouterr().out


def test_prediction_uses_the_recorded_forcing_product(trained, tmp_path, capsys):
    """An adapter finetuned on Maurer forcings was run on Daymet: the product was neither recorded nor used."""
    import shutil

    adapter = tmp_path / "adapter"
    shutil.copytree(trained["adapter"], adapter)
    record = json.loads((adapter / FINETUNING_FILE).read_text())
    record["data"]["config"] = "maurer"
    (adapter / FINETUNING_FILE).write_text(json.dumps(record))
    argv = ["predict", "--adapter", str(adapter), "--data-dir", str(trained["raw"]), "--basins", str(trained["basins"]),
            "--period", ",".join(TEST_PERIOD), "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    assert main(argv) != 0
    assert "maurer" in capsys.readouterr().err  # the synthetic layout has Daymet files only: no silent fallback to them


def test_summary_scores_observed_days_and_sparse_observations_drawn_as_points(tmp_path, monkeypatch):
    """summary.csv gave NSE alone; a hydrograph drew sparse observations as a line, which shows none of them."""
    import matplotlib.figure

    from stefaland_hf.experiments.prediction import write_predictions

    days = 100
    observed = np.full((3, days, 1), np.nan)
    observed[0, :, 0] = 1.0 + np.sin(np.arange(days) / 7.0) ** 2 + np.arange(days) / 50.0  # every day observed
    observed[1, ::5, 0] = observed[0, ::5, 0]  # a field campaign: every fifth day
    predicted = np.nan_to_num(observed, nan=2.0) * 1.1
    result = {"dates": np.arange("2001-01-01", days, dtype="datetime64[D]"), "target_variables": ["streamflow"], "site_ids": ["A", "B", "C"],
              "predictions": predicted, "observations": observed, "gauged": np.array([[True], [True], [False]])}
    drawn = {}

    def record(figure, path, **options):
        ax = figure.axes[0]
        drawn[Path(path).stem] = (ax.get_title(loc="left"), [(line.get_linestyle(), line.get_marker()) for line in ax.lines])

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", record)
    write_predictions(result, tmp_path, {"model": "m"})
    summary = pd.read_csv(tmp_path / "summary.csv").set_index("site_id")
    assert summary["observed_days"].to_dict() == {"A": 100, "B": 20, "C": 0}
    o = observed[0, :, 0]  # predicted = 1.1 x observed: bias 0.1 mean(o), r = 1, alpha = beta = 1.1, FHV +10 %
    nse = 1 - np.sum((0.1 * o) ** 2) / np.sum((o - o.mean()) ** 2)
    np.testing.assert_allclose(summary.loc["A", ["nse", "kge", "bias", "fhv"]].astype(float),
                               [nse, 1 - np.sqrt(0.1**2 + 0.1**2), 0.1 * o.mean(), 10.0], atol=1e-4)
    assert np.isnan(summary.loc["B", "fhv"]) and np.isfinite(summary.loc["B", "nse"])  # 20 days: no top 2 % segment
    assert summary.loc["C", ["nse", "kge", "bias", "fhv"]].isna().all() and not summary.loc["C", "gauged"]
    assert drawn["A"][1][0] == ("-", "None") and "observed on 100 of 100 days" in drawn["A"][0]
    assert drawn["B"][1][0] == ("None", "o") and "observed on 20 of 100 days" in drawn["B"][0]
    assert "ungauged: no streamflow record" in drawn["C"][0] and len(drawn["C"][1]) == 1  # the prediction alone
    header = _header(tmp_path / "timeseries" / "B.csv")
    assert "# observations in the period: 20 of 100 days" in header
