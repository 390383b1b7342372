"""Streamflow for any basin from a user's own tables: daily forcings and basin attributes in, a table out.

A hydrologist's basin arrives as a table of daily forcings (a ``date`` column or a DatetimeIndex, columns named by the
canonical vocabulary of :mod:`stefaland_hf.variables`, in its units) and a few attributes (a dict, a Series or a
one-row DataFrame; several basins through a ``basin_id`` column in both tables). :func:`predict_streamflow` checks the
tables, builds an in-memory site dataset (the schema every builder writes) and runs the model's whole-period
prediction (:func:`stefaland_hf.evaluation.predict_sites`), so a table is predicted exactly as a CAMELS basin is.

What the model reads but the tables lack is NaN, which the model replaces with its learned mask embedding (the
paper's mechanism for missing inputs); the result's ``attrs["report"]`` names those variables, and the days each
variable is NaN. NaN (an empty cell in a CSV) means missing; nothing else does: an infinite value, a text that is not
a number, a date gap, a duplicated date, rows that are not daily, an unknown column, a value outside its variable's
physical range or a column whose values look like another unit (a year of precipitation below 1 mm/day, temperatures
in kelvin) is an error naming the table (its file, when given one), the column and what was expected.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..training.arguments import FinetuneArguments
from ..variables import DYNAMIC, STATIC, VARIABLES, get_variable

# windows and warm-up as finetuning trains them: the first WARMUP days of a basin's forcings are context only
SEQ_LEN, WARMUP = FinetuneArguments.seq_len, FinetuneArguments.warmup

BASIN_ID = "basin_id"
DATE = "date"
# A variable whose largest value over a year or more of days stays below its threshold is almost surely in another
# unit (the physical range cannot tell: the wrong unit's values lie inside it). Anywhere on land, a year brings a day
# above each threshold in the canonical unit: 1 mm of precipitation, a 24-hour shortwave mean of 50 W/m2, 50 Pa of
# vapour pressure (Vostok's summer reaches 100), 100 s of daylight, 0.5 mm of potential evapotranspiration.
_TOO_SMALL = {
    "precipitation": (1.0, "expected mm/day (m/day or kg m-2 s-1 is 1,000 or 86,400 times smaller)"),
    "shortwave_radiation": (50.0, "expected a 24-hour mean in W/m2 (MJ m-2 day-1 is 11.6 times smaller)"),
    "vapor_pressure": (50.0, "expected Pa (hPa or kPa is 100 or 1,000 times smaller)"),
    "daylength": (100.0, "expected seconds (hours are 3,600 times smaller)"),
    "potential_evapotranspiration": (0.5, "expected mm/day (m/day is 1,000 times smaller)"),
}
_YEAR = 365


class TableError(ValueError):
    """A user table that cannot be read as documented; the message names the table, the column and the fix."""


def read_table(path: str | Path, what: str) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame (``what`` names it in errors: ``--forcings``, ``--attributes``)."""
    path = Path(path)
    if not path.is_file():
        raise TableError(f"{what} {path}: no such file")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if path.suffix.lower() in (".csv", ".txt"):
        return pd.read_csv(path, comment="#")
    raise TableError(f"{what} {path}: expected a .csv or .parquet file, got {path.suffix!r}")


def _rename(frame: pd.DataFrame, rename: Mapping[str, str] | None) -> pd.DataFrame:
    """``frame`` with the columns of ``rename`` it has renamed (one mapping serves the forcing and attribute tables)."""
    return frame.rename(columns={old: new for old, new in (rename or {}).items() if old in frame.columns})


def check_rename(rename: Mapping[str, str] | None, *tables) -> None:
    """Every column ``rename`` names must be in one of the tables (a misspelt one would silently rename nothing)."""
    columns = {c for table in tables if isinstance(table, pd.DataFrame) for c in table.columns}
    columns |= {k for table in tables if isinstance(table, (Mapping, pd.Series)) for k in dict(table)}
    absent = [old for old in rename or {} if old not in columns]
    if absent:
        raise TableError(f"rename names columns {absent} that neither table has; their columns: {sorted(map(str, columns))}")


