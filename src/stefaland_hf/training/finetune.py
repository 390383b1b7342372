"""Finetuning task heads with ``transformers.Trainer`` (``ObservedLabelTrainer``: loss over observed labels).

Frozen-backbone modes (``resconn``, ``no_adapter``, ``linear_probe``, ``resconn_hbv``) train a PEFT resConn
adapter on a pretrained StefaLand; ``scratch`` trains the whole architecture from random weights, ``direct`` is
the LSTM baseline on raw forcings and attributes and ``hbv`` its δHBV counterpart (docs/hbv.md). Windows are drawn from the
memory-mapped site dataset; validation (for early stopping) uses held-out sites, and the final
evaluation stitches whole-period predictions per held-out site.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import PartialState
from peft import PeftModel, get_peft_model
from transformers import EarlyStoppingCallback, EvalPrediction, set_seed

from ..checkpoint_binding import backbone_fingerprint
from ..configuration_stefaland import DEFAULT_QUANTILES, FROZEN_BACKBONE_MODES, StefaLandConfig
from ..data.normalization import Normalization, fit_normalization
from ..differentiable_hbv import DEFAULT_DYNAMIC_PARAMETERS
from ..data.splits import require_gauged
from ..data.samplers import WindowDataset, collate_model_batch
from ..evaluation import evaluate_sites, write_site_metrics, write_test_quantiles
from ..metrics import site_metrics, summarize
from ..modeling_stefaland import TASK_HEADS, StefaLandForTimeSeriesRegression, head_class
from ..peft_adapters import ResConnConfig
from .arguments import FinetuneArguments
from .console import EvaluationConsole, quiet_library_output
from .embedding_cache import CachedEmbeddingWindows, EmbeddingCache
from .run_folder import build_manifest, dataset_fingerprint, prepare_run_folder
from .trainer import ObservedLabelTrainer

logger = logging.getLogger(__name__)


def build_finetune_model(
    base: str | Path | StefaLandConfig,
    args: FinetuneArguments,
    target_normalization: Normalization,
    input_normalization: Normalization | None = None,
):
    """The model to finetune for ``args.head_mode``.

    ``base`` is a pretrained folder/Hub id (frozen modes, and the architecture for the others) or a
    config. Frozen modes keep the pretrained input normalization; ``scratch``/``direct`` use
    ``input_normalization`` fitted on the task's training split. New weights are drawn from
    ``args.seed``, so a model does not depend on what ran before it in the same process.
    """
    set_seed(args.seed)
    targets = target_normalization.target_statistics()
    if targets["target_variables"] != list(args.target_variables):
        raise ValueError(
            f"target_normalization is for {targets['target_variables']}, but args.target_variables is {list(args.target_variables)}"
        )
    distribution = {**distribution_settings(args), **args.hbv_settings()}
    if args.head_mode in FROZEN_BACKBONE_MODES:
        if isinstance(base, StefaLandConfig):
            raise ValueError(f"head_mode={args.head_mode!r} needs a pretrained model folder or Hub id as base, got a config")
        model = StefaLandForTimeSeriesRegression.from_pretrained(
            base, head_mode=args.head_mode, head_hidden_size=args.head_hidden_size,
            embedding_adds_static=args.embedding_adds_static, **targets, **distribution
        )
        adapter = ResConnConfig(
            target_variables=targets["target_variables"],
            target_mean=targets["target_mean"],
            target_std=targets["target_std"],
            head_mode=args.head_mode,
            head_hidden_size=args.head_hidden_size,
            head_dropout=args.head_dropout,
            embedding_scale_init=args.embedding_scale_init,
            embedding_adds_static=args.embedding_adds_static,
            output_transform=args.output_transform,
            **distribution,
        )
        return get_peft_model(model, adapter)
    config = base if isinstance(base, StefaLandConfig) else StefaLandConfig.from_pretrained(base)
    if input_normalization is None:
        raise ValueError(f"head_mode={args.head_mode!r} trains from random weights and needs input_normalization")
    config = config.replace(
        **input_normalization.input_statistics(), **targets, head_mode=args.head_mode, head_hidden_size=args.head_hidden_size,
        head_dropout=args.head_dropout, embedding_scale_init=args.embedding_scale_init,
        embedding_adds_static=args.embedding_adds_static, output_transform=args.output_transform,
        **distribution,
    )
    return StefaLandForTimeSeriesRegression(config)


def distribution_settings(args: FinetuneArguments) -> dict:
    """The head's distribution fields (StefaLandConfig / ResConnConfig) of a finetuning: the quantile list only for a
    quantile head, so a point or CMAL model's config holds none."""
    quantiles = list(args.quantiles) if args.output_distribution == "quantile" else None
    return {"output_distribution": args.output_distribution, "mixture_components": args.mixture_components, "quantiles": quantiles}


