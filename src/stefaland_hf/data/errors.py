"""``DataFormatError``, a validating reader for the plain-text tables of the raw data releases, and
the physical-range check every builder applies to the values it reads.

Every problem with a raw file (missing file, truncated file, wrong column count, non-numeric value,
dates that do not cover the requested period, a value outside its variable's physical range, ...)
is raised as :class:`DataFormatError`, which names the file, the 1-based line number where one
applies, and what was expected. Nothing is dropped silently.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..variables import get_variable

__all__ = [
    "OUT_OF_RANGE_POLICIES",
    "DataFormatError",
    "PhysicalRangeCheck",
    "TextTable",
    "read_text_table",
    "unwrap_data_format_error",
]


class DataFormatError(ValueError):
    """A raw data file is missing or not in the expected format.

    Attributes:
        path: the offending file (or the file/folder that was expected), as a string.
        line: 1-based line number in ``path`` where the problem is, or ``None``.
        reason: the message without the location prefix.
    """

    def __init__(self, path: str | os.PathLike | None, reason: str, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = None if line is None else int(line)
        self.reason = str(reason)
        where = self.path or "<unknown file>"
        if self.line is not None:
            where = f"{where}, line {self.line}"
        super().__init__(f"{where}: {self.reason}")

    def __reduce__(self):  # keep path/line through pickling (multiprocessing, datasets' num_proc)
        return (type(self), (self.path, self.reason, self.line))


@dataclass
class TextTable:
    """The body of a text table: numeric columns as float64 plus string columns, with line numbers."""

    path: Path
    numeric: np.ndarray  # [rows, len(numeric_columns)] float64
    strings: dict[int, np.ndarray]  # column position -> array of str
    first_line: int  # 1-based line number of row 0

    def line_of(self, row: int) -> int:
        return self.first_line + int(row)


_PANDAS_LINE = re.compile(r"line (\d+), saw (\d+)")


def _describe_counts(n_columns: tuple[int, int]) -> str:
    lo, hi = n_columns
    return f"{lo}" if lo == hi else f"{lo} to {hi}"


def read_text_table(
    path: str | os.PathLike,
    *,
    sep: str,
    skiprows: int,
    n_columns: int | tuple[int, int],
    numeric_columns: Sequence[int],
    string_columns: Sequence[int] = (),
    column_names: Sequence[str] | None = None,
) -> TextTable:
    """Read a delimited text table whose body starts after ``skiprows`` lines, checking every row.

    Parsing is vectorized (pandas' C parser); a slower string pass runs only when the fast pass
    finds something wrong, to name the exact line and column. Columns are addressed by position.

    Raises ``DataFormatError`` for: a missing file, an empty body, a row with a column count outside
    ``n_columns`` (e.g. a truncated last line), an interior blank line, or a value in a numeric
    column that is not a number. Literal ``nan`` tokens parse as NaN; sentinels such as ``-999`` are
    left to the caller.
    """
    path = Path(path)
    lo, hi = (n_columns, n_columns) if isinstance(n_columns, int) else tuple(n_columns)
    names = list(column_names) if column_names is not None else [f"column {i + 1}" for i in range(hi)]
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    numeric_columns = list(numeric_columns)
    string_columns = list(string_columns)
    width = hi + 1  # one spare column detects rows with too many fields
    first_line = skiprows + 1

    def _read(as_str: bool) -> pd.DataFrame:
        kwargs = dict(
            sep=sep,
            header=None,
            skiprows=skiprows,
            names=list(range(width)),
            skip_blank_lines=False,
            engine="c",
            index_col=False,
        )
        if as_str:
            kwargs.update(dtype=str, keep_default_na=False, na_values=[])
        else:
            kwargs.update(dtype={c: str for c in string_columns})
        try:
            return pd.read_csv(path, **kwargs)
        except pd.errors.EmptyDataError:
            return pd.DataFrame(columns=list(range(width)))
        except pd.errors.ParserError as exc:
            m = _PANDAS_LINE.search(str(exc))
            line = int(m.group(1)) if m else None
            saw = f"{m.group(2)}" if m else "more"
            raise DataFormatError(
                path, f"expected {_describe_counts((lo, hi))} columns, found {saw}", line=line
            ) from None
        except UnicodeDecodeError as exc:
            raise DataFormatError(path, f"not a text file ({exc})") from None

    df = _read(as_str=False)
    ok = len(df) > 0
    if ok:
        ok = all(df[c].dtype.kind in "fiu" for c in numeric_columns)
    if ok:
        present = df.notna().to_numpy()
        counts = present.sum(axis=1)
        # every row must have its lo mandatory fields and nothing beyond hi; NaN anywhere in the
        # mandatory block means a missing field or a literal nan token: the string pass decides.
        ok = bool(present[:, :lo].all()) and not bool(present[:, hi:].any()) and bool((counts >= lo).all())
    if not ok:
        df = _diagnose(path, _read(as_str=True), lo, hi, numeric_columns, names, first_line)
    numeric = df[numeric_columns].to_numpy(dtype=np.float64, copy=True) if len(df) else np.zeros((0, len(numeric_columns)))
    strings = {c: df[c].astype(str).to_numpy() for c in string_columns}
    return TextTable(path=path, numeric=numeric, strings=strings, first_line=first_line)


def _diagnose(
    path: Path,
    df: pd.DataFrame,
    lo: int,
    hi: int,
    numeric_columns: list[int],
    names: list[str],
    first_line: int,
) -> pd.DataFrame:
    """String pass: find the first bad line, or return the table with numeric columns converted."""
    if len(df) == 0:
        raise DataFormatError(path, f"no data rows after the {first_line - 1} header line(s) (file truncated?)")
    tokens = df.fillna("").astype(str)
    filled = (tokens != "").to_numpy()
    counts = filled.sum(axis=1)
    # trailing blank lines are harmless; interior ones are reported
    nonblank = np.flatnonzero(counts > 0)
    if len(nonblank) == 0:
        raise DataFormatError(path, f"no data rows after the {first_line - 1} header line(s) (file truncated?)")
    last = nonblank[-1]
    tokens, filled, counts = tokens.iloc[: last + 1], filled[: last + 1], counts[: last + 1]
    bad = np.flatnonzero((counts < lo) | (counts > hi))
    if len(bad):
        row = int(bad[0])
        if counts[row] == 0:
            reason = "blank line inside the data"
        else:
            reason = f"expected {_describe_counts((lo, hi))} columns, found {int(counts[row])}"
            if row == len(counts) - 1 and counts[row] < lo:
                reason += " (truncated last line?)"
        raise DataFormatError(path, reason, line=first_line + row)
    out = tokens.copy()
    for c in numeric_columns:
        col = tokens[c]
        values = pd.to_numeric(col.where(col != "", "nan"), errors="coerce")
        literal_nan = col.str.strip().str.lower().isin(["nan", ""])
        bad = np.flatnonzero(values.isna().to_numpy() & ~literal_nan.to_numpy())
        if len(bad):
            row = int(bad[0])
            raise DataFormatError(
                path,
                f"{names[c] if c < len(names) else f'column {c + 1}'}: expected a number, found {col.iloc[row]!r}",
                line=first_line + row,
            )
        out[c] = values.astype(np.float64)
    return out


def unwrap_data_format_error(fn, *args, **kwargs):
    """Call ``fn``; if ``datasets`` wrapped a :class:`DataFormatError` raised while generating
    examples (``DatasetGenerationError``), re-raise the ``DataFormatError`` itself."""
    from datasets.exceptions import DatasetGenerationError

    try:
        return fn(*args, **kwargs)
    except DatasetGenerationError as exc:
        cause = exc.__cause__
        while cause is not None and not isinstance(cause, DataFormatError):
            cause = cause.__cause__
        if cause is None:
            raise
        raise cause from None


OUT_OF_RANGE_POLICIES = ("error", "nan")
# No canonical variable reaches this in its unit; a value this large is a fill value (netCDF's 9.96921e36, 1e30) even
# where nature sets no upper bound, and the model's arithmetic overflows on it.
FILL_VALUE_MAGNITUDE = 1e20


class PhysicalRangeCheck:
    """Checks values in canonical units against their variable's physical range
    (``Variable.valid_min``/``valid_max`` in :mod:`stefaland_hf.variables`); ±inf is always out, and so is any
    magnitude of ``FILL_VALUE_MAGNITUDE`` or more (a fill value), also for variables without an upper bound.

    With ``policy="error"`` (the builders' default) the first value outside the range raises
    :class:`DataFormatError` naming the file, line, variable, value and range. With
    ``policy="nan"`` such values become NaN and are counted per variable in ``counts`` (with the
    first place each was found in ``first_seen``), for the builder to report.
    Documented missing-value sentinels are the readers' business and never reach this check.
    """

    def __init__(self, policy: str = "error", argument: str = "out_of_range"):
        if policy not in OUT_OF_RANGE_POLICIES:
            raise ValueError(f"{argument} must be one of {list(OUT_OF_RANGE_POLICIES)}, got {policy!r}")
        self.policy = policy
        self.argument = argument
        self.counts: dict[str, int] = {}
        self.first_seen: dict[str, str] = {}

    def __call__(
        self,
        values: np.ndarray,
        name: str,
        path: str | os.PathLike,
        locate: Callable[[tuple[int, ...]], tuple[int, str]],
    ) -> None:
        """Check ``values`` (any shape, float, modified in place under ``"nan"``) of variable ``name``
        read from ``path``; ``locate(index)`` gives the 1-based line of ``values[index]`` and a
        description of where on that line it is (e.g. ``"column prcp"``)."""
        var = get_variable(name)
        unit = "" if var.unit == "1" else f" {var.unit}"  # dimensionless
        with np.errstate(invalid="ignore"):
            bad = (np.abs(values) >= FILL_VALUE_MAGNITUDE) | (values < var.valid_min) | (values > var.valid_max)
        if not bad.any():
            return
        if self.policy == "nan":
            n = int(bad.sum())
            if name not in self.first_seen:
                line, where = locate(tuple(int(i) for i in np.argwhere(bad)[0]))
                self.first_seen[name] = f"{path}, line {line}, {where}: {values[bad].flat[0]:g}{unit}"
            self.counts[name] = self.counts.get(name, 0) + n
            values[bad] = np.nan
            return
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        line, where = locate(index)
        raise DataFormatError(
            path,
            f"{where}: {name} = {values[index]:g}{unit} is outside its physical range "
            f"{var.valid_min:g}..{var.valid_max:g}{unit} ({var.range_reason})"
            + (f", and a magnitude of {FILL_VALUE_MAGNITUDE:g} or more is a fill value" if abs(values[index]) >= FILL_VALUE_MAGNITUDE else "")
            + "; "
            f"{self.argument}='nan' reads such values as missing",
            line=line,
        )

    def summary(self) -> str:
        """One line: how many values of each variable were read as missing, and where the first was."""
        return "; ".join(f"{name}: {n} value(s), first at {self.first_seen[name]}" for name, n in sorted(self.counts.items()))
