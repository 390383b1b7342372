"""Train/validation/test splits as first-class, JSON-serializable objects.

A :class:`Split` names the sites (integer indices into a dataset's rows, in dataset order) and the
time period of each part. Three constructors cover the paper's experiments:

- :func:`temporal_split`: every site in every part; the parts differ by period.
- :func:`pub_folds`: prediction in ungauged basins, ``k`` random site folds (leave one fold out).
- :func:`pur_splits`: prediction in ungauged regions, leave one group of regions out
  (:data:`CAMELS_PUR_GROUPS` are the CAMELS HUC-02 groups of Feng et al. 2021).

Periods are ``(start, end)`` pairs. Dates (ISO strings, ``numpy.datetime64`` or ``datetime.date``)
are **inclusive at both ends** (the hydrology convention, e.g. ``("1999-10-01", "2008-09-30")``).
A pair of Python/numpy integers is a **half-open** index range ``[i0, i1)`` into the dataset's
dates. ``None`` means the whole record. :func:`period_to_index` turns any of these into a half-open
index range for a given date axis.

:func:`require_gauged` refuses a split that puts ungauged sites (``gauged`` false in the site
schema) into its train, validation or test part.
"""

from __future__ import annotations

import datetime as _dt
import json
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = [
    "CAMELS_PUR_GROUPS",
    "Split",
    "gauged_sites",
    "require_gauged",
    "temporal_split",
    "pub_folds",
    "pur_splits",
    "region_group_counts",
    "normalize_period",
    "period_to_index",
    "save_splits",
    "load_splits",
]

#: CAMELS HUC-02 region groups for PUR (Feng et al. 2021; the StefaLand configs use the same).
CAMELS_PUR_GROUPS: list[set[int]] = [{1, 2}, {3, 6}, {4, 5, 7}, {9, 10}, {8, 11, 12, 13}, {14, 15, 16, 18}, {17}]


# --------------------------------------------------------------------------------------------
# periods
# --------------------------------------------------------------------------------------------


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _to_day(x: Any, argument: str) -> np.datetime64:
    if isinstance(x, np.datetime64):
        return x.astype("datetime64[D]")
    if isinstance(x, (_dt.date, _dt.datetime, str)):
        try:
            return np.datetime64(x, "D")
        except ValueError as err:
            raise ValueError(f"{argument}: cannot read {x!r} as a date ({err})") from None
    raise ValueError(f"{argument}: expected a date (ISO string, numpy.datetime64, datetime.date) or an int, got {x!r}")


def normalize_period(period: Any, argument: str = "period"):
    """Canonical form of a period: ``None``, ``(int, int)`` (half-open) or ``(datetime64[D], datetime64[D])`` (inclusive)."""
    if period is None:
        return None
    if isinstance(period, slice):
        if period.step not in (None, 1):
            raise ValueError(f"{argument}: slices with a step are not periods")
        period = (period.start, period.stop)
    try:
        start, end = period
    except (TypeError, ValueError):
        raise ValueError(f"{argument}: expected a (start, end) pair, got {period!r}") from None
    if _is_int(start) and _is_int(end):
        start, end = int(start), int(end)
        if end <= start:
            raise ValueError(f"{argument}: empty index range [{start}, {end})")
        return (start, end)
    start, end = _to_day(start, argument), _to_day(end, argument)
    if end < start:
        raise ValueError(f"{argument}: end {end} is before start {start}")
    return (start, end)


def period_to_index(dates: np.ndarray, period: Any, argument: str = "period") -> tuple[int, int]:
    """Half-open index range ``[i0, i1)`` of ``period`` on the daily, contiguous axis ``dates``.

    A date period that sticks out of the record is clipped with a warning; one that does not
    overlap it at all is a ``ValueError``.
    """
    dates = np.asarray(dates).astype("datetime64[D]")
    n = len(dates)
    p = normalize_period(period, argument)
    if p is None:
        return 0, n
    if _is_int(p[0]):
        i0, i1 = p
        if i0 < 0 or i1 > n:
            raise ValueError(f"{argument}: index range [{i0}, {i1}) is outside the record [0, {n})")
        return i0, i1
    if n == 0:
        raise ValueError(f"{argument}: the dataset has no dates")
    first, last = dates[0], dates[-1]
    start, end = p
    if end < first or start > last:
        raise ValueError(f"{argument}: {start}..{end} does not overlap the record {first}..{last}")
    if start < first or end > last:
        warnings.warn(
            f"{argument}: {start}..{end} extends beyond the record {first}..{last}; clipped", UserWarning, stacklevel=2
        )
    i0 = int((max(start, first) - first).astype(int))
    i1 = int((min(end, last) - first).astype(int)) + 1
    return i0, i1


