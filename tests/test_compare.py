import json

import pytest

from stefaland_hf.experiments.compare import compare, load_runs


def _results(medians: dict[str, list[float]], test_sites=((0, 1), (2, 3)), site_ids=None, test_period=None) -> dict:
    folds = []
    for i, sites in enumerate(test_sites):
        models = {m: {"summary": {"nse": v[i], "rmse": 1 - v[i]}, "steps": 100 * (i + 1)} for m, v in medians.items()}
        split = {"test_sites": list(sites), "site_ids": site_ids, "test_period": test_period}
        folds.append({"fold": i, "split": split, "models": models})
    return {"folds": folds}


def test_paired_difference_by_fold():
    runs = {
        "base": _results({"resConn": [0.5, 0.3], "LSTM": [0.4, 0.4]}),
        "variant": _results({"resConn": [0.6, 0.2]}),
    }
    table = compare(runs, ("base", "resConn"))
    # LSTM - resConn per fold: -0.1, +0.1 -> mean 0.000, s.e. std([-0.1, 0.1], ddof=1)/sqrt(2) = 0.1; better in 1 of 2
    assert "| base | LSTM | 0.400 ± 0.000 | 0.400, 0.400 | 0.000 ± 0.100 | 1/2 | 150 |" in table
    # variant - base: +0.1, -0.1; the reference row is marked
    assert "| variant | resConn | 0.400 ± 0.200 | 0.600, 0.200 | 0.000 ± 0.100 | 1/2 | 150 |" in table
    assert "| base | resConn | 0.400 ± 0.100 | 0.500, 0.300 | (reference) |  | 150 |" in table
    # lower RMSE is better: LSTM's RMSE 0.6, 0.6 vs resConn's 0.5, 0.7 -> better in fold 1 only
    assert "| base | LSTM | 0.600 ± 0.000 | 0.600, 0.600 | 0.000 ± 0.100 | 1/2 |" in compare(runs, ("base", "resConn"), metric="rmse")


def test_refuses_other_folds_and_unknown_reference(tmp_path):
    runs = {"base": _results({"resConn": [0.5, 0.3]}), "other": _results({"resConn": [0.5, 0.3]}, test_sites=((0, 2), (1, 3)))}
    with pytest.raises(ValueError, match="other folds"):
        compare(runs, ("base", "resConn"))
    with pytest.raises(ValueError, match="no model 'LSTM'"):
        compare({"base": runs["base"]}, ("base", "LSTM"))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text(json.dumps(runs["base"]))
    assert load_runs([f"a={tmp_path / 'run'}"])["a"] == runs["base"]
    with pytest.raises(FileNotFoundError, match=r"neither .*results.json nor .*seed_N/results.json found"):
        load_runs([f"b={tmp_path / 'missing'}"])
    with pytest.raises(ValueError, match="expected LABEL=DIR"):
        load_runs([str(tmp_path)])


def test_refuses_the_same_row_numbers_of_other_basins_or_another_test_period():
    """Folds are compared by basin id and test period: equal row numbers of two reordered basin lists are other basins."""
    ids, period = ["A", "B", "C", "D"], ["1989-10-01", "1999-09-30"]
    base = _results({"resConn": [0.5, 0.3]}, site_ids=ids, test_period=period)
    assert "(reference)" in compare({"base": base, "same": _results({"resConn": [0.4, 0.3]}, site_ids=ids, test_period=period)}, ("base", "resConn"))
    for other in (_results({"resConn": [0.6, 0.4]}, site_ids=["C", "D", "A", "B"], test_period=period),
                  _results({"resConn": [0.6, 0.4]}, site_ids=ids, test_period=["1999-10-01", "2008-09-30"])):
        with pytest.raises(ValueError, match="held-out basins or test period differ"):
            compare({"base": base, "other": other}, ("base", "resConn"))


def test_folds_better_counts_only_folds_where_both_have_a_value():
    runs = {"base": _results({"resConn": [0.5, 0.3]}), "variant": _results({"resConn": [0.6, float("nan")]})}
    assert "| variant | resConn |" in compare(runs, ("base", "resConn")) and "| 1/1 |" in compare(runs, ("base", "resConn"))


def _seed_folder(root, seed, preset, sha):
    folder = root / f"seed_{seed}"
    folder.mkdir(parents=True)
    results = {**_results({"resConn": [0.5, 0.3]}), "kind": "pub", "dataset": "camels_us", "n_basins": 4, "seed": 111,
               "training_seed": seed, "preset": {**preset, "seed": seed}, "pretrain_on": "given", "base": f"/checkout{seed}/base"}
    (folder / "results.json").write_text(json.dumps(results))
    (folder / "run_manifest.json").write_text(json.dumps({"base_model": {"name": results["base"], "sha256": sha}}))


def test_seed_folders_pool_only_when_they_share_settings_and_base_weights(tmp_path):
    _seed_folder(tmp_path / "run", 1, {"max_steps": 2000}, "aa")
    _seed_folder(tmp_path / "run", 2, {"max_steps": 2000}, "aa")  # the same weights in another checkout pool
    assert load_runs([f"a={tmp_path / 'run'}"])["a"]["training_seeds"] == [1, 2]
    _seed_folder(tmp_path / "run", 3, {"max_steps": 600}, "aa")  # left by an earlier run with other settings
    with pytest.raises(ValueError, match=r"seed_3/results.json was run with other 'preset'"):
        load_runs([f"a={tmp_path / 'run'}"])
    _seed_folder(tmp_path / "weights", 1, {"max_steps": 2000}, "aa")
    _seed_folder(tmp_path / "weights", 2, {"max_steps": 2000}, "bb")
    with pytest.raises(ValueError, match="finetuned from different base weights"):
        load_runs([f"a={tmp_path / 'weights'}"])


def test_an_unknown_metric_is_named_with_the_known_ones():
    """--metric nsee blamed the reference run ("has no model ...")."""
    runs = {"base": _results({"resConn": [0.5, 0.3]})}
    with pytest.raises(ValueError, match=r"--metric 'nsee': not a metric of these runs' results.json; did you mean 'nse'\? \(they hold: nse, rmse\)"):
        compare(runs, ("base", "resConn"), metric="nsee")
