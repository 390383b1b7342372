"""Samplers: training windows and static samples, their one batch builder, and collation."""

import datasets
import numpy as np
import pytest
import torch
from site_data import DYN, STAT, make_data, multi_chunk, nan_equal

from stefaland_hf.data.samplers import StaticRegressionDataset, WindowBatch, WindowDataset, collate_windows
from stefaland_hf.data.site_arrays import SiteArrays
from stefaland_hf.variables import align_variables


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.mark.parametrize("kind", ["single", "multi", "shuffled", "disk"])
def test_window_contents_match_source(data, kind, tmp_path):
    ds, dyn, tgt, static, lat, lon = data
    order = np.arange(6)
    if kind == "multi":
        ds = multi_chunk(ds)
    elif kind == "shuffled":
        ds = multi_chunk(ds).shuffle(seed=3)  # an indices mapping over a multi-chunk table
        order = np.array([int(s[4:]) for s in ds["site_id"]])
    elif kind == "disk":
        multi_chunk(ds).save_to_disk(str(tmp_path / "ds"))
        ds = datasets.load_from_disk(str(tmp_path / "ds"))
    a = SiteArrays(ds)
    if kind in ("multi", "shuffled"):
        assert a.n_chunks == 3
    assert [a.site_ids[i] for i in range(6)] == [f"site{j}" for j in order]
    w = WindowDataset(a, sites=[1, 3, 4], period=("2000-01-05", "2000-02-20"), seq_len=10, warmup=0, stride=3)
    p0 = 4
    starts = np.arange(p0, p0 + 47 - 10 + 1, 3)
    assert len(w) == 3 * len(starts)
    for i in range(len(w)):
        item = w[i]
        s, t0 = int(item["site_index"]), int(item["start"])
        src = order[s]
        assert nan_equal(item["x_dynamic"], dyn[src, t0 : t0 + 10])
        assert nan_equal(item["labels"], tgt[src, t0 : t0 + 10])
        np.testing.assert_array_equal(item["x_static"], static[src])
        assert item["x_dynamic"].dtype == np.float32 and item["x_dynamic"].shape == (10, 3)
    assert set(np.unique(w.site_index)) == {1, 3, 4}
    np.testing.assert_array_equal(np.unique(w.start), starts)
    # the batched fast path equals the per-item path
    idx = [0, 7, 3, len(w) - 1]
    batch = collate_windows(w.__getitems__(idx))
    ref = collate_windows([w[i] for i in idx])
    for k in ref:
        assert torch.equal(batch[k].nan_to_num(123.0), ref[k].nan_to_num(123.0)), k


def test_warmup_labels_are_nan(data):
    ds, dyn, tgt, *_ = data
    w = WindowDataset(ds, seq_len=12, warmup=5)
    for i in (0, 17, len(w) - 1):
        item = w[i]
        s, t0 = int(item["site_index"]), int(item["start"])
        assert np.isnan(item["labels"][:5]).all()
        assert nan_equal(item["labels"][5:], tgt[s, t0 + 5 : t0 + 12])
        assert nan_equal(item["x_dynamic"], dyn[s, t0 : t0 + 12])  # inputs keep their warm-up days


def test_min_observed_filtering(data):
    ds, dyn, tgt, *_ = data
    L, wu, n_min = 8, 3, 7
    w = WindowDataset(ds, seq_len=L, warmup=wu, min_observed=n_min)
    kept = set(zip(w.site_index.tolist(), w.start.tolist()))
    expected = set()
    for s in range(6):
        for t0 in range(0, 60 - L + 1):
            if np.isfinite(tgt[s, t0 + wu : t0 + L]).sum() >= n_min:
                expected.add((s, t0))
    assert kept == expected
    assert 0 < len(expected) < 6 * (60 - L + 1)  # the filter actually removes some windows
    for i in range(0, len(w), 13):
        assert np.isfinite(w[i]["labels"]).sum() >= n_min


def test_variable_alignment_and_errors(data):
    ds, dyn, tgt, static, lat, lon = data
    model_dyn = ["temperature_min", "wind_speed", "precipitation"]
    model_stat = ["slope", "latitude", "sand_fraction", "elevation"]
    model_tgt = ["soil_moisture"]
    w = WindowDataset(
        ds, seq_len=5, dynamic_variables=model_dyn, static_variables=model_stat, target_variables=model_tgt
    )
    item = w[9]
    s, t0 = int(item["site_index"]), int(item["start"])
    # the dataset's temperature_max has no place in the model: dropped on purpose
    assert nan_equal(item["x_dynamic"], align_variables(dyn[s, t0 : t0 + 5], DYN, model_dyn, ignore=["temperature_max"]))
    assert np.isnan(item["x_dynamic"][:, 1]).all()
    np.testing.assert_array_equal(item["x_dynamic"][:, 0], dyn[s, t0 : t0 + 5, 2])
    np.testing.assert_array_equal(item["x_static"][[0, 3]], static[s, [1, 0]])
    assert item["x_static"][1] == lat[s]  # latitude comes from the coordinate column
    assert np.isnan(item["x_static"][2])
    assert nan_equal(item["labels"][:, 0], tgt[s, t0 : t0 + 5, 1])
    with pytest.raises(ValueError, match="unknown variable 'precip'"):
        WindowDataset(ds, seq_len=5, dynamic_variables=["precip"])
    with pytest.raises(ValueError, match="listed twice"):
        WindowDataset(ds, seq_len=5, target_variables=["streamflow", "streamflow"])


