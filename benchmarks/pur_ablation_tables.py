"""PUR ablation tables of docs/RESULTS.md from benchmark folders holding seed_N/results.json, paired by (seed, group)
with the LSTM and resConn of the release PUR run, read from its per-group table in docs/RESULTS.md (3 decimals).

    python benchmarks/pur_ablation_tables.py runs/pur_release_scratch runs/pur_release_no_adapter runs/pur_release_linear_probe

A folder that also holds the LSTM ("LSTM SL") is checked against those values (largest difference printed).
"""

import re
import sys
from pathlib import Path

import numpy as np

from stefaland_hf.experiments.benchmark import mean_se_cell
from stefaland_hf.experiments.compare import load_results

RESULTS_MD = Path(__file__).resolve().parents[1] / "docs" / "RESULTS.md"
SEEDS = (111, 112, 113)  # the release PUR run's seeds, in its table's order
TABLE_METRICS = ("rmse", "ubrmse", "pearson_r", "kge")


def runs_by_seed_and_group(folders: list[Path]) -> dict[str, dict[tuple[int, int], dict]]:
    """{model label: {(training seed, group): that model's results.json entry}} over all folders."""
    models = {}
    for folder in folders:
        results = load_results(folder, str(folder))
        groups = len(results["folds"]) // len(results["training_seeds"])
        for i, fold in enumerate(results["folds"]):
            for label, entry in fold["models"].items():
                models.setdefault(label, {})[(results["training_seeds"][i // groups], fold["fold"])] = entry
    return models


def published(column: int) -> dict[tuple[int, int], float]:
    """Group medians of the release PUR run's per-group table (column 1: LSTM, 2: resConn)."""
    text = RESULTS_MD.read_text().split("### CAMELS PUR: 67 gauged basins, 7 HUC-02")[1].split("#### Scratch, no adapter and linear probe")[0]
    values = {}
    for line in text.splitlines():
        if match := re.match(r"\| (\d) `", line):
            cells = [c.strip() for c in line.split("|")[1:-1]]
            for seed, value in zip(SEEDS, cells[column].split(" / ")):
                values[(seed, int(match.group(1)))] = float(value.replace("−", "-"))
    return values


def main(folders: list[Path]) -> None:
    models = runs_by_seed_and_group(folders)
    lstm, resconn = published(1), published(2)
    nse = {label: {key: entry["summary"]["nse"] for key, entry in runs.items()} for label, runs in models.items()}
    if "LSTM SL" in nse:
        rerun = nse.pop("LSTM SL")
        print(f"LSTM rerun vs docs: {len(rerun)} values, max |diff| {max(abs(v - lstm[k]) for k, v in rerun.items()):.4f}")
    print("| model | median NSE (mean ± s.e. over groups × seeds) | Δ vs LSTM (paired) | pairs better | Δ vs resConn (paired) | pairs better "
          "| RMSE | ubRMSE | Corr | KGE | steps (min-max) | runs at the cap | minutes |")
    print("|---" * 13 + "|")
    for label, values in nse.items():
        keys = sorted(values)
        medians = np.array([values[k] for k in keys])
        paired = [medians - np.array([ref[k] for k in keys]) for ref in (lstm, resconn)]
        runs = [models[label][k] for k in keys]
        cells = [mean_se_cell([np.nan if r["summary"][m] is None else r["summary"][m] for r in runs]) for m in TABLE_METRICS]
        steps = [r["steps"] for r in runs]
        print(f"| {label} | {mean_se_cell(medians)} | " + " | ".join(f"{mean_se_cell(d)} | {int((d > 0).sum())}/{len(d)}" for d in paired)
              + " | " + " | ".join(cells)
              + f" | {min(steps)}-{max(steps)} | {sum(s >= 2000 for s in steps)}/{len(steps)} | {sum(r['seconds'] for r in runs) / 60:.1f} |")
    print()
    print("| group | LSTM SL | " + " | ".join(nse) + " | resConn |")
    print("|---" * (len(nse) + 3) + "|")
    for group in range(len({g for _, g in lstm})):
        columns = [lstm, *nse.values(), resconn]
        print(f"| {group} | " + " | ".join(" / ".join(f"{c[(s, group)]:.3f}" if (s, group) in c else "–" for s in SEEDS) for c in columns) + " |")


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]])
