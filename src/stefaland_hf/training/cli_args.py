"""Argument parsing shared by the example scripts (datasets, splits, periods)."""

from __future__ import annotations

import argparse

from ..data import BUILDERS, load_site_dataset
from ..data.splits import CAMELS_PUR_GROUPS, gauged_sites, pub_folds, pur_splits, temporal_split

# CAMELS periods of the paper's code (spec §4): train 1999-10-01..2008-09-30, test 1989-10-01..1999-09-30.
DEFAULT_PERIODS = {
    "synthland": {"train": ("1995-01-01", "2005-12-31"), "test": ("2006-01-01", "2009-12-31")},
    "camels_us": {"train": ("1999-10-01", "2008-09-30"), "test": ("1989-10-01", "1999-09-30")},
    "hydrodl_smap": {"train": ("2015-04-01", "2016-03-31"), "test": ("2016-04-01", "2017-03-31")},
}


def add_data_arguments(parser: argparse.ArgumentParser, periods: bool = True) -> None:
    """The dataset options of every example; ``periods=False`` for tasks without a train/test period (static targets)."""
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", choices=sorted(BUILDERS), default="synthland", help="site dataset (default synthland, the embedded one)")
    group.add_argument("--data-dir", default=None, help="raw release folder (camels_us, hydrodl_smap)")
    group.add_argument("--config-name", default=None, help="builder config (synthland: tiny|default|large; camels_us: daymet|maurer|nldas)")
    group.add_argument("--basins", default=None, help="CAMELS basin list file (default: basin_list.txt in --data-dir)")
    group.add_argument("--cache-dir", default=None, help="datasets cache folder")
    group.add_argument("--extra-data-dir", action="append", default=[], metavar="DIR",
                       help="camels_us: another folder in the raw layout whose basins join --data-dir's (repeatable), e.g. the 603 ungauged basins")
    group.add_argument("--ungauged", default=None, metavar="FILE",
                       help="camels_us: basin-list file of basins without streamflow (all-NaN targets; for pretraining and prediction)")
    group.add_argument("--missing-targets", choices=["error", "nan"], default=None,
                       help="hydrodl_smap: a year without SMAP_AM.csv is an error (default) or kept with NaN targets")
    if not periods:
        return
    group.add_argument("--train-period", nargs=2, metavar=("START", "END"), default=None, help="training (and validation) period, inclusive dates (default per dataset)")
    group.add_argument("--test-period", nargs=2, metavar=("START", "END"), default=None, help="evaluation period, inclusive dates (default per dataset)")


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("split")
    group.add_argument("--split", choices=["pub", "pur", "temporal"], default="pub", help="held-out sites (pub), regions (pur) or period (temporal)")
    group.add_argument("--folds", type=int, default=5, help="PUB folds")
    group.add_argument("--fold", type=int, default=0, help="which fold (PUB) or region group (PUR) is held out")
    group.add_argument("--val-fraction", type=float, default=0.1, help="fraction of the training sites held out for early stopping")
    group.add_argument("--seed", type=int, default=111, help="draws the split and the training randomness")


# Finetuning scale: the defaults finish in minutes on a laptop CPU (SynthLand); --paper-scale switches to the
# paper's streamflow finetuning (as the benchmark's `paper` preset). Options given explicitly win over both.
LAPTOP_SCALE = {"batch_size": 64, "max_steps": 400, "eval_steps": 50, "patience": 4, "head_hidden_size": 64}
PAPER_SCALE = {"seq_len": 730, "warmup": 365, "batch_size": 128, "max_steps": 20_000, "eval_steps": 1000, "patience": 5, "head_hidden_size": 256}


def add_finetune_arguments(
    parser: argparse.ArgumentParser, output_dir: str, seq_len: int = 365, warmup: int = 180, default_base: str | None = None
) -> None:
    """The finetuning options shared by the example scripts (defaults differ per task only in windows and base)."""
    from ..configuration_stefaland import HEAD_MODES

    if default_base is None:
        parser.add_argument("--base", required=True, help="pretrained model: folder, Hub id, or short name (stefaland-conus)")
    else:
        parser.add_argument("--base", default=default_base, help=f"pretrained model: folder, Hub id, or short name (default: {default_base}, shipped with the package)")
    parser.add_argument("--output-dir", default=output_dir, help=f"run folder (default: {output_dir})")
    parser.add_argument("--head-mode", choices=HEAD_MODES, default="resconn", help="resconn (the paper's adapter), no_adapter, linear_probe, scratch or direct (the LSTM baseline)")
    parser.add_argument(
        "--paper-scale", action="store_true",
        help=f"the paper's finetuning instead of the laptop defaults {LAPTOP_SCALE}: {PAPER_SCALE} (GPU-sized)",
    )
    parser.set_defaults(scale_defaults={"seq_len": seq_len, "warmup": warmup, **LAPTOP_SCALE})
    parser.add_argument("--seq-len", type=int, default=None, help=f"window length in days (default {seq_len}; paper scale {PAPER_SCALE['seq_len']})")
    parser.add_argument("--warmup", type=int, default=None, help=f"days of context without loss at each window start (default {warmup})")
    parser.add_argument("--stride", type=int, default=1, help="days between training window starts")
    parser.add_argument("--min-observed", type=int, default=1, help="skip training windows with fewer observed target days")
    parser.add_argument("--batch-size", type=int, default=None, help=f"windows per step (default {LAPTOP_SCALE['batch_size']})")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="AdamW learning rate, constant")
    parser.add_argument("--max-steps", type=int, default=None, help=f"step cap; early stopping usually ends sooner (default {LAPTOP_SCALE['max_steps']})")
    parser.add_argument("--eval-steps", type=int, default=None, help=f"steps between validations (default {LAPTOP_SCALE['eval_steps']})")
    parser.add_argument("--patience", type=int, default=None, help=f"early stopping patience in evaluations (default {LAPTOP_SCALE['patience']})")
    parser.add_argument("--head-hidden-size", type=int, default=None, help=f"LSTM width of the head (default {LAPTOP_SCALE['head_hidden_size']})")
    parser.add_argument("--embedding-scale-init", type=float, default=0.1, help="initial scale s of LayerNorm(E) in the head (paper: 0.1)")
    parser.add_argument(
        "--no-embedding-cache", dest="embedding_cache", action="store_false",
        help="frozen-backbone modes: run the backbone every step instead of training on embeddings computed once",
    )
    parser.add_argument(
        "--embedding-cache-stride", type=int, default=None,
        help="days between cached training windows (default: seq-len minus warmup, so their loss parts tile the period once)",
    )
    parser.add_argument("--embedding-cache-dir", default=None, help="embedding cache folder (default: $STEFALAND_CACHE_DIR/embeddings or ~/.cache/stefaland_hf/embeddings)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier finetuning run in --output-dir")
    parser.add_argument("--push-to-hub", metavar="REPO", default=None, help="push the adapter/model and its card")


