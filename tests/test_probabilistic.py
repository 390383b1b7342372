"""Distributional heads (CMAL, quantiles), MC dropout and their scores: from the config to the benchmark's tables."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import WITHOUT_PACKAGE, tiny_config, tiny_inputs
from peft import PeftModel, get_peft_model

from stefaland_cli import build_parser
from stefaland_hf import StefaLandConfig, StefaLandForTimeSeriesRegression, StefaLandModel
from stefaland_hf.configuration_stefaland import DISTRIBUTION_HEAD_MODES, check_output_distribution
from stefaland_hf.evaluation import mc_dropout_forward
from stefaland_hf.experiments.benchmark import benchmark_models, benchmark_preset, finetune_arguments, run_benchmark
from stefaland_hf.modeling_stefaland import StefaLandForStaticRegression
from stefaland_hf.peft_adapters import ResConnConfig
from stefaland_hf.training.arguments import FinetuneArguments

REPO = Path(__file__).resolve().parents[1]
TARGETS = dict(target_variables=["streamflow"], target_mean=[1.0], target_std=[1.5])


# ------------------------------------------------------------------------------------------------
# bad input: refused before anything trains
# ------------------------------------------------------------------------------------------------
BAD_SETTINGS = [
    ({"output_distribution": "cmall"}, r"output_distribution must be one of .*got 'cmall'; did you mean 'cmal'\?"),
    ({"output_distribution": "Quantiles"}, r"output_distribution must be one of .*got 'Quantiles'; did you mean 'quantile'\?"),
    ({"output_distribution": "gmm"}, r"output_distribution must be one of .*\(GMM and UMAL heads are not implemented\)"),
    ({"output_distribution": "cmal", "mixture_components": 0}, r"mixture_components must be an integer >= 1.*got 0"),
    ({"output_distribution": "quantile", "quantiles": [0.5, 0.05]}, r"quantiles must be strictly increasing.*\[0\.05, 0\.5\]"),
    ({"output_distribution": "quantile", "quantiles": [0.0, 0.5, 1.0]}, r"quantiles must lie strictly between 0 and 1, got 0\.0"),
    ({"output_distribution": "quantile", "quantiles": [0.5, 1.5]}, r"quantiles must lie strictly between 0 and 1, got 1\.5"),
    ({"output_distribution": "quantile", "quantiles": [0.6, 0.9]}, r"quantiles \[0\.6, 0\.9\] must bracket 0\.5"),
    ({"output_distribution": "cmal", "output_transform": "softplus"}, r"output_distribution='cmal' with output_transform='softplus'"),
]


@pytest.mark.parametrize("settings, message", BAD_SETTINGS)
def test_bad_distribution_settings_are_refused_by_every_owner(tmp_path, settings, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**settings)
    with pytest.raises(ValueError, match="FinetuneArguments." + message):
        FinetuneArguments(output_dir=str(tmp_path), **settings)
    with pytest.raises(ValueError, match="ResConnConfig." + message):
        ResConnConfig(**settings)


def test_a_distribution_needs_a_head_with_an_output_layer_and_a_point_head_for_mc_dropout(tmp_path):
    with pytest.raises(ValueError, match=r"output_distribution='cmal' needs a head with an output layer .*not head_mode='hbv'"):
        check_output_distribution("cmal", 3, None, "hbv")
    with pytest.raises(ValueError, match="static-regression head predicts one value per site"):
        StefaLandForStaticRegression(tiny_config(target_variables=["sand_fraction"], target_mean=[0.4], target_std=[0.1], output_distribution="cmal"))
    with pytest.raises(ValueError, match="MC dropout scores a point head's dropout ensemble"):
        FinetuneArguments(output_dir=str(tmp_path), output_distribution="cmal", mc_dropout_passes=10)
    with pytest.raises(ValueError, match="head_mode='linear_probe' .* every pass would be the same"):
        FinetuneArguments(output_dir=str(tmp_path), head_mode="linear_probe", mc_dropout_passes=10)
    with pytest.raises(ValueError, match=r"mc_dropout_passes=1: expected 0 \(none\) or at least 2"):
        FinetuneArguments(output_dir=str(tmp_path), mc_dropout_passes=1)


def test_the_benchmark_refuses_bad_distributions_and_variants_before_training(capsys):
    for override, message in (("finetune.output_distribution=cmall", "did you mean 'cmal'"),
                              ("finetune.mixture_components=0", "mixture_components must be an integer >= 1")):
        with pytest.raises(ValueError, match=message):
            run_benchmark("pub", None, Path("unused"), 5, 0, benchmark_preset("smoke", overrides=[override]), models={"LSTM SL": "direct"})
    cmal_everywhere = benchmark_preset("smoke", overrides=["finetune.output_distribution=cmal"])
    assert benchmark_models(["direct"], cmal_everywhere) == {"LSTM SL, CMAL": "direct"}  # the label says what trains
    assert finetune_arguments(cmal_everywhere, Path("unused"), "direct", 0, Path("cache")).output_distribution == "cmal"
    with pytest.raises(ValueError, match=r"--models direct and direct\+cmal: the same model here \(LSTM SL, CMAL\)"):
        benchmark_models(["direct", "direct+cmal"], cmal_everywhere)
    with pytest.raises(ValueError, match="MC dropout scores a point model's dropout ensemble, but --set finetune.output_distribution=cmal"):
        run_benchmark("pub", None, Path("unused"), 5, 0, cmal_everywhere, models={"LSTM SL, MC dropout": "direct+mc_dropout"})
    with pytest.raises(ValueError, match="the run sets mc_dropout_passes itself"):
        benchmark_preset("smoke", overrides=["finetune.mc_dropout_passes=9"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["benchmark", "pub", "--out", "o", "--models", "direct+cmall"])
    assert "did you mean 'direct+cmal'?" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# heads
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", DISTRIBUTION_HEAD_MODES)
def test_a_distribution_widens_only_the_output_layer_of_every_head(mode):
    """The point head's parameters keep their names, order and shapes (seeded point runs repeat exactly); a distribution
    changes the output layer's width only: 4 x mixture_components (CMAL) or len(quantiles) values per target."""
    shapes = {}
    for distribution in ("none", "cmal", "quantile"):
        model = StefaLandForTimeSeriesRegression(tiny_config(head_mode=mode, output_distribution=distribution, mixture_components=2))
        shapes[distribution] = [(name, tuple(p.shape)) for name, p in model.named_parameters()]
    names = [name for name, _ in shapes["none"]]
    assert [name for name, _ in shapes["cmal"]] == names == [name for name, _ in shapes["quantile"]]
    for distribution, width in (("cmal", 8), ("quantile", 5)):
        changed = {name: shape for (name, shape), (_, point) in zip(shapes[distribution], shapes["none"]) if shape != point}
        assert set(changed) == {"head.output.weight", "head.output.bias"}
        assert changed["head.output.bias"] == (width,)


