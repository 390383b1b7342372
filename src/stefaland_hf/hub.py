"""Publishing to the Hugging Face Hub: cards, one-commit pushes, and short model names.

Cards
    :func:`render_model_card`, :func:`render_adapter_card` and :func:`render_dataset_card` fill the Jinja
    templates ``model_card.md``, ``adapter_card.md`` and ``dataset_card.md`` (top-level ``hub_cards/``, which
    a wheel installs as ``stefaland_hf/hub_cards/``)
    with variables and units, normalization, architecture, training data/period/split protocol,
    ``model-index`` results (:func:`results_from_report`), limitations, citations and licence.

Pushes (exactly one commit each; the Hub applies a commit atomically)
    :func:`push_model` (weights, config, remote code so ``trust_remote_code=True`` works without this package,
    and the card as README.md), :func:`push_adapter` (PEFT resConn adapter + card) and :func:`push_dataset`
    (parquet shards + a card whose YAML carries ``configs``/``dataset_info``, so ``load_dataset(repo, config)``
    gives back the same data with ``Array2D`` features).

    A push *mirrors*: after it the repository (a dataset repository: the pushed config's data folder) holds
    exactly what was pushed. Remote files that are not in the push are deleted in the same commit, except
    ``.gitattributes`` and other dot-files (the Hub's own; pushes never upload dot-files) and paths matching
    ``keep`` (fnmatch patterns, ``--keep`` on the command line). The commit is made on top of the head read
    at the start (``parent_commit``), so a concurrent push makes it fail instead of mixing the two.

    Before any network call :func:`check_push_target` refuses a repo id without a namespace and a missing
    token. Every push runs create repository -> read the head and files -> upload LFS files -> commit; a
    failure raises :class:`HubPushError` naming the operation and the repository. A failure of the commit
    request itself (an error answer, a dropped connection) is followed by a look at the branch, and the error
    says what it found: the push was applied (``committed=True``), no commit was made (``False``), or that
    is unknown (``None``, with the URL to check).

Names
    :func:`resolve_model_name` maps ``stefaland-base`` / ``stefaland-tiny`` (any ``stefaland-*`` name without a
    namespace) to ``./<name>`` if that folder exists, else ``$STEFALAND_WEIGHTS/<name>`` if it exists, else the
    Hub repo ``$STEFALAND_HUB_ORG/<name>`` (default organisation ``stefaland``), which ``transformers`` resolves
    from the HF cache when offline. :func:`from_pretrained` applies it before calling an Auto class.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import json
import logging
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    DatasetCard,
    DatasetCardData,
    EvalResult,
    HfApi,
    ModelCard,
    ModelCardData,
    RepoFile,
    get_token,
)
from huggingface_hub.errors import (
    GatedRepoError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id
from huggingface_hub.utils.sha import git_hash

from .variables import VARIABLES
from . import zoo

logger = logging.getLogger(__name__)

__all__ = [
    "HubPushError",
    "check_push_target",
    "KNOWN_MODELS",
    "DEFAULT_HUB_ORG",
    "template_path",
    "results_from_report",
    "render_model_card",
    "render_adapter_card",
    "render_dataset_card",
    "push_model",
    "push_adapter",
    "push_dataset",
    "resolve_model_name",
    "from_pretrained",
]

KNOWN_MODELS = ("stefaland-base", "stefaland-tiny")
DEFAULT_HUB_ORG = "stefaland"
HUB_ORG_ENV = "STEFALAND_HUB_ORG"
WEIGHTS_ENV = "STEFALAND_WEIGHTS"
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
REMOTE_CODE_FILES = ("configuration_stefaland.py", "modeling_stefaland.py", "variables.py")
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
STEFALAND_CITATION = (
    "Kraabel, N., Liu, J., Bian, Y., Kifer, D., Shen, C. (2025). StefaLand: An Efficient Geoscience Foundation "
    "Model That Improves Dynamic Land-Surface Predictions. arXiv:2509.17942."
)
HEAD_DESCRIPTIONS = {
    "resconn": "resConn: LayerNorm(E)·s -> dual residual adapter (forcings + attributes) -> residual LSTM -> linear, "
    "on the frozen encoder",
    "no_adapter": "frozen encoder -> LSTM -> linear (no adapter)",
    "linear_probe": "frozen encoder -> linear probe",
    "scratch": "resConn architecture trained from random weights (encoder included)",
    "direct": "LSTM on the raw forcings and attributes (no StefaLand encoder)",
}


# ================================================================================================
# Errors
# ================================================================================================
_NO_COMMIT = "The repository may have been created, but this push made no commit (it stopped before committing); re-run it to retry."


class HubPushError(RuntimeError):
    """A push to the Hub failed. ``operation`` is what failed, ``repo_id``/``repo_type`` where.

    ``committed`` is what the Hub showed afterwards: True (the branch holds this push, at ``commit_oid``),
    False (no commit was made) or None (unknown; ``state`` says where to check).
    """

    def __init__(self, kind: str, repo_id: str, repo_type: str, operation: str, error: BaseException, *,
                 committed: bool | None = False, state: str = _NO_COMMIT, commit_oid: str | None = None):
        self.kind, self.repo_id, self.repo_type, self.operation = kind, repo_id, repo_type, operation
        self.committed, self.commit_oid, self.state = committed, commit_oid, state
        detail = str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() else "(no message)"
        where = f"{repo_type} repository {repo_id!r}"
        hint = _http_hint(error, repo_id)
        super().__init__(f"push {kind} to {where} failed while {operation}: {type(error).__name__}: {detail}"
                         f"{'. ' + hint if hint else ''}. {state}")


def _http_status(error: BaseException) -> int | None:
    """The HTTP status the Hub answered with, or None when no answer came (connection error, timeout)."""
    return getattr(getattr(error, "response", None), "status_code", None)


def _http_hint(error: BaseException, repo_id: str) -> str:
    """What to do about an authentication or permission answer."""
    status, namespace = _http_status(error), repo_id.split("/")[0]
    if status == 401:
        return ("The Hub rejected the token (401): log in again with `hf auth login`, or set HF_TOKEN to a valid token "
                "with write access")
    if status == 403:
        return (f"The token may not write to the namespace {namespace!r} (403): use a token with write access to it, "
                "or push to your own namespace")
    return ""


def _hub_step(kind: str, repo_id: str, repo_type: str, operation: str, fn, /, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except HubPushError:
        raise
    except Exception as error:  # HfHubHTTPError, connection errors, ...: say what failed, where
        raise HubPushError(kind, repo_id, repo_type, operation, error) from error


def check_push_target(repo_id: str, token: str | None = None) -> str:
    """Refuse a push that can only fail, before any work or network call; return the token to use.

    A repo id needs a namespace (``namespace/name``: without one the Hub would create the repository under
    the token's user and the commit URL would not exist), and a push needs a token (``token=``, HF_TOKEN or
    ``hf auth login``). Call it at argument-parsing time to fail before a long run that ends with a push.
    """
    namespace, _, name = repo_id.partition("/") if isinstance(repo_id, str) else ("", "", "")
    valid = bool(namespace and name)
    example = (repo_id.strip("/").split("/")[-1] if isinstance(repo_id, str) else "") or "stefaland-model"
    if valid:
        try:
            validate_repo_id(repo_id)
        except HFValidationError:
            valid = False
    if not valid:
        raise ValueError(
            f"repo_id: {repo_id!r} is not a Hub repo id of the form 'namespace/name' (namespace = your user name, "
            f"which `hf auth whoami` prints, or an organisation; name = letters, digits, '-', '_', '.'), e.g. 'my-user/{example}'"
        )
    token = token or get_token()
    if not token:
        raise ValueError(
            f"token: pushing to {repo_id!r} needs a Hugging Face token with write access and none was found: run "
            "`hf auth login`, or set HF_TOKEN, or pass token=..."
        )
    return token


# ================================================================================================
# Templates
# ================================================================================================
_PACKAGE_DIR = Path(__file__).resolve().parent


def template_path(name: str) -> Path:
    """Path of a card template (``model_card.md``, ``adapter_card.md``, ``dataset_card.md``).

    A source checkout reads the top-level ``hub_cards/``; a wheel ships that folder as ``stefaland_hf/hub_cards/``.
    """
    for folder in (_PACKAGE_DIR.parents[1] / "hub_cards", _PACKAGE_DIR / "hub_cards"):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"card template {name!r} not found in hub_cards/ or the stefaland_hf package data")


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
    if task_name is None:
        targets = (data.get("arguments") or {}).get("target_variables") or []
        task_name = f"{', '.join(targets)} prediction" if targets else "land-surface prediction"
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
    return f"`{name}`: {kind}; test sites never seen in training" + (f" ({extra})" if extra else "")


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
    from .data import BUILDERS

    return BUILDERS


def _builder_citation(name: str) -> str | None:
    known = {
        "camels_us": "Newman, A. J., et al. (2015), HESS 19, 209-223; Addor, N., Newman, A. J., Mizukami, N., Clark, M. P. "
        "(2017), The CAMELS data set: catchment attributes and meteorology for large-sample studies, HESS 21, 5293-5313.",
        "hydrodl_smap": "Fang, K., Shen, C., Kifer, D., Yang, X. (2017), Prolongation of SMAP to spatiotemporally seamless "
        "coverage of continental U.S. using a deep learning neural network, GRL 44; Entekhabi, D., et al. (2010), "
        "The Soil Moisture Active Passive (SMAP) mission, Proc. IEEE 98(5), 704-716.",
        "synthland": "SynthLand synthetic catchments, generated by stefaland-hf (stefaland_hf.data.synthland).",
    }
    return known.get(name)


def _license_text(license: str) -> str:
    return LICENSE_TEXTS.get(license, f"`{license}`.")


# ================================================================================================
# Model card
# ================================================================================================
def _config_and_params(model_or_config) -> tuple[Any, int | None, str | None, str]:
    """(config, parameter count, folder, architecture) from a model, a config, or a saved folder."""
    from .configuration_stefaland import StefaLandConfig

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
    total = 0
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                total += math.prod(f.get_slice(key).get_shape())
    return total


def _count_from_config(config) -> int | None:
    import torch

    from . import modeling_stefaland

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
    YAML names it only if it is a Hub repo (a local folder is described in the summary instead).
    """
    config, n_params, folder, architecture = _config_and_params(model_or_config)
    hub_base, local_base = _hub_base(base_model)
    report_data = _load_report(report)
    results = list(results or [])
    repo_id = repo_id or model_id or (Path(folder).name if folder else "stefaland-model")
    model_id = model_id or repo_id.split("/")[-1]
    auto_class = {
        "StefaLandForTimeSeriesRegression": "AutoModelForTimeSeriesPrediction",
        "StefaLandForPretraining": "AutoModelForPreTraining",
    }.get(architecture, "AutoModel")
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
        base_model=hub_base,
        metrics=[m for m in CARD_METRICS if any(r.metric_type == m for r in results)] or None,
        model_name=model_id,
        eval_results=results or None,
    )
    if architecture == "StefaLandForTimeSeriesRegression":
        head = HEAD_DESCRIPTIONS.get(config.head_mode, config.head_mode) + f"; LSTM width {config.head_hidden_size}"
        outputs = (f"`prediction` [batch, days, {len(config.target_variables or [])}] in target units (and `loss` when `labels` "
                   f"are given); {OUTPUT_TRANSFORM_TEXT[config.output_transform]}")
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
        + (f", finetuned from [`{hub_base}`](https://huggingface.co/{hub_base})" if hub_base else "")
        + (f", finetuned from the local checkpoint `{local_base}` (not on the Hub)" if local_base else "")
        + "."
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path("model_card.md")),
        model_id=model_id,
        repo_id=repo_id,
        model_summary=summary,
        architecture=architecture,
        auto_class=auto_class,
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
    from .peft_adapters import ResConnConfig

    folder = None
    if isinstance(adapter_dir_or_config, ResConnConfig):
        cfg = adapter_dir_or_config
    else:
        folder = Path(adapter_dir_or_config)
        cfg = ResConnConfig.from_pretrained(str(folder))
    base_model = base_model or cfg.base_model_name_or_path
    if not base_model:
        raise ValueError("base_model: the adapter config has no base_model_name_or_path; pass the base model's Hub id")
    hub_base, local_base = _hub_base(base_model)
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
        base_model=hub_base,
        tags=["stefaland", "hydrology", "land-surface", "peft", "resconn"] + ([f"base_model:adapter:{hub_base}"] if hub_base else []),
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
        base_model=hub_base or local_base,
        base_model_url=f"https://huggingface.co/{hub_base}" if hub_base else local_base,
        head_mode=cfg.head_mode,
        output_transform=OUTPUT_TRANSFORM_TEXT[cfg.output_transform],
        head_description=HEAD_DESCRIPTIONS.get(cfg.head_mode, cfg.head_mode),
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
# what a card says about StefaLandConfig.output_transform / ResConnConfig.output_transform
OUTPUT_TRANSFORM_TEXT = {
    "clamp": "predictions are clipped to each target's physical range (e.g. streamflow >= 0 mm/day; `output_transform=clamp`)",
    "softplus": "predictions pass a softplus above each target's lower physical bound (`output_transform=softplus`)",
    "none": "predictions are the head's raw output and may leave the physical range (e.g. negative streamflow; `output_transform=none`)",
}

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


