"""Hub cards: every card is a Jinja template in the top-level ``hub_cards/`` (installed as ``stefaland_hf/hub_cards``).

:func:`render_model_card` (``model_card.md``), :func:`render_adapter_card` (``adapter_card.md``),
:func:`render_dataset_card` (``dataset_card.md``) and :func:`render_converted_card` (``converted_card.md``, the
card of an authors' checkpoint converted by :mod:`stefaland_hf.convert_original`) fill them with variables and
units, normalization, architecture, training data/period/split protocol, ``model-index`` results
(:func:`results_from_report`), limitations, citations and licence. Each card's "How to use" code loads the
artifact it describes from its Hub repo, or from its folder until it is pushed.

Rendering needs no push machinery: pretraining, finetuning and ``convert-original`` import this module only.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from huggingface_hub import DatasetCard, DatasetCardData, EvalResult, ModelCard, ModelCardData

from ..configuration_stefaland import HBV_HEAD_MODES
from ..differentiable_hbv import COMPONENT_PARAMETERS, DEFAULT_DYNAMIC_PARAMETERS
from ..variables import VARIABLES
from .names import hub_base

CARD_METRICS = ("nse", "kge", "rmse")
METRIC_NAMES = {
    "nse": "NSE (median over sites)",
    "kge": "KGE (median over sites)",
    "rmse": "RMSE (median over sites)",
    "ubrmse": "ubRMSE (median over sites)",
    "pearson_r": "Pearson r (median over sites)",
    "fhv": "FHV % (median over sites)",
    "flv": "FLV % (median over sites)",
}
TASK_TYPE = "time-series-forecasting"
LICENSE_TEXTS = {
    "apache-2.0": "Apache License 2.0 (the license of the `stefaland-hf` code).",
    "cc-by-4.0": "Creative Commons Attribution 4.0 International.",
    "other": "See the terms of the original data providers (cited above); redistribution may be restricted.",
}
DATASET_DEFAULTS = {
    "synthland": {
        "pretty_name": "SynthLand",
        "license": "apache-2.0",
        "summary": "Seeded virtual catchments with known truth: correlated static attributes, a stochastic weather "
        "generator and an HBV-like hydrologic model driven by them (streamflow, soil moisture and their "
        "noise-free `oracle`).",
        "limitations": "Synthetic data: a testbed for pipelines and methods with a known best possible prediction, "
        "not a substitute for observations. Skill on SynthLand says nothing about skill on real basins.",
    },
    "camels_us": {
        "pretty_name": "CAMELS-US",
        "license": "other",
        "summary": "671 US catchments (CAMELS, Newman et al. 2015; Addor et al. 2017): daily basin-mean forcings, "
        "catchment attributes and observed streamflow (mm/day).",
        "limitations": "Mostly minimally disturbed catchments in the contiguous US; gauge gaps are NaN. Models trained "
        "here extrapolate poorly to regulated, arid or cold regions outside CAMELS.",
    },
    "hydrodl_smap": {
        "pretty_name": "hydroDL SMAP (CONUS)",
        "license": "other",
        "summary": "CONUS grid cells with daily forcings, static attributes and SMAP L3 surface soil moisture "
        "(the hydroDL benchmark of Fang et al. 2017).",
        "limitations": "SMAP observes the top ~5 cm every 2-3 days (NaN otherwise); retrieval errors are larger under "
        "dense vegetation and frozen or snow-covered ground.",
    },
}
HEAD_DESCRIPTIONS = {
    "resconn": "resConn: LayerNorm(E)·s -> dual residual adapter (forcings + attributes) -> residual LSTM -> linear, "
    "on the frozen encoder",
    "no_adapter": "frozen encoder -> LSTM -> linear (no adapter)",
    "linear_probe": "frozen encoder -> linear probe",
    "scratch": "resConn architecture trained from random weights (encoder included)",
    "direct": "LSTM on the raw forcings and attributes (no StefaLand encoder)",
    "hbv": "δHBV: an LSTM on the raw forcings and attributes predicts the parameters of a differentiable HBV 1.1p, "
    "whose routed runoff is the streamflow (no StefaLand encoder)",
    "resconn_hbv": "the paper's hybrid: the resConn adapter on the frozen encoder predicts the parameters of a "
    "differentiable HBV 1.1p, whose routed runoff is the streamflow",
}
# what a card says about StefaLandConfig.output_transform / ResConnConfig.output_transform
OUTPUT_TRANSFORM_TEXT = {
    "clamp": "predictions are clipped to each target's physical range (e.g. streamflow >= 0 mm/day; `output_transform=clamp`)",
    "softplus": "predictions pass a softplus above each target's lower physical bound (`output_transform=softplus`)",
    "none": "predictions are the head's raw output and may leave the physical range (e.g. negative streamflow; `output_transform=none`)",
}
HBV_OUTPUT_TEXT = "streamflow is the routed runoff of the differentiable HBV and never negative (`output_transform` does not apply)"


def head_text(settings) -> str:
    """A head's description for a card, with its HBV settings for an HBV head (``settings``: a StefaLandConfig or a
    ResConnConfig, which share the head fields)."""
    text = HEAD_DESCRIPTIONS.get(settings.head_mode, settings.head_mode)
    if settings.head_mode not in HBV_HEAD_MODES:
        return text
    chosen = DEFAULT_DYNAMIC_PARAMETERS if settings.hbv_dynamic_parameters is None else settings.hbv_dynamic_parameters
    daily = [name for name in COMPONENT_PARAMETERS if name in chosen]
    return (f"{text}; HBV: {settings.hbv_nmul} parallel components, {', '.join(daily) or 'no parameter'} varying by day, "
            f"stores spun up on the first {settings.hbv_warmup_days} days of each window (docs/hbv.md)")


# what a card says about a distributional head (StefaLandConfig / ResConnConfig.output_distribution)
DISTRIBUTION_TEXT = {
    "cmal": "the head predicts a CMAL distribution per day (`output_distribution=cmal`): `prediction` is its mean, "
            "`predict_distribution(...)` gives its median and quantiles (docs/probabilistic.md)",
    "quantile": "the head predicts quantiles per day (`output_distribution=quantile`): `prediction` is the median, "
                "`predict_distribution(...)` gives the quantiles (docs/probabilistic.md)",
}


def output_text(settings) -> str:
    """What a card says about how the outputs respect the targets' range, and about a distributional head."""
    if settings.head_mode in HBV_HEAD_MODES:
        return HBV_OUTPUT_TEXT
    distribution = DISTRIBUTION_TEXT.get(settings.output_distribution)
    return OUTPUT_TRANSFORM_TEXT[settings.output_transform] + (f"; {distribution}" if distribution else "")


