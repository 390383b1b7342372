"""Prediction where there is no gauge: run a finetuned model over any basins and period, write series and plots.

This is the use PUB exists for. A resConn adapter (or a complete ``direct``/``scratch`` model) from
finetuning is run over every day of a period at basins that may have no streamflow at all, e.g. the
603 ungauged CAMELS basins; each basin gets a CSV of daily predictions (observations beside them where
the basin has some) with units and provenance in its header, and a hydrograph.

An adapter only means something on the encoder it was trained on: finetuning records that encoder's
SHA-256 in ``finetuning.json`` beside the adapter, and a different base is refused, never run.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from ..variables import get_variable

__all__ = ["load_trained_model", "predict_basins", "write_predictions", "parse_period"]


def parse_period(values: Sequence[str], argument: str = "--period") -> tuple[str, str]:
    """``["A,B"]`` or ``["A", "B"]`` -> ``("A", "B")`` (inclusive ISO dates)."""
    parts = [p.strip() for v in values for p in v.split(",") if p.strip()]
    if len(parts) != 2:
        raise ValueError(f"{argument} {' '.join(values)}: expected START,END (two ISO dates, e.g. 1989-10-01,1999-09-30)")
    for part in parts:
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", part):
                raise ValueError(part)
            np.datetime64(part, "D")
        except ValueError:
            raise ValueError(
                f"{argument}: {part!r} is not an ISO date (YYYY-MM-DD); a month or year alone is refused, not read as its "
                "first day (for a water year write e.g. 2001-10-01,2002-09-30)"
            ) from None
    if parts[0] > parts[1]:
        raise ValueError(f"{argument} {parts[0]},{parts[1]}: the start is after the end")
    return parts[0], parts[1]


def _local_folder(name: str) -> Path:
    """A folder; a short name (``stefaland-conus-streamflow``: the model zoo, ``$STEFALAND_WEIGHTS`` or its cached Hub
    repo, :func:`~stefaland_hf.hub.names.resolve_model_name`); or a Hub repo id fetched (or found in the HF cache when
    offline) with ``snapshot_download``."""
    from huggingface_hub import snapshot_download

    from ..hub.names import looks_like_path, resolve_model_name

    if os.path.isdir(name):
        return Path(name)
    if looks_like_path(name):
        raise FileNotFoundError(f"--adapter {name}: no such folder (and not a Hub repo id ORG/NAME)")
    if "/" not in name:
        name = resolve_model_name(name)  # an unknown name fails here, naming the closest known ones
        if os.path.isdir(name):
            return Path(name)
    return Path(snapshot_download(name))


def load_trained_model(adapter: str | os.PathLike, base: str | os.PathLike | None = None):
    """The finetuned model in ``adapter`` ready to predict, and its ``finetuning.json`` record (or None).

    ``adapter`` holds either a resConn adapter (``adapter_config.json``; needs ``base``, by default the base it
    names) or a complete model (``config.json``; a ``base`` is then refused as meaningless).
    """
    from peft import PeftModel

    from ..checkpoint_binding import backbone_fingerprint
    from ..hub.names import from_pretrained
    from ..modeling_stefaland import StefaLandForTimeSeriesRegression
    from ..peft_adapters import ResConnConfig
    from ..training.finetune import FINETUNING_FILE

    folder = _local_folder(os.fspath(adapter))
    record_file = folder / FINETUNING_FILE
    record = json.loads(record_file.read_text()) if record_file.is_file() else None
    if (folder / "adapter_config.json").is_file():
        config = ResConnConfig.from_pretrained(folder)
        recorded = (record or {}).get("base_model") or {}
        base_name = base or recorded.get("name") or config.base_model_name_or_path
        if not base_name:
            raise ValueError(f"--base: the adapter {folder} does not name its base model; give the pretrained model it was trained on")
        model = from_pretrained(
            base_name, StefaLandForTimeSeriesRegression, head_mode=config.head_mode, head_hidden_size=config.head_hidden_size,
            target_variables=list(config.target_variables), target_mean=config.target_mean, target_std=config.target_std,
            output_distribution=config.output_distribution, mixture_components=config.mixture_components, quantiles=config.quantiles,
        )
        expected, actual = recorded.get("backbone_sha256"), backbone_fingerprint(model.stefaland)
        if expected is None:
            print(f"warning: {folder} has no {FINETUNING_FILE} (finetuned by an older version): cannot check that {base_name} is its base")
        elif expected != actual:
            raise ValueError(
                f"--base {base_name}: its encoder (SHA-256 {actual[:12]}…) is not the one the adapter {folder} was trained on "
                f"({expected[:12]}…, {recorded.get('name')}); an adapter on another encoder predicts nonsense. Pass that base."
            )
        model = PeftModel.from_pretrained(model, folder)
    elif (folder / "config.json").is_file():
        if base is not None:
            raise ValueError(f"--base {base}: {folder} is a complete model (head_mode direct or scratch) and uses no base; drop --base")
        architectures = json.loads((folder / "config.json").read_text()).get("architectures") or []
        if StefaLandForTimeSeriesRegression.__name__ not in architectures:
            raise ValueError(
                f"--adapter {folder}: a {'/'.join(architectures) or 'model'} checkpoint, not a finetuned {StefaLandForTimeSeriesRegression.__name__}; "
                "a pretrained encoder has no trained head (pass it as --base with the adapter trained on it)"
            )
        model = StefaLandForTimeSeriesRegression.from_pretrained(folder)
    else:
        raise FileNotFoundError(
            f"--adapter {folder}: holds neither adapter_config.json (a resConn adapter) nor config.json (a complete model); "
            "pass the adapter/ or model/ folder of a finetuning run"
        )
    model.eval()
    return model, record


def predict_basins(
    model, dataset, sites, period: tuple[str, str], seq_len: int, warmup: int, batch_size: int = 64, quantiles=None
) -> dict:
    """:func:`~stefaland_hf.evaluation.predict_sites` with the model's own variables; days before the
    period serve as warm-up where the record has them. A distributional model's mean is the prediction and its
    ``quantiles`` (default 5, 25, 50, 75 and 95 %; :func:`quantile_levels`) come as
    ``quantiles`` [S, P, K, Q] at ``quantile_levels``."""
    from ..evaluation import distribution_forward, predict_sites

    from ..data.site_arrays import SiteArrays

    config = model.config
    targets = list(model.peft_config[model.active_adapter].target_variables) if hasattr(model, "peft_config") else list(config.target_variables)
    levels = quantile_levels(model, quantiles)
    result = predict_sites(
        model, dataset, sites, period, seq_len=seq_len, warmup=warmup, batch_size=batch_size,
        dynamic_variables=config.dynamic_variables, static_variables=config.static_variables, target_variables=targets,
        **({"forward": distribution_forward(levels)} if levels else {}),
    )
    if levels:  # [S, P, K, 1 + Q]: the mean, then the quantiles
        result.update(predictions=result["predictions"][..., 0], quantiles=result["predictions"][..., 1:], quantile_levels=levels)
    # gauged: the basin has a streamflow record (the build read one: the dataset's ``gauged``), or observations anywhere
    # in the dataset's period; a gauged basin may have none in the period asked for, and is never called ungauged
    arrays = SiteArrays.wrap(dataset)
    record = arrays.gather_targets(result["sites"], np.zeros(len(result["sites"]), dtype=np.int64), arrays.n_time, arrays.column_map("target", targets))
    has_record = np.asarray(dataset["gauged"], dtype=bool)[np.asarray(result["sites"])]
    result["gauged"] = has_record[:, None] | np.isfinite(record).any(axis=1)  # [S, K]
    return result


def quantile_levels(model, quantiles: Sequence[float] | None) -> list[float]:
    """The levels whose quantiles a prediction writes: ``quantiles`` (default ``DEFAULT_QUANTILES``: 5, 25, 50, 75 and
    95 %) for a distributional model, none for a point model (refused when asked for)."""
    from ..configuration_stefaland import DEFAULT_QUANTILES

    kind = model.head_distribution()[0] if hasattr(model, "head_distribution") else "none"
    if kind == "none":
        if quantiles:
            raise ValueError(f"quantiles={list(quantiles)}: this model predicts one value per day (output_distribution none); "
                             "a model finetuned with output_distribution cmal or quantile predicts quantiles")
        return []
    levels = [float(q) for q in (DEFAULT_QUANTILES if quantiles is None else quantiles)]
    if not levels or not all(0 < q < 1 for q in levels):
        raise ValueError(f"quantiles={levels}: expected levels strictly between 0 and 1")
    return levels


def in_sample_days(result: dict, record: dict | None) -> list[int | None]:
    """Per site of ``result``: how many of its predicted days lie in the training or validation data the model was
    finetuned on (its ``finetuning.json``), i.e. are no independent test; None where the record cannot say."""
    trained = ((record or {}).get("data") or {}).get("trained_on")
    if not trained:
        return [None] * len(result["site_ids"])
    dates = np.asarray(result["dates"]).astype("datetime64[D]")
    inside = np.zeros(len(dates), dtype=bool)
    for period in trained["periods"]:
        if period is None:
            inside[:] = True
        elif all(isinstance(p, str) for p in period):
            inside |= (dates >= np.datetime64(period[0], "D")) & (dates <= np.datetime64(period[1], "D"))
        else:  # day indices into the training dataset: not placeable on these dates
            return [None] * len(result["site_ids"])
    ids = set(trained["site_ids"])
    return [int(inside.sum()) if site in ids else 0 for site in result["site_ids"]]


def _column(name: str, kind: str, unit: str) -> str:
    return f"{name}_{kind}_{unit.replace('/', '_per_').replace(' ', '_')}"


#: the scores of each basin in ``summary.csv``, over the days of the period with an observation and a prediction: NSE,
#: KGE (2009), bias = mean(predicted - observed) in the variable's unit, and FHV, the percent bias of the highest 2 % of
#: the flow-duration curve (Yilmaz et al. 2008), the peak-flow bias
SUMMARY_METRICS = ("nse", "kge", "bias", "fhv")


def write_predictions(result: dict, out: Path, provenance: dict, plots: bool = True) -> list[dict]:
    """One CSV per basin (``#`` header lines: basin, variable, units, provenance) and a hydrograph PNG;
    returns one summary row per basin (also written to ``OUT/summary.csv``): gauged (a streamflow record exists),
    observed days in the period and, where there are any, :data:`SUMMARY_METRICS`."""
    import pandas as pd

    from ..metrics import site_metrics

    (out / "timeseries").mkdir(parents=True, exist_ok=True)
    if plots:
        (out / "hydrographs").mkdir(parents=True, exist_ok=True)
    dates = pd.to_datetime(result["dates"])
    rows = []
    for k, variable in enumerate(result["target_variables"]):
        unit = get_variable(variable).unit
        predicted, observed = result["predictions"][..., k], result["observations"][..., k]
        scores = {name: np.asarray(values, dtype=float) for name, values in site_metrics(observed, predicted, metrics=SUMMARY_METRICS).items()}
        observed_days = np.isfinite(observed).sum(axis=1)
        in_sample = result.get("in_sample_days") or [None] * len(result["site_ids"])
        for i, site in enumerate(result["site_ids"]):
            observed_in_period = bool(observed_days[i])
            gauged = bool(result["gauged"][i, k]) if "gauged" in result else observed_in_period
            frame = pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), _column(variable, "predicted", unit): predicted[i]})
            for q, level in enumerate(result.get("quantile_levels", [])):  # a distributional model: predicted is its mean
                frame[_column(variable, f"q{level:g}", unit)] = result["quantiles"][i, :, k, q]
            if observed_in_period:
                frame[_column(variable, "observed", unit)] = observed[i]
            header = [
                f"# basin: {site}", f"# variable: {variable} ({unit}), daily",
                f"# gauged: {'yes' if gauged else 'no (ungauged: no streamflow record)'}",
                f"# observations in the period: {f'{observed_days[i]} of {len(dates)} days' if observed_in_period else 'none'}",
                "# in-sample days (training or validation basin and period: not an independent test): "
                + ("unknown (not recorded in finetuning.json)" if in_sample[i] is None else str(in_sample[i])),
            ]
            header += [f"# {key}: {value}" for key, value in provenance.items()]
            suffix = "" if len(result["target_variables"]) == 1 else f"_{variable}"
            path = out / "timeseries" / f"{site}{suffix}.csv"
            with open(path, "w") as handle:
                handle.write("\n".join(header) + "\n")
                frame.to_csv(handle, index=False, float_format="%.4f")
            if plots:
                bands = {level: result["quantiles"][i, :, k, q] for q, level in enumerate(result.get("quantile_levels", []))}
                _plot_prediction(
                    dates, predicted[i], observed[i] if observed_in_period else None, site, variable, unit, scores["nse"][i],
                    out / "hydrographs" / f"{site}{suffix}.png", gauged=gauged, in_sample=in_sample[i], bands=bands,
                )
            finite = predicted[i][np.isfinite(predicted[i])]
            rows.append({
                "site_id": site, "variable": variable, "unit": unit, "gauged": gauged, "observed_in_period": observed_in_period,
                "observed_days": int(observed_days[i]), "in_sample_days": in_sample[i],
                "days_predicted": int(finite.size), "mean_predicted": float(finite.mean()) if finite.size else float("nan"),
                **{name: float(scores[name][i]) for name in SUMMARY_METRICS},
            })
    pd.DataFrame(rows).to_csv(out / "summary.csv", index=False, float_format="%.4f")
    return rows


def _plot_prediction(
    dates, predicted, observed, site, variable, unit, nse, path: Path, gauged: bool = False, in_sample: int | None = None, bands=None
) -> None:
    """``bands``: {level: quantile series} of a distributional model; its central 50 and 90 % intervals are shaded."""
    from .plots import _pyplot, plot_observed

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 3))
    for (low, high), alpha in (((0.05, 0.95), 0.2), ((0.25, 0.75), 0.4)):
        if low in (bands or {}) and high in bands:
            ax.fill_between(dates, bands[low], bands[high], color="tab:blue", alpha=alpha, lw=0, label=f"{round(100 * (high - low))} % interval")
    observed_days = plot_observed(ax, dates, observed) if observed is not None else 0
    ax.plot(dates, predicted, color="tab:blue", lw=0.9, label="predicted")
    if observed is not None:
        score = (f"observed on {observed_days} of {len(dates)} days, NSE {nse:.2f}"
                 + (f" (in-sample: {in_sample} training days)" if in_sample else ""))
    else:
        score = "no observations in the period (gauged basin)" if gauged else "ungauged: no streamflow record"
    ax.set_title(f"basin {site}: {variable}, {dates[0]:%Y-%m-%d} to {dates[-1]:%Y-%m-%d}; {score}", fontsize=9, loc="left")
    ax.set_ylabel(f"{variable} ({unit})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


#: the basin layouts ``stefaland predict --dataset`` reads, and the forcing configuration each reads without a record
PREDICTION_DATASETS = {"camels_us": "daymet", "caravan": "era5_land"}


def _recorded_forcing(record: dict | None, adapter, dataset: str = "camels_us") -> str | None:
    """The forcing product (the builder's config) the model was finetuned on (its ``finetuning.json``), when it was
    finetuned on ``dataset``: predictions use the same. None, with a warning, where the record does not say or names
    the other streamflow layout (CAMELS-US Daymet vs Caravan's ERA5-Land: another forcing product, which the model can
    read, since both map to the canonical variables, but did not learn from)."""
    data = (record or {}).get("data") or {}
    builder, config = data.get("builder"), data.get("config")
    if builder not in (None, *PREDICTION_DATASETS):
        raise ValueError(
            f"--adapter {adapter}: finetuned on {builder} ({config}), but stefaland predict reads streamflow basins "
            f"({' or '.join(PREDICTION_DATASETS)}): its inputs would not be those it learned from"
        )
    if builder == dataset and config is not None:
        return config
    if builder is None:
        print(f"warning: {adapter} does not record the forcing product it was finetuned on; predicting with "
              f"{dataset}'s {PREDICTION_DATASETS[dataset]} forcings")
    else:
        print(f"warning: {adapter} was finetuned on {builder} ({config}) forcings, and predicts from {dataset}'s "
              f"{PREDICTION_DATASETS[dataset]} forcings: another forcing product than it learned from (a shift its scores "
              "on its own data do not measure)")
    return None


def run_cli(args) -> int:
    """``stefaland predict`` (its arguments: ``stefaland_cli.predict``)."""
    from ..data import load_site_dataset
    from ..training.run_folder import build_manifest, dataset_fingerprint, prepare_run_folder

    period = parse_period(args.period)
    model, record = load_trained_model(args.adapter, args.base)
    seq_len = args.seq_len or (record or {}).get("seq_len")
    warmup = args.warmup if args.warmup is not None else (record or {}).get("warmup")
    if seq_len is None or warmup is None:
        raise ValueError(f"--seq-len/--warmup: {args.adapter} does not record the windows it was trained on; give both")
    basins = Path(args.basins)
    if not basins.is_file():
        raise FileNotFoundError(f"--basins {basins}: no such file (a basin list, one gauge id per line)")
    name = getattr(args, "dataset", "camels_us")
    forcing = _recorded_forcing(record, args.adapter, name)
    layout = {"extra_data_dirs": args.extra_data_dir or None, "ungauged": args.ungauged} if name == "camels_us" else {}
    dataset = load_site_dataset(
        name, config_name=forcing, data_dir=args.data_dir, cache_dir=args.cache_dir, basins=str(basins),
        end_date=period[1], **layout,  # from the record's start: warm-up context
    )
    manifest = build_manifest(
        "prediction", {"adapter": str(args.adapter), "base": args.base, "period": list(period), "seq_len": seq_len, "warmup": warmup},
        data=dataset_fingerprint(dataset), base_model=(record or {}).get("base_model"),
    )
    out = Path(args.out)
    prepare_run_folder(out, manifest, overwrite=args.overwrite)
    result = predict_basins(model, dataset, np.arange(len(dataset)), period, seq_len, warmup, args.batch_size)
    result["in_sample_days"] = in_sample_days(result, record)
    predicted = (str(np.datetime64(result["dates"][0], "D")), str(np.datetime64(result["dates"][-1], "D")))
    provenance = {
        "model": str(args.adapter), "base": ((record or {}).get("base_model") or {}).get("name") or args.base or "(complete model)",
        "forcing": dataset.info.config_name,
        "period": f"{predicted[0]} to {predicted[1]}"
        + ("" if predicted == tuple(period) else f" (requested {period[0]} to {period[1]}, clipped to the record)"),
        "windows": f"{seq_len} days with {warmup} days of warm-up",
        "package": f"stefaland-hf {manifest['package_version']}",
    }
    if predicted != tuple(period):
        print(f"note: --period {period[0]},{period[1]} reaches beyond the record; predicted {predicted[0]} to {predicted[1]}")
    rows = write_predictions(result, out, provenance, plots=not args.no_plots)
    ungauged = sum(not r["gauged"] for r in rows)
    unobserved = sum(r["gauged"] and not r["observed_in_period"] for r in rows)
    in_sample = sum(bool(r["in_sample_days"]) for r in rows)
    missing = sum(r["days_predicted"] < len(result["dates"]) for r in rows)
    print(
        f"predicted {len(result['site_ids'])} basins ({ungauged} ungauged, {unobserved} gauged without observations in the "
        f"period) over {len(result['dates'])} days -> {out}/timeseries"
    )
    if in_sample:
        print(
            f"warning: {in_sample} basin(s) were finetuned on part of this period (training or validation basin-days): "
            "their scores are in-sample, not a test (summary.csv in_sample_days)"
        )
    if missing:
        print(f"note: {missing} basin(s) have days without a prediction (forcings missing, or fewer than {warmup} days of record before {period[0]}): empty cells")
    return 0