def _period_to_json(p):
    if p is None:
        return None
    if _is_int(p[0]):
        return [int(p[0]), int(p[1])]
    return [str(p[0]), str(p[1])]


def _periods_overlap(a, b) -> bool:
    if a is None or b is None:
        return True
    if _is_int(a[0]) != _is_int(b[0]):
        return False  # cannot tell without a date axis
    if _is_int(a[0]):
        return a[0] < b[1] and b[0] < a[1]
    return a[0] <= b[1] and b[0] <= a[1]


# --------------------------------------------------------------------------------------------
# Split
# --------------------------------------------------------------------------------------------


def _sites(x: Any, argument: str) -> np.ndarray:
    arr = np.asarray([] if x is None else x)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{argument}: site indices must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64).ravel()
    if (arr < 0).any():
        raise ValueError(f"{argument}: negative site index")
    if len(np.unique(arr)) != len(arr):
        raise ValueError(f"{argument}: a site is listed twice")
    return arr


@dataclass
class Split:
    """One train/validation/test split.

    ``*_sites`` are int64 arrays of row indices into the dataset (dataset order); ``*_period`` are
    normalized periods (see the module docstring). ``site_ids``, when given, are the ids of all the
    dataset's sites in the order the indices refer to; :meth:`remap` uses them to move the split to
    a dataset whose rows are ordered differently. ``info`` holds JSON-friendly metadata (fold
    number, held-out regions, seed, ...).
    """

    name: str
    train_sites: np.ndarray
    val_sites: np.ndarray
    test_sites: np.ndarray
    train_period: Any = None
    val_period: Any = None
    test_period: Any = None
    site_ids: list[str] | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.train_sites = _sites(self.train_sites, f"{self.name}.train_sites")
        self.val_sites = _sites(self.val_sites, f"{self.name}.val_sites")
        self.test_sites = _sites(self.test_sites, f"{self.name}.test_sites")
        self.train_period = normalize_period(self.train_period, f"{self.name}.train_period")
        self.val_period = normalize_period(self.val_period, f"{self.name}.val_period")
        self.test_period = normalize_period(self.test_period, f"{self.name}.test_period")
        if self.site_ids is not None:
            self.site_ids = [str(s) for s in self.site_ids]
            n = len(self.site_ids)
            for part in ("train", "val", "test"):
                idx = getattr(self, f"{part}_sites")
                if idx.size and idx.max() >= n:
                    raise ValueError(f"{self.name}.{part}_sites: index {idx.max()} out of range for {n} site ids")
        for evaluated in ("val", "test"):
            self._refuse_overlap("train", evaluated)
        self._refuse_overlap("val", "test")

    def _refuse_overlap(self, first: str, second: str) -> None:
        """A site-day in two parts would score a model on what it trained on (or stopped early on)."""
        shared = np.intersect1d(self.sites(first), self.sites(second))
        if shared.size == 0:
            return
        a, b = self.period(first), self.period(second)
        if a is not None and b is not None and _is_int(a[0]) != _is_int(b[0]):
            raise ValueError(
                f"split {self.name!r}: {first} and {second} share {shared.size} sites and give their periods in different "
                f"forms ({a} vs {b}), so their overlap cannot be checked; give both as dates or both as index ranges"
            )
        overlap = a is None or b is None or (a[0] < b[1] and b[0] < a[1] if _is_int(a[0]) else a[0] <= b[1] and b[0] <= a[1])
        if overlap:
            raise ValueError(
                f"split {self.name!r}: {first} and {second} share {shared.size} sites (e.g. index {int(shared[0])}) over "
                f"overlapping periods ({a} and {b}); their site-days must be disjoint"
            )

    # -- access ---------------------------------------------------------------------------
    def sites(self, part: str) -> np.ndarray:
        return getattr(self, f"{_part(part)}_sites")

    def period(self, part: str):
        return getattr(self, f"{_part(part)}_period")

    def ids(self, part: str) -> list[str]:
        if self.site_ids is None:
            raise ValueError(f"split {self.name!r} carries no site_ids")
        return [self.site_ids[i] for i in self.sites(part)]

    def remap(self, site_ids: Sequence[str]) -> "Split":
        """The same split with indices into ``site_ids`` (matched by id, never by position)."""
        if self.site_ids is None:
            raise ValueError(f"split {self.name!r} carries no site_ids, so it cannot be remapped")
        lookup = {str(s): i for i, s in enumerate(site_ids)}
        parts = {}
        for part in ("train", "val", "test"):
            missing = [s for s in self.ids(part) if s not in lookup]
            if missing:
                raise ValueError(f"split {self.name!r}: {len(missing)} {part} sites are not in the dataset, e.g. {missing[:5]}")
            parts[f"{part}_sites"] = np.array([lookup[s] for s in self.ids(part)], dtype=np.int64)
        return Split(
            name=self.name,
            train_period=self.train_period,
            val_period=self.val_period,
            test_period=self.test_period,
            site_ids=[str(s) for s in site_ids],
            info=dict(self.info),
            **parts,
        )

    # -- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "train_sites": self.train_sites.tolist(),
            "val_sites": self.val_sites.tolist(),
            "test_sites": self.test_sites.tolist(),
            "train_period": _period_to_json(self.train_period),
            "val_period": _period_to_json(self.val_period),
            "test_period": _period_to_json(self.test_period),
            "site_ids": None if self.site_ids is None else list(self.site_ids),
            "info": dict(self.info),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Split":
        keys = {"name", "train_sites", "val_sites", "test_sites", "train_period", "val_period", "test_period", "site_ids", "info"}
        unknown = set(d) - keys
        if unknown:
            raise ValueError(f"Split.from_dict: unknown keys {sorted(unknown)}")
        return cls(**{k: d[k] for k in keys if k in d})

    def __eq__(self, other) -> bool:  # arrays make the dataclass __eq__ ambiguous
        return isinstance(other, Split) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return (
            f"Split({self.name!r}, train={len(self.train_sites)} sites {_period_to_json(self.train_period)}, "
            f"val={len(self.val_sites)} sites {_period_to_json(self.val_period)}, "
            f"test={len(self.test_sites)} sites {_period_to_json(self.test_period)})"
        )


