"""Finetune a resConn adapter for streamflow on a pretrained StefaLand (Trainer; works under `accelerate launch`).

    python examples/finetune_streamflow.py --dataset camels_us --data-dir ../shared/data/camels_us   # base: stefaland-conus
    python examples/finetune_streamflow.py --base runs/pretrain/model                 # SynthLand, PUB fold 0
    accelerate launch examples/finetune_streamflow.py \\
        --dataset camels_us --data-dir ../shared/data/camels_us --split pur --fold 2

Held-out sites (PUB fold, PUR region group) or the held-out period (temporal) are never seen in
training or normalization. Writes per-site metrics (CSV), an NSE CDF and hydrographs (PNG), the
adapter (or model, for `scratch`/`direct`) with its card.
"""

import argparse
from pathlib import Path

from stefaland_hf.configuration_stefaland import FROZEN_BACKBONE_MODES
from stefaland_hf.zoo import RELEASE_MODEL
from stefaland_hf.experiments.plots import plot_hydrographs, plot_metric_cdf
from stefaland_hf.hub.names import resolve_model_name
from stefaland_hf.hub.push import check_artifact_push, finish_artifact
from stefaland_hf.training.cli_args import (
    add_data_arguments,
    add_finetune_arguments,
    add_split_arguments,
    finetune_arguments_from_args,
    load_dataset_from_args,
    split_from_args,
)
from stefaland_hf.training.finetune import finetune


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_finetune_arguments(parser, "runs/finetune_streamflow", default_base=RELEASE_MODEL)
    add_data_arguments(parser)
    add_split_arguments(parser)
    return parser


def main() -> None:
    args = build_parser().parse_args()
    check_artifact_push(args.push_to_hub, args.base, adapter=args.head_mode in FROZEN_BACKBONE_MODES)  # fail now, not after training

    dataset = load_dataset_from_args(args)
    split = split_from_args(args, dataset)
    base = resolve_model_name(args.base)
    report = finetune(
        base,
        dataset,
        split,
        finetune_arguments_from_args(args, ["streamflow"]),
    )
    evaluation = report["evaluation"]
    out = Path(args.output_dir)
    plot_metric_cdf({args.head_mode: evaluation["per_site"]["nse"]}, out / "nse_cdf.png")
    plot_hydrographs(evaluation["dates"], evaluation["observations"][..., 0], {args.head_mode: evaluation["predictions"][..., 0]}, evaluation["site_ids"], out / "hydrographs.png")
    summary = report["summary"]
    print(f"held-out sites ({split.name}): median NSE {summary['nse']:.3f}, KGE {summary['kge']:.3f}, RMSE {summary['rmse']:.3f} mm/day")
    url = finish_artifact(report, dataset_name=args.dataset, base_model=str(args.base), push_to_hub=args.push_to_hub)
    if url:
        print(f"pushed: {url}")


if __name__ == "__main__":
    main()
