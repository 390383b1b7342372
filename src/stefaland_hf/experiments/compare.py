"""``stefaland compare``: benchmark runs on the same folds side by side, paired against a reference model.

Fold-to-fold spread is larger than most of the effects we look for, so each row also gives the
difference to a reference model **paired by fold** (mean ± standard error over folds, and in how many
folds the row is better). Runs must share their folds (same basins, ``--seed`` and ``--folds``); runs made
with ``--training-seeds`` pair by (seed, fold) and must share their seeds too.

Usage::

    stefaland compare --reference baseline "StefaLand resConn" \\
        --run baseline=runs/pub --run scale1=runs/inv/scale1 [--metric nse] [--out table.md]
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .benchmark import mean_se_cell


def fold_medians(results: dict, model: str, metric: str) -> np.ndarray:
    """The per-fold median of ``metric`` over held-out basins (NaN where a fold lacks the model)."""
    values = [f["models"].get(model, {}).get("summary", {}).get(metric) for f in results["folds"]]
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _is_better(values: np.ndarray, reference: np.ndarray, metric: str) -> np.ndarray:
    """Per fold: is ``values`` better than ``reference``? Errors (and CRPS) lower, volume biases nearer 0, an interval's
    coverage nearer its nominal share, its width lower (sharper), skill higher."""
    if metric in ("rmse", "ubrmse", "crps", "width_50", "width_90"):
        return values < reference
    if metric in ("coverage_50", "coverage_90"):
        nominal = int(metric.rsplit("_", 1)[1]) / 100
        return np.abs(values - nominal) < np.abs(reference - nominal)
    if metric in ("fhv", "flv", "bias"):
        return np.abs(values) < np.abs(reference)
    return values > reference


def held_out_folds(results: dict) -> list:
    """Per fold: the held-out basins (by id where the split names the dataset's sites: row numbers alone match for
    two reordered basin lists) and the test period, which pairing needs equal."""
    folds = []
    for fold in results["folds"]:
        split = fold["split"]
        ids = split.get("site_ids")
        basins = sorted(ids[i] for i in split["test_sites"]) if ids else sorted(split["test_sites"])
        folds.append((basins, split.get("test_period")))
    return folds


def _check_metric(runs: dict[str, dict], metric: str) -> None:
    """--metric must be one the runs' results hold (an unknown one read as a missing reference model)."""
    import difflib

    known = sorted({
        name for results in runs.values() for fold in results.get("folds", []) for m in fold.get("models", {}).values()
        for name in (m.get("summary") or {})
    })
    if metric not in known:
        close = difflib.get_close_matches(metric, known, n=1)
        raise ValueError(
            f"--metric {metric!r}: not a metric of these runs' results.json" + (f"; did you mean {close[0]!r}?" if close else "")
            + f" (they hold: {', '.join(known)})"
        )


