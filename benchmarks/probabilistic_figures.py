"""The figures of docs/probabilistic.md from a benchmark folder with probabilistic models (``MODEL+cmal``,
``MODEL+quantile``, ``MODEL+mc_dropout``, or ``--set finetune.output_distribution=...``): a hydrograph of one held-out
basin with each model's 50 % and 90 % bands, and the reliability diagram (the observed share of days at or below each
predicted quantile, pooled over held-out basins, folds and seeds, against the quantile's level).

    python benchmarks/probabilistic_figures.py --run runs/pub_probabilistic --out docs/figures/probabilistic [--basin ID] [--days 365]

``--run`` is the benchmark's --out (results.json, or seed_N/results.json of --training-seeds); the bands come from the
``test_quantiles*.npz`` files finetuning writes beside each model. The basin (default: the held-out basin of fold 0 of
the first seed whose NSE under the first probabilistic model is the median of that fold) and the days drawn (default:
the first ``--days`` of the test period) are printed.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from stefaland_hf.experiments.plots import _pyplot

QUANTILE_FILE, MC_DROPOUT_FILE = "test_quantiles.npz", "test_quantiles_mc_dropout.npz"  # training.finetune's names


def seed_folders(run: Path) -> list[Path]:
    """The folders holding a results.json: the run itself, or its seed_N folders in seed order."""
    if (run / "results.json").is_file():
        return [run]
    folders = sorted(run.glob("seed_*/results.json"), key=lambda p: int(p.parent.name.removeprefix("seed_")))
    if not folders:
        raise FileNotFoundError(f"--run {run}: neither results.json nor seed_N/results.json (has the benchmark finished?)")
    return [p.parent for p in folders]


def probabilistic_models(results: dict) -> list[str]:
    """The labels of the models scored as distributions (those with a reliability entry), in the table's order."""
    models = results["folds"][0]["models"]
    return [label for label, entry in models.items() if entry.get("reliability")]


def series_file(folder: Path, fold: int, entry: dict) -> Path:
    """The npz of a model's test series; an MC dropout entry's lies in the folder of the point model it scored."""
    name = MC_DROPOUT_FILE if entry["model"].endswith("+mc_dropout") else QUANTILE_FILE
    return folder / "folds" / f"fold_{fold}" / (entry.get("trained_with") or entry["model"]) / name


def pooled_reliability(folders: list[Path], label: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(levels, observed share at or below each, days) of one model over every fold of every seed folder."""
    total, days, levels = None, 0, None
    for folder in folders:
        for fold in json.loads((folder / "results.json").read_text())["folds"]:
            r = fold["models"][label]["reliability"]
            if not r["observed_days"]:
                continue
            weighted = np.asarray(r["fraction_below"]) * r["observed_days"]
            total, days, levels = weighted if total is None else total + weighted, days + r["observed_days"], np.asarray(r["levels"])
    return levels, total / days, days


def plot_reliability(folders: list[Path], labels: list[str], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="calibrated")
    for label in labels:
        levels, share, days = pooled_reliability(folders, label)
        ax.plot(levels, share, marker=".", ms=4, lw=1.2, label=f"{label} ({days:,} days)")
        print(f"{label}: at or below the 5 % / 95 % quantile on {share[np.argmin(abs(levels - 0.05))]:.3f} / "
              f"{share[np.argmin(abs(levels - 0.95))]:.3f} of {days:,} observed held-out days")
    ax.set_xlabel("quantile level")
    ax.set_ylabel("observed share at or below the quantile")
    ax.set_title("Reliability over held-out basins", fontsize=9, loc="left")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def median_basin(folder: Path, label: str) -> str:
    """The held-out basin of fold 0 whose NSE under ``label`` is that fold's median (the lower middle one)."""
    per_basin = json.loads((folder / "results.json").read_text())["folds"][0]["models"][label]["per_basin"]
    scored = sorted((values["nse"], site) for site, values in per_basin.items() if values.get("nse") is not None)
    if not scored:
        raise ValueError(f"{folder}: fold 0 has no held-out basin with an NSE under {label!r}")
    return scored[(len(scored) - 1) // 2][1]


def plot_hydrograph(folder: Path, labels: list[str], basin: str | None, days: int, path: Path) -> None:
    results = json.loads((folder / "results.json").read_text())
    basin = basin or median_basin(folder, labels[0])
    fold = next((f for f in results["folds"] if basin in f["models"][labels[0]]["per_basin"]), None)
    if fold is None:
        raise ValueError(f"--basin {basin}: held out in no fold of {folder}")
    plt = _pyplot()
    fig, axes = plt.subplots(len(labels), 1, figsize=(11, 2.8 * len(labels)), sharex=True, squeeze=False)
    for ax, label in zip(axes[:, 0], labels):
        entry = fold["models"][label]
        with np.load(series_file(folder, fold["fold"], entry)) as series:
            i = list(series["site_ids"]).index(basin)
            window = slice(0, days)
            dates, observed, predicted = series["dates"][window], series["observations"][i, window], series["prediction"][i, window]
            bounds = {float(level): series["quantiles"][i, window, k] for k, level in enumerate(series["levels"])}
        ax.fill_between(dates, bounds[0.05], bounds[0.95], color="tab:blue", alpha=0.2, lw=0, label="90 % interval")
        ax.fill_between(dates, bounds[0.25], bounds[0.75], color="tab:blue", alpha=0.4, lw=0, label="50 % interval")
        ax.plot(dates, predicted, color="tab:blue", lw=0.9, label="mean")
        ax.plot(dates, observed, color="black", lw=0.8, label="observed")
        nse, crps, coverage = (entry["per_basin"][basin].get(k) for k in ("nse", "crps", "coverage_90"))
        scores = ", ".join(f"{name} {value:.2f}" for name, value in (("NSE", nse), ("CRPS", crps), ("90 % coverage", coverage)) if value is not None)
        ax.set_title(f"{label}: basin {basin} (held out in fold {fold['fold']}); over the test period {scores}", fontsize=9, loc="left")
        ax.set_ylabel("streamflow (mm/day)", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right", ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"hydrograph: basin {basin}, fold {fold['fold']} of {folder}, the first {days} days of the test period")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="benchmark output folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for hydrograph_bands.png and reliability.png")
    parser.add_argument("--basin", default=None, help="held-out basin of the hydrograph (default: fold 0's median-NSE basin)")
    parser.add_argument("--days", type=int, default=365, help="days of the test period drawn, from its start")
    args = parser.parse_args(argv)
    folders = seed_folders(args.run)
    labels = probabilistic_models(json.loads((folders[0] / "results.json").read_text()))
    if not labels:
        raise SystemExit(f"--run {args.run}: no probabilistic model (MODEL+cmal, MODEL+quantile, MODEL+mc_dropout) in its results")
    args.out.mkdir(parents=True, exist_ok=True)
    plot_hydrograph(folders[0], labels, args.basin, args.days, args.out / "hydrograph_bands.png")
    plot_reliability(folders, labels, args.out / "reliability.png")
    print(f"wrote {args.out / 'hydrograph_bands.png'} and {args.out / 'reliability.png'}")


if __name__ == "__main__":
    main()
