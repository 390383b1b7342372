"""The data-scarcity curve (the paper's central claim): held-out median NSE against the number of training basins.

Each point is one ``stefaland benchmark pub`` run with ``--set benchmark.train_basins=N`` (the same folds, held-out and
validation basins; nested training basins), or without it for "all". Per model: mean over folds (x training seeds) of
the median NSE over held-out basins, ± standard error. Writes a table (markdown) and a figure.

    for n in 25 50 100 200; do stefaland benchmark pub ... --set benchmark.train_basins=$n --out runs/scarcity/$n; done
    python benchmarks/data_scarcity.py 25=runs/scarcity/25 50=runs/scarcity/50 all=runs/scarcity/all --out runs/scarcity
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from stefaland_hf.experiments.benchmark import mean_se_cell
from stefaland_hf.experiments.plots import _pyplot


def fold_medians(folder: Path) -> dict[str, list[float]]:
    """Median NSE per (seed, fold) of each model of a benchmark folder (one run, or seed_N runs of several seeds)."""
    files = [folder / "results.json"] if (folder / "results.json").is_file() else sorted(folder.glob("seed_*/results.json"))
    if not files:
        raise SystemExit(f"{folder}: no results.json (nor seed_*/results.json): not a finished benchmark")
    medians: dict[str, list[float]] = {}
    for path in files:
        for fold in json.loads(path.read_text())["folds"]:
            for label, entry in fold["models"].items():
                value = entry["summary"].get("nse")
                medians.setdefault(label, []).append(np.nan if value is None else value)
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="N=DIR", help="training basins per fold (or 'all') = benchmark folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for data_scarcity.md and data_scarcity.png")
    args = parser.parse_args()
    points = {}
    for item in args.runs:
        n, equals, folder = item.partition("=")
        if not equals or not (n == "all" or n.isdigit()):
            raise SystemExit(f"{item!r}: expected N=DIR with N a number of basins or 'all'")
        points[n] = fold_medians(Path(folder))
    labels = list(dict.fromkeys(label for medians in points.values() for label in medians))
    lines = ["| training basins per fold | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    lines += [f"| {n} | " + " | ".join(mean_se_cell(m.get(label, [])) for label in labels) + " |" for n, m in points.items()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "data_scarcity.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ticks = list(points)
    for label in labels:
        means = [np.nanmean(points[n][label]) if label in points[n] else np.nan for n in ticks]
        ax.plot(range(len(ticks)), means, marker="o", label=label)
    ax.set_xticks(range(len(ticks)), ticks)
    ax.set_xlabel("training basins per fold")
    ax.set_ylabel("median NSE, held-out basins (mean over folds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out / "data_scarcity.png", dpi=120)


if __name__ == "__main__":
    main()
