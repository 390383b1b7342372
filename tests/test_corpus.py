"""A pretraining corpus reads several site datasets as one: union vocabulary, pooled statistics,
windows per source, and the refusals (target leakage, unit conflicts)."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest
import torch

from stefaland_hf import StefaLandConfig
from stefaland_hf.data.corpus import CorpusError, CorpusSource, PretrainingCorpus
from stefaland_hf.data.schema import site_features
from stefaland_hf.data.samplers import WindowDataset
from stefaland_hf.experiments.reconstruction import hidden_with, reconstruction_table, zero_shot_reconstruction
from stefaland_hf.experiments.release import RecipeError, build_corpus, load_recipe, zero_shot_holdout
from stefaland_hf.training.pretrain import PretrainArguments, config_with_variables, pretrain_corpus

from conftest import tiny_config


def make_sites(n, days, start, dynamic, static, seed, gauged=True, targets=("streamflow",)):
    """A site dataset in the package schema with random values."""
    rng = np.random.default_rng(seed)
    dates = np.arange(np.datetime64(start), np.datetime64(start) + days).astype("datetime64[D]").tolist()
    rows = {
        "site_id": [f"s{seed}_{i:02d}" for i in range(n)], "region": ["r"] * n,
        "latitude": rng.uniform(30, 45, n).tolist(), "longitude": rng.uniform(-120, -80, n).tolist(),
        "dates": [dates] * n,
        "dynamic": [rng.uniform(0, 20, (days, len(dynamic))).astype(np.float32) for _ in range(n)],
        "static": [rng.uniform(0.1, 0.9, len(static)).astype(np.float32).tolist() for _ in range(n)],
        "targets": [np.full((days, len(targets)), np.nan, np.float32) for _ in range(n)],
        "gauged": [gauged if isinstance(gauged, bool) else bool(gauged[i]) for i in range(n)],
        "dynamic_variables": [list(dynamic)] * n, "static_variables": [list(static)] * n, "target_variables": [list(targets)] * n,
    }
    return datasets.Dataset.from_dict(rows, features=site_features(len(dynamic), len(static), len(targets)))


A_DYN, A_STAT = ["precipitation", "temperature_max", "temperature_min"], ["sand_fraction", "clay_fraction"]
B_DYN, B_STAT = ["precipitation", "shortwave_radiation"], ["sand_fraction", "silt_fraction"]


@pytest.fixture(scope="module")
def corpus():
    a = make_sites(4, 80, "2000-01-01", A_DYN, A_STAT, seed=1)
    b = make_sites(3, 50, "2015-04-01", B_DYN, B_STAT, seed=2, targets=("soil_moisture",))
    return PretrainingCorpus([CorpusSource("a", a, sites=[0, 1, 3]), CorpusSource("b", b, period=("2015-04-01", "2015-05-10"))])


def test_vocabulary_is_the_union_and_absent_variables_are_nan(corpus):
    assert corpus.dynamic_variables == ["precipitation", "temperature_max", "temperature_min", "shortwave_radiation"]
    assert corpus.static_variables == ["sand_fraction", "clay_fraction", "silt_fraction"]
    windows = corpus.windows(30, 1, corpus.dynamic_variables, corpus.static_variables)
    assert len(windows) == 3 * (80 - 30 + 1) + 3 * (40 - 30 + 1)
    batch = windows.__getitems__([0, len(windows) - 1])
    x = batch.arrays["x_dynamic"]
    assert np.isfinite(x[0, :, :3]).all() and np.isnan(x[0, :, 3]).all()  # source a has no shortwave
    assert np.isnan(x[1, :, 1:3]).all() and np.isfinite(x[1, :, [0, 3]]).all()  # source b has no temperatures
    assert np.isnan(batch.arrays["x_static"][0, 2]) and np.isnan(batch.arrays["x_static"][1, 1])


def test_batches_come_back_in_the_requested_order(corpus):
    windows = corpus.windows(30, 1, corpus.dynamic_variables, corpus.static_variables)
    own = WindowDataset(corpus.sources[1].arrays, period=corpus.sources[1].period, seq_len=30,
                        dynamic_variables=corpus.dynamic_variables, static_variables=corpus.static_variables, target_variables=[])
    offset = int(windows.offsets[1])
    picked = windows.__getitems__([offset + 5, 7, offset + 2]).arrays["x_dynamic"]
    np.testing.assert_array_equal(picked[0], own[5]["x_dynamic"])
    np.testing.assert_array_equal(picked[2], own[2]["x_dynamic"])
    assert np.isnan(picked[1][:, 3]).all()


def test_pooled_normalization_is_that_of_all_sources_together(corpus):
    norm = corpus.fit_normalization(corpus.dynamic_variables, corpus.static_variables)
    a, b = corpus.sources
    precip = np.concatenate([
        a.arrays.gather_dynamic(a.sites, np.zeros(3, int), 80, a.arrays.column_map("dynamic", ["precipitation"])).ravel(),
        b.arrays.gather_dynamic(b.sites, np.zeros(3, int), 40, b.arrays.column_map("dynamic", ["precipitation"])).ravel(),
    ])
    np.testing.assert_allclose(norm.dynamic_mean[0], precip.mean(), rtol=1e-6)
    np.testing.assert_allclose(norm.dynamic_std[0], precip.std(), rtol=1e-5)
    sand = np.concatenate([a.arrays.static[a.sites, 0], b.arrays.static[:, 0]])
    np.testing.assert_allclose(norm.static_mean[0], sand.mean(), rtol=1e-6)
    assert norm.fitted_on["sources"]["a"]["n_sites"] == 3 and norm.fitted_on["n_sites"] == 6


def test_targets_as_inputs_are_refused(corpus):
    with pytest.raises(CorpusError, match=r"\['streamflow'\] are prediction targets"):
        corpus.check(corpus.dynamic_variables + ["streamflow"], corpus.static_variables)


def test_sources_disagreeing_on_a_unit_are_refused_naming_the_variable():
    a = make_sites(2, 40, "2000-01-01", A_DYN, A_STAT, seed=1)
    b = make_sites(2, 40, "2000-01-01", B_DYN, B_STAT, seed=2)
    corpus = PretrainingCorpus([CorpusSource("a", a), CorpusSource("b", b, units={"precipitation": "in/day"})])
    with pytest.raises(CorpusError, match=r"variable 'precipitation': the corpus sources disagree on its unit \(\{'a': 'mm/day', 'b': 'in/day'\}\)"):
        corpus.check(corpus.dynamic_variables, corpus.static_variables)


def test_pretraining_on_two_sources_saves_a_model_with_the_union_vocabulary(tmp_path, corpus):
    config = config_with_variables(tiny_config(), corpus.dynamic_variables, corpus.static_variables)
    args = PretrainArguments(output_dir=str(tmp_path / "run"), num_train_epochs=1, per_device_train_batch_size=8, seq_len=30, samples_per_epoch=32, learning_rate=1e-3)
    model = pretrain_corpus(config, corpus, args)
    assert model.config.dynamic_variables == corpus.dynamic_variables
    assert model.config.dynamic_groups == {"temperature": ["temperature_max", "temperature_min"]}
    saved = json.loads((tmp_path / "run" / "model" / "normalization.json").read_text())
    assert set(saved["fitted_on"]["sources"]) == {"a", "b"}
    assert "a + b" in (tmp_path / "run" / "model" / "README.md").read_text()


def test_zero_shot_holdout_takes_every_nth_ungauged_site_by_id():
    data = make_sites(10, 40, "2000-01-01", A_DYN, A_STAT, seed=3, gauged=[i < 3 for i in range(10)])
    np.testing.assert_array_equal(zero_shot_holdout(data, {"every": 3, "ungauged_only": True}, "x"), [3, 6, 9])
    np.testing.assert_array_equal(zero_shot_holdout(data, {"every": 4}, "x"), [0, 4, 8])
    with pytest.raises(RecipeError, match="zero_shot_holdout must be"):
        zero_shot_holdout(data, {"every": 1}, "recipe")


def test_recipe_errors_name_the_problem(tmp_path):
    recipe = {"architecture": "stefaland-tiny", "pretrain": {"num_train_epochs": 1, "epoch": 2}, "sources": [{"name": "x", "dataset": "camels_us"}]}
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    with pytest.raises(RecipeError, match=r"pretrain has unknown fields \['epoch'\]"):
        load_recipe(tmp_path)
    recipe["pretrain"] = {"num_train_epochs": 1}
    recipe["sources"][0]["options"] = {"data_dir": "{data}/camels_us", "extra_data_dirs": ["{unpacked}/more"]}
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    with pytest.raises(RecipeError, match=r"extra_data_dirs needs the unpacked-archives folder \(--unpacked DIR\)"):
        build_corpus(load_recipe(tmp_path), "/data", None)
    recipe["sources"][0]["options"] = {"data_dir": "{shared}/camels_us"}
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    with pytest.raises(RecipeError, match=r"unknown placeholder \{shared\}"):
        build_corpus(load_recipe(tmp_path), "/data", None)


def test_the_shipped_recipe_loads():
    recipe = load_recipe("modeling/stefaland-conus")
    assert [s["name"] for s in recipe["sources"]] == ["camels_us", "hydrodl_smap"]


class _EchoModel(torch.nn.Module):
    """Reconstructs by copying its (unhidden) inputs, or a constant where ``blind``: NSE 1 vs below 0."""

    def __init__(self, config, blind=False):
        super().__init__()
        self.config, self.blind = config, blind

    def forward(self, x_dynamic, x_static, dynamic_mask=None, static_mask=None):
        dyn, stat = x_dynamic.clone(), x_static.clone()
        if self.blind and dynamic_mask is not None:
            dyn[dynamic_mask] = 100.0
        return type("Out", (), {"dynamic_reconstruction": dyn, "static_reconstruction": stat})


def test_zero_shot_scores_the_hidden_variable_over_the_period():
    data = make_sites(4, 120, "2000-01-01", A_DYN, A_STAT, seed=4)
    config = StefaLandConfig(dynamic_variables=A_DYN + ["shortwave_radiation"], static_variables=A_STAT,
                             static_groups={"soil": A_STAT}, dynamic_groups={})
    perfect = zero_shot_reconstruction(_EchoModel(config), data, [0, 2, 3], ("2000-01-10", "2000-04-20"), seq_len=30)
    assert perfect["dynamic"] == pytest.approx({n: 1.0 for n in A_DYN})  # shortwave: not in the data, not scored
    assert perfect["static"] == pytest.approx({n: 1.0 for n in A_STAT})
    blind = zero_shot_reconstruction(_EchoModel(config, blind=True), data, [0, 2, 3], ("2000-01-10", "2000-04-20"), seq_len=30)
    assert all(v < -10 for v in blind["dynamic"].values())
    table = reconstruction_table({"echo": perfect, "blind": blind})
    assert "| precipitation | forcing, median NSE over sites | 1.000 |" in table


def test_a_scored_forcing_is_hidden_with_its_group_and_derivation_family():
    """CAMELS' temperature_mean is (max + min) / 2: scoring temperature_max with min and mean shown measured the
    identity max = 2 mean - min (the release card's 0.920), not the model. The whole family is hidden."""
    dyn = ["precipitation", "temperature_max", "temperature_min", "temperature_mean"]
    data = make_sites(3, 120, "2000-01-01", dyn, A_STAT, seed=5)
    config = StefaLandConfig(dynamic_variables=dyn, static_variables=A_STAT, static_groups={"soil": A_STAT}, dynamic_groups={})
    assert hidden_with("temperature_max", config) == hidden_with("temperature_mean", config) == [1, 2, 3]
    assert hidden_with("precipitation", config) == [0]
    without_mean = StefaLandConfig(dynamic_variables=dyn[:3], static_variables=A_STAT, static_groups={"soil": A_STAT}, dynamic_groups={})
    assert hidden_with("temperature_max", without_mean) == [1]  # no identity to close without the mean
    masks = []

    class Spy(_EchoModel):
        def forward(self, x_dynamic, x_static, dynamic_mask=None, static_mask=None):
            if dynamic_mask is not None:
                masks.append(dynamic_mask[0, 0].tolist())
            return super().forward(x_dynamic, x_static, dynamic_mask, static_mask)

    zero_shot_reconstruction(Spy(config), data, [0, 1], ("2000-01-10", "2000-04-20"), seq_len=30)
    assert [True, False, False, False] in masks and [False, True, True, True] in masks
    assert not any(m in masks for m in ([False, True, False, False], [False, False, False, True]))


def test_the_release_recipe_takes_pretraining_flags_and_refuses_the_rest(monkeypatch, tmp_path):
    """examples/pretrain.py --recipe passed on only the output folder: --max-steps, --seed, ... were dropped silently."""
    import importlib.util
    from pathlib import Path

    from stefaland_hf.experiments import release

    spec = importlib.util.spec_from_file_location("pretrain_example", Path(__file__).resolve().parents[1] / "examples" / "pretrain.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    calls = []
    monkeypatch.setattr(release, "run_release_pretraining", lambda *a, **k: calls.append(k))
    recipe = ["--recipe", "modeling/stefaland-conus", "--output-dir", str(tmp_path)]
    example.main([*recipe, "--max-steps", "5", "--seed", "7", "--use-cpu", "true"])
    assert {k: calls[0][k] for k in ("max_steps", "seed", "use_cpu")} == {"max_steps": 5, "seed": 7, "use_cpu": True}
    assert "num_train_epochs" not in calls[0]  # not given: the recipe's own
    with pytest.raises(release.RecipeError, match=r"drop \['dataset', 'variables_from_data'\]"):
        example.main([*recipe, "--dataset", "camels_us", "--variables-from-data"])


def test_reconstruct_refuses_camels_options_for_another_dataset():
    from argparse import Namespace

    from stefaland_hf.experiments.reconstruction import run_cli

    with pytest.raises(ValueError, match="apply to --dataset camels_us, not hydrodl_smap"):
        run_cli(Namespace(dataset="hydrodl_smap", data_dir="x", extra_data_dir=["y"], ungauged=None))


def test_reconstruct_refuses_sites_a_model_was_pretrained_on(tmp_path):
    """A model from a recipe lists the sites kept out of its pretraining; scoring others is not zero-shot."""
    from stefaland_hf import StefaLandForPretraining
    from stefaland_hf.experiments.reconstruction import check_never_seen

    StefaLandForPretraining(tiny_config()).save_pretrained(tmp_path / "model")
    (tmp_path / "model" / "zero_shot_sites.json").write_text(json.dumps({"camels_us": ["01013500", "01118300"]}))
    model = StefaLandForPretraining.from_pretrained(tmp_path / "model")
    check_never_seen(model, "m", ["01013500"])
    with pytest.raises(ValueError, match=r"1 site\(s\) were in the pretraining of m .*'01022500'"):
        check_never_seen(model, "m", ["01013500", "01022500"])


def test_a_checkpoint_of_a_recipe_run_is_released_as_a_zoo_model(tmp_path):
    """A recipe pretraining whose run will not survive ships its checkpoint: weights, statistics, held-out sites, card."""
    from safetensors.torch import load_file

    from stefaland_hf import StefaLandForPretraining
    from stefaland_hf.experiments.release import release_checkpoint, run_release_pretraining

    recipe = {"architecture": "stefaland-tiny", "sources": [{"name": "synthland", "dataset": "synthland", "options": {"config_name": "tiny"},
              "zero_shot_holdout": {"every": 4}}],
              "pretrain": {"max_steps": 4, "save_steps": 2, "samples_per_epoch": 16, "per_device_train_batch_size": 8, "seq_len": 60}}
    (tmp_path / "zoo").mkdir()
    (tmp_path / "zoo" / "recipe.json").write_text(json.dumps(recipe))
    run_release_pretraining(tmp_path / "zoo", tmp_path / "run", "/unused", cache_dir=str(tmp_path / "cache"))
    out = release_checkpoint(tmp_path / "zoo", tmp_path / "run" / "checkpoints" / "step_2", "/unused", cache_dir=str(tmp_path / "cache"),
                             compute="a test, 1 thread")
    model = StefaLandForPretraining.from_pretrained(out)
    saved = load_file(tmp_path / "run" / "checkpoints" / "step_2" / "model.safetensors")
    assert all((model.state_dict()[k] == v).all() for k, v in saved.items())
    assert json.loads((out / "zero_shot_sites.json").read_text())["synthland"]
    assert "2 optimizer steps (checkpoint step_2 of recipe.json's 4); a test, 1 thread" in (out / "README.md").read_text()
    assert len((out / "loss_curve.csv").read_text().strip().splitlines()) == 3 and not list(out.glob("*.py"))
    recipe["pretrain"]["seed"] = 5
    recipe["sources"][0]["options"]["config_name"] = "default"  # another corpus: its statistics differ
    (tmp_path / "zoo" / "recipe.json").write_text(json.dumps(recipe))
    with pytest.raises(RecipeError, match="differ from the recipe's corpus"):
        release_checkpoint(tmp_path / "zoo", tmp_path / "run" / "checkpoints" / "step_2", "/unused", cache_dir=str(tmp_path / "cache"))
