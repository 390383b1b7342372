import json
import warnings

import numpy as np
import pytest

from stefaland_hf.data.splits import (
    CAMELS_PUR_GROUPS,
    Split,
    load_splits,
    period_to_index,
    pub_folds,
    pur_splits,
    region_group_counts,
    save_splits,
    temporal_split,
)

IDS = [f"{i:08d}" for i in range(53)]


def test_pub_folds_disjoint_cover_and_reproducible():
    folds = pub_folds(IDS, k=10, seed=7, val_fraction=0.1)
    assert len(folds) == 10
    tests = [set(f.test_sites.tolist()) for f in folds]
    assert set().union(*tests) == set(range(53))
    assert sum(len(t) for t in tests) == 53  # pairwise disjoint
    assert max(map(len, tests)) - min(map(len, tests)) <= 1
    for f in folds:
        tr, va, te = set(f.train_sites.tolist()), set(f.val_sites.tolist()), set(f.test_sites.tolist())
        assert not (tr & te) and not (va & te) and not (tr & va)
        assert tr | va | te == set(range(53))
        assert len(va) == round(0.1 * (53 - len(te)))
        assert f.ids("test") == [IDS[i] for i in sorted(te)]
    again = pub_folds(IDS, k=10, seed=7, val_fraction=0.1)
    assert [f.to_dict() for f in folds] == [f.to_dict() for f in again]
    other = pub_folds(IDS, k=10, seed=8, val_fraction=0.1)
    assert [f.test_sites.tolist() for f in folds] != [f.test_sites.tolist() for f in other]
    assert len(pub_folds(20, k=4, val_fraction=0.0)[0].val_sites) == 0
    with pytest.raises(ValueError):
        pub_folds(IDS, k=1)


def test_pur_groups_and_empty_groups_reported():
    # HUCs 1..18 except 17, with '01'-style strings and ints mixed
    regions = []
    for huc in range(1, 19):
        if huc == 17:
            continue
        regions += [f"{huc:02d}" if huc % 2 else huc] * (huc % 3 + 1)
    with pytest.warns(UserWarning, match=r"without any site.*\[17\]"):
        splits = pur_splits(regions, seed=1, val_fraction=0.2)
    assert len(splits) == len(CAMELS_PUR_GROUPS) - 1
    assert all(s.info["empty_groups"] == [["17"]] for s in splits)
    counts = region_group_counts(regions)
    assert counts[6] == 0 and splits[0].info["group_counts"] == counts
    norm = np.array([int(r) for r in regions])
    for s in splits:
        group = CAMELS_PUR_GROUPS[s.info["group"]]
        te = s.test_sites
        assert set(norm[te].tolist()) <= group and len(te) == int(np.isin(norm, list(group)).sum())
        others = np.concatenate([s.train_sites, s.val_sites])
        assert not np.isin(norm[others], list(group)).any()
        assert len(others) + len(te) == len(regions)
    tests = np.concatenate([s.test_sites for s in splits])
    assert len(tests) == len(set(tests.tolist())) == len(regions)


def test_pur_all_groups_no_warning_and_custom_groups():
    regions = list(range(1, 19))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        splits = pur_splits(regions, val_fraction=0.0)
    assert [sorted(map(int, s.info["held_out_regions"])) for s in splits] == [sorted(g) for g in CAMELS_PUR_GROUPS]
    assert all(s.info["empty_groups"] == [] for s in splits)
    custom = pur_splits(["wet", "dry", "wet", "cold"], groups=[{"wet"}, {"dry", "cold"}], val_fraction=0.0)
    assert [s.test_sites.tolist() for s in custom] == [[0, 2], [1, 3]]
    with pytest.warns(UserWarning, match="in no group"):
        s = pur_splits(["wet", "other"], groups=[{"wet"}], val_fraction=0.0)
    assert s[0].train_sites.tolist() == [1]
    with pytest.raises(ValueError, match="is in group"):
        pur_splits([1, 2], groups=[{1}, {1, 2}])


def test_temporal_split_and_json_roundtrip(tmp_path):
    s = temporal_split(5, ("1999-10-01", "2008-09-30"), ("1980-10-01", "1989-09-30"), ("1989-10-01", "1999-09-30"))
    assert s.train_sites.tolist() == s.test_sites.tolist() == s.val_sites.tolist() == list(range(5))
    assert s.train_period[0] == np.datetime64("1999-10-01")
    with pytest.raises(ValueError, match="overlaps"):
        temporal_split(5, ("2000-01-01", "2005-12-31"), None, ("2005-12-31", "2008-01-01"))
    folds = pub_folds(IDS, k=3, seed=0, train_period=("1999-10-01", "2008-09-30"), test_period=(0, 100))
    d = json.loads(json.dumps(s.to_dict()))
    assert Split.from_dict(d) == s
    path = tmp_path / "splits.json"
    save_splits(path, [s, *folds])
    back = load_splits(path)
    assert back[0] == s and back[1:] == folds and back[2].test_period == (0, 100)
    # remap by id to a dataset with another row order
    shuffled = list(reversed(IDS))
    r = folds[0].remap(shuffled)
    assert r.ids("test") == folds[0].ids("test") and r.site_ids == shuffled


def test_period_to_index():
    dates = np.arange(np.datetime64("2000-01-01"), np.datetime64("2000-12-31") + 1)
    assert period_to_index(dates, None) == (0, 366)
    assert period_to_index(dates, ("2000-01-01", "2000-01-31")) == (0, 31)  # inclusive end
    assert period_to_index(dates, (np.datetime64("2000-02-01"), "2000-02-29")) == (31, 60)
    assert period_to_index(dates, (5, 10)) == (5, 10)  # half-open ints
    with pytest.warns(UserWarning, match="clipped"):
        assert period_to_index(dates, ("1999-12-01", "2000-01-10")) == (0, 10)
    with pytest.raises(ValueError, match="does not overlap"):
        period_to_index(dates, ("2001-01-01", "2001-02-01"))
    with pytest.raises(ValueError):
        period_to_index(dates, ("2000-02-01", "2000-01-01"))


def test_a_split_that_scores_on_training_site_days_is_refused():
    period = ("2000-01-01", "2000-12-31")
    with pytest.raises(ValueError, match=r"train and test share 2 sites .* overlapping periods"):
        Split("leaky", [0, 1, 2], [3], [1, 2], train_period=period, val_period=period, test_period=("2000-06-01", "2001-12-31"))
    with pytest.raises(ValueError, match="val and test share 1 sites"):
        Split("leaky", [0], [3], [3], train_period=period, val_period=period, test_period=period)
    with pytest.raises(ValueError, match="cannot be checked"):
        Split("mixed", [0], [1], [0], train_period=period, val_period=period, test_period=(0, 10))
    # the same sites over disjoint periods (temporal holdout) and disjoint sites over one period (PUB) are fine
    Split("temporal", [0, 1], [0, 1], [0, 1], train_period=(0, 100), val_period=(100, 150), test_period=(150, 200))
    Split("pub", [0, 1], [2], [3], train_period=period, val_period=period, test_period=period)


def test_pub_options_are_refused_for_a_temporal_split():
    from stefaland_hf.training.arguments import SplitArguments

    with pytest.raises(ValueError, match="--fold: applies to --split pub/pur, not temporal"):
        SplitArguments(split="temporal", fold=2)
    SplitArguments(split="temporal")