# how a model card's "How to use" loads each architecture: (module, class), and the Auto class of the saved
# auto_map that loads it as remote code. With the package installed, AutoModel gives a static regression
# model's encoder only (the registered StefaLandModel), so that card imports the class itself.
LOADERS = {
    "StefaLandModel": ("transformers", "AutoModel", 'AutoModel.from_pretrained("{0}", trust_remote_code=True)'),
    "StefaLandForPretraining": ("transformers", "AutoModelForPreTraining", 'AutoModelForPreTraining.from_pretrained("{0}", trust_remote_code=True)'),
    "StefaLandForTimeSeriesRegression": (
        "transformers", "AutoModelForTimeSeriesPrediction", 'AutoModelForTimeSeriesPrediction.from_pretrained("{0}", trust_remote_code=True)'
    ),
    # no Auto class stands for a static-regression model (AutoModel gives its encoder): name the bundled class
    "StefaLandForStaticRegression": (
        "stefaland_hf",
        "StefaLandForStaticRegression",
        'transformers.dynamic_module_utils.get_class_from_dynamic_module("modeling_stefaland.StefaLandForStaticRegression", "{0}")'
        '.from_pretrained("{0}")',
    ),
}


# ================================================================================================
# Templates
# ================================================================================================
def cards_dir() -> Path:
    """The top-level ``hub_cards/`` of a source checkout, or its copy ``stefaland_hf/hub_cards`` in a wheel."""
    checkout = Path(__file__).resolve().parents[3] / "hub_cards"
    return checkout if checkout.is_dir() else Path(__file__).resolve().parents[1] / "hub_cards"


