"""PUR ablation tables (docs/RESULTS.md) from benchmark folders holding seed_N/results.json, paired by (seed, group)
with the LSTM and resConn of the release PUR run, read from its per-group table in docs/RESULTS.md (3 decimals).

    python benchmarks/pur_ablation_tables.py runs/pur_release_scratch runs/pur_release_no_adapter runs/pur_release_linear_probe

A folder that also holds the LSTM ("LSTM SL") is checked against those values (largest difference printed)."""
import json, re, sys
from pathlib import Path
import numpy as np
from stefaland_hf.experiments.compare import load_results
from stefaland_hf.experiments.benchmark import mean_se_cell

SEEDS = (111, 112, 113)
folders = [Path(p) for p in sys.argv[1:]]
models = {}
for folder in folders:
    r = load_results(folder, str(folder))
    for i, f in enumerate(r["folds"]):
        for label, m in f["models"].items():
            models.setdefault(label, {})[(r["training_seeds"][i // 7], f["fold"])] = m["summary"]["nse"], m

def docs_values(column):  # column 1: LSTM, 2: resConn
    text = (Path(__file__).resolve().parents[1] / "docs" / "RESULTS.md").read_text()
    text = text.split("### CAMELS PUR: 67 gauged basins, 7 HUC-02")[1].split("#### Scratch, no adapter and linear probe")[0]
    out = {}
    for line in text.splitlines():
        m = re.match(r"\| (\d) `", line)
        if m:
            cells = [c.strip() for c in line.split("|")[1:-1]]
            vals = [float(v.replace("−", "-")) for v in cells[column].split(" / ")]
            for s, v in zip(SEEDS, vals):
                out[(s, int(m.group(1)))] = v
    return out

docs_lstm, docs_resconn = docs_values(1), docs_values(2)
if "LSTM SL" in models:
    diff = max(abs(models["LSTM SL"][k][0] - docs_lstm[k]) for k in models["LSTM SL"])
    print(f"LSTM rerun vs docs: {len(models['LSTM SL'])} values, max |diff| {diff:.4f}")
ref = docs_lstm
print("| model | median NSE (mean ± s.e. over groups × seeds) | Δ vs LSTM (paired) | pairs better | Δ vs resConn (paired) | pairs better | RMSE | ubRMSE | Corr | KGE | steps (min-max) | runs at the cap | minutes |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for label, runs in models.items():
    keys = sorted(runs)
    nse = np.array([runs[k][0] for k in keys])
    d = nse - np.array([ref[k] for k in keys])
    dr = nse - np.array([docs_resconn[k] for k in keys])
    cells = [mean_se_cell([runs[k][1]["summary"][m] if runs[k][1]["summary"][m] is not None else np.nan for k in keys]) for m in ("rmse", "ubrmse", "pearson_r", "kge")]
    steps = [runs[k][1]["steps"] for k in keys]
    print(f"| {label} | {mean_se_cell(nse)} | {mean_se_cell(d) if label != 'LSTM SL' else '(reference)'} | {int((d > 0).sum())}/{len(d)} | {mean_se_cell(dr)} | {int((dr > 0).sum())}/{len(dr)} | "
          + " | ".join(cells) + f" | {min(steps)}-{max(steps)} | {sum(s >= 2000 for s in steps)}/{len(steps)} | {sum(runs[k][1]['seconds'] for k in keys) / 60:.1f} |")
print()
labels = [l for l in models if l != "LSTM SL"]
print("| group | LSTM SL | " + " | ".join(labels) + " | resConn |")
print("|---|---|" + "---|" * (len(labels) + 1))
for g in range(7):
    row = [" / ".join(f"{ref[(s, g)]:.3f}" for s in SEEDS)]
    row += [" / ".join(f"{models[l][(s, g)][0]:.3f}" if (s, g) in models[l] else "–" for s in SEEDS) for l in labels]
    row += [" / ".join(f"{docs_resconn[(s, g)]:.3f}" for s in SEEDS)]
    print(f"| {g} | " + " | ".join(row) + " |")