@pytest.mark.parametrize("distribution", ["cmal", "quantile"])
@pytest.mark.parametrize("mode", DISTRIBUTION_HEAD_MODES)
def test_every_head_mode_predicts_a_distribution(mode, distribution):
    torch.manual_seed(0)
    model = StefaLandForTimeSeriesRegression(tiny_config(head_mode=mode, output_distribution=distribution))
    x, c = tiny_inputs()
    labels = torch.rand(3, 40, 1) * 3
    labels[0, :5] = float("nan")  # unobserved days carry no loss and no NaN gradient
    out = model(x, c, labels=labels)
    out.loss.backward()
    assert torch.isfinite(out.loss) and all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert out.distribution_parameters.shape == (3, 40, 1, 12 if distribution == "cmal" else 5)
    model.eval()
    with torch.no_grad():
        d = model.predict_distribution(x, c, quantiles=[0.05, 0.25, 0.75, 0.95])
    assert d.quantiles.shape == (3, 40, 1, 4) and (d.quantiles.diff(dim=-1) >= 0).all()
    assert (d.quantiles >= 0).all()  # streamflow >= 0: the clamp output range puts the mass below 0 at 0
    assert ((d.median >= d.quantiles[..., 1]) & (d.median <= d.quantiles[..., 2])).all()
    if distribution == "cmal":
        assert torch.equal(d.mean, model(x, c).prediction)
    else:
        assert d.mean is None and torch.equal(d.median, model(x, c).prediction)  # a quantile head's prediction is its median


