"""Tests for stefaland_hf.metrics against hand-computed values."""

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from stefaland_hf import metrics as M

NAN = float("nan")

# Example A -----------------------------------------------------------------
# obs = [1, 2, 3, 4], sim = [1, 2, 3, 5]
#   mean(obs) = 2.5, mean(sim) = 2.75
#   obs anomalies  = [-1.5, -0.5, 0.5, 1.5]        SST = 2.25+0.25+0.25+2.25 = 5
#   sim anomalies  = [-1.75, -0.75, 0.25, 2.25]    SSS = 3.0625+0.5625+0.0625+5.0625 = 8.75
#   errors sim-obs = [0, 0, 0, 1]                  SSE = 1
#   NSE   = 1 - 1/5 = 0.8
#   RMSE  = sqrt(1/4) = 0.5
#   bias  = 1/4 = 0.25 ; PBIAS = 100 * 1/10 = 10 %
#   ubRMSE: anomaly diffs = [-0.25, -0.25, -0.25, 0.75] -> mean sq = (3*0.0625 + 0.5625)/4 = 0.1875
#           ubRMSE = sqrt(0.1875) = 0.4330127  (= sqrt(RMSE^2 - bias^2) = sqrt(0.25 - 0.0625))
#   r: cov-sum = 2.625 + 0.375 + 0.125 + 3.375 = 6.5 ; r = 6.5 / sqrt(5 * 8.75) = 6.5 / sqrt(43.75)
#   KGE: alpha = sqrt(8.75/5) = sqrt(1.75), beta = 2.75/2.5 = 1.1
#        KGE = 1 - sqrt((r-1)^2 + (sqrt(1.75)-1)^2 + 0.1^2)
OBS_A = [1.0, 2.0, 3.0, 4.0]
SIM_A = [1.0, 2.0, 3.0, 5.0]
R_A = 6.5 / math.sqrt(43.75)
KGE_A = 1 - math.sqrt((R_A - 1) ** 2 + (math.sqrt(1.75) - 1) ** 2 + 0.1**2)


def test_example_a_hand_computed():
    assert M.nse(OBS_A, SIM_A) == pytest.approx(0.8)
    assert M.rmse(OBS_A, SIM_A) == pytest.approx(0.5)
    assert M.bias(OBS_A, SIM_A) == pytest.approx(0.25)
    assert M.pbias(OBS_A, SIM_A) == pytest.approx(10.0)
    assert M.ubrmse(OBS_A, SIM_A) == pytest.approx(math.sqrt(0.1875))
    assert M.pearson_r(OBS_A, SIM_A) == pytest.approx(R_A)
    assert R_A == pytest.approx(0.9827076)
    assert M.kge(OBS_A, SIM_A) == pytest.approx(KGE_A)
    assert KGE_A == pytest.approx(0.6615510, abs=1e-6)


def test_return_types_are_float():
    for fn in M.METRICS.values():
        assert isinstance(fn(OBS_A, SIM_A), float)


def test_perfect_prediction():
    obs = np.array([0.5, 1.0, 3.0, 2.0, 7.0, 4.0])
    assert M.nse(obs, obs) == 1.0
    assert M.kge(obs, obs) == pytest.approx(1.0)
    assert M.rmse(obs, obs) == 0.0
    assert M.ubrmse(obs, obs) == 0.0
    assert M.pearson_r(obs, obs) == pytest.approx(1.0)
    assert M.bias(obs, obs) == 0.0
    assert M.pbias(obs, obs) == 0.0


def test_mean_predictor_nse_zero():
    # sim = mean(obs) = 2.5 everywhere -> SSE = SST -> NSE = 0 ; r undefined -> KGE NaN
    obs = np.array(OBS_A)
    sim = np.full(4, obs.mean())
    assert M.nse(obs, sim) == pytest.approx(0.0)
    assert math.isnan(M.pearson_r(obs, sim))
    assert math.isnan(M.kge(obs, sim))
    # RMSE = sqrt(SST/n) = sqrt(5/4) ; bias = 0 ; ubRMSE = RMSE
    assert M.rmse(obs, sim) == pytest.approx(math.sqrt(1.25))
    assert M.bias(obs, sim) == pytest.approx(0.0)
    assert M.ubrmse(obs, sim) == pytest.approx(math.sqrt(1.25))