def _as_dict(dataset_or_dict) -> dict:
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
    splits = _as_dict(dataset)
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
# Pushes
# ================================================================================================
def _card_text(card) -> str | None:
    if card is None:
        return None
    if isinstance(card, (ModelCard, DatasetCard)) or hasattr(card, "content"):
        return str(card)
    path = Path(card)
    if path.is_file():
        return path.read_text(encoding="utf-8")
    raise ValueError(f"card: expected a ModelCard/DatasetCard or a markdown file, got {card!r}")


def _folder_files(folder: Path) -> list[Path]:
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if not path.is_file() or any(p.startswith(".") or p == "__pycache__" for p in rel.parts):
            continue
        out.append(path)
    return out


def _kept(path: str, keep: Sequence[str]) -> bool:
    """Remote files a mirroring push leaves alone: dot-files (``.gitattributes``, ``.eval_results/``: the Hub's
    own, and never uploaded since local dot-files are skipped) and ``keep`` patterns (fnmatch, case-sensitive)."""
    return any(part.startswith(".") for part in path.split("/")) or any(fnmatch.fnmatchcase(path, p) for p in keep)


def _commit(
    kind: str,
    repo_id: str,
    repo_type: str,
    operations: list,
    *,
    private: bool,
    commit_message: str,
    token: str,
    revision: str | None,
    keep: Sequence[str] = (),
    scope: str = "",
    remote_fn=None,
):
    """create repository -> read head and files -> upload LFS files -> one atomic commit that mirrors the push.

    Remote files under ``scope`` ("" = the whole repository) that are not pushed and not :func:`_kept` are
    deleted in the same commit. ``remote_fn(api, head, files)`` adds operations computed from the remote
    state (the dataset card). The commit's parent is the head read here, so a push in between makes it fail
    rather than be overwritten; a failed commit request is followed by :func:`_commit_outcome`.
    """
    api = HfApi(token=token)
    step = functools.partial(_hub_step, kind, repo_id, repo_type)
    step("creating the repository", api.create_repo, repo_id, repo_type=repo_type, private=private, exist_ok=True)
    head = step("reading the repository head", api.repo_info, repo_id, repo_type=repo_type, revision=revision).sha
    remote = step("listing the repository files", api.list_repo_files, repo_id, repo_type=repo_type, revision=head)
    if remote_fn is not None:
        operations = operations + remote_fn(api, head, remote)
    pushed = {op.path_in_repo for op in operations}
    stale = [f for f in remote if f.startswith(scope) and f not in pushed and not _kept(f, keep)]
    operations = operations + [CommitOperationDelete(path_in_repo=f) for f in stale]
    description = f"Deleted (not in this push): {', '.join(stale)}" if stale else ""
    if stale:
        logger.info("push %s to %r deletes %d remote file(s) not in the push: %s", kind, repo_id, len(stale), ", ".join(stale))
    additions = [op for op in operations if isinstance(op, CommitOperationAdd)]
    names = ", ".join(op.path_in_repo for op in additions[:4]) + (", ..." if len(additions) > 4 else "")
    step(f"uploading files ({names})", api.preupload_lfs_files, repo_id, additions, repo_type=repo_type, revision=revision)
    try:
        return api.create_commit(repo_id, operations, commit_message=commit_message, commit_description=description,
                                 repo_type=repo_type, revision=revision, parent_commit=head)
    except Exception as error:
        committed, state, oid = _commit_outcome(api, repo_id, repo_type, revision, head, operations, error)
        raise HubPushError(kind, repo_id, repo_type, "creating the commit", error,
                           committed=committed, state=state, commit_oid=oid) from error


