"""What draws training examples from a site dataset (:class:`~stefaland_hf.data.site_arrays.SiteArrays`).

- :class:`WindowDataset`: (site, start) windows whose labels are the time-series targets
  (finetuning, pretraining).
- :class:`StaticRegressionDataset`: per-site examples whose labels are static attributes (soil texture).

Both cut every batch with :func:`window_batch`, as does whole-period evaluation
(:mod:`stefaland_hf.evaluation`), so a batch always has the keys :data:`BATCH_KEYS`, in
the model's variable order (variables the dataset lacks are NaN): ``x_dynamic`` float32 [B, L, F],
``x_static`` float32 [B, C], ``labels`` (float32 [B, L, K] for time-series targets, NaN where
unobserved and on the first ``warmup`` days; float32 [B, K] for static targets), ``site_index`` int64
[B] (row of the dataset), ``start`` int64 [B] (index of the window's first day in the dataset's
dates). :func:`collate_windows` turns batches into torch tensors.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from .site_arrays import SiteArrays

__all__ = [
    "BATCH_KEYS",
    "window_labels",
    "window_batch",
    "WindowBatch",
    "WindowDataset",
    "StaticRegressionDataset",
    "target_matrix",
    "collate_windows",
    "collate_model_batch",
]

BATCH_KEYS = ("x_dynamic", "x_static", "labels", "site_index", "start")


def window_labels(arrays: SiteArrays, sites, starts, length: int, target_cols: np.ndarray | None, warmup: int = 0) -> np.ndarray:
    """Time-series labels float32 [B, length, K] of windows: the targets, NaN on the first ``warmup`` days
    (context that carries no loss)."""
    labels = arrays.gather_targets(sites, starts, length, target_cols)
    if warmup:
        labels[:, :warmup] = np.nan
    return labels


def window_batch(
    arrays: SiteArrays, sites, starts, length: int, dynamic_cols: np.ndarray | None, static: np.ndarray, labels: np.ndarray
) -> dict[str, np.ndarray]:
    """The batch dict (keys :data:`BATCH_KEYS`) of the windows ``[start, start + length)`` of ``sites``.

    ``dynamic_cols`` maps the model's dynamic variables to the dataset's (:meth:`SiteArrays.column_map`),
    ``static`` holds the static inputs of every dataset row [N, C] and ``labels`` the batch's labels
    ([B, length, K] from :func:`window_labels`, or [B, K] per site).
    """
    sites = np.asarray(sites, dtype=np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    return {
        "x_dynamic": arrays.gather_dynamic(sites, starts, length, dynamic_cols),
        "x_static": static[sites],
        "labels": labels,
        "site_index": sites,
        "start": starts,
    }


class WindowBatch(list):
    """What a sampler's ``__getitems__`` returns: a list of per-example dicts (so any collator
    works) that also carries the batched arrays they are views of (``.arrays``), which
    :func:`collate_windows` uses directly when the items are untouched."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays
        n = len(arrays["site_index"])
        super().__init__({k: v[i] for k, v in arrays.items()} for i in range(n))
        self._views = [dict(item) for item in self]

    def untouched(self) -> bool:
        if len(self) != len(self._views):
            return False
        for item, view in zip(self, self._views):
            if item.keys() != view.keys() or any(item[k] is not view[k] for k in view):
                return False
        return True


class _Sampler(torch.utils.data.Dataset):
    """Items and batches of a sampler, both cut by its ``_batch(indices)`` (a :func:`window_batch` dict)."""

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return {k: v[0] for k, v in self._batch([int(i)]).items()}

    def __getitems__(self, indices: Sequence[int]) -> WindowBatch:
        """A whole batch gathered with one vectorized fancy index (torch's DataLoader calls this)."""
        return WindowBatch(self._batch(indices))