def test_nan_pairs_are_dropped():
    # valid pairs: indices 0, 3, 4 -> obs [1, 4, 5], sim [1, 4, 6]
    # mean(obs) = 10/3 ; SST = (7/3)^2 + (2/3)^2 + (5/3)^2 = (49+4+25)/9 = 78/9 = 26/3 ; SSE = 1
    # NSE = 1 - 3/26 = 23/26 ; RMSE = sqrt(1/3) ; bias = 1/3
    obs = [1.0, NAN, 3.0, 4.0, 5.0, np.inf]
    sim = [1.0, 2.0, NAN, 4.0, 6.0, 7.0]
    assert M.nse(obs, sim) == pytest.approx(23 / 26)
    assert M.rmse(obs, sim) == pytest.approx(math.sqrt(1 / 3))
    assert M.bias(obs, sim) == pytest.approx(1 / 3)
    for name, fn in M.METRICS.items():
        if name in ("fhv", "flv"):
            continue
        assert fn(obs, sim) == pytest.approx(fn([1.0, 4.0, 5.0], [1.0, 4.0, 6.0])), name


def test_undefined_cases_give_nan():
    for fn in M.METRICS.values():
        assert math.isnan(fn([1.0], [1.0]))  # < 2 valid pairs
        assert math.isnan(fn([1.0, NAN, 3.0], [NAN, 2.0, 3.0]))  # 1 valid pair
        assert math.isnan(fn([], []))
    const = [2.0, 2.0, 2.0]
    assert math.isnan(M.nse(const, [1.0, 2.0, 3.0]))  # SST = 0
    assert math.isnan(M.pearson_r(const, [1.0, 2.0, 3.0]))
    assert math.isnan(M.kge([1.0, 2.0, 3.0], const))  # sigma_sim = 0 -> r undefined
    # zero observed mean: beta and PBIAS undefined
    assert math.isnan(M.kge([-1.0, 1.0], [-1.0, 2.0]))
    assert math.isnan(M.pbias([-1.0, 1.0], [-1.0, 2.0]))


def test_constant_series_are_undefined_even_when_their_sum_of_squares_rounds_to_nonzero():
    """mean([0.1, 0.1, 0.1]) rounds, so Σ(o - mean)² is ~1e-33, not 0: NSE was -5e29 and r 1.0 instead of NaN."""
    const, flat = [0.1, 0.1, 0.1], [0.11, 0.11, 0.11]
    assert np.sum((np.array(const) - np.mean(const)) ** 2) != 0  # the float trap this guards against
    assert math.isnan(M.nse(const, [0.11, 0.2, 0.3]))
    assert math.isnan(M.pearson_r(const, flat)) and math.isnan(M.kge(const, flat))
    assert math.isnan(M.pearson_r(OBS_A, [0.2] * 4)) and math.isnan(M.kge(OBS_A, [0.2] * 4))
    per_site = M.site_metrics([const + [NAN], OBS_A], [flat + [1.0], SIM_A], ("nse", "kge", "pearson_r"))
    for name in ("nse", "kge", "pearson_r"):
        assert math.isnan(per_site[name][0]), name  # the NaN day does not count toward the range
    assert per_site["nse"][1] == pytest.approx(0.8) and per_site["kge"][1] == pytest.approx(KGE_A)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        M.nse([1.0, 2.0], [1.0, 2.0, 3.0])


def test_fhv_hand_computed():
    # n = 50, h = 0.02 -> round(1.0) = 1 value in the high segment
    # obs top = 50 ; sim = obs with 50 -> 60 ; FHV = 100 * (60 - 50) / 50 = 20 %
    obs = np.arange(1.0, 51.0)
    sim = obs.copy()
    sim[-1] = 60.0
    assert M.fhv(obs, sim) == pytest.approx(20.0)
    # n = 100 -> 2 values: obs top = 100 + 99 = 199 ; sim = 1.1 * obs -> 110 + 108.9 = 218.9
    # FHV = 100 * 19.9 / 199 = 10 %
    obs = np.arange(1.0, 101.0)
    assert M.fhv(obs, 1.1 * obs) == pytest.approx(10.0)
    # FDC-based: the time order of sim does not matter
    assert M.fhv(obs, obs[::-1]) == pytest.approx(0.0)
    # too short for one value in the top 2 %: round(0.02 * 10) = 0 -> NaN
    assert math.isnan(M.fhv(np.arange(1.0, 11.0), np.arange(1.0, 11.0)))


