"""Time to predict one basin's streamflow for 15 years from tables, loading included, on one thread.

What a user pays for ``stefaland_hf.predict_streamflow(model, "forcings.csv", "attributes.csv")`` in a fresh Python
process: starting the interpreter, ``import stefaland_hf``, loading the model (a resConn adapter onto its frozen
base, or a complete model), reading and checking the tables, and the whole-period prediction. Each round runs every
variant once, in a child process of its own (nothing cached in memory between rounds; the files are in the page
cache), so load from other processes hits them alike:

- ``resConn on BASE``: a finetuning run's ``adapter/`` folder (an untrained stand-in by default: the weights' values
  do not change the time) on ``--base``;
- ``LSTM baseline``: a complete ``direct`` model (the paper's LSTM on raw forcings and attributes), the baseline of
  the ratios;
- ``--model DIR_OR_NAME`` adds a model of your own (e.g. the shipped streamflow model).

The forcings are 15 years (5,479 days) of synthetic daily values in the canonical variables, written to a CSV.

    taskset -c 0 python benchmarks/predict_speed.py                       # stefaland-conus base, 3 rounds
    taskset -c 0 python benchmarks/predict_speed.py --base stefaland-base --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 10.0  # the bound for one basin over 15 years, loading included, one core
YEARS = ("1990-01-01", "2004-12-31")  # 5,479 days

CHILD = r"""
import json, sys, time
clocks = [(time.perf_counter(), time.process_time())]
import torch
torch.set_num_threads(1)
import stefaland_hf
from stefaland_hf.experiments.tables import load_model, predict_streamflow
clocks.append((time.perf_counter(), time.process_time()))
model = load_model(sys.argv[1])[0]
clocks.append((time.perf_counter(), time.process_time()))
table = predict_streamflow(model, sys.argv[2], sys.argv[3])
clocks.append((time.perf_counter(), time.process_time()))
assert table["streamflow"].notna().all() and len(table) == int(sys.argv[4])
phases = {}
for name, (wall0, cpu0), (wall1, cpu1) in zip(("import", "load", "predict"), clocks, clocks[1:]):
    phases.update({f"{name}_s": wall1 - wall0, f"{name}_cpu_s": cpu1 - cpu0})
