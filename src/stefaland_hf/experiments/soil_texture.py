"""The soil-texture experiment: k-fold cross-validation over sites of static regression, beside a random forest.

The task of the paper's soil-texture experiment: predict static attributes of a site (e.g.
``sand_fraction`` and ``clay_fraction``) from its daily forcings and its *other* static attributes.
:func:`cross_validate_static` runs k-fold CV over sites (:func:`~stefaland_hf.data.splits.pub_folds`),
trains a model per fold with :func:`~stefaland_hf.training.static_regression.train_static_regression`
(which fits the label normalization, and for ``scratch``/``direct`` the input normalization, on the
fold's training sites only) and scores each held-out fold per target with R² (the NSE formula across
sites, as the paper's reference code computes ``r2``) and Pearson r (:func:`score_sites`). The
:func:`random_forest_features` baseline (``sklearn.ensemble.RandomForestRegressor``) sees the same
information: the model's static attributes minus the targets and ``hidden_variables``, plus the mean
and standard deviation of each dynamic input over ``period``; NaN features are imputed with
training-fold means. Results go to ``report.json``, ``scores.csv`` and ``predictions.csv``.

Static targets do not change in time, so windows may come from the whole record: held-out sites are
never read in training, normalization or imputation.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..configuration_stefaland import StefaLandConfig
from ..data.samplers import target_matrix
from ..data.site_arrays import SiteArrays
from ..data.splits import pub_folds
from ..metrics import nse, pearson_r, standard_error
from ..training.run_folder import build_manifest, dataset_fingerprint, prepare_run_folder
from ..training.static_regression import StaticRegressionArguments, predict_static, train_static_regression

logger = logging.getLogger(__name__)

__all__ = [
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
    visible_derived = [n for n in TEXTURE_DERIVED if n in reference.static_variables and n not in set(targets) | set(args.hidden_variables)]
    if visible_derived and set(targets) & {"sand_fraction", "clay_fraction", "silt_fraction"}:
        warnings.warn(
            f"cross_validate_static: {visible_derived} are computed from soil texture and stay inputs of both models, which "
            "inflates their scores; pass StaticRegressionArguments(hidden_variables=list(TEXTURE_DERIVED)) to hide them "
            "(examples/finetune_soil_texture.py does by default)",
            UserWarning,
            stacklevel=2,
        )
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
