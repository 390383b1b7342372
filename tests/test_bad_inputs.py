"""Bad inputs give a clear error or a finite result, never a silently wrong number (issue 31; docs/bad_input.md).

Only NaN means missing: +-inf and fill values (1e30, netCDF's 9.96921e36) are refused by the model and by the
builders' value check, naming the variable; a seeded property test feeds random mixes of them through the model, the
value check and prediction.
"""

import re

import numpy as np
import pytest
import torch
from conftest import TINY_DYNAMIC, TINY_STATIC, tiny_config, tiny_inputs
from site_data import site_dataset

from stefaland_hf import StefaLandForPretraining, StefaLandForStaticRegression, StefaLandForTimeSeriesRegression, StefaLandModel
from stefaland_hf.data.errors import DataFormatError, PhysicalRangeCheck
from stefaland_hf.evaluation import predict_sites

NETCDF_FILL = 9.96921e36


def _model(cls=StefaLandForTimeSeriesRegression, **overrides):
    torch.manual_seed(0)
    return cls(tiny_config(**overrides)).eval()


@pytest.mark.parametrize("value, reason", [(float("inf"), "infinite; only NaN means missing"), (-float("inf"), "infinite"), (1e30, "fill value"), (NETCDF_FILL, "fill value")])
@pytest.mark.parametrize("where", ["x_dynamic", "x_static"])
def test_inf_and_fill_values_are_refused_naming_the_variable(value, reason, where):
    """inf was read as missing without a word, and one 1e30 turned the whole sample's output into NaN."""
    x, c = tiny_inputs()
    if where == "x_dynamic":
        x[1, 7, 2] = value
        name = "x_dynamic[1, 7, 2] (temperature_min)"
    else:
        c[2, 4] = value
        name = "x_static[2, 4] (sand_fraction)"
    for model in (_model(), _model(head_mode="direct"), _model(StefaLandModel)):
        with pytest.raises(ValueError, match=rf"^{re.escape(name)} = .* is .*{reason}.*replace them with NaN"):
            model(x_dynamic=x, x_static=c)


def test_refused_even_with_a_cached_embedding():
    """A frozen-mode head given a precomputed backbone_embedding reads the raw inputs too: it checks them as well."""
    model = _model()
    x, c = tiny_inputs()
    embedding = model.embed(x, c)
    x[0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="infinite"):
        model(x_dynamic=x, x_static=c, backbone_embedding=embedding)


def test_nan_stays_missing_and_large_plausible_values_pass():
    model = _model()
    x, c = tiny_inputs()
    x[0, :5, 0] = float("nan")
    x[1, 3, 0] = 1825.0  # the world-record daily rainfall: extreme, not a fill value
    c[0, 2] = 8848.0
    assert torch.isfinite(model(x_dynamic=x, x_static=c).prediction).all()


@pytest.mark.parametrize("value", [float("inf"), 1e30, NETCDF_FILL, -1e25])
def test_range_check_refuses_fill_values_without_an_upper_bound(value):
    """streamflow has no upper bound: 1e30 passed the builders' value check."""
    with pytest.raises(DataFormatError, match=r"streamflow = .* is outside its physical range"):
        PhysicalRangeCheck()(np.array([1.0, value]), "streamflow", "/q.txt", lambda i: (i[0] + 1, "column Q"))
    values = np.array([1.0, value])
    PhysicalRangeCheck("nan")(values, "streamflow", "/q.txt", lambda i: (i[0] + 1, "column Q"))
    assert values[0] == 1.0 and np.isnan(values[1])


# ------------------------------------------------------------------------------------------------
# property test: random non-finite and extreme values -> a clear error or a finite output
# ------------------------------------------------------------------------------------------------
_SPECIAL = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, NETCDF_FILL, 3e38, -3e38, 1e7, 1e5, -1e5, 0.0, 1e-30])


def _corrupt(rng, values: np.ndarray, shares=(0.0, 0.01, 0.2, 1.0)) -> np.ndarray:
    values = values.copy()
    hits = rng.random(values.shape) < rng.choice(shares)
    values[hits] = rng.choice(_SPECIAL, size=int(hits.sum()))
    return values


