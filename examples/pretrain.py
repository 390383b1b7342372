"""Pretrain a StefaLand masked autoencoder (works under `accelerate launch` and plain `python`).

    accelerate launch examples/pretrain.py --model modeling/stefaland-tiny --dataset synthland
    python examples/pretrain.py --model modeling/stefaland-tiny --dataset camels_us --data-dir ../shared/data/camels_us \\
        --variables-from-data --epochs 2
    python examples/pretrain.py --recipe modeling/stefaland-conus --data-root ../shared/data --unpacked DIR \\
        --output-dir runs/stefaland-conus      # the release pretraining (670 CAMELS basins + 412 SMAP pixels)

Only the training sites of the chosen split (and the training period) are read, so a PUB/PUR
evaluation on the held-out sites stays free of leakage.
"""

import argparse

from stefaland_hf import StefaLandConfig
from stefaland_hf.training.acceleration import MIXED_PRECISION_CHOICES
from stefaland_hf.training.cli_args import add_data_arguments, add_split_arguments, load_dataset_from_args, split_from_args
from stefaland_hf.training.pretrain import PretrainArguments, config_for_dataset, pretrain


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="modeling/stefaland-tiny", help="model-zoo folder holding config.json")
    parser.add_argument("--output-dir", default="runs/pretrain", help="run folder (default: runs/pretrain); the model goes to OUTPUT_DIR/model")
    parser.add_argument("--variables-from-data", action="store_true", help="use the dataset's variable lists")
    parser.add_argument("--epochs", type=int, default=4, help="passes of --samples-per-epoch windows")
    parser.add_argument("--samples-per-epoch", type=int, default=4096, help="windows drawn per epoch")
    parser.add_argument("--batch-size", type=int, default=64, help="windows per step and process")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="AdamW learning rate")
    parser.add_argument("--seq-len", type=int, default=365, help="days per window")
    parser.add_argument("--gradient-accumulation-steps", type=int, default=1, help="micro-batches per optimizer step")
    parser.add_argument(
        "--mixed-precision", choices=MIXED_PRECISION_CHOICES, default="auto",
        help="autocast dtype; auto = bf16 where the CPU/GPU has native bf16 arithmetic, else float32",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (opt-in; see README performance)")
    parser.add_argument("--save-every-steps", type=int, default=0, help="checkpoint interval in steps (0: at the end of each epoch)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --output-dir from its newest complete checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace the run in --output-dir")
    release = parser.add_argument_group("release recipe (a model-zoo recipe.json instead of --model/--dataset)")
    release.add_argument("--recipe", default=None, help="model-zoo folder holding recipe.json: its architecture, corpus and pretraining arguments")
    release.add_argument("--data-root", default="../shared/data", help="recipe: the folder its {data} placeholder stands for")
    release.add_argument("--unpacked", default=None, metavar="DIR", help="recipe: where archives (camels_us_ungauged.tar.xz) were unpacked ({unpacked})")
    add_data_arguments(parser)
    add_split_arguments(parser)
    return parser


def main() -> None:
    args = build_parser().parse_args()
    if args.recipe:
        from stefaland_hf.experiments.release import run_release_pretraining

        run_release_pretraining(args.recipe, args.output_dir, args.data_root, args.unpacked, args.cache_dir,
                                resume=args.resume, overwrite=args.overwrite)
        print(f"saved the pretrained model to {args.output_dir}/model")
        return

    dataset = load_dataset_from_args(args)
    split = split_from_args(args, dataset)
    config = StefaLandConfig.from_pretrained(args.model)
    if args.variables_from_data:
        config = config_for_dataset(config, dataset)
    pretrain(
        config,
        dataset,
        split.sites("train"),
        split.period("train"),
        PretrainArguments(
            output_dir=args.output_dir,
            epochs=args.epochs,
            samples_per_epoch=args.samples_per_epoch,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            seq_len=args.seq_len,
            gradient_accumulation_steps=args.gradient_accumulation_steps,
            mixed_precision=args.mixed_precision,
            compile=args.compile,
            save_every_steps=args.save_every_steps,
            resume=args.resume,
            overwrite=args.overwrite,
            seed=args.seed,
        ),
    )
    print(f"saved the pretrained model to {args.output_dir}/model")


if __name__ == "__main__":
    main()