def test_cmal_output_is_the_mixture_in_normalized_space_mapped_through_the_targets():
    """prediction = the exact mean of the clamped mixture in physical units; quantiles = mapped quantiles; with
    output_transform none the plain mixture mean."""
    from stefaland_hf.output_distributions import AsymmetricLaplaceMixture

    x, c = tiny_inputs()
    for transform in ("clamp", "none"):
        torch.manual_seed(0)
        model = StefaLandForTimeSeriesRegression(tiny_config(head_mode="direct", output_distribution="cmal", output_transform=transform)).eval()
        out = model(x, c, quantiles=[0.1, 0.9])
        mixture = AsymmetricLaplaceMixture.from_parameters(out.distribution_parameters.double())
        low = torch.tensor((0.0 - 1.0) / 1.5 if transform == "clamp" else -torch.inf, dtype=torch.float64)
        mean = 1.0 + 1.5 * mixture.clipped_mean(low, torch.tensor(torch.inf, dtype=torch.float64))
        assert torch.allclose(out.prediction.double(), mean, atol=1e-5)
        quantiles = (1.0 + 1.5 * mixture.quantile([0.1, 0.9]))
        quantiles = quantiles.clamp(min=0) if transform == "clamp" else quantiles
        assert torch.allclose(out.quantiles.double(), quantiles, atol=1e-4)


def test_asking_a_point_or_quantile_head_for_what_it_does_not_know_is_refused():
    x, c = tiny_inputs()
    point = StefaLandForTimeSeriesRegression(tiny_config(head_mode="direct"))
    with pytest.raises(ValueError, match="predict_distribution: this model's head predicts one value per day"):
        point.predict_distribution(x, c)
    with pytest.raises(ValueError, match="quantiles: this head predicts one value per day"):
        point(x, c, quantiles=[0.5])
    quantile = StefaLandForTimeSeriesRegression(tiny_config(head_mode="direct", output_distribution="quantile", quantiles=[0.1, 0.5, 0.9]))
    with pytest.raises(ValueError, match=r"quantiles: \[0\.05\] reach beyond the levels this quantile head was trained on"):
        quantile.predict_distribution(x, c, quantiles=[0.05])
    with pytest.raises(ValueError, match=r"expected levels strictly between 0 and 1, got \[1\.0\]"):
        quantile(x, c, quantiles=[1.0])


def test_a_saved_distributional_model_reloads_and_refuses_to_load_as_a_point_model(tmp_path):
    torch.manual_seed(0)
    model = StefaLandForTimeSeriesRegression(tiny_config(head_mode="direct", output_distribution="cmal", mixture_components=2)).eval()
    x, c = tiny_inputs()
    model.save_pretrained(tmp_path / "cmal")
    loaded = StefaLandForTimeSeriesRegression.from_pretrained(tmp_path / "cmal").eval()
    assert torch.equal(loaded(x, c).distribution_parameters, model(x, c).distribution_parameters)
    with pytest.raises(ValueError, match=r"output_distribution: the checkpoint .* was saved with \"cmal\", but .* has \"none\""):
        StefaLandForTimeSeriesRegression.from_pretrained(tmp_path / "cmal", output_distribution="none")
    with pytest.raises(ValueError, match=r"mixture_components: the checkpoint .* was saved with 2"):
        StefaLandForTimeSeriesRegression.from_pretrained(tmp_path / "cmal", mixture_components=3)
    # remote code: the folder carries output_distributions.py and loads without the package
    assert (tmp_path / "cmal" / "output_distributions.py").is_file()
    torch.save({"x": x, "c": c, "q": model(x, c, quantiles=[0.05, 0.95]).quantiles}, tmp_path / "io.pt")
    code = WITHOUT_PACKAGE + textwrap.dedent(
        f"""
        import torch
        from transformers import AutoModelForTimeSeriesPrediction
        io = torch.load({str(tmp_path / "io.pt")!r})
        model = AutoModelForTimeSeriesPrediction.from_pretrained({str(tmp_path / "cmal")!r}, trust_remote_code=True).eval()
        assert torch.equal(model(io["x"], io["c"], quantiles=[0.05, 0.95]).quantiles, io["q"])
        assert "stefaland_hf" not in sys.modules
        print("REMOTE-CMAL-OK")
        """
    )
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert "REMOTE-CMAL-OK" in result.stdout, result.stderr[-3000:]


