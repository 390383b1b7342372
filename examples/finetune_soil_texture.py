"""Soil texture (sand and clay fractions) from forcings + the other static attributes: k-fold CV over sites,
StefaLand static regression side by side with a random forest on the same information.

    python examples/finetune_soil_texture.py --base runs/pretrain/model                        # SynthLand
    python examples/finetune_soil_texture.py --base stefaland-conus --dataset camels_us --data-dir ../shared/data/camels_us \
        --extra-data-dir DIR/camels_us_ungauged --ungauged DIR/camels_us_ungauged/basin_list.txt    # 670 CAMELS basins

The targets are hidden from the model's input (and left out of the forest's features). By default the
attributes computed from texture are hidden too (``--hidden-variables derived``: silt = 1 - sand - clay; soil porosity
and conductivity are pedotransfer regressions on sand and clay in CAMELS and SynthLand; max water content
= depth x porosity); ``--hidden-variables none`` keeps them as inputs. Each fold fits the label normalization (and the
forest's NaN imputation) on its training sites only. Prints model x target x (R², Corr), mean ± standard
error over folds; writes ``summary.csv``, ``summary.json``, ``scores.csv`` (per fold), ``predictions.csv``
(per site) and ``report.json`` to ``--output-dir``.

The frozen modes reuse the base's input normalization and weights: a base pretrained on the very sites
being cross-validated has reconstructed their (masked) texture during pretraining. For a clean estimate
pretrain on other sites, e.g. SynthLand with another seed (``load_site_dataset("synthland", seed=1)``).
"""

import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from stefaland_cli.scripts import run_script

MODEL_LABELS = {"stefaland": "StefaLand", "random_forest": "Random forest"}
# the options --help shows (--help-all: every option, TrainingArguments' among them)
MAIN_OPTIONS = ("base", "dataset", "data_dir", "targets", "hidden_variables", "folds", "head_mode", "output_dir", "max_steps",
                "rf_trees", "random_forest", "seed")


def _default_targets() -> list[str]:
    from stefaland_hf.experiments.soil_texture import DEFAULT_TARGETS

    return list(DEFAULT_TARGETS)


@dataclass
class SoilTextureArguments:
    """What this cross-validation compares, beside the model's training arguments."""

    base: str = field(metadata={"help": "pretrained model: folder, Hub id, or short name (stefaland-conus)"})
    targets: list[str] = field(default_factory=_default_targets, metadata={"help": "static attributes to predict"})
    folds: int = field(default=5, metadata={"help": "cross-validation folds over sites (--seed draws them and the training randomness)"})
    rf_trees: int = field(default=300, metadata={"help": "trees of the random-forest baseline"})
    random_forest: bool = field(default=True, metadata={"help": "run the random-forest baseline"})


def expand_hidden(values: list[str], targets: list[str]) -> list[str]:
    """``--hidden-variables``: names, 'derived' (the texture-derived attributes) or 'none'; the targets are hidden anyway."""
    from stefaland_hf.experiments.soil_texture import TEXTURE_DERIVED

    names = []
    for value in values:
        if value == "none":
            continue
        names.extend(TEXTURE_DERIVED if value == "derived" else [value])
    return [n for n in dict.fromkeys(names) if n not in targets]


def build_parser():
    from transformers import HfArgumentParser

    from stefaland_hf.training.arguments import DataArguments, HelpFormatter
    from stefaland_hf.training.static_regression import StaticRegressionArguments

    parser = HfArgumentParser((StaticRegressionArguments, DataArguments, SoilTextureArguments), description=__doc__,
                              formatter_class=HelpFormatter, usage="%(prog)s [options]")
    parser.set_defaults(output_dir="runs/finetune_soil_texture", hidden_variables=["derived"])
    return parser


def main(argv: list[str] | None = None) -> None:
    import pandas as pd

    from stefaland_hf.experiments.soil_texture import cross_validate_static
    from stefaland_hf.hub.names import resolve_model_name

    training, data, texture = build_parser().parse_args_into_dataclasses(args=argv, look_for_args_file=False)
    training = replace(training, hidden_variables=expand_hidden(training.hidden_variables, texture.targets))
    base = resolve_model_name(texture.base)  # an unknown model name fails before the data are built

    dataset = data.load()
    result = cross_validate_static(
        base,
        dataset,
        texture.targets,
        folds=texture.folds,
        seed=training.seed,
        args=training,
        random_forest=texture.random_forest,
        rf_params={"n_estimators": texture.rf_trees},
    )

    rows = []
    for model in result["models"]:
        label = MODEL_LABELS[model] + (f" ({result['head_mode']})" if model == "stefaland" else "")
        for target in result["targets"]:
            s = result["summary"][model][target]
            rows.append({"model": label, "target": target, **s})
    hidden = result["arguments"]["hidden_variables"]
    print(f"\n{texture.folds}-fold CV over {len(result['predictions']['site_ids'])} sites ({data.dataset}); hidden inputs: targets + {hidden or 'nothing'}")
    print(f"{'model':<22} {'target':<15} {'R²':>16} {'Corr':>16}")
    for r in rows:
        print(f"{r['model']:<22} {r['target']:<15} {r['r2_mean']:>8.3f} ± {r['r2_se']:<5.3f} {r['pearson_r_mean']:>8.3f} ± {r['pearson_r_se']:<5.3f}")

    out = Path(training.output_dir)
    pd.DataFrame(rows).to_csv(out / "summary.csv", index=False)
    (out / "summary.json").write_text(json.dumps({"dataset": data.dataset, "base": str(texture.base), "hidden_variables": hidden, "rows": rows}, indent=1))
    print(f"wrote {out / 'summary.csv'}, {out / 'scores.csv'}, {out / 'predictions.csv'}")


if __name__ == "__main__":
    sys.exit(run_script(sys.modules[__name__]))