def template_path(name: str) -> Path:
    """Path of a card template (``model_card.md``, ``adapter_card.md``, ``dataset_card.md``, ``converted_card.md``)."""
    path = cards_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"card template {name!r} not found in {cards_dir()}")
    return path


# ================================================================================================
# Helpers
# ================================================================================================
def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.{digits}g}"
    return str(value)


def _variable_rows(names: Sequence[str] | None, mean: Sequence[float] | None, std: Sequence[float] | None) -> list[dict]:
    rows = []
    for i, name in enumerate(names or []):
        var = VARIABLES.get(name)
        rows.append(
            {
                "name": name,
                "unit": var.unit if var else "?",
                "description": var.description if var else "",
                "mean": _fmt(float(mean[i])) if mean is not None else "none (identity)",
                "std": _fmt(float(std[i])) if std is not None else "none (identity)",
            }
        )
    return rows


def _load_report(report: str | os.PathLike | Mapping | None) -> dict | None:
    if report is None:
        return None
    if isinstance(report, Mapping):
        return dict(report)
    path = Path(report)
    if path.is_dir():
        path = path / "report.json"
    return json.loads(path.read_text())


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "dataset"


def results_from_report(
    report: str | os.PathLike | Mapping,
    dataset_name: str,
    split_name: str | None = None,
    *,
    metrics: Sequence[str] = CARD_METRICS,
    dataset_type: str | None = None,
    task_name: str | None = None,
) -> list[EvalResult]:
    """``EvalResult`` s (model-index entries) from a finetuning ``report.json`` (path, its folder, or dict).

    Reads the site-median metrics of ``report["summary"]``; ``split_name`` defaults to ``report["split"]["name"]``.
    Non-finite values are skipped.
    """
    data = _load_report(report)
    summary = data.get("summary") or {}
    if split_name is None:
        split = data.get("split")
        split_name = split.get("name") if isinstance(split, Mapping) else (split if isinstance(split, str) else None)
    if task_name is None:  # the evaluation scores the first target only (evaluation.evaluate_sites)
        targets = (data.get("arguments") or {}).get("target_variables") or []
        task_name = f"{targets[0]} prediction" if targets else "land-surface prediction"
    results = []
    for metric in metrics:
        value = summary.get(metric)
        if value is None or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            continue
        results.append(
            EvalResult(
                task_type=TASK_TYPE,
                task_name=task_name,
                dataset_type=dataset_type or _slug(dataset_name),
                dataset_name=dataset_name,
                dataset_split=split_name,
                metric_type=metric,
                metric_name=METRIC_NAMES.get(metric, metric),
                metric_value=round(float(value), 4),
            )
        )
    return results


def _training_rows(training: Mapping | None, report: Mapping | None = None) -> list[tuple[str, str]]:
    """Rows of the card's training table from a free-form ``training`` dict and/or a finetuning report."""
    training = dict(training or {})
    rows: list[tuple[str, str]] = []
    labels = {
        "data": "Training data",
        "datasets": "Data sets",
        "period": "Training period",
        "split": "Split protocol",
        "sites": "Sites",
        "normalization": "Normalization",
        "objective": "Objective",
        "hyperparameters": "Hyperparameters",
        "compute": "Compute",
    }
    if report:
        split = report.get("split")
        if isinstance(split, Mapping):
            training.setdefault("split", _describe_split(split))
            if split.get("train_period"):
                training.setdefault("period", f"train {_period(split.get('train_period'))}; "
                                              f"validation {_period(split.get('val_period'))}; "
                                              f"test {_period(split.get('test_period'))}")
            training.setdefault(
                "sites",
                f"{len(split.get('train_sites') or [])} train / {len(split.get('val_sites') or [])} validation / "
                f"{len(split.get('test_sites') or [])} test",
            )
        args = report.get("arguments") or {}
        if args:
            keys = ("head_mode", "seq_len", "warmup", "per_device_train_batch_size", "learning_rate", "max_steps", "patience", "seed")
            training.setdefault("hyperparameters", {k: args[k] for k in keys if k in args})
        if report.get("steps") is not None:
            training.setdefault("compute", f"{report.get('steps')} steps, {report.get('train_seconds', '?')} s")
        training.setdefault("normalization", "z-score statistics fitted on the training sites and training period only")
    for key, value in training.items():
        if isinstance(value, Mapping):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value)
        rows.append((labels.get(key, key.replace("_", " ").capitalize()), str(value).replace("|", "/").replace("\n", " ")))
    if not rows:
        rows.append(("Training data", "not recorded for this checkpoint"))
    return rows