print(json.dumps(phases))
"""


def write_inputs(folder: Path) -> tuple[Path, Path, int]:
    """A 15-year daily forcing table in every dynamic canonical variable stefaland-conus reads, and one attribute row."""
    import numpy as np
    import pandas as pd

    dates = pd.date_range(*YEARS, freq="D")
    rng = np.random.default_rng(0)
    season = np.sin(2 * np.pi * dates.day_of_year.to_numpy() / 365.25)
    forcings = pd.DataFrame({
        "date": dates.strftime("%Y-%m-%d"),
        "precipitation": rng.gamma(0.5, 6.0, len(dates)),
        "temperature_max": 15 + 12 * season + 3 * rng.standard_normal(len(dates)),
        "temperature_min": 3 + 10 * season + 3 * rng.standard_normal(len(dates)),
        "shortwave_radiation": 180 + 100 * season + 20 * rng.random(len(dates)),
        "vapor_pressure": 900 + 500 * season + 50 * rng.random(len(dates)),
        "daylength": 43200 + 10000 * season,
    })
    forcings["temperature_mean"] = (forcings["temperature_max"] + forcings["temperature_min"]) / 2
    attributes = pd.DataFrame([{"latitude": 44.6, "longitude": -70.1, "area": 573.6, "elevation": 300.0, "slope": 20.0, "aridity": 0.7}])
    forcings.to_csv(folder / "forcings.csv", index=False, float_format="%.3f")
    attributes.to_csv(folder / "attributes.csv", index=False)
    return folder / "forcings.csv", folder / "attributes.csv", len(dates)


def write_models(folder: Path, base: str) -> dict[str, str]:
    """An untrained resConn adapter on ``base`` (with the finetuning record that names its base) and an LSTM baseline."""
    import torch
    from peft import get_peft_model

    import stefaland_hf
    from stefaland_hf import ResConnConfig, StefaLandConfig, StefaLandForTimeSeriesRegression
    from stefaland_hf.checkpoint_binding import backbone_fingerprint
    from stefaland_hf.hub.names import resolve_model_name
    from stefaland_hf.training.finetune import FINETUNING_FILE

    torch.manual_seed(0)
    targets = {"target_variables": ["streamflow"], "target_mean": [1.5], "target_std": [2.0]}
    model = stefaland_hf.from_pretrained(base, StefaLandForTimeSeriesRegression, target_variables=["streamflow"])
    adapter = get_peft_model(model, ResConnConfig(**targets))
    adapter.save_pretrained(folder / "adapter")
    record = {"head_mode": "resconn", "target_variables": ["streamflow"], "seq_len": 365, "warmup": 180,
              "base_model": {"name": resolve_model_name(base), "backbone_sha256": backbone_fingerprint(model.stefaland)}}
    (folder / "adapter" / FINETUNING_FILE).write_text(json.dumps(record))
    config = StefaLandConfig.from_pretrained(resolve_model_name(base)).replace(head_mode="direct", **targets)
    StefaLandForTimeSeriesRegression(config).save_pretrained(folder / "lstm")
    return {f"resConn on {base}": str(folder / "adapter"), "LSTM baseline (direct)": str(folder / "lstm")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="stefaland-conus", help="the frozen base of the stand-in adapter")
    parser.add_argument("--model", default=None, help="also time this model (folder, Hub id or name)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=None, help="write the rows to this file")
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        forcings, attributes, days = write_inputs(folder)
        variants = write_models(folder, args.base)
        if args.model:
            variants[args.model] = args.model
        times: dict[str, list[dict]] = {label: [] for label in variants}
        for _ in range(args.rounds):
            for label, model in variants.items():
                started, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
                child = subprocess.run([sys.executable, "-c", CHILD, model, str(forcings), str(attributes), str(days - 180)],
                                       env=env, capture_output=True, text=True)
                if child.returncode:
                    sys.exit(f"{label}: the child process failed:\n{child.stderr[-3000:]}")
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                times[label].append({**json.loads(child.stdout.strip().splitlines()[-1]), "total_s": time.perf_counter() - started,
                                     "total_cpu_s": after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime})

    base = statistics.median(t["total_cpu_s"] for t in times["LSTM baseline (direct)"])
    print(f"one basin, {days} days ({YEARS[0]} .. {YEARS[1]}), 1 thread, median of {args.rounds} rounds, a fresh process each;")
    print("seconds as CPU time (user + system: the wall time on an idle core) and, after the slash, wall time")
    print("| variant | import | load | tables + prediction | whole process | whole process / LSTM baseline (CPU) | within 10 s (CPU; wall) |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for label, runs in times.items():
        row = {"variant": label, **{key: statistics.median(t[key] for t in runs) for key in runs[0]}}
        slowest = {kind: max(t[f"total_{kind}s"] for t in runs) for kind in ("cpu_", "")}
        row.update(ratio=row["total_cpu_s"] / base, within_budget_cpu=slowest["cpu_"] <= BUDGET_S, within_budget_wall=slowest[""] <= BUDGET_S)
        rows.append(row)
        cells = [f"{row[f'{phase}_cpu_s']:.2f} / {row[f'{phase}_s']:.2f}" for phase in ("import", "load", "predict", "total")]
        verdict = f"{'yes' if row['within_budget_cpu'] else 'NO'}; {'yes' if row['within_budget_wall'] else 'NO'} (slowest: {slowest['cpu_']:.2f} / {slowest['']:.2f} s)"
        print(f"| {label} | {' | '.join(cells)} | {row['ratio']:.2f}x | {verdict} |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