def test_a_distributional_peft_adapter_saves_reloads_and_is_bound_to_its_distribution(tmp_path):
    StefaLandModel(tiny_config()).save_pretrained(tmp_path / "base")
    base = lambda: StefaLandForTimeSeriesRegression.from_pretrained(tmp_path / "base", **TARGETS).eval()  # noqa: E731
    adapter = ResConnConfig(**TARGETS, head_hidden_size=12, output_distribution="quantile", quantiles=[0.1, 0.5, 0.9])
    torch.manual_seed(0)
    model = get_peft_model(base(), adapter).eval()
    x, c = tiny_inputs()
    expected = model.predict_distribution(x, c, quantiles=[0.1, 0.9])
    assert model.head_distribution() == ("quantile", (0.1, 0.5, 0.9))
    model.save_pretrained(tmp_path / "adapter")
    loaded = PeftModel.from_pretrained(base(), tmp_path / "adapter").eval()
    assert torch.equal(loaded.predict_distribution(x, c, quantiles=[0.1, 0.9]).quantiles, expected.quantiles)
    with loaded.disable_adapter():
        assert loaded.head_distribution() == ("none", None)  # the base model's own (point) head runs
    config_file = tmp_path / "adapter" / "adapter_config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "quantiles": [0.2, 0.5, 0.8]}))
    with pytest.raises(ValueError, match=r"quantiles is \[0\.2, 0\.5, 0\.8\] in .*saved with \[0\.1, 0\.5, 0\.9\]"):
        PeftModel.from_pretrained(base(), tmp_path / "adapter")


def test_model_cards_say_what_a_distributional_head_returns():
    from stefaland_hf.hub.cards import output_text

    assert "CMAL distribution per day" in output_text(tiny_config(output_distribution="cmal"))
    assert "quantiles per day" in output_text(ResConnConfig(output_distribution="quantile"))
    assert "distribution" not in output_text(tiny_config())


def test_mc_dropout_passes_differ_and_leave_the_model_in_eval_mode():
    torch.manual_seed(0)
    model = StefaLandForTimeSeriesRegression(tiny_config(head_mode="direct", head_dropout=0.5)).eval()
    x, c = tiny_inputs()
    members = mc_dropout_forward(4)(model, {"x_dynamic": x, "x_static": c})
    assert members.shape == (3, 40, 1, 4) and not torch.equal(members[..., 0], members[..., 1])
    assert not model.training
    probe = StefaLandForTimeSeriesRegression(tiny_config(head_mode="linear_probe")).eval()
    with pytest.raises(ValueError, match="MC dropout: this model has no active dropout"):
        mc_dropout_forward(4)(probe, {"x_dynamic": x, "x_static": c})
    assert not probe.training