def _window_metrics(eval_windows: WindowDataset, target_index: int = 0):
    """compute_metrics for Trainer: median over validation sites of NSE/KGE/RMSE on the label days."""
    site_of_window = eval_windows.site_index

    def compute(prediction: EvalPrediction) -> dict[str, float]:
        pred, obs = np.asarray(prediction.predictions), np.asarray(prediction.label_ids)
        pred, obs = pred[..., target_index], obs[..., target_index]
        # sites can have different numbers of windows (those without observed label days are dropped): pad with NaN
        rows = [site_of_window == s for s in np.unique(site_of_window)]
        width = max(int(r.sum()) for r in rows) * obs.shape[1]
        padded = np.full((2, len(rows), width), np.nan)
        for i, r in enumerate(rows):
            padded[0, i, : r.sum() * obs.shape[1]] = obs[r].ravel()
            padded[1, i, : r.sum() * obs.shape[1]] = pred[r].ravel()
        return summarize(site_metrics(padded[0], padded[1], metrics=("nse", "kge", "rmse")))

    return compute


def finetune(
    base,
    dataset,
    split,
    args: FinetuneArguments,
) -> dict[str, Any]:
    """Finetune on ``split`` (train/val parts), evaluate on its test part; returns a report dict.

    Writes ``output_dir/{adapter|model}``, ``metrics_per_site.csv``, ``report.json`` and, per evaluation,
    a row of ``evaluations.csv`` (and a line on the console).
    """
    output_dir = Path(args.output_dir)
    started = time.time()
    reference = base if isinstance(base, StefaLandConfig) else StefaLandConfig.from_pretrained(base)
    variables = {
        "dynamic_variables": reference.dynamic_variables,
        "static_variables": reference.static_variables,
        "target_variables": list(args.target_variables),
    }
    require_gauged(dataset, split)  # an ungauged site would train on nothing or be scored on nothing
    if len(split.sites("val")) == 0:
        raise ValueError(f"split {split.name!r} has no validation sites; early stopping needs some (e.g. val_fraction > 0)")
    normalization = fit_normalization(dataset, split.sites("train"), split.period("train"), **variables)
    with quiet_library_output():
        model = build_finetune_model(base, args, normalization, normalization)
    manifest = build_manifest(
        "finetuning",
        args.run_arguments(),
        data={**dataset_fingerprint(dataset), "split": split.to_dict()},
        base_model=_base_identity(base, reference, model, args.head_mode),
    )
    prepare_run_folder(output_dir, manifest, overwrite=args.overwrite, state=PartialState())

    cached = args.embedding_cache and args.head_mode in FROZEN_BACKBONE_MODES
    unused = [f"--{name} {getattr(args, name)}" for name in head_class(TASK_HEADS, args.head_mode).unread_settings
              if getattr(args, name) != FinetuneArguments.__dataclass_fields__[name].default]
    if args.output_distribution != "cmal" and args.mixture_components != FinetuneArguments.mixture_components:
        unused.append(f"--mixture_components {args.mixture_components}")
    if args.output_distribution != "quantile" and tuple(args.quantiles) != DEFAULT_QUANTILES:
        unused.append(f"--quantiles {' '.join(map(str, args.quantiles))}")
    if not args.hbv_settings():
        if args.hbv_nmul != FinetuneArguments.hbv_nmul:
            unused.append(f"--hbv_nmul {args.hbv_nmul}")
        if tuple(args.hbv_dynamic_parameters) != DEFAULT_DYNAMIC_PARAMETERS:
            unused.append(f"--hbv_dynamic_parameters {' '.join(args.hbv_dynamic_parameters)}")
    if unused:
        print(f"[{args.head_mode}] {', '.join(unused)} do not apply to this head (output_distribution={args.output_distribution})")
    if cached and args.stride != 1:
        print(f"[{args.head_mode}] --stride {args.stride} does not apply: frozen-encoder windows come from the embedding cache's grid (--embedding_cache_stride)")
    if not cached and args.embedding_cache_stride is not None:
        print(f"[{args.head_mode}] --embedding_cache_stride does not apply: this run has no embedding cache (windows every --stride {args.stride} days)")
    train_windows = WindowDataset.from_split(
        dataset, split, "train", seq_len=args.seq_len, warmup=args.warmup, stride=(args.embedding_cache_stride or args.seq_len - args.warmup) if cached else args.stride,
        min_observed=args.min_observed, **variables,
    )
    # windows without an observed label day add nothing to the validation loss; none at all would make it 0
    val_windows = WindowDataset.from_split(
        dataset, split, "val", seq_len=args.seq_len, warmup=args.warmup, stride=args.seq_len - args.warmup, min_observed=1, **variables
    )
    for part, windows in (("train", train_windows), ("val", val_windows)):
        if len(windows) == 0:
            raise ValueError(
                f"split {split.name!r}: no {part} window of {args.seq_len} days holds an observed {'/'.join(args.target_variables)} "
                f"value after its {args.warmup}-day warm-up ({len(split.sites(part))} {part} sites, period {split.period(part)})"
            )
    caches = {}
    if cached:
        caches = {part: EmbeddingCache.for_windows(model, w, args.embedding_cache_dir, args.per_device_eval_batch_size) for part, w in (("train", train_windows), ("val", val_windows))}
        train_windows, val_windows = CachedEmbeddingWindows(train_windows, caches["train"]), CachedEmbeddingWindows(val_windows, caches["val"])
    trainable, total = _count_parameters(model)
    logger.info("head_mode=%s: %d trainable of %d parameters", args.head_mode, trainable, total)
    print(f"[{args.head_mode}] trainable parameters: {trainable:,} of {total:,}")

    trainer = ObservedLabelTrainer(
        model=model,
        args=replace(args, output_dir=str(output_dir / "checkpoints"), push_to_hub=False),  # checkpoints in a subfolder; the examples push the final model
        data_collator=collate_model_batch,
        train_dataset=train_windows,
        eval_dataset=val_windows,
        compute_metrics=_window_metrics(val_windows),
        callbacks=[EarlyStoppingCallback(early_stopping_patience=args.patience)],
    )
    EvaluationConsole.install(trainer, args.head_mode, output_dir)
    with quiet_library_output():
        trainer.train()
    fit_seconds = time.time() - started

    is_adapter = isinstance(model, PeftModel)
    artifact = output_dir / ("adapter" if is_adapter else "model")
    with quiet_library_output():
        trainer.save_model(str(artifact))
    if trainer.is_world_process_zero():
        (artifact / "training_args.bin").unlink(missing_ok=True)  # a pickle; the arguments are in report.json
        (artifact / "normalization.json").write_text(json.dumps(normalization.to_dict(), indent=1))
        record = finetuning_record(args, manifest["base_model"] if is_adapter else None, dataset, split)
        (artifact / FINETUNING_FILE).write_text(json.dumps(record, indent=1, default=str))

    test = (dataset, split.sites("test"), split.period("test"), args.seq_len, args.warmup, args.per_device_eval_batch_size)
    evaluation = evaluate_sites(trainer.model, *test, **variables)
    mc_dropout, mc_seconds = None, 0.0
    if args.mc_dropout_passes:  # the same trained model, scored again on its dropout ensemble
        mc_started = time.time()
        mc_dropout = evaluate_sites(trainer.model, *test, **variables, mc_dropout_passes=args.mc_dropout_passes, seed=args.seed)
        mc_seconds = time.time() - mc_started
    report = {
        "head_mode": args.head_mode,
        "split": split.to_dict(),
        "trainable_parameters": trainable,
        "total_parameters": total,
        "train_seconds": round(fit_seconds, 1),
        "best_val_loss": trainer.state.best_metric,
        "steps": trainer.state.global_step,
        "embedding_cache": {part: {"path": str(c.path), "windows": c.manifest["shape"][0], "mib": round(c.nbytes / 2**20, 1)} for part, c in caches.items()},
        "summary": evaluation["summary"],
        "n_test_sites": len(evaluation["site_ids"]),
        "n_test_sites_observed": evaluation["n_sites_observed"],
        "arguments": args.to_dict(),
        "artifact": str(artifact),
    }
    if "reliability" in evaluation:
        report["reliability"] = evaluation["reliability"]
    if mc_dropout is not None:
        report["mc_dropout"] = {
            "passes": args.mc_dropout_passes, "seconds": round(mc_seconds, 1), "summary": mc_dropout["summary"],
            "n_test_sites_observed": mc_dropout["n_sites_observed"], "reliability": mc_dropout["reliability"],
        }
    if trainer.is_world_process_zero():
        write_site_metrics(evaluation, output_dir / "metrics_per_site.csv")
        write_test_quantiles(evaluation, output_dir / TEST_QUANTILES_FILE)
        if mc_dropout is not None:
            write_site_metrics(mc_dropout, output_dir / "metrics_per_site_mc_dropout.csv")
            write_test_quantiles(mc_dropout, output_dir / MC_DROPOUT_QUANTILES_FILE)
        (output_dir / "report.json").write_text(json.dumps(report, indent=1, default=str))
    report["evaluation"] = evaluation
    if mc_dropout is not None:
        report["mc_dropout_evaluation"] = mc_dropout
    return report


