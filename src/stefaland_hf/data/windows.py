"""Training windows and whole-period evaluation over memory-mapped site datasets.

:class:`SiteArrays` wraps a ``datasets.Dataset`` with the one-example-per-site schema
(:mod:`stefaland_hf.data.schema`) and exposes the ``dynamic`` and ``targets`` columns as
**zero-copy** numpy views of the Arrow buffers (memory-mapped when the dataset comes from disk).
An ``Array2D(shape=(None, F))`` column is stored as ``list<list<float>>``: the float values of all
sites lie in one contiguous buffer per Arrow chunk, so site ``i`` is ``values[row0[i]:row0[i]+T]``
of a ``[rows, F]`` view and a window is a slice of it. Nothing proportional to the dataset's
time-series size is ever copied; static attributes and site metadata are small and loaded.

:class:`WindowDataset` serves (site, start) training windows as numpy float32 arrays in the
model's variable order; :func:`collate_windows` turns them into torch tensors.
:func:`predict_sites` runs a model over a whole period with sequential windows and stitches the
predictions back into one series per site.

Batch keys (all in the model's variable order; variables the dataset lacks are NaN):
``x_dynamic`` float32 [B, L, F], ``x_static`` float32 [B, C], ``labels`` float32 [B, L, K]
(NaN where unobserved and on the first ``warmup`` days), ``site_index`` int64 [B] (row of the
dataset), ``start`` int64 [B] (index of the window's first day in the dataset's dates).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from ..variables import align_variables
from .splits import period_to_index

__all__ = [
    "SiteArrays",
    "WindowDataset",
    "WindowBatch",
    "collate_windows",
    "sequential_window_plan",
    "iter_site_sequences",
    "predict_sites",
    "BATCH_KEYS",
]

BATCH_KEYS = ("x_dynamic", "x_static", "labels", "site_index", "start")


# --------------------------------------------------------------------------------------------
# zero-copy column views
# --------------------------------------------------------------------------------------------


def _chunk_view(chunk: pa.Array, width: int, column: str) -> tuple[np.ndarray, np.ndarray]:
    """``(values [R, width], row_offsets [n+1])`` for one chunk of a ``list<list<float>>`` column.

    ``values`` is a zero-copy view of the chunk's float buffer when it has no nulls (the normal
    case); site ``j`` of the chunk is ``values[row_offsets[j]:row_offsets[j+1]]``.
    """
    if isinstance(chunk, pa.ExtensionArray):
        chunk = chunk.storage
    if not (pa.types.is_list(chunk.type) or pa.types.is_large_list(chunk.type)):
        raise ValueError(f"column {column!r}: expected a [T, F] array column (list of lists), got {chunk.type}")
    if chunk.null_count:
        raise ValueError(f"column {column!r}: {chunk.null_count} sites have a null (absent) array")
    outer = np.asarray(chunk.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)  # respects slicing
    inner = chunk.values  # child list array, unsliced
    if len(outer) <= 1 or outer[-1] == outer[0]:
        return np.zeros((0, width), np.float32), outer - outer[0]
    first_row, last_row = int(outer[0]), int(outer[-1])
    if pa.types.is_fixed_size_list(inner.type):
        if inner.type.list_size != width:
            raise ValueError(f"column {column!r}: rows have {inner.type.list_size} values, expected {width}")
        floats = inner.values  # ignores inner.offset
        base = (inner.offset + first_row) * width
    elif pa.types.is_list(inner.type) or pa.types.is_large_list(inner.type):
        ioff = inner.offsets.to_numpy(zero_copy_only=False)[first_row : last_row + 1]
        if not np.all(np.diff(ioff) == width):
            raise ValueError(f"column {column!r}: some time steps do not have exactly {width} values")
        floats = inner.values
        base = int(ioff[0])
    else:
        raise ValueError(f"column {column!r}: unexpected inner type {inner.type}")
    if inner.null_count:
        raise ValueError(f"column {column!r}: {inner.null_count} null time steps")
    if floats.type != pa.float32():
        warnings.warn(f"column {column!r} holds {floats.type}, not float32: it is copied into memory", UserWarning)
        floats = floats.cast(pa.float32())
    if floats.null_count:
        # nulls cannot be viewed as NaN without a copy; this should not happen with the builders
        warnings.warn(f"column {column!r} has {floats.null_count} null values: copied into memory as NaN", UserWarning)
        flat = floats.to_numpy(zero_copy_only=False).astype(np.float32)
    else:
        flat = floats.to_numpy(zero_copy_only=True)
    n_rows = last_row - first_row
    values = flat[base : base + n_rows * width].reshape(n_rows, width)
    return values, outer - first_row


class _ColumnView:
    """Per-site views of one ``[T, width]`` column, possibly spread over several Arrow chunks."""

    def __init__(self, chunked: pa.ChunkedArray, rows: np.ndarray, width: int, n_time: int, column: str):
        self.column = column
        self.width = width
        self.n_time = n_time
        self.chunks: list[np.ndarray] = []
        chunk_of_row, row0_of_row = [], []
        for ci, chunk in enumerate(chunked.chunks):
            if len(chunk) == 0:
                continue
            values, offs = _chunk_view(chunk, width, column)
            lengths = np.diff(offs)
            if np.any(lengths != n_time):
                bad = int(np.flatnonzero(lengths != n_time)[0])
                raise ValueError(
                    f"column {column!r}: a site has {int(lengths[bad])} time steps but the dates have {n_time}"
                )
            self.chunks.append(values)
            chunk_of_row.append(np.full(len(lengths), len(self.chunks) - 1, dtype=np.int64))
            row0_of_row.append(offs[:-1])
        chunk_of_row = np.concatenate(chunk_of_row) if chunk_of_row else np.zeros(0, np.int64)
        row0_of_row = np.concatenate(row0_of_row) if row0_of_row else np.zeros(0, np.int64)
        # map table rows to dataset order (a dataset after select()/shuffle() has an indices mapping)
        self.site_chunk = chunk_of_row[rows]
        self.site_row0 = row0_of_row[rows]

    def site(self, i: int) -> np.ndarray:
        """Zero-copy view [T, width] of site ``i``."""
        r0 = int(self.site_row0[i])
        return self.chunks[int(self.site_chunk[i])][r0 : r0 + self.n_time]

    def gather(self, sites: np.ndarray, starts: np.ndarray, length: int, cols: np.ndarray | None = None) -> np.ndarray:
        """Windows ``[B, length, len(cols)]`` (a new array) by vectorized fancy indexing.

        ``cols`` maps output columns to source columns, ``-1`` = missing (NaN).
        """
        sites = np.asarray(sites, dtype=np.int64)
        starts = np.asarray(starts, dtype=np.int64)
        if starts.size and (starts.min() < 0 or starts.max() + length > self.n_time):
            raise IndexError(f"{self.column}: window [start, start+{length}) outside the record of {self.n_time} days")
        n_out = self.width if cols is None else len(cols)
        out = np.empty((len(sites), length, n_out), dtype=np.float32)
        if len(sites) == 0 or length == 0:
            return out
        steps = np.arange(length, dtype=np.int64)
        chunk_ids = self.site_chunk[sites]
        single = len(self.chunks) == 1
        for c in (range(1) if single else np.unique(chunk_ids)):
            sel = slice(None) if single else chunk_ids == c
            rows = (self.site_row0[sites[sel]] + starts[sel])[:, None] + steps  # [b, L]
            values = self.chunks[int(c)]
            if cols is None:
                out[sel] = values[rows]
            else:
                out[sel] = values[rows[..., None], np.maximum(cols, 0)]
        if cols is not None and (cols < 0).any():
            out[..., cols < 0] = np.nan
        return out


def _column_map(source: Sequence[str], target: Sequence[str], argument: str) -> np.ndarray:
    """Source column of each target name (``-1`` = missing), with exactly ``align_variables``' rules."""
    # ``target`` is the model's variable list: dataset variables the model has no embedding for
    # cannot be used, so dropping them is intended (names are canonical on both sides, so a
    # dropped column is never a misspelt one)
    unused = [name for name in source if name not in target]
    probe = align_variables(np.arange(len(source), dtype=np.float32)[None, :], source, target, argument, ignore=unused)[0]
    return np.where(np.isnan(probe), -1, probe).astype(np.int64)