# ------------------------------------------------------------------------------------------------
# the benchmark: point, CMAL and MC dropout variants of one head, scored and paired; the figures
# ------------------------------------------------------------------------------------------------
def test_benchmark_scores_a_point_a_cmal_and_an_mc_dropout_model_and_draws_the_figures(tmp_path):
    from stefaland_hf.data import load_site_dataset

    dataset = load_site_dataset("synthland", config_name="tiny", cache_dir=str(tmp_path / "cache"))
    preset = benchmark_preset("smoke", "synthland", ["benchmark.train_period=2000-01-01,2001-12-31", "benchmark.test_period=2002-01-01,2002-12-31",
                                                     "benchmark.mc_dropout_passes=5"])
    models = {"LSTM SL": "direct", "LSTM SL, CMAL": "direct+cmal", "LSTM SL, MC dropout": "direct+mc_dropout"}
    out = tmp_path / "run"
    results = run_benchmark("pub", dataset, out, folds=2, seed=0, preset=preset, models=models, dataset_name="synthland")
    fold = results["folds"][0]["models"]
    point, cmal, mc = (fold[label] for label in models)
    for entry in (cmal, mc):
        assert set(next(iter(entry["per_basin"].values()))) >= {"nse", "crps", "coverage_50", "coverage_90", "width_50", "width_90"}
    basin, values = next(iter(point["per_basin"].items()))  # a point model: CRPS = mean absolute error, no interval
    assert "crps" in values and "coverage_90" not in values and cmal["summary"]["coverage_90"] is not None
    with np.load(out / "folds" / "fold_0" / "direct+cmal" / "test_quantiles.npz") as series:  # the bands the figures draw
        assert series["quantiles"].shape[-1] == 4 and (np.diff(np.nan_to_num(series["quantiles"]), axis=-1) >= 0).all()
    assert 0 <= mc["summary"]["coverage_90"] <= 1 and mc["trained_with"] == "direct" and mc["steps"] == point["steps"]
    assert cmal["reliability"]["levels"][0] == pytest.approx(0.01) and len(cmal["reliability"]["fraction_below"]) == 50
    # the MC dropout entry scores the point model trained once in its folder, with 5 passes
    assert not (out / "folds" / "fold_0" / "direct+mc_dropout").exists()
    assert (out / "folds" / "fold_0" / "direct" / "test_quantiles_mc_dropout.npz").is_file()
    assert json.loads((out / "folds" / "fold_0" / "direct" / "report.json").read_text())["mc_dropout"]["passes"] == 5
    summary = (out / "summary.md").read_text()
    assert "| model | CRPS | coverage 50 % | coverage 90 % | width 50 % | width 90 % |" in summary
    assert "| LSTM SL, CMAL | " in summary and "Δ CRPS vs its MC dropout" in summary
    assert "MC dropout: 5 passes of the trained point model" in results["protocol"]
    figures = tmp_path / "figures"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "probabilistic_figures.py"), "--run", str(out), "--out", str(figures)],
                          capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert {p.name for p in figures.iterdir()} >= {"hydrograph_bands.png", "reliability.png"}


