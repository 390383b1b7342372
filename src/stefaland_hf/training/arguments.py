"""The arguments of training runs and of the example scripts: dataclasses that ``HfArgumentParser`` reads.

- :class:`StefaLandTrainingArguments`: ``transformers.TrainingArguments`` plus what every StefaLand head training
  adds (head, window length, early-stopping patience), with the Trainer settings our runs share as defaults.
  :class:`FinetuneArguments` (daily-target heads) and
  :class:`~stefaland_hf.training.static_regression.StaticRegressionArguments` subclass it, and Trainer reads them as
  they are.
- :class:`DataArguments` (which site dataset) and :class:`SplitArguments` (which sites and periods are held out).
- :func:`finetune_parser` / :func:`parse_finetune_args`: the finetuning examples' command line, with the laptop scale
  (the demo's finetuning) as defaults and ``--paper-scale`` (the ``paper`` benchmark preset's finetuning).
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, dataclass, field
from typing import Any

import torch
from transformers import HfArgumentParser, TrainingArguments
from transformers.trainer_utils import HubStrategy, IntervalStrategy, SaveStrategy, SchedulerType

from ..configuration_stefaland import DEFAULT_QUANTILES, HBV_HEAD_MODES, HEAD_MODES, OUTPUT_DISTRIBUTIONS, OUTPUT_TRANSFORMS, check_output_distribution
from ..data import BUILDERS, load_site_dataset
from ..differentiable_hbv import COMPONENT_PARAMETERS, DEFAULT_DYNAMIC_PARAMETERS
from ..data.splits import CAMELS_PUR_GROUPS, gauged_sites, pub_folds, pur_splits, temporal_split
from .acceleration import bf16_supported
from .argument_checks import require_at_least, require_period, require_positive


def trainer_default(name: str, default: Any = MISSING, default_factory: Any = MISSING):
    """The ``TrainingArguments`` field ``name`` with our runs' default instead of its own (its help text kept)."""
    return field(default=default, default_factory=default_factory, metadata=TrainingArguments.__dataclass_fields__[name].metadata)


