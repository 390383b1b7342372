"""How far the pretrained model's normalization is from the one each fold would fit on its own training basins.

A frozen-encoder model (resConn, no adapter, linear probe) z-scores its inputs with the statistics stored at
pretraining (e.g. all basins of a ``--pretrain-on all`` run), while the LSTM baseline and ``scratch`` fit
them on the fold's training basins. This prints, per fold, the largest shift of a mean (in pretraining
standard deviations) and the range of std ratios, to see whether that difference could matter.

Usage::

    python benchmarks/normalization_shift.py --base runs/benchmark_pub/pretraining/model \\
        --data-dir ../shared/data/camels_us [--folds 5] [--seed 111] [--kind pub]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from stefaland_hf.data import load_site_dataset
from stefaland_hf.data.normalization import fit_normalization
from stefaland_hf.experiments.benchmark import PRESETS, benchmark_preset, make_splits


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, type=Path, help="pretrained model folder (holds normalization.json)")
    parser.add_argument("--data-dir", required=True, help="raw CAMELS-US folder")
    parser.add_argument("--kind", choices=["pub", "pur"], default="pub")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=111)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu-quick")
    args = parser.parse_args(argv)

    stored = json.loads((args.base / "normalization.json").read_text())
    dataset = load_site_dataset("camels_us", data_dir=args.data_dir)
    names = {kind: stored[f"{kind}_variables"] for kind in ("dynamic", "static")}
    print("| fold | inputs | largest mean shift (pretraining stds) | std ratio fold / pretraining |")
    print("|---|---|---|---|")
    periods = benchmark_preset(args.preset)["benchmark"]
    for index, split in enumerate(make_splits(args.kind, dataset, args.folds, args.seed, periods["train_period"], periods["test_period"])):
        fold = fit_normalization(dataset, split.sites("train"), split.period("train"), names["dynamic"], names["static"], target_variables=[])
        for kind in ("dynamic", "static"):
            mean, std = np.asarray(stored[f"{kind}_mean"]), np.asarray(stored[f"{kind}_std"])
            shift = np.abs(np.asarray(getattr(fold, f"{kind}_mean")) - mean) / std
            ratio = np.asarray(getattr(fold, f"{kind}_std")) / std
            worst = names[kind][int(shift.argmax())]
            print(f"| {index} | {kind} | {shift.max():.3f} ({worst}) | {ratio.min():.3f}–{ratio.max():.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