def _check_names(columns, kind: str, what: str) -> list[str]:
    """Canonical names of ``kind``; an unknown or other-kind column is an error naming the closest canonical names."""
    known = [name for name, variable in VARIABLES.items() if variable.kind == kind]
    for column in columns:
        if column in known:
            continue
        if column in VARIABLES:
            raise TableError(f"{what}: column {column!r} is a {VARIABLES[column].kind} variable, not a {kind} one; "
                             + ("give it in the attributes" if VARIABLES[column].kind == STATIC else "drop it"))
        close = difflib.get_close_matches(str(column), known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise TableError(f"{what}: unknown column {column!r}{hint} (canonical names: stefaland_hf.variables; rename with rename={{old: new}})")
    return list(columns)


def _numeric(frame: pd.DataFrame, what: str, rows) -> np.ndarray:
    """The columns as float64 (NaN where empty); a text that is not a number is an error naming column and row."""
    columns = {}
    for name in frame.columns:
        column = frame[name]
        if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
            numbers = pd.to_numeric(column, errors="coerce")
            bad = np.flatnonzero(numbers.isna().to_numpy() & column.notna().to_numpy())
            if bad.size:
                raise TableError(f"{what}: column {name!r} holds {column.iloc[bad[0]]!r} at row {rows[bad[0]]}: expected a number "
                                 "(an empty cell or NaN for a missing value)")
            column = numbers
        columns[name] = column.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.stack(list(columns.values()), axis=1) if columns else np.zeros((len(frame), 0))


def _unit_hint(variable, value: float) -> str:
    """Why a value outside the physical range may be a unit mistake, when its size says so."""
    if variable.unit == "degC" and value > 150:
        return " (values above 150 degC look like kelvin: subtract 273.15)"
    if variable.unit == "degC" and value > variable.valid_max:
        return " (values above 60 degC look like degrees Fahrenheit: (F - 32) / 1.8)"
    if variable.unit == "1" and variable.valid_max == 1 and 1 < value <= 100:
        return " (a percentage? divide by 100)"
    return ""


def _check_values(values: np.ndarray, names: list[str], what: str, rows: pd.Index) -> None:
    """Finite or NaN, within each variable's physical range, and in the canonical unit by the size of a year's values."""
    infinite = np.isinf(values)
    if infinite.any():
        r, c = map(int, np.argwhere(infinite)[0])
        raise TableError(f"{what}: column {names[c]!r} holds {values[r, c]} at row {rows[r]}; only NaN means missing")
    for j, name in enumerate(names):
        variable = get_variable(name)
        column = values[:, j]
        bad = np.flatnonzero((column < variable.valid_min) | (column > variable.valid_max))
        if bad.size:
            unit, expected = (("", "a dimensionless number") if variable.unit == "1" else (f" {variable.unit}", f"in {variable.unit}"))
            raise TableError(
                f"{what}: column {name!r} = {column[bad[0]]:g} at row {rows[bad[0]]} is outside {variable.valid_min:g}..{variable.valid_max:g}"
                f"{unit} ({variable.range_reason}); expected {name} {expected}" + _unit_hint(variable, column[bad[0]])
            )
    for name in set(names) & set(_TOO_SMALL):
        column, (threshold, expected) = values[:, names.index(name)], _TOO_SMALL[name]
        days = int(np.isfinite(column).sum())
        if days >= _YEAR and np.nanmax(column) < threshold:
            raise TableError(f"{what}: column {name!r} never exceeds {np.nanmax(column):.3g} over {days} days: {expected}")


def _basins(frame: pd.DataFrame, what: str) -> dict[str, pd.DataFrame]:
    """``{basin_id: rows}``: one basin ('basin') without a basin_id column."""
    if BASIN_ID not in frame.columns:
        return {"basin": frame}
    ids = frame[BASIN_ID].astype(str)
    if frame[BASIN_ID].isna().any():
        raise TableError(f"{what}: column {BASIN_ID!r} has empty values")
    return {basin: rows.drop(columns=BASIN_ID) for basin, rows in frame.groupby(ids, sort=False)}


def _daily(rows: pd.DataFrame, what: str) -> pd.DataFrame:
    """Rows indexed by consecutive daily dates (a ``date`` column or a DatetimeIndex)."""
    if DATE in rows.columns:
        dates = pd.to_datetime(rows[DATE], errors="coerce")
        if dates.isna().any():
            raise TableError(f"{what}: column {DATE!r} has values that are not dates, e.g. {rows[DATE][dates.isna()].iloc[0]!r}")
        rows = rows.drop(columns=DATE).set_axis(pd.DatetimeIndex(dates), axis=0)
    elif not isinstance(rows.index, pd.DatetimeIndex):
        dated = [c for c in rows.columns if str(c).strip().lower() in ("date", "time", "datetime", "day", "timestamp")]
        hint = f"; rename {dated[0]!r} with rename={{{str(dated[0])!r}: 'date'}} (--rename {dated[0]}=date)" if dated else ""
        raise TableError(f"{what}: no {DATE!r} column and no DatetimeIndex; expected one date per row (columns: {', '.join(map(str, rows.columns))}){hint}")
    _check_daily_steps(rows.index, what)
    dates = rows.index.normalize()
    if dates.has_duplicates:
        raise TableError(f"{what}: date {dates[dates.duplicated()][0].date()} appears twice")
    if not dates.is_monotonic_increasing:
        raise TableError(f"{what}: dates must increase (sort the table by date)")
    gaps = np.flatnonzero(np.diff(dates.values).astype("timedelta64[D]").astype(np.int64) != 1)
    if gaps.size:
        raise TableError(f"{what}: dates must be consecutive days: {dates[gaps[0] + 1].date()} follows {dates[gaps[0]].date()} "
                         "(give every day; NaN for a missing value)")
    return rows.set_axis(dates, axis=0)


def _check_daily_steps(index: pd.DatetimeIndex, what: str) -> None:
    """Rows one day apart in the main: hourly or monthly rows are another table, not a daily one with gaps or repeats."""
    if len(index) < 3:
        return
    step = pd.Timedelta(np.median(np.abs(np.diff(index.values.astype("datetime64[s]").astype(np.int64)))), unit="s")
    if step < pd.Timedelta(days=1):
        raise TableError(f"{what}: rows are {step} apart (e.g. {index[0]}, {index[1]}): expected one row per day; aggregate "
                         "sub-daily data to daily values first (sums for precipitation, means for the rest)")
    if step > pd.Timedelta(days=1):
        raise TableError(f"{what}: rows are {step.days} days apart (e.g. {index[0].date()}, {index[1].date()}): expected daily data, one row per day")


def forcing_tables(forcings: pd.DataFrame, rename: Mapping[str, str] | None = None, what: str = "forcings") -> dict[str, pd.DataFrame]:
    """``{basin_id: daily forcings}`` from the user's forcing table, checked (see the module docstring)."""
    frame = _rename(forcings, rename)
    out = {}
    for basin, rows in _basins(frame, what).items():
        where = what if basin == "basin" else f"{what} (basin {basin})"
        rows = _daily(rows, where)
        names = _check_names(rows.columns, DYNAMIC, where)
        values = _numeric(rows, where, rows.index.date)
        _check_values(values, names, where, rows.index.date)
        out[basin] = pd.DataFrame(values, index=rows.index, columns=rows.columns)
    return out


def attribute_table(attributes, basins: list[str], rename: Mapping[str, str] | None = None, what: str = "attributes") -> pd.DataFrame:
    """One row of canonical static attributes per basin of ``basins`` (index), checked."""
    if attributes is None:
        return pd.DataFrame(index=pd.Index(basins, name=BASIN_ID))
    if isinstance(attributes, Mapping):
        attributes = pd.DataFrame([dict(attributes)])
    elif isinstance(attributes, pd.Series):
        attributes = attributes.to_frame().T
    frame = _rename(attributes, rename)
    if BASIN_ID in frame.columns:
        frame = frame.assign(**{BASIN_ID: frame[BASIN_ID].astype(str)}).set_index(BASIN_ID)
        if frame.index.has_duplicates:
            raise TableError(f"{what}: basin {frame.index[frame.index.duplicated()][0]!r} has two rows")
        missing = [b for b in basins if b not in frame.index]
        if missing:
            raise TableError(f"{what}: no row for basins {missing[:5]} of the forcings")
        frame = frame.loc[basins]
    elif len(frame) != 1:
        raise TableError(f"{what}: {len(frame)} rows and no {BASIN_ID!r} column; expected one row, or a {BASIN_ID} column naming each basin")
    elif len(basins) > 1:
        raise TableError(f"{what}: one row without {BASIN_ID!r}, but the forcings hold {len(basins)} basins; add a {BASIN_ID} column")
    else:
        frame = frame.set_axis(pd.Index(basins, name=BASIN_ID), axis=0)
    names = _check_names(frame.columns, STATIC, what)
    values = _numeric(frame, what, frame.index)
    _check_values(values, names, what, frame.index)
    return pd.DataFrame(values, index=frame.index, columns=frame.columns)


def site_dataset(forcings: dict[str, pd.DataFrame], attributes: pd.DataFrame, dynamic_variables, static_variables):
    """An in-memory site dataset (the builders' schema) of basins that share one date index, in the model's variables."""
    import datasets

    from ..data.schema import site_features

    basins = list(forcings)
    dates = forcings[basins[0]].index
    dynamic = np.stack([frame.reindex(columns=dynamic_variables).to_numpy(np.float32, na_value=np.nan) for frame in forcings.values()])
    static = attributes.reindex(index=basins, columns=static_variables).to_numpy(np.float32, na_value=np.nan)
    latitude = static[:, list(static_variables).index("latitude")] if "latitude" in static_variables else np.full(len(basins), np.nan, np.float32)
    longitude = static[:, list(static_variables).index("longitude")] if "longitude" in static_variables else np.full(len(basins), np.nan, np.float32)
    columns = {
        "site_id": basins, "region": [""] * len(basins), "latitude": latitude, "longitude": longitude,
        "dates": [dates.date.tolist()] * len(basins), "dynamic": list(dynamic), "static": list(static),
        "targets": [np.full((len(dates), 1), np.nan, np.float32)] * len(basins), "gauged": [False] * len(basins),
        "dynamic_variables": [list(dynamic_variables)] * len(basins), "static_variables": [list(static_variables)] * len(basins),
        "target_variables": [["streamflow"]] * len(basins),
    }
    return datasets.Dataset.from_dict(columns, features=site_features(len(dynamic_variables), len(static_variables), 1))


#: the attribute of a model loaded from a finetuning run's folder that holds its ``finetuning.json`` record
FINETUNING_RECORD = "finetuning_record"


def load_model(model, base=None) -> tuple[Any, dict | None]:
    """``(model ready to predict, its finetuning.json record or None)``: a model object as given (with the record
    :func:`load_model` attached to it, if any); a folder (a resConn adapter on ``base``, by default the base it names,
    or a complete model), a Hub id or a short name (``stefaland-conus-streamflow``) loaded, the record attached as
    ``model.finetuning_record``."""
    if not isinstance(model, (str, Path)):
        return model, getattr(model, FINETUNING_RECORD, None)
    from .prediction import load_trained_model

    model, record = load_trained_model(str(model), base)  # an encoder without a trained head is refused
    setattr(model, FINETUNING_RECORD, record)
    return model, record


def model_variables(model) -> tuple[list[str], list[str], list[str]]:
    """(dynamic, static, target) variables of a task model or a resConn PeftModel (its active adapter's targets)."""
    config = model.config
    if hasattr(model, "peft_config"):
        targets = list(model.peft_config[model.active_adapter].target_variables)
    else:
        targets = list(config.target_variables or [])
    return list(config.dynamic_variables), list(config.static_variables), targets


def predict_streamflow(
    model,
    forcings: pd.DataFrame | str | Path,
    attributes=None,
    warmup: int | None = None,
    seq_len: int | None = None,
    batch_size: int = 64,
    rename: Mapping[str, str] | None = None,
    quantiles: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Daily streamflow (mm/day) for each basin of ``forcings`` from ``model`` (a loaded model, a folder or a name).

    ``forcings`` is a DataFrame or a CSV/Parquet file; ``attributes`` a dict, Series, DataFrame or such a file (errors
    name the file). Returns a DataFrame with ``date``, ``basin_id`` (when the forcings have that column) and
    ``streamflow`` (mm/day), from the first day after ``warmup`` days of forcings (the model's context) to the last.
    ``warmup`` and ``seq_len`` default to the windows the model was finetuned with (its ``finetuning.json``), else to
    finetuning's defaults. ``attrs["report"]`` says which of the model's variables the tables lacked (masked), the days
    each variable is NaN (masked on those days), the units assumed and the warm-up days dropped.

    A distributional model (``output_distribution`` cmal or quantile) adds a column per level of ``quantiles`` (default
    5, 25, 50, 75 and 95 %), ``streamflow_q0.05`` etc. (:func:`quantile_column`); ``streamflow`` is then its mean (a
    quantile head: its median). A point model has no quantiles to give.
    """
    model, record = load_model(model)
    dynamic, static, targets = model_variables(model)
    if targets != ["streamflow"]:
        raise TableError(f"model predicts {targets}, not streamflow")
    from .prediction import quantile_levels

    levels = quantile_levels(model, quantiles)
    warmup = warmup if warmup is not None else (record or {}).get("warmup", WARMUP)
    seq_len = seq_len if seq_len is not None else (record or {}).get("seq_len", SEQ_LEN)
    where = {"forcings": "forcings", "attributes": "attributes"}
    if isinstance(forcings, (str, os.PathLike)):
        where["forcings"] = f"forcings {forcings}"
        forcings = read_table(forcings, "forcings")
    if isinstance(attributes, (str, os.PathLike)):
        where["attributes"] = f"attributes {attributes}"
        attributes = read_table(attributes, "attributes")
    check_rename(rename, forcings, attributes)
    tables = forcing_tables(forcings, rename, where["forcings"])
    attributes = attribute_table(attributes, list(tables), rename, where["attributes"])
    if not 0 <= warmup < seq_len <= model.config.max_position_embeddings:
        raise TableError(f"warmup={warmup}, seq_len={seq_len}: expected 0 <= warmup < seq_len <= the model's {model.config.max_position_embeddings} positions")
    frames, report = [], {"masked": {}, "missing_days": {}, "ignored": {}, "product_hints": {}, "warmup_days": warmup, "units": {}}
    groups: dict[tuple, list[str]] = {}
    for basin, frame in tables.items():
        if len(frame) <= warmup:
            raise TableError(f"{where['forcings']}{'' if basin == 'basin' else f' (basin {basin})'}: {len(frame)} days, fewer than "
                             f"warmup={warmup} + 1: the model reads {warmup} days of forcings as context before its first prediction")
        groups.setdefault((frame.index[0], len(frame)), []).append(basin)
    from ..evaluation import distribution_forward, predict_sites

    for (first, length), basins in groups.items():
        dataset = site_dataset({b: tables[b] for b in basins}, attributes, dynamic, static)
        result = predict_sites(model, dataset, period=None, seq_len=min(seq_len, length), warmup=warmup, batch_size=batch_size,
                               dynamic_variables=dynamic, static_variables=static, target_variables=targets,
                               context_before_period=False, **({"forward": distribution_forward(levels)} if levels else {}))
        dates = pd.DatetimeIndex(result["dates"])
        keep = slice(warmup, None)
        values = result["predictions"][:, keep, 0].reshape(len(basins), -1, 1 + len(levels))  # [basins, days, 1 + Q]
        for i, basin in enumerate(basins):
            frame = pd.DataFrame({DATE: dates[keep], "streamflow": values[i, :, 0],
                                  **{quantile_column("streamflow", q): values[i, :, 1 + k] for k, q in enumerate(levels)}})
            if BASIN_ID in forcings.columns:
                frame.insert(1, BASIN_ID, basin)
            frames.append(frame)
    for basin, frame in tables.items():
        have = [v for v in dynamic if v in frame.columns and frame[v].notna().any()]
        have_static = [v for v in static if v in attributes.columns and pd.notna(attributes.loc[basin, v])]
        report["masked"][basin] = [v for v in dynamic if v not in have] + [v for v in static if v not in have_static]
        gaps = frame.reindex(columns=have).isna().sum()
        report["missing_days"][basin] = {v: int(n) for v, n in gaps.items() if n}
        report["ignored"][basin] = [v for v in frame.columns if v not in dynamic]
        report["product_hints"][basin] = product_hints(frame)
    report["units"] = {v: get_variable(v).unit for v in dict.fromkeys([*dynamic, *static, "streamflow"])}
    out = pd.concat(frames, ignore_index=True)
    out.attrs["report"] = report
    return out


def product_hints(frame: pd.DataFrame) -> list[str]:
    """Signs in one basin's forcing table that it comes from another product than daily Daymet-like series: today one,
    daily maxima equal to the minima, as in the CAMELS-US Maurer and NLDAS files (docs/data.md)."""
    hints = []
    if {"temperature_max", "temperature_min"} <= set(frame.columns):
        both = frame[["temperature_max", "temperature_min"]].dropna()
        if len(both) and (equal := float((both["temperature_max"] == both["temperature_min"]).mean())) >= 0.95:
            hints.append(f"temperature_max equals temperature_min on {equal:.0%} of days, as in the CAMELS-US Maurer and NLDAS "
                         "files: not daily maxima and minima")
    return hints


def quantile_column(name: str, level: float) -> str:
    """The column of a quantile: ``streamflow`` at 0.05 -> ``streamflow_q0.05``."""
    return f"{name}_q{level:g}"


def report_lines(report: dict[str, Any]) -> list[str]:
    """The report of :func:`predict_streamflow` as readable lines (console, report.md)."""
    lines = [f"warm-up: the first {report['warmup_days']} days of each basin's forcings serve as context and get no prediction"]
    for basin, masked in report["masked"].items():
        label = "" if basin == "basin" else f"basin {basin}: "
        lines.append(f"{label}masked (missing in the tables, replaced by the model's mask tokens): {', '.join(masked) or 'none'}")
        if report.get("missing_days", {}).get(basin):
            days = ", ".join(f"{v} on {n} days" for v, n in report["missing_days"][basin].items())
            lines.append(f"{label}missing values (NaN, masked on those days): {days}")
        if report["ignored"][basin]:
            lines.append(f"{label}not read by the model: {', '.join(report['ignored'][basin])}")
        for hint in report.get("product_hints", {}).get(basin, []):
            lines.append(f"{label}another forcing product than the model's ({report.get('trained_on_forcing_product') or 'unknown'})? {hint}")
    if report.get("trained_on_forcing_product"):
        lines.append(f"the model was finetuned on {report.get('trained_on_dataset')} with {report['trained_on_forcing_product']} forcings: "
                     "inputs from another product shift its skill")
    return lines


def in_sample(table: pd.DataFrame, record: dict | None) -> pd.Series | None:
    """True on each basin-day of ``table`` that lies in the training or validation data the model was finetuned on
    (basin id and period, from its ``finetuning.json``): no independent test there. None where the record cannot say."""
    trained = ((record or {}).get("data") or {}).get("trained_on")
    if not trained or any(p is not None and not all(isinstance(d, str) for d in p) for p in trained["periods"]):
        return None
    dates = table[DATE].to_numpy().astype("datetime64[D]")
    inside = np.zeros(len(table), dtype=bool)
    for period in trained["periods"]:
        inside |= True if period is None else (dates >= np.datetime64(period[0], "D")) & (dates <= np.datetime64(period[1], "D"))
    basins = table[BASIN_ID].astype(str) if BASIN_ID in table.columns else pd.Series("basin", index=table.index)
    return pd.Series(inside & basins.isin(set(trained["site_ids"])).to_numpy(), index=table.index)


def run_cli(args) -> int:
    """``stefaland predict --forcings ...`` (its arguments: ``stefaland_cli.predict``): OUT/predictions.csv, OUT/report.json
    and, unless --no-plots, OUT/hydrographs/<basin>.png."""
    import json

    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise FileExistsError(f"--out {out}: not empty; pass --overwrite to replace what it holds")
    rename = dict(value.split("=") for value in args.rename)
    model, record = load_model(args.adapter, args.base)
    # the windows as finetuned (the model's record), unless asked otherwise; errors name the files
    table = predict_streamflow(model, args.forcings, args.attributes, warmup=args.warmup, seq_len=args.seq_len,
                               batch_size=args.batch_size, rename=rename)
    report = table.attrs["report"]
    basins = list(report["masked"])
    area = attribute_table(read_table(args.attributes, "attributes"), basins, rename).get("area") if args.attributes else None
    if area is not None:  # km2 -> m3/s: mm/day x km2 x 1e6 m2 / 1e3 mm / 86,400 s
        basins = table[BASIN_ID].astype(str) if BASIN_ID in table.columns else pd.Series("basin", index=table.index)
        for column in [c for c in table.columns if c == "streamflow" or c.startswith("streamflow_q")]:
            table[f"{column}_m3_per_s"] = table[column] * basins.map(area).to_numpy() / 86.4
    flags = in_sample(table, record)
    if flags is not None:
        table["in_sample"] = flags
    trained = (record or {}).get("data") or {}
    report.update(
        model=str(args.adapter), forcings=str(args.forcings), attributes=None if args.attributes is None else str(args.attributes),
        trained_on_dataset=trained.get("builder"), trained_on_forcing_product=trained.get("config"),
        in_sample_days=None if flags is None else int(flags.sum()),
        note="streamflow in mm/day (streamflow_m3_per_s where the attributes give the area in km2; a distributional model's "
             "mean, its quantiles in streamflow_q<level>); forcings read in the "
             "units of stefaland_hf.variables; compare the forcing product the model was trained on with yours",
    )
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "predictions.csv", index=False, float_format="%.4f")
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    if not args.no_plots:
        _plot_tables(table, out / "hydrographs")
    for line in report_lines(report):
        print(line)
    print(f"wrote {out / 'predictions.csv'} ({len(table)} basin-days) and {out / 'report.json'}")
    return 0


def _plot_tables(table: pd.DataFrame, folder: Path) -> None:
    from .plots import _pyplot

    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    groups = table.groupby(BASIN_ID) if BASIN_ID in table.columns else [("basin", table)]
    for basin, rows in groups:
        fig, ax = plt.subplots(figsize=(11, 3))
        for (low, high), alpha in (((0.05, 0.95), 0.2), ((0.25, 0.75), 0.4)):  # a distributional model's bands
            columns = (quantile_column("streamflow", low), quantile_column("streamflow", high))
            if all(c in rows.columns for c in columns):
                ax.fill_between(rows[DATE], rows[columns[0]], rows[columns[1]], color="tab:blue", alpha=alpha, lw=0,
                                label=f"{round(100 * (high - low))} % interval")
        ax.plot(rows[DATE], rows["streamflow"], lw=0.9, color="tab:blue", label="predicted")
        ax.legend(fontsize=8, loc="upper right")
        ax.set_title(f"basin {basin}: streamflow, no observations given", fontsize=9, loc="left")
        ax.set_ylabel("streamflow (mm/day)", fontsize=9)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(folder / f"{basin}.png", dpi=100)
        plt.close(fig)
