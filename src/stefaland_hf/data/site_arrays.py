"""Read-only, zero-copy access to a memory-mapped site dataset.

:class:`SiteArrays` wraps a ``datasets.Dataset`` with the one-example-per-site schema
(:mod:`stefaland_hf.data.schema`) and exposes the ``dynamic`` and ``targets`` columns as
**zero-copy** numpy views of the Arrow buffers (memory-mapped when the dataset comes from disk).
An ``Array2D(shape=(None, F))`` column is stored as ``list<list<float>>``: the float values of all
sites lie in one contiguous buffer per Arrow chunk, so site ``i`` is ``values[row0[i]:row0[i]+T]``
of a ``[rows, F]`` view and a window is a slice of it. Nothing proportional to the dataset's
time-series size is ever copied; static attributes and site metadata are small and loaded.

What is drawn from it for training lives in :mod:`stefaland_hf.data.samplers`; whole-period
prediction in :mod:`stefaland_hf.evaluation`.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..variables import align_variables
from .splits import period_to_index

__all__ = ["SiteArrays"]


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
