"""Whole-period evaluation: run a model over every day of a period per site and score the stitched series.

Training sees windows (:mod:`stefaland_hf.data.samplers`); evaluation needs one prediction per day.
:func:`sequential_window_plan` lays sequential windows over the period, :func:`iter_site_sequences`
cuts their batches, :func:`predict_sites` runs the model and stitches the windows back into one series
per site, and :func:`evaluate_sites` scores those series per site (:data:`EVAL_METRICS`; a distributional head or an
MC dropout ensemble also by :data:`PROBABILISTIC_METRICS`, docs/probabilistic.md).

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
from .metrics import CENTRAL_INTERVALS, probabilistic_site_metrics, reliability, site_metrics, summarize

__all__ = [
    "EVAL_METRICS",
    "model_device",
    "sequential_window_plan",
    "iter_site_sequences",
    "predict_sites",
    "evaluate_sites",
    "write_site_metrics",
    "write_test_quantiles",
    "distribution_forward",
    "mc_dropout_forward",
    "MC_DROPOUT_PASSES",
    "SCORING_LEVELS",
]

EVAL_METRICS = ("nse", "kge", "rmse", "ubrmse", "pearson_r", "fhv", "flv")
#: per site: CRPS (point predictions: the absolute error), the observed share inside the central 50 and 90 % intervals,
#: and the intervals' mean widths (a point prediction has only the CRPS)
PROBABILISTIC_METRICS = ("crps", *(f"{kind}_{p}" for p in CENTRAL_INTERVALS for kind in ("coverage", "width")))
#: forward passes of an MC dropout ensemble in the benchmark (``+mc_dropout`` models)
MC_DROPOUT_PASSES = 50
#: the levels (2m - 1) / 100, m = 1..50, at which a distribution is scored: its CRPS is that of the distribution
#: quantized on them (``crps_ensemble`` of the 50 quantiles; a Laplace's is within 0.05 % of the closed form); they hold
#: the bounds of the central 50 and 90 % intervals (0.25, 0.75, 0.05, 0.95) and the reliability diagram's levels
SCORING_LEVELS = tuple((2 * m - 1) / 100 for m in range(1, 51))


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
    order, or [B, L, K, M] (M values per day, e.g. quantiles or ensemble members: ``predictions`` is then
    [S, P, K, M]); they are copied back to the CPU. It runs under ``torch.no_grad()``. See
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
    predictions = None  # [S, P, K, *M], allocated when the first batch shows M
    length = plan["length"]
    device = model_device(model)
    for batch, sp, wp in iter_site_sequences(
        a, sites, (p0, p1), seq_len, warmup, batch_size, dynamic_variables, static_variables, tnames, context_before_period
    ):
        tensors = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in collate_windows(batch, drop_keys=drop_keys).items()}
        with torch.no_grad():
            out = forward(model, tensors)
        out = out.detach().float().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out, dtype=np.float32)
        if out.shape[:3] != (len(sp), length, n_k) or out.ndim > 4:
            raise ValueError(f"forward returned shape {out.shape}, expected {(len(sp), length, n_k)} (and M values per day)")
        if predictions is None:
            predictions = np.full((len(sites), p1 - p0, *out.shape[2:]), np.nan, dtype=np.float32)
        elif out.shape[2:] != predictions.shape[2:]:
            raise ValueError(f"forward returned shape {out.shape}, but earlier batches {predictions.shape[2:]} values per day")
        for b in range(len(sp)):
            s = plan["starts"][wp[b]]
            w0 = plan["write_from"][wp[b]]
            predictions[sp[b], s + w0 - p0 : s + length - p0] = out[b, w0:]
    if predictions is None:  # no site
        predictions = np.full((len(sites), p1 - p0, n_k), np.nan, dtype=np.float32)
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


def distribution_forward(levels: Sequence[float]) -> Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor]:
    """A ``forward`` for :func:`predict_sites` returning a distributional head's prediction (its mean, or a quantile
    head's median) and its quantiles at ``levels``: [B, L, K, 1 + len(levels)]."""
    levels = [float(q) for q in levels]

    def forward(model, batch):
        out = model(**batch, quantiles=levels)
        return torch.cat([out.prediction.unsqueeze(-1), out.quantiles], dim=-1)

    return forward


