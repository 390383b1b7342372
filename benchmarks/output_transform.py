"""How streamflow predictions should respect streamflow >= 0: no transform, clipping, or a softplus output.

On the split and pretrained base of a finished `stefaland demo` run, the resConn adapter and the LSTM baseline
are trained with the demo's settings twice: with ``output_transform="none"`` (the loss of ``"clamp"`` is the same,
so clipping its predictions at 0 gives the ``"clamp"`` row without another training) and with ``"softplus"``.
Prints median NSE/KGE/RMSE over the held-out sites and how many predicted days were negative.

    python benchmarks/output_transform.py --demo stefaland-demo
"""

import argparse
from pathlib import Path

import numpy as np

from stefaland_hf.experiments.demo import finetune_arguments, load_finished_demo
from stefaland_hf.metrics import site_metrics, summarize
from stefaland_hf.training.finetune import finetune


def _row(label: str, observed: np.ndarray, predicted: np.ndarray, seconds: float) -> str:
    summary = summarize(site_metrics(observed, predicted, metrics=("nse", "kge", "rmse")))
    negative = float(np.mean(predicted[np.isfinite(predicted)] < 0))
    return f"| {label} | {summary['nse']:.3f} | {summary['kge']:.3f} | {summary['rmse']:.3f} | {100 * negative:.1f} % | {seconds:.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", required=True, help="output folder of `stefaland demo`")
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()

    demo = Path(args.demo)
    preset, dataset, split = load_finished_demo(demo, args.cache_dir)
    rows = []
    for mode in ("resconn", "direct"):
        for transform in ("none", "softplus"):
            folder = demo / "output_transform" / f"{mode}_{transform}"
            finetune_args = finetune_arguments(
                preset, folder, mode, disable_tqdm=True, embedding_cache_dir=str(demo / "output_transform" / "cache"), output_transform=transform, overwrite=True
            )
            result = finetune(demo / "pretraining" / "model", dataset, split, finetune_args)
            evaluation = result["evaluation"]
            observed, predicted = evaluation["observations"][..., 0], evaluation["predictions"][..., 0]
            rows.append(_row(f"{mode}, {transform} ({result['steps']} steps)", observed, predicted, result["train_seconds"]))
            if transform == "none":
                rows.append(_row(f"{mode}, clamp (the same training, clipped at 0)", observed, np.maximum(predicted, 0.0), result["train_seconds"]))
    print("\n| model, output transform | median NSE | median KGE | median RMSE (mm/day) | negative days | train s |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
