"""Skill at held-out basins when the user lacks inputs: a benchmark's fold models scored again with variables hidden,
either as missing (NaN: StefaLand's learned mask tokens) or filled with the model's normalization mean.

    python benchmarks/missing_inputs.py --run runs/pub531 --dataset camels_us --data-dir ../shared/data/camels_us \
        --extra-data-dir runs/unpacked/camels_us_ungauged runs/unpacked/camels_us_streamflow --basins camels_us_531 \
        --out runs/pub531/missing_inputs

``--run`` is a ``stefaland benchmark`` folder (or seed_N/ of --training-seeds in it) whose fold models are still in
``folds/fold_K/<model>/``; the folds it finished are scored (a running benchmark's too). The dataset arguments must
build the dataset the benchmark ran on (its basin ids are checked against the folds'). Every model is scored on its fold's held-out basins over the benchmark's test period,
once per scenario and fill. The mean a variable is filled with is the one the model normalizes it by: the LSTM's
training basins' mean, a frozen encoder's pretraining-corpus mean (which its adapter also reads the raw inputs by).
Missing inputs reach an LSTM as that same mean (its raw input at 0 after normalization), so it is scored once.
Writes ``missing_inputs.md`` (median NSE, mean ± s.e. over folds, and the paired change from all inputs) and
``missing_inputs.json`` (per fold).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from stefaland_hf.data import load_site_dataset
from stefaland_hf.evaluation import predict_sites
from stefaland_hf.experiments.prediction import load_trained_model
from stefaland_hf.metrics import site_metrics, standard_error

# by canonical names: a user without attributes, with few, without a soil map, without a humidity or radiation product
COMMON_ATTRIBUTES = ("latitude", "longitude", "area", "elevation", "slope", "mean_precipitation", "aridity")
SOIL = ("sand_fraction", "silt_fraction", "clay_fraction", "soil_depth", "soil_porosity", "soil_conductivity",
        "max_water_content", "bulk_density", "field_capacity")
VAPOR_AND_RADIATION = ("vapor_pressure", "specific_humidity", "shortwave_radiation", "longwave_radiation")
SCENARIOS = {
    "all inputs": lambda dynamic, static: ([], []),
    "no attributes": lambda dynamic, static: ([], list(static)),
    f"only the {len(COMMON_ATTRIBUTES)} common attributes": lambda dynamic, static: ([], [v for v in static if v not in COMMON_ATTRIBUTES]),
    "no soil attributes": lambda dynamic, static: ([], [v for v in static if v in SOIL]),
    "no vapor pressure or radiation": lambda dynamic, static: ([v for v in dynamic if v in VAPOR_AND_RADIATION], []),
}
FILLS = ("mask token", "mean")


def hiding_forward(dynamic_columns: list[int], static_columns: list[int], dynamic_fill: torch.Tensor, static_fill: torch.Tensor):
    """A ``predict_sites`` forward that replaces the given input columns by ``*_fill`` (NaN: missing) before the model."""

    def forward(model, batch):
        x_dynamic, x_static = batch["x_dynamic"].clone(), batch["x_static"].clone()
        x_dynamic[..., dynamic_columns] = dynamic_fill.to(x_dynamic)
        x_static[..., static_columns] = static_fill.to(x_static)
        return model(**{**batch, "x_dynamic": x_dynamic, "x_static": x_static}).prediction

    return forward


def fold_model(folder: Path) -> Path:
    """The trained artifact in a benchmark model folder: a resConn ``adapter/`` or a complete ``model/``."""
    for name in ("adapter", "model"):
        if (folder / name).is_dir():
            return folder / name
    raise FileNotFoundError(f"{folder}: no adapter/ or model/ (was the fold model deleted, or the fold not finished?)")


def score(model, dataset, sites, period, hidden: tuple[list[str], list[str]], fill: str, seq_len: int, warmup: int) -> float:
    """Median NSE over ``sites`` with the ``hidden`` (dynamic, static) variables missing or at the model's mean."""
    config = model.config
    dynamic, static = list(config.dynamic_variables), list(config.static_variables)
    columns = [dynamic.index(v) for v in hidden[0]], [static.index(v) for v in hidden[1]]

    def fill_values(names, columns, mean):
        if fill == "mask token":
            return torch.full((len(columns),), float("nan"))
        if mean is None:
            raise ValueError(f"{names}: the model stores no normalization mean to fill with")
        return torch.tensor([mean[c] for c in columns], dtype=torch.float32)

    forward = hiding_forward(*columns, fill_values("dynamic", columns[0], config.dynamic_mean), fill_values("static", columns[1], config.static_mean))
    targets = list(model.peft_config[model.active_adapter].target_variables) if hasattr(model, "peft_config") else list(config.target_variables)
    result = predict_sites(model, dataset, sites, period, seq_len=seq_len, warmup=warmup, batch_size=128, dynamic_variables=dynamic,
                           static_variables=static, target_variables=targets, forward=forward)
    nse = site_metrics(result["observations"][..., 0], result["predictions"][..., 0], metrics=("nse",))["nse"]
    return float(np.nanmedian(nse))