def _period(period) -> str:
    if not period:
        return "?"
    if isinstance(period, (list, tuple)) and len(period) == 2:
        return f"{period[0]} to {period[1]}"
    return str(period)


def _describe_split(split: Mapping) -> str:
    name = split.get("name") or "custom"
    info = split.get("info") or {}
    extra = ", ".join(f"{k}={v}" for k, v in info.items() if not isinstance(v, (list, dict)))
    kind = "regional hold-out (PUR)" if "pur" in name.lower() else "random site hold-out (PUB)" if "pub" in name.lower() else "site/period split"
    shared = set(split.get("test_sites") or []) & set(split.get("train_sites") or [])
    seen = (
        f"{len(shared)} of the {len(split['test_sites'])} test sites are training sites, tested in another period"
        if shared else "test sites never seen in finetuning"
    )
    return f"`{name}`: {kind}; {seen}" + (f" ({extra})" if extra else "")


def _citations_for(names: Iterable[str]) -> list[str]:
    out = []
    for name in names:
        key = _slug(name)
        for builder, (module, _cls) in _builders().items():
            if builder == key or builder.replace("_", "") == key.replace("_", ""):
                citation = _builder_citation(builder)
                if citation and citation not in out:
                    out.append(citation)
    return out


def _builders() -> dict:
    from ..data import BUILDERS

    return BUILDERS


def _builder_citation(name: str) -> str | None:
    known = {
        "camels_us": "Newman, A. J., et al. (2015), HESS 19, 209-223; Addor, N., Newman, A. J., Mizukami, N., Clark, M. P. "
        "(2017), The CAMELS data set: catchment attributes and meteorology for large-sample studies, HESS 21, 5293-5313.",
        "hydrodl_smap": "Fang, K., Shen, C., Kifer, D., Yang, X. (2017), Prolongation of SMAP to spatiotemporally seamless "
        "coverage of continental U.S. using a deep learning neural network, GRL 44; Entekhabi, D., et al. (2010), "
        "The Soil Moisture Active Passive (SMAP) mission, Proc. IEEE 98(5), 704-716.",
        "synthland": "SynthLand synthetic catchments, generated by stefaland-hf (stefaland_hf.data.synthland).",
        "caravan": "Kratzert, F., et al. (2023), Caravan - A global community dataset for large-sample hydrology, Scientific "
        "Data 10, 61 (cite its source datasets too).",
    }
    return known.get(name)


def _license_text(license: str) -> str:
    return LICENSE_TEXTS.get(license, f"`{license}`.")


# ================================================================================================
# Model card
# ================================================================================================
def _config_and_params(model_or_config) -> tuple[Any, int | None, str | None, str]:
    """(config, parameter count, folder, architecture) from a model, a config, or a saved folder."""
    from ..configuration_stefaland import StefaLandConfig

    if isinstance(model_or_config, StefaLandConfig):
        arch = (model_or_config.architectures or ["StefaLandModel"])[0]
        return model_or_config, _count_from_config(model_or_config), None, arch
    if hasattr(model_or_config, "config") and hasattr(model_or_config, "parameters"):
        n = sum(p.numel() for p in model_or_config.parameters())
        return model_or_config.config, n, None, type(model_or_config).__name__
    folder = Path(model_or_config)
    if not (folder / "config.json").is_file():
        raise ValueError(f"model: {str(folder)!r} is neither a model, a StefaLandConfig nor a folder with config.json")
    config = StefaLandConfig.from_pretrained(folder)
    return config, _count_from_safetensors(folder), str(folder), (config.architectures or ["StefaLandModel"])[0]