def _clear(error: Exception) -> bool:
    text = str(error)
    return ("infinite" in text or "standard deviations" in text) and "replace them with NaN" in text


CASES = 120


def test_random_bad_values_through_the_models_give_a_clear_error_or_finite_output():
    rng = np.random.default_rng(31)
    models = [
        _model(), _model(head_mode="direct"), _model(output_transform="none"), _model(StefaLandForPretraining),
        _model(StefaLandForStaticRegression, target_variables=["sand_fraction"], target_mean=[0.4], target_std=[0.1]),
    ]
    outcomes = {"error": 0, "finite": 0}
    for case in range(CASES):
        x, c = (t.numpy() for t in tiny_inputs(batch=2, length=int(rng.integers(1, 30)), seed=case))
        x, c = _corrupt(rng, x), _corrupt(rng, c)
        model = models[case % len(models)]
        raw_ok = np.all(np.isnan(x) | (np.abs(x) < 1e5)) and np.all(np.isnan(c) | (np.abs(c) < 1e5))
        try:
            with torch.no_grad():
                out = model(x_dynamic=torch.from_numpy(x), x_static=torch.from_numpy(c))
        except ValueError as error:
            assert _clear(error), f"case {case}: unclear error {error}"
            assert not raw_ok, f"case {case}: values within 1e5 were refused: {error}"
            outcomes["error"] += 1
            continue
        result = out.prediction if hasattr(out, "prediction") else out.dynamic_reconstruction
        assert torch.isfinite(result).all(), f"case {case}: non-finite output without an error"
        outcomes["finite"] += 1
    assert outcomes["error"] > 10 and outcomes["finite"] > 10, outcomes  # both branches were exercised


def test_random_bad_values_through_the_value_check():
    rng = np.random.default_rng(32)
    for case in range(CASES):
        values = _corrupt(rng, rng.uniform(0, 50, size=20))
        bad = ~np.isnan(values) & ((values < 0) | (values > 1e19))
        try:
            PhysicalRangeCheck()(values.copy(), "streamflow", "/q.txt", lambda i: (i[0] + 1, "column Q"))
            assert not bad.any(), f"case {case}: {values[bad]} passed"
        except DataFormatError as error:
            assert bad.any() and "streamflow = " in str(error) and "out_of_range='nan'" in str(error)


def test_random_bad_values_through_prediction():
    rng = np.random.default_rng(33)
    model = _model()
    outcomes = {"error": 0, "finite": 0}
    for case in range(20):
        n, t = 3, 40
        x, c = (v.numpy() for v in tiny_inputs(batch=n, length=t, seed=case))
        x, c = _corrupt(rng, x, (0.0, 0.0, 0.01)), _corrupt(rng, c, (0.0, 0.0, 0.1))
        ds = site_dataset(x, c, np.full((n, t, 1), np.nan, np.float32), c[:, 0], c[:, 1], variables=(TINY_DYNAMIC, TINY_STATIC, ["streamflow"]))
        try:
            res = predict_sites(model, ds, period=None, seq_len=20, warmup=0, target_variables=["streamflow"], batch_size=2)
        except ValueError as error:
            assert _clear(error), f"case {case}: unclear error {error}"
            outcomes["error"] += 1
            continue
        assert np.isfinite(res["predictions"][:, res["first_predicted"]:]).all(), f"case {case}"
        outcomes["finite"] += 1
    assert outcomes["error"] and outcomes["finite"], outcomes


@pytest.mark.parametrize("cut", ["batch", "days"])
def test_a_zero_length_batch_is_a_clear_error(cut):
    """It failed inside torch ("cannot reshape tensor of 0 elements", "Expected sequence length to be larger than 0")."""
    x, c = tiny_inputs()
    x, c = (x[:0], c[:0]) if cut == "batch" else (x[:, :0], c)
    for model in (_model(), _model(StefaLandForPretraining), _model(StefaLandModel)):
        with pytest.raises(ValueError, match=r"x_dynamic: shape .* holds no (sample|day) \(a zero-length batch or window\)"):
            model(x_dynamic=x, x_static=c)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5])
