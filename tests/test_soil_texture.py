"""The soil-texture experiment on SynthLand tiny: static-regression k-fold CV end to end, leakage checks, RF baseline, reload."""

from pathlib import Path

import numpy as np
import pytest

from stefaland_hf import StefaLandConfig, StefaLandForStaticRegression
from stefaland_hf.data import load_site_dataset
from stefaland_hf.data.site_arrays import SiteArrays
from stefaland_hf.experiments.soil_texture import cross_validate_static, random_forest_features
from stefaland_hf.training.pretrain import PretrainArguments, pretrain
from stefaland_hf.training.static_regression import StaticRegressionArguments, predict_static

TARGETS = ["sand_fraction", "clay_fraction"]
PERIOD = ("2000-01-01", "2001-12-31")


def _tiny_zoo_config():
    config = StefaLandConfig.from_pretrained(Path(__file__).resolve().parents[1] / "modeling" / "stefaland-tiny")
    return StefaLandConfig(**{**config.to_dict(), "d_model": 16, "num_attention_heads": 2, "num_hidden_layers": 1, "ffn_dim": 32, "variable_mlp_dim": 8})


@pytest.fixture(scope="module")
def synthland(tmp_path_factory):
    return load_site_dataset("synthland", config_name="tiny", cache_dir=str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, synthland):
    out = tmp_path_factory.mktemp("pretrain")
    pretrain(_tiny_zoo_config(), synthland, np.arange(16), PERIOD, PretrainArguments(output_dir=str(out), num_train_epochs=1, samples_per_epoch=16, per_device_train_batch_size=8, seq_len=60))
    return out / "model"


def _args(path, **overrides):
    kwargs = dict(
        output_dir=str(path), seq_len=60, samples_per_site=2, eval_windows=3, period=PERIOD, per_device_train_batch_size=8,
        max_steps=4, eval_steps=2, head_hidden_size=8, val_fraction=0.2, disable_tqdm=True,
    )
    kwargs.update(overrides)
    return StaticRegressionArguments(**kwargs)


@pytest.fixture(scope="module")
def cv(tmp_path_factory, synthland, pretrained):
    out = tmp_path_factory.mktemp("cv")
    args = _args(out, hidden_variables=["silt_fraction"])
    return cross_validate_static(pretrained, synthland, TARGETS, folds=2, seed=3, args=args, rf_params={"n_estimators": 20}), out


def test_cross_validation_end_to_end(cv, synthland):
    result, out = cv
    assert result["models"] == ["stefaland", "random_forest"] and len(result["folds"]) == 2
    ids = list(synthland["site_id"])
    tests = [set(f["test_sites"]) for f in result["folds"]]
    assert not tests[0] & tests[1] and tests[0] | tests[1] == set(ids)  # folds are disjoint and cover every site
    for fold in result["folds"]:
        train, val, test = set(fold["train_sites"]), set(fold["val_sites"]), set(fold["test_sites"])
        assert not (train | val) & test and not train & val and val
        for model in result["models"]:
            for target in TARGETS:
                assert np.isfinite(fold["scores"][model][target]["r2"]) and np.isfinite(fold["scores"][model][target]["pearson_r"])
    predictions = result["predictions"]
    assert predictions["stefaland"].shape == predictions["random_forest"].shape == (16, 2)
    assert np.isfinite(predictions["stefaland"]).all() and np.isfinite(predictions["random_forest"]).all()
    for model in result["models"]:
        for target in TARGETS:
            assert set(result["summary"][model][target]) == {"r2_mean", "r2_se", "pearson_r_mean", "pearson_r_se"}
    for name in ("report.json", "scores.csv", "predictions.csv"):
        assert (out / name).exists(), name


