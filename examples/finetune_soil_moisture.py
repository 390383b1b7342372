"""Finetune a resConn adapter for SMAP surface soil moisture on a pretrained StefaLand (Trainer; works under
`accelerate launch`).

    python examples/finetune_soil_moisture.py --base runs/pretrain_smap/model --data-dir ../shared/data/hydrodl_smap_conus
    python examples/finetune_soil_moisture.py --base stefaland-conus --data-dir ../shared/data/hydrodl_smap_conus \\
        --fold 2 --push-to-hub --hub-model-id ORG/NAME

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

import sys
from pathlib import Path

from stefaland_cli.scripts import run_script

SMAP_RECORD = ("2015-04-01", "2017-03-31")  # days with SMAP targets in the hydroDL CONUS data
REPORTED = (("rmse", "RMSE"), ("ubrmse", "ubRMSE"), ("pearson_r", "Corr"))
# the options --help shows (--help-all: every option, TrainingArguments' among them)
MAIN_OPTIONS = ("base", "data_dir", "split", "fold", "head_mode", "output_dir", "max_steps", "learning_rate", "seq_len", "warmup",
                "paper_scale", "push_to_hub", "hub_model_id")


def summary_rows(per_site: dict, split_name: str, head_mode: str) -> list[dict]:
    """Median, mean and count over held-out pixels of RMSE, ubRMSE and Corr (finite values only)."""
    import numpy as np

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


def build_parser():
    from stefaland_hf.training.arguments import finetune_parser

    return finetune_parser(__doc__, "runs/finetune_soil_moisture", ["soil_moisture"], seq_len=180, warmup=60, dataset="hydrodl_smap")


def main(argv: list[str] | None = None) -> None:
    import numpy as np
    import pandas as pd

    from stefaland_hf.configuration_stefaland import FROZEN_BACKBONE_MODES
    from stefaland_hf.experiments.plots import plot_metric_cdf
    from stefaland_hf.hub.names import resolve_model_name
    from stefaland_hf.hub.push import check_artifact_push, finish_artifact
    from stefaland_hf.training.arguments import parse_finetune_args
    from stefaland_hf.training.finetune import finetune

    training, data, split_arguments, other = parse_finetune_args(build_parser(), argv)
    push_repo = training.push_repo()
    check_artifact_push(push_repo, other.base, adapter=training.head_mode in FROZEN_BACKBONE_MODES)  # fail now, not after training
    base = resolve_model_name(other.base)  # so does an unknown model name

    dataset = data.load()
    split = split_arguments.build(dataset, data.dataset, training.seed)
    for part in ("train", "val", "test"):
        period = split.period(part)
        if period is not None and not (SMAP_RECORD[0] <= str(period[0]) and str(period[1]) <= SMAP_RECORD[1]):
            print(f"warning: {part} period {period} reaches outside the SMAP record {SMAP_RECORD}: days there have no target")
    for part in ("train", "val"):
        period = split.period(part)
        if period is not None and not isinstance(period[0], (int, np.integer)):
            days = int((np.datetime64(period[1], "D") - np.datetime64(period[0], "D")).astype(int)) + 1
            if days < training.seq_len:
                raise ValueError(f"the {part} period {tuple(str(p) for p in period)} has {days} days, fewer than --seq-len {training.seq_len}")
    report = finetune(base, dataset, split, training)
    evaluation = report["evaluation"]
    out = Path(training.output_dir)
    rows = summary_rows(evaluation["per_site"], split.name, training.head_mode)
    pd.DataFrame(rows).to_csv(out / "metrics_summary.csv", index=False)
    plot_metric_cdf({training.head_mode: evaluation["per_site"]["pearson_r"]}, out / "corr_cdf.png", metric="Corr")
    observed = int(np.isfinite(evaluation["observations"]).sum())
    medians = ", ".join(f"{r['metric']} {r['median']:.4f}" for r in rows)
    print(f"held-out pixels ({split.name}, {rows[0]['n_pixels']} pixels, {observed} observed pixel-days): median {medians} (m³/m³ for RMSE/ubRMSE)")
    url = finish_artifact(report, dataset_name=data.dataset, base_model=str(other.base), push_to_hub=push_repo,
                          private=bool(training.hub_private_repo))
    if url:
        print(f"pushed: {url}")


if __name__ == "__main__":
    sys.exit(run_script(sys.modules[__name__]))
