"""The data-scarcity curve (the paper's central claim): held-out median NSE against the number of training basins.

Each point is one or more ``stefaland benchmark pub`` runs with ``--set benchmark.train_basins=N`` (the same folds,
held-out and validation basins; nested training basins), or without it for "all". Several runs of one point
(``N=DIR,DIR``, e.g. models run separately) are pooled fold by fold, and must share their held-out basins, as must all
points. Per model: mean over folds (x training seeds) of the median NSE over held-out basins, ± standard error; with
``--reference MODEL``, each other model's difference to it, paired by fold. Writes a table (markdown) and a figure.

    for n in 25 50 100 200; do stefaland benchmark pub ... --set benchmark.train_basins=$n --out runs/scarcity/$n; done
    python benchmarks/data_scarcity.py 25=runs/scarcity/25 50=runs/scarcity/50 all=runs/scarcity/all --out runs/scarcity \
        --reference "StefaLand resConn, random encoder"
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from stefaland_hf.experiments.benchmark import delta_cell, delta_statistics, mean_se_cell
from stefaland_hf.experiments.compare import fold_medians, held_out_folds, load_results
from stefaland_hf.experiments.plots import _pyplot


def training_seeds(results: dict) -> list:
    """The training seeds of a run (several for a ``--training-seeds`` folder)."""
    return results.get("training_seeds") or [results.get("training_seed", results.get("seed"))]


def train_basins(results: dict):
    """``benchmark.train_basins`` of a run (None: all of each fold's training basins)."""
    return ((results.get("preset") or {}).get("benchmark") or {}).get("train_basins")


def pooled_point(n: str, folders: list[Path], what: str) -> dict:
    """The runs of point ``n`` as one results dict: fold by fold, the models of every run (each label once). They must
    be runs of that point: ``benchmark.train_basins`` = n (none for "all"), the same folds, training basins and seeds."""
    try:
        runs = [load_results(folder, what) for folder in folders]
    except FileNotFoundError as error:
        raise SystemExit(str(error)) from None
    expected = None if n == "all" else int(n)
    for folder, results in zip(folders, runs):
        if train_basins(results) != expected:
            raise SystemExit(f"{what}: {folder} was run with benchmark.train_basins={train_basins(results)}, not {expected} "
                             "(point 'all': without it)")
    first = runs[0]
    for folder, results in zip(folders[1:], runs[1:]):
        same_training = [f["split"].get("train_sites") for f in results["folds"]] == [f["split"].get("train_sites") for f in first["folds"]]
        if held_out_folds(results) != held_out_folds(first) or training_seeds(results) != training_seeds(first) or not same_training:
            raise SystemExit(f"{what}: {folder} has other folds (held-out or training basins, test period or training seeds) "
                             f"than {folders[0]}")
    folds = []
    for index, fold in enumerate(first["folds"]):
        models = {}
        for folder, results in zip(folders, runs):
            for label, entry in results["folds"][index]["models"].items():
                if label in models:
                    raise SystemExit(f"{what}: model {label!r} is in more than one of its runs ({folder}); pool runs of other models")
                models[label] = entry
        folds.append({**fold, "models": models})
    return {**first, "folds": folds}


def scarcity_table(points: dict[str, dict], references: list[str]) -> tuple[str, dict[str, dict[str, np.ndarray]]]:
    """Markdown: a row per point, a column per model (mean ± s.e.) and per (model, reference) pair (paired Δ)."""
    medians = {n: {label: fold_medians(results, label, "nse") for label in results["folds"][0]["models"]}
               for n, results in points.items()}
    labels = list(dict.fromkeys(label for per_model in medians.values() for label in per_model))
    for reference in references:
        if reference not in labels:
            raise SystemExit(f"--reference {reference!r}: no such model in these runs ({', '.join(labels)})")
    # each model against each reference, and two references against each other once
    pairs = [(label, ref) for r, ref in enumerate(references) for label in labels
             if label != ref and not (label in references and references.index(label) < r)]
    header = ["training basins per fold", *labels, *(f"Δ {label} vs {ref}" for label, ref in pairs)]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for n, per_model in medians.items():
        cells = [mean_se_cell(per_model[label]) if label in per_model else "n/a" for label in labels]
        cells += [delta_cell(delta_statistics(per_model[label], per_model[ref])) if label in per_model and ref in per_model
                  else "n/a" for label, ref in pairs]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines.append("\nMedian NSE over held-out basins, mean ± s.e. over folds (x training seeds); Δ: paired by fold, "
                 "(folds ahead / folds), 'tie' when within one standard error of zero.")
    return "\n".join(lines) + "\n", medians


def scarcity_figure(medians: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ticks = list(medians)
    labels = list(dict.fromkeys(label for per_model in medians.values() for label in per_model))
    for label in labels:
        values = [medians[n].get(label, np.array([np.nan])) for n in ticks]
        means = [np.nanmean(v) for v in values]
        errors = [np.nanstd(v, ddof=1) / np.sqrt(np.isfinite(v).sum()) if np.isfinite(v).sum() > 1 else 0.0 for v in values]
        ax.errorbar(range(len(ticks)), means, yerr=errors, marker="o", capsize=3, label=label)
    ax.set_xticks(range(len(ticks)), ticks)
    ax.set_xlabel("training basins per fold")
    ax.set_ylabel("median NSE, held-out basins")
    ax.set_title("mean ± s.e. over folds", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="N=DIR[,DIR]", help="training basins per fold (or 'all') = benchmark folder(s)")
    parser.add_argument("--reference", action="append", default=[], metavar="MODEL",
                        help="a model label to pair every other model against, by fold (repeatable)")
    parser.add_argument("--out", type=Path, required=True, help="folder for data_scarcity.md and data_scarcity.png")
    args = parser.parse_args(argv)
    points = {}
    for item in args.runs:
        n, equals, folders = item.partition("=")
        if not equals or not (n == "all" or n.isdigit()) or not folders:
            raise SystemExit(f"{item!r}: expected N=DIR[,DIR] with N a number of basins or 'all'")
        if n in points:
            raise SystemExit(f"{item!r}: point {n!r} is given twice; pool its runs as {n}=DIR,DIR")
        points[n] = pooled_point(n, [Path(f) for f in folders.split(",")], item)
    first_n, first = next(iter(points.items()))
    for n, results in points.items():
        if training_seeds(results) != training_seeds(first):
            raise SystemExit(f"point {n!r} was trained with seeds {training_seeds(results)}, point {first_n!r} with "
                             f"{training_seeds(first)}: compare points of the same training seeds")
        if held_out_folds(results) != held_out_folds(first):
            raise SystemExit(f"point {n!r} holds out other basins (or another test period) than point {first_n!r}: "
                             "a scarcity curve compares the same held-out basins")
    table, medians = scarcity_table(points, args.reference)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "data_scarcity.md").write_text(table)
    print(table)
    scarcity_figure(medians, args.out / "data_scarcity.png")


if __name__ == "__main__":
    main()
