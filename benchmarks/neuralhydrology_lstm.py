"""Community LSTM check: neuralhydrology's ``CudaLSTM`` on the folds of a ``stefaland benchmark`` run.

Reads ``OUT/results.json`` written by ``stefaland benchmark pub|pur``, and for every fold trains
neuralhydrology's ``cudalstm`` on the fold's training basins (training period), validates on the fold's
validation basins (training period, as our early stopping does) and evaluates on the fold's held-out
basins over the test period. The result is added to ``results.json`` as the model
``"neuralhydrology CudaLSTM"`` and ``summary.md`` (and ``nse_cdf.png``) are re-rendered with the
benchmark's own ``summary_markdown``.

neuralhydrology is NOT a dependency of ``stefaland-hf``; install it separately::

    pip install neuralhydrology==1.13.0

Usage::

    python benchmarks/neuralhydrology_lstm.py --results OUT/results.json \
        --data-dir /path/camels_us --work-dir W [--epochs N] [--hidden-size H] [--folds 0 1]

Choices (so the comparison with our "LSTM SL" baseline is like for like):

- inputs: Daymet ``prcp, srad, tmax, tmin, vp, dayl`` read by neuralhydrology's own CAMELS-US loader,
  plus ``tmean = (tmax + tmin) / 2`` (our ``temperature_mean``), passed through neuralhydrology's
  ``additional_feature_files``; static attributes: our ``PAPER_ATTRIBUTES`` mapped back to their
  CAMELS column names. Streamflow is neuralhydrology's ``QObs(mm/d)`` (forcing-header area, as ours).
- ``seq_length`` = the preset's ``finetune.seq_len``, ``predict_last_n`` = ``seq_len - warmup``; loss ``MSE`` on the
  standardized target (our heads train with a masked MSE on the standardized target); hidden size,
  batch size and learning rate default to the preset's ``finetune.head_hidden_size``, ``finetune.per_device_train_batch_size``,
  ``finetune.learning_rate``; output dropout 0.2 (our ``head_dropout``).
- epoch selection: neuralhydrology validates after every epoch; the test evaluation uses the epoch with
  the best median validation NSE (``--select-epoch best``, default) or the last one.
- metrics: neuralhydrology's test metrics cover only the days predicted at the last step of a sequence,
  which starts ``predict_last_n - 1`` days after the test period start. To score exactly the days our
  models are scored on, the script rebuilds each held-out basin's series over the whole test period from
  neuralhydrology's saved predictions (last sequence step where available; for the first days, the
  first sequence's earlier steps, whose context is at least ``warmup`` days as in our windows) and
  computes every table metric with ``stefaland_hf.metrics.site_metrics``. neuralhydrology's own per-basin
  NSE (``test_metrics.csv``) is kept as ``nse_neuralhydrology`` next to it.
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from stefaland_hf.data.camels_us import (
    ATTRIBUTE_SOURCES,
    PAPER_ATTRIBUTES,
    find_forcing_file,
    read_forcing_file,
)
from stefaland_hf.experiments.benchmark import summary_markdown
from stefaland_hf.metrics import site_metrics, summarize

LABEL = "neuralhydrology CudaLSTM"
EVAL_METRICS = ("nse", "kge", "rmse", "ubrmse", "pearson_r", "fhv", "flv")  # as stefaland_hf.evaluation
TARGET = "QObs(mm/d)"
TMEAN = "tmean(C)"
# our dynamic variables -> neuralhydrology's CAMELS-US Daymet column names (camels_us.DYNAMIC_VARIABLES order)
DYNAMIC_INPUTS = {
    "precipitation": "prcp(mm/day)",
    "temperature_max": "tmax(C)",
    "temperature_min": "tmin(C)",
    "temperature_mean": TMEAN,
    "shortwave_radiation": "srad(W/m2)",
    "vapor_pressure": "vp(Pa)",
    "daylength": "dayl(s)",
}


def nh_date(value: str) -> str:
    """ISO date -> neuralhydrology's dd/mm/yyyy."""
    return pd.Timestamp(value).strftime("%d/%m/%Y")


def static_attributes(attributes=PAPER_ATTRIBUTES) -> list[str]:
    """Our canonical attribute names -> CAMELS column names (unit scales don't matter: nh standardizes)."""
    return [ATTRIBUTE_SOURCES[name][1] for name in attributes]


