"""Tiny end-to-end runs: pretrain a few steps, finetune through Trainer with the PEFT adapter, save, reload, predict."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import CAMELS_US, needs_camels
import torch
from peft import PeftModel

from stefaland_hf import StefaLandConfig, StefaLandForTimeSeriesRegression
from stefaland_hf.data import load_site_dataset
from stefaland_hf.data.normalization import fit_normalization
from stefaland_hf.data.splits import Split, pub_folds
from stefaland_hf.experiments.demo import demo_preset, run_demo
from stefaland_hf.training import arguments as training_arguments
from stefaland_hf.training.acceleration import bf16_supported
from stefaland_hf.training.arguments import FinetuneArguments
from stefaland_hf.training.finetune import finetune
from stefaland_hf.training.pretrain import PretrainArguments, pretrain
from stefaland_hf.training.run_folder import RunFolderError



def _tiny_zoo_config(**overrides):
    config = StefaLandConfig.from_pretrained(Path(__file__).resolve().parents[1] / "modeling" / "stefaland-tiny")
    return StefaLandConfig(**{**config.to_dict(), "d_model": 16, "num_attention_heads": 2, "num_hidden_layers": 1, "ffn_dim": 32, "variable_mlp_dim": 8, **overrides})


def _finetune_args(path, mode, **overrides):
    kwargs = dict(output_dir=str(path), head_mode=mode, seq_len=60, warmup=20, per_device_train_batch_size=8, max_steps=4, eval_steps=2, head_hidden_size=8, disable_tqdm=True)
    kwargs.update(overrides)
    return FinetuneArguments(**kwargs)


@pytest.fixture(scope="module")
def synthland(tmp_path_factory):
    return load_site_dataset("synthland", config_name="tiny", cache_dir=str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def split(synthland):
    periods = {"train_period": ("2000-01-01", "2001-12-31"), "val_period": ("2000-01-01", "2001-12-31"), "test_period": ("2002-01-01", "2002-12-31")}
    return pub_folds(list(synthland["site_id"]), k=4, seed=0, val_fraction=0.2, **periods)[0]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, synthland, split):
    out = tmp_path_factory.mktemp("pretrain")
    pretrain(_tiny_zoo_config(), synthland, split.sites("train"), split.period("train"), PretrainArguments(output_dir=str(out), num_train_epochs=1, samples_per_epoch=16, per_device_train_batch_size=8, seq_len=60))
    return out / "model"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the flags of a run on the CPU")
def test_half_precision_flags_on_the_cpu(tmp_path, monkeypatch):
    """Trainer would silently train in float32 with fp16 on the CPU, and refuse bf16 without use_cpu."""
    with pytest.raises(ValueError, match="fp16: float16 mixed precision needs a GPU"):
        _finetune_args(tmp_path, "resconn", fp16=True)
    monkeypatch.setattr(training_arguments, "bf16_supported", lambda device: False)
    with pytest.raises(ValueError, match="bf16: this CPU has no native bf16 arithmetic"):
        _finetune_args(tmp_path, "resconn", bf16=True)


@pytest.mark.parametrize(
    "option, why",
    [({"num_train_epochs": 2}, "use max_steps"), ({"warmup_steps": 10}, "constant_with_warmup"),
     ({"resume_from_checkpoint": "runs/x/checkpoint-50"}, "restart"), ({"label_smoothing_factor": 0.1}, "no label smoothing"),
     ({"hub_token": "hf_x"}, "hf auth login"), ({"hub_strategy": "end"}, "pushed, once")],
)
def test_trainer_options_these_runs_would_ignore_are_refused(tmp_path, option, why):
    name = next(iter(option))
    with pytest.raises(ValueError, match=rf"FinetuneArguments\.{name}=.* would be ignored: .*{why}"):
        _finetune_args(tmp_path, "resconn", **option)
    _finetune_args(tmp_path, "resconn", warmup_steps=10, lr_scheduler_type="constant_with_warmup")  # a warm-up that applies


def test_a_finished_artifact_is_pushed_private_when_asked(tmp_path, monkeypatch):
    """--hub_private_repo reached no push: the examples' adapters went up public."""
    from stefaland_hf.hub import push as push_module

    calls = []
    monkeypatch.setattr(push_module, "render_adapter_card", lambda *a, **k: type("Card", (), {"save": lambda self, path: None})())
    monkeypatch.setattr(push_module, "push_adapter", lambda *a, **k: calls.append(k) or type("Info", (), {"commit_url": "u"})())
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    assert push_module.finish_artifact({"artifact": str(tmp_path / "adapter")}, "SynthLand", "org/base", "org/a", private=True) == "u"
    assert calls[0]["private"] is True


