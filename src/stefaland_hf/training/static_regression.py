"""Static (per-site) regression: finetuning ``StefaLandForStaticRegression`` with ``transformers.Trainer``.

Predicts static attributes of a site (e.g. ``sand_fraction`` and ``clay_fraction``) from its daily
forcings and its *other* static attributes, on per-site examples
(:class:`~stefaland_hf.data.samplers.StaticRegressionDataset`). The model hides the target attributes
from its own input; further attributes named in ``hidden_variables`` are set to NaN by the dataset
(the model treats NaN as masked).

- :func:`train_static_regression` trains one model (frozen backbone + MLP head for ``resconn``/
  ``no_adapter``, linear head for ``linear_probe``, the whole architecture for ``scratch``, an MLP
  on raw inputs for ``direct``) with early stopping on held-out validation sites; the label
  normalization (and, for ``scratch``/``direct``, the input normalization) is fitted on the training
  sites only.
- :func:`predict_static` predicts sites as the mean over ``eval_windows`` evenly spaced windows.

The cross-validated experiment beside a random forest is :mod:`stefaland_hf.experiments.soil_texture`.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from transformers import EarlyStoppingCallback

from ..configuration_stefaland import FROZEN_BACKBONE_MODES, HBV_HEAD_MODES, HEAD_MODES, StefaLandConfig
from ..data.normalization import STD_FLOOR_ABSOLUTE, STD_FLOOR_RELATIVE, fit_normalization
from ..data.samplers import StaticRegressionDataset, collate_model_batch, target_matrix
from ..data.site_arrays import SiteArrays
from ..evaluation import model_device
from ..modeling_stefaland import StefaLandForStaticRegression
from .argument_checks import require_at_least, require_period, require_positive
from .arguments import StefaLandTrainingArguments, trainer_default
from .console import EvaluationConsole, quiet_library_output
from .trainer import ObservedLabelTrainer

logger = logging.getLogger(__name__)

__all__ = [
    "StaticRegressionArguments",
    "build_static_model",
    "train_static_regression",
    "predict_static",
]


@dataclass
class StaticRegressionArguments(StefaLandTrainingArguments):
    """Static regression (:func:`train_static_regression`): per-site windows and what is hidden; Trainer's own
    fields as in ``TrainingArguments``."""

    samples_per_site: int = field(default=8, metadata={"help": "random training windows per site and epoch"})
    eval_windows: int = field(default=4, metadata={"help": "evenly spaced windows averaged per site for validation and prediction"})
    period: list[str] | None = field(
        default=None, metadata={"metavar": "DATE", "help": "period the windows are drawn from: START END, inclusive (default: the whole record)"}
    )
    hidden_variables: list[str] = field(default_factory=list, metadata={"help": "more static inputs hidden (from the model and the random forest)"})
    val_fraction: float = field(default=0.1, metadata={"help": "fraction of the training sites used for early stopping"})
    save_models: bool = field(default=True, metadata={"help": "save each fold's model"})

    output_dir: str | None = trainer_default("output_dir", "runs/static_regression")
    per_device_train_batch_size: int = trainer_default("per_device_train_batch_size", 32)
    per_device_eval_batch_size: int = trainer_default("per_device_eval_batch_size", 64)
    max_steps: int = trainer_default("max_steps", 500)
    eval_steps: float | None = trainer_default("eval_steps", 50)
    prediction_loss_only: bool = trainer_default("prediction_loss_only", True)

    def __post_init__(self):
        if self.push_to_hub:  # Trainer would push each fold's checkpoints, not the finished models with their cards
            raise ValueError("StaticRegressionArguments.push_to_hub: push a fold's saved model with `stefaland push model`")
        require_at_least(self, 1, "samples_per_site", "eval_windows")
        require_positive(self, "val_fraction")
        require_period(self, "period")
        if self.head_mode in HBV_HEAD_MODES:
            raise ValueError(f"StaticRegressionArguments.head_mode={self.head_mode!r}: the differentiable-HBV heads predict daily "
                             f"streamflow; a static regression takes {[m for m in HEAD_MODES if m not in HBV_HEAD_MODES]}")
        super().__post_init__()


def _label_statistics(labels: np.ndarray) -> tuple[list[float], list[float]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(labels.astype(np.float64), axis=0)
        std = np.nanstd(labels.astype(np.float64), axis=0)
    if not np.all(np.isfinite(mean)):
        raise ValueError("a target attribute has no finite value on the training sites")
    std = np.maximum(std, STD_FLOOR_RELATIVE * np.abs(mean) + STD_FLOOR_ABSOLUTE)
    return mean.tolist(), std.tolist()


def build_static_model(
    base: str | Path | StefaLandConfig,
    targets: Sequence[str],
    target_mean: Sequence[float],
    target_std: Sequence[float],
    args: StaticRegressionArguments,
    input_normalization=None,
) -> StefaLandForStaticRegression:
    """The model for ``args.head_mode``: a pretrained backbone (frozen modes) or a fresh one
    (``scratch``/``direct``, whose inputs are normalized with ``input_normalization``)."""
    torch.manual_seed(args.seed)
    static_variables = (base if isinstance(base, StefaLandConfig) else StefaLandConfig.from_pretrained(base)).static_variables
    head = {
        "hidden_static_variables": [n for n in args.hidden_variables if n in static_variables],  # saved: a reload hides them too
        "head_mode": args.head_mode,
        "head_hidden_size": args.head_hidden_size,
        "head_dropout": args.head_dropout,
        "target_variables": list(targets),
        "target_mean": [float(v) for v in target_mean],
        "target_std": [float(v) for v in target_std],
    }
    if args.head_mode in FROZEN_BACKBONE_MODES:
        if isinstance(base, StefaLandConfig):
            raise ValueError(f"head_mode={args.head_mode!r} needs a pretrained model folder or Hub id as base, got a config")
        return StefaLandForStaticRegression.from_pretrained(base, **head)
    config = base if isinstance(base, StefaLandConfig) else StefaLandConfig.from_pretrained(base)
    if input_normalization is None:
        raise ValueError(f"head_mode={args.head_mode!r} trains from random weights and needs input_normalization")
    return StefaLandForStaticRegression(config.replace(**input_normalization.input_statistics(), **head))


def _count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def train_static_regression(
    base,
    dataset,
    train_sites: Sequence[int],
    val_sites: Sequence[int],
    targets: Sequence[str],
    args: StaticRegressionArguments,
    output_dir: str | Path | None = None,
) -> tuple[StefaLandForStaticRegression, dict[str, Any]]:
    """Fit one static-regression model on ``train_sites`` (early stopping on ``val_sites``).

    Label normalization (and the input normalization of ``scratch``/``direct``) is fitted on
    ``train_sites`` only. Returns ``(model, info)``; with ``args.save_models`` the model is saved to
    ``output_dir/model`` (``save_pretrained``; reload with ``StefaLandForStaticRegression.from_pretrained``).
    """
    output_dir = Path(output_dir or args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    a = SiteArrays.wrap(dataset)
    train_sites = np.asarray(train_sites, dtype=np.int64)
    val_sites = np.asarray(val_sites, dtype=np.int64)
    started = time.time()
    reference = base if isinstance(base, StefaLandConfig) else StefaLandConfig.from_pretrained(base)
    variables = {"dynamic_variables": list(reference.dynamic_variables), "static_variables": list(reference.static_variables)}

    target_mean, target_std = _label_statistics(target_matrix(a, targets)[train_sites])
    input_normalization = None
    if args.head_mode not in FROZEN_BACKBONE_MODES:
        input_normalization = fit_normalization(a, train_sites, args.period, target_variables=[], **variables)
    model = build_static_model(base, targets, target_mean, target_std, args, input_normalization)
    trainable, total = _count_parameters(model)
    logger.info("static regression head_mode=%s: %d trainable of %d parameters", args.head_mode, trainable, total)

    common = dict(targets=targets, period=args.period, seq_len=args.seq_len, hidden_variables=args.hidden_variables, **variables)
    train_data = StaticRegressionDataset(a, train_sites, samples_per_site=args.samples_per_site, random_windows=True, seed=args.seed, **common)
    val_data = (
        StaticRegressionDataset(a, val_sites, samples_per_site=args.eval_windows, random_windows=False, **common) if len(val_sites) else None
    )
    evaluate = val_data is not None
    checkpoints = output_dir / "checkpoints"
    # without validation sites nothing is evaluated, so nothing is checkpointed or restored
    unvalidated = {} if evaluate else {"eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False}
    trainer = ObservedLabelTrainer(
        model=model,
        args=replace(args, output_dir=str(checkpoints), **unvalidated),
        data_collator=collate_model_batch,
        train_dataset=train_data,
        eval_dataset=val_data,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=args.patience)] if evaluate else [],
    )
    EvaluationConsole.install(trainer, f"static {args.head_mode}", output_dir)
    with quiet_library_output():
        trainer.train()
    model = trainer.model.eval()
    info = {
        "head_mode": args.head_mode,
        "trainable_parameters": trainable,
        "total_parameters": total,
        "steps": trainer.state.global_step,
        "best_val_loss": trainer.state.best_metric,
        "train_seconds": round(time.time() - started, 1),
        "normalization": {
            "fitted_on_sites": [a.site_ids[i] for i in train_sites],
            "target_variables": list(targets),
            "target_mean": target_mean,
            "target_std": target_std,
            "inputs": "pretrained" if input_normalization is None else input_normalization.fitted_on,
        },
        "artifact": None,
    }
    if args.save_models:
        artifact = output_dir / "model"
        model.save_pretrained(str(artifact))
        (artifact / "static_regression.json").write_text(
            json.dumps({"hidden_variables": list(args.hidden_variables), "seq_len": args.seq_len, "eval_windows": args.eval_windows,
                        "period": args.period, "normalization": info["normalization"]}, indent=1, default=str)
        )
        info["artifact"] = str(artifact)
    shutil.rmtree(checkpoints, ignore_errors=True)  # the best model is loaded and saved above
    return model, info


def predict_static(
    model: StefaLandForStaticRegression,
    dataset,
    sites: Sequence[int] | None = None,
    period: Any = None,
    seq_len: int = 365,
    n_windows: int = 4,
    hidden_variables: Sequence[str] = (),
    batch_size: int = 64,
) -> dict[str, Any]:
    """Predict the target attributes of ``sites`` as the mean over ``n_windows`` evenly spaced windows.

    Returns ``{"predictions": [S, K], "window_predictions": [S, W, K], "observations": [S, K],
    "site_ids": [...], "sites": int64 [S], "target_variables": [...]}``.
    """
    a = SiteArrays.wrap(dataset)
    config = model.config
    sites = np.arange(a.n_sites, dtype=np.int64) if sites is None else np.asarray(sites, dtype=np.int64).ravel()
    data = StaticRegressionDataset(
        a, sites, config.target_variables, period=period, seq_len=seq_len, samples_per_site=n_windows, random_windows=False,
        dynamic_variables=config.dynamic_variables, static_variables=config.static_variables, hidden_variables=hidden_variables,
    )
    device = model_device(model)
    model.eval()
    outputs = []
    with torch.no_grad():
        for b0 in range(0, len(data), batch_size):
            batch = collate_model_batch(data.__getitems__(list(range(b0, min(b0 + batch_size, len(data))))))
            batch.pop("labels")
            batch = {k: v.to(device) for k, v in batch.items()}
            outputs.append(model(**batch).prediction.float().cpu().numpy())
    windows = np.concatenate(outputs).reshape(len(sites), data.per_site, len(config.target_variables))
    return {
        "predictions": windows.mean(axis=1),
        "window_predictions": windows,
        "observations": data._labels[sites],
        "site_ids": [a.site_ids[i] for i in sites],
        "sites": sites,
        "target_variables": list(config.target_variables),
    }