def _count_from_safetensors(folder: Path) -> int | None:
    try:
        from safetensors import safe_open
    except ImportError:  # pragma: no cover - safetensors is a dependency
        return None
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    from safetensors import SafetensorError

    from ..checkpoint_binding import unreadable_safetensors

    total = 0
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as f:
                for key in f.keys():
                    total += math.prod(f.get_slice(key).get_shape())
        except (OSError, SafetensorError) as error:
            raise unreadable_safetensors(file, error) from error
    return total


def _count_from_config(config) -> int | None:
    import torch

    from .. import modeling_stefaland

    name = (config.architectures or ["StefaLandModel"])[0]
    cls = getattr(modeling_stefaland, name, modeling_stefaland.StefaLandModel)
    try:
        with torch.device("meta"):
            model = cls(config)
    except Exception:
        return None
    return sum(p.numel() for p in model.parameters())


def render_model_card(
    model_or_config,
    *,
    training: Mapping | None = None,
    results: Sequence[EvalResult] | None = None,
    base_model: str | None = None,
    report: str | os.PathLike | Mapping | None = None,
    model_id: str | None = None,
    repo_id: str | None = None,
    license: str = "apache-2.0",
    datasets: Sequence[str] | None = None,
    summary: str | None = None,
    limitations: Sequence[str] = (),
) -> ModelCard:
    """The card of a StefaLand model (a model, a ``StefaLandConfig`` or a saved folder).

    ``training``: free-form facts about how this checkpoint was trained, e.g. ``{"data": ..., "period": ...,
    "split": ..., "hyperparameters": {...}}`` (unknown keys become extra rows). ``results``: ``EvalResult`` s
    (see :func:`results_from_report`) that go to the ``model-index``. ``report``: a finetuning report that
    fills training rows not given. ``base_model``: the checkpoint this one was finetuned from; the card's
    YAML names it only if it is a Hub repo (a local folder is described in the summary instead). ``repo_id``:
    the Hub repo the card is pushed to, where its "How to use" loads from (else from the folder it describes).
    """
    config, n_params, folder, architecture = _config_and_params(model_or_config)
    hub_id, local_base = hub_base(base_model)
    report_data = _load_report(report)
    results = list(results or [])
    # where "How to use" loads the model from: its Hub repo once pushed, else the folder the card is written for
    location = repo_id or folder or "<model folder or Hub id>"
    model_id = model_id or (repo_id or (Path(folder).name if folder else "stefaland-model")).split("/")[-1]
    loader_module, loader, remote_load = LOADERS.get(architecture, LOADERS["StefaLandModel"])
    dataset_names = list(datasets or [])
    for r in results:
        if r.dataset_name not in dataset_names:
            dataset_names.append(r.dataset_name)
    tags = ["stefaland", "hydrology", "land-surface", "earth-science", "foundation-model", "time-series", "custom_code"]
    card_data = ModelCardData(
        license=license,
        library_name="transformers",
        pipeline_tag=TASK_TYPE,
        tags=tags,
        base_model=hub_id,
        metrics=[m for m in CARD_METRICS if any(r.metric_type == m for r in results)] or None,
        model_name=model_id,
        eval_results=results or None,
    )
    if architecture == "StefaLandForTimeSeriesRegression":
        head = head_text(config) + f"; LSTM width {config.head_hidden_size}"
        outputs = (f"`prediction` [batch, days, {len(config.target_variables or [])}] in target units (and `loss` when `labels` "
                   f"are given); {output_text(config)}")
    elif architecture == "StefaLandForPretraining":
        head = "LSTM decoder + per-variable reconstruction heads (masked reconstruction pretraining)"
        outputs = "reconstructed dynamic and static variables (physical units) and the masked-reconstruction loss"
    elif architecture == "StefaLandForStaticRegression":
        head = "static regression head on the encoder (targets masked in the input)"
        outputs = f"`prediction` [batch, targets] in target units; {OUTPUT_TRANSFORM_TEXT[config.output_transform]}"
    else:
        head = "none (encoder only)"
        outputs = "hidden states: one vector per day plus the static token"
    groups = {**(config.dynamic_groups or {}), **(config.static_groups or {})}
    masking_groups = "; ".join(f"{k}: {', '.join(v)}" for k, v in groups.items())
    summary = summary or (
        f"A StefaLand land-surface model (`{architecture}`) with {len(config.dynamic_variables)} daily forcings and "
        f"{len(config.static_variables)} static attributes"
        + (f", predicting {', '.join(config.target_variables)}" if config.target_variables and architecture != "StefaLandModel" else "")
        + (f", finetuned from [`{hub_id}`](https://huggingface.co/{hub_id})" if hub_id else "")
        + (f", finetuned from the local checkpoint `{local_base}` (not on the Hub)" if local_base else "")
        + "."
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path("model_card.md")),
        model_id=model_id,
        model_location=location,
        model_summary=summary,
        architecture=architecture,
        loader_module=loader_module,
        loader=loader,
        remote_load=remote_load.format(location),
        parameter_count=f"{n_params:,}" if n_params is not None else "unknown",
        num_hidden_layers=config.num_hidden_layers,
        pre_norm=config.pre_norm,
        d_model=config.d_model,
        num_attention_heads=config.num_attention_heads,
        ffn_dim=config.ffn_dim,
        activation=config.activation,
        dropout=config.dropout,
        variable_mlp_dim=config.variable_mlp_dim,
        max_position_embeddings=config.max_position_embeddings,
        head_description=head,
        outputs_description=outputs,
        dynamic_rows=_variable_rows(config.dynamic_variables, config.dynamic_mean, config.dynamic_std),
        static_rows=_variable_rows(config.static_variables, config.static_mean, config.static_std),
        target_rows=_variable_rows(config.target_variables, config.target_mean, config.target_std)
        if architecture in ("StefaLandForTimeSeriesRegression", "StefaLandForStaticRegression")
        else [],
        masking_groups=masking_groups,
        training_rows=_training_rows(training, report_data),
        results=[r for r in results],
        extra_limitations=list(limitations),
        data_citations=_citations_for(dataset_names),
        license_text=_license_text(license),
    )


