import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import CAMELS_US, needs_camels

from stefaland_hf.data import load_site_dataset
from stefaland_cli import build_parser
from stefaland_hf.experiments.benchmark import MODELS, benchmark_preset, run_benchmark, step_cap, summary_markdown
from stefaland_hf.presets import load_preset
from stefaland_hf.training.arguments import DEFAULT_PERIODS
from stefaland_hf.training.run_folder import RunFolderError


@needs_camels
def test_pub_benchmark_smoke_and_resume(tmp_path):
    basins = ["01022500", "01547700", "02064000", "03015500", "01142500", "01169000"]
    dataset = load_site_dataset("camels_us", data_dir=str(CAMELS_US), cache_dir=str(tmp_path / "cache"), basins=basins)
    models = {"LSTM SL": "direct", "StefaLand resConn": "resconn"}
    results = run_benchmark("pub", dataset, tmp_path / "out", folds=2, seed=0, preset=benchmark_preset("smoke"), models=models)
    assert len(results["folds"]) == 2
    held_out = [set(f["models"]["LSTM SL"]["per_basin"]) for f in results["folds"]]
    assert held_out[0].isdisjoint(held_out[1]) and held_out[0] | held_out[1] == set(basins)
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    basin = next(iter(saved["folds"][0]["models"]["StefaLand resConn"]["per_basin"].values()))
    assert set(basin) >= {"nse", "kge", "rmse", "ubrmse", "pearson_r", "fhv", "flv"}
    assert "never reads streamflow" in saved["protocol"]
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| LSTM SL |" in summary and "±" in summary
    # Resumable by fold: a resumed run reuses the finished folds (no training happens).
    (tmp_path / "out" / "folds" / "fold_0").rename(tmp_path / "out" / "moved")
    again = run_benchmark("pub", dataset, tmp_path / "out", folds=2, seed=0, preset=benchmark_preset("smoke"), models=models, resume=True)
    assert again["folds"] == results["folds"]
    assert not (tmp_path / "out" / "folds" / "fold_0").exists()
    # Another seed or preset into the same folder is another benchmark: refused, naming what differs.
    with pytest.raises(RunFolderError, match=r"arguments\.seed: 0 in the folder, 1 now"):
        run_benchmark("pub", dataset, tmp_path / "out", folds=2, seed=1, preset=benchmark_preset("smoke"), models=models, resume=True)
    with pytest.raises(RunFolderError, match=r"arguments\.preset\.finetune\.max_steps: 2 in the folder, 3 now"):
        run_benchmark("pub", dataset, tmp_path / "out", folds=2, seed=0, preset=benchmark_preset("smoke", overrides=["finetune.max_steps=3"]), models=models, resume=True)
    with pytest.raises(RunFolderError, match="pass --resume"):
        run_benchmark("pub", dataset, tmp_path / "out", folds=2, seed=0, preset=benchmark_preset("smoke"), models=models)
    # benchmarks/missing_inputs.py (docs/benchmarks.md) scores the fold models again with inputs hidden, as mask tokens
    # or at the model's mean: all inputs reproduce the benchmark's own medians, and hiding changes them
    (tmp_path / "out" / "moved").rename(tmp_path / "out" / "folds" / "fold_0")  # the fold models of the first run
    (tmp_path / "basins.txt").write_text("\n".join(basins) + "\n")
    script = _benchmark_script("missing_inputs")
    assert script.main(["--run", str(tmp_path / "out"), "--data-dir", str(CAMELS_US), "--basins", str(tmp_path / "basins.txt"),
                        "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "missing")]) == 0
    rows = json.loads((tmp_path / "missing" / "missing_inputs.json").read_text())["rows"]
    assert len(rows) == 2 * (5 * 1 + 5 * 2)  # folds x (LSTM: one fill; resConn: mask token and mean) x 5 scenarios
    for row in rows:
        if row["scenario"] == "all inputs":
            assert row["median_nse"] == pytest.approx(results["folds"][row["fold"]]["models"][row["model"]]["summary"]["nse"], abs=1e-5)
    soil = {r["fill"]: r for r in rows if r["model"] == "StefaLand resConn" and r["fold"] == 0 and r["scenario"] == "no soil attributes"}
    assert soil["mask token"]["hidden"] and set(soil["mask token"]["hidden"]) <= set(script.SOIL)
    assert soil["mask token"]["median_nse"] != soil["mean"]["median_nse"]
    table = (tmp_path / "missing" / "missing_inputs.md").read_text()
    assert table.startswith("| scenario | LSTM SL, mean | StefaLand resConn, mask token | StefaLand resConn, mean |")
    assert "| no vapor pressure or radiation | " in table


def _benchmark_script(name: str):
    """A script of benchmarks/ as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summary_layout_from_results():
    fold = lambda nse: {"models": {name: {"seconds": 1.0, "summary": {"rmse": 1.0, "ubrmse": 0.9, "pearson_r": 0.8, "nse": nse, "kge": 0.5}} for name in MODELS}}  # noqa: E731
    text = summary_markdown({"kind": "pub", "n_basins": 10, "seed": 0, "protocol": "p", "folds": [fold(0.5), fold(0.7)]})
    # mean of fold medians 0.6, standard error std([0.5, 0.7], ddof=1) / sqrt(2) = 0.1
    assert "| LSTM SL | 1.000 ± 0.000 | 0.900 ± 0.000 | 0.800 ± 0.000 | 0.600 ± 0.100 | 0.500 ± 0.000 | 2 |" in text


def test_summary_names_medians_that_cover_fewer_basins_than_nse():
    """A constant prediction (0 all period) has an NSE but no Corr or KGE: that basin leaves only this model's medians."""
    basins = lambda kge: {"A": {"rmse": 1.0, "ubrmse": 0.9, "pearson_r": 0.8, "nse": 0.6, "kge": 0.5},  # noqa: E731
                          "B": {"rmse": 2.0, "ubrmse": 1.0, "pearson_r": None if kge is None else 0.7, "nse": -0.1, "kge": kge}}
    fold = {"models": {"LSTM SL": {"seconds": 1.0, "summary": {"nse": 0.25}, "per_basin": basins(0.2)},
                       "scratch": {"seconds": 1.0, "summary": {"nse": 0.25}, "per_basin": basins(None)}}}
    text = summary_markdown({"kind": "pub", "n_basins": 2, "seed": 0, "protocol": "p", "folds": [fold, fold]})
    assert "- scratch: Corr over 2, KGE over 2 of the 4 basin-folds with an NSE" in text
    assert "- LSTM SL:" not in text and "Unscored" not in text
    fold["models"]["scratch"]["per_basin"]["C"] = {"nse": None, "kge": None}  # a held-out basin without observations
    assert "Unscored held-out basins (no observed day in the test period, or an undefined NSE), in no median: 1: C" in summary_markdown(
        {"kind": "pub", "n_basins": 3, "seed": 0, "protocol": "p", "folds": [fold]})


def test_nse_plot_takes_undefined_values(tmp_path):
    """A held-out basin without a defined NSE is None in results.json; the CDF plot leaves it out instead of failing."""
    from stefaland_hf.experiments.plots import plot_metric_cdf

    plot_metric_cdf({"LSTM SL": [0.5, None, 0.7], "scratch": [None]}, tmp_path / "cdf.png")
    assert (tmp_path / "cdf.png").stat().st_size > 0


@needs_camels
def test_pretraining_per_fold_sees_only_training_basins(tmp_path):
    basins = ["01022500", "01547700", "02064000", "03015500"]
    dataset = load_site_dataset("camels_us", data_dir=str(CAMELS_US), cache_dir=str(tmp_path / "cache"), basins=basins)
    results = run_benchmark(
        "pub", dataset, tmp_path / "out", folds=2, seed=0, preset=benchmark_preset("smoke"), pretrain_on="train", models={"StefaLand resConn": "resconn"}
    )
    for fold in results["folds"]:
        card = (tmp_path / "out" / "folds" / f"fold_{fold['fold']}" / "pretraining" / "model" / "README.md").read_text()
        n = len(fold["split"]["train_sites"])
        assert f"{n} camels_us training site{'' if n == 1 else 's'} (forcings and attributes only)" in card
    assert not (tmp_path / "out" / "pretraining").exists()
    assert "per fold on the training basins" in results["protocol"]


def test_set_values_are_typed_by_the_sections_own_argument_parser():
    overrides = ["finetune.max_steps=400", "finetune.embedding_scale_init=1.0", "benchmark.train_period=2000-10-01,2008-09-30",
                 "baseline.max_steps=2000", "pretrain.num_train_epochs=12"]
    preset = benchmark_preset("cpu-quick", overrides=overrides)
    assert preset["finetune"]["max_steps"] == 400 and isinstance(preset["finetune"]["max_steps"], int)
    assert preset["finetune"]["embedding_scale_init"] == 1.0
    assert preset["benchmark"]["train_period"] == ["2000-10-01", "2008-09-30"]
    assert preset["benchmark"]["test_period"] == DEFAULT_PERIODS["camels_us"]["test"]  # left out of the file: the dataset's
    assert preset["baseline"] == {"max_steps": 2000} and preset["pretrain"]["num_train_epochs"] == 12
    assert step_cap(preset, "direct") == 2000 and step_cap(preset, "resconn") == 400
    assert load_preset("benchmark", "cpu-quick")["finetune"]["max_steps"] == 200  # the file is untouched
    long = benchmark_preset("cpu-quick", overrides=["benchmark.pretrain_period=1980-10-01,2014-09-30"])
    assert long["benchmark"]["pretrain_period"] == ["1980-10-01", "2014-09-30"]
    # a preset's periods are CAMELS-US dates: on SynthLand the dataset's own, unless --set says otherwise
    assert benchmark_preset("smoke", "synthland")["benchmark"]["train_period"] == DEFAULT_PERIODS["synthland"]["train"]
    assert benchmark_preset("smoke", "synthland", ["benchmark.test_period=2008-01-01,2009-12-31"])["benchmark"]["test_period"] == ["2008-01-01", "2009-12-31"]
    cache = benchmark_preset("cpu-quick", overrides=["finetune.embedding_cache=False", "finetune.embedding_cache_stride=30"])["finetune"]
    assert cache["embedding_cache"] is False and cache["embedding_cache_stride"] == 30
    for assignment, message in [
        ("benchmark.test_period=1989-10-01", "BenchmarkSettings.test_period=.*expected START END"),
        ("finetune_steps=3", "expected SECTION.FIELD=VALUE with SECTION one of"),
        ("finetune.finetune_steps=3", "'finetune_steps' is not a field of FinetuneArguments"),
        ("finetune.max_step=3", "'max_step' is not a field"),  # no abbreviations
        ("finetune.max_steps=many", "--set 'finetune.max_steps=many': argument --max_steps.*invalid int value: 'many'"),
        ("finetune.embedding_cache=maybe", "argument --embedding_cache.*Truthy value expected"),
        ("finetune.output_transform=cube", "invalid choice: 'cube'"),
        ("finetune.warmup=365", "FinetuneArguments.warmup=365: expected fewer days than seq_len=365"),
        # what the run sets itself: a --set would be replaced, or recorded under another seed than it trained with
        ("finetune.seed=5", "the run sets seed itself"),
        ("finetune.head_mode=linear_probe", "the run sets head_mode itself"),
        ("pretrain.output_dir=elsewhere", "the run sets output_dir itself"),
    ]:
        with pytest.raises(ValueError, match=message):
            run_benchmark("pub", None, Path("unused"), 5, 0, benchmark_preset("cpu-quick", overrides=[assignment]))


def test_cli_selects_models_and_overrides():
    args = build_parser().parse_args(
        ["benchmark", "pub", "--out", "o", "--models", "direct", "resconn", "--set", "finetune.max_steps=5", "--base", "m", "--training-seed", "3"]
    )
    assert args.training_seed == 3 and args.models == ["direct", "resconn"] and args.overrides == ["finetune.max_steps=5"] and args.base == "m"


@needs_camels
def test_models_without_encoder_pretrain_nothing_and_base_is_reused(tmp_path):
    basins = ["01022500", "01547700", "02064000", "03015500"]
    dataset = load_site_dataset("camels_us", data_dir=str(CAMELS_US), cache_dir=str(tmp_path / "cache"), basins=basins)
    preset = benchmark_preset("smoke", overrides=["finetune.embedding_scale_init=0.5"])
    scratch = run_benchmark("pub", dataset, tmp_path / "scratch", folds=2, seed=0, preset=preset, models={"LSTM SL": "direct"})
    assert not (tmp_path / "scratch" / "pretraining").exists() and scratch["pretrain_on"] == "none"
    # a given pretrained model serves the frozen-encoder models; the benchmark pretrains nothing itself
    first = run_benchmark("pub", dataset, tmp_path / "a", folds=2, seed=0, preset=preset, models={"StefaLand resConn": "resconn"})
    base = tmp_path / "a" / "pretraining" / "model"
    given = run_benchmark("pub", dataset, tmp_path / "b", folds=2, seed=0, preset=preset, models={"StefaLand resConn": "resconn"}, base=str(base))
    assert not (tmp_path / "b" / "pretraining").exists()
    assert given["pretrain_on"] == "given" and str(base) in given["protocol"]
    assert given["folds"][0]["models"]["StefaLand resConn"]["summary"] == first["folds"][0]["models"]["StefaLand resConn"]["summary"]
    # the same weights in another folder (another checkout, a copy) are the same base: the run resumes
    copy = shutil.copytree(base, tmp_path / "copy_of_base")
    again = run_benchmark("pub", dataset, tmp_path / "b", folds=2, seed=0, preset=preset, models={"StefaLand resConn": "resconn"}, base=str(copy), resume=True)
    assert [f["models"] for f in again["folds"]] == [f["models"] for f in given["folds"]]
    # another training seed on the same folds: the same held-out basins, other weights
    reseeded = run_benchmark("pub", dataset, tmp_path / "c", folds=2, seed=0, preset=preset, models={"StefaLand resConn": "resconn"}, base=str(base), training_seed=7)
    assert [f["split"] for f in reseeded["folds"]] == [f["split"] for f in given["folds"]]
    assert reseeded["folds"][0]["models"]["StefaLand resConn"]["summary"] != given["folds"][0]["models"]["StefaLand resConn"]["summary"]
    assert "(training seed 7)" in (tmp_path / "c" / "summary.md").read_text()
    adapter = json.loads((tmp_path / "b" / "folds" / "fold_0" / "resconn" / "adapter" / "adapter_config.json").read_text())
    assert adapter["embedding_scale_init"] == 0.5


def test_several_training_seeds_in_one_command_pool_folds_and_seeds(tmp_path, capsys):
    from stefaland_cli import main

    out = tmp_path / "multi"
    assert main(["benchmark", "pub", "--dataset", "synthland", "--preset", "smoke", "--folds", "2", "--models", "direct", "linear_probe",
                 "--training-seeds", "5", "6", "--out", str(out)]) == 0
    per_seed = {s: json.loads((out / f"seed_{s}" / "results.json").read_text()) for s in (5, 6)}
    assert [r["training_seed"] for r in per_seed.values()] == [5, 6]
    lstm = [f["models"]["LSTM SL"]["summary"]["nse"] for r in per_seed.values() for f in r["folds"]]
    probe = [f["models"]["StefaLand linear probe"]["summary"]["nse"] for r in per_seed.values() for f in r["folds"]]
    row = next(line for line in (out / "summary.md").read_text().splitlines() if line.startswith("| StefaLand linear probe"))
    delta = np.subtract(probe, lstm)
    assert f"{np.mean(probe):.3f} ± " in row and f"| {np.mean(delta):+.3f} ± " in row
    assert f"({int(np.sum(delta > 0))}/4)" in row
    # the smoke preset's 2-step cap ends every run before early stopping could: the table says so
    assert row.endswith("| 2-2 | 4/4 |")
    # interrupted before the second seed began: --resume keeps seed 5 and runs seed 6 from the start
    summary = (out / "summary.md").read_text()
    shutil.rmtree(out / "seed_6")
    assert main(["benchmark", "pub", "--dataset", "synthland", "--preset", "smoke", "--folds", "2", "--models", "direct", "linear_probe",
                 "--training-seeds", "5", "6", "--resume", "--out", str(out)]) == 0
    assert "fold 1: done earlier" in capsys.readouterr().out
    assert (out / "summary.md").read_text() == summary
    # stefaland compare pairs multi-seed runs by (seed, fold), as summary.md does, and refuses other seeds
    from stefaland_hf.experiments.compare import compare, load_runs

    paired = compare(load_runs([f"a={out}", f"b={out}"]), ("a", "LSTM SL"))
    assert f"| b | StefaLand linear probe | {np.mean(probe):.3f} ± " in paired and f"| {np.mean(delta):.3f} ± " in paired
    with pytest.raises(ValueError, match="training seeds"):
        compare(load_runs([f"a={out}", f"one={out / 'seed_5'}"]), ("a", "LSTM SL"))
    assert main(["benchmark", "pub", "--dataset", "synthland", "--preset", "smoke", "--training-seeds", "5", "5", "--out", str(tmp_path / "x")]) == 2
    assert "a seed is listed twice" in capsys.readouterr().err


def test_the_hbv_pair_trains_and_scores_as_benchmark_models(tmp_path):
    """``--models hbv resconn_hbv`` (the paper's Table 9 pair): δHBV without an encoder, the hybrid as a resConn adapter
    on the pretraining of the run, both spinning up their stores on the windows' warm-up."""
    from stefaland_cli import main

    out = tmp_path / "hbv"
    assert main(["benchmark", "pub", "--dataset", "synthland", "--preset", "smoke", "--folds", "2", "--models", "hbv", "resconn_hbv",
                 "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    for fold in results["folds"]:
        assert {label: entry["head_mode"] for label, entry in fold["models"].items()} == {
            "LSTM-HBV1.1p": "hbv", "StefaLand-resConn HBV1.1p": "resconn_hbv"}
        assert all(np.isfinite(entry["summary"]["nse"]) for entry in fold["models"].values())
    warmup = load_preset("benchmark", "smoke")["finetune"]["warmup"]
    adapter = json.loads((out / "folds" / "fold_0" / "resconn_hbv" / "adapter" / "adapter_config.json").read_text())
    assert (adapter["head_mode"], adapter["hbv_warmup_days"], adapter["hbv_nmul"]) == ("resconn_hbv", warmup, 16)
    model = json.loads((out / "folds" / "fold_0" / "hbv" / "model" / "config.json").read_text())
    assert (model["head_mode"], model["hbv_warmup_days"]) == ("hbv", warmup)
    assert (out / "pretraining" / "model" / "model.safetensors").is_file()  # the hybrid's frozen encoder
    assert "| LSTM-HBV1.1p |" in (out / "summary.md").read_text()
    # benchmarks/hbv_figures.py draws the stores and parameters of a trained model (here the hybrid's adapter)
    figures = _benchmark_script("hbv_figures")
    basins = list(results["folds"][0]["models"]["LSTM-HBV1.1p"]["per_basin"])[:2]  # held-out basins of fold 0
    figures.main(["--model", str(out / "folds" / "fold_0" / "resconn_hbv" / "adapter"), "--dataset", "synthland", "--basins", *basins,
                  "--period", "2006-01-01", "2006-12-31", "--out", str(tmp_path / "figures")])
    written = sorted(path.name for path in (tmp_path / "figures").iterdir())
    assert written == sorted(["parameter_map.png", "parameters.csv", *(f"{kind}_{b}.png" for b in basins for kind in ("states", "parameters"))])
    rows = (tmp_path / "figures" / "parameters.csv").read_text().splitlines()
    assert rows[0].startswith("site_id,BETA,FC,") and len(rows) == 3


def test_pretraining_settings_are_refused_when_the_run_pretrains_nothing(tmp_path):
    """With a given base (on CAMELS the shipped release by default) --set pretrain.* changed nothing, silently."""
    from stefaland_hf.experiments.benchmark import run_cli

    args = build_parser().parse_args(
        ["benchmark", "pub", "--dataset", "synthland", "--out", str(tmp_path / "o"), "--base", "some/model",
         "--cache-dir", str(tmp_path / "cache"), "--set", "pretrain.num_train_epochs=1"]
    )
    with pytest.raises(ValueError, match="this run pretrains nothing \\(its base is some/model\\)"):
        run_cli(args)


def test_random_encoder_control_is_the_bases_configuration_with_random_weights_and_every_model_is_paired_against_it(tmp_path):
    from safetensors.torch import load_file

    from stefaland_hf import StefaLandConfig

    dataset = load_site_dataset("synthland", cache_dir=str(tmp_path / "cache"))
    models = {"LSTM SL": "direct", "StefaLand resConn": "resconn", "StefaLand resConn, random encoder": "random_encoder"}
    results = run_benchmark("pub", dataset, tmp_path / "out", folds=2, seed=0, preset=benchmark_preset("smoke", "synthland"),
                            models=models, dataset_name="synthland")
    base = tmp_path / "out" / "pretraining" / "model"
    (control,) = (tmp_path / "out" / "random_encoders").iterdir()
    assert StefaLandConfig.from_pretrained(control).to_dict() == StefaLandConfig.from_pretrained(base).to_dict()
    trained, random = load_file(base / "model.safetensors"), load_file(control / "model.safetensors")
    assert trained.keys() == random.keys() and any(not (trained[k] == random[k]).all() for k in trained)
    assert results["folds"][0]["models"]["StefaLand resConn, random encoder"]["head_mode"] == "resconn"
    paired = results["paired"]["StefaLand resConn"]
    nse = {label: np.array([f["models"][label]["summary"]["nse"] for f in results["folds"]]) for label in models}
    assert paired["random encoder"]["mean"] == pytest.approx(np.mean(nse["StefaLand resConn"] - nse["StefaLand resConn, random encoder"]))
    assert paired["LSTM SL"]["n"] == 2 and "random encoder" not in results["paired"]["StefaLand resConn, random encoder"]
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "Δ NSE vs random encoder" in summary and "Δ NSE vs LSTM SL" in summary


def test_fewer_training_basins_are_nested_and_keep_the_held_out_and_validation_basins():
    dataset = load_site_dataset("synthland", config_name="tiny")
    from stefaland_hf.experiments.benchmark import make_splits

    full = make_splits("pub", dataset, 4, 3, None, None)
    small, smaller = (make_splits("pub", dataset, 4, 3, None, None, train_basins=n) for n in (8, 4))
    for a, b, c in zip(full, small, smaller):
        assert list(b.test_sites) == list(a.test_sites) and list(b.val_sites) == list(a.val_sites)
        assert len(b.train_sites) == 8 and len(c.train_sites) == 4
        assert set(c.train_sites) <= set(b.train_sites) <= set(a.train_sites)
    with pytest.raises(ValueError, match="train_basins=999: fold 0 has only"):
        make_splits("pub", dataset, 4, 3, None, None, train_basins=999)
    preset = benchmark_preset("smoke", "synthland", overrides=["benchmark.train_basins=4", "benchmark.val_period=2001-01-01,2001-12-31"])
    assert preset["benchmark"]["train_basins"] == 4 and preset["benchmark"]["val_period"] == ["2001-01-01", "2001-12-31"]
    with pytest.raises(ValueError, match="train_basins"):
        benchmark_preset("smoke", "synthland", overrides=["benchmark.train_basins=0"])


def test_hbv_heads_add_latitude_to_every_models_camels_attributes():
    """Hargreaves PET needs the latitude, which the paper's CAMELS attribute set lacks: with an HBV head in the run,
    every model reads the paper's attributes plus latitude; without one, the builder's default set."""
    from stefaland_hf.data.camels_us import PAPER_ATTRIBUTES
    from stefaland_hf.experiments.benchmark import dataset_options

    with_hbv = dataset_options("camels_us", ["direct", "resconn_hbv"], basins="camels_us_531", extra_data_dirs=None)
    assert with_hbv == {"basins": "camels_us_531", "attributes": [*PAPER_ATTRIBUTES, "latitude"]}
    assert dataset_options("camels_us", ["direct", "resconn"], basins=None) == {}
    assert dataset_options("synthland", ["hbv"]) == {}



def _scarcity_run(folder: Path, nse_by_model: dict[str, list[float]], held_out=(("b1", "b2"), ("b3", "b4"), ("b5", "b6")),
                  train_basins=None, training_seed=111) -> Path:
    """A finished benchmark folder (results.json) with the given per-fold median NSE of each model."""
    folds = [{"split": {"site_ids": [b for group in held_out for b in group], "test_sites": [2 * i, 2 * i + 1],
                        "train_sites": [j for j in range(6) if j // 2 != i][: train_basins or 4], "test_period": ["1989-10-01", "1999-09-30"]},
              "models": {label: {"summary": {"nse": values[i]}, "steps": 10, "seconds": 1.0} for label, values in nse_by_model.items()}}
             for i in range(len(held_out))]
    folder.mkdir(parents=True)
    results = {"kind": "pub", "seed": 111, "training_seed": training_seed, "preset": {"benchmark": {"train_basins": train_basins}}, "folds": folds}
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def test_data_scarcity_pools_the_runs_of_a_point_and_pairs_by_fold(tmp_path):
    scarcity = _benchmark_script("data_scarcity")
    few_a = _scarcity_run(tmp_path / "25a", {"resConn": [0.5, 0.6, 0.7]}, train_basins=2)
    few_b = _scarcity_run(tmp_path / "25b", {"random": [0.4, 0.6, 0.5]}, train_basins=2)
    everything = _scarcity_run(tmp_path / "all", {"resConn": [0.7, 0.7, 0.7], "random": [0.7, 0.6, 0.75]})
    scarcity.main([f"2={few_a},{few_b}", f"all={everything}", "--reference", "random", "--out", str(tmp_path / "out")])
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in (tmp_path / "out" / "data_scarcity.md").read_text().splitlines()
            if line.startswith("| 2 ") or line.startswith("| all")}
    # by hand: deltas 0.1, 0.0, 0.2 -> mean 0.1, s.e. 0.1 / sqrt(3); at 'all' 0.0, 0.1, -0.05 -> mean 0.017, s.e. 0.044
    assert rows["2"][0] == "0.600 ± 0.058" and rows["2"][2].startswith("+0.100 ± 0.058 (2/3)")
    assert rows["all"][2].startswith("+0.017 ± 0.044 (1/3) tie")
    assert (tmp_path / "out" / "data_scarcity.png").is_file()


def test_data_scarcity_refuses_runs_that_are_not_of_the_point_or_the_curve(tmp_path):
    scarcity = _benchmark_script("data_scarcity")
    few = _scarcity_run(tmp_path / "2", {"resConn": [0.5, 0.6, 0.7]}, train_basins=2)
    other = _scarcity_run(tmp_path / "all", {"resConn": [0.5, 0.6, 0.7]}, held_out=(("b1", "b3"), ("b2", "b4"), ("b5", "b6")))
    out = ["--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit, match="holds out other basins"):
        scarcity.main([f"2={few}", f"all={other}", *out])
    with pytest.raises(SystemExit, match="in more than one of its runs"):
        scarcity.main([f"2={few},{few}", *out])
    with pytest.raises(SystemExit, match="--reference 'LSTM': no such model"):
        scarcity.main([f"2={few}", "--reference", "LSTM", *out])
    with pytest.raises(SystemExit, match="benchmark.train_basins=2, not 3"):
        scarcity.main([f"3={few}", *out])
    reseeded = _scarcity_run(tmp_path / "2b", {"random": [0.5, 0.6, 0.7]}, train_basins=2, training_seed=112)
    with pytest.raises(SystemExit, match="other folds .* training seeds"):
        scarcity.main([f"2={few},{reseeded}", *out])
    with pytest.raises(SystemExit, match="given twice"):
        scarcity.main([f"2={few}", f"2={few}", *out])
    with pytest.raises(SystemExit, match="results.json"):
        scarcity.main([f"2={tmp_path / 'missing'}", *out])


def test_hyperparameter_search_scores_set_aside_training_basins_only():
    from stefaland_hf.data.splits import pub_folds

    search = _benchmark_script("hyperparameter_search")
    split = pub_folds([f"b{i:02d}" for i in range(40)], k=5, seed=111, val_fraction=0.1,
                      train_period=("1999-10-01", "2008-09-30"), val_period=("1980-10-01", "1989-09-30"), test_period=("1989-10-01", "1999-09-30"))[0]
    tuned = search.search_split(split, seed=111, fold=0)
    assert set(tuned.test_sites) | set(tuned.train_sites) == set(split.train_sites)  # only the fold's training basins
    assert len(tuned.test_sites) == round(0.2 * len(split.train_sites)) and not set(tuned.test_sites) & set(tuned.train_sites)
    assert list(tuned.val_sites) == list(split.val_sites) and tuned.test_period == split.val_period  # never the test period
    assert list(search.search_split(split, seed=111, fold=0).test_sites) == list(tuned.test_sites)  # a fixed draw
    grid = search.trial_grid(["baseline.head_hidden_size=8,16", "baseline.learning_rate=0.001,0.01"], trials=None, seed=0)
    assert len(grid) == 4 and ["baseline.head_hidden_size=8", "baseline.learning_rate=0.01"] in grid
    assert len(search.trial_grid(["baseline.head_hidden_size=8,16,32"], trials=2, seed=0)) == 2
    with pytest.raises(SystemExit, match="expected SECTION.FIELD=V1,V2"):
        search.trial_grid(["head_hidden_size=8"], trials=None, seed=0)
    with pytest.raises(SystemExit, match="sections finetune, baseline"):
        search.trial_grid(["benchmark.train_basins=25,50"], trials=None, seed=0)
    with pytest.raises(SystemExit, match="train direct identically"):  # e.g. finetune.max_steps under the preset's baseline.max_steps
        search.refuse_ineffective([{"max_steps": 1000}, {"max_steps": 1000}], [["finetune.max_steps=200"], ["finetune.max_steps=400"]], "direct")
    overlapping = pub_folds([f"b{i:02d}" for i in range(40)], k=5, seed=111, val_fraction=0.1, train_period=("1999-10-01", "2008-09-30"),
                            val_period=("1995-10-01", "2000-09-30"), test_period=("1989-10-01", "1999-09-30"))[0]
    with pytest.raises(SystemExit, match="overlaps the test period"):
        search.search_split(overlapping, seed=111, fold=0)


def test_hyperparameter_search_refuses_to_continue_a_search_of_other_settings(tmp_path):
    search = _benchmark_script("hyperparameter_search")
    search.checked_manifest(tmp_path, {"model": "direct", "set": ["baseline.max_steps=2000"]})
    search.checked_manifest(tmp_path, {"model": "direct", "set": ["baseline.max_steps=2000"]})  # the same search continues
    with pytest.raises(SystemExit, match="a search with other set"):
        search.checked_manifest(tmp_path, {"model": "direct", "set": ["baseline.max_steps=1000"]})


@needs_camels
def test_hyperparameter_search_runs_and_resumes(tmp_path, capsys):
    search = _benchmark_script("hyperparameter_search")
    basins = tmp_path / "basins.txt"
    basins.write_text("\n".join(["01022500", "01142500", "01169000", "01411300", "01440000", "01547700", "01632000",
                                 "01639500", "01666500", "02015700", "02051000", "02064000"]) + "\n")
    command = ["--data-dir", str(CAMELS_US), "--basins", str(basins), "--cache-dir", str(tmp_path / "cache"), "--preset", "smoke",
               "--folds", "3", "--search-folds", "0", "1", "--grid", "baseline.head_hidden_size=8,16", "--out", str(tmp_path / "search")]
    search.main(command)
    records = sorted((tmp_path / "search").glob("trial_*_fold_*.json"))
    assert len(records) == 4
    table = (tmp_path / "search" / "search.md").read_text()
    assert "baseline.head_hidden_size=8" in table and "baseline.head_hidden_size=16" in table
    stamps = [p.stat().st_mtime_ns for p in records]
    capsys.readouterr()
    search.main(command)  # resumed: nothing trains again
    assert [p.stat().st_mtime_ns for p in records] == stamps and "trainable parameters" not in capsys.readouterr().out
