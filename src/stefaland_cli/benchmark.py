"""``stefaland benchmark``: arguments (the work: ``stefaland_hf.experiments.benchmark``)."""

from __future__ import annotations

from . import runs
from .checks import assignment, distinct, needs_data_dir, paths

PRESETS = ("cpu-quick", "paper", "smoke")  # the files of stefaland_hf/presets/benchmark/
SECTIONS = ("benchmark", "pretrain", "finetune", "baseline")  # the keys of benchmark.SECTIONS
MODEL_NAMES = ("direct", "scratch", "resconn", "no_adapter", "linear_probe", "random_encoder")  # the values of benchmark.MODELS


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("benchmark", help="PUB/PUR benchmark on CAMELS with baselines and ablations")
    parser.add_argument("kind", choices=["pub", "pur"], help="pub: random basin folds (ungauged basins); pur: region groups")
    parser.add_argument("--dataset", default="camels_us", choices=["camels_us", "synthland"], help="site dataset (default camels_us)")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="raw CAMELS-US release folder (camels_us)")
    parser.add_argument("--basins", default=None, metavar="FILE", help="basin list file, or camels_us_531")
    parser.add_argument("--extra-data-dir", nargs="+", default=None, metavar="DIR", help="more raw CAMELS folders")
    parser.add_argument("--folds", type=int, default=5, help="PUB folds (PUR uses the 7 region groups)")
    parser.add_argument("--seed", type=int, default=111, help="draws the folds (and training, unless --training-seed)")
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--training-seed", type=int, default=None, metavar="SEED", help="training seed, to repeat a run on the same folds")
    seeds.add_argument("--training-seeds", type=int, nargs="+", default=None, metavar="SEED",
                       help="several training seeds (OUT/seed_N each; OUT/summary.md pools folds x seeds)")
    parser.add_argument("--preset", choices=PRESETS, default="cpu-quick", help="cpu-quick (< 1 h on 2 CPU cores), paper (GPU) or smoke (seconds)")
    encoder = parser.add_mutually_exclusive_group()
    encoder.add_argument("--pretrain-on", choices=["all", "train"], default=None, help="pretrain on all basins, or per fold on its own")
    encoder.add_argument("--base", default=None, metavar="MODEL", help="pretrained encoder (folder, short name or Hub id); camels_us default: the shipped stefaland-conus")
    parser.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=list(MODEL_NAMES), metavar="MODEL",
                        help=f"models (default: all): {', '.join(MODEL_NAMES)}")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE", type=assignment(SECTIONS),
        help="change a preset field (sections benchmark, pretrain, finetune, baseline), e.g. finetune.max_steps=400 (repeatable)",
    )
    parser.add_argument("--cache-dir", default=None, metavar="DIR", help="datasets cache folder")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (results.json, summary.md, folds)")
    parser.add_argument("--resume", action="store_true", help="continue the benchmark in --out, keeping its finished folds")
    parser.add_argument("--overwrite", action="store_true", help="replace the benchmark in --out")
    parser.set_defaults(func=runs("stefaland_hf.experiments.benchmark", "run_cli", paths(data_dir="folder", basins="list", extra_data_dir="folder"), needs_data_dir(),
                                  distinct("training_seeds", "a seed")))