def _uniform_names(table: pa.Table, column: str) -> list[str]:
    col = table.column(column)
    if len(col) == 0:
        return []
    names = [str(x) for x in col[0].as_py()]
    lengths = pc.list_value_length(col)
    if pc.min(lengths).as_py() != len(names) or pc.max(lengths).as_py() != len(names):
        raise ValueError(f"column {column!r}: sites list different numbers of variables")
    flat = pa.chunked_array([c.flatten() for c in col.chunks if len(c)]).combine_chunks()
    expected = pa.array(names * len(col), type=flat.type)
    if not pc.all(pc.equal(flat, expected)).as_py():
        raise ValueError(f"column {column!r}: sites list different variables (every site must share one list)")
    return names


class SiteArrays:
    """Zero-copy numpy access to a site dataset (``datasets.Dataset`` with the site schema).

    Attributes: ``n_sites``, ``n_time``, ``dates`` (datetime64[D] [T]), ``site_ids``, ``regions``,
    ``latitude``/``longitude`` (float32 [N]), ``dynamic_variables``/``static_variables``/
    ``target_variables`` (the dataset's names), ``static`` (float32 [N, C], loaded).
    Indices are dataset rows (respecting a ``select``/``shuffle`` indices mapping).
    """

    def __init__(self, dataset):
        table = dataset.data
        table = getattr(table, "table", table)  # datasets.table.Table -> pyarrow.Table
        indices = getattr(dataset, "_indices", None)
        n_rows = table.num_rows
        if indices is not None:
            idx_table = getattr(indices, "table", indices)
            rows = np.asarray(idx_table.column(0).to_numpy(), dtype=np.int64)
        else:
            rows = np.arange(n_rows, dtype=np.int64)
        missing = [c for c in ("site_id", "dates", "dynamic", "static", "targets") if c not in table.column_names]
        if missing:
            raise ValueError(f"dataset lacks the site-schema columns {missing}")
        self.dataset = dataset
        self.rows = rows
        self.n_sites = len(rows)
        if self.n_sites == 0:
            raise ValueError("dataset has no sites")

        # --- dates: one shared, daily, contiguous period ----------------------------------
        dates_col = table.column("dates")
        lengths = pc.list_value_length(dates_col).to_numpy(zero_copy_only=False)[rows]
        firsts = pc.list_element(dates_col, 0).cast(pa.int32()).to_numpy(zero_copy_only=False)[rows]
        if np.any(lengths != lengths[0]) or np.any(firsts != firsts[0]):
            raise ValueError("sites do not share one period of dates (schema: same daily period for all sites)")
        self.dates = np.asarray(dates_col[int(rows[0])].values.to_numpy(zero_copy_only=False)).astype("datetime64[D]")
        self.n_time = len(self.dates)
        if self.n_time > 1 and np.any(np.diff(self.dates).astype(np.int64) != 1):
            raise ValueError("dates are not daily and contiguous")
        lasts = pc.list_element(dates_col, max(self.n_time - 1, 0)).cast(pa.int32()).to_numpy(zero_copy_only=False)[rows]
        if np.any(lasts != lasts[0]):
            raise ValueError("sites do not share one period of dates (schema: same daily period for all sites)")

        # --- names ---------------------------------------------------------------------------
        self.dynamic_variables = _uniform_names(table, "dynamic_variables")
        self.static_variables = _uniform_names(table, "static_variables")
        self.target_variables = _uniform_names(table, "target_variables")

        # --- small per-site data (loaded) ------------------------------------------------------
        self.site_ids = [str(x) for x in np.asarray(table.column("site_id").to_pylist(), dtype=object)[rows]]
        self.regions = (
            [str(x) for x in np.asarray(table.column("region").to_pylist(), dtype=object)[rows]]
            if "region" in table.column_names
            else [""] * self.n_sites
        )
        self.latitude = self._float_column(table, "latitude", rows)
        self.longitude = self._float_column(table, "longitude", rows)
        n_static = len(self.static_variables)
        static_flat = pa.chunked_array([c.flatten() for c in table.column("static").chunks if len(c)], type=pa.float32())
        static_np = static_flat.to_numpy().astype(np.float32, copy=False)
        if static_np.size != n_rows * n_static:
            raise ValueError(f"column 'static': expected {n_static} values per site")
        self.static = static_np.reshape(n_rows, n_static)[rows]

        # --- zero-copy time series -------------------------------------------------------------
        self._dynamic = _ColumnView(table.column("dynamic"), rows, len(self.dynamic_variables), self.n_time, "dynamic")
        self._targets = _ColumnView(table.column("targets"), rows, len(self.target_variables), self.n_time, "targets")
        self._static_cache: dict[tuple, np.ndarray] = {}

    def __getstate__(self):
        # pickle the dataset (a memory-mapped one pickles as its file paths), never the views:
        # DataLoader workers started with spawn/forkserver rebuild the zero-copy views themselves
        return {"dataset": self.dataset}

    def __setstate__(self, state):
        self.__init__(state["dataset"])

    @staticmethod
    def _float_column(table, name, rows):
        if name not in table.column_names:
            return np.full(len(rows), np.nan, dtype=np.float32)
        return table.column(name).to_numpy().astype(np.float32)[rows]

    @classmethod
    def wrap(cls, data) -> "SiteArrays":
        return data if isinstance(data, SiteArrays) else cls(data)

    def __len__(self) -> int:
        return self.n_sites

    @property
    def n_chunks(self) -> int:
        return len(self._dynamic.chunks)

    # -- per-site zero-copy views --------------------------------------------------------------
    def dynamic_site(self, i: int) -> np.ndarray:
        """Zero-copy view float32 [T, F] (dataset variable order)."""
        return self._dynamic.site(i)

    def targets_site(self, i: int) -> np.ndarray:
        """Zero-copy view float32 [T, K] (dataset variable order)."""
        return self._targets.site(i)

    # -- periods and variable maps -----------------------------------------------------------
    def period_index(self, period, argument: str = "period") -> tuple[int, int]:
        """Half-open index range of ``period`` (see :mod:`stefaland_hf.data.splits`)."""
        return period_to_index(self.dates, period, argument)

    def column_map(self, kind: str, names: Sequence[str] | None) -> np.ndarray | None:
        """Source column per model variable (``-1`` = missing); ``None`` = the dataset's own order."""
        source = {"dynamic": self.dynamic_variables, "target": self.target_variables, "static": self.static_variables}[kind]
        if names is None or list(names) == list(source):
            return None
        return _column_map(source, names, f"{kind}_variables")

    def static_matrix(self, names: Sequence[str] | None = None) -> np.ndarray:
        """Static attributes float32 [N, C] in the order ``names`` (loaded, cached).

        A model static variable ``latitude``/``longitude`` that the dataset's static list lacks is
        taken from the site's coordinate columns; any other missing variable is NaN.
        """
        key = None if names is None else tuple(names)
        if key not in self._static_cache:
            if names is None:
                out = self.static
            else:
                # statics the model has no embedding for cannot be used (see _column_map)
                unused = [n for n in self.static_variables if n not in names]
                out = align_variables(self.static, self.static_variables, names, "static_variables", ignore=unused)
                for j, name in enumerate(names):
                    if name not in self.static_variables and name in ("latitude", "longitude"):
                        out[:, j] = self.latitude if name == "latitude" else self.longitude
            self._static_cache[key] = np.ascontiguousarray(out, dtype=np.float32)
        return self._static_cache[key]

    def gather_dynamic(self, sites, starts, length: int, cols: np.ndarray | None = None) -> np.ndarray:
        return self._dynamic.gather(sites, starts, length, cols)

    def gather_targets(self, sites, starts, length: int, cols: np.ndarray | None = None) -> np.ndarray:
        return self._targets.gather(sites, starts, length, cols)

    def batch(
        self,
        sites,
        starts,
        length: int,
        warmup: int = 0,
        dynamic_variables: Sequence[str] | None = None,
        static_variables: Sequence[str] | None = None,
        target_variables: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """One batch of windows as numpy arrays (keys :data:`BATCH_KEYS`)."""
        sites = np.asarray(sites, dtype=np.int64)
        starts = np.asarray(starts, dtype=np.int64)
        labels = self.gather_targets(sites, starts, length, self.column_map("target", target_variables))
        if warmup:
            labels[:, :warmup] = np.nan
        return {
            "x_dynamic": self.gather_dynamic(sites, starts, length, self.column_map("dynamic", dynamic_variables)),
            "x_static": self.static_matrix(static_variables)[sites],
            "labels": labels,
            "site_index": sites.copy(),
            "start": starts.copy(),
        }


# --------------------------------------------------------------------------------------------
# training windows
# --------------------------------------------------------------------------------------------


class WindowBatch(list):
    """What :meth:`WindowDataset.__getitems__` returns: a list of per-window dicts (so any
    collator works) that also carries the batched arrays they are views of (``.arrays``), which
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


class WindowDataset(torch.utils.data.Dataset):
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
        a = self.arrays
        labels = a.gather_targets(sites, starts, self.seq_len, self._tgt_cols)
        if self.warmup:
            labels[:, : self.warmup] = np.nan
        return {
            "x_dynamic": a.gather_dynamic(sites, starts, self.seq_len, self._dyn_cols),
            "x_static": self._static[sites],
            "labels": labels,
            "site_index": sites,
            "start": starts,
        }

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return {k: v[0] for k, v in self._batch([int(i)]).items()}

    def __getitems__(self, indices: Sequence[int]) -> WindowBatch:
        """A whole batch gathered with one vectorized fancy index (torch's DataLoader calls this)."""
        return WindowBatch(self._batch(indices))

    def dates_of(self, i: int) -> np.ndarray:
        s = int(self._lookup(np.asarray([int(i)]))[1][0])
        return self.arrays.dates[s : s + self.seq_len]


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


# --------------------------------------------------------------------------------------------
# whole-period evaluation
# --------------------------------------------------------------------------------------------


def sequential_window_plan(
    n_time: int, period_range: tuple[int, int], seq_len: int, warmup: int, context_before_period: bool = True
) -> dict[str, Any]:
    """Window starts and the positions each window writes, for sequential evaluation.

    Each window predicts its days ``[start + warmup, start + L)``; consecutive windows overlap by
    ``warmup`` days (the next window's context is the end of the previous one). With
    ``context_before_period`` the first window starts ``warmup`` days before the period (or at the
    start of the record), so every period day gets a prediction when the record allows it;
    otherwise the data before the period is never read and the first ``warmup`` days of the
    period have no prediction. The last window is shifted back to end exactly at the period's end
    (data after the period are never read) and writes only the days not written yet. A period
    shorter than ``seq_len`` uses a shorter window length ``L``.

    Returns ``{"length": L, "starts": int64 [J], "write_from": int64 [J] (offset into the window),
    "first_predicted": int (absolute index of the first predicted day)}``.
    """
    p0, p1 = period_range
    if not 0 <= warmup < seq_len:
        raise ValueError(f"need 0 <= warmup < seq_len (got warmup={warmup}, seq_len={seq_len})")
    lowest = 0 if context_before_period else p0
    first_start = max(p0 - warmup, lowest)
    length = min(seq_len, p1 - first_start)
    if length <= warmup:
        raise ValueError(f"period of {p1 - p0} days leaves no day to predict after a warm-up of {warmup} days")
    step = length - warmup
    starts, write_from = [], []
    written_to = first_start + warmup  # next absolute day to be written
    first_predicted = written_to
    s = first_start
    while written_to < p1:
        s = min(s, p1 - length)
        starts.append(s)
        write_from.append(written_to - s)
        written_to = s + length
        s += step
    return {
        "length": int(length),
        "starts": np.asarray(starts, dtype=np.int64),
        "write_from": np.asarray(write_from, dtype=np.int64),
        "first_predicted": int(max(first_predicted, p0)),
    }


def iter_site_sequences(
    data,
    sites: Sequence[int] | np.ndarray | None = None,
    period: Any = None,
    seq_len: int = 365,
    warmup: int = 0,
    batch_size: int = 64,
    dynamic_variables: Sequence[str] | None = None,
    static_variables: Sequence[str] | None = None,
    target_variables: Sequence[str] | None = None,
    context_before_period: bool = True,
) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]]:
    """Yield ``(batch, site_pos, window_pos)`` for sequential evaluation windows (see
    :func:`sequential_window_plan`): ``batch`` is a numpy batch dict (keys :data:`BATCH_KEYS`),
    ``site_pos`` the position of each window's site in ``sites`` and ``window_pos`` its window
    number in the plan. Windows are ordered site-major."""
    a = SiteArrays.wrap(data)
    sites = np.arange(a.n_sites, dtype=np.int64) if sites is None else np.asarray(sites, dtype=np.int64).ravel()
    plan = sequential_window_plan(a.n_time, a.period_index(period), seq_len, warmup, context_before_period)
    n_win = len(plan["starts"])
    site_pos = np.repeat(np.arange(len(sites)), n_win)
    window_pos = np.tile(np.arange(n_win), len(sites))
    for b0 in range(0, len(site_pos), batch_size):
        sp, wp = site_pos[b0 : b0 + batch_size], window_pos[b0 : b0 + batch_size]
        batch = a.batch(
            sites[sp], plan["starts"][wp], plan["length"], warmup, dynamic_variables, static_variables, target_variables
        )
        yield batch, sp, wp


