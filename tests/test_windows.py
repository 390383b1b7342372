import datasets
import numpy as np
import pyarrow as pa
import pytest
import torch

from stefaland_hf.data.schema import site_features
from stefaland_hf.data.windows import (
    SiteArrays,
    WindowBatch,
    WindowDataset,
    collate_windows,
    predict_sites,
    sequential_window_plan,
)
from stefaland_hf.variables import align_variables

DYN = ["precipitation", "temperature_max", "temperature_min"]
STAT = ["elevation", "slope"]
TGT = ["streamflow", "soil_moisture"]
START = np.datetime64("2000-01-01")


def make_data(n=6, t=60, seed=0, nan_frac=0.3):
    rng = np.random.default_rng(seed)
    dyn = rng.normal(size=(n, t, len(DYN))).astype(np.float32)
    dyn[rng.random(dyn.shape) < 0.05] = np.nan
    tgt = rng.normal(size=(n, t, len(TGT))).astype(np.float32)
    tgt[rng.random(tgt.shape) < nan_frac] = np.nan
    static = rng.normal(size=(n, len(STAT))).astype(np.float32)
    lat = rng.uniform(30, 45, n).astype(np.float32)
    lon = rng.uniform(-120, -70, n).astype(np.float32)
    dates = np.arange(START, START + t).astype("datetime64[D]").tolist()
    d = {
        "site_id": [f"site{i}" for i in range(n)],
        "region": [f"{i % 3 + 1:02d}" for i in range(n)],
        "latitude": lat.tolist(),
        "longitude": lon.tolist(),
        "dates": [dates] * n,
        "dynamic": list(dyn),
        "static": static.tolist(),
        "targets": list(tgt),
        "gauged": [True] * n,
        "dynamic_variables": [DYN] * n,
        "static_variables": [STAT] * n,
        "target_variables": [TGT] * n,
    }
    ds = datasets.Dataset.from_dict(d, features=site_features(len(DYN), len(STAT), len(TGT)))
    return ds, dyn, tgt, static, lat, lon


def multi_chunk(ds):
    # contiguous select() gives sliced tables (chunks with a non-zero offset); concatenation keeps them apart
    out = datasets.concatenate_datasets([ds.select(range(0, 2)), ds.select(range(2, 4)), ds.select(range(4, len(ds)))])
    assert out._indices is None and out.data.column("dynamic").num_chunks == 3
    return out


def nan_equal(a, b):
    return np.array_equal(a, b, equal_nan=True)


@pytest.fixture(scope="module")
def data():
    return make_data()


def test_site_views_are_zero_copy(data):
    ds, dyn, tgt, static, lat, lon = data
    a = SiteArrays(ds)
    assert a.n_sites == 6 and a.n_time == 60 and a.dates[0] == START
    assert a.site_ids[2] == "site2" and a.regions[1] == "02"
    np.testing.assert_array_equal(a.static, static)
    for i in range(6):
        v = a.dynamic_site(i)
        assert nan_equal(v, dyn[i]) and nan_equal(a.targets_site(i), tgt[i])
        assert not v.flags.owndata
    # the views point into the Arrow float buffer itself (no copy anywhere)
    chunk = ds.data.column("dynamic").chunk(0).storage
    buf = chunk.values.values.buffers()[1]
    for i in (0, 5):
        addr = a.dynamic_site(i).__array_interface__["data"][0]
        assert buf.address <= addr < buf.address + buf.size
    assert np.shares_memory(a.dynamic_site(0), a.dynamic_site(5).base)


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


@pytest.mark.parametrize("warmup,period,context", [(4, ("2000-01-15", "2000-02-24"), True), (0, None, True), (5, None, True), (6, (10, 47), False)])
def test_predict_sites_identity_reproduces_observations(data, warmup, period, context):
    ds, dyn, tgt, *_ = data
    ds = multi_chunk(ds)
    calls = []

    def identity(batch):
        calls.append(batch["x_dynamic"].shape)
        # the labels are the observations except on the warm-up days
        assert torch.isnan(batch["labels"][:, :warmup]).all()
        return batch["labels"]

    res = predict_sites(
        identity, ds, sites=[5, 0, 2], period=period, seq_len=12, warmup=warmup, batch_size=4,
        drop_keys=(), context_before_period=context,
    )
    a = SiteArrays(ds)
    p0, p1 = a.period_index(period)
    assert res["predictions"].shape == res["observations"].shape == (3, p1 - p0, 2)
    assert res["site_ids"] == ["site5", "site0", "site2"]
    assert res["dates"][0] == a.dates[p0] and len(res["dates"]) == p1 - p0
    np.testing.assert_array_equal(res["observations"], tgt[[5, 0, 2], p0:p1])
    f = res["first_predicted"]
    expect_f = max(warmup - p0, 0) if context else warmup
    assert f == expect_f
    assert np.isnan(res["predictions"][:, :f]).all()
    assert nan_equal(res["predictions"][:, f:], res["observations"][:, f:])
    assert all(shape[1] == 12 for shape in calls)


def test_predict_sites_uses_model_outputs_not_labels(data):
    ds, dyn, *_ = data

    def day_of_window(batch):  # returns start + position: checks the stitching offsets
        b, length, _ = batch["x_dynamic"].shape
        pos = batch["start"][:, None].float() + torch.arange(length)[None, :].float()
        return pos[..., None].expand(b, length, 1).contiguous()

    res = predict_sites(
        day_of_window, ds, period=("2000-01-11", "2000-02-29"), seq_len=9, warmup=3,
        target_variables=["streamflow"], drop_keys=("labels",),
    )
    days = np.arange(10, 60, dtype=np.float32)
    np.testing.assert_array_equal(res["predictions"][:, :, 0], np.broadcast_to(days, (6, 50)))


def test_sequential_plan_covers_period_once():
    for n, p, L, wu, ctx in [(100, (30, 100), 20, 5, True), (100, (0, 100), 20, 5, True), (100, (3, 90), 20, 5, True),
                             (100, (3, 90), 20, 5, False), (50, (40, 50), 20, 5, True), (30, (0, 12), 20, 5, True)]:
        plan = sequential_window_plan(n, p, L, wu, ctx)
        written = []
        for s, w0 in zip(plan["starts"], plan["write_from"]):
            assert s >= (0 if ctx else p[0]) and s + plan["length"] <= p[1]
            assert w0 >= wu
            written.extend(range(s + w0, s + plan["length"]))
        assert written == list(range(plan["first_predicted"], p[1]))  # each day once, in order


def test_from_split(data):
    from stefaland_hf.data.splits import pub_folds

    ds, *_ = data
    fold = pub_folds(6, k=3, seed=0, val_fraction=0.0, train_period=("2000-01-01", "2000-01-31"))[0]
    w = WindowDataset.from_split(ds, fold, "train", seq_len=10)
    assert set(np.unique(w.site_index).tolist()) == set(fold.train_sites.tolist())
    assert w.start.max() == 31 - 10