@dataclass
class StefaLandTrainingArguments(TrainingArguments):
    """``TrainingArguments`` of a StefaLand head trained with Trainer (``ObservedLabelTrainer``).

    The changed defaults are how these runs work: validation every ``eval_steps`` with early stopping after
    ``patience`` evaluations without a better validation loss, a checkpoint whenever it improves and the best one
    restored at the end; a constant learning rate; batches keep all their keys and carry ``labels`` with NaN gaps.
    """

    head_mode: str = field(
        default="resconn", metadata={"choices": HEAD_MODES, "help": "resconn (the paper's adapter), no_adapter, linear_probe, scratch, direct (no encoder), "
                                                  "hbv (δHBV: LSTM -> HBV parameters, no encoder) or resconn_hbv (the paper's hybrid)"}
    )
    head_hidden_size: int = field(default=128, metadata={"help": "width of the head (LSTM or MLP)"})
    head_dropout: float = field(default=0.2, metadata={"help": "dropout in the head"})
    seq_len: int = field(default=365, metadata={"help": "days per window of forcings"})
    patience: int = field(default=4, metadata={"help": "early stopping: evaluations without a better validation loss"})
    overwrite: bool = field(default=False, metadata={"help": "replace an earlier run in --output_dir"})

    per_device_train_batch_size: int = trainer_default("per_device_train_batch_size", 64)
    per_device_eval_batch_size: int = trainer_default("per_device_eval_batch_size", 128)
    learning_rate: float = trainer_default("learning_rate", 1e-3)
    max_steps: int = trainer_default("max_steps", 1000)
    eval_strategy: IntervalStrategy | str = trainer_default("eval_strategy", "steps")
    eval_steps: float | None = trainer_default("eval_steps", 100)
    save_strategy: SaveStrategy | str = trainer_default("save_strategy", "best")
    save_total_limit: int | None = trainer_default("save_total_limit", 2)
    load_best_model_at_end: bool = trainer_default("load_best_model_at_end", True)
    metric_for_best_model: str | None = trainer_default("metric_for_best_model", "eval_loss")
    lr_scheduler_type: SchedulerType | str = trainer_default("lr_scheduler_type", "constant")
    seed: int = trainer_default("seed", 111)
    remove_unused_columns: bool = trainer_default("remove_unused_columns", False)
    label_names: list[str] | None = trainer_default("label_names", default_factory=lambda: ["labels"])

    # change where a run's files go and what it prints, not what it computes: left out of run_manifest.json
    PRESENTATION_FIELDS = ("output_dir", "overwrite", "disable_tqdm", "dataloader_pin_memory")

    def __post_init__(self):
        kind = type(self).__name__
        if self.head_mode not in HEAD_MODES:
            raise ValueError(f"{kind}.head_mode={self.head_mode!r}: expected one of {list(HEAD_MODES)}")
        require_at_least(self, 1, "seq_len", "per_device_train_batch_size", "per_device_eval_batch_size", "max_steps", "patience", "head_hidden_size")
        require_at_least(self, 1, "eval_steps", optional=True)
        require_at_least(self, 0, "weight_decay", "head_dropout")
        require_positive(self, "learning_rate")
        self._refuse_ignored_trainer_options(kind)
        self._check_half_precision(kind)
        super().__post_init__()
        if not torch.cuda.is_available():
            self.dataloader_pin_memory = False  # nothing to pin to; torch would warn once per data loader

    def _refuse_ignored_trainer_options(self, kind: str) -> None:
        """``TrainingArguments`` options these runs would accept and then not honour, refused by name."""
        ignored = {
            "num_train_epochs": (self.num_train_epochs != 3.0, "runs count optimizer steps: use max_steps"),
            "warmup_steps": (
                self.warmup_steps > 0 and SchedulerType(self.lr_scheduler_type) == SchedulerType.CONSTANT,
                "the constant learning rate has no warm-up: add lr_scheduler_type=constant_with_warmup",
            ),
            "resume_from_checkpoint": (self.resume_from_checkpoint is not None, "these runs restart from the beginning"),
            "label_smoothing_factor": (self.label_smoothing_factor != 0.0, "regression has no label smoothing"),
            "hub_token": (self.hub_token is not None, "pushes use the token of `hf auth login` or HF_TOKEN"),
            "hub_revision": (self.hub_revision is not None, "the finished model is pushed to the main branch"),
            "hub_strategy": (HubStrategy(self.hub_strategy) != HubStrategy.EVERY_SAVE, "only the finished model is pushed, once"),
        }
        for name, (is_set, why) in ignored.items():
            if is_set:
                raise ValueError(f"{kind}.{name}={getattr(self, name)!r} would be ignored: {why}")

    def _check_half_precision(self, kind: str) -> None:
        """Trainer's ``fp16``/``bf16`` flags when training runs on the CPU: fp16 would silently train in float32
        there, so it is refused; bf16 becomes CPU autocast (``use_cpu``) where the CPU has bf16 arithmetic."""
        on_accelerator = torch.cuda.is_available() or torch.backends.mps.is_available()
        if on_accelerator and not self.use_cpu:
            return
        if self.fp16 or self.fp16_full_eval:
            raise ValueError(
                f"{kind}.fp16: float16 mixed precision needs a GPU; on the CPU Trainer would silently train in float32 "
                "(use bf16 on a CPU with AVX512-BF16 or AMX, or neither)"
            )
        if (self.bf16 or self.bf16_full_eval) and not bf16_supported("cpu"):
            raise ValueError(f"{kind}.bf16: this CPU has no native bf16 arithmetic (AVX512-BF16 or AMX); train without --bf16")
        if self.bf16:
            self.use_cpu = True  # Trainer runs bf16 on the CPU as torch.autocast("cpu", torch.bfloat16) only with use_cpu

    def run_arguments(self) -> dict[str, Any]:
        """Every field that decides what the run computes (``run_manifest.json``)."""
        return {k: v for k, v in self.to_dict().items() if k not in self.PRESENTATION_FIELDS}

    def push_repo(self) -> str | None:
        """The Hub repo the example scripts push the finished model to (``--push_to_hub --hub_model_id ORG/NAME``)."""
        if not self.push_to_hub:
            return None
        if not self.hub_model_id:
            raise ValueError("--push_to_hub: name the repo with --hub_model_id ORG/NAME")
        return self.hub_model_id