def write_tmean_features(data_dir: Path, basins: list[str], path: Path) -> Path:
    """Pickle ``{basin: DataFrame[tmean(C)]}`` for neuralhydrology's ``additional_feature_files``."""
    features = {}
    if path.exists():
        with path.open("rb") as fp:
            features = pickle.load(fp)
    missing = [b for b in basins if b not in features]
    for basin in missing:
        _, dates, values = read_forcing_file(find_forcing_file(data_dir, "daymet", basin))
        tmean = (values[:, 8] + values[:, 9]) / 2.0  # FORCING_COLUMNS: tmax at 8, tmin at 9
        features[basin] = pd.DataFrame({TMEAN: tmean}, index=pd.DatetimeIndex(dates.astype("datetime64[ns]"), name="date"))
    if missing or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fp:
            pickle.dump(features, fp)
    return path


def fold_config(fold: dict, preset: dict, args, fold_dir: Path, features_file: Path, seed: int) -> dict:
    split = fold["split"]
    ids = split["site_ids"]
    if ids is None:
        raise ValueError("results.json splits carry no site_ids; rerun the benchmark with a current stefaland-hf")
    files = {}
    for part in ("train", "val", "test"):
        basins = [ids[i] for i in split[f"{part}_sites"]]
        files[part] = fold_dir / f"{part}_basins.txt"
        files[part].write_text("\n".join(basins) + "\n")
    (train_start, train_end), (val_start, val_end), (test_start, test_end) = (
        split["train_period"], split["val_period"], split["test_period"]
    )
    seq_len, warmup = int(preset["finetune"]["seq_len"]), int(preset["finetune"]["warmup"])
    cfg = {
        "experiment_name": f"fold_{fold['fold']}",
        "run_dir": str(fold_dir / "runs"),
        "train_basin_file": str(files["train"]),
        "validation_basin_file": str(files["val"]),
        "test_basin_file": str(files["test"]),
        "train_start_date": nh_date(train_start),
        "train_end_date": nh_date(train_end),
        "validation_start_date": nh_date(val_start),
        "validation_end_date": nh_date(val_end),
        "test_start_date": nh_date(test_start),
        "test_end_date": nh_date(test_end),
        "device": args.device,
        "seed": seed,
        "validate_every": 1,
        "validate_n_random_basins": len(split["val_sites"]),
        "cache_validation_data": True,
        "metrics": ["NSE"],
        "save_validation_results": True,
        "model": "cudalstm",
        "head": "regression",
        "output_activation": "linear",
        "hidden_size": args.hidden_size or int(preset["finetune"]["head_hidden_size"]),
        "initial_forget_bias": 3,
        "output_dropout": args.dropout,
        "optimizer": "Adam",
        "loss": "MSE",
        "learning_rate": {0: args.learning_rate or float(preset["finetune"]["learning_rate"])},
        "batch_size": args.batch_size or int(preset["finetune"]["per_device_train_batch_size"]),
        "epochs": args.epochs,
        "clip_gradient_norm": 1,
        "predict_last_n": seq_len - warmup,
        "seq_length": seq_len,
        "num_workers": 0,
        "log_interval": 5,
        "log_tensorboard": False,
        "log_n_figures": 0,
        "save_weights_every": 1,
        "verbose": 0,
        "dataset": "camels_us",
        "data_dir": str(args.data_dir),
        "forcings": ["daymet"],
        "dynamic_inputs": list(DYNAMIC_INPUTS.values()),
        "additional_feature_files": [str(features_file)],
        "static_attributes": static_attributes(),
        "target_variables": [TARGET],
        "clip_targets_to_zero": [TARGET],
    }
    if args.max_updates_per_epoch:
        cfg["max_updates_per_epoch"] = args.max_updates_per_epoch
    if not split["val_sites"]:  # no validation basins: train for the given epochs, test the last one
        for key in ("validate_every", "validate_n_random_basins", "validation_basin_file"):
            cfg.pop(key)
    return cfg


def best_epoch(run_dir: Path, epochs: int, select: str) -> int:
    """The epoch with the best median validation NSE (neuralhydrology's validation_metrics.csv)."""
    if select == "last":
        return epochs_trained(run_dir)
    scores = {}
    for csv in sorted(run_dir.glob("validation/model_epoch*/validation_metrics.csv")):
        epoch = int(csv.parent.name.removeprefix("model_epoch"))
        nse = pd.read_csv(csv, dtype={"basin": str})["NSE"].to_numpy(dtype=float)
        nse = nse[np.isfinite(nse)]
        scores[epoch] = float(np.median(nse)) if nse.size else -np.inf
    if not scores:
        return epochs_trained(run_dir)
    return max(scores, key=lambda e: (scores[e], -e))


