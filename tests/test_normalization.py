import json
import warnings

import numpy as np
import pytest

from stefaland_hf.data.normalization import Normalization, fit_normalization
from stefaland_hf.data.site_arrays import SiteArrays
from site_data import site_dataset

DYN = ["precipitation", "temperature_max", "vapor_pressure"]
STAT = ["elevation", "slope"]
TGT = ["streamflow"]


def make(dyn, static, tgt):
    n = dyn.shape[0]
    return site_dataset(dyn, static, tgt, np.linspace(30, 40, n), np.linspace(-100, -90, n), (DYN, STAT, TGT), np.datetime64("2001-01-01"))


def arrays(seed=0, n=10, t=80):
    rng = np.random.default_rng(seed)
    dyn = (rng.normal(size=(n, t, 3)) * [2.0, 5.0, 300.0] + [3.0, 10.0, 1500.0]).astype(np.float32)
    dyn[rng.random(dyn.shape) < 0.2] = np.nan
    static = (rng.normal(size=(n, 2)) * [500, 3] + [1000, 5]).astype(np.float32)
    static[1, 1] = np.nan
    tgt = rng.gamma(2.0, 1.0, size=(n, t, 1)).astype(np.float32)
    tgt[rng.random(tgt.shape) < 0.4] = np.nan
    return dyn, static, tgt


TRAIN = np.array([0, 1, 3, 4, 6, 8])
PERIOD = ("2001-01-11", "2001-02-19")  # indices [10, 50)


def test_matches_numpy_on_training_subset_only():
    dyn, static, tgt = arrays()
    norm = fit_normalization(make(dyn, static, tgt), sites=TRAIN, period=PERIOD, site_chunk=4)
    sub = dyn[TRAIN, 10:50]
    np.testing.assert_allclose(norm.dynamic_mean, np.nanmean(sub, axis=(0, 1), dtype=np.float64), rtol=1e-6)
    np.testing.assert_allclose(norm.dynamic_std, np.nanstd(sub.astype(np.float64), axis=(0, 1)), rtol=1e-6)
    np.testing.assert_allclose(norm.static_mean, np.nanmean(static[TRAIN].astype(np.float64), axis=0), rtol=1e-6)
    np.testing.assert_allclose(norm.static_std, np.nanstd(static[TRAIN].astype(np.float64), axis=0), rtol=1e-6)
    t = tgt[TRAIN, 10:50].astype(np.float64)
    np.testing.assert_allclose(norm.target_mean, np.nanmean(t, axis=(0, 1)), rtol=1e-6)
    np.testing.assert_allclose(norm.target_std, np.nanstd(t, axis=(0, 1)), rtol=1e-6)
    assert norm.dynamic_count == np.isfinite(sub).sum(axis=(0, 1)).tolist()
    assert norm.fitted_on == {"n_sites": 6, "period": ["2001-01-11", "2001-02-19"], "n_days": 40}


def test_unaffected_by_test_sites_and_other_periods():
    dyn, static, tgt = arrays()
    ref = fit_normalization(make(dyn, static, tgt), sites=TRAIN, period=PERIOD)
    test_sites = np.setdiff1d(np.arange(10), TRAIN)
    dyn2, static2, tgt2 = dyn.copy(), static.copy(), tgt.copy()
    dyn2[test_sites] = 1e6
    static2[test_sites] = -1e6
    tgt2[test_sites] = 1e5
    dyn2[:, :10] = -7e5  # outside the training period, all sites
    tgt2[:, 50:] = np.nan
    other = fit_normalization(make(dyn2, static2, tgt2), sites=TRAIN, period=PERIOD)
    assert other.to_dict() == ref.to_dict()


def test_alignment_missing_variables_and_floor():
    dyn, static, tgt = arrays()
    dyn[:, :, 1] = 20.0  # constant on the training split: std = |mean|
    tgt[:] = np.nan
    ds = make(dyn, static, tgt)
    with pytest.warns(UserWarning) as rec:
        norm = fit_normalization(
            ds, sites=TRAIN, period=PERIOD,
            dynamic_variables=["temperature_max", "wind_speed", "precipitation"],
            static_variables=["latitude", "sand_fraction", "elevation"],
            target_variables=["streamflow", "soil_moisture"],
        )
    messages = " ".join(str(w.message) for w in rec)
    assert "wind_speed" in messages and "sand_fraction" in messages and "soil_moisture" in messages
    assert "streamflow" in messages  # all-NaN target
    assert "constant" in messages and "temperature_max" in messages
    assert norm.dynamic_mean[0] == pytest.approx(20.0) and norm.dynamic_std[0] == pytest.approx(20.0)
    assert (norm.dynamic_mean[1], norm.dynamic_std[1]) == (0.0, 1.0)
    assert norm.dynamic_mean[2] == pytest.approx(np.nanmean(dyn[TRAIN, 10:50, 0]), rel=1e-6)
    lat = np.linspace(30, 40, 10).astype(np.float32)[TRAIN].astype(np.float64)
    assert norm.static_mean[0] == pytest.approx(lat.mean(), rel=1e-6)  # latitude from the coordinate column
    assert (norm.static_mean[1], norm.static_std[1]) == (0.0, 1.0)
    assert (norm.target_mean, norm.target_std) == ([0.0, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="unknown variable"):
        fit_normalization(ds, dynamic_variables=["rain"])


def test_a_variable_constant_on_the_training_sites_stays_moderate_at_held_out_sites():
    """A fraction that is 0 at every training site: the std floor alone (1e-6) made a held-out 0.5 a z-score of 5e5."""
    dyn, static, tgt = arrays()
    static[:, 1] = 0.0
    static[9, 1] = 0.5  # a held-out site (not in TRAIN)
    dyn[:, :, 1] = 20.0 + np.linspace(0, 1e-5, dyn.shape[1], dtype=np.float32)  # nearly constant: the floor bites
    with pytest.warns(UserWarning, match=r"constant on the training split.*\['slope'\]"):
        norm = fit_normalization(make(dyn, static, tgt), sites=TRAIN, period=PERIOD)
    assert (norm.static_mean[1], norm.static_std[1]) == (0.0, 1.0)
    assert norm.normalize("static", static[9])[1] == pytest.approx(0.5)
    assert norm.dynamic_std[1] == pytest.approx(1e-3 * 20 + 1e-6, rel=1e-3)


def test_config_fields_and_roundtrip():
    dyn, static, tgt = arrays()
    a = SiteArrays(make(dyn, static, tgt))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        norm = fit_normalization(a, sites=TRAIN)
    inputs, targets = norm.input_statistics(), norm.target_statistics()
    assert set(inputs) == {"dynamic_mean", "dynamic_std", "static_mean", "static_std"}
    assert set(targets) == {"target_variables", "target_mean", "target_std"}
    assert targets["target_variables"] == norm.target_variables
    stats = {**inputs, "target_mean": targets["target_mean"], "target_std": targets["target_std"]}
    assert all(isinstance(v, list) and all(isinstance(x, float) for x in v) for v in stats.values())
    assert len(stats["dynamic_mean"]) == 3 and len(stats["static_std"]) == 2 and len(stats["target_mean"]) == 1
    assert stats["dynamic_mean"] == norm.dynamic_mean and stats["target_std"] == norm.target_std
    back = Normalization.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert back == norm
    x = dyn[0, :5]
    np.testing.assert_allclose(norm.denormalize("dynamic", norm.normalize("dynamic", x)), x, rtol=1e-5)
    with pytest.raises(ValueError):
        Normalization.from_dict({**norm.to_dict(), "dynamic_std": [1.0, 0.0, 1.0]})
