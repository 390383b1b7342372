"""Whole-period evaluation: run a model over every day of a period per site and score the stitched series.

Training sees windows (:mod:`stefaland_hf.data.samplers`); evaluation needs one prediction per day.
:func:`sequential_window_plan` lays sequential windows over the period, :func:`iter_site_sequences`
cuts their batches, :func:`predict_sites` runs the model and stitches the windows back into one series
per site, and :func:`evaluate_sites` scores those series per site (:data:`EVAL_METRICS`).

One device rule: a model runs where its weights are (:func:`model_device`); the inputs are moved there
and the results come back to the CPU as numpy arrays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from .data.samplers import collate_windows, window_batch, window_labels
from .data.site_arrays import SiteArrays
from .metrics import site_metrics, summarize

__all__ = [
    "EVAL_METRICS",
    "model_device",
    "sequential_window_plan",
    "iter_site_sequences",
    "predict_sites",
    "evaluate_sites",
    "write_site_metrics",
]

EVAL_METRICS = ("nse", "kge", "rmse", "ubrmse", "pearson_r", "fhv", "flv")


def model_device(model: torch.nn.Module) -> torch.device:
    """Where ``model``'s inputs must go: the device of its weights (the CPU for a model without any)."""
    weight = next(model.parameters(), None)
    return torch.device("cpu") if weight is None else weight.device


def _prediction(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(**batch).prediction


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
    :func:`sequential_window_plan`): ``batch`` is a numpy batch dict (keys
    :data:`~stefaland_hf.data.samplers.BATCH_KEYS`), ``site_pos`` the position of each window's site in
    ``sites`` and ``window_pos`` its window number in the plan. Windows are ordered site-major."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size (--batch-size): expected a positive number of windows per batch, got {batch_size!r}")
    a = SiteArrays.wrap(data)
    sites = np.arange(a.n_sites, dtype=np.int64) if sites is None else np.asarray(sites, dtype=np.int64).ravel()
    plan = sequential_window_plan(a.n_time, a.period_index(period), seq_len, warmup, context_before_period)
    dynamic_cols, target_cols = a.column_map("dynamic", dynamic_variables), a.column_map("target", target_variables)
    static = a.static_matrix(static_variables)
    length, n_win = plan["length"], len(plan["starts"])
    site_pos = np.repeat(np.arange(len(sites)), n_win)
    window_pos = np.tile(np.arange(n_win), len(sites))
    for b0 in range(0, len(site_pos), batch_size):
        sp, wp = site_pos[b0 : b0 + batch_size], window_pos[b0 : b0 + batch_size]
        batch_sites, starts = sites[sp], plan["starts"][wp]
        labels = window_labels(a, batch_sites, starts, length, target_cols, warmup)
        yield window_batch(a, batch_sites, starts, length, dynamic_cols, static, labels), sp, wp


def predict_sites(
    model: torch.nn.Module,
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
    forward: Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor] = _prediction,
) -> dict[str, Any]:
    """Predict every site over the whole ``period`` with ``model`` and stitch the windows into one series per site.

    ``forward(model, batch)`` (default: ``model(**batch).prediction``) gets a batch dict of torch tensors
    (:data:`~stefaland_hf.data.samplers.BATCH_KEYS` minus ``drop_keys``) on the model's device
    (:func:`model_device`) and returns predictions [B, L, K] in physical units, in the ``target_variables``
    order; they are copied back to the CPU. It runs under ``torch.no_grad()``. See
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
    device = model_device(model)
    for batch, sp, wp in iter_site_sequences(
        a, sites, (p0, p1), seq_len, warmup, batch_size, dynamic_variables, static_variables, tnames, context_before_period
    ):
        tensors = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in collate_windows(batch, drop_keys=drop_keys).items()}
        with torch.no_grad():
            out = forward(model, tensors)
        out = out.detach().float().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out, dtype=np.float32)
        if out.shape != (len(sp), length, n_k):
            raise ValueError(f"forward returned shape {out.shape}, expected {(len(sp), length, n_k)}")
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


def evaluate_sites(
    model: torch.nn.Module,
    dataset,
    sites,
    period,
    seq_len: int,
    warmup: int,
    batch_size: int,
    dynamic_variables: Sequence[str],
    static_variables: Sequence[str],
    target_variables: Sequence[str],
) -> dict[str, Any]:
    """Whole-period predictions of ``model`` for held-out sites (:func:`predict_sites`), per-site metrics of
    the first target (:data:`EVAL_METRICS`) and their medians."""
    model.eval()
    result = predict_sites(
        model,
        dataset,
        sites,
        period,
        seq_len=seq_len,
        warmup=warmup,
        batch_size=batch_size,
        dynamic_variables=dynamic_variables,
        static_variables=static_variables,
        target_variables=target_variables,
    )
    observations, predictions = result["observations"][..., 0], result["predictions"][..., 0]
    per_site = site_metrics(observations, predictions, metrics=EVAL_METRICS)
    # the medians cover the sites whose NSE exists; say how many that is beside how many were asked for
    observed = int(np.isfinite(np.asarray(per_site["nse"], dtype=float)).sum())
    return {**result, "per_site": per_site, "summary": summarize(per_site), "n_sites_observed": observed}


def write_site_metrics(evaluation: dict[str, Any], path: Path, label: str | None = None) -> None:
    """The per-site metrics of an evaluation as CSV (one row per site, a ``model`` column first when ``label`` is given)."""
    import pandas as pd

    frame = pd.DataFrame({"site_id": evaluation["site_ids"], **{k: np.asarray(v) for k, v in evaluation["per_site"].items()}})
    if label is not None:
        frame.insert(0, "model", label)
    frame.to_csv(path, index=False)