def test_prediction_refuses_a_batch_size_below_one(batch_size):
    """--batch-size 0 failed with range()'s "arg 3 must not be zero"."""
    x, c = (v.numpy() for v in tiny_inputs())
    ds = site_dataset(x, c, np.full((3, 40, 1), np.nan, np.float32), c[:, 0], c[:, 1], variables=(TINY_DYNAMIC, TINY_STATIC, ["streamflow"]))
    with pytest.raises(ValueError, match=r"batch_size \(--batch-size\): expected a positive number of windows per batch"):
        predict_sites(_model(), ds, period=None, seq_len=20, warmup=0, target_variables=["streamflow"], batch_size=batch_size)


def test_a_truncated_dataset_cache_names_its_folder_and_the_fix(tmp_path):
    """pyarrow's "Expected to be able to read N bytes for message body" named no path and no fix."""
    from stefaland_hf.data import load_site_dataset

    load_site_dataset("synthland", config_name="tiny", cache_dir=str(tmp_path))
    (arrow,) = tmp_path.rglob("*.arrow")
    data = arrow.read_bytes()
    arrow.write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match=rf"dataset cache {re.escape(str(arrow.parent))}: unreadable .* delete the folder {re.escape(str(arrow.parent))} to rebuild it"):
        load_site_dataset("synthland", config_name="tiny", cache_dir=str(tmp_path))


def test_a_corpus_period_outside_the_record_names_its_source():
    """A recipe period outside a source's record failed later, in a window sampler that named no source."""
    from stefaland_hf.data.corpus import CorpusSource

    x, c = (v.numpy() for v in tiny_inputs())
    ds = site_dataset(x, c, np.full((3, 40, 1), np.nan, np.float32), c[:, 0], c[:, 1], variables=(TINY_DYNAMIC, TINY_STATIC, ["streamflow"]))
    with pytest.raises(ValueError, match=r"^corpus source 'camels': period: 1990-01-01\.\.1990-12-31 does not overlap the record 2000-01-01\.\.2000-02-09"):
        CorpusSource("camels", ds, period=("1990-01-01", "1990-12-31"))


@pytest.mark.parametrize("value", [float("inf"), -float("inf"), 1e30])
def test_inf_and_fill_values_in_labels_are_refused(value):
    """Infinite labels were dropped from the loss as if missing (only NaN means missing)."""
    x, c = tiny_inputs()
    labels = torch.rand(3, 40, 1)
    labels[0, 3, 0] = value
    with pytest.raises(ValueError, match=r"^labels\[0, 3, 0\] \(streamflow\) = .*replace them with NaN"):
        _model()(x_dynamic=x, x_static=c, labels=labels)
    static_labels = torch.full((3, 1), 0.4)
    static_labels[1, 0] = value
    model = _model(StefaLandForStaticRegression, target_variables=["sand_fraction"], target_mean=[0.4], target_std=[0.1])
    with pytest.raises(ValueError, match=r"^labels\[1, 0\] \(sand_fraction\)"):
        model(x_dynamic=x, x_static=c, labels=static_labels)


def test_a_recipe_period_outside_the_record_names_the_recipe_and_the_source(tmp_path):
    import json

    from stefaland_hf.experiments.release import RecipeError, build_corpus, load_recipe

    recipe = {"architecture": "stefaland-tiny", "pretrain": {"num_train_epochs": 1},
              "sources": [{"name": "synth", "dataset": "synthland", "options": {"config_name": "tiny"}, "period": ["1900-01-01", "1900-12-31"]}]}
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    with pytest.raises(RecipeError, match=rf"^{re.escape(str(tmp_path / 'recipe.json'))} source 'synth': corpus source 'synth': period: 1900-01-01\.\.1900-12-31 does not overlap the record"):
        build_corpus(load_recipe(tmp_path), "/data", None, cache_dir=str(tmp_path / "cache"))