# ================================================================================================
# Adapter card
# ================================================================================================
def render_adapter_card(
    adapter_dir_or_config,
    report: str | os.PathLike | Mapping | None = None,
    base_model: str | None = None,
    *,
    results: Sequence[EvalResult] | None = None,
    dataset_name: str | None = None,
    training: Mapping | None = None,
    repo_id: str | None = None,
    license: str = "apache-2.0",
) -> ModelCard:
    """The card of a resConn PEFT adapter (its folder, or a ``ResConnConfig``).

    ``report`` (a finetuning ``report.json``) adds training rows and, with ``dataset_name``, the model-index
    results (unless ``results`` are given). ``base_model`` defaults to the adapter config's
    ``base_model_name_or_path`` and is required if that is empty; the card's YAML names it only if it is a
    Hub repo (a local folder is named in the text only).
    """
    from ..peft_adapters import ResConnConfig

    folder = None
    if isinstance(adapter_dir_or_config, ResConnConfig):
        cfg = adapter_dir_or_config
    else:
        folder = Path(adapter_dir_or_config)
        cfg = ResConnConfig.from_pretrained(str(folder))
    base_model = base_model or cfg.base_model_name_or_path
    if not base_model:
        raise ValueError("base_model: the adapter config has no base_model_name_or_path; pass the base model's Hub id")
    hub_id, local_base = hub_base(base_model)
    report_data = _load_report(report)
    if results is None:
        results = results_from_report(report_data, dataset_name) if report_data and dataset_name else []
    results = list(results)
    trainable = _count_from_safetensors(folder) if folder is not None else None
    if trainable is None and report_data:
        trainable = report_data.get("trainable_parameters")
    # where "How to use" loads the adapter from: its Hub repo once pushed, else the folder the card is written for
    location = repo_id or (str(folder) if folder is not None else "<adapter folder or Hub id>")
    model_id = (repo_id or (folder.name if folder is not None else "stefaland-adapter")).split("/")[-1]
    targets = list(cfg.target_variables)
    dataset_names = [dataset_name] if dataset_name else []
    card_data = ModelCardData(
        license=license,
        library_name="peft",
        pipeline_tag=TASK_TYPE,
        base_model=hub_id,
        tags=["stefaland", "hydrology", "land-surface", "peft", "resconn"] + ([f"base_model:adapter:{hub_id}"] if hub_id else []),
        metrics=[m for m in CARD_METRICS if any(r.metric_type == m for r in results)] or None,
        model_name=model_id,
        eval_results=results or None,
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path("adapter_card.md")),
        model_id=model_id,
        adapter_location=location,
        target_variables=repr(targets),
        model_summary=f"Predicts {', '.join(targets)} from daily forcings and static attributes with a frozen StefaLand encoder.",
        base_model=hub_id or local_base,
        base_model_url=f"https://huggingface.co/{hub_id}" if hub_id else local_base,
        head_mode=cfg.head_mode,
        output_transform=output_text(cfg),
        head_description=head_text(cfg),
        head_hidden_size=cfg.head_hidden_size,
        head_dropout=cfg.head_dropout,
        adapter_dropout=cfg.adapter_dropout,
        trainable_parameters=f"{trainable:,}" if isinstance(trainable, int) else "unknown",
        target_rows=_variable_rows(targets, cfg.target_mean, cfg.target_std),
        training_rows=_training_rows(training, report_data),
        results=results,
        data_citations=_citations_for(dataset_names),
        license_text=_license_text(license),
    )