@pytest.mark.skipif(torch.cuda.is_available() or not bf16_supported("cpu"), reason="needs a CPU run with native bf16")
def test_bf16_finetuning_on_the_cpu_runs_under_autocast(tmp_path, synthland, split, pretrained):
    runs = {flag: finetune(pretrained, synthland, split, _finetune_args(tmp_path / str(flag), "resconn", bf16=flag)) for flag in (False, True)}
    full, half = (runs[flag]["evaluation"]["predictions"] for flag in (False, True))
    assert np.isfinite(half).all() and full.shape == half.shape
    assert not np.array_equal(full, half)  # the head trained under bf16 autocast, not silently in float32
    assert np.isfinite(runs[True]["summary"]["nse"])


def test_resconn_adapter_end_to_end(tmp_path, synthland, split, pretrained):
    report = finetune(pretrained, synthland, split, _finetune_args(tmp_path, "resconn"))
    adapter = tmp_path / "adapter"
    assert (adapter / "adapter_model.safetensors").exists() and (adapter / "adapter_config.json").exists()
    assert json.loads((tmp_path / "report.json").read_text())["trainable_parameters"] < report["total_parameters"]
    evaluation = report["evaluation"]
    test_sites = split.sites("test")
    assert evaluation["predictions"].shape == (len(test_sites), 365, 1)
    assert np.isfinite(evaluation["predictions"]).all()
    assert set(evaluation["site_ids"]) == set(split.ids("test"))
    # Reload the adapter on a fresh base and predict the same numbers.
    base = StefaLandForTimeSeriesRegression.from_pretrained(pretrained, target_variables=["streamflow"], head_hidden_size=8)
    model = PeftModel.from_pretrained(base, adapter).eval()
    from stefaland_hf.evaluation import predict_sites

    config = model.base_model.model.config
    again = predict_sites(
        model, synthland, test_sites, split.period("test"), seq_len=60, warmup=20,
        dynamic_variables=config.dynamic_variables, static_variables=config.static_variables, target_variables=["streamflow"],
    )
    np.testing.assert_allclose(again["predictions"], evaluation["predictions"], rtol=1e-5, atol=1e-6)
    assert (tmp_path / "metrics_per_site.csv").read_text().startswith("site_id,nse,kge")


def test_new_weights_depend_on_the_seed_not_on_earlier_draws(pretrained):
    """A head's initial weights come from args.seed, whatever consumed random numbers before (benchmarks run many models)."""
    from stefaland_hf.data.normalization import Normalization
    from stefaland_hf.training.finetune import build_finetune_model

    targets = Normalization([], [], [], [], [], [], ["streamflow"], [1.0], [2.0])

    def head_weights(mode, **overrides):
        torch.rand(1000)  # some earlier draw
        model = build_finetune_model(pretrained, _finetune_args("unused", mode, **overrides), targets, targets)
        return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}

    for mode in ("resconn", "no_adapter"):
        first, second = head_weights(mode), head_weights(mode)
        assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
        assert not all(torch.equal(first[k], v) for k, v in head_weights(mode, seed=5).items())
    scale = [v for k, v in head_weights("resconn", embedding_scale_init=1.0).items() if k.endswith("embedding_scale")]
    assert len(scale) == 1 and scale[0].item() == 1.0


@pytest.mark.parametrize("mode", ["direct", "scratch"])
def test_full_model_modes(tmp_path, synthland, split, pretrained, mode):
    report = finetune(pretrained, synthland, split, _finetune_args(tmp_path, mode))
    model = StefaLandForTimeSeriesRegression.from_pretrained(tmp_path / "model")
    assert model.config.head_mode == mode and report["trainable_parameters"] == report["total_parameters"]
    # Normalization for models trained from scratch is fitted on the task's training split only.
    variables = dict(dynamic_variables=model.config.dynamic_variables, static_variables=model.config.static_variables, target_variables=["streamflow"])
    on_train = fit_normalization(synthland, split.sites("train"), split.period("train"), **variables).to_dict()
    on_all = fit_normalization(synthland, np.arange(len(synthland)), split.period("train"), **variables).to_dict()
    for key in ("target_mean", "target_std", "static_mean", "dynamic_std"):
        np.testing.assert_allclose(getattr(model.config, key), on_train[key], rtol=1e-6)
    assert not np.allclose(model.config.static_mean, on_all["static_mean"])