def epochs_trained(run_dir: Path) -> int:
    return int(sorted(run_dir.glob("model_epoch*.pt"))[-1].stem.removeprefix("model_epoch"))


def stitched_series(xr, start: str, end: str) -> tuple[np.ndarray, np.ndarray]:
    """(obs, sim) over every day of [start, end] from neuralhydrology's test xarray (date x time_step).

    A sample indexed by ``date`` predicts day ``date + time_step`` (time_step <= 0). Each day takes the last
    step of its own sequence; days before the first sample's date take that sample's earlier steps.
    """
    days = pd.date_range(start, end, freq="D")
    obs_var, sim_var = f"{TARGET}_obs", f"{TARGET}_sim"
    last = xr.sel(time_step=0)
    obs = pd.Series(last[obs_var].values, index=pd.DatetimeIndex(last["date"].values)).reindex(days)
    sim = pd.Series(last[sim_var].values, index=pd.DatetimeIndex(last["date"].values)).reindex(days)
    first_date = pd.Timestamp(xr["date"].values[0])
    first = xr.sel(date=first_date)
    for step in first["time_step"].values:
        day = first_date + pd.Timedelta(days=int(step))
        if day in sim.index and not np.isfinite(sim[day]):
            sim[day] = float(first[sim_var].sel(time_step=step))
            obs[day] = float(first[obs_var].sel(time_step=step))
    return obs.to_numpy(dtype=np.float64), sim.to_numpy(dtype=np.float64)