_GATEWAY_STATUSES = (502, 503, 504)  # a proxy answered: the Hub behind it may still be applying the commit


def _commit_outcome(api: HfApi, repo_id: str, repo_type: str, revision: str | None, before: str,
                    operations: list, error: BaseException) -> tuple[bool | None, str, str | None]:
    """(committed, what to tell the user, commit id) after a failed commit request, read from the branch now.

    A lost answer does not mean a lost commit: the branch is compared with its head before the push, and a
    new head counts as this push only if it holds every pushed file with the pushed content.
    """
    branch = revision or "main"
    url = f"{api.endpoint}/{'' if repo_type == 'model' else repo_type + 's/'}{repo_id}/commits/{branch}"
    try:
        head = api.repo_info(repo_id, repo_type=repo_type, revision=branch).sha
        holds = head != before and _holds(api, repo_id, repo_type, head, operations)
    except Exception as check_error:
        return None, (f"Unknown whether a commit was made: reading {branch!r} afterwards failed too "
                      f"({type(check_error).__name__}); check {url}"), None
    if holds:
        return True, (f"The push was applied all the same: {branch!r} is now at commit {head}, which holds "
                      "exactly the pushed files; nothing to re-run."), head
    status = _http_status(error)
    refused = status is not None and status not in _GATEWAY_STATUSES
    if head == before and refused:
        return False, f"No commit was made: {branch!r} is still at {before}; re-run the push to retry.", None
    if head == before:
        return None, (f"Unknown whether a commit was made: the Hub did not answer and {branch!r} is still at {before}, "
                      f"but it may still apply the commit; check {url} (re-running the push is safe either way: it "
                      "makes the repository mirror the push)."), None
    if refused and status < 500:
        return False, (f"No commit was made by this push: {branch!r} moved from {before} to {head} meanwhile "
                       f"(another push?) and does not hold these files; check {url}, then re-run the push."), None
    return None, (f"Unknown whether a commit was made: {branch!r} moved from {before} to {head} but does not hold "
                  f"exactly the pushed files (another push?); check {url}."), None