def resolve_finetune_scale(args) -> None:
    """Fill the scale options the user did not give from the laptop defaults or ``--paper-scale``."""
    scale = {**args.scale_defaults, **(PAPER_SCALE if args.paper_scale else {})}
    for name, value in scale.items():
        if getattr(args, name) is None:
            setattr(args, name, value)


def finetune_arguments_from_args(args, target_variables: list[str]):
    from .finetune import FinetuneArguments

    resolve_finetune_scale(args)
    return FinetuneArguments(
        output_dir=args.output_dir,
        head_mode=args.head_mode,
        target_variables=list(target_variables),
        seq_len=args.seq_len,
        warmup=args.warmup,
        stride=args.stride,
        min_observed=args.min_observed,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_steps=args.max_steps,
        eval_steps=args.eval_steps,
        patience=args.patience,
        head_hidden_size=args.head_hidden_size,
        embedding_scale_init=args.embedding_scale_init,
        embedding_cache=args.embedding_cache,
        embedding_cache_stride=args.embedding_cache_stride,
        embedding_cache_dir=args.embedding_cache_dir,
        overwrite=args.overwrite,
        seed=args.seed,
    )


def load_dataset_from_args(args):
    """The dataset the data arguments name; builder-specific options are refused for another builder."""
    options = {  # flag: (builder keyword, value, the builder that takes it)
        "--basins": ("basins", args.basins, "camels_us"),
        "--extra-data-dir": ("extra_data_dirs", args.extra_data_dir, "camels_us"),
        "--ungauged": ("ungauged", args.ungauged, "camels_us"),
        "--missing-targets": ("missing_targets", args.missing_targets, "hydrodl_smap"),
    }
    kwargs = {}
    for flag, (keyword, value, builder) in options.items():
        if value:
            if args.dataset != builder:
                raise ValueError(f"{flag}: applies to --dataset {builder}, not {args.dataset}")
            kwargs[keyword] = value
    return load_site_dataset(args.dataset, config_name=args.config_name, data_dir=args.data_dir, cache_dir=args.cache_dir, **kwargs)


def periods_from_args(args) -> dict:
    defaults = DEFAULT_PERIODS[args.dataset]
    train = tuple(args.train_period) if args.train_period else defaults["train"]
    test = tuple(args.test_period) if args.test_period else defaults["test"]
    return {"train": train, "test": test}


def split_from_args(args, dataset):
    """The split the arguments ask for, over the dataset's gauged sites (ungauged ones have nothing to train or score)."""
    periods = periods_from_args(args)
    all_ids = list(dataset["site_id"])
    gauged = gauged_sites(dataset)
    site_ids = [all_ids[i] for i in gauged]
    kwargs = {"train_period": periods["train"], "val_period": periods["train"], "test_period": periods["test"]}
    if args.split == "temporal":
        train, val = _carve_validation(periods["train"])
        return temporal_split(len(site_ids), train, val, periods["test"], site_ids=site_ids).remap(all_ids)
    if args.split == "pub":
        splits = pub_folds(site_ids, k=args.folds, seed=args.seed, val_fraction=args.val_fraction, **kwargs)
    else:
        all_regions = list(dataset["region"])
        regions = [all_regions[i] for i in gauged]
        # CAMELS uses the HUC-02 groups of Feng et al. 2021; other datasets hold out each of their regions in turn
        groups = CAMELS_PUR_GROUPS if args.dataset == "camels_us" else [[region] for region in sorted(set(regions))]
        splits = pur_splits(regions, groups=groups, seed=args.seed, val_fraction=args.val_fraction, site_ids=site_ids, **kwargs)
    if not 0 <= args.fold < len(splits):
        raise ValueError(f"--fold {args.fold}: this split has {len(splits)} folds (0..{len(splits) - 1})")
    return splits[args.fold].remap(all_ids)


def _carve_validation(period: tuple[str, str], fraction: float = 0.2) -> tuple[tuple[str, str], tuple[str, str]]:
    """Split a period into (train, validation): the validation part is its last ``fraction``."""
    import numpy as np

    start, end = (np.datetime64(p, "D") for p in period)
    cut = start + int((end - start).astype(int) * (1 - fraction))
    return (str(start), str(cut - 1)), (str(cut), str(end))
