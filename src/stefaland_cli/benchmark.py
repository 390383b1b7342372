"""``stefaland benchmark``: arguments (the work: ``stefaland_hf.experiments.benchmark``)."""

from __future__ import annotations

import argparse

from . import runs
from .checks import assignment, distinct, needs_data_dir, paths

PRESETS = ("cpu-quick", "paper", "smoke")  # the files of stefaland_hf/presets/benchmark/
SECTIONS = ("benchmark", "pretrain", "finetune", "baseline")  # the keys of benchmark.SECTIONS
MODEL_NAMES = ("direct", "scratch", "resconn", "no_adapter", "linear_probe", "random_encoder", "hbv", "resconn_hbv")  # benchmark.MODELS' values
DEFAULT_MODELS = MODEL_NAMES[:6]  # the paper's Tables 1-2 and the control; the HBV pair (its Table 9) on request
MODEL_VARIANTS = ("cmal", "quantile", "mc_dropout")  # benchmark.VARIANTS' keys: MODEL+VARIANT


def benchmark_model(value: str) -> str:
    """An ``argparse`` type: MODEL or MODEL+VARIANT (e.g. ``direct+cmal``), the closest name suggested otherwise."""
    model, plus, variant = value.partition("+")
    if model in MODEL_NAMES and (not plus or variant in MODEL_VARIANTS):
        return value
    import difflib

    known = [*MODEL_NAMES, *(f"{name}+{kind}" for name in MODEL_NAMES for kind in MODEL_VARIANTS)]
    close = difflib.get_close_matches(value, known, n=1)
    raise argparse.ArgumentTypeError(
        f"{value!r}: expected MODEL or MODEL+VARIANT with MODEL one of {list(MODEL_NAMES)} and VARIANT one of {list(MODEL_VARIANTS)}"
        + (f"; did you mean {close[0]!r}?" if close else "")
    )


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("benchmark", help="PUB/PUR benchmark on CAMELS with baselines and ablations")
    parser.add_argument("kind", choices=["pub", "pur"], help="pub: basin folds held out as if ungauged; pur: region groups")
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
    parser.add_argument("--models", nargs="+", type=benchmark_model, default=list(DEFAULT_MODELS), metavar="MODEL",
                        help=f"{', '.join(MODEL_NAMES)} (default: all but the HBV pair), each also as MODEL+cmal|quantile|mc_dropout")
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