def _part(part: str) -> str:
    aliases = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
    if part not in aliases:
        raise ValueError(f"unknown split part {part!r}; expected 'train', 'val' or 'test'")
    return aliases[part]


_LISTED = 20  # site ids named per part in require_gauged's error


def gauged_sites(dataset) -> np.ndarray:
    """Row indices of the sites with target observations: the sites a finetuning split may draw from.

    A dataset without a ``gauged`` column (built before it existed) counts every site as gauged.
    """
    if "gauged" not in dataset.column_names:
        return np.arange(len(dataset), dtype=np.int64)
    return np.flatnonzero(np.array([g is True for g in dataset.select_columns(["gauged"]).with_format(None)["gauged"]], dtype=bool))


def require_gauged(dataset, split: Split, parts: Sequence[str] = ("train", "val", "test")) -> None:
    """Raise ``ValueError`` when a part of ``split`` used for finetuning or evaluation holds ungauged sites.

    An ungauged site (``gauged`` false: its build read no target-observation file, so its targets
    are all NaN) can feed pretraining and prediction, but in a train or validation part it adds no
    label and in a test part it has no score, so the part would silently be smaller than it looks.
    The error names the split, each offending part and its sites (the first 20, with the count).
    ``dataset`` is the ``datasets.Dataset`` whose rows the split's indices refer to; a split that
    carries ``site_ids`` must carry the dataset's, in order (else :meth:`Split.remap` it first).
    """
    if "gauged" not in dataset.column_names:
        raise ValueError(
            "require_gauged: the dataset has no 'gauged' column (the site schema's record of which sites have "
            "target observations); rebuild it with this version of stefaland_hf"
        )
    columns = dataset.select_columns(["site_id", "gauged"]).with_format(None)[:]
    site_ids = [str(x) for x in columns["site_id"]]
    gauged = np.array([g is True for g in columns["gauged"]], dtype=bool)
    if split.site_ids is not None and split.site_ids != site_ids:
        raise ValueError(
            f"require_gauged: split {split.name!r} carries site_ids that are not the dataset's ({len(split.site_ids)} vs "
            f"{len(site_ids)} sites, or another order), so its indices would name other sites; use "
            f"split.remap(dataset['site_id'])"
        )
    problems = []
    for part in parts:
        sites = split.sites(part)
        if sites.size and sites.max() >= len(site_ids):
            raise ValueError(f"require_gauged: split {split.name!r}, {_part(part)} part: site index {sites.max()} is out of range for a dataset of {len(site_ids)} sites")
        bad = sites[~gauged[sites]]
        if bad.size:
            named = ", ".join(site_ids[i] for i in bad[:_LISTED]) + (", ..." if bad.size > _LISTED else "")
            problems.append(f"{_part(part)}: {bad.size} of {sites.size} sites ({named})")
    if problems:
        raise ValueError(
            f"split {split.name!r} puts ungauged sites (gauged=False: no target observations, all-NaN targets) into parts "
            f"used for finetuning or evaluation: {'; '.join(problems)}. Ungauged sites serve pretraining and prediction "
            "only; make the split from the gauged sites (np.flatnonzero(dataset['gauged']))"
        )