@dataclass
class FinetuneArguments(StefaLandTrainingArguments):
    """Finetuning a daily-target head (:func:`~stefaland_hf.training.finetune.finetune`): its windows, adapter and
    embedding cache; Trainer's own fields as in ``TrainingArguments``. ``push_to_hub``/``hub_model_id`` are read by
    the example scripts, which push the finished adapter or model with its card; Trainer itself never pushes
    checkpoints."""

    target_variables: list[str] = field(default_factory=lambda: ["streamflow"], metadata={"help": "daily targets to predict"})
    warmup: int = field(default=180, metadata={"help": "days of context at the start of each window that carry no loss"})
    stride: int = field(default=1, metadata={"help": "days between training window starts (without the embedding cache)"})
    min_observed: int = field(default=1, metadata={"help": "skip training windows with fewer observed target days"})
    embedding_scale_init: float = field(default=0.1, metadata={"help": "initial scale s of LayerNorm(E) in the head (paper: 0.1)"})
    embedding_adds_static: bool = field(
        default=False, metadata={"help": "add the static token's state to the embedding of every day (the authors' follow-up code)"}
    )
    output_transform: str = field(
        default="clamp", metadata={"choices": OUTPUT_TRANSFORMS, "help": "how predictions respect the targets' physical range (StefaLandConfig.output_transform)"}
    )
    output_distribution: str = field(
        default="none",
        metadata={"help": f"what the head predicts per day: {' | '.join(OUTPUT_DISTRIBUTIONS)} (one value, a CMAL mixture, "
                          "quantiles; StefaLandConfig.output_distribution, docs/probabilistic.md)"},
    )
    mixture_components: int = field(default=3, metadata={"help": "components of a cmal mixture"})
    quantiles: list[float] = field(
        default_factory=lambda: list(DEFAULT_QUANTILES), metadata={"help": "increasing levels in (0, 1) a quantile head predicts"}
    )
    mc_dropout_passes: int = field(
        default=0,
        metadata={"help": "also score the test basins' MC dropout ensemble of this many passes (point heads; 0: no; "
                          "stefaland_hf.evaluation.MC_DROPOUT_PASSES is the benchmark's)"},
    )
    hbv_nmul: int = field(default=16, metadata={"help": "hbv/resconn_hbv heads: parallel HBV components per basin (StefaLandConfig.hbv_nmul)"})
    hbv_dynamic_parameters: list[str] = field(
        default_factory=lambda: list(DEFAULT_DYNAMIC_PARAMETERS),
        metadata={"help": "hbv/resconn_hbv heads: HBV parameters that vary by day (the paper's hybrid: BETA K0 BETAET); "
                          "the spin-up of the HBV stores is --warmup"},
    )
    embedding_cache: bool = field(
        default=True, metadata={"help": "frozen-backbone modes: train the head on embeddings computed once (training/embedding_cache.py)"}
    )
    embedding_cache_stride: int | None = field(
        default=None, metadata={"help": "days between cached training windows (default: seq_len minus warmup, so their loss parts tile the period once; the days after the last whole window, fewer than the stride, are not trained on)"}
    )
    embedding_cache_dir: str | None = field(
        default=None, metadata={"help": "embedding cache folder (default: $STEFALAND_CACHE_DIR/embeddings or ~/.cache/stefaland_hf/embeddings)"}
    )

    PRESENTATION_FIELDS = StefaLandTrainingArguments.PRESENTATION_FIELDS + ("embedding_cache_dir",)

    def __post_init__(self):
        if not self.target_variables:
            raise ValueError("FinetuneArguments.target_variables: expected at least one target variable")
        require_at_least(self, 1, "stride")
        require_at_least(self, 1, "embedding_cache_stride", optional=True)
        require_at_least(self, 0, "warmup", "min_observed")
        if self.warmup >= self.seq_len:
            raise ValueError(f"FinetuneArguments.warmup={self.warmup}: expected fewer days than seq_len={self.seq_len}")
        self._check_hbv()
        check_output_distribution(
            self.output_distribution, self.mixture_components, self.quantiles, self.head_mode, self.output_transform, "FinetuneArguments."
        )
        if self.mc_dropout_passes and (self.mc_dropout_passes < 2 or isinstance(self.mc_dropout_passes, bool)):
            raise ValueError(f"FinetuneArguments.mc_dropout_passes={self.mc_dropout_passes!r}: expected 0 (none) or at least 2 passes")
        without_dropout = self.head_mode == "linear_probe" or (self.head_mode in ("direct", "no_adapter") and self.head_dropout == 0)
        if self.mc_dropout_passes and without_dropout:
            head = "head_mode='linear_probe'" if self.head_mode == "linear_probe" else f"head_mode={self.head_mode!r} with head_dropout=0"
            raise ValueError(
                f"FinetuneArguments.mc_dropout_passes={self.mc_dropout_passes}: {head} has no dropout in what finetuning "
                "trains, so every pass would be the same"
            )
        if self.mc_dropout_passes and self.output_distribution != "none":
            raise ValueError(
                f"FinetuneArguments.mc_dropout_passes={self.mc_dropout_passes}: MC dropout scores a point head's dropout ensemble; "
                f"this head predicts a {self.output_distribution} distribution itself (output_distribution)"
            )
        super().__post_init__()


    def _check_hbv(self) -> None:
        """The HBV settings, and what an HBV head cannot do (another target, a distribution), before any training."""
        require_at_least(self, 1, "hbv_nmul")
        unknown = [name for name in self.hbv_dynamic_parameters if name not in COMPONENT_PARAMETERS]
        if unknown or len(set(self.hbv_dynamic_parameters)) != len(self.hbv_dynamic_parameters):
            raise ValueError(
                f"FinetuneArguments.hbv_dynamic_parameters={list(self.hbv_dynamic_parameters)}: expected distinct names among the HBV "
                f"component parameters {list(COMPONENT_PARAMETERS)}" + (f" ({unknown} unknown)" if unknown else "")
            )
        if self.head_mode not in HBV_HEAD_MODES:
            return
        if list(self.target_variables) != ["streamflow"]:
            raise ValueError(f"FinetuneArguments.target_variables={list(self.target_variables)}: head_mode={self.head_mode!r} "
                             "(the differentiable HBV) predicts streamflow only")
        if self.output_distribution != "none":
            raise ValueError(f"FinetuneArguments.output_distribution={self.output_distribution!r}: head_mode={self.head_mode!r} "
                             "predicts one streamflow per day from the HBV physics (a point prediction); use 'none'")

    def hbv_settings(self) -> dict[str, Any]:
        """The StefaLandConfig / ResConnConfig fields of an HBV head (none for another head): the spin-up of its stores
        is the windows' warm-up, whose days carry no loss."""
        if self.head_mode not in HBV_HEAD_MODES:
            return {}
        return {"hbv_nmul": self.hbv_nmul, "hbv_dynamic_parameters": list(self.hbv_dynamic_parameters), "hbv_warmup_days": self.warmup}