def _float(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def run_fold(fold: dict, preset: dict, args, work_dir: Path, features_file: Path, seed: int) -> dict:
    from neuralhydrology.nh_run import eval_run
    from neuralhydrology.training.train import start_training
    from neuralhydrology.utils.config import Config

    fold_dir = work_dir / f"fold_{fold['fold']}"
    fold_dir.mkdir(parents=True, exist_ok=True)
    cfg_dict = fold_config(fold, preset, args, fold_dir, features_file, seed)
    entry_file = fold_dir / "entry.json"
    if entry_file.exists():
        entry = json.loads(entry_file.read_text())
        if entry.get("config") == json.loads(json.dumps(cfg_dict)) and entry.get("select_epoch") == args.select_epoch:
            print(f"fold {fold['fold']}: neuralhydrology run done earlier ({entry_file})")
            return entry

    from ruamel.yaml import YAML

    config_file = fold_dir / "config.yml"
    with config_file.open("w") as fp:
        YAML().dump(cfg_dict, fp)

    started = time.time()
    cfg = Config(config_file)
    start_training(cfg)
    run_dir = Path(cfg.run_dir)  # neuralhydrology sets it to runs/<experiment>_<timestamp>
    epoch = best_epoch(run_dir, args.epochs, args.select_epoch)
    eval_run(run_dir=run_dir, period="test", epoch=epoch)  # device from the run's config
    seconds = round(time.time() - started, 1)

    test_dir = run_dir / "test" / f"model_epoch{epoch:03d}"
    nh_csv = pd.read_csv(test_dir / "test_metrics.csv", dtype={"basin": str}).set_index("basin")
    # our own run's output (trusted): neuralhydrology stores its time series only as this pickle
    with (test_dir / "test_results.p").open("rb") as fp:
        nh_results = pickle.load(fp)

    split = fold["split"]
    test_ids = [split["site_ids"][i] for i in split["test_sites"]]
    start, end = split["test_period"]
    n_days = len(pd.date_range(start, end, freq="D"))
    obs = np.full((len(test_ids), n_days), np.nan)
    sim = np.full((len(test_ids), n_days), np.nan)
    for row, basin in enumerate(test_ids):
        if basin in nh_results:
            obs[row], sim[row] = stitched_series(nh_results[basin]["1D"]["xr"], start, end)
    per_site = site_metrics(obs, sim, metrics=EVAL_METRICS)
    per_basin = {}
    for row, basin in enumerate(test_ids):
        metrics = {name: _float(values[row]) for name, values in per_site.items()}
        metrics["nse_neuralhydrology"] = _float(nh_csv["NSE"].get(basin, np.nan))
        per_basin[basin] = metrics
    nh_nse = [m["nse_neuralhydrology"] for m in per_basin.values() if m["nse_neuralhydrology"] is not None]
    entry = {
        "head_mode": None,
        "implementation": f"neuralhydrology {metadata.version('neuralhydrology')} cudalstm",
        "seconds": seconds,
        "per_basin": per_basin,
        "summary": {k: _float(v) for k, v in summarize(per_site).items()},
        "summary_neuralhydrology": {"nse": _float(np.median(nh_nse)) if nh_nse else float("nan")},
        "epoch": epoch,
        "select_epoch": args.select_epoch,
        "run_dir": str(run_dir),
        "config": json.loads(json.dumps(cfg_dict)),
    }
    entry_file.write_text(json.dumps(entry, indent=1))
    return entry


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", required=True, type=Path, help="results.json of `stefaland benchmark`")
    p.add_argument("--data-dir", required=True, type=Path, help="raw CAMELS-US folder (as given to the benchmark)")
    p.add_argument("--work-dir", required=True, type=Path, help="neuralhydrology configs, basin files and runs")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--max-updates-per-epoch", type=int, default=None, help="cap batches per epoch (default: full epochs)")
    p.add_argument("--hidden-size", type=int, default=None, help="default: the preset's finetune.head_hidden_size")
    p.add_argument("--batch-size", type=int, default=None, help="default: the preset's finetune.per_device_train_batch_size")
    p.add_argument("--learning-rate", type=float, default=None, help="default: the preset's finetune.learning_rate")
    p.add_argument("--dropout", type=float, default=0.2, help="output dropout (our head_dropout default)")
    p.add_argument("--device", default="cpu", help="neuralhydrology device: cpu, cuda:0, ...")
    p.add_argument("--select-epoch", choices=["best", "last"], default="best")
    p.add_argument("--folds", type=int, nargs="*", default=None, help="fold indices (default: all)")
    p.add_argument("--label", default=LABEL)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import neuralhydrology  # noqa: F401
    except ImportError:
        sys.exit("neuralhydrology is not installed: pip install neuralhydrology==1.13.0 (not a stefaland-hf dependency)")
    logging.basicConfig(level=logging.INFO)
    results = json.loads(args.results.read_text())
    if results.get("dataset", "camels_us") != "camels_us":
        sys.exit(f"only camels_us benchmarks are supported, got {results.get('dataset')!r}")
    preset = results["preset"]
    work_dir = args.work_dir.resolve()
    args.data_dir = args.data_dir.resolve()
    folds = results["folds"]
    selected = range(len(folds)) if args.folds is None else args.folds
    all_ids = sorted({b for f in folds for b in f["split"]["site_ids"]})
    features_file = write_tmean_features(args.data_dir, all_ids, work_dir / "tmean_features.p")
    for index in selected:
        fold = folds[index]
        entry = run_fold(fold, preset, args, work_dir, features_file, int(results.get("seed", 111)))
        fold["models"][args.label] = entry
        print(
            f"fold {index} {args.label}: median NSE {entry['summary']['nse']} over the test period "
            f"(neuralhydrology's own median NSE {entry['summary_neuralhydrology']['nse']}), epoch {entry['epoch']}, "
            f"{entry['seconds']:.0f} s"
        )
    results.setdefault("external_baselines", {})[args.label] = (
        "neuralhydrology's CudaLSTM (benchmarks/neuralhydrology_lstm.py) on the same basins, periods and folds; "
        "metrics recomputed with stefaland_hf.metrics over the whole test period from its predictions"
    )
    args.results.write_text(json.dumps(results, indent=1))
    # summary_markdown takes its rows from fold 0 and needs every row in every fold
    complete = [f for f in folds if args.label in f["models"]]
    if len(complete) == len(folds):
        summary_file = args.results.parent / "summary.md"
        summary = summary_markdown(results)
    else:
        summary_file = args.results.parent / "summary_neuralhydrology_partial.md"
        summary = summary_markdown({**results, "folds": complete})
        summary = (
            f"**Partial: folds {[f['fold'] for f in complete]} of {len(folds)} carry {args.label}; "
            f"summary.md is left as it was.**\n\n" + summary
        )
    summary_file.write_text(summary)
    print(f"wrote {summary_file}")
    try:
        from stefaland_hf.experiments.plots import plot_metric_cdf

        per_model = {
            label: np.asarray([b["nse"] if b["nse"] is not None else np.nan for f in folds for b in f["models"][label]["per_basin"].values()], dtype=float)
            for label in folds[0]["models"]
            if all(label in f["models"] for f in folds)
        }
        plot_metric_cdf(per_model, args.results.parent / "nse_cdf.png")
    except Exception as exc:  # the plot is a convenience; the table is the result
        print(f"nse_cdf.png not re-rendered: {exc}")
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