def _active_dropout(model: torch.nn.Module) -> bool:
    """Whether any dropout (``nn.Dropout`` or a module with a float ``p``, as StefaLand's) draws in training mode."""
    return any(m.training and isinstance(getattr(m, "p", None), float) and m.p > 0 for m in model.modules())


def mc_dropout_forward(passes: int) -> Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor]:
    """A ``forward`` for :func:`predict_sites` returning ``passes`` predictions of the model in training mode, its
    dropout drawing new masks each pass (MC dropout, Gal & Ghahramani 2016): [B, L, K, passes].

    ``model.train()`` activates dropout exactly where finetuning trained with it (a frozen encoder stays in eval mode,
    its embedding computed once per batch); the model is back in eval mode afterwards. A model without active dropout
    (a linear probe, dropout 0) would return ``passes`` equal predictions and is refused. Seed torch's generator first
    for repeatable passes.
    """
    if isinstance(passes, bool) or not isinstance(passes, int) or passes < 2:
        raise ValueError(f"mc_dropout passes: expected an integer >= 2, got {passes!r}")

    def forward(model, batch):
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        config = getattr(base, "config", None)
        if getattr(config, "backbone_frozen", False) and hasattr(base, "embed"):
            batch = {**batch, "backbone_embedding": base.embed(batch["x_dynamic"], batch["x_static"])}
        model.train()
        try:
            if not _active_dropout(model):
                raise ValueError(
                    "MC dropout: this model has no active dropout in the parts finetuning trained (a linear probe, or "
                    "head_dropout 0), so every pass would be the same; score it as a point model"
                )
            return torch.stack([model(**batch).prediction for _ in range(passes)], dim=-1)
        finally:
            model.eval()

    return forward


def scoring_levels(quantile_levels: Sequence[float] | None) -> tuple[np.ndarray, np.ndarray]:
    """(levels to ask the model for, which of :data:`SCORING_LEVELS` it knows): a quantile head knows its quantile
    function only between its lowest and highest trained level, so the levels beyond are asked at those (flat tails
    for the CRPS) and marked unknown (no interval or reliability there)."""
    levels = np.asarray(SCORING_LEVELS)
    if quantile_levels is None:
        return levels, np.ones(levels.size, dtype=bool)
    low, high = min(quantile_levels), max(quantile_levels)
    known = (levels >= low - 1e-9) & (levels <= high + 1e-9)
    return np.clip(levels, low, high), known


def _level_index(level: float) -> int:
    return int(np.argmin(np.abs(np.asarray(SCORING_LEVELS) - level)))


