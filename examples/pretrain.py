"""Pretrain a StefaLand masked autoencoder (works under `accelerate launch` and plain `python`).

    accelerate launch examples/pretrain.py --model modeling/stefaland-tiny --dataset synthland
    python examples/pretrain.py --model modeling/stefaland-tiny --dataset camels_us --data-dir ../shared/data/camels_us \\
        --variables-from-data --num-train-epochs 2
    python examples/pretrain.py --recipe modeling/stefaland-conus --data-root ../shared/data --unpacked DIR \\
        --output-dir runs/stefaland-conus      # the release pretraining (670 CAMELS basins + 412 SMAP pixels)

Only the training sites of the chosen split (and the training period) are read, so a PUB/PUR
evaluation on the held-out sites stays free of leakage. The defaults are the demo's pretraining.
"""

import argparse
import sys
from dataclasses import fields

from transformers import HfArgumentParser

from stefaland_hf import StefaLandConfig
from stefaland_hf.presets import load_preset
from stefaland_hf.training.arguments import DataArguments, HelpFormatter, SplitArguments
from stefaland_hf.training.pretrain import PretrainArguments, config_for_dataset, pretrain


def build_parser(demo_defaults: bool = True) -> HfArgumentParser:
    parser = HfArgumentParser((PretrainArguments, DataArguments, SplitArguments), description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--model", default="modeling/stefaland-tiny", help="model-zoo folder holding config.json")
    parser.add_argument("--variables-from-data", action="store_true", help="use the dataset's variable lists")
    release = parser.add_argument_group("release recipe (a model-zoo recipe.json instead of --model/--dataset)")
    release.add_argument("--recipe", default=None, help="model-zoo folder holding recipe.json: its architecture, corpus and pretraining arguments")
    release.add_argument("--data-root", default="../shared/data", help="recipe: the folder its {data} placeholder stands for")
    release.add_argument("--unpacked", default=None, metavar="DIR", help="recipe: where archives (camels_us_ungauged.tar.xz) were unpacked ({unpacked})")
    if demo_defaults:
        parser.set_defaults(**load_preset("demo", "default")["pretrain"])
    return parser


# with --recipe: what the recipe leaves to the command line; the recipe itself names architecture, data and split
RECIPE_OPTIONS = {"recipe", "data_root", "unpacked", "output_dir", "resume", "overwrite", "cache_dir"}


def passed_options(argv: list[str]) -> set[str]:
    """The options the command line sets, not their defaults (a --recipe run must not drop them silently)."""
    parser = build_parser(demo_defaults=False)
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_known_args(argv)[0]))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    training, data, split_arguments, other = build_parser().parse_args_into_dataclasses(args=argv, look_for_args_file=False)
    if other.recipe:
        from stefaland_hf.experiments.release import run_release_pretraining

        passed = passed_options(argv)
        pretraining = {f.name for f in fields(training)} - RECIPE_OPTIONS
        refused = sorted(passed - RECIPE_OPTIONS - pretraining)
        if refused:
            raise SystemExit(f"--recipe {other.recipe}: the recipe names the architecture, data and split; drop {refused}")
        run_release_pretraining(other.recipe, training.output_dir, other.data_root, other.unpacked, data.cache_dir,
                                resume=training.resume, overwrite=training.overwrite,
                                **{name: getattr(training, name) for name in passed & pretraining})
        print(f"saved the pretrained model to {training.output_dir}/model")
        return

    dataset = data.load()
    split = split_arguments.build(dataset, data.dataset, training.seed)
    config = StefaLandConfig.from_pretrained(other.model)
    if other.variables_from_data:
        config = config_for_dataset(config, dataset)
    pretrain(config, dataset, split.sites("train"), split.period("train"), training)
    print(f"saved the pretrained model to {training.output_dir}/model")


if __name__ == "__main__":
    main()