class WindowDataset(_Sampler):
    """(site, start) training windows over ``sites`` within ``period``.

    Every window lies entirely inside ``period`` (its warm-up days too). Starts are
    ``period_start + stride * j``. The first ``warmup`` days of each window are context: their
    labels are NaN, so a loss sees only the last ``seq_len - warmup`` days. With
    ``min_observed = N`` windows whose label part has fewer than ``N`` observed (non-NaN) values,
    counted over all model target variables, are skipped; the count uses cumulative sums of the
    observed mask, vectorized over sites and starts, streaming ``site_chunk`` sites at a time.

    ``dynamic_variables``/``static_variables``/``target_variables`` are the model's variable
    lists (canonical names); ``None`` keeps the dataset's order. Variables the dataset lacks are
    NaN columns; unknown names are a ``ValueError``.

    ``self.site_index`` and ``self.start`` (int64 arrays) are the window index; without
    ``min_observed`` it is implicit (``site = sites[i // n_starts]``) and costs no memory.
    """

    def __init__(
        self,
        data,
        sites: Sequence[int] | np.ndarray | None = None,
        period: Any = None,
        seq_len: int = 365,
        warmup: int = 0,
        stride: int = 1,
        min_observed: int = 0,
        dynamic_variables: Sequence[str] | None = None,
        static_variables: Sequence[str] | None = None,
        target_variables: Sequence[str] | None = None,
        site_chunk: int = 256,
    ):
        self.arrays = SiteArrays.wrap(data)
        a = self.arrays
        self.sites = np.arange(a.n_sites, dtype=np.int64) if sites is None else np.asarray(sites, dtype=np.int64).ravel()
        if self.sites.size and (self.sites.min() < 0 or self.sites.max() >= a.n_sites):
            raise IndexError(f"sites: index out of range for {a.n_sites} sites")
        if seq_len < 1 or not 0 <= warmup < seq_len or stride < 1 or min_observed < 0:
            raise ValueError(
                f"need seq_len >= 1, 0 <= warmup < seq_len, stride >= 1, min_observed >= 0 "
                f"(got seq_len={seq_len}, warmup={warmup}, stride={stride}, min_observed={min_observed})"
            )
        self.seq_len, self.warmup, self.stride, self.min_observed = int(seq_len), int(warmup), int(stride), int(min_observed)
        self.period_range = a.period_index(period)
        p0, p1 = self.period_range
        if p1 - p0 < seq_len:
            raise ValueError(f"period has {p1 - p0} days, shorter than seq_len={seq_len}")
        # validate the names now (clear errors before any training starts)
        self.dynamic_variables = list(a.dynamic_variables if dynamic_variables is None else dynamic_variables)
        self.static_variables = list(a.static_variables if static_variables is None else static_variables)
        self.target_variables = list(a.target_variables if target_variables is None else target_variables)
        self._dyn_cols = a.column_map("dynamic", self.dynamic_variables)
        self._tgt_cols = a.column_map("target", self.target_variables)
        self._static = a.static_matrix(self.static_variables)

        starts = np.arange(p0, p1 - seq_len + 1, stride, dtype=np.int64)
        self._grid_starts = starts
        self._site_index = self._start = None  # unfiltered: the index is implicit (no memory)
        if min_observed > 0 and len(self.sites):
            keep_sites, keep_starts = [], []
            rel = starts - p0  # offsets into the period
            for c0 in range(0, len(self.sites), site_chunk):
                chunk = self.sites[c0 : c0 + site_chunk]
                tgt = a.gather_targets(chunk, np.full(len(chunk), p0), p1 - p0, self._tgt_cols)  # [s, P, K]
                observed = (~np.isnan(tgt)).sum(axis=2, dtype=np.int32)  # [s, P]
                del tgt
                cs = np.zeros((len(chunk), p1 - p0 + 1), dtype=np.int32)
                np.cumsum(observed, axis=1, out=cs[:, 1:])
                keep = (cs[:, rel + seq_len] - cs[:, rel + warmup]) >= min_observed  # [s, n_starts]
                si, wi = np.nonzero(keep)
                keep_sites.append(chunk[si])
                keep_starts.append(starts[wi])
            self._site_index = np.concatenate(keep_sites)
            self._start = np.concatenate(keep_starts)

    @classmethod
    def from_split(cls, data, split, part: str = "train", **kwargs) -> "WindowDataset":
        """Windows over one part (``"train"``, ``"val"``, ``"test"``) of a :class:`~stefaland_hf.data.splits.Split`."""
        return cls(data, sites=split.sites(part), period=split.period(part), **kwargs)

    @property
    def site_index(self) -> np.ndarray:
        """Site (dataset row) of every window, int64 [len(self)]."""
        if self._site_index is None:
            return np.repeat(self.sites, len(self._grid_starts))
        return self._site_index

    @property
    def start(self) -> np.ndarray:
        """Start day (index into the dataset's dates) of every window, int64 [len(self)]."""
        if self._start is None:
            return np.tile(self._grid_starts, len(self.sites))
        return self._start

    def _lookup(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._site_index is None:
            q, r = np.divmod(idx, len(self._grid_starts))
            return self.sites[q], self._grid_starts[r]
        return self._site_index[idx], self._start[idx]

    def __len__(self) -> int:
        if self._site_index is None:
            return len(self.sites) * len(self._grid_starts)
        return len(self._site_index)

    def _batch(self, idx) -> dict[str, np.ndarray]:
        idx = np.asarray(idx, dtype=np.int64)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"window index out of range for {n} windows")
        idx = np.where(idx < 0, idx + n, idx)
        sites, starts = self._lookup(idx)
        labels = window_labels(self.arrays, sites, starts, self.seq_len, self._tgt_cols, self.warmup)
        return window_batch(self.arrays, sites, starts, self.seq_len, self._dyn_cols, self._static, labels)

    def dates_of(self, i: int) -> np.ndarray:
        s = int(self._lookup(np.asarray([int(i)]))[1][0])
        return self.arrays.dates[s : s + self.seq_len]