def save_splits(path, splits: Iterable[Split]) -> None:
    """Write splits as a JSON list."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump([s.to_dict() for s in splits], f, indent=1)


def load_splits(path) -> list[Split]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if isinstance(data, dict):
        data = [data]
    return [Split.from_dict(d) for d in data]


# --------------------------------------------------------------------------------------------
# constructors
# --------------------------------------------------------------------------------------------


def temporal_split(
    n_sites: int,
    train_period,
    val_period=None,
    test_period=None,
    name: str = "temporal",
    site_ids: Sequence[str] | None = None,
) -> Split:
    """All ``n_sites`` sites in train, validation and test; the parts differ by period.

    Overlapping train and test periods are a ``ValueError`` (leakage); a validation period that
    overlaps either is a warning. Without ``val_period`` the validation part is empty.
    """
    if site_ids is not None and len(site_ids) != n_sites:
        raise ValueError(f"temporal_split: {len(site_ids)} site_ids for n_sites={n_sites}")
    tr = normalize_period(train_period, "train_period")
    va = normalize_period(val_period, "val_period")
    te = normalize_period(test_period, "test_period")
    if tr is None:
        raise ValueError("temporal_split: train_period is required")
    if te is not None and _periods_overlap(tr, te):
        raise ValueError(f"temporal_split: train period {_period_to_json(tr)} overlaps test period {_period_to_json(te)}")
    if va is not None and (_periods_overlap(va, tr) or (te is not None and _periods_overlap(va, te))):
        warnings.warn("temporal_split: the validation period overlaps the train or test period", UserWarning, stacklevel=2)
    all_sites = np.arange(n_sites, dtype=np.int64)
    return Split(
        name=name,
        train_sites=all_sites,
        val_sites=all_sites if va is not None else np.zeros(0, np.int64),
        test_sites=all_sites if te is not None else np.zeros(0, np.int64),
        train_period=tr,
        val_period=va,
        test_period=te,
        site_ids=None if site_ids is None else list(site_ids),
        info={"kind": "temporal"},
    )


def _draw_validation(rng: np.random.Generator, pool: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Split ``pool`` into (train, val) with ``round(val_fraction * len(pool))`` validation sites."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = int(round(val_fraction * len(pool)))
    if val_fraction > 0 and len(pool) > 1:
        n_val = max(n_val, 1)
    n_val = min(n_val, max(len(pool) - 1, 0))
    chosen = rng.permutation(len(pool))[:n_val]
    val = np.sort(pool[chosen])
    train = np.sort(np.setdiff1d(pool, val))
    return train, val


def pub_folds(
    site_ids: Sequence[str] | int,
    k: int = 10,
    seed: int = 0,
    val_fraction: float = 0.1,
    train_period=None,
    val_period=None,
    test_period=None,
    name: str = "pub",
) -> list[Split]:
    """``k`` PUB folds: random site groups held out one at a time (leave-one-group-out).

    The test sets are disjoint and together cover every site; fold sizes differ by at most one.
    Validation sites (``val_fraction`` of the non-test sites, at least one when the fraction is
    positive) are drawn from the training sites and removed from them, so validation is also
    ungauged. Everything is reproducible from ``seed``. ``site_ids`` may be an int (number of
    sites) when there are no ids. Periods default to the whole record for every part.
    """
    ids = None if _is_int(site_ids) else [str(s) for s in site_ids]
    n = int(site_ids) if ids is None else len(ids)
    if ids is not None and len(set(ids)) != n:
        raise ValueError("pub_folds: site_ids are not unique")
    if not 2 <= k <= n:
        raise ValueError(f"pub_folds: need 2 <= k <= n_sites, got k={k}, n_sites={n}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    groups = np.array_split(perm, k)
    splits = []
    for fold, test in enumerate(groups):
        test = np.sort(test)
        pool = np.setdiff1d(np.arange(n), test)
        train, val = _draw_validation(np.random.default_rng([seed, fold]), pool, val_fraction)
        splits.append(
            Split(
                name=f"{name}_fold{fold}",
                train_sites=train,
                val_sites=val,
                test_sites=test,
                train_period=train_period,
                val_period=val_period,
                test_period=test_period,
                site_ids=ids,
                info={"kind": "pub", "fold": fold, "k": k, "seed": seed, "val_fraction": val_fraction},
            )
        )
    return splits


def _norm_region(x: Any):
    """'01' and 1 are the same HUC; non-numeric labels are compared as stripped strings."""
    if _is_int(x):
        return int(x)
    s = str(x).strip()
    try:
        return int(s)
    except ValueError:
        return s


def region_group_counts(regions: Sequence, groups: Sequence[Iterable] = CAMELS_PUR_GROUPS) -> list[int]:
    """Number of sites in each region group."""
    norm = [_norm_region(r) for r in regions]
    return [sum(1 for r in norm if r in {_norm_region(g) for g in group}) for group in groups]


def pur_splits(
    regions: Sequence,
    groups: Sequence[Iterable] = CAMELS_PUR_GROUPS,
    seed: int = 0,
    val_fraction: float = 0.1,
    train_period=None,
    val_period=None,
    test_period=None,
    site_ids: Sequence[str] | None = None,
    name: str = "pur",
) -> list[Split]:
    """PUR splits: each group of regions held out in turn (leave-one-region-group-out).

    ``regions`` gives each site's region ("01".."18" or ints for CAMELS HUC-02; "01" == 1).
    Returns one :class:`Split` per group **that has sites**. Groups without any site are not
    hidden: a ``UserWarning`` names them, and every returned split lists them in
    ``info["empty_groups"]`` (alongside ``info["group_counts"]``). Sites whose region is in no group
    are never tested; they stay in training (with a warning). Validation sites are a seeded random
    ``val_fraction`` of the training sites, removed from training.
    """
    norm = [_norm_region(r) for r in regions]
    n = len(norm)
    if site_ids is not None and len(site_ids) != n:
        raise ValueError(f"pur_splits: {len(site_ids)} site_ids for {n} regions")
    group_sets = [{_norm_region(g) for g in group} for group in groups]
    seen: dict = {}
    for gi, gs in enumerate(group_sets):
        for r in gs:
            if r in seen:
                raise ValueError(f"pur_splits: region {r!r} is in group {seen[r]} and group {gi}")
            seen[r] = gi
    site_group = np.array([seen.get(r, -1) for r in norm], dtype=np.int64)
    ungrouped = sorted({str(r) for r, g in zip(norm, site_group) if g < 0})
    if ungrouped:
        warnings.warn(
            f"pur_splits: {int((site_group < 0).sum())} sites have regions in no group ({ungrouped[:10]}); "
            "they are never tested and stay in training",
            UserWarning,
            stacklevel=2,
        )
    counts = [int((site_group == gi).sum()) for gi in range(len(group_sets))]
    empty = [gi for gi, c in enumerate(counts) if c == 0]
    described = [sorted(group_sets[gi], key=str) for gi in range(len(group_sets))]
    if empty:
        warnings.warn(
            "pur_splits: region groups without any site (no split made for them): "
            + ", ".join(f"#{gi} {described[gi]}" for gi in empty),
            UserWarning,
            stacklevel=2,
        )
    splits = []
    all_sites = np.arange(n, dtype=np.int64)
    for gi in range(len(group_sets)):
        if gi in empty:
            continue
        test = all_sites[site_group == gi]
        pool = all_sites[site_group != gi]
        train, val = _draw_validation(np.random.default_rng([seed, gi]), pool, val_fraction)
        splits.append(
            Split(
                name=f"{name}_group{gi}",
                train_sites=train,
                val_sites=val,
                test_sites=test,
                train_period=train_period,
                val_period=val_period,
                test_period=test_period,
                site_ids=None if site_ids is None else list(site_ids),
                info={
                    "kind": "pur",
                    "group": gi,
                    "held_out_regions": [str(r) for r in described[gi]],
                    "group_counts": counts,
                    "empty_groups": [[str(r) for r in described[g]] for g in empty],
                    "seed": seed,
                    "val_fraction": val_fraction,
                },
            )
        )
    return splits