# the test basins' observations, prediction and central-interval bounds of a probabilistic evaluation (for figures)
TEST_QUANTILES_FILE, MC_DROPOUT_QUANTILES_FILE = "test_quantiles.npz", "test_quantiles_mc_dropout.npz"


FINETUNING_FILE = "finetuning.json"  # beside the weights: what prediction needs to run them as they were trained


def finetuning_record(args: FinetuneArguments, base_model: dict, dataset=None, split=None) -> dict:
    """The windows the model was trained on and, for an adapter, the frozen base it needs (name and backbone
    SHA-256), so ``stefaland predict`` runs it as trained and refuses another base; and the data it saw: the dataset
    and its configuration (for CAMELS-US the forcing product), and the sites and periods of its training and
    validation parts, so that predictions on those site-days are flagged as in-sample."""
    record = {
        "head_mode": args.head_mode,
        "target_variables": list(args.target_variables),
        "seq_len": args.seq_len,
        "warmup": args.warmup,
        "base_model": base_model,
    }
    if dataset is not None:
        ids = list(dataset["site_id"]) if split is not None else []
        record["data"] = {
            "builder": dataset.info.builder_name,
            "config": dataset.info.config_name,
            "trained_on": None if split is None else {
                "site_ids": sorted({ids[i] for part in ("train", "val") for i in split.sites(part)}),
                "periods": [split.period("train"), split.period("val")],
            },
        }
    return record


def _count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def _base_identity(base, reference: StefaLandConfig, model, head_mode: str) -> dict:
    """What the run started from: the frozen backbone's hash, or the architecture a model trains from scratch."""
    name = None if isinstance(base, StefaLandConfig) else str(base)
    if head_mode not in FROZEN_BACKBONE_MODES:
        return {"name": name, "config": reference.to_dict()}
    backbone = model.get_base_model() if isinstance(model, PeftModel) else model
    return {"name": name, "backbone_sha256": backbone_fingerprint(backbone.stefaland)}