def target_matrix(data, targets: Sequence[str]) -> np.ndarray:
    """The target attributes float32 [N, K] (from the dataset's static attributes)."""
    a = SiteArrays.wrap(data)
    missing = [t for t in targets if t not in a.static_variables]
    if missing:
        raise ValueError(f"targets {missing} are not static attributes of this dataset (it has {a.static_variables})")
    return a.static_matrix(list(targets)).copy()


def _even_starts(p0: int, p1: int, seq_len: int, n: int) -> np.ndarray:
    return np.unique(np.round(np.linspace(p0, p1 - seq_len, max(n, 1))).astype(np.int64))


class StaticRegressionDataset(_Sampler):
    """Per-site examples: windows of forcings, static attributes, and the target attributes as labels.

    ``random_windows=True`` (training): ``samples_per_site`` items per site whose start is drawn
    afresh at every access from a generator seeded with ``seed`` (so every epoch sees new windows;
    deterministic with ``dataloader_num_workers=0``). ``random_windows=False`` (evaluation):
    ``samples_per_site`` evenly spaced windows over ``period``, the same at every access.

    Items: ``x_dynamic`` [L, F], ``x_static`` [C] (``hidden_variables`` set to NaN), ``labels`` [K],
    ``site_index`` (dataset row), ``start`` (first day, index into the dataset's dates).
    """

    def __init__(
        self,
        data,
        sites: Sequence[int] | np.ndarray,
        targets: Sequence[str],
        period: Any = None,
        seq_len: int = 365,
        samples_per_site: int = 1,
        random_windows: bool = True,
        seed: int = 0,
        dynamic_variables: Sequence[str] | None = None,
        static_variables: Sequence[str] | None = None,
        hidden_variables: Sequence[str] = (),
    ):
        self.arrays = a = SiteArrays.wrap(data)
        self.sites = np.asarray(sites, dtype=np.int64).ravel()
        if self.sites.size == 0:
            raise ValueError("StaticRegressionDataset: no sites")
        self.targets = list(targets)
        self.seq_len, self.random_windows = int(seq_len), bool(random_windows)
        self.p0, self.p1 = a.period_index(period)
        if self.p1 - self.p0 < seq_len:
            raise ValueError(f"period has {self.p1 - self.p0} days, shorter than seq_len={seq_len}")
        self.dynamic_variables = list(a.dynamic_variables if dynamic_variables is None else dynamic_variables)
        self.static_variables = list(a.static_variables if static_variables is None else static_variables)
        self._dyn_cols = a.column_map("dynamic", self.dynamic_variables)
        static = a.static_matrix(self.static_variables).copy()
        hidden = [n for n in hidden_variables if n in self.static_variables]
        static[:, [self.static_variables.index(n) for n in hidden]] = np.nan
        self._static = static
        self._labels = target_matrix(a, self.targets)
        if random_windows:
            self.per_site = max(int(samples_per_site), 1)
            self._starts = None
            self._rng = np.random.default_rng(seed)
        else:
            self._starts = _even_starts(self.p0, self.p1, self.seq_len, samples_per_site)
            self.per_site = len(self._starts)

    def __len__(self) -> int:
        return len(self.sites) * self.per_site

    @property
    def site_index(self) -> np.ndarray:
        return np.repeat(self.sites, self.per_site)

    def _batch(self, idx) -> dict[str, np.ndarray]:
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} examples")
        q, r = np.divmod(idx, self.per_site)
        sites = self.sites[q]
        if self._starts is None:
            starts = self._rng.integers(self.p0, self.p1 - self.seq_len + 1, size=len(idx))
        else:
            starts = self._starts[r]
        return window_batch(self.arrays, sites, starts, self.seq_len, self._dyn_cols, self._static, self._labels[sites])