# CAMELS periods of the paper's code (spec §4): train 1999-10-01..2008-09-30, test 1989-10-01..1999-09-30; Caravan's
# ERA5-Land record (from 1981) covers the same periods, which are used there too.
DEFAULT_PERIODS = {
    "synthland": {"train": ["1995-01-01", "2005-12-31"], "test": ["2006-01-01", "2009-12-31"]},
    "camels_us": {"train": ["1999-10-01", "2008-09-30"], "test": ["1989-10-01", "1999-09-30"]},
    "caravan": {"train": ["1999-10-01", "2008-09-30"], "test": ["1989-10-01", "1999-09-30"]},
    "hydrodl_smap": {"train": ["2015-04-01", "2016-03-31"], "test": ["2016-04-01", "2017-03-31"]},
}


@dataclass
class DataArguments:
    """The site dataset of a run; builder-specific options are refused for another builder (:meth:`load`)."""

    _argument_group_name = "data"

    dataset: str = field(default="synthland", metadata={"choices": sorted(BUILDERS), "help": "site dataset (synthland: the embedded one)"})
    data_dir: str | None = field(default=None, metadata={"help": "raw release folder (camels_us, hydrodl_smap, caravan)"})
    config_name: str | None = field(default=None, metadata={"help": "builder config (synthland: tiny|default|large; camels_us: daymet|maurer|nldas)"})
    basins: str | None = field(
        default=None, metadata={"help": "camels_us: basin list file (default: basin_list.txt in --data_dir); caravan: a list of gauge ids (default: every basin)"}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "datasets cache folder"})
    extra_data_dir: list[str] = field(
        default_factory=list,
        metadata={"metavar": "DIR", "help": "camels_us: more folders in the raw layout whose basins join --data_dir's, e.g. the 603 ungauged basins"},
    )
    ungauged: str | None = field(
        default=None, metadata={"metavar": "FILE", "help": "camels_us: basin-list file of basins without streamflow (all-NaN targets; for pretraining and prediction)"}
    )
    missing_targets: str | None = field(
        default=None, metadata={"choices": ["error", "nan"], "help": "hydrodl_smap: a year without SMAP_AM.csv is an error (default) or kept with NaN targets"}
    )

    def load(self):
        """Build (cached) and open the dataset."""
        options = {  # field: (builder keyword, the builders that take it)
            "basins": ("basins", ("camels_us", "caravan")),
            "extra_data_dir": ("extra_data_dirs", ("camels_us",)),
            "ungauged": ("ungauged", ("camels_us",)),
            "missing_targets": ("missing_targets", ("hydrodl_smap",)),
        }
        kwargs = {}
        for name, (keyword, builders) in options.items():
            if value := getattr(self, name):
                if self.dataset not in builders:
                    raise ValueError(f"--{name}: applies to --dataset {' or '.join(builders)}, not {self.dataset}")
                kwargs[keyword] = value
        return load_site_dataset(self.dataset, config_name=self.config_name, data_dir=self.data_dir, cache_dir=self.cache_dir, **kwargs)