def finished_folds(run: Path) -> list[tuple[Path, dict]]:
    """(seed folder, fold result) of every fold the benchmark finished (folds/fold_K.json), in its own folder or in
    seed_N/ of --training-seeds: a running benchmark's finished folds can be scored already."""
    files = sorted(run.glob("folds/fold_*.json")) or sorted(run.glob("seed_*/folds/fold_*.json"))
    if not files:
        raise FileNotFoundError(f"--run {run}: no folds/fold_K.json or seed_N/folds/fold_K.json (no fold finished yet?)")
    return [(path.parents[1], json.loads(path.read_text())) for path in files]


def run(args) -> dict:
    dataset = load_site_dataset(args.dataset, data_dir=args.data_dir, cache_dir=args.cache_dir,
                                **({"extra_data_dirs": args.extra_data_dir} if args.extra_data_dir else {}),
                                **({"basins": args.basins} if args.basins else {}))
    rows = []  # one per seed x fold x model x scenario x fill
    for folder, fold in finished_folds(Path(args.run)):
        split = fold["split"]
        if split["site_ids"] != list(dataset["site_id"]):
            raise ValueError(f"{folder}: fold {fold['fold']} was split over other basins than the dataset given; pass the benchmark's data arguments")
        for label in args.models or list(fold["models"]):
            entry = fold["models"][label]
            model, record = load_trained_model(fold_model(folder / "folds" / f"fold_{fold['fold']}" / entry["model"]))
            config = model.config
            fills = FILLS if entry["head_mode"] not in ("direct", "scratch", "hbv") else ("mean",)
            for scenario, hide in SCENARIOS.items():
                hidden = hide(config.dynamic_variables, config.static_variables)
                for fill in fills:
                    with torch.no_grad():
                        nse = score(model, dataset, split["test_sites"], split["test_period"], hidden, fill, record["seq_len"], record["warmup"])
                    rows.append({"seed": folder.name, "fold": fold["fold"], "model": label, "scenario": scenario,
                                 "fill": fill, "hidden": hidden[0] + hidden[1], "median_nse": nse})
                    print(f"{folder.name} fold {fold['fold']} {label}, {scenario}, {fill}: median NSE {nse:.3f}", flush=True)
    return {"run": str(args.run), "rows": rows}


def table(report: dict) -> str:
    """Markdown: per scenario, each model and fill's median NSE (mean ± s.e. over folds x seeds) and the paired change
    from all inputs."""
    rows = report["rows"]
    columns = list(dict.fromkeys((r["model"], r["fill"]) for r in rows))
    value = {(r["seed"], r["fold"], r["model"], r["fill"], r["scenario"]): r["median_nse"] for r in rows}
    runs = sorted({(r["seed"], r["fold"]) for r in rows})
    lines = ["| scenario | " + " | ".join(f"{m}, {f}" for m, f in columns) + " |", "|---|" + "---|" * len(columns)]
    for scenario in SCENARIOS:
        cells = []
        for model, fill in columns:
            scores = np.array([value[(s, k, model, fill, scenario)] for s, k in runs])
            if scenario == "all inputs":
                cells.append(f"{scores.mean():.3f} ± {standard_error(scores):.3f}")
                continue
            delta = scores - np.array([value[(s, k, model, fill, "all inputs")] for s, k in runs])
            cells.append(f"{scores.mean():.3f} ({delta.mean():+.3f} ± {standard_error(delta):.3f})")
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    hidden = {r["scenario"]: r["hidden"] for r in rows}
    lines += ["", f"Median NSE over held-out basins, mean ± s.e. over {len(runs)} fold(s) x seed(s); in brackets the paired change "
              "from all inputs. Hidden variables (of the first model):"]
    lines += [f"- {scenario}: {', '.join(names) or 'none'}" for scenario, names in hidden.items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a stefaland benchmark folder with its fold models")
    parser.add_argument("--dataset", default="camels_us", help="the benchmark's dataset")
    parser.add_argument("--data-dir", help="the benchmark's --data-dir")
    parser.add_argument("--extra-data-dir", nargs="+", default=[], help="the benchmark's --extra-data-dir")
    parser.add_argument("--basins", help="the benchmark's --basins")
    parser.add_argument("--cache-dir", help="datasets cache folder")
    parser.add_argument("--models", nargs="+", help="benchmark labels to score (default: every model of the run)")
    parser.add_argument("--out", required=True, help="folder for missing_inputs.md and missing_inputs.json")
    args = parser.parse_args(argv)
    report = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "missing_inputs.json").write_text(json.dumps(report, indent=1))
    (out / "missing_inputs.md").write_text(table(report))
    print(table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