def _holds(api: HfApi, repo_id: str, repo_type: str, commit: str, operations: list) -> bool:
    """Whether ``commit`` has every added file with the pushed content and none of the deleted ones."""
    additions = {op.path_in_repo: op for op in operations if isinstance(op, CommitOperationAdd)}
    deleted = [op.path_in_repo for op in operations if isinstance(op, CommitOperationDelete)]
    infos = api.get_paths_info(repo_id, [*additions, *deleted], repo_type=repo_type, revision=commit)
    found = {info.path: info for info in infos if isinstance(info, RepoFile)}
    if any(path in found for path in deleted):
        return False
    for path, op in additions.items():
        remote = found.get(path)
        if remote is None:
            return False
        if remote.lfs is not None:
            same = remote.lfs.sha256 == op.upload_info.sha256.hex()
        else:
            with op.as_file() as file:
                same = remote.blob_id == git_hash(file.read())
        if not same:
            return False
    return True


def push_model(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    card=None,
    private: bool = False,
    commit_message: str = "Upload StefaLand model",
    token: str | None = None,
    revision: str | None = None,
    keep: Sequence[str] = (),
):
    """Push a saved StefaLand model folder (``save_pretrained`` output) and its card in **one** commit.

    The repository then mirrors the push: remote files not in it are deleted, except dot-files and paths
    matching a ``keep`` pattern (fnmatch, e.g. ``("eval/*",)``).

    ``card``: a ``ModelCard`` or a markdown file; None uses the folder's README.md (e.g. the card written by
    ``convert-original`` or :func:`finish_artifact`) and renders one with :func:`render_model_card` if there is none. Remote code (``configuration_stefaland.py``, ``modeling_stefaland.py``,
    ``variables.py``) and the full ``auto_map`` are added if the folder lacks them, so the repo loads with
    ``trust_remote_code=True`` where ``stefaland_hf`` is not installed. Returns the ``CommitInfo``
    (``.commit_url``). Raises :class:`HubPushError` on failure.
    """
    from .modeling_stefaland import AUTO_MAP

    token = check_push_target(repo_id, token)
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ValueError(f"folder: {str(folder)!r} has no config.json (expected a save_pretrained folder)")
    config = json.loads(config_path.read_text())
    if config.get("model_type") != "stefaland":
        raise ValueError(f"folder: {str(folder)!r} is not a StefaLand model (model_type={config.get('model_type')!r})")
    if not list(folder.glob("*.safetensors")) and not list(folder.glob("*.bin")):
        raise ValueError(f"folder: {str(folder)!r} has no weights (*.safetensors)")
    readme = folder / "README.md"
    text = _card_text(card) or (readme.read_text() if readme.is_file() else str(render_model_card(folder, repo_id=repo_id)))
    operations = []
    for path in _folder_files(folder):
        rel = path.relative_to(folder).as_posix()
        if rel in ("README.md", "config.json"):
            continue
        operations.append(CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(path)))
    if not config.get("auto_map"):
        config["auto_map"] = dict(AUTO_MAP)
    operations.append(CommitOperationAdd(path_in_repo="config.json", path_or_fileobj=(json.dumps(config, indent=2, sort_keys=True) + "\n").encode()))
    for name in REMOTE_CODE_FILES:
        if not (folder / name).is_file():
            operations.append(CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(_PACKAGE_DIR / name)))
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=text.encode("utf-8")))
    return _commit("model", repo_id, "model", operations, private=private, commit_message=commit_message, token=token,
                   revision=revision, keep=keep)