@dataclass
class SplitArguments:
    """Which sites (PUB fold, PUR region group) or which period (temporal) are held out, and the periods."""

    _argument_group_name = "split"

    split: str = field(default="pub", metadata={"choices": ["pub", "pur", "temporal"], "help": "held-out sites (pub), regions (pur) or period (temporal)"})
    folds: int = field(default=5, metadata={"help": "PUB folds (drawn with --seed, so another seed holds out other sites)"})
    fold: int = field(default=0, metadata={"help": "which fold (PUB) or region group (PUR) is held out"})
    val_fraction: float = field(default=0.1, metadata={"help": "fraction of the training sites held out for early stopping"})
    train_period: list[str] | None = field(
        default=None, metadata={"metavar": "DATE", "help": "training (and validation) period: START END, inclusive (default per dataset)"}
    )
    test_period: list[str] | None = field(default=None, metadata={"metavar": "DATE", "help": "evaluation period: START END, inclusive (default per dataset)"})
    val_period: list[str] | None = field(
        default=None,
        metadata={"metavar": "DATE", "help": "early-stopping period: START END, inclusive (pub/pur: of the validation sites, default the "
                                             "training period; temporal: of every site, default the training period's last fifth)"},
    )

    def __post_init__(self):
        require_period(self, "train_period", "test_period", "val_period")
        if self.split == "temporal":  # every site trains and is tested; validation is by period
            for name, default in (("folds", 5), ("fold", 0), ("val_fraction", 0.1)):
                if getattr(self, name) != default:
                    raise ValueError(
                        f"--{name}: applies to --split pub/pur, not temporal (its validation is every site over --val-period, "
                        "by default the last fifth of the training period)"
                    )

    def periods(self, dataset_name: str) -> dict[str, list[str]]:
        defaults = DEFAULT_PERIODS[dataset_name]
        return {"train": list(self.train_period or defaults["train"]), "test": list(self.test_period or defaults["test"])}

    def build(self, dataset, dataset_name: str, seed: int):
        """The split over the dataset's gauged sites (ungauged ones have nothing to train or score); ``seed`` draws it."""
        periods = self.periods(dataset_name)
        all_ids = list(dataset["site_id"])
        gauged = gauged_sites(dataset)
        site_ids = [all_ids[i] for i in gauged]
        kwargs = {"train_period": periods["train"], "val_period": list(self.val_period or periods["train"]), "test_period": periods["test"]}
        if self.split == "temporal":
            train, val = (periods["train"], self.val_period) if self.val_period else _carve_validation(periods["train"])
            return temporal_split(len(site_ids), train, val, periods["test"], site_ids=site_ids).remap(all_ids)
        if self.split == "pub":
            splits = pub_folds(site_ids, k=self.folds, seed=seed, val_fraction=self.val_fraction, **kwargs)
        else:
            all_regions = list(dataset["region"])
            regions = [all_regions[i] for i in gauged]
            # CAMELS uses the HUC-02 groups of Feng et al. 2021; other datasets hold out each of their regions in turn
            groups = CAMELS_PUR_GROUPS if dataset_name == "camels_us" else [[region] for region in sorted(set(regions))]
            splits = pur_splits(regions, groups=groups, seed=seed, val_fraction=self.val_fraction, site_ids=site_ids, **kwargs)
        if not 0 <= self.fold < len(splits):
            raise ValueError(f"--fold {self.fold}: this split has {len(splits)} folds (0..{len(splits) - 1})")
        return splits[self.fold].remap(all_ids)