def predict_sites(
    predict_fn: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    data,
    sites: Sequence[int] | np.ndarray | None = None,
    period: Any = None,
    seq_len: int = 365,
    warmup: int = 0,
    batch_size: int = 64,
    dynamic_variables: Sequence[str] | None = None,
    static_variables: Sequence[str] | None = None,
    target_variables: Sequence[str] | None = None,
    context_before_period: bool = True,
    drop_keys: Sequence[str] = ("labels", "site_index", "start"),
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """Predict every site over the whole ``period`` and stitch the windows into one series per site.

    ``predict_fn`` gets a batch dict of torch tensors (:data:`BATCH_KEYS` minus ``drop_keys``,
    moved to ``device`` when given) and returns predictions [B, L, K] in physical units, in the
    ``target_variables`` order. It runs under ``torch.no_grad()``. See
    :func:`sequential_window_plan` for how windows are laid out; by default the days before the
    period serve as warm-up, so every period day is predicted when the record has ``warmup``
    days before the period. Days without a prediction are NaN.

    Returns ``{"predictions": float32 [S, P, K], "observations": float32 [S, P, K],
    "dates": datetime64[D] [P], "sites": int64 [S], "site_ids": list[str],
    "target_variables": list[str], "first_predicted": int (index into dates)}`` where ``P`` is the
    number of days in ``period``.
    """
    a = SiteArrays.wrap(data)
    sites = np.arange(a.n_sites, dtype=np.int64) if sites is None else np.asarray(sites, dtype=np.int64).ravel()
    p0, p1 = a.period_index(period)
    plan = sequential_window_plan(a.n_time, (p0, p1), seq_len, warmup, context_before_period)
    tnames = list(a.target_variables if target_variables is None else target_variables)
    tcols = a.column_map("target", tnames)
    n_k = len(tnames)
    predictions = np.full((len(sites), p1 - p0, n_k), np.nan, dtype=np.float32)
    length = plan["length"]
    for batch, sp, wp in iter_site_sequences(
        a, sites, (p0, p1), seq_len, warmup, batch_size, dynamic_variables, static_variables, tnames, context_before_period
    ):
        tensors = collate_windows(batch, drop_keys=drop_keys)
        if device is not None:
            tensors = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in tensors.items()}
        with torch.no_grad():
            out = predict_fn(tensors)
        out = out.detach().float().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out, dtype=np.float32)
        if out.shape != (len(sp), length, n_k):
            raise ValueError(f"predict_fn returned shape {out.shape}, expected {(len(sp), length, n_k)}")
        for b in range(len(sp)):
            s = plan["starts"][wp[b]]
            w0 = plan["write_from"][wp[b]]
            predictions[sp[b], s + w0 - p0 : s + length - p0] = out[b, w0:]
    observations = a.gather_targets(sites, np.full(len(sites), p0), p1 - p0, tcols)
    return {
        "predictions": predictions,
        "observations": observations,
        "dates": a.dates[p0:p1].copy(),
        "sites": sites,
        "site_ids": [a.site_ids[i] for i in sites],
        "target_variables": tnames,
        "first_predicted": plan["first_predicted"] - p0,
    }
