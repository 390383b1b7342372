"""Tune a benchmark model (the LSTM baseline by default) on training and validation data only.

For each search fold the search sets aside a fifth of that fold's training basins (a fixed draw), trains on the
others over the training period with the fold's own early stopping (its validation basins over the validation
period), and scores the set-aside basins over the validation period. The search fold's held-out basins and every
basin's streamflow in the test period are never read. One setting chosen this way serves every fold, and the basins
set aside in one fold are held out in another: they inform the choice with their validation-period streamflow only.

Each trial is the preset (with ``--set``) plus one combination of the ``--grid`` values; with ``--trials N`` a seeded
sample of N combinations. Results go to one JSON file per (trial, fold) in ``--out`` (``search_manifest.json``
records the shared settings; a rerun with others is refused), so an interrupted search resumes where it stopped, and
to ``search.md``: trials by mean median NSE over the search folds, and the ``--set`` line of the best.

    python benchmarks/hyperparameter_search.py --data-dir ../shared/data/camels_us --preset cpu-quick \\
        --grid baseline.head_hidden_size=64,128,256 baseline.learning_rate=0.001,0.003 --search-folds 0 --out runs/search
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
import os
from pathlib import Path

import numpy as np

SEARCH_SHARE = 0.2  # of a fold's training basins, set aside to score the trials
TUNABLE = ("direct", "scratch", "hbv")  # the benchmark models trained from random weights (no encoder to choose)


def search_split(split, seed: int, fold: int):
    """``split`` with a fifth of its training basins as the scored part, over the validation period: the held-out
    basins and the test period are never read."""
    (val_start, val_end), (test_start, test_end) = split.val_period, split.test_period
    if val_start <= test_end and test_start <= val_end:
        raise SystemExit(f"the validation period {split.val_period} overlaps the test period {split.test_period}: the search "
                         "scores over the validation period and must not read the test period (set benchmark.val_period)")
    order = np.random.default_rng([seed, fold, 27]).permutation(split.train_sites)
    scored = max(1, int(round(SEARCH_SHARE * len(order))))
    if scored >= len(order):
        raise SystemExit(f"fold {fold}: {len(order)} training basins are too few to set {scored} aside for the search")
    return dataclasses.replace(
        split, name=f"{split.name}-search", train_sites=np.sort(order[scored:]), test_sites=np.sort(order[:scored]),
        test_period=split.val_period, info={**split.info, "search": f"{scored} of the training basins scored over the validation period"},
    )


def trial_grid(grid: list[str], trials: int | None, seed: int) -> list[list[str]]:
    """``SECTION.FIELD=V1,V2`` items -> the combinations as ``--set`` assignment lists (a seeded sample of ``trials``)."""
    if trials is not None and trials < 1:
        raise SystemExit(f"--trials {trials}: expected at least 1")
    axes = []
    for item in grid:
        key, equals, values = item.partition("=")
        if not equals or "." not in key or not values:
            raise SystemExit(f"--grid {item!r}: expected SECTION.FIELD=V1,V2,...")
        if key.partition(".")[0] not in ("finetune", "baseline"):
            raise SystemExit(f"--grid {item!r}: the search varies the training of the model (sections finetune, baseline); "
                             "the benchmark's periods, basins and pretraining are shared settings (--set)")
        axes.append([f"{key}={value}" for value in values.split(",")])
    combinations = [list(c) for c in itertools.product(*axes)]
    if trials is not None and trials < len(combinations):
        pick = np.random.default_rng(seed).choice(len(combinations), trials, replace=False)
        combinations = [combinations[i] for i in sorted(pick)]
    return combinations


def trial_key(assignments: list[str]) -> str:
    return hashlib.sha256(json.dumps(sorted(assignments)).encode()).hexdigest()[:12]


def refuse_ineffective(arguments: list[dict], combinations: list[list[str]], model: str) -> None:
    """Two combinations that give the model the same training (a key of a section it does not read, or one the preset's
    ``baseline`` section overrides for the LSTM) would be two runs of one trial."""
    seen = {}
    for settings, combination in zip(arguments, combinations):
        key = json.dumps(settings, sort_keys=True, default=str)
        if key in seen:
            raise SystemExit(f"--grid: {' '.join(seen[key])} and {' '.join(combination)} train {model} identically (a field "
                             f"it does not read, or one another section of the preset sets); vary what {model} reads")
        seen[key] = combination


def _mean(values) -> float:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else float("-inf")


def search_table(records: list[dict], folds: list[int]) -> str:
    """Markdown: one row per trial, by mean median NSE over the search folds (complete trials first), then the
    ``--set`` line of the best complete trial."""
    by_trial: dict[str, dict] = {}
    for record in records:
        entry = by_trial.setdefault(record["trial"], {"set": record["set"], "nse": {}, "steps": {}, "seconds": 0.0})
        entry["nse"][record["fold"]], entry["steps"][record["fold"]] = record["nse"], record["steps"]
        entry["seconds"] += record["seconds"]
    rows = sorted(by_trial.values(), key=lambda e: (-len(e["nse"]), -_mean(e["nse"].values())))
    lines = ["| trial (--set) | median NSE per search fold | mean | steps | wall (s) |", "|---|---|---|---|---|"]
    for entry in rows:
        cells = " / ".join(f"{entry['nse'][f]:.3f}" if f in entry["nse"] else "…" for f in folds)
        lines.append(f"| {' '.join(entry['set']) or '(the preset)'} | {cells} | {_mean(entry['nse'].values()):.3f} | "
                     f"{' / '.join(str(entry['steps'][f]) for f in folds if f in entry['steps'])} | {entry['seconds']:.0f} |")
    complete = [e for e in rows if len(e["nse"]) == len(folds)]
    if complete:
        lines.append("\nBest: " + (" ".join(f"--set {a}" for a in complete[0]["set"]) or "the preset as it is"))
    return "\n".join(lines) + "\n"


def checked_manifest(out: Path, settings: dict) -> None:
    """Write the shared settings of a new search; refuse to continue one made with others (its records would be
    reused under the new settings' name)."""
    path = out / "search_manifest.json"
    if path.is_file():
        stored = json.loads(path.read_text())
        differing = sorted(k for k in set(stored) | set(settings) if stored.get(k) != settings.get(k))
        if differing:
            raise SystemExit(f"{out}: a search with other {', '.join(differing)} ({path}); use another --out")
        return
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="camels_us", choices=["camels_us", "synthland"])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--extra-data-dir", nargs="+", default=None)
    parser.add_argument("--basins", default=None, help="basin list file, or camels_us_531")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--model", default="direct", choices=TUNABLE, help="the benchmark model to tune (default: the LSTM baseline)")
    parser.add_argument("--folds", type=int, default=5, help="the benchmark's PUB folds (as --folds of stefaland benchmark)")
    parser.add_argument("--seed", type=int, default=111, help="the benchmark's fold seed; also draws the set-aside basins and trials")
    parser.add_argument("--search-folds", type=int, nargs="+", default=[0], help="folds whose training basins the search uses")
    parser.add_argument("--preset", default="cpu-quick")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="the settings every trial shares (repeatable)")
    parser.add_argument("--grid", nargs="+", default=[], metavar="SECTION.FIELD=V1,V2", help="the values to search")
    parser.add_argument("--trials", type=int, default=None, help="a seeded sample of this many combinations (default: all)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from stefaland_hf import StefaLandConfig, zoo
    from stefaland_hf.data import load_site_dataset
    from stefaland_hf.experiments.benchmark import benchmark_preset, dataset_options, finetune_arguments, make_splits
    from stefaland_hf.training.finetune import finetune
    from stefaland_hf.training.pretrain import config_for_dataset

    bad = [f for f in args.search_folds if not 0 <= f < args.folds]
    if bad:
        raise SystemExit(f"--search-folds {bad}: the benchmark has folds 0..{args.folds - 1}")
    combinations = trial_grid(args.grid, args.trials, args.seed)
    # every trial's settings are checked before anything trains
    arguments = [finetune_arguments(benchmark_preset(args.preset, args.dataset, [*args.overrides, *combination]), args.out,
                                    args.model, args.seed, args.out).run_arguments() for combination in combinations]
    refuse_ineffective(arguments, combinations, args.model)
    checked_manifest(args.out, {
        "model": args.model, "preset": args.preset, "set": sorted(args.overrides), "dataset": args.dataset, "seed": args.seed,
        "folds": args.folds, "basins": args.basins, "data_dir": args.data_dir and str(Path(args.data_dir).resolve()),
        "extra_data_dir": [str(Path(d).resolve()) for d in args.extra_data_dir or []],
    })
    kwargs = dataset_options(args.dataset, [args.model], basins=args.basins, extra_data_dirs=args.extra_data_dir)
    dataset = load_site_dataset(args.dataset, data_dir=args.data_dir, cache_dir=args.cache_dir, **kwargs)
    preset = benchmark_preset(args.preset, args.dataset, args.overrides)
    settings = preset["benchmark"]
    splits = make_splits("pub", dataset, args.folds, args.seed, settings["train_period"], settings["test_period"], settings["val_period"],
                         settings["train_basins"])
    config = config_for_dataset(StefaLandConfig.from_pretrained(zoo.model_zoo_dir() / settings["model"]), dataset)
    records = []
    for combination in combinations:
        key = trial_key(combination)
        for fold in args.search_folds:
            record_file = args.out / f"trial_{key}_fold_{fold}.json"
            if record_file.is_file():
                records.append(json.loads(record_file.read_text()))
                continue
            trial_preset = benchmark_preset(args.preset, args.dataset, [*args.overrides, *combination])
            run_dir = args.out / "runs" / f"{key}_fold_{fold}"
            run_args = finetune_arguments(trial_preset, run_dir, args.model, args.seed, args.out / "embedding_cache")
            report = finetune(config, dataset, search_split(splits[fold], args.seed, fold), run_args)
            record = {"trial": key, "set": combination, "fold": fold, "nse": report["evaluation"]["summary"]["nse"],
                      "best_val_loss": report["best_val_loss"], "steps": report["steps"], "seconds": report["train_seconds"]}
            partial = record_file.with_suffix(".partial")
            partial.write_text(json.dumps(record, indent=1))
            partial.replace(record_file)  # a record is there whole or not at all
            records.append(record)
            print(f"trial {' '.join(combination) or '(the preset)'} fold {fold}: median NSE {record['nse']:.3f} at set-aside basins")
    table = search_table(records, args.search_folds)
    shared = " ".join(f"--set {o}" for o in args.overrides)
    note = (f"Search of {args.model} on preset {args.preset} {shared}, folds {args.search_folds} of {args.folds} (seed {args.seed}): "
            "scored at a fifth of each search fold's training basins over the validation period. The setting chosen serves "
            "every fold; the set-aside basins are held out in other folds and informed the choice with their "
            "validation-period streamflow (never the test period's).")
    (args.out / "search.md").write_text(note + "\n\n" + table)
    print(table)


if __name__ == "__main__":
    main()