def _to_tensor(values) -> Any:
    if isinstance(values, torch.Tensor):
        return values
    arr = np.asarray(values)
    if arr.dtype == object or arr.dtype.kind in "USM":
        return list(values)
    return torch.from_numpy(np.ascontiguousarray(arr))


def collate_windows(batch, drop_keys: Sequence[str] = ()) -> dict[str, Any]:
    """Stack window dicts (or take an already batched dict) into torch tensors.

    Float arrays stay float32 (NaN kept); ``site_index``/``start`` become int64 tensors. Keys in
    ``drop_keys`` are left out (e.g. ``("site_index", "start")`` before calling a model).
    Non-numeric values (strings, dates) are returned as lists.
    """
    drop = set(drop_keys)
    if isinstance(batch, WindowBatch) and batch.untouched():
        arrays = batch.arrays
    elif isinstance(batch, dict):
        arrays = batch
    else:
        if len(batch) == 0:
            raise ValueError("collate_windows: empty batch")
        keys = [k for k in batch[0] if k not in drop]
        arrays = {}
        for k in keys:
            vals = [item[k] for item in batch]
            if isinstance(vals[0], torch.Tensor):
                arrays[k] = torch.stack(vals)
            elif isinstance(vals[0], (np.ndarray, np.generic, int, float)):
                arrays[k] = np.stack([np.asarray(v) for v in vals])
            else:
                arrays[k] = vals
    out = {}
    for k, v in arrays.items():
        if k in drop:
            continue
        t = _to_tensor(v)
        if k in ("site_index", "start") and isinstance(t, torch.Tensor):
            t = t.long()
        out[k] = t
    return out


def collate_model_batch(batch) -> dict[str, Any]:
    """:func:`collate_windows` without the window index (``site_index``, ``start``): what a model takes
    (Trainer's ``data_collator``)."""
    return collate_windows(batch, drop_keys=("site_index", "start"))