# ================================================================================================
# Dataset card
# ================================================================================================
_COLUMN_DESCRIPTIONS = {
    "site_id": "site (basin or pixel) identifier",
    "region": "region label (HUC-02 for CAMELS, climate/region label elsewhere)",
    "latitude": "latitude, degrees north",
    "longitude": "longitude, degrees east",
    "dates": "the daily dates of the record",
    "dynamic": "daily forcings [T, F], columns = `dynamic_variables`",
    "static": "static attributes [C], columns = `static_variables`",
    "targets": "daily targets [T, K], columns = `target_variables`, NaN where unobserved",
    "oracle": "noise-free targets from the true-parameter model run [T, K] (SynthLand only)",
    "gauged": "whether the site has target observations (false: ungauged, targets all NaN)",
    "dynamic_variables": "names of the `dynamic` columns",
    "static_variables": "names of the `static` columns",
    "target_variables": "names of the `targets` columns",
}


def dataset_splits(dataset_or_dict) -> dict:
    """{split name: Dataset} of a Dataset, a DatasetDict or a mapping of splits."""
    from datasets import Dataset, DatasetDict

    if isinstance(dataset_or_dict, DatasetDict):
        return dict(dataset_or_dict)
    if isinstance(dataset_or_dict, Dataset):
        split = str(dataset_or_dict.split) if dataset_or_dict.split is not None else "train"
        return {split: dataset_or_dict}
    if isinstance(dataset_or_dict, Mapping):
        return dict(dataset_or_dict)
    raise TypeError(f"dataset: expected a Dataset or DatasetDict, got {type(dataset_or_dict).__name__}")


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "n>1M"


