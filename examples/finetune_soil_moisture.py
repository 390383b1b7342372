"""Finetune a resConn adapter for SMAP surface soil moisture on a pretrained StefaLand (Trainer; works under
`accelerate launch`).

    python examples/finetune_soil_moisture.py --base runs/pretrain_smap/model --data-dir ../shared/data/hydrodl_smap_conus
    python examples/finetune_soil_moisture.py --base stefaland-base --data-dir ../shared/data/hydrodl_smap_conus \\
        --fold 2 --push-to-hub ORG/NAME

SMAP targets are sparse (satellite revisit, about 42 % of days) and exist only for 2015-04-01..2017-03-31 in
the hydroDL CONUS data, so the defaults suit a short record: 180-day windows with 60 days of warm-up (no
loss on them), training windows with at least one observed day, training on 2015-04-01..2016-03-31 and
testing on 2016-04-01..2017-03-31. The default split is PUB over pixels (held-out pixels are never seen in
training or normalization, and are tested on the held-out year: a spatial and temporal hold-out at once).
``--split temporal`` validates on the last 20 % of the training period, which must hold at least one window
(``--seq-len``) on this short record: use e.g. ``--seq-len 60 --warmup 20``; ``--split pur`` holds out each
10-degree cell of pixels in turn (``--fold`` picks the cell). Metrics are computed per pixel on the observed
days only and summarised by the median over held-out pixels: RMSE, ubRMSE (m³/m³) and Pearson correlation.
Writes ``metrics_per_site.csv`` (every metric per pixel), ``metrics_summary.csv`` (medians), a CDF of the
per-pixel correlation (PNG), the adapter (or model, for `scratch`/`direct`) with its card.
"""

import argparse
from pathlib import Path

import numpy as np

from stefaland_hf.configuration_stefaland import FROZEN_BACKBONE_MODES
from stefaland_hf.experiments.plots import plot_metric_cdf
from stefaland_hf.hub.names import resolve_model_name
from stefaland_hf.hub.push import check_artifact_push, finish_artifact
from stefaland_hf.training.cli_args import (
    add_data_arguments,
    add_finetune_arguments,
    add_split_arguments,
    finetune_arguments_from_args,
    load_dataset_from_args,
    resolve_finetune_scale,
    split_from_args,
)
from stefaland_hf.training.finetune import finetune

SMAP_RECORD = ("2015-04-01", "2017-03-31")  # days with SMAP targets in the hydroDL CONUS data
REPORTED = (("rmse", "RMSE"), ("ubrmse", "ubRMSE"), ("pearson_r", "Corr"))


def summary_rows(per_site: dict, split_name: str, head_mode: str) -> list[dict]:
    """Median, mean and count over held-out pixels of RMSE, ubRMSE and Corr (finite values only)."""
    rows = []
    for key, label in REPORTED:
        values = np.asarray(per_site[key], dtype=float)
        values = values[np.isfinite(values)]
        rows.append(
            {
                "split": split_name,
                "head_mode": head_mode,
                "metric": label,
                "median": float(np.median(values)) if values.size else float("nan"),
                "mean": float(values.mean()) if values.size else float("nan"),
                "n_pixels": int(values.size),
            }
        )
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_finetune_arguments(parser, "runs/finetune_soil_moisture", seq_len=180, warmup=60)
    add_data_arguments(parser)
    add_split_arguments(parser)
    parser.set_defaults(dataset="hydrodl_smap")
    return parser


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    check_artifact_push(args.push_to_hub, args.base, adapter=args.head_mode in FROZEN_BACKBONE_MODES)  # fail now, not after training
    resolve_finetune_scale(args)

    dataset = load_dataset_from_args(args)
    split = split_from_args(args, dataset)
    for part in ("train", "val", "test"):
        period = split.period(part)
        if period is not None and not (SMAP_RECORD[0] <= str(period[0]) and str(period[1]) <= SMAP_RECORD[1]):
            print(f"warning: {part} period {period} reaches outside the SMAP record {SMAP_RECORD}: days there have no target")
    for part in ("train", "val"):
        period = split.period(part)
        if period is not None and not isinstance(period[0], (int, np.integer)):
            days = int((np.datetime64(period[1], "D") - np.datetime64(period[0], "D")).astype(int)) + 1
            if days < args.seq_len:
                parser.error(f"the {part} period {tuple(str(p) for p in period)} has {days} days, fewer than --seq-len {args.seq_len}")
    base = resolve_model_name(args.base)
    report = finetune(
        base,
        dataset,
        split,
        finetune_arguments_from_args(args, ["soil_moisture"]),
    )
    evaluation = report["evaluation"]
    out = Path(args.output_dir)
    rows = summary_rows(evaluation["per_site"], split.name, args.head_mode)
    import pandas as pd

    pd.DataFrame(rows).to_csv(out / "metrics_summary.csv", index=False)
    plot_metric_cdf({args.head_mode: evaluation["per_site"]["pearson_r"]}, out / "corr_cdf.png", metric="Corr")
    observed = int(np.isfinite(evaluation["observations"]).sum())
    medians = ", ".join(f"{r['metric']} {r['median']:.4f}" for r in rows)
    print(f"held-out pixels ({split.name}, {rows[0]['n_pixels']} pixels, {observed} observed pixel-days): median {medians} (m³/m³ for RMSE/ubRMSE)")
    url = finish_artifact(report, dataset_name=args.dataset, base_model=str(args.base), push_to_hub=args.push_to_hub)
    if url:
        print(f"pushed: {url}")


if __name__ == "__main__":
    main()
