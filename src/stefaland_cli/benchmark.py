"""``stefaland benchmark``: arguments (the work: ``stefaland_hf.experiments.benchmark``)."""

from __future__ import annotations

from . import runs

PRESETS = ("cpu-quick", "paper", "smoke")  # the files of stefaland_hf/presets/benchmark/
HEAD_MODES = ("direct", "scratch", "resconn", "no_adapter", "linear_probe")  # the values of benchmark.MODELS


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("benchmark", help="PUB/PUR benchmark on CAMELS with baselines and ablations")
    parser.add_argument("kind", choices=["pub", "pur"], help="pub: random basin folds (ungauged basins); pur: held-out region groups")
    parser.add_argument("--dataset", default="camels_us", choices=["camels_us", "synthland"], help="site dataset (default camels_us)")
    parser.add_argument("--data-dir", default=None, help="raw CAMELS-US release folder (camels_us)")
    parser.add_argument("--basins", default=None, help="basin list file (default: basin_list.txt in --data-dir)")
    parser.add_argument("--folds", type=int, default=5, help="PUB folds (PUR uses the 7 region groups)")
    parser.add_argument("--seed", type=int, default=111, help="draws the folds (and the training randomness unless --training-seed)")
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--training-seed", type=int, default=None, help="pretraining/finetuning seed, to repeat a run on the same folds")
    seeds.add_argument("--training-seeds", type=int, nargs="+", default=None, metavar="SEED",
                       help="several training seeds in one command (OUT/seed_N each); OUT/summary.md pools folds x seeds, paired against the LSTM")
    parser.add_argument("--preset", choices=PRESETS, default="cpu-quick", help="cpu-quick (under an hour on 2 CPU cores), paper (the paper's scale; GPU) or smoke (seconds)")
    parser.add_argument("--pretrain-on", choices=["all", "train"], default=None, help="pretrain on all listed basins (default) or per fold on its training basins")
    parser.add_argument("--base", default=None, help="pretrained model (folder, short name or Hub id) for the frozen-encoder models; default for camels_us: the released stefaland-conus")
    parser.add_argument("--models", nargs="+", choices=HEAD_MODES, default=list(HEAD_MODES), help="head modes to run (default: all five)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
        help="change a field of the preset's section benchmark, pretrain, finetune or baseline (the LSTM's differences from finetune), "
             "e.g. --set finetune.max_steps=400; any field of the section's arguments class; a list takes comma-separated items (repeatable)",
    )
    parser.add_argument("--cache-dir", default=None, help="datasets cache folder")
    parser.add_argument("--out", required=True, help="output folder (results.json, summary.md, per-fold folders)")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted benchmark in --out (same arguments), keeping its finished folds")
    parser.add_argument("--overwrite", action="store_true", help="replace the benchmark in --out")
    parser.set_defaults(func=runs("stefaland_hf.experiments.benchmark", "run_cli"))