def push_adapter(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    base_model: str | None = None,
    card=None,
    report: str | os.PathLike | Mapping | None = None,
    dataset_name: str | None = None,
    private: bool = False,
    commit_message: str = "Upload StefaLand resConn adapter",
    token: str | None = None,
    revision: str | None = None,
    keep: Sequence[str] = (),
):
    """Push a PEFT resConn adapter folder and its card in **one** commit (mirroring, as :func:`push_model`).

    PEFT's generic README is replaced by ``card`` or by :func:`render_adapter_card` (with ``report`` /
    ``dataset_name`` for results). ``base_model`` (default: the adapter config's) must name a Hub repo (or a
    short name such as ``stefaland-base``), since users of the pushed adapter load it from there; it is
    written into the pushed ``adapter_config.json`` as ``base_model_name_or_path``. A local base folder is
    refused. Returns the ``CommitInfo``; raises :class:`HubPushError`.
    """
    token = check_push_target(repo_id, token)
    folder = Path(folder)
    config_path = folder / "adapter_config.json"
    if not config_path.is_file():
        raise ValueError(f"folder: {str(folder)!r} has no adapter_config.json (expected a PEFT save_pretrained folder)")
    adapter_config = json.loads(config_path.read_text())
    base_model = base_model or adapter_config.get("base_model_name_or_path")
    if not base_model:
        raise ValueError("base_model: pass the Hub id of the base model (the adapter config does not record it)")
    hub_base, local_base = _hub_base(base_model)
    if hub_base is None:
        raise ValueError(
            f"base_model: {local_base!r} is a local folder, not a Hub repo id, and users of the adapter on the Hub "
            f"could not load it: push the base model first (`stefaland push model {local_base} <namespace>/<name>`) "
            "and pass that id (base_model=... or --base)"
        )
    adapter_config["base_model_name_or_path"] = hub_base  # the Hub id, not the local path it was trained from
    text = _card_text(card) or str(render_adapter_card(folder, report, base_model, dataset_name=dataset_name, repo_id=repo_id))
    operations = [
        CommitOperationAdd(path_in_repo=path.relative_to(folder).as_posix(), path_or_fileobj=str(path))
        for path in _folder_files(folder)
        if path.relative_to(folder).as_posix() not in ("README.md", "adapter_config.json")
    ]
    operations.append(CommitOperationAdd(path_in_repo="adapter_config.json", path_or_fileobj=(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n").encode()))
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=text.encode("utf-8")))
    return _commit("adapter", repo_id, "model", operations, private=private, commit_message=commit_message, token=token,
                   revision=revision, keep=keep)


def finish_artifact(report: Mapping, dataset_name: str, base_model: str | None = None, push_to_hub: str | None = None) -> str | None:
    """Write the card of a finetuning artifact (``report["artifact"]``: an adapter or a model folder) as its
    README.md, and push the folder with it in one commit when ``push_to_hub`` names a repo. Returns the commit URL."""
    folder = Path(report["artifact"])
    report = {k: v for k, v in report.items() if k != "evaluation"}
    if (folder / "adapter_config.json").is_file():
        card = render_adapter_card(folder, report, base_model, dataset_name=dataset_name, repo_id=push_to_hub)
        card.save(folder / "README.md")
        return push_adapter(folder, push_to_hub, base_model=base_model, card=card).commit_url if push_to_hub else None
    results = results_from_report(report, dataset_name)
    # a full model from finetune() is `scratch` or `direct`: trained from random weights, so it has no base model
    card = render_model_card(folder, report=report, results=results, base_model=None, repo_id=push_to_hub)
    card.save(folder / "README.md")
    return push_model(folder, push_to_hub, card=card).commit_url if push_to_hub else None


def check_artifact_push(push_to_hub: str | None, base_model: str | os.PathLike | None, adapter: bool) -> None:
    """Before a finetuning run that ends with ``finish_artifact(..., push_to_hub=...)``: refuse what that push
    would refuse (no token, no namespace, an adapter whose base is not on the Hub), so no run is lost to it."""
    if not push_to_hub:
        return
    check_push_target(push_to_hub)
    if adapter and _hub_base(base_model)[0] is None:
        raise ValueError(
            f"--push-to-hub {push_to_hub}: an adapter on the Hub needs its base on the Hub, and {os.fspath(base_model)!r} "
            "is a local folder; push it first (`stefaland push model <folder> <namespace>/<name>`) and pass that id as --base"
        )


def push_dataset(
    dataset_or_dict,
    repo_id: str,
    *,
    config_name: str = "default",
    card=None,
    name: str | None = None,
    private: bool = False,
    commit_message: str = "Upload StefaLand site dataset",
    max_shard_size: int = 500 * 1024 * 1024,
    token: str | None = None,
    revision: str | None = None,
    keep: Sequence[str] = (),
):
    """Push a site dataset as parquet shards + card in **one** commit (unlike ``Dataset.push_to_hub`` + card).

    Layout as ``datasets`` writes it: ``{data_dir}/{split}-{i:05d}-of-{n:05d}.parquet`` with ``data_dir =
    config_name`` (``"data"`` for ``"default"``). The card's YAML gets ``configs`` (data files) and
    ``dataset_info`` (features incl. ``Array2D``, splits); entries of other configs already in the repo's card
    are kept. ``{data_dir}/`` mirrors the push: files in it that are not pushed now (old shards, splits no
    longer pushed) are deleted in the same commit unless they match a ``keep`` pattern; other configs' folders
    are left alone. So ``load_dataset(repo_id, config_name)`` returns exactly this data. ``card``: a ``DatasetCard`` or markdown
    file; None renders one with :func:`render_dataset_card` (``name`` = builder name, default the dataset's
    ``info.dataset_name``). Returns the ``CommitInfo``; raises :class:`HubPushError`.
    """
    from datasets.info import DatasetInfo, DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from datasets.utils.metadata import MetadataConfigs

    token = check_push_target(repo_id, token)
    splits = _as_dict(dataset_or_dict)
    if not splits:
        raise ValueError("dataset: nothing to push (no splits)")
    first = next(iter(splits.values()))
    features = first.features
    for split, ds in splits.items():
        if ds.features != features:
            raise ValueError(f"dataset: split {split!r} has different features from the first split")
    name = name or getattr(first.info, "dataset_name", None) or repo_id.split("/")[-1]
    data_dir = config_name if config_name != "default" else "data"
    text = _card_text(card) or str(render_dataset_card(splits, name, repo_id=repo_id, config_name=config_name))
    new_card = DatasetCard(text)

    workdir = tempfile.TemporaryDirectory(prefix="stefaland_push_")
    try:
        operations: list = []
        info = DatasetInfo(config_name=config_name, features=features, splits=SplitDict(), download_size=0, dataset_size=0)
        for split, ds in splits.items():
            nbytes = ds._estimate_nbytes() if len(ds) else 0
            num_shards = max(1, min(len(ds), int(nbytes / max_shard_size) + 1)) if len(ds) else 1
            for index in range(num_shards):
                shard = ds.shard(num_shards=num_shards, index=index, contiguous=True)
                path_in_repo = f"{data_dir}/{split}-{index:05d}-of-{num_shards:05d}.parquet"
                local = Path(workdir.name) / path_in_repo
                local.parent.mkdir(parents=True, exist_ok=True)
                shard.to_parquet(str(local))
                info.download_size += local.stat().st_size
                operations.append(CommitOperationAdd(path_in_repo=path_in_repo, path_or_fileobj=str(local)))
            info.splits.add(SplitInfo(name=split, num_bytes=nbytes, num_examples=len(ds)))
            info.dataset_size += nbytes
        info.size_in_bytes = info.download_size + info.dataset_size

        def card_with_other_configs(api: HfApi, head: str, files: list[str]) -> list:
            """The card, with the other configs of the card at ``head`` merged in."""
            if "README.md" in files:
                old_path = _hub_step("dataset", repo_id, "dataset", "reading the existing dataset card", api.hf_hub_download,
                                     repo_id, "README.md", repo_type="dataset", revision=head)
                old = DatasetCard(Path(old_path).read_text(encoding="utf-8")).data
                for key in ("configs", "dataset_info"):
                    if old.get(key) is not None:
                        new_card.data[key] = old.get(key)
            MetadataConfigs(
                {config_name: {"data_files": [{"split": s, "path": f"{data_dir}/{s}-*"} for s in splits]}}
            ).to_dataset_card_data(new_card.data)
            DatasetInfosDict({config_name: info}).to_dataset_card_data(new_card.data)
            return [CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=str(new_card).encode("utf-8"))]

        return _commit("dataset", repo_id, "dataset", operations, private=private, commit_message=commit_message,
                       token=token, revision=revision, keep=keep, scope=f"{data_dir}/", remote_fn=card_with_other_configs)
    finally:
        workdir.cleanup()