def _carve_validation(period, fraction: float = 0.2) -> tuple[tuple[str, str], tuple[str, str]]:
    """Split a period into (train, validation): the validation part is its last ``fraction``."""
    import numpy as np

    start, end = (np.datetime64(p, "D") for p in period)
    cut = start + int((end - start).astype(int) * (1 - fraction))
    return (str(start), str(cut - 1)), (str(cut), str(end))


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The script's docstring as written, and each option's default."""


def finetune_parser(
    description: str, output_dir: str, target_variables: list[str], default_base: str | None = None, **defaults: Any
) -> HfArgumentParser:
    """The finetuning examples' parser: :class:`FinetuneArguments`, :class:`DataArguments`, :class:`SplitArguments`,
    ``--base`` and ``--paper-scale``; defaults: the laptop scale (the demo's finetuning), then ``defaults``."""
    from ..presets import load_preset

    parser = HfArgumentParser((FinetuneArguments, DataArguments, SplitArguments), description=description, formatter_class=HelpFormatter,
                              usage="%(prog)s [options]")
    if default_base is None:
        parser.add_argument("--base", required=True, help="pretrained model: folder, Hub id, or short name (stefaland-conus)")
    else:
        parser.add_argument("--base", default=default_base, help="pretrained model: folder, Hub id, or short name (default: shipped with the package)")
    parser.add_argument("--paper-scale", action="store_true", help="the paper's finetuning (the `paper` benchmark preset's finetune section; GPU-sized)")
    parser.set_defaults(**{**load_preset("demo", "default")["finetune"], "output_dir": output_dir, "target_variables": list(target_variables), **defaults})
    return parser


def parse_finetune_args(parser: HfArgumentParser, args: list[str] | None = None):
    """``(FinetuneArguments, DataArguments, SplitArguments, other options)``: ``--paper-scale`` replaces the laptop
    defaults with the paper's; options given explicitly win over both."""
    from ..presets import load_preset

    if parser.parse_known_args(args)[0].paper_scale:
        parser.set_defaults(**load_preset("benchmark", "paper")["finetune"])
    return parser.parse_args_into_dataclasses(args, look_for_args_file=False)