# ------------------------------------------------------------------------------------------------
# prediction: quantile columns in the tables, the pipeline, stefaland predict and the per-basin CSVs
# ------------------------------------------------------------------------------------------------
def test_tables_pipeline_and_stefaland_predict_write_quantile_columns(tmp_path):
    from test_tables import ATTRIBUTES, forcings
    from transformers import pipeline

    from stefaland_cli import main
    from stefaland_hf.experiments.tables import predict_streamflow

    torch.manual_seed(0)
    model = StefaLandForTimeSeriesRegression(tiny_config(head_mode="direct", output_distribution="cmal")).eval()
    table = predict_streamflow(model, forcings(), ATTRIBUTES, warmup=10, seq_len=40)
    assert list(table.columns) == ["date", "streamflow", *(f"streamflow_q{q}" for q in ("0.05", "0.25", "0.5", "0.75", "0.95"))]
    quantiles = table.filter(like="streamflow_q").to_numpy()
    assert (np.diff(quantiles, axis=1) >= 0).all() and (quantiles >= 0).all()
    # the days after the warm-up of the first window are those of one forward pass over the first 40 days
    x = torch.tensor(forcings()[["precipitation", "temperature_max", "temperature_min", "shortwave_radiation"]].to_numpy()[:40], dtype=torch.float32)[None]
    c = torch.tensor([[ATTRIBUTES.get(name, np.nan) for name in model.config.static_variables]], dtype=torch.float32)
    d = model.predict_distribution(x, c)
    np.testing.assert_allclose(quantiles[:30], d.quantiles[0, 10:, 0].detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(table["streamflow"].to_numpy()[:30], d.mean[0, 10:, 0].detach().numpy(), rtol=1e-5)
    piped = pipeline("streamflow-prediction", model=model)(forcings(), attributes=ATTRIBUTES, warmup=10, seq_len=40)
    pd.testing.assert_frame_equal(piped, table)
    point = StefaLandForTimeSeriesRegression(tiny_config(head_mode="direct")).eval()
    with pytest.raises(ValueError, match=r"quantiles=\[0\.5\]: this model predicts one value per day"):
        predict_streamflow(point, forcings(), ATTRIBUTES, warmup=10, seq_len=40, quantiles=[0.5])
    model.save_pretrained(tmp_path / "model")
    forcings().to_csv(tmp_path / "forcings.csv", index=False)
    pd.DataFrame([ATTRIBUTES]).to_csv(tmp_path / "attributes.csv", index=False)
    assert main(["predict", "--model", str(tmp_path / "model"), "--forcings", str(tmp_path / "forcings.csv"), "--attributes",
                 str(tmp_path / "attributes.csv"), "--warmup", "10", "--seq-len", "40", "--out", str(tmp_path / "out")]) == 0
    written = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert {"streamflow_q0.05", "streamflow_q0.95", "streamflow_q0.05_m3_per_s", "streamflow_q0.95_m3_per_s"} <= set(written.columns)


def test_camels_layout_prediction_writes_quantile_columns_and_bands(tmp_path):
    from stefaland_hf.data import load_site_dataset
    from stefaland_hf.experiments.prediction import predict_basins, write_predictions

    dataset = load_site_dataset("synthland", config_name="tiny", cache_dir=str(tmp_path / "cache"))
    config = StefaLandConfig(**{**tiny_config().to_dict(), "dynamic_variables": list(dataset[0]["dynamic_variables"]),
                                "static_variables": list(dataset[0]["static_variables"]), "dynamic_mean": None, "dynamic_std": None,
                                "static_mean": None, "static_std": None, "dynamic_groups": {}, "static_groups": {}, "never_mask_variables": [],
                                "head_mode": "direct", "output_distribution": "quantile", "quantiles": [0.05, 0.5, 0.95], "max_position_embeddings": 400})
    model = StefaLandForTimeSeriesRegression(config).eval()
    result = predict_basins(model, dataset, np.arange(2), ("2001-01-01", "2001-12-31"), seq_len=100, warmup=20, quantiles=[0.05, 0.95])
    assert result["quantiles"].shape == (2, 365, 1, 2) and result["predictions"].shape == (2, 365, 1)
    write_predictions(result, tmp_path / "out", {"model": "test"})
    csv = (tmp_path / "out" / "timeseries" / f"{result['site_ids'][0]}.csv").read_text()
    assert "streamflow_q0.05_mm_per_day,streamflow_q0.95_mm_per_day" in csv
    assert (tmp_path / "out" / "hydrographs" / f"{result['site_ids'][0]}.png").is_file()


def test_compare_counts_lower_crps_and_coverage_nearer_its_nominal_share_as_better():
    from stefaland_hf.experiments.compare import compare

    def run(crps, coverage):
        folds = [{"fold": i, "split": {"test_sites": [i]}, "models": {"m": {"summary": {"crps": crps[i], "coverage_90": coverage[i]}, "steps": 1}}}
                 for i in range(2)]
        return {"folds": folds}

    runs = {"point": run([0.5, 0.5], [0.7, 0.7]), "cmal": run([0.4, 0.6], [0.88, 0.99])}
    # CRPS 0.4 < 0.5 in fold 0 only; coverage 0.88 (0.02 from 0.90) beats 0.70 (0.20), 0.99 (0.09) beats 0.70 as well
    assert "| cmal | m | 0.500 ± 0.100 | 0.400, 0.600 | 0.000 ± 0.100 | 1/2 |" in compare(runs, ("point", "m"), metric="crps")
    assert "| 2/2 |" in compare(runs, ("point", "m"), metric="coverage_90")
