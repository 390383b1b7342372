"""Finetune a resConn adapter for streamflow on a pretrained StefaLand (Trainer; works under `accelerate launch`).

    python examples/finetune_streamflow.py --dataset camels_us --data-dir ../shared/data/camels_us   # base: stefaland-conus
    python examples/finetune_streamflow.py --base runs/pretrain/model                 # SynthLand, PUB fold 0
    accelerate launch examples/finetune_streamflow.py \\
        --dataset camels_us --data-dir ../shared/data/camels_us --split pur --fold 2

Held-out sites (PUB fold, PUR region group) or the held-out period (temporal) are never seen in
training or normalization. Writes per-site metrics (CSV), an NSE CDF and hydrographs (PNG), the
adapter (or model, for `scratch`/`direct`) with its card. Every option of `transformers.TrainingArguments`
applies (`--learning-rate`, `--per-device-train-batch-size`, ...); `--push-to-hub --hub-model-id ORG/NAME`
pushes the finished adapter with its card.
"""

import sys
from pathlib import Path

from stefaland_cli.scripts import run_script

# the options --help shows (--help-all: every option, TrainingArguments' among them)
MAIN_OPTIONS = ("base", "dataset", "data_dir", "split", "fold", "head_mode", "output_dir", "max_steps", "learning_rate",
                "seq_len", "paper_scale", "push_to_hub", "hub_model_id")


def build_parser():
    from stefaland_hf.training.arguments import finetune_parser
    from stefaland_hf.zoo import RELEASE_MODEL

    return finetune_parser(__doc__, "runs/finetune_streamflow", ["streamflow"], default_base=RELEASE_MODEL)


def main(argv: list[str] | None = None) -> None:
    from stefaland_hf.configuration_stefaland import FROZEN_BACKBONE_MODES
    from stefaland_hf.experiments.plots import plot_hydrographs, plot_metric_cdf
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
    report = finetune(base, dataset, split, training)
    evaluation = report["evaluation"]
    out = Path(training.output_dir)
    plot_metric_cdf({training.head_mode: evaluation["per_site"]["nse"]}, out / "nse_cdf.png")
    plot_hydrographs(evaluation["dates"], evaluation["observations"][..., 0], {training.head_mode: evaluation["predictions"][..., 0]}, evaluation["site_ids"], out / "hydrographs.png")
    summary = report["summary"]
    print(f"held-out sites ({split.name}): median NSE {summary['nse']:.3f}, KGE {summary['kge']:.3f}, RMSE {summary['rmse']:.3f} mm/day")
    url = finish_artifact(report, dataset_name=data.dataset, base_model=str(other.base), push_to_hub=push_repo,
                          private=bool(training.hub_private_repo))
    if url:
        print(f"pushed: {url}")


if __name__ == "__main__":
    sys.exit(run_script(sys.modules[__name__]))