def test_flv_hand_computed():
    # n = 10, l = 0.3 -> segment starts at round(0.7 * 10) = 7 -> lowest 3 values
    obs = np.arange(1.0, 11.0)  # low segment (desc.) 3, 2, 1 -> logs ln3, ln2, 0 ; QOL = ln3 + ln2 = ln6
    # sim = 2*obs: low 6, 4, 2 -> logs minus min(ln2) = ln3, ln2, 0 -> QSL = ln6 -> FLV = 0 (log space: scale-free)
    assert M.flv(obs, 2 * obs) == pytest.approx(0.0, abs=1e-9)
    # sim = obs^2: low 9, 4, 1 -> 2ln3, 2ln2, 0 -> QSL = 2 ln6 ; FLV = -100 * (2ln6 - ln6) / (ln6 + 1e-6)
    expected = -100 * math.log(6) / (math.log(6) + 1e-6)
    assert M.flv(obs, obs**2) == pytest.approx(expected)
    assert expected == pytest.approx(-99.99994, abs=1e-4)


def test_flv_segment_length_is_round_l_times_n_like_neuralhydrology():
    # n = 5, l = 0.3: l*n = 1.5 -> np.round -> 2 values (1.0, 2.0); (1 - l)*n = 3.4999999999999996 would start at 3 or 4
    obs = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    sim = np.array([5.0, 4.0, 3.0, 4.0, 1.0])  # low segment of the sim FDC: 3, 1 -> QSL = ln3 ; QOL = ln2
    expected = -100 * (math.log(3) - math.log(2)) / (math.log(2) + 1e-6)
    assert M.flv(obs, sim) == pytest.approx(expected)
    assert expected == pytest.approx(-58.496, abs=1e-3)
    # a segment that rounds to no value is NaN (neuralhydrology's obs[-0:] would use the whole curve)
    assert math.isnan(M.flv(np.arange(1.0, 4.0), np.arange(1.0, 4.0), l=0.1))  # round(0.3) = 0


def test_flv_zero_handling():
    # zeros (and negative simulations) are replaced by 1e-6 before the log
    obs = np.arange(0.0, 10.0)  # low segment 2, 1, 0 -> 2, 1, 1e-6
    sim = obs.copy()
    sim[0] = -5.0  # clipped to 1e-6 as well -> identical FDC -> FLV = 0
    assert M.flv(obs, sim) == pytest.approx(0.0, abs=1e-9)
    # hand value: QOL = (ln2 - ln1e-6) + (0 - ln1e-6) + 0 = ln2 + 2*ln(1e6)
    # sim low segment 3, 2, 1 (sim = obs + 1) -> QSL = ln3 + ln2 = ln6
    qol = math.log(2) + 2 * math.log(1e6)
    expected = -100 * (math.log(6) - qol) / (qol + 1e-6)
    assert M.flv(obs, obs + 1) == pytest.approx(expected)
    assert np.isfinite(M.flv(np.zeros(10), np.zeros(10)))


def _random_case(seed=0, s=7, t=40):
    rng = np.random.default_rng(seed)
    obs = rng.gamma(2.0, 1.5, size=(s, t))
    sim = obs * rng.normal(1.0, 0.3, size=(s, t)) + rng.normal(0, 0.2, size=(s, t))
    obs[rng.random((s, t)) < 0.15] = np.nan
    sim[rng.random((s, t)) < 0.05] = np.nan
    obs[1] = 3.0  # zero observed variance
    obs[2] = np.nan  # no valid days
    obs[3, 1:] = np.nan  # a single valid day
    sim[4] = 1.0  # zero simulated variance
    obs[5] = np.where(np.arange(t) % 2 == 0, -1.0, 1.0)  # zero observed mean (t even)
    sim[5] = rng.normal(0, 1, size=t)
    return obs, sim


def test_site_metrics_equals_scalar_per_site():
    obs, sim = _random_case()
    names = tuple(M.METRICS)
    per_site = M.site_metrics(obs, sim, metrics=names)
    assert set(per_site) == set(names)
    for name in names:
        vec = per_site[name]
        assert vec.shape == (obs.shape[0],)
        ref = np.array([M.METRICS[name](obs[i], sim[i]) for i in range(obs.shape[0])])
        np.testing.assert_allclose(vec, ref, rtol=1e-10, atol=1e-12, equal_nan=True, err_msg=name)
    assert np.isnan(per_site["nse"][1]) and np.isnan(per_site["nse"][2]) and np.isnan(per_site["nse"][3])
    assert np.isnan(per_site["kge"][4]) and np.isnan(per_site["kge"][5])
    assert np.isfinite(per_site["nse"][0])


