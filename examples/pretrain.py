"""Pretrain a StefaLand masked autoencoder (works under `accelerate launch` and plain `python`).

    accelerate launch examples/pretrain.py --model modeling/stefaland-tiny --dataset synthland
    python examples/pretrain.py --model modeling/stefaland-tiny --dataset camels_us --data-dir ../shared/data/camels_us \\
        --variables-from-data --num-train-epochs 2
    python examples/pretrain.py --recipe modeling/stefaland-conus --data-root ../shared/data --unpacked DIR \\
        --output-dir runs/stefaland-conus      # the release pretraining (670 CAMELS basins + 412 SMAP pixels)

Only the training sites of the chosen split (and the training period) are read, so a PUB/PUR
evaluation on the held-out sites stays free of leakage. The defaults are the demo's pretraining.
With --recipe the model-zoo recipe.json names the architecture, data and split; the command line may
change its pretraining options (--max-steps, --seed, ...) and is refused data, split or model options.
"""

import sys

from stefaland_cli.scripts import run_script

# the options --help shows (--help-all: every option)
MAIN_OPTIONS = ("model", "dataset", "data_dir", "variables_from_data", "split", "output_dir", "num_train_epochs", "max_steps",
                "per_device_train_batch_size", "learning_rate", "seq_len", "resume", "recipe", "data_root", "unpacked")


def build_parser():
    from transformers import HfArgumentParser

    from stefaland_hf.presets import load_preset
    from stefaland_hf.training.arguments import DataArguments, HelpFormatter, SplitArguments
    from stefaland_hf.training.pretrain import PretrainArguments

    parser = HfArgumentParser((PretrainArguments, DataArguments, SplitArguments), description=__doc__, formatter_class=HelpFormatter,
                              usage="%(prog)s [options]")
    parser.add_argument("--model", default="modeling/stefaland-tiny", help="model-zoo folder holding config.json")
    parser.add_argument("--variables-from-data", action="store_true", help="use the dataset's variable lists")
    release = parser.add_argument_group("release recipe (a model-zoo recipe.json instead of --model/--dataset)")
    release.add_argument("--recipe", default=None, help="model-zoo folder holding recipe.json: its architecture, corpus and pretraining arguments")
    release.add_argument("--data-root", default="../shared/data", help="recipe: the folder its {data} placeholder stands for")
    release.add_argument("--unpacked", default=None, metavar="DIR", help="recipe: where archives (camels_us_ungauged.tar.xz) were unpacked ({unpacked})")
    parser.set_defaults(**load_preset("demo", "default")["pretrain"])
    return parser


def main(argv: list[str] | None = None) -> None:
    from stefaland_hf import StefaLandConfig
    from stefaland_hf.experiments.release import run_recipe_command
    from stefaland_hf.training.pretrain import config_for_dataset, pretrain

    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    training, data, split_arguments, other = parser.parse_args_into_dataclasses(args=argv, look_for_args_file=False)
    if other.recipe:
        run_recipe_command(parser, argv, training, other.recipe, other.data_root, other.unpacked, data.cache_dir)
    else:
        dataset = data.load()
        split = split_arguments.build(dataset, data.dataset, training.seed)
        config = StefaLandConfig.from_pretrained(other.model)
        if other.variables_from_data:
            config = config_for_dataset(config, dataset)
        pretrain(config, dataset, split.sites("train"), split.period("train"), training)
    print(f"saved the pretrained model to {training.output_dir}/model")


if __name__ == "__main__":
    sys.exit(run_script(sys.modules[__name__]))