# ================================================================================================
# Names
# ================================================================================================
def _is_short_name(name: str) -> bool:
    return "/" not in name and (name in KNOWN_MODELS or name.startswith("stefaland-"))


def _looks_like_path(name: str) -> bool:
    """Whether ``name`` can only mean a local folder: absolute, ``.``/``~``, a backslash, more than one
    ``/``, a trailing ``/``, or a first component that is an existing folder (``runs/model`` with ``runs/``)."""
    if os.path.isabs(name) or name.startswith((".", "~")) or "\\" in name or name.endswith("/") or name.count("/") > 1:
        return True
    return "/" in name and os.path.isdir(name.split("/")[0])


def _nearest_existing(path: str) -> str:
    parent = Path(path).expanduser().absolute().parent
    while not parent.is_dir():
        parent = parent.parent
    return str(parent)


def resolve_model_name(name: str | os.PathLike) -> str:
    """What ``from_pretrained`` should load for ``name``.

    1. ``name`` is an existing folder (relative to the CWD, or absolute) -> that folder;
    2. ``name`` looks like a path (see :func:`_looks_like_path`) -> ``FileNotFoundError("no such folder")``,
       rather than a confusing "not a valid Hub id" from the Hub client;
    3. a short name (``stefaland-base``, ``stefaland-tiny``, any ``stefaland-*`` without ``/``) and
       ``$STEFALAND_WEIGHTS/<name>`` is a folder -> that folder;
    4. a short name whose model-zoo folder ships weights (``model.safetensors``) -> that folder;
    5. a short name -> the Hub repo ``$STEFALAND_HUB_ORG/<name>`` (default organisation ``stefaland``), which
       transformers loads from the HF cache or the Hub (only the cache when ``HF_HUB_OFFLINE=1``);
    6. anything else (``org/repo`` ids) is returned unchanged.
    """
    name = os.fspath(name)
    if os.path.isdir(name):
        return name
    if os.path.exists(name):
        raise NotADirectoryError(f"not a folder: {name!r} is a file; pass the model folder (the one with config.json)")
    if _looks_like_path(name):
        raise FileNotFoundError(
            f"no such folder: {name!r} (looked for {str(Path(name).expanduser().absolute())!r}; the nearest existing "
            f"folder is {_nearest_existing(name)!r})"
            + (f"; it is read as a local path because the folder {name.split('/')[0]!r} exists here"
               if name.count("/") == 1 and not os.path.isabs(name) and not name.startswith((".", "~")) else "")
        )
    if not _is_short_name(name):
        return name
    weights = os.environ.get(WEIGHTS_ENV)
    if weights and os.path.isdir(os.path.join(weights, name)):
        return os.path.join(weights, name)
    shipped = zoo.shipped_weights(name)
    if shipped is not None:
        return str(shipped)
    org = os.environ.get(HUB_ORG_ENV) or DEFAULT_HUB_ORG
    return f"{org}/{name}"


