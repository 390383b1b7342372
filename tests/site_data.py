"""A small in-memory site dataset (the site schema) for the storage, sampler and evaluation tests."""

import datasets
import numpy as np

from stefaland_hf.data.schema import site_features

DYN = ["precipitation", "temperature_max", "temperature_min"]
STAT = ["elevation", "slope"]
TGT = ["streamflow", "soil_moisture"]
START = np.datetime64("2000-01-01")


def make_data(n=6, t=60, seed=0, nan_frac=0.3):
    """``(dataset, dynamic [n, t, F], targets [n, t, K], static [n, C], latitude, longitude)``."""
    rng = np.random.default_rng(seed)
    dyn = rng.normal(size=(n, t, len(DYN))).astype(np.float32)
    dyn[rng.random(dyn.shape) < 0.05] = np.nan
    tgt = rng.normal(size=(n, t, len(TGT))).astype(np.float32)
    tgt[rng.random(tgt.shape) < nan_frac] = np.nan
    static = rng.normal(size=(n, len(STAT))).astype(np.float32)
    lat = rng.uniform(30, 45, n).astype(np.float32)
    lon = rng.uniform(-120, -70, n).astype(np.float32)
    ds = site_dataset(dyn, static, tgt, lat, lon)
    return ds, dyn, tgt, static, lat, lon


def site_dataset(dyn, static, tgt, latitude, longitude, variables=(DYN, STAT, TGT), start=START):
    """A site dataset with these arrays (dynamic [n, t, F], static [n, C], targets [n, t, K]) and variable names."""
    n, t = dyn.shape[:2]
    dynamic_names, static_names, target_names = (list(v) for v in variables)
    dates = np.arange(start, start + t).astype("datetime64[D]").tolist()
    d = {
        "site_id": [f"site{i}" for i in range(n)],
        "region": [f"{i % 3 + 1:02d}" for i in range(n)],
        "latitude": np.asarray(latitude).tolist(),
        "longitude": np.asarray(longitude).tolist(),
        "dates": [dates] * n,
        "dynamic": list(dyn),
        "static": np.asarray(static).tolist(),
        "targets": list(tgt),
        "gauged": [True] * n,
        "dynamic_variables": [dynamic_names] * n,
        "static_variables": [static_names] * n,
        "target_variables": [target_names] * n,
    }
    return datasets.Dataset.from_dict(d, features=site_features(len(dynamic_names), len(static_names), len(target_names)))


def multi_chunk(ds):
    # contiguous select() gives sliced tables (chunks with a non-zero offset); concatenation keeps them apart
    out = datasets.concatenate_datasets([ds.select(range(0, 2)), ds.select(range(2, 4)), ds.select(range(4, len(ds)))])
    assert out._indices is None and out.data.column("dynamic").num_chunks == 3
    return out


def nan_equal(a, b):
    return np.array_equal(a, b, equal_nan=True)
