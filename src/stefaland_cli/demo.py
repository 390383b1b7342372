"""``stefaland demo``: arguments (the work: ``stefaland_hf.experiments.demo``)."""

from __future__ import annotations

from . import runs
from .checks import assignment

PRESETS = ("default", "smoke")  # the files of stefaland_hf/presets/demo/
SECTIONS = ("demo", "pretrain", "finetune", "baseline")  # the keys of demo.SECTIONS


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="pretrain, finetune and evaluate on SynthLand (the embedded default data)",
        description=(
            "The whole StefaLand story on SynthLand (300 virtual catchments): pretrain stefaland-tiny on the training "
            "sites' forcings and attributes, finetune a resConn adapter for streamflow, train the LSTM baseline twice "
            "(400 steps, and to early stopping), and score all of them and the oracle on 60 held-out sites over "
            "2006-2009. About 5-6 minutes on 2 AVX512-BF16 cores, 9 on one AVX2 core (--preset smoke: under a minute, not a meaningful comparison)."
        ),
    )
    parser.add_argument("--out", default="stefaland-demo", help="output folder (default: ./stefaland-demo)")
    parser.add_argument("--preset", choices=PRESETS, default="default", help="default, or smoke (seconds; for checks)")
    parser.add_argument("--seed", type=int, default=None, help="the split's and the training's seed instead of the preset's (as --set demo.seed=N)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE", type=assignment(SECTIONS),
        help="change a field of the preset's section demo, pretrain, finetune or baseline (the long LSTM run's differences from "
             "finetune), e.g. --set finetune.max_steps=200 (repeatable)",
    )
    parser.add_argument("--cache-dir", default=None, help="datasets cache folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier demo in --out")
    parser.set_defaults(func=runs("stefaland_hf.experiments.demo", "run_cli"))