def _without_observations(dataset, sites):
    """``dataset`` with every target of ``sites`` set to NaN."""
    sites = set(int(s) for s in sites)

    def blank(row, index):
        if index in sites:
            return {"targets": np.full_like(np.asarray(row["targets"], dtype=np.float32), np.nan).tolist()}
        return {"targets": row["targets"]}

    return dataset.map(blank, with_indices=True, features=dataset.features)


def test_reusing_a_finetuning_folder_needs_overwrite(tmp_path, synthland, split, pretrained):
    finetune(pretrained, synthland, split, _finetune_args(tmp_path, "direct", max_steps=2))
    with pytest.raises(RunFolderError, match=r"arguments\.learning_rate: 0\.001 in the folder, 0\.002 now"):
        finetune(pretrained, synthland, split, _finetune_args(tmp_path, "direct", max_steps=2, learning_rate=2e-3))
    with pytest.raises(RunFolderError, match="already holds this run"):
        finetune(pretrained, synthland, split, _finetune_args(tmp_path, "direct", max_steps=2))
    stale = tmp_path / "checkpoints" / "stale.txt"
    stale.write_text("from the first run")
    report = finetune(pretrained, synthland, split, _finetune_args(tmp_path, "direct", max_steps=2, learning_rate=2e-3, overwrite=True))
    assert not stale.exists() and report["arguments"]["learning_rate"] == 2e-3


def test_overwrite_never_replaces_a_run_of_another_kind(tmp_path, synthland, split, pretrained):
    """`--out stefaland-demo --overwrite` for a finetuning wiped the whole demo, the base it had just loaded included."""
    from stefaland_hf.training.run_folder import build_manifest, prepare_run_folder

    prepare_run_folder(tmp_path, build_manifest("demo", {"seed": 1}))
    (tmp_path / "pretraining").mkdir()
    with pytest.raises(RunFolderError, match="holds a demo run, not a finetuning run; it is left alone"):
        finetune(pretrained, synthland, split, _finetune_args(tmp_path, "direct", max_steps=2, overwrite=True))
    assert (tmp_path / "pretraining").is_dir()


def test_validation_without_observations_or_sites_is_refused(tmp_path, synthland, split, pretrained):
    blank_val = _without_observations(synthland, split.sites("val"))
    with pytest.raises(ValueError, match="no val window of 60 days holds an observed streamflow"):
        finetune(pretrained, blank_val, split, _finetune_args(tmp_path / "a", "direct"))
    no_val = Split("no-val", split.train_sites, [], split.test_sites, split.train_period, split.val_period, split.test_period)
    with pytest.raises(ValueError, match="has no validation sites"):
        finetune(pretrained, synthland, no_val, _finetune_args(tmp_path / "b", "direct"))


def test_report_counts_test_sites_with_observations(tmp_path, synthland, split, pretrained):
    unobserved = split.sites("test")[:1]
    report = finetune(pretrained, _without_observations(synthland, unobserved), split, _finetune_args(tmp_path, "direct", max_steps=2))
    assert report["n_test_sites"] == len(split.sites("test")) and report["n_test_sites_observed"] == len(split.sites("test")) - 1


@pytest.mark.parametrize("field, value", [("max_steps", -5), ("eval_steps", 0), ("per_device_train_batch_size", 0), ("learning_rate", -1.0)])
def test_degenerate_finetuning_settings_are_refused(field, value):
    with pytest.raises(ValueError, match=rf"FinetuneArguments\.{field}={value!r}: expected"):
        _finetune_args("unused", "direct", **{field: value})
    with pytest.raises(ValueError, match="warmup=60: expected fewer days than seq_len=60"):
        _finetune_args("unused", "direct", warmup=60)