def _probabilistic_scores(observations: np.ndarray, quantiles: np.ndarray, known: np.ndarray, members: np.ndarray, fair: bool):
    """Per-site :data:`PROBABILISTIC_METRICS` and the pooled reliability of quantiles [S, P, L] at :data:`SCORING_LEVELS`
    (``known``: which levels are the model's own) with CRPS from ``members`` [S, P, N]."""
    intervals = {
        percent: (quantiles[..., _level_index(lower)], quantiles[..., _level_index(upper)])
        for percent, (lower, upper) in CENTRAL_INTERVALS.items()
        if known[_level_index(lower)] and known[_level_index(upper)]
    }
    per_site = probabilistic_site_metrics(observations, members, intervals, fair=fair)
    fraction, days = reliability(observations, quantiles[..., known])
    levels = np.asarray(SCORING_LEVELS)[known]
    return per_site, {"levels": levels.tolist(), "fraction_below": fraction.tolist(), "observed_days": days}


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
    mc_dropout_passes: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Whole-period predictions of ``model`` for held-out sites (:func:`predict_sites`), per-site metrics of
    the first target (:data:`EVAL_METRICS` and :data:`PROBABILISTIC_METRICS`) and their medians.

    A point model's ``prediction`` is scored, its CRPS being the absolute error. A distributional head
    (``model.head_distribution()``) is scored on its quantiles at :data:`SCORING_LEVELS` (``quantiles`` [S, P, L] and
    ``reliability`` in the result, of the first target; NaN at the levels a quantile head does not know), its NSE etc.
    on its ``prediction`` (mean; a quantile head's median), which is the result's ``predictions`` [S, P, K]. With
    ``mc_dropout_passes`` a point model is scored on its MC dropout ensemble (:func:`mc_dropout_forward`, torch seeded
    with ``seed``): the ensemble mean for NSE etc., the members' fair CRPS, their empirical quantiles for the rest.
    """
    model.eval()
    kind, quantile_levels = model.head_distribution() if hasattr(model, "head_distribution") else ("none", None)
    if mc_dropout_passes and kind != "none":
        raise ValueError(f"mc_dropout_passes={mc_dropout_passes}: MC dropout scores a point model; this head predicts a {kind} distribution")
    asked, known = scoring_levels(quantile_levels)
    forward = _prediction
    if mc_dropout_passes:
        forward = mc_dropout_forward(mc_dropout_passes)
    elif kind != "none":
        forward = distribution_forward(asked)
    kwargs = dict(
        seq_len=seq_len, warmup=warmup, batch_size=batch_size, dynamic_variables=dynamic_variables,
        static_variables=static_variables, target_variables=target_variables, forward=forward,
    )
    with torch.random.fork_rng(devices=[] if model_device(model).type != "cuda" else [model_device(model)]):
        torch.manual_seed(seed)
        result = predict_sites(model, dataset, sites, period, **kwargs)
    observations, values = result["observations"][..., 0], result["predictions"][:, :, 0]  # the first target
    probabilistic = None
    if mc_dropout_passes:
        members = values
        with np.errstate(all="ignore"):
            quantiles = np.moveaxis(np.quantile(members, SCORING_LEVELS, axis=-1), 0, -1)
        probabilistic = _probabilistic_scores(observations, quantiles, known, members, fair=True)
        result["predictions"] = result["predictions"].mean(axis=-1)  # [S, P, K]: the ensemble mean
    elif kind != "none":
        quantiles = values[..., 1:]
        probabilistic = _probabilistic_scores(observations, quantiles, known, quantiles, fair=False)
        result["predictions"] = result["predictions"][..., 0]  # [S, P, K]: the mean (a quantile head's median)
    predictions = result["predictions"][..., 0]
    per_site = site_metrics(observations, predictions, metrics=EVAL_METRICS)
    if probabilistic is None:  # a point prediction has a CRPS (its absolute error), no interval
        per_site["crps"] = probabilistic_site_metrics(observations, predictions)["crps"]
    else:
        per_site.update(probabilistic[0])
        result.update(quantiles=np.where(known, quantiles, np.nan).astype(np.float32), reliability=probabilistic[1])
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


def write_test_quantiles(evaluation: dict[str, Any], path: Path) -> None:
    """The series a probabilistic evaluation scored, for figures (``benchmarks/probabilistic_figures.py``): per site
    the observations, the prediction and the bounds of the central 50 and 90 % intervals (float32, compressed npz);
    nothing for a point evaluation."""
    if "quantiles" not in evaluation:
        return
    levels = sorted({level for bounds in CENTRAL_INTERVALS.values() for level in bounds})
    np.savez_compressed(
        path,
        site_ids=np.asarray(evaluation["site_ids"]),
        dates=np.asarray(evaluation["dates"]).astype("datetime64[D]"),
        observations=evaluation["observations"][..., 0].astype(np.float32),
        prediction=evaluation["predictions"][..., 0].astype(np.float32),
        levels=np.asarray(levels),
        quantiles=np.stack([evaluation["quantiles"][..., _level_index(level)] for level in levels], axis=-1).astype(np.float32),
    )