def test_site_metrics_defaults_and_aliases():
    obs = np.array([OBS_A, [1.0, 2.0, 3.0, 4.0]])
    sim = np.array([SIM_A, [1.0, 2.0, 3.0, 4.0]])
    res = M.site_metrics(obs, sim)
    assert set(res) == set(M.DEFAULT_METRICS)
    np.testing.assert_allclose(res["nse"], [0.8, 1.0])
    res = M.site_metrics(obs, sim, metrics=("corr", "r"))
    np.testing.assert_allclose(res["corr"], [R_A, 1.0])
    np.testing.assert_allclose(res["r"], [R_A, 1.0])
    # 1-D input = one site
    np.testing.assert_allclose(M.site_metrics(OBS_A, SIM_A, metrics=("rmse",))["rmse"], [0.5])
    with pytest.raises(KeyError):
        M.site_metrics(obs, sim, metrics=("nope",))


def test_summarize_median_ignores_nan():
    # median of [0.5, 0.7, 0.1] = 0.5 ; rmse median of [1, 2, 3, 4] = 2.5
    res = M.summarize({"nse": [0.5, NAN, 0.7, 0.1], "rmse": np.array([4.0, 1.0, 3.0, 2.0]), "kge": [NAN, NAN]})
    assert res["nse"] == pytest.approx(0.5)
    assert res["rmse"] == pytest.approx(2.5)
    assert math.isnan(res["kge"])


def test_standard_error():
    # [1, 2, 3, 4]: mean 2.5, sample var = (2.25+0.25+0.25+2.25)/3 = 5/3 ; s.e. = sqrt(5/3)/sqrt(4)
    assert M.standard_error([1.0, 2.0, 3.0, 4.0]) == pytest.approx(math.sqrt(5 / 3) / 2)
    assert M.standard_error([1.0, 2.0, NAN, 3.0, 4.0]) == pytest.approx(math.sqrt(5 / 3) / 2)
    assert math.isnan(M.standard_error([1.0]))


def test_evaluate_module_offline(tmp_path):
    """Load the packaged evaluate module by path with HF_HUB_OFFLINE=1 (fresh process)."""
    code = textwrap.dedent(
        """
        import json, math
        import evaluate
        from stefaland_hf.metrics import load_evaluate_metric, EVALUATE_METRIC_PATH
        nan = float("nan")
        out = {}
        m = load_evaluate_metric()
        out["single"] = m.compute(predictions=[1.0, 2.0, 3.0, 5.0], references=[1.0, 2.0, 3.0, 4.0])
        m2 = evaluate.load(str(EVALUATE_METRIC_PATH))
        # site a: example A (NSE 0.8); site b: perfect (NSE 1); site c: only one valid pair -> NaN (ignored)
        preds = [1.0, 2.0, 3.0, 5.0, 2.0, 4.0, 6.0, 9.0, 1.0]
        refs = [1.0, 2.0, 3.0, 4.0, 2.0, 4.0, 6.0, nan, 3.0]
        out["str_sites"] = m2.compute(predictions=preds, references=refs, site=list("aaaabbbbc"))
        out["int_sites"] = m2.compute(predictions=preds, references=refs, site=[0, 0, 0, 0, 1, 1, 1, 1, 2])
        for i in range(0, 9, 3):
            m2.add_batch(predictions=preds[i:i + 3], references=refs[i:i + 3], site=list("aaaabbbbc")[i:i + 3])
        out["batched"] = m2.compute()
        print("JSON" + json.dumps(out))
        """
    )
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_TELEMETRY="1")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("JSON", 1)[1])
    single = out["single"]
    assert single["nse"] == pytest.approx(0.8)
    assert single["rmse"] == pytest.approx(0.5)
    assert single["ubrmse"] == pytest.approx(math.sqrt(0.1875))
    assert single["corr"] == pytest.approx(R_A)
    assert single["kge"] == pytest.approx(KGE_A)
    assert single["n_sites"] == 1
    for key in ("str_sites", "int_sites", "batched"):
        res = out[key]
        assert res["n_sites"] == 3
        # median over the 2 defined sites = mean of the two values
        assert res["nse"] == pytest.approx((0.8 + 1.0) / 2), key
        assert res["rmse"] == pytest.approx((0.5 + 0.0) / 2), key
        assert res["kge"] == pytest.approx((KGE_A + 1.0) / 2), key
        assert res["corr"] == pytest.approx((R_A + 1.0) / 2), key