def _hub_base(base_model: str | os.PathLike | None) -> tuple[str | None, str | None]:
    """(Hub repo id, local folder) of a base model as :func:`resolve_model_name` reads it; exactly one is set.

    A card's ``base_model`` links the model to a Hub repo, so a local folder (existing or not) must never go
    there; callers name it in prose instead.
    """
    if not base_model:
        return None, None
    name = os.fspath(base_model)
    try:
        target = resolve_model_name(name)
        validate_repo_id(target)
    except (OSError, HFValidationError):
        return None, name
    return (None, name) if os.path.isdir(target) else (target, None)


def _not_found(error: BaseException) -> BaseException | None:
    """The Hub client's "this repo is not there" error behind a transformers ``OSError``, if that is the cause."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, GatedRepoError):  # it exists; the original message says how to get access
            return None
        if isinstance(cause, (RepositoryNotFoundError, RevisionNotFoundError, LocalEntryNotFoundError, HFValidationError)):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


def from_pretrained(name: str | os.PathLike, model_class=None, **kwargs):
    """``model_class.from_pretrained(resolve_model_name(name), **kwargs)``; ``model_class`` defaults to ``AutoModel``.

    A name found nowhere raises ``FileNotFoundError`` listing every place that was tried (folder, the
    ``$STEFALAND_WEIGHTS`` folder for short names, the Hub repo or the HF cache when offline).
    """
    if model_class is None:
        from transformers import AutoModel as model_class
    import stefaland_hf  # noqa: F401  (registers the Auto classes)

    text = os.fspath(name)
    target = resolve_model_name(text)
    try:
        return model_class.from_pretrained(target, **kwargs)
    except OSError as error:
        cause = _not_found(error)
        if cause is None or os.path.isdir(target):
            raise
        from huggingface_hub import constants

        tried = [f"the folder {str(Path(text).absolute())!r}: does not exist"]
        if _is_short_name(text):
            weights = os.environ.get(WEIGHTS_ENV)
            tried.append(f"${WEIGHTS_ENV}/{text}: " + (f"{os.path.join(weights, text)!r} does not exist" if weights
                                                       else f"${WEIGHTS_ENV} is not set"))
        if isinstance(cause, LocalEntryNotFoundError):
            hub = (f"the Hub repo {target!r}: not (completely) in the HF cache ({constants.HF_HUB_CACHE}) and the Hub was not "
                   f"reached ({'HF_HUB_OFFLINE is set' if constants.is_offline_mode() else 'no connection'})")
        elif isinstance(cause, RevisionNotFoundError):
            hub = f"the Hub repo {target!r}: has no revision {kwargs.get('revision', 'main')!r}"
        elif isinstance(cause, HFValidationError):
            hub = f"the Hub repo {target!r}: not a valid repo id ('namespace/name')"
        else:
            hub = (f"the Hub repo {target!r}: not found on {constants.ENDPOINT} (or it is private: log in with "
                   "`hf auth login` or set HF_TOKEN)")
        if _is_short_name(text):
            tried.append(f"the package's model zoo ({zoo.model_zoo_dir()}): ships no weights for {text!r}"
                         f" (zoo entries with weights: {[n for n in zoo.zoo_names() if zoo.shipped_weights(n)] or 'none'})")
        tried.append(hub)
        raise FileNotFoundError(
            f"model {text!r} not found; tried " + "; ".join(tried) + ". To get weights: pretrain one "
            "(`python examples/pretrain.py`, or `stefaland demo` writes one to <out>/pretraining/model), convert the "
            "authors' checkpoint (`stefaland convert-original CHECKPOINT.pt --out DIR`), or download a pushed model "
            f"once online (it is then served from the HF cache); set ${WEIGHTS_ENV} to a folder of such models"
        ) from error


# ================================================================================================
# CLI: stefaland push model|adapter|dataset
# ================================================================================================
def run_push_cli(args: argparse.Namespace) -> int:
    """``stefaland push model|adapter|dataset`` (its arguments: ``stefaland_cli.push``)."""
    check_push_target(args.repo)  # before building a card or a dataset
    if args.what == "model":
        results = []
        if args.report:
            results = results_from_report(args.report, args.eval_dataset, args.eval_split)
        card = render_model_card(args.folder, results=results, report=args.report, base_model=args.base, repo_id=args.repo)
        info = push_model(args.folder, args.repo, card=card, private=args.private, keep=args.keep, **_message(args))
    elif args.what == "adapter":
        results = results_from_report(args.report, args.eval_dataset, args.eval_split) if args.report else []
        card = render_adapter_card(args.folder, args.report, args.base, results=results,
                                   dataset_name=args.eval_dataset if args.report else None, repo_id=args.repo)
        info = push_adapter(args.folder, args.repo, base_model=args.base, card=card, private=args.private, keep=args.keep,
                            **_message(args))
    else:
        from .data import load_site_dataset

        ds = load_site_dataset(args.name, config_name=args.config_name, data_dir=args.data_dir, cache_dir=args.cache_dir)
        info = push_dataset(ds, args.repo, config_name=args.config_name or "default", name=args.name,
                            private=args.private, keep=args.keep, **_message(args))
    print(getattr(info, "commit_url", None) or info)
    return 0


def _message(args) -> dict:
    return {"commit_message": args.commit_message} if args.commit_message else {}