def render_dataset_card(
    dataset,
    name: str,
    *,
    repo_id: str | None = None,
    config_name: str | None = None,
    license: str | None = None,
    pretty_name: str | None = None,
    summary: str | None = None,
    split_protocol: str | None = None,
    limitations: str | None = None,
    citations: Sequence[str] | None = None,
) -> DatasetCard:
    """The card of a site dataset (one example per site; see ``stefaland_hf.data.schema``).

    ``name`` is the builder name (``synthland``, ``camels_us``, ``hydrodl_smap``) or any title.
    ``configs``/``dataset_info`` YAML is added by :func:`push_dataset`, not here.
    """
    splits = dataset_splits(dataset)
    first_split, first = next(iter(splits.items()))
    key = _slug(name)
    defaults = DATASET_DEFAULTS.get(key, {})
    license = license or defaults.get("license", "other")
    pretty_name = pretty_name or defaults.get("pretty_name", name)
    num_sites = sum(len(d) for d in splits.values())
    columns = [
        {"name": col, "type": type(feature).__name__ if not hasattr(feature, "dtype") else f"{type(feature).__name__}({feature.dtype})",
         "description": _COLUMN_DESCRIPTIONS.get(col, "")}
        for col, feature in first.features.items()
    ]
    variable_rows: list[dict] = []
    period, num_days, regions, num_dynamic = "unknown", "?", "", 0
    if len(first):
        row = first[0]
        for kind, column in (("dynamic", "dynamic_variables"), ("static", "static_variables"), ("target", "target_variables")):
            for i, var_name in enumerate(row.get(column) or []):
                var = VARIABLES.get(var_name)
                variable_rows.append(
                    {"kind": kind, "index": i, "name": var_name, "unit": var.unit if var else "?",
                     "description": var.description if var else ""}
                )
        num_dynamic = len(row.get("dynamic_variables") or [])
        dates = row.get("dates") or []
        if dates:
            period, num_days = f"{dates[0]} to {dates[-1]}", len(dates)
        if "region" in first.column_names:
            regions = ", ".join(sorted(set(first["region"])))
    details = None
    description = getattr(first.info, "description", None)
    if description:
        try:
            parsed = json.loads(description)
            cfg = parsed.get("config") if isinstance(parsed, dict) else None
            details = "Generator configuration: " + json.dumps(cfg) if cfg else None
        except (TypeError, ValueError):
            details = description
    citation_list = list(citations or [])
    own = _builder_citation(key)
    if own and own not in citation_list:
        citation_list.append(own)
    info_citation = getattr(first.info, "citation", None)
    if not citations and info_citation and info_citation not in citation_list and key != "synthland":
        citation_list.append(info_citation)
    card_data = DatasetCardData(
        license=license,
        pretty_name=pretty_name,
        task_categories=[TASK_TYPE],
        tags=["stefaland", "hydrology", "land-surface", "earth-science", "time-series"],
        size_categories=[_size_category(num_sites)],
    )
    return DatasetCard.from_template(
        card_data,
        template_path=str(template_path("dataset_card.md")),
        pretty_name=pretty_name,
        summary=summary or defaults.get("summary", f"The {pretty_name} site dataset."),
        builder_name=name,
        config_name=config_name,
        repo_id=repo_id or f"<org>/{key}",
        num_sites=num_sites,
        period=period,
        num_days=num_days,
        splits=", ".join(f"`{s}` ({len(d)} sites)" for s, d in splits.items()),
        first_split=first_split,
        regions=regions or "–",
        columns=columns,
        variable_rows=variable_rows,
        num_dynamic=num_dynamic,
        split_protocol=split_protocol
        or "All sites are in one split. Evaluation protocols split by site (PUB: random site hold-out, k folds; "
        "PUR: whole regions held out, using the `region` column) and by period (train/validation/test periods); see "
        "`stefaland_hf.data.splits`. Normalization and early stopping must use training sites and periods only.",
        description_details=details,
        limitations=limitations or defaults.get("limitations", "See the original data providers' documentation."),
        citations=citation_list,
        license_text=_license_text(license),
    )


# ================================================================================================
# Converted-checkpoint card
# ================================================================================================
def render_converted_card(report: Mapping[str, Any], location: str) -> ModelCard:
    """The card of an authors' checkpoint converted by ``stefaland convert-original``.

    ``report``: the conversion report (``conversion_report.json``: provenance, variable names, what was
    approximated). ``location``: where "How to use" loads the model from, the converted folder or, for a card
    pushed with it, the Hub repo id.
    """
    spread = report["static_mask_max_abs_diff_rows_0_255"]
    worst = max(spread.items(), key=lambda kv: kv[1]) if spread else ("-", 0.0)
    ignored = report["ignored_top_level_entries"]
    card_data = ModelCardData(
        library_name="transformers", tags=["stefaland", "time-series", "hydrology", "land-surface", "foundation-model"]
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path("converted_card.md")),
        report=report,
        model_location=location,
        identity=report["normalization"].startswith("identity"),
        num_parameters=f"{report['num_parameters']:,}",
        ignored_entries=", ".join(f"`{k}` ({v})" for k, v in ignored.items()) if ignored else "none",
        compared_rows=min(256, report["static_mask_rows"]),
        worst_variable=worst[0],
        worst_difference=f"{worst[1]:.4g}",
        assumed=", ".join(f"{k}={v}" for k, v in report["assumed"].items()),
    )