def compare(runs: dict[str, dict], reference: tuple[str, str], metric: str = "nse") -> str:
    """A markdown table of every model of every run, with its fold-paired difference to ``reference``."""
    ref_run, ref_model = reference
    if ref_run not in runs:
        raise ValueError(f"--reference run {ref_run!r} is not among the runs {sorted(runs)}")
    _check_metric(runs, metric)
    ref = fold_medians(runs[ref_run], ref_model, metric)
    if not np.isfinite(ref).any():
        raise ValueError(f"--reference: run {ref_run!r} has no model {ref_model!r}")
    for label, results in runs.items():
        if results.get("training_seeds") != runs[ref_run].get("training_seeds"):
            raise ValueError(f"run {label!r} has training seeds {results.get('training_seeds')}, the reference run {ref_run!r} "
                             f"{runs[ref_run].get('training_seeds')}: pair runs of the same seeds")
        if held_out_folds(results) != held_out_folds(runs[ref_run]):
            raise ValueError(
                f"run {label!r} has other folds than the reference run {ref_run!r} (seed, folds, held-out basins or test period differ)"
            )
    lines = [
        f"| run | model | {metric.upper()} (mean ± s.e. over folds) | per-fold medians | Δ vs {ref_run} {ref_model} (paired) | folds better | steps (median) |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, results in runs.items():
        for model in results["folds"][0]["models"]:
            values = fold_medians(results, model, metric)
            paired = values - ref
            better = int(np.sum(_is_better(values, ref, metric)))
            pairs = int(np.sum(np.isfinite(paired)))  # folds where both have a value
            steps = [f["models"][model]["steps"] for f in results["folds"] if f["models"].get(model, {}).get("steps") is not None]
            is_ref = (label, model) == reference
            lines.append(
                f"| {label} | {model} | {mean_se_cell(values)} | {', '.join(f'{v:.3f}' for v in values)} | "
                f"{'(reference)' if is_ref else mean_se_cell(paired)} | {'' if is_ref else f'{better}/{pairs}'} | "
                f"{int(np.median(steps)) if steps else ''} |"
            )
    return "\n".join(lines) + "\n"


def load_runs(items: list[str]) -> dict[str, dict]:
    """``LABEL=DIR`` items -> {label: results.json of DIR}."""
    runs = {}
    for item in items:
        label, sep, folder = item.partition("=")
        if not sep:
            raise ValueError(f"--run {item!r}: expected LABEL=DIR")
        runs[label] = load_results(Path(folder), f"--run {item!r}")
    return runs


def load_results(folder: Path, what: str) -> dict:
    """``folder/results.json``; a ``--training-seeds`` folder (``seed_N/results.json`` each) becomes one run whose
    folds are its (seed, fold) pairs in seed order, so two multi-seed runs pair by fold and seed."""
    path = folder / "results.json"
    if path.exists():
        return json.loads(path.read_text())
    seed_files = sorted(folder.glob("seed_*/results.json"), key=lambda p: int(p.parent.name.removeprefix("seed_")))
    if not seed_files:
        raise FileNotFoundError(f"{what}: neither {path} nor {folder}/seed_N/results.json found (has the benchmark finished?)")
    seeds = [json.loads(p.read_text()) for p in seed_files]
    _check_same_run(seed_files, seeds, what)
    return {**seeds[0], "training_seeds": [r["training_seed"] for r in seeds], "folds": [f for r in seeds for f in r["folds"]]}


# what the seed folders pooled into one run must share (``base`` and the prose ``protocol`` name a path: the same
# weights may sit elsewhere; the manifests' weights hashes are compared instead)
_SHARED_SETTINGS = ("kind", "dataset", "n_basins", "seed", "preset", "pretrain_on")


def _check_same_run(seed_files: list[Path], seeds: list[dict], what: str) -> None:
    """Refuse seed folders of runs with other settings or base weights (e.g. one left by an earlier run in the folder)."""
    first = seed_files[0]

    def setting(results: dict, key: str):
        value = results.get(key)
        return {k: v for k, v in value.items() if k != "seed"} if key == "preset" and isinstance(value, dict) else value  # the training seed

    for path, results in zip(seed_files[1:], seeds[1:]):
        for key in _SHARED_SETTINGS:
            if setting(results, key) != setting(seeds[0], key):
                raise ValueError(f"{what}: {path} was run with other {key!r} than {first}; pool only seed folders of one setting")
    weights = {str(p): _base_weights(p.parent) for p in seed_files}
    if len({w for w in weights.values() if w is not None}) > 1:
        raise ValueError(f"{what}: the seed folders were finetuned from different base weights: {weights}")


def _base_weights(seed_folder: Path) -> str | None:
    """The SHA-256 of the base weights in a seed folder's run manifest, if it records one."""
    manifest = seed_folder / "run_manifest.json"
    if not manifest.exists():
        return None
    base = json.loads(manifest.read_text()).get("base_model") or {}
    return base.get("sha256") if isinstance(base, dict) else None


def run_cli(args) -> int:
    """``stefaland compare`` (its arguments: ``stefaland_cli.compare``)."""
    table = compare(load_runs(args.run), tuple(args.reference), args.metric)
    if args.out:
        args.out.write_text(table)
    print(table)
    return 0