def test_crps_of_an_ensemble_against_hand_computed_values():
    from stefaland_hf.metrics import crps_ensemble

    # members -1 and 1, observation 0: E|X-y| = 1, E|X-X'| = (0 + 2 + 2 + 0) / 4 = 1 -> 1 - 1/2
    assert crps_ensemble([0.0], [[-1.0, 1.0]]) == pytest.approx(0.5)
    # one member is a point forecast: the absolute error; days without an observation are left out
    assert crps_ensemble([2.0, np.nan, 1.0], [[5.0], [0.0], [1.5]]) == pytest.approx((3.0 + 0.5) / 2)
    # members 0, 1, 2 and observation 2: E|X-y| = 1, E|X-X'| = 8/9 -> 1 - 4/9
    assert crps_ensemble([2.0], [[2.0, 0.0, 1.0]]) == pytest.approx(1 - 4 / 9)
    assert np.isnan(crps_ensemble([np.nan], [[1.0]]))


def test_crps_of_a_laplace_is_its_closed_form_and_the_limit_of_its_samples():
    from stefaland_hf.metrics import crps_ensemble, crps_laplace

    # b (|z| + exp(-|z|) - 3/4) with z = (0.5 - 1) / 2: 2 (0.25 + exp(-0.25) - 0.75)
    assert crps_laplace([0.5], 1.0, 2.0) == pytest.approx(2 * (0.25 + np.exp(-0.25) - 0.75))
    assert crps_laplace([1.0], 1.0, 1.0) == pytest.approx(0.25)  # at the location: b / 4
    samples = np.random.default_rng(0).laplace(1.0, 2.0, (1, 400_000))
    assert crps_ensemble([0.5], samples) == pytest.approx(crps_laplace([0.5], 1.0, 2.0), abs=0.01)
    with pytest.raises(ValueError, match="scale must be positive"):
        crps_laplace([0.5], 1.0, 0.0)


def test_interval_coverage_counts_observations_inside():
    from stefaland_hf.metrics import interval_coverage

    assert interval_coverage([1, 2, 3, np.nan], [0, 2.5, 3, 0], [1.5, 3, 4, 1]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="lower bound exceeds"):
        interval_coverage([1], [2], [1])


def test_fair_crps_counts_the_spread_over_the_other_members():
    # members 1 and 3, observation 0: E|X - y| = 2; E|X - X'| over all ordered pairs = 1, over distinct pairs = 2
    assert M.crps_ensemble([0.0], [[1.0, 3.0]]) == pytest.approx(2 - 0.5 * 1)
    assert M.crps_ensemble([0.0], [[1.0, 3.0]], fair=True) == pytest.approx(2 - 0.5 * 2)
    assert M.crps_ensemble([0.0], [[1.5]], fair=True) == pytest.approx(1.5)  # one member: the absolute error


def test_interval_width_over_the_days_coverage_counts():
    # day 2 has no observation, day 3 no lower bound: only day 1 counts
    assert M.interval_width([1.0, np.nan, 3.0], [0.0, 1.0, np.nan], [2.0, 4.0, 5.0]) == pytest.approx(2.0)
    assert np.isnan(M.interval_width([np.nan], [0.0], [1.0]))


def test_probabilistic_site_metrics_by_hand():
    obs = [[1.0, 2.0]]
    point = M.probabilistic_site_metrics(obs, [[1.5, 2.5]])  # a point prediction: CRPS = mean absolute error
    assert point["crps"].tolist() == pytest.approx([0.5]) and np.isnan(point["coverage_90"]).all() and np.isnan(point["width_50"]).all()
    # the 90 % interval [0, 2] holds day 1's observation, [3, 4] misses day 2's: coverage 1/2, mean width 1.5
    scored = M.probabilistic_site_metrics(obs, [[[1.0, 3.0], [2.0, 2.0]]], {90: ([[0.0, 3.0]], [[2.0, 4.0]])})
    assert scored["coverage_90"].tolist() == [0.5] and scored["width_90"].tolist() == [1.5]
    assert scored["crps"].tolist() == pytest.approx([(1.0 - 0.25 * 2 + 0.0) / 2])  # day 1: E|X-1| = 1, E|X-X'| = 1; day 2: 0
    assert np.isnan(scored["coverage_50"]).all()


def test_reliability_is_the_share_of_observations_at_or_below_each_quantile():
    fraction, days = M.reliability([1.0, 2.0, 3.0, np.nan], [[0.0, 2.0], [1.0, 2.0], [5.0, 5.0], [0.0, 1.0]])
    assert fraction.tolist() == pytest.approx([1 / 3, 1.0]) and days == 3