def test_normalization_fitted_on_training_folds_only(cv, synthland):
    result, _ = cv
    labels = SiteArrays(synthland).static_matrix(TARGETS)
    ids = list(synthland["site_id"])
    for fold in result["folds"]:
        norm = fold["normalization"]
        assert norm["fitted_on_sites"] == fold["train_sites"]
        assert not set(norm["fitted_on_sites"]) & set(fold["test_sites"])
        rows = [ids.index(s) for s in fold["train_sites"]]
        np.testing.assert_allclose(norm["target_mean"], labels[rows].mean(0), rtol=1e-5)
        np.testing.assert_allclose(norm["target_std"], labels[rows].std(0), rtol=1e-4)
        assert not set(fold["rf_impute_sites"]) & set(fold["test_sites"])
        saved = StefaLandForStaticRegression.from_pretrained(fold["artifact"]).config
        np.testing.assert_allclose(saved.target_mean, norm["target_mean"], rtol=1e-6)


def test_random_forest_features_hide_targets(synthland, pretrained):
    config = StefaLandConfig.from_pretrained(pretrained)
    features, names = random_forest_features(synthland, config.dynamic_variables, config.static_variables, exclude=TARGETS + ["silt_fraction"], period=PERIOD)
    assert features.shape == (16, len(names)) and not set(names) & set(TARGETS + ["silt_fraction"])
    assert "precipitation_mean" in names and "precipitation_std" in names


def test_texture_derived_inputs_left_visible_are_warned_about(tmp_path, synthland, pretrained):
    with pytest.warns(UserWarning, match=r"\['silt_fraction'.*computed from soil texture and stay inputs"):
        cross_validate_static(pretrained, synthland, TARGETS, folds=2, seed=4, args=_args(tmp_path), run_model=False)


def test_saved_model_reproduces_predictions(cv, synthland):
    result, _ = cv
    fold = result["folds"][0]
    model = StefaLandForStaticRegression.from_pretrained(fold["artifact"])
    assert model.config.target_variables == TARGETS and model.config.head_mode == "resconn"
    ids = list(synthland["site_id"])
    rows = np.array([ids.index(s) for s in fold["test_sites"]])
    assert model.config.hidden_static_variables == ["silt_fraction"]  # trained with silt hidden: the reload hides it too
    positions = [result["predictions"]["site_ids"].index(s) for s in fold["test_sites"]]
    for hidden in (["silt_fraction"], []):  # a caller who forgets the hidden set gets the same predictions
        again = predict_static(model, synthland, rows, PERIOD, seq_len=60, n_windows=3, hidden_variables=hidden)
        np.testing.assert_allclose(again["predictions"], result["predictions"]["stefaland"][positions], rtol=1e-5, atol=1e-6)


def test_direct_mode_fits_input_normalization(tmp_path, synthland, pretrained, capsys):
    args = _args(tmp_path, head_mode="direct", save_models=False)
    result = cross_validate_static(pretrained, synthland, TARGETS, folds=2, seed=3, args=args, random_forest=False)
    # the console: one line per evaluation, not Trainer's raw log dicts
    console = capsys.readouterr().out
    assert console.count("[static direct] step 2/4: val loss") == 2 and "'eval_loss'" not in console
    assert result["models"] == ["stefaland"]
    for fold in result["folds"]:
        assert fold["normalization"]["inputs"]["n_sites"] == len(fold["train_sites"]) and fold["artifact"] is None


def test_cross_validation_folder_is_not_reused_silently(cv, synthland, pretrained):
    from stefaland_hf.training.run_folder import RunFolderError

    _, out = cv
    with pytest.raises(RunFolderError, match=r"arguments\.cv_seed: 3 in the folder, 4 now"):
        cross_validate_static(pretrained, synthland, TARGETS, folds=2, seed=4, args=_args(out, hidden_variables=["silt_fraction"]))
    with pytest.raises(ValueError, match=r"StaticRegressionArguments\.max_steps=0: expected"):
        _args(out, max_steps=0)


def test_push_to_hub_is_refused_for_static_regression(tmp_path):
    """Trainer would push each fold's checkpoints under the checkpoint folder's name, never the finished models."""
    with pytest.raises(ValueError, match="push_to_hub: push a fold's saved model with `stefaland push model`"):
        _args(tmp_path, push_to_hub=True)
