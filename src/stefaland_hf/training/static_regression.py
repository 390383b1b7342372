"""Static (per-site) regression: finetuning ``StefaLandForStaticRegression`` with ``transformers.Trainer``,
k-fold cross-validation over sites, and a random-forest baseline on the same information.

The task of the paper's soil-texture experiment: predict static attributes of a site (e.g.
``sand_fraction`` and ``clay_fraction``) from its daily forcings and its *other* static attributes.

- :class:`StaticRegressionDataset` serves per-site examples: ``samples_per_site`` windows of
  ``seq_len`` days of forcings per site (random starts within ``period`` for training, evenly spaced
  starts for evaluation), the static attributes and ``labels`` [K] = the target attributes. The
  model hides the target attributes from its own input (``StefaLandForStaticRegression``); further
  attributes named in ``hidden_variables`` are set to NaN here (the model treats NaN as masked).
- :func:`train_static_regression` trains one model (frozen backbone + MLP head for ``resconn``/
  ``no_adapter``, linear head for ``linear_probe``, the whole architecture for ``scratch``, an MLP
  on raw inputs for ``direct``) with early stopping on held-out validation sites.
- :func:`predict_static` predicts sites as the mean over ``eval_windows`` evenly spaced windows.
- :func:`cross_validate_static` runs k-fold CV over sites (:func:`~stefaland_hf.data.splits.pub_folds`),
  fits the label normalization (and, for ``scratch``/``direct``, the input normalization) on the
  training sites of each fold only, and scores each held-out fold per target with R² (the NSE formula
  across sites, as the paper's reference code computes ``r2``) and Pearson r. The
  :func:`random_forest_features` baseline (``sklearn.ensemble.RandomForestRegressor``) sees the same
  information: the model's static attributes minus the targets and ``hidden_variables``, plus the mean
  and standard deviation of each dynamic input over ``period``; NaN features are imputed with
  training-fold means.

Static targets do not change in time, so windows may come from the whole record: held-out sites are
never read in training, normalization or imputation.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from transformers import EarlyStoppingCallback

from ..configuration_stefaland import FROZEN_BACKBONE_MODES, StefaLandConfig
from ..data.normalization import STD_FLOOR_ABSOLUTE, STD_FLOOR_RELATIVE, fit_normalization
from ..data.splits import pub_folds
from ..data.windows import SiteArrays, collate_windows
from ..metrics import nse, pearson_r, standard_error
from ..modeling_stefaland import StefaLandForStaticRegression
from .argument_checks import require_at_least, require_period, require_positive
from .arguments import StefaLandTrainingArguments, trainer_default
from .run_folder import build_manifest, dataset_fingerprint, prepare_run_folder
from .console import EvaluationConsole, quiet_library_output
from .trainer import ObservedLabelTrainer

logger = logging.getLogger(__name__)

__all__ = [
    "StaticRegressionArguments",
    "StaticRegressionDataset",
    "build_static_model",
    "train_static_regression",
    "predict_static",
    "random_forest_features",
    "cross_validate_static",
    "score_sites",
    "DEFAULT_TARGETS",
    "TEXTURE_DERIVED",
]

DEFAULT_TARGETS = ("sand_fraction", "clay_fraction")
#: Attributes computed from soil texture (silt = 1 - sand - clay; CAMELS and SynthLand porosity and
#: conductivity come from pedotransfer regressions on sand and clay; max water content = depth x porosity).
TEXTURE_DERIVED = ("silt_fraction", "soil_porosity", "soil_conductivity", "max_water_content")
MODEL_KEY, RF_KEY = "stefaland", "random_forest"


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
        require_at_least(self, 1, "samples_per_site", "eval_windows")
        require_positive(self, "val_fraction")
        require_period(self, "period")
        super().__post_init__()


def _collate(batch) -> dict:
    return collate_windows(batch, drop_keys=("site_index", "start"))


def target_matrix(data, targets: Sequence[str]) -> np.ndarray:
    """The target attributes float32 [N, K] (from the dataset's static attributes)."""
    a = SiteArrays.wrap(data)
    missing = [t for t in targets if t not in a.static_variables]
    if missing:
        raise ValueError(f"targets {missing} are not static attributes of this dataset (it has {a.static_variables})")
    return a.static_matrix(list(targets)).copy()


def _even_starts(p0: int, p1: int, seq_len: int, n: int) -> np.ndarray:
    return np.unique(np.round(np.linspace(p0, p1 - seq_len, max(n, 1))).astype(np.int64))


class StaticRegressionDataset(torch.utils.data.Dataset):
    """Per-site examples: windows of forcings, static attributes, and the target attributes as labels.

    ``random_windows=True`` (training): ``samples_per_site`` items per site whose start is drawn
    afresh at every access from a generator seeded with ``seed`` (so every epoch sees new windows;
    deterministic with ``dataloader_num_workers=0``). ``random_windows=False`` (evaluation):
    ``samples_per_site`` evenly spaced windows over ``period``, the same at every access.

    Items: ``x_dynamic`` [L, F], ``x_static`` [C] (``hidden_variables`` set to NaN), ``labels`` [K],
    ``site_index`` (dataset row), ``start`` (first day, index into the dataset's dates).
    """

    def __init__(
        self,
        data,
        sites: Sequence[int] | np.ndarray,
        targets: Sequence[str],
        period: Any = None,
        seq_len: int = 365,
        samples_per_site: int = 1,
        random_windows: bool = True,
        seed: int = 0,
        dynamic_variables: Sequence[str] | None = None,
        static_variables: Sequence[str] | None = None,
        hidden_variables: Sequence[str] = (),
    ):
        self.arrays = a = SiteArrays.wrap(data)
        self.sites = np.asarray(sites, dtype=np.int64).ravel()
        if self.sites.size == 0:
            raise ValueError("StaticRegressionDataset: no sites")
        self.targets = list(targets)
        self.seq_len, self.random_windows = int(seq_len), bool(random_windows)
        self.p0, self.p1 = a.period_index(period)
        if self.p1 - self.p0 < seq_len:
            raise ValueError(f"period has {self.p1 - self.p0} days, shorter than seq_len={seq_len}")
        self.dynamic_variables = list(a.dynamic_variables if dynamic_variables is None else dynamic_variables)
        self.static_variables = list(a.static_variables if static_variables is None else static_variables)
        self._dyn_cols = a.column_map("dynamic", self.dynamic_variables)
        static = a.static_matrix(self.static_variables).copy()
        hidden = [n for n in hidden_variables if n in self.static_variables]
        static[:, [self.static_variables.index(n) for n in hidden]] = np.nan
        self._static = static
        self._labels = target_matrix(a, self.targets)
        if random_windows:
            self.per_site = max(int(samples_per_site), 1)
            self._starts = None
            self._rng = np.random.default_rng(seed)
        else:
            self._starts = _even_starts(self.p0, self.p1, self.seq_len, samples_per_site)
            self.per_site = len(self._starts)

    def __len__(self) -> int:
        return len(self.sites) * self.per_site

    @property
    def site_index(self) -> np.ndarray:
        return np.repeat(self.sites, self.per_site)

    def _batch(self, idx) -> dict[str, np.ndarray]:
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} examples")
        q, r = np.divmod(idx, self.per_site)
        sites = self.sites[q]
        if self._starts is None:
            starts = self._rng.integers(self.p0, self.p1 - self.seq_len + 1, size=len(idx))
        else:
            starts = self._starts[r]
        return {
            "x_dynamic": self.arrays.gather_dynamic(sites, starts, self.seq_len, self._dyn_cols),
            "x_static": self._static[sites],
            "labels": self._labels[sites],
            "site_index": sites,
            "start": starts.astype(np.int64),
        }

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return {k: v[0] for k, v in self._batch([int(i)]).items()}

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, np.ndarray]]:
        batch = self._batch(indices)
        return [{k: v[i] for k, v in batch.items()} for i in range(len(indices))]


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
    head = {
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
    inputs = {k: v for k, v in input_normalization.to_config_kwargs().items() if not k.startswith("target")}
    return StefaLandForStaticRegression(StefaLandConfig(**{**config.to_dict(), **inputs, **head}))


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
        data_collator=_collate,
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
    device = next(model.parameters()).device
    model.eval()
    outputs = []
    with torch.no_grad():
        for b0 in range(0, len(data), batch_size):
            batch = _collate(data.__getitems__(list(range(b0, min(b0 + batch_size, len(data))))))
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


def random_forest_features(
    dataset,
    dynamic_variables: Sequence[str],
    static_variables: Sequence[str],
    exclude: Sequence[str] = (),
    period: Any = None,
    site_chunk: int = 64,
) -> tuple[np.ndarray, list[str]]:
    """Per-site features float64 [N, M] and their names: the static attributes (minus ``exclude`` and
    those the dataset lacks) and the mean and standard deviation of each dynamic variable the dataset
    has, over ``period``. NaN stays NaN (impute per fold)."""
    a = SiteArrays.wrap(dataset)
    statics = [n for n in static_variables if n not in set(exclude)]
    static = a.static_matrix(statics).astype(np.float64)
    keep_static = [j for j in range(len(statics)) if np.isfinite(static[:, j]).any()]
    dynamics = [n for n in dynamic_variables if n in a.dynamic_variables]
    p0, p1 = a.period_index(period)
    cols = a.column_map("dynamic", dynamics)
    means, stds = [], []
    for c0 in range(0, a.n_sites, site_chunk):
        chunk = np.arange(c0, min(c0 + site_chunk, a.n_sites), dtype=np.int64)
        x = a.gather_dynamic(chunk, np.full(len(chunk), p0), p1 - p0, cols).astype(np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            means.append(np.nanmean(x, axis=1))
            stds.append(np.nanstd(x, axis=1))
    features = np.concatenate([static[:, keep_static], np.concatenate(means), np.concatenate(stds)], axis=1)
    names = [statics[j] for j in keep_static] + [f"{n}_mean" for n in dynamics] + [f"{n}_std" for n in dynamics]
    return features, names


def _impute(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fill = np.nanmean(train, axis=0)
    fill = np.where(np.isfinite(fill), fill, 0.0)
    return [np.where(np.isfinite(x), x, fill) for x in (train, *others)]


def score_sites(observations: np.ndarray, predictions: np.ndarray, targets: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per target: R² (NSE formula across sites) and Pearson r across sites."""
    return {
        t: {"r2": nse(observations[:, k], predictions[:, k]), "pearson_r": pearson_r(observations[:, k], predictions[:, k])}
        for k, t in enumerate(targets)
    }


def cross_validate_static(
    base,
    dataset,
    targets: Sequence[str] = DEFAULT_TARGETS,
    folds: int = 5,
    seed: int = 111,
    args: StaticRegressionArguments | None = None,
    random_forest: bool = True,
    rf_params: dict | None = None,
    run_model: bool = True,
) -> dict[str, Any]:
    """k-fold CV over sites of StefaLand static regression and a random forest, side by side.

    Sites whose target attributes are not all finite are left out of every fold (listed in
    ``excluded_sites``). Each fold: the model trains on the fold's training sites with early stopping
    on its validation sites (both drawn from the other folds), the forest on training + validation
    sites; both predict the held-out fold. Writes ``report.json``, ``scores.csv`` and
    ``predictions.csv`` to ``args.output_dir``.

    Returns ``{"targets", "models", "folds": [{"fold", "train_sites", "val_sites", "test_sites",
    "normalization", "scores": {model: {target: {"r2", "pearson_r"}}}, ...}], "summary": {model:
    {target: {"r2_mean", "r2_se", "pearson_r_mean", "pearson_r_se"}}}, "predictions": {"site_ids",
    "fold", "observations" [S, K], model: [S, K]}, "rf_features", "excluded_sites", "arguments"}``.
    """
    args = args or StaticRegressionArguments()
    targets = list(targets)
    out = Path(args.output_dir)
    settings = {k: v for k, v in asdict(args).items() if k not in ("output_dir", "overwrite", "disable_tqdm")}
    arguments = {**settings, "targets": targets, "folds": folds, "cv_seed": seed, "random_forest": random_forest, "rf_params": rf_params, "run_model": run_model}
    identity = dataset_fingerprint(dataset) if hasattr(dataset, "info") else {"site_ids": list(SiteArrays.wrap(dataset).site_ids)}
    base_identity = {"config": base.to_dict()} if isinstance(base, StefaLandConfig) else {"name": str(base)}
    prepare_run_folder(out, build_manifest("static_regression_cv", arguments, data=identity, base_model=base_identity), overwrite=args.overwrite)
    a = SiteArrays.wrap(dataset)
    reference = base if isinstance(base, StefaLandConfig) else StefaLandConfig.from_pretrained(base)
    labels = target_matrix(a, targets)
    missing_in_model = [t for t in targets if t not in reference.static_variables]
    if missing_in_model:
        logger.info("targets %s are not inputs of the model (nothing to hide)", missing_in_model)
    eligible = np.flatnonzero(np.isfinite(labels).all(axis=1))
    excluded = [a.site_ids[i] for i in np.setdiff1d(np.arange(a.n_sites), eligible)]
    if excluded:
        warnings.warn(f"cross_validate_static: {len(excluded)} sites without finite targets are left out: {excluded[:10]}", UserWarning, stacklevel=2)
    splits = pub_folds([a.site_ids[i] for i in eligible], k=folds, seed=seed, val_fraction=args.val_fraction, name="static_cv")

    models = ([MODEL_KEY] if run_model else []) + ([RF_KEY] if random_forest else [])
    if not models:
        raise ValueError("cross_validate_static: nothing to run (run_model=False and random_forest=False)")
    rf_features = rf_names = None
    if random_forest:
        exclude = set(targets) | set(args.hidden_variables)
        rf_features, rf_names = random_forest_features(a, reference.dynamic_variables, reference.static_variables, exclude, args.period)
    rf_params = {"n_estimators": 300, "min_samples_leaf": 2, "n_jobs": 1, **(rf_params or {})}

    fold_reports = []
    pred = {m: np.full(labels.shape, np.nan, dtype=np.float64) for m in models}
    fold_of_site = np.full(a.n_sites, -1, dtype=np.int64)
    for k, split in enumerate(splits):
        train, val, test = (eligible[split.sites(p)] for p in ("train", "val", "test"))
        fold_of_site[test] = k
        report: dict[str, Any] = {
            "fold": k,
            "train_sites": [a.site_ids[i] for i in train],
            "val_sites": [a.site_ids[i] for i in val],
            "test_sites": [a.site_ids[i] for i in test],
            "scores": {},
        }
        if run_model:
            fold_args = StaticRegressionArguments(**{**asdict(args), "seed": args.seed + k, "overwrite": False})
            model, info = train_static_regression(base, a, train, val, targets, fold_args, output_dir=out / f"fold{k}")
            result = predict_static(model, a, test, args.period, args.seq_len, args.eval_windows, args.hidden_variables, args.eval_batch_size)
            pred[MODEL_KEY][test] = result["predictions"]
            report.update(info)
            report["scores"][MODEL_KEY] = score_sites(labels[test], result["predictions"], targets)
            del model
        if random_forest:
            from sklearn.ensemble import RandomForestRegressor

            fit_rows = np.concatenate([train, val])
            x_fit, x_test = _impute(rf_features[fit_rows], rf_features[test])
            for j in range(len(targets)):
                forest = RandomForestRegressor(random_state=seed + k, **rf_params).fit(x_fit, labels[fit_rows, j])
                pred[RF_KEY][test, j] = forest.predict(x_test)
            report["rf_impute_sites"] = [a.site_ids[i] for i in fit_rows]
            report["scores"][RF_KEY] = score_sites(labels[test], pred[RF_KEY][test], targets)
        line = "; ".join(
            f"{m} " + ", ".join(f"{t} R2 {s['r2']:.3f} r {s['pearson_r']:.3f}" for t, s in report["scores"][m].items()) for m in models
        )
        print(f"[static CV] fold {k + 1}/{len(splits)} ({len(test)} held-out sites): {line}")
        fold_reports.append(report)

    summary = {
        m: {
            t: {
                f"{metric}_{stat}": fn([f["scores"][m][t][metric] for f in fold_reports])
                for metric in ("r2", "pearson_r")
                for stat, fn in (("mean", lambda v: float(np.nanmean(v))), ("se", standard_error))
            }
            for t in targets
        }
        for m in models
    }
    result = {
        "targets": targets,
        "models": models,
        "head_mode": args.head_mode if run_model else None,
        "folds": fold_reports,
        "summary": summary,
        "predictions": {
            "site_ids": [a.site_ids[i] for i in eligible],
            "fold": fold_of_site[eligible].tolist(),
            "observations": labels[eligible],
            **{m: pred[m][eligible] for m in models},
        },
        "rf_features": rf_names,
        "rf_params": rf_params if random_forest else None,
        "excluded_sites": excluded,
        "arguments": {**asdict(args), "folds": folds, "cv_seed": seed},
    }
    _write_outputs(result, out)
    return result


def _write_outputs(result: dict[str, Any], out: Path) -> None:
    import pandas as pd

    rows = [
        {"model": m, "target": t, "fold": f["fold"], **f["scores"][m][t]}
        for f in result["folds"]
        for m in result["models"]
        for t in result["targets"]
    ]
    pd.DataFrame(rows).to_csv(out / "scores.csv", index=False)
    p = result["predictions"]
    frame = {"site_id": p["site_ids"], "fold": p["fold"]}
    for k, t in enumerate(result["targets"]):
        frame[f"{t}_observed"] = p["observations"][:, k]
        for m in result["models"]:
            frame[f"{t}_{m}"] = p[m][:, k]
    pd.DataFrame(frame).to_csv(out / "predictions.csv", index=False)
    serializable = {k: v for k, v in result.items() if k != "predictions"}
    (out / "report.json").write_text(json.dumps(serializable, indent=1, default=str))
