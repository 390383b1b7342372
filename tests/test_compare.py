import json

import pytest

from stefaland_hf.experiments.compare import compare, load_runs


def _results(medians: dict[str, list[float]], test_sites=((0, 1), (2, 3))) -> dict:
    folds = []
    for i, sites in enumerate(test_sites):
        models = {m: {"summary": {"nse": v[i], "rmse": 1 - v[i]}, "steps": 100 * (i + 1)} for m, v in medians.items()}
        folds.append({"fold": i, "split": {"test_sites": list(sites)}, "models": models})
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