def test_demo_smoke(tmp_path):
    result = run_demo(tmp_path / "demo", demo_preset("smoke"), cache_dir=str(tmp_path / "cache"), disable_tqdm=True)
    assert len(result["summary"]) == 4 and "Oracle (true process model)" in result["summary"]
    assert result["summary"]["Oracle (true process model)"]["nse"] > 0.9
    for name in ("report.json", "nse_cdf.png", "hydrographs.png", "oracle_metrics_per_site.csv"):
        assert (tmp_path / "demo" / name).exists(), name
    with pytest.raises(RunFolderError, match="already holds this run"):
        run_demo(tmp_path / "demo", demo_preset("smoke"), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(RunFolderError, match=r"arguments\.demo\.seed: 111 in the folder, 5 now"):
        run_demo(tmp_path / "demo", demo_preset("smoke", ["demo.seed=5"]), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="the demo predicts streamflow only"):  # its oracle and table are streamflow's
        run_demo(tmp_path / "other", demo_preset("smoke", ["finetune.target_variables=soil_moisture"]))


@needs_camels
def test_two_camels_basins_end_to_end(tmp_path):
    dataset = load_site_dataset("camels_us", data_dir=str(CAMELS_US), cache_dir=str(tmp_path / "cache"), basins=["01022500", "01547700"])
    periods = {"train_period": ("1999-10-01", "2001-09-30"), "val_period": ("1999-10-01", "2001-09-30"), "test_period": ("1995-10-01", "1996-09-30")}
    # Temporal evaluation on both basins (two basins are too few for a spatial split).
    from stefaland_hf.data.splits import temporal_split

    split = temporal_split(2, periods["train_period"], ("2001-10-01", "2002-09-30"), periods["test_period"], site_ids=list(dataset["site_id"]))
    config = _tiny_zoo_config()
    pretrain(config, dataset, split.sites("train"), split.period("train"), PretrainArguments(output_dir=str(tmp_path / "pre"), num_train_epochs=1, samples_per_epoch=16, per_device_train_batch_size=8, seq_len=60))
    report = finetune(tmp_path / "pre" / "model", dataset, split, _finetune_args(tmp_path / "ft", "resconn"))
    assert report["evaluation"]["predictions"].shape == (2, 366, 1)
    assert np.isfinite(report["summary"]["nse"])


def test_hydrograph_panels_span_the_nse_range_and_refuse_empty_input(tmp_path):
    from stefaland_hf.experiments.plots import plot_hydrographs

    dates = np.arange("2002-01-01", "2002-04-11", dtype="datetime64[D]")
    rng = np.random.default_rng(0)
    observed = rng.gamma(2.0, 1.0, size=(6, len(dates)))
    noise = np.linspace(0.1, 3.0, 6)[:, None] * rng.standard_normal(len(dates))  # one pattern, growing: site 0 best ... 5 worst
    drawn = plot_hydrographs(dates, observed, {"model": observed + noise}, [f"s{i}" for i in range(6)], tmp_path / "h.png", n_sites=3)
    assert drawn == ["s0", "s2", "s5"]  # best, middle and worst NSE, not the first three
    assert (tmp_path / "h.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="no site has observations"):
        plot_hydrographs(dates, np.full_like(observed, np.nan), {"model": observed}, list("abcdef"), tmp_path / "e.png")
    with pytest.raises(ValueError, match="holds none of the dates"):
        plot_hydrographs(dates, observed, {"model": observed}, list("abcdef"), tmp_path / "w.png", window=("1990-01-01", "1990-02-01"))


def test_finetuning_logs_one_row_per_evaluation(tmp_path, synthland, split, pretrained, capsys):
    finetune(pretrained, synthland, split, _finetune_args(tmp_path, "direct", max_steps=4, eval_steps=2))
    log = pd.read_csv(tmp_path / "evaluations.csv")
    assert log["step"].tolist() == [2, 4] and {"loss", "nse", "kge"} <= set(log.columns)
    out = capsys.readouterr().out
    assert "[direct] step 2/4: val loss" in out and "[direct] stopped at step 4/4" in out and "{'loss'" not in out


def test_an_ungauged_site_in_a_finetuning_split_is_refused_by_name(tmp_path, synthland, split, pretrained):
    ungauged = split.sites("test")[0]
    marked = synthland.map(lambda row, i: {"gauged": i != ungauged}, with_indices=True, features=synthland.features)
    with pytest.raises(ValueError, match=rf"test.*{synthland['site_id'][int(ungauged)]}"):
        finetune(pretrained, marked, split, _finetune_args(tmp_path, "direct"))


def test_splits_are_drawn_over_gauged_sites_only(synthland):
    from stefaland_hf.experiments.benchmark import benchmark_preset, make_splits
    from stefaland_hf.training.arguments import SplitArguments

    marked = synthland.map(lambda row, i: {"gauged": i not in (0, 5)}, with_indices=True, features=synthland.features)
    splits = [SplitArguments(split="pub", folds=4, fold=k, val_fraction=0.2).build(marked, "synthland", seed=0) for k in range(4)]
    smoke = benchmark_preset("smoke")["benchmark"]
    splits += make_splits("pub", marked, 4, 0, smoke["train_period"], smoke["test_period"])
    for split in splits:
        used = np.concatenate([split.sites(p) for p in ("train", "val", "test")])
        assert not {0, 5} & set(used.tolist()) and split.site_ids == list(marked["site_id"])
    assert sorted(np.concatenate([s.sites("test") for s in splits[:4]]).tolist()) == [i for i in range(len(marked)) if i not in (0, 5)]


def test_a_validation_period_sets_early_stopping_apart_in_time(synthland):
    """--val-period: a temporal split validates every site over it (not the training period's last fifth); PUB/PUR
    validate their validation sites over it (not over the training period)."""
    from stefaland_hf.training.arguments import SplitArguments

    periods = {"train_period": ["2001-01-01", "2002-12-31"], "test_period": ["2003-01-01", "2003-12-31"]}
    carved = SplitArguments(split="temporal", **periods).build(synthland, "synthland", seed=0)
    apart = SplitArguments(split="temporal", val_period=["2000-01-01", "2000-12-31"], **periods).build(synthland, "synthland", seed=0)
    assert carved.period("val")[0] > carved.period("train")[0]  # the last fifth of the training period
    assert apart.period("train") == tuple(np.datetime64(d) for d in periods["train_period"])
    assert apart.period("val") == (np.datetime64("2000-01-01"), np.datetime64("2000-12-31"))
    assert len(apart.sites("val")) == len(apart.sites("train")) == len(synthland)
    pub = SplitArguments(split="pub", val_period=["2000-01-01", "2000-12-31"], **periods).build(synthland, "synthland", seed=0)
    assert pub.period("val") == apart.period("val") and not set(pub.sites("val")) & set(pub.sites("train"))
    with pytest.raises(ValueError, match="val_period"):
        SplitArguments(split="temporal", val_period=["2000-01-01"])


def test_a_model_trained_from_random_weights_has_a_card_without_a_base(tmp_path, synthland, split, pretrained):
    from stefaland_hf.hub.push import finish_artifact

    report = finetune(pretrained, synthland, split, _finetune_args(tmp_path, "direct", max_steps=2))
    finish_artifact(report, dataset_name="synthland", base_model=str(pretrained))
    card = (tmp_path / "model" / "README.md").read_text()
    assert "base_model" not in card.split("---")[1] and str(pretrained) not in card


def test_target_statistics_must_be_for_the_targets_trained(pretrained):
    """The target statistics come from one Normalization; statistics of other targets are refused by name."""
    from stefaland_hf.data.normalization import Normalization
    from stefaland_hf.training.finetune import build_finetune_model

    soil = Normalization([], [], [], [], [], [], ["soil_moisture"], [0.25], [0.08])
    with pytest.raises(ValueError, match=r"target_normalization is for \['soil_moisture'\].*\['streamflow'\]"):
        build_finetune_model(pretrained, _finetune_args("unused", "resconn"), soil)


@pytest.mark.parametrize("mode", ["resconn", "direct"])
def test_short_finetuning_lowers_the_validation_loss(tmp_path, synthland, split, pretrained, mode):
    """A few dozen steps must learn: the best validation loss is below the untrained model's (evaluated at step 0)."""
    args = _finetune_args(tmp_path, mode, max_steps=40, eval_steps=10, patience=10, learning_rate=1e-2, eval_on_start=True)
    finetune(pretrained, synthland, split, args)
    evaluations = pd.read_csv(tmp_path / "evaluations.csv")
    assert evaluations["step"].iloc[0] == 0 and evaluations["step"].iloc[-1] == 40
    untrained, trained = evaluations.iloc[0], evaluations.iloc[1:]
    assert trained["loss"].min() < 0.95 * untrained["loss"], evaluations[["step", "loss", "nse"]].to_string()
    assert trained["nse"].max() > untrained["nse"] + 0.2, evaluations[["step", "loss", "nse"]].to_string()


def test_options_that_do_not_apply_are_said(tmp_path, synthland, split, pretrained, capsys):
    finetune(pretrained, synthland, split, _finetune_args(tmp_path / "r", "resconn", stride=5, max_steps=1))
    finetune(pretrained, synthland, split, _finetune_args(tmp_path / "d", "direct", embedding_cache_stride=30, max_steps=1))
    finetune(pretrained, synthland, split, _finetune_args(tmp_path / "p", "linear_probe", head_dropout=0.3, max_steps=1))
    printed = capsys.readouterr().out
    assert "[resconn] --stride 5 does not apply" in printed and "[direct] --embedding_cache_stride does not apply" in printed
    assert "[linear_probe] --head_hidden_size 8, --head_dropout 0.3 do not apply to this head" in printed
