"""Soil texture (sand and clay fractions) from forcings + the other static attributes: k-fold CV over sites,
StefaLand static regression side by side with a random forest on the same information.

    python examples/finetune_soil_texture.py --base runs/pretrain/model                        # SynthLand
    python examples/finetune_soil_texture.py --base stefaland-conus --dataset camels_us --data-dir ../shared/data/camels_us \
        --extra-data-dir DIR/camels_us_ungauged --ungauged DIR/camels_us_ungauged/basin_list.txt    # 670 CAMELS basins

The targets are hidden from the model's input (and left out of the forest's features). By default the
attributes computed from texture are hidden too (``--hide derived``: silt = 1 - sand - clay; soil porosity
and conductivity are pedotransfer regressions on sand and clay in CAMELS and SynthLand; max water content
= depth x porosity); ``--hide none`` keeps them as inputs. Each fold fits the label normalization (and the
forest's NaN imputation) on its training sites only. Prints model x target x (R², Corr), mean ± standard
error over folds; writes ``summary.csv``, ``summary.json``, ``scores.csv`` (per fold), ``predictions.csv``
(per site) and ``report.json`` to ``--output-dir``.

The frozen modes reuse the base's input normalization and weights: a base pretrained on the very sites
being cross-validated has reconstructed their (masked) texture during pretraining. For a clean estimate
pretrain on other sites, e.g. SynthLand with another seed (``load_site_dataset("synthland", seed=1)``).
"""

import argparse
import json
from pathlib import Path

from stefaland_hf.configuration_stefaland import HEAD_MODES
from stefaland_hf.hub.names import resolve_model_name
from stefaland_hf.training.cli_args import add_data_arguments, load_dataset_from_args
from stefaland_hf.training.static_regression import DEFAULT_TARGETS, TEXTURE_DERIVED, StaticRegressionArguments, cross_validate_static

MODEL_LABELS = {"stefaland": "StefaLand", "random_forest": "Random forest"}


def hidden_from_args(values: list[str], targets: list[str]) -> list[str]:
    names = []
    for value in values:
        if value == "none":
            continue
        names.extend(TEXTURE_DERIVED if value == "derived" else [value])
    return [n for n in dict.fromkeys(names) if n not in targets]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="pretrained model: folder, Hub id, or short name (stefaland-base)")
    parser.add_argument("--output-dir", default="runs/finetune_soil_texture", help="run folder (default: runs/finetune_soil_texture)")
    parser.add_argument("--targets", nargs="+", default=list(DEFAULT_TARGETS), help=f"static attributes to predict (default: {' '.join(DEFAULT_TARGETS)})")
    parser.add_argument("--hide", nargs="+", default=["derived"], help="more static inputs to hide: names, 'derived' (texture-derived attributes) or 'none'")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds over sites")
    parser.add_argument("--seed", type=int, default=111, help="draws the folds and the training randomness")
    parser.add_argument("--period", nargs=2, metavar=("START", "END"), default=None, help="period the forcing windows are drawn from (default: whole record)")
    parser.add_argument("--head-mode", choices=HEAD_MODES, default="resconn", help="resconn (frozen encoder), linear_probe, scratch or direct (no encoder)")
    parser.add_argument("--seq-len", type=int, default=365, help="days per forcing window")
    parser.add_argument("--samples-per-site", type=int, default=8, help="random training windows per site and epoch")
    parser.add_argument("--eval-windows", type=int, default=4, help="windows averaged per held-out site")
    parser.add_argument("--batch-size", type=int, default=32, help="windows per step")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="AdamW learning rate, constant")
    parser.add_argument("--max-steps", type=int, default=500, help="step cap; early stopping usually ends sooner")
    parser.add_argument("--eval-steps", type=int, default=50, help="steps between validations")
    parser.add_argument("--patience", type=int, default=4, help="early stopping patience in evaluations")
    parser.add_argument("--head-hidden-size", type=int, default=128, help="width of the head's MLP")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="fraction of the training sites used for early stopping")
    parser.add_argument("--rf-trees", type=int, default=300, help="trees of the random-forest baseline")
    parser.add_argument("--no-random-forest", action="store_true", help="skip the random-forest baseline")
    parser.add_argument("--no-save-models", action="store_true", help="do not save each fold's model")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier cross-validation in --output-dir")
    add_data_arguments(parser, periods=False)
    return parser


def main() -> None:
    args = build_parser().parse_args()

    dataset = load_dataset_from_args(args)
    base = resolve_model_name(args.base)
    result = cross_validate_static(
        base,
        dataset,
        args.targets,
        folds=args.folds,
        seed=args.seed,
        args=StaticRegressionArguments(
            output_dir=args.output_dir,
            head_mode=args.head_mode,
            seq_len=args.seq_len,
            samples_per_site=args.samples_per_site,
            eval_windows=args.eval_windows,
            period=tuple(args.period) if args.period else None,
            hidden_variables=hidden_from_args(args.hide, args.targets),
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            max_steps=args.max_steps,
            eval_steps=args.eval_steps,
            patience=args.patience,
            head_hidden_size=args.head_hidden_size,
            val_fraction=args.val_fraction,
            seed=args.seed,
            save_models=not args.no_save_models,
            overwrite=args.overwrite,
        ),
        random_forest=not args.no_random_forest,
        rf_params={"n_estimators": args.rf_trees},
    )

    rows = []
    for model in result["models"]:
        label = MODEL_LABELS[model] + (f" ({result['head_mode']})" if model == "stefaland" else "")
        for target in result["targets"]:
            s = result["summary"][model][target]
            rows.append({"model": label, "target": target, **s})
    hidden = result["arguments"]["hidden_variables"]
    print(f"\n{args.folds}-fold CV over {len(result['predictions']['site_ids'])} sites ({args.dataset}); hidden inputs: targets + {hidden or 'nothing'}")
    print(f"{'model':<22} {'target':<15} {'R²':>16} {'Corr':>16}")
    for r in rows:
        print(f"{r['model']:<22} {r['target']:<15} {r['r2_mean']:>8.3f} ± {r['r2_se']:<5.3f} {r['pearson_r_mean']:>8.3f} ± {r['pearson_r_se']:<5.3f}")

    import pandas as pd

    out = Path(args.output_dir)
    pd.DataFrame(rows).to_csv(out / "summary.csv", index=False)
    (out / "summary.json").write_text(json.dumps({"dataset": args.dataset, "base": str(args.base), "hidden_variables": hidden, "rows": rows}, indent=1))
    print(f"wrote {out / 'summary.csv'}, {out / 'scores.csv'}, {out / 'predictions.csv'}")


if __name__ == "__main__":
    main()