def test_collate_and_dataloader(data):
    ds, *_ = data
    w = WindowDataset(ds, seq_len=10, warmup=2, stride=5)
    batch = w.__getitems__([0, 1, 2])
    assert isinstance(batch, WindowBatch) and len(batch) == 3 and batch.untouched()
    out = collate_windows(batch, drop_keys=("site_index", "start"))
    assert set(out) == {"x_dynamic", "x_static", "labels"}
    assert out["x_dynamic"].dtype == torch.float32 and out["x_dynamic"].shape == (3, 10, 3)
    # a collator that edits the items gets its edits respected
    batch[0]["x_static"] = np.zeros(2, np.float32)
    assert not batch.untouched()
    assert torch.equal(collate_windows(batch)["x_static"][0], torch.zeros(2))
    loader = torch.utils.data.DataLoader(w, batch_size=4, shuffle=True, collate_fn=collate_windows)
    b = next(iter(loader))
    assert b["labels"].shape == (4, 10, 2) and b["site_index"].dtype == torch.int64 and b["start"].dtype == torch.int64
    assert torch.isnan(b["labels"][:, :2]).all()


def test_period_validation(data):
    ds, *_ = data
    with pytest.raises(ValueError, match="shorter than seq_len"):
        WindowDataset(ds, period=("2000-01-01", "2000-01-05"), seq_len=10)
    with pytest.raises(ValueError, match="does not overlap"):
        WindowDataset(ds, period=("1990-01-01", "1990-12-31"), seq_len=10)
    w = WindowDataset(ds, period=(10, 30), seq_len=10)  # half-open index range
    assert w.start.min() == 10 and w.start.max() == 20


def test_from_split(data):
    from stefaland_hf.data.splits import pub_folds

    ds, *_ = data
    fold = pub_folds(6, k=3, seed=0, val_fraction=0.0, train_period=("2000-01-01", "2000-01-31"))[0]
    w = WindowDataset.from_split(ds, fold, "train", seq_len=10)
    assert set(np.unique(w.site_index).tolist()) == set(fold.train_sites.tolist())
    assert w.start.max() == 31 - 10


def test_static_samples_hide_variables_and_space_windows(data):
    ds, dyn, tgt, static, *_ = data
    samples = StaticRegressionDataset(ds, [0, 3], ["slope"], period=(5, 55), seq_len=10, samples_per_site=3, random_windows=False, hidden_variables=["elevation"])
    item = samples[4]
    assert len(samples) == 6 and item["site_index"] == 3 and item["x_dynamic"].shape == (10, 3)
    assert nan_equal(item["x_dynamic"], dyn[3, item["start"] : item["start"] + 10])
    assert np.isnan(item["x_static"][STAT.index("elevation")]) and item["x_static"][STAT.index("slope")] == static[3, 1]
    assert item["labels"].shape == (1,) and item["labels"][0] == static[3, 1]
    assert [samples[i]["start"] for i in (3, 4, 5)] == [5, 25, 45]  # evenly spaced evaluation windows over the period
    drawn = StaticRegressionDataset(ds, [0, 3], ["slope"], period=(5, 55), seq_len=10, samples_per_site=4, seed=1)
    starts = drawn.__getitems__(list(range(8))).arrays["start"]
    assert starts.min() >= 5 and starts.max() <= 45
    again = StaticRegressionDataset(ds, [0, 3], ["slope"], period=(5, 55), seq_len=10, samples_per_site=4, seed=1)
    np.testing.assert_array_equal(again.__getitems__(list(range(8))).arrays["start"], starts)  # seeded draws
    with pytest.raises(ValueError, match=r"targets \['sand_fraction'\] are not static attributes"):
        StaticRegressionDataset(ds, [0], ["sand_fraction"], seq_len=10)


def test_one_batch_builder_for_every_sampler(data):
    """Training windows, static samples and evaluation windows of the same (site, start) read the same inputs."""
    from stefaland_hf.evaluation import iter_site_sequences

    ds, *_ = data
    windows = WindowDataset(ds, sites=[2], period=(0, 24), seq_len=12, stride=12)
    static = StaticRegressionDataset(ds, [2], ["slope"], period=(0, 24), seq_len=12, samples_per_site=2, random_windows=False)
    sequential, _, _ = next(iter_site_sequences(ds, [2], (0, 24), seq_len=12))
    batches = [windows.__getitems__([0, 1]), static.__getitems__([0, 1])]
    assert all(isinstance(b, WindowBatch) for b in batches)
    for batch in [b.arrays for b in batches] + [sequential]:
        assert list(batch) == ["x_dynamic", "x_static", "labels", "site_index", "start"]
        assert batch["site_index"].dtype == batch["start"].dtype == np.int64
        np.testing.assert_array_equal(batch["start"], [0, 12])
        assert nan_equal(batch["x_dynamic"], sequential["x_dynamic"]) and nan_equal(batch["x_static"], sequential["x_static"])
    assert nan_equal(batches[0].arrays["labels"], sequential["labels"])
