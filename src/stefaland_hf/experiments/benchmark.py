"""``stefaland benchmark pub|pur``: the paper's CAMELS protocol with baselines and ablations.

Per fold (PUB: random basin groups; PUR: the HUC-02 region groups of Feng et al. 2021) six
models are trained on the training basins and evaluated on the held-out basins over the test
period: the LSTM baseline ("LSTM SL", ``direct``), StefaLand ``scratch``, pretrained + ``resconn``,
pretrained ``no_adapter`` and pretrained ``linear_probe`` (paper Tables 1, 2 and 13), and the control
``random_encoder``: resConn on a frozen, randomly initialized encoder of exactly the base's configuration
(its variables and normalization statistics), drawn from the training seed. What a frozen-encoder model gains
over that control is what the pretraining put into the encoder; ``summary.md`` and ``results.json`` pair every
model against the LSTM and against the control. On request (``--models hbv resconn_hbv``), the paper's Table 9 pair:
``hbv`` (δHBV: an LSTM predicts the parameters of a differentiable HBV) and ``resconn_hbv`` (the frozen encoder and
the resConn adapter predict them), both trained under the ``finetune`` section (docs/hbv.md).

Probabilistic variants (docs/probabilistic.md): ``MODEL+cmal`` and ``MODEL+quantile`` train that model with a
distributional head, ``MODEL+mc_dropout`` scores the point model's MC dropout ensemble (``benchmark.mc_dropout_passes``
passes; trained once when ``MODEL`` runs too); ``--set finetune.output_distribution=cmal`` makes every model
distributional. Every model gets per-basin ``crps`` (point models: the absolute error), a probabilistic one also
``coverage_50``/``coverage_90`` and ``width_50``/``width_90``; a variant is paired against its point model and its MC
dropout ensemble.

Pretraining reads forcings and static attributes only, never streamflow. With
``--pretrain-on all`` (default) one pretraining on every listed basin's forcings and attributes
(training period) is shared by all folds; ``--pretrain-on train`` pretrains per fold on the
training basins only (the paper removes evaluation basins from pretraining); ``--base`` uses a
given pretrained model instead (e.g. a converted original checkpoint). Only the frozen-encoder models
need a pretraining: ``--models direct scratch`` pretrains nothing. Settings come from a preset
(``stefaland_hf/presets/benchmark/*.yaml``: ``benchmark`` (:class:`BenchmarkSettings`), ``pretrain``, ``finetune``
and ``baseline``, the LSTM's differences from ``finetune``); ``--set SECTION.FIELD=VALUE`` changes any field of a
section (the investigation runs in docs/RESULTS.md). Results are written per fold, so an interrupted benchmark
resumed with ``--resume`` (same arguments) continues at the first unfinished fold.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..configuration_stefaland import FROZEN_BACKBONE_MODES, HBV_HEAD_MODES, StefaLandConfig
from ..data import DATASET_TITLES, load_site_dataset
from ..data.camels_us import PAPER_ATTRIBUTES
from .. import zoo
from ..data.splits import gauged_sites, pub_folds, pur_splits
from ..evaluation import MC_DROPOUT_PASSES
from ..hub.names import resolve_model_name
from ..metrics import standard_error
from ..presets import apply_overrides, load_preset, preset_names
from ..training.argument_checks import require_at_least, require_period
from ..training.arguments import DEFAULT_PERIODS, FinetuneArguments
from ..training.finetune import finetune
from ..training.pretrain import PretrainArguments, config_for_dataset, pretrain
from ..training.run_folder import MANIFEST_FILE, build_manifest, dataset_fingerprint, file_sha256, latest_complete_checkpoint, prepare_run_folder
from .plots import plot_metric_cdf

MODELS = {
    "LSTM SL": "direct",
    "StefaLand scratch": "scratch",
    "StefaLand resConn": "resconn",
    "StefaLand no adapter": "no_adapter",
    "StefaLand linear probe": "linear_probe",
    "StefaLand resConn, random encoder": "random_encoder",
    "LSTM-HBV1.1p": "hbv",  # the paper's Table 9: δHBV, an LSTM predicting the parameters of a differentiable HBV
    "StefaLand-resConn HBV1.1p": "resconn_hbv",  # the paper's hybrid: the frozen encoder + adapter predict them
}
# benchmark models that are not head modes: the head mode they train
MODEL_HEAD_MODES = {"random_encoder": "resconn"}
# MODEL+VARIANT: a distributional head ("cmal", "quantile") or the point head's MC dropout ensemble; the label suffix
VARIANTS = {"cmal": "CMAL", "quantile": "quantiles", "mc_dropout": "MC dropout"}
DISTRIBUTION_LABELS = {"cmal": "CMAL", "quantile": "quantiles"}  # a model made distributional by --set finetune.output_distribution
# per-basin probabilistic metrics in summary.md (lower CRPS is better; a calibrated interval covers its nominal share)
PROBABILISTIC_TABLE = (("crps", "CRPS"), ("coverage_50", "coverage 50 %"), ("coverage_90", "coverage 90 %"),
                       ("width_50", "width 50 %"), ("width_90", "width 90 %"))
REFERENCES = {"LSTM SL": "direct", "random encoder": "random_encoder"}  # what every model is paired against
TABLE_METRICS = (("rmse", "RMSE"), ("ubrmse", "ubRMSE"), ("pearson_r", "Corr"), ("nse", "NSE"), ("kge", "KGE"))


@dataclass
class BenchmarkSettings:
    """The benchmark's own settings (a preset's ``benchmark`` section). A preset's periods are CAMELS-US dates; left
    out, or on another dataset, they are the dataset's own (``training.arguments.DEFAULT_PERIODS``)."""

    model: str = field(default="stefaland-tiny", metadata={"help": "model-zoo architecture (modeling/<model>) of every model"})
    train_period: list[str] | None = field(default=None, metadata={"help": "START END of finetuning, validation and normalization"})
    test_period: list[str] | None = field(default=None, metadata={"help": "START END of the evaluation"})
    val_period: list[str] | None = field(
        default=None, metadata={"help": "START END of the validation basins' early stopping; default: train_period"}
    )
    pretrain_period: list[str] | None = field(
        default=None, metadata={"help": "START END of the pretraining's forcings and attributes (never streamflow); default: train_period"}
    )
    train_basins: int | None = field(
        default=None,
        metadata={"help": "train on only this many of each fold's training basins (nested: the first N of a fixed draw per fold), "
                          "the held-out and validation basins unchanged: one point of the data-scarcity curve"},
    )
    mc_dropout_passes: int = field(
        default=MC_DROPOUT_PASSES, metadata={"help": "forward passes of the MODEL+mc_dropout models' MC dropout ensembles"}
    )

    def __post_init__(self):
        require_period(self, "train_period", "val_period", "test_period", "pretrain_period")
        require_at_least(self, 1, "train_basins", optional=True)
        require_at_least(self, 2, "mc_dropout_passes")


SECTIONS = {"benchmark": BenchmarkSettings, "pretrain": PretrainArguments, "finetune": FinetuneArguments, "baseline": FinetuneArguments}
PRESETS = tuple(preset_names("benchmark"))


def benchmark_preset(name: str, dataset_name: str = "camels_us", overrides: Sequence[str] = ()) -> dict[str, dict]:
    """Preset ``name`` on ``dataset_name`` with ``SECTION.FIELD=VALUE`` overrides and its periods filled in."""
    preset = load_preset("benchmark", name)
    if dataset_name != "camels_us":  # the preset's periods are CAMELS-US dates
        preset["benchmark"] = {k: v for k, v in preset["benchmark"].items() if k not in ("train_period", "test_period")}
    preset = apply_overrides(preset, overrides, SECTIONS)
    settings = BenchmarkSettings(**preset["benchmark"])
    periods = DEFAULT_PERIODS[dataset_name]
    preset["benchmark"] = {**asdict(settings), "train_period": settings.train_period or periods["train"], "test_period": settings.test_period or periods["test"]}
    return preset


def split_model(model: str) -> tuple[str, str | None]:
    """``MODEL+VARIANT`` -> (MODEL, VARIANT); a plain model has no variant. An unknown variant is an error naming them."""
    name, plus, variant = model.partition("+")
    if plus and variant not in VARIANTS:
        raise ValueError(f"benchmark model {model!r}: the variant {variant!r} does not exist; known: {list(VARIANTS)}")
    return name, variant or None


def head_mode_of(model: str) -> str:
    """The head mode that benchmark model ``model`` trains (``random_encoder``: resConn on a random encoder)."""
    name = split_model(model)[0]
    return MODEL_HEAD_MODES.get(name, name)


def model_label(model: str, preset: dict[str, dict] | None = None) -> str:
    """The table label of benchmark model ``model`` (``MODELS``' label, ``, CMAL`` etc. for a variant or for a model the
    preset's ``finetune.output_distribution`` makes distributional)."""
    name, variant = split_model(model)
    label = next((label for label, known in MODELS.items() if known == name), name)
    distribution = ((preset or {}).get("finetune") or {}).get("output_distribution", "none")
    suffix = VARIANTS[variant] if variant else DISTRIBUTION_LABELS.get(distribution)
    return f"{label}, {suffix}" if suffix else label


def benchmark_models(names: Sequence[str], preset: dict[str, dict] | None = None) -> dict[str, str]:
    """{label: model} of the ``--models`` names in the order given; two names that train the same model are refused."""
    models = {}
    for name in dict.fromkeys(names):
        label = model_label(name, preset)
        if label in models:
            raise ValueError(f"--models {models[label]} and {name}: the same model here ({label}); drop one")
        models[label] = name
    return models


def uses_frozen_encoder(model: str) -> bool:
    return head_mode_of(model) in FROZEN_BACKBONE_MODES


def finetune_arguments(
    preset: dict[str, dict], folder: Path, model: str, seed: int, cache_dir: Path, with_mc_dropout: bool = False
) -> FinetuneArguments:
    """A benchmark model's finetuning: the preset's ``finetune`` section (and ``baseline`` for the LSTM), a variant's
    distribution or MC dropout passes (``with_mc_dropout``: a point model whose ``+mc_dropout`` variant shares its
    training); an unfinished fold is trained again from the start."""
    head_mode = head_mode_of(model)
    variant = split_model(model)[1]
    section = {**preset["finetune"], **(preset["baseline"] if head_mode == "direct" else {})}
    run = {"output_dir": str(folder), "head_mode": head_mode, "disable_tqdm": True, "embedding_cache_dir": str(cache_dir), "overwrite": True}
    if variant in DISTRIBUTION_LABELS:
        run["output_distribution"] = variant
    if variant == "mc_dropout" or with_mc_dropout:
        if section.get("output_distribution", "none") != "none":
            raise ValueError(
                f"benchmark model {model}: MC dropout scores a point model's dropout ensemble, but --set "
                f"finetune.output_distribution={section['output_distribution']} makes every model distributional; drop one"
            )
        run["mc_dropout_passes"] = preset["benchmark"].get("mc_dropout_passes", MC_DROPOUT_PASSES)
    return FinetuneArguments(**{"seed": seed, **section, **run})


def step_cap(preset: dict[str, dict], model: str) -> int:
    """The optimizer-step cap benchmark model ``model`` trained under (the LSTM baseline has its own)."""
    section = {**preset["finetune"], **(preset["baseline"] if head_mode_of(model) == "direct" else {})}
    return section.get("max_steps", FinetuneArguments.max_steps)


def make_splits(kind: str, dataset, folds: int, seed: int, train_period, test_period, val_period=None, train_basins: int | None = None):
    """PUB folds or PUR groups over the gauged basins (ungauged ones still feed the pretraining); with ``train_basins``,
    each fold trains on the first ``train_basins`` of a fixed permutation of its training basins (nested across N)."""
    periods = {"train_period": train_period, "val_period": val_period or train_period, "test_period": test_period}
    all_ids, gauged = list(dataset["site_id"]), gauged_sites(dataset)
    site_ids = [all_ids[i] for i in gauged]
    if kind == "pub":
        splits = pub_folds(site_ids, k=folds, seed=seed, val_fraction=0.1, **periods)
    else:
        regions = list(dataset["region"])
        splits = pur_splits([regions[i] for i in gauged], seed=seed, val_fraction=0.1, site_ids=site_ids, **periods)
    if train_basins is not None:
        splits = [fewer_training_basins(split, train_basins, seed, fold) for fold, split in enumerate(splits)]
    return [split.remap(all_ids) for split in splits]


def fewer_training_basins(split, n: int, seed: int, fold: int):
    """``split`` training on the first ``n`` basins of a permutation drawn from (seed, fold): the basins of a smaller
    ``n`` are among those of a larger one, and the held-out and validation basins do not change."""
    if n > len(split.train_sites):
        raise ValueError(f"benchmark.train_basins={n}: fold {fold} has only {len(split.train_sites)} training basins")
    order = np.random.default_rng([seed, fold, 531]).permutation(split.train_sites)
    return dataclasses.replace(split, train_sites=np.sort(order[:n]), info={**split.info, "train_basins": n})


def _pretrain(dataset, sites, preset: dict[str, dict], seed: int, out: Path, model_config: StefaLandConfig) -> Path:
    """The benchmark's pretraining in ``out``: reused when finished, resumed when interrupted after a checkpoint."""
    if not (out / "model" / "model.safetensors").exists():
        settings = preset["benchmark"]
        checkpoint = latest_complete_checkpoint(out / "checkpoints", log=print) if (out / "checkpoints").is_dir() else None
        run = {"output_dir": str(out), "resume": checkpoint is not None, "overwrite": checkpoint is None}
        pretrain(model_config, dataset, sites, settings["pretrain_period"] or settings["train_period"], PretrainArguments(**{"seed": seed, **preset["pretrain"], **run}))
    return out / "model"


def random_encoder(base: str | Path, seed: int, out: Path) -> Path:
    """A randomly initialized encoder of exactly ``base``'s configuration (variables, normalization statistics,
    architecture), drawn from ``seed`` and saved in ``out``: the control that shows what pretraining adds."""
    from transformers import set_seed

    from ..modeling_stefaland import StefaLandForPretraining

    config = StefaLandConfig.from_pretrained(base)
    # one per (configuration, seed): per-fold pretrainings differ in their normalization statistics
    folder = out / f"{hashlib.sha256(config.to_json_string().encode()).hexdigest()[:16]}_seed_{seed}"
    if not (folder / "model.safetensors").is_file():
        set_seed(seed)
        StefaLandForPretraining(config).save_pretrained(folder)
    return folder


def run_benchmark(
    kind: str,
    dataset,
    out: Path,
    folds: int,
    seed: int,
    preset: dict[str, dict],
    pretrain_on: str = "all",
    models=MODELS,
    dataset_name: str = "camels_us",
    base: str | None = None,
    training_seed: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> dict:
    """Train and evaluate ``models`` (label -> head mode) per fold; writes OUT/results.json, summary.md, nse_cdf.png.

    ``preset`` comes from :func:`benchmark_preset`. ``pretrain_on`` is ``"all"`` (one pretraining shared by the folds)
    or ``"train"`` (one per fold); a ``base`` (pretrained model folder or Hub id) replaces the pretraining for the
    frozen-encoder models, and without a frozen-encoder model nothing is pretrained. ``seed`` draws the folds and,
    unless ``training_seed`` is given, the pretraining and finetuning randomness (repeat a run with other training
    seeds on the same folds to see how much of a difference is initialization). ``resume`` continues an interrupted
    run of the same benchmark in ``out`` (finished folds are kept); ``overwrite`` replaces whatever benchmark ``out`` holds.
    """
    training_seed = seed if training_seed is None else training_seed
    unknown = sorted({model for model in models.values() if split_model(model)[0] not in MODELS.values()})
    if unknown:
        raise ValueError(f"benchmark models {unknown} do not exist; known: {list(MODELS.values())} (and MODEL+VARIANT, VARIANT one of {list(VARIANTS)})")
    for model in models.values():  # every model's arguments are checked before anything trains
        finetune_arguments(preset, out / model, model, training_seed, out / "embedding_cache", _shares_mc_dropout(model, models))
    settings = preset["benchmark"]
    arguments = {
        "kind": kind, "folds": folds, "seed": seed, "training_seed": training_seed, "preset": preset, "pretrain_on": pretrain_on,
        "models": models, "base": None if base is None else str(base),
    }
    if base is not None:
        base = resolve_model_name(base)  # a short name (the shipped release) -> its folder
    weights = Path(base) / "model.safetensors" if base is not None else None
    # the weights' content is the base model's identity, not the path they were given by: the same weights in
    # another folder or checkout resume the run; a Hub id not downloaded yet is compared by its name
    base_model = {"sha256": file_sha256(weights)} if weights is not None and weights.is_file() else base
    manifest = build_manifest("benchmark", arguments, data=dataset_fingerprint(dataset), base_model=base_model)
    prepare_run_folder(out, manifest, resume, overwrite, volatile=("base",))
    splits = make_splits(kind, dataset, folds, seed, settings["train_period"], settings["test_period"], settings["val_period"],
                         settings["train_basins"])
    # the model-zoo architecture with the dataset's own variables (all models see the same inputs);
    # scratch and direct train it from random weights, the frozen modes load a pretrained encoder
    model_config = config_for_dataset(StefaLandConfig.from_pretrained(zoo.model_zoo_dir() / settings["model"]), dataset)
    if not any(uses_frozen_encoder(model) for model in models.values()):
        pretrain_on, base = "none", None
    elif base is not None:
        pretrain_on = "given"
    shared_base = base
    if pretrain_on == "all":
        shared_base = _pretrain(dataset, np.arange(len(dataset)), preset, training_seed, out / "pretraining", model_config)

    fold_results = []
    for index, split in enumerate(splits):
        fold_file = out / "folds" / f"fold_{index}.json"
        if fold_file.exists():
            fold_results.append(json.loads(fold_file.read_text()))
            print(f"fold {index}: done earlier ({fold_file})")
            continue
        fold_dir = out / "folds" / f"fold_{index}"
        pretrained = shared_base
        if pretrain_on == "train":
            pretrained = _pretrain(dataset, split.sites("train"), preset, training_seed, fold_dir / "pretraining", model_config)
        entries, reports = {}, {}
        # a point model trains before its +mc_dropout variant, which then scores the same trained model
        for label, model in sorted(models.items(), key=lambda item: split_model(item[1])[1] == "mc_dropout"):
            started = time.time()
            name, variant = split_model(model)
            if variant == "mc_dropout" and name in reports:
                report = reports[name]
                entries[label] = _model_entry(model, report, report["mc_dropout_evaluation"], report["mc_dropout"]["seconds"], trained_with=name)
                continue
            args = finetune_arguments(preset, fold_dir / model, model, training_seed, out / "embedding_cache", _shares_mc_dropout(model, models))
            if name == "random_encoder":
                base_of_model = random_encoder(pretrained, training_seed, out / "random_encoders")
            else:
                base_of_model = pretrained if uses_frozen_encoder(model) else model_config
            report = reports[model] = finetune(base_of_model, dataset, split, args)
            scored_mc = variant == "mc_dropout"
            evaluation = report["mc_dropout_evaluation" if scored_mc else "evaluation"]
            seconds = time.time() - started - (0 if scored_mc else report.get("mc_dropout", {}).get("seconds", 0))
            entries[label] = _model_entry(model, report, evaluation, seconds)
            summary = evaluation["summary"]
            print(f"fold {index} {label}: median NSE {summary['nse']:.3f}, CRPS {summary['crps']:.3f} ({time.time() - started:.0f} s)")
        fold = {"fold": index, "split": split.to_dict(), "models": {label: entries[label] for label in models}}
        fold_file.parent.mkdir(parents=True, exist_ok=True)
        fold_file.write_text(json.dumps(fold, indent=1))
        shutil.rmtree(out / "embedding_cache", ignore_errors=True)  # the fold's frozen-mode models shared it
        fold_results.append(fold)

    results = {
        "kind": kind,
        "dataset": dataset_name,
        "n_basins": len(dataset),
        "seed": seed,
        "training_seed": training_seed,
        "preset": preset,
        "pretrain_on": pretrain_on,
        "base": None if base is None else str(base),
        "protocol": protocol_text(kind, pretrain_on, preset, base, dataset_name) + probabilistic_protocol(models, preset),
        "empty_groups": splits[0].info.get("empty_groups", []) if kind == "pur" else [],
        "folds": fold_results,
    }
    results["paired"] = paired_deltas(results)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "summary.md").write_text(summary_markdown(results))
    per_model = {label: [b["nse"] for f in fold_results for b in f["models"][label]["per_basin"].values()] for label in models}
    plot_metric_cdf(per_model, out / "nse_cdf.png")
    print(summary_markdown(results))
    return results


def _shares_mc_dropout(model: str, models: dict[str, str]) -> bool:
    """Whether point model ``model`` also scores its MC dropout ensemble, for its ``+mc_dropout`` variant in ``models``."""
    return split_model(model)[1] is None and f"{model}+mc_dropout" in models.values()


def _model_entry(model: str, report: dict, evaluation: dict, seconds: float, trained_with: str | None = None) -> dict:
    """A model's entry in a fold's results: its training and the per-basin metrics and medians of ``evaluation``."""
    entry = {
        "model": model,
        "head_mode": head_mode_of(model),
        "seconds": round(seconds, 1),
        "steps": report["steps"],  # optimizer steps until early stopping (or the cap)
        "trainable_parameters": report["trainable_parameters"],
        "n_test_sites_observed": evaluation["n_sites_observed"],  # the basins the medians cover
        "per_basin": {
            site: {metric: _float(values[i]) for metric, values in evaluation["per_site"].items()}
            for i, site in enumerate(evaluation["site_ids"])
        },
        "summary": {k: _float(v) for k, v in evaluation["summary"].items()},
    }
    if "reliability" in evaluation:  # pooled over the held-out basins: the reliability diagram's points
        entry["reliability"] = evaluation["reliability"]
    if trained_with is not None:  # scored the model trained for another entry (seconds: this scoring only)
        entry["trained_with"] = trained_with
    return entry


def _float(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def protocol_text(kind: str, pretrain_on: str, preset: dict[str, dict], base: str | None = None, dataset_name: str = "camels_us") -> str:
    train, test = preset["benchmark"]["train_period"], preset["benchmark"]["test_period"]
    val = preset["benchmark"].get("val_period") or train
    regions = "HUC-02 region groups of Feng et al. 2021" if dataset_name == "camels_us" else "region groups, one at a time"
    held_out = "random basin groups (PUB)" if kind == "pub" else f"{regions} (PUR)"
    pre = {
        "all": "one pretraining on the forcings and static attributes of all listed basins (training period), shared by all folds",
        "train": "a pretraining per fold on the training basins' forcings and attributes only",
        "given": f"the given pretrained model {base}",
        "none": "none (every model here trains from random weights)",
    }[pretrain_on]
    return (
        f"Held out: {held_out}. Finetuning and normalization use training basins over {train[0]}..{train[1]}"
        + (f" (only {preset['benchmark']['train_basins']} per fold, nested across sizes)" if preset["benchmark"].get("train_basins") else "")
        + f"; validation (early stopping) uses 10% of the training basins over {val[0]}..{val[1]}; StefaLand models train at most "
        f"{step_cap(preset, 'resconn')} steps, the (cheaper) LSTM at most {step_cap(preset, 'direct')}; metrics are per held-out basin over "
        f"{test[0]}..{test[1]}, median over basins, ± standard error across folds. "
        f"Pretraining: {pre}" + ("." if pretrain_on == "none" else "; it never reads streamflow.")
    )


def probabilistic_protocol(models: dict[str, str], preset: dict[str, dict]) -> str:
    """What the run's distributional heads and MC dropout ensembles are (appended to the protocol); "" without any."""
    variants = {split_model(model)[1] for model in models.values()}
    distribution = preset["finetune"].get("output_distribution", "none")
    parts = []
    if distribution != "none" or variants & set(DISTRIBUTION_LABELS):
        parts.append("Distributional heads (CMAL, quantiles) are scored on their quantiles at the levels 0.01, 0.03, ..., 0.99 "
                     "(CRPS of that quantile grid) and NSE etc. on their mean (a quantile head: its median)")
    if distribution != "none":
        parts.append(f"every model here has a {distribution} head (finetune.output_distribution)")
    if "mc_dropout" in variants:
        passes = preset["benchmark"].get("mc_dropout_passes", MC_DROPOUT_PASSES)
        parts.append(f"MC dropout: {passes} passes of the trained point model with its dropout active (a frozen encoder "
                     "stays without), scored by the members' fair CRPS, their empirical quantiles and NSE etc. of their mean")
    return "".join(f" {part[0].upper()}{part[1:]}." for part in parts)


def mean_se_cell(values) -> str:
    """``mean ± standard error`` of the finite values (a table cell); ``n/a`` when there are none."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return "n/a"
    se = standard_error(values) if values.size > 1 else float("nan")
    return f"{values.mean():.3f} ± {se:.3f}"


def _model_name(entry: dict) -> str | None:
    """The benchmark model of a results entry (results written before ``random_encoder`` existed name the head mode)."""
    return entry.get("model", entry.get("head_mode"))


def paired_deltas(results: dict, metric: str = "nse") -> dict[str, dict[str, dict]]:
    """Each model's fold medians of ``metric`` minus those of each reference model (:data:`REFERENCES`) run beside it,
    paired by fold: ``{label: {reference: {"mean", "se", "better", "n"}}}``."""
    folds = results["folds"]
    if not folds:
        return {}
    labels = list(folds[0]["models"])
    by_model = {_model_name(folds[0]["models"][label]): label for label in labels}
    medians = {label: np.array([np.nan if f["models"][label]["summary"].get(metric) is None else f["models"][label]["summary"][metric]
                                for f in folds], dtype=float) for label in labels}
    paired = {}
    for label in labels:
        for reference, model in REFERENCES.items():
            ref_label = by_model.get(model)
            if ref_label is None or ref_label == label:
                continue
            paired.setdefault(label, {})[reference] = delta_statistics(medians[label], medians[ref_label])
    return paired


def delta_statistics(values, reference, lower_is_better: bool = False) -> dict:
    """Mean and standard error of ``values - reference`` over the pairs where both are finite, and how many are ahead
    (higher, or lower for an error such as CRPS)."""
    delta = np.asarray(values, dtype=float) - np.asarray(reference, dtype=float)
    delta = delta[np.isfinite(delta)]
    se = standard_error(delta) if delta.size > 1 else float("nan")
    ahead = (delta < 0) if lower_is_better else (delta > 0)
    return {"mean": _float(delta.mean()) if delta.size else None, "se": _float(se), "better": int(ahead.sum()), "n": int(delta.size)}


def delta_cell(stats: dict | None) -> str:
    """``+0.012 ± 0.004 (4/5)``; a difference within one standard error of zero is marked a tie."""
    if not stats or stats["mean"] is None:
        return "n/a"
    se = stats["se"]
    tie = se is not None and abs(stats["mean"]) <= se
    return f"{stats['mean']:+.3f} ± {'n/a' if se is None else f'{se:.3f}'} ({stats['better']}/{stats['n']}){' tie' if tie else ''}"


def _training_seed_note(results: dict) -> str:
    seed = results.get("training_seed", results["seed"])
    return "" if seed == results["seed"] else f" (training seed {seed})"


def summary_markdown(results: dict) -> str:
    """The paper's table layout: one row per model, median over basins per fold, mean ± s.e. across folds."""
    folds = results["folds"]
    labels = list(folds[0]["models"]) if folds else []
    title = DATASET_TITLES.get(results.get("dataset", "camels_us"), results.get("dataset"))
    lines = [f"## {title} {results['kind'].upper()} — {results['n_basins']} basins, {len(folds)} folds, seed {results['seed']}" + _training_seed_note(results), ""]
    lines.append(results["protocol"])
    if results.get("empty_groups"):
        lines.append(f"\nRegion groups without basins (not evaluated): {results['empty_groups']}")
    lines += ["", "| model | " + " | ".join(name for _, name in TABLE_METRICS) + " | wall time (s) |", "|---" * (len(TABLE_METRICS) + 2) + "|"]
    for label in labels:
        cells = []
        for key, _ in TABLE_METRICS:
            medians = [f["models"][label]["summary"].get(key) for f in folds]
            cells.append(mean_se_cell([np.nan if m is None else m for m in medians]))
        seconds = sum(f["models"][label]["seconds"] for f in folds)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {seconds:.0f} |")
    lines.append("")
    lines.append("Each cell: mean over folds of the median over held-out basins, ± standard error across folds.")
    paired = results.get("paired") or paired_deltas(results)
    if paired:
        references = [r for r in REFERENCES if any(r in p for p in paired.values())]
        lines += ["", "| model | " + " | ".join(f"Δ NSE vs {r} (paired by fold; folds ahead)" for r in references) + " |",
                  "|---" * (len(references) + 1) + "|"]
        lines += [f"| {label} | " + " | ".join(delta_cell(paired.get(label, {}).get(r)) for r in references) + " |" for label in labels]
        lines.append("\n'tie': the difference is within one standard error of zero.")
    lines += probabilistic_lines(folds, labels, "fold")
    lines += _fewer_basins_notes(folds, labels)
    lines += _unscored_notes(folds)
    return "\n".join(lines) + "\n"


def _fold_medians(folds: list[dict], label: str, metric: str) -> np.ndarray:
    """The median of ``metric`` over held-out basins per fold (NaN where undefined)."""
    values = [f["models"][label]["summary"].get(metric) for f in folds]
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def probabilistic_lines(folds: list[dict], labels: list[str], unit: str) -> list[str]:
    """summary.md's probabilistic table: median CRPS, coverage and width of the central 50 and 90 % intervals per
    model (mean ± s.e. over ``folds``: folds, or folds x seeds); a variant (``MODEL+cmal`` etc.) paired by ``unit``
    against its point model (NSE of its mean, CRPS) and against that model's MC dropout ensemble (CRPS)."""
    if not folds:
        return []
    by_model = {_model_name(folds[0]["models"][label]): label for label in labels}
    lines = ["", "| model | " + " | ".join(name for _, name in PROBABILISTIC_TABLE) + " |", "|---" * (len(PROBABILISTIC_TABLE) + 1) + "|"]
    for label in labels:
        lines.append(f"| {label} | " + " | ".join(mean_se_cell(_fold_medians(folds, label, key)) for key, _ in PROBABILISTIC_TABLE) + " |")
    lines.append(f"\nMedians over held-out basins, mean ± s.e. over {unit}s. CRPS in the target's unit (a point model's: its "
                 "mean absolute error); coverage: the observed share of days inside the central interval (calibrated: 0.50, "
                 "0.90); width: its mean width.")
    rows = []
    for label in labels:
        name, variant = split_model(_model_name(folds[0]["models"][label]) or "")  # results of older runs may name no model
        point, ensemble = by_model.get(name), by_model.get(f"{name}+mc_dropout")
        if variant is None:
            continue
        cells = [
            delta_cell(delta_statistics(_fold_medians(folds, label, "nse"), _fold_medians(folds, point, "nse"))) if point else "n/a",
            delta_cell(delta_statistics(_fold_medians(folds, label, "crps"), _fold_medians(folds, point, "crps"), True)) if point else "n/a",
            delta_cell(delta_statistics(_fold_medians(folds, label, "crps"), _fold_medians(folds, ensemble, "crps"), True))
            if ensemble and ensemble != label else "n/a",
        ]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    if rows:
        lines += ["", "| model | Δ NSE vs its point model | Δ CRPS vs its point model | Δ CRPS vs its MC dropout |",
                  "|---|---|---|---|", *rows,
                  f"\nPaired by {unit} ({unit}s ahead in brackets: a higher NSE, a lower CRPS); 'tie': within one standard error of zero."]
    return lines


def _unscored_notes(folds: list[dict]) -> list[str]:
    """Held-out basins without an observed test day: in no median, named rather than silently dropped."""
    unscored = sorted({site for fold in folds for entry in fold["models"].values()
                       for site, values in entry.get("per_basin", {}).items() if values.get("nse") is None})
    if not unscored:
        return []
    return ["", f"Unscored held-out basins (no observed day in the test period, or an undefined NSE), in no median: "
                f"{len(unscored)}: {', '.join(unscored[:20])}{' ...' if len(unscored) > 20 else ''}"]


def _fewer_basins_notes(folds: list[dict], labels: list[str]) -> list[str]:
    """A line for each model and metric whose medians cover fewer basins than its NSE's: Corr and KGE are undefined
    where a prediction is constant (e.g. 0 all period), and those basins silently leave only that model's medians."""
    notes = []
    for label in labels:
        counts = {key: 0 for key, _ in TABLE_METRICS}
        for fold in folds:
            for values in fold["models"][label].get("per_basin", {}).values():
                for key in counts:
                    counts[key] += values.get(key) is not None and np.isfinite(values[key])
        short = [f"{name} over {counts[key]}" for key, name in TABLE_METRICS if counts[key] < counts["nse"]]
        if short:
            notes.append(f"- {label}: {', '.join(short)} of the {counts['nse']} basin-folds with an NSE (undefined where its prediction is constant).")
    return ["", *notes] if notes else []


def dataset_options(dataset_name: str, models: Iterable[str], **options) -> dict:
    """The builder options of the benchmark's dataset: ``options`` that are set, and on CAMELS-US with an HBV head in
    the run the paper's attributes plus latitude (Hargreaves PET needs it) for every model, so all read the same inputs."""
    kwargs = {key: value for key, value in options.items() if value}
    if dataset_name == "camels_us" and any(head_mode_of(name) in HBV_HEAD_MODES for name in models):
        kwargs["attributes"] = [*PAPER_ATTRIBUTES, "latitude"]
        print("attributes: the paper's 25 CAMELS attributes and latitude (the HBV heads' PET needs it), for every model")
    return kwargs


def run_cli(args) -> int:
    """``stefaland benchmark`` (its arguments: ``stefaland_cli.benchmark``)."""
    if args.base and args.pretrain_on:
        raise ValueError(f"--base {args.base} and --pretrain-on {args.pretrain_on}: a given pretrained model replaces the pretraining; use one")
    preset = benchmark_preset(args.preset, args.dataset, args.overrides)
    order = {name: i for i, name in enumerate(MODELS.values())}
    variant_order = {None: -1, **{variant: i for i, variant in enumerate(VARIANTS)}}
    names = sorted(args.models, key=lambda m: (order.get(split_model(m)[0], len(order)), variant_order[split_model(m)[1]]))
    models = benchmark_models(names, preset)  # in the paper's order, each model's variants after it
    kwargs = dataset_options(args.dataset, models.values(), basins=args.basins, extra_data_dirs=args.extra_data_dir)
    dataset = load_site_dataset(args.dataset, data_dir=args.data_dir, cache_dir=args.cache_dir, **kwargs)
    base = args.base
    shipped = zoo.shipped_weights(zoo.RELEASE_MODEL)
    if base is None and args.pretrain_on is None and args.dataset == "camels_us" and shipped:
        base = str(shipped)  # the folder itself: a ./stefaland-conus would shadow the name
        print(f"base: the released {zoo.RELEASE_MODEL} shipped with the package ({base}); --pretrain-on all|train pretrains instead")
    pretraining_settings = [o for o in args.overrides if o.startswith(("pretrain.", "benchmark.pretrain_"))]
    if base is not None and pretraining_settings:
        raise ValueError(f"--set {pretraining_settings[0]!r}: this run pretrains nothing (its base is {base}); add --pretrain-on all|train to pretrain")
    if not args.training_seeds:
        run_benchmark(args.kind, dataset, Path(args.out), args.folds, args.seed, preset, args.pretrain_on or "all", models, args.dataset, base,
                      args.training_seed, args.resume, args.overwrite)
        return 0
    if len(set(args.training_seeds)) != len(args.training_seeds):
        raise ValueError(f"--training-seeds {args.training_seeds}: a seed is listed twice")
    if args.resume and not (Path(args.out) / f"seed_{args.training_seeds[0]}" / MANIFEST_FILE).exists():
        raise ValueError(f"--resume: {args.out} holds no run of training seed {args.training_seeds[0]} to continue")
    runs = {}
    for seed in args.training_seeds:
        seed_out = Path(args.out) / f"seed_{seed}"
        # an interrupted multi-seed run resumes the seeds it started and begins the ones it had not reached
        resume = args.resume and (seed_out / MANIFEST_FILE).exists()
        runs[seed] = run_benchmark(args.kind, dataset, seed_out, args.folds, args.seed, preset, args.pretrain_on or "all",
                                   models, args.dataset, base, seed, resume, args.overwrite)
    table = multi_seed_summary(runs)
    (Path(args.out) / "summary.md").write_text(table)
    print(table)
    return 0


def multi_seed_summary(runs: dict[int, dict], metric: str = "nse") -> str:
    """Median ``metric`` per fold and seed pooled over folds x seeds, and each model's difference to each reference
    model (:data:`REFERENCES`: the LSTM, the random encoder) paired by (fold, seed), with the pairs it is ahead in."""
    first = next(iter(runs.values()))
    labels = list(first["folds"][0]["models"])
    by_model = {_model_name(first["folds"][0]["models"][label]): label for label in labels}
    references = {name: by_model[model] for name, model in REFERENCES.items() if model in by_model}

    def medians(label):
        return np.array([np.nan if f["models"][label]["summary"].get(metric) is None else f["models"][label]["summary"][metric]
                         for r in runs.values() for f in r["folds"]], dtype=float)

    def steps(label):
        return [f["models"][label]["steps"] for r in runs.values() for f in r["folds"]]

    def at_cap(label):  # runs that stopped at the step cap rather than by early stopping
        return sum(f["models"][label]["steps"] >= step_cap(r["preset"], _model_name(f["models"][label])) for r in runs.values() for f in r["folds"])

    title = DATASET_TITLES.get(first.get("dataset", "camels_us"), first.get("dataset"))
    n = len(first["folds"])
    lines = [f"## {title} {first['kind'].upper()}: {first['n_basins']} basins, {n} folds (seed {first['seed']}) x training seeds {list(runs)}", "",
             first["protocol"], "",
             f"| model | median {metric.upper()} (mean ± s.e. over folds x seeds) | "
             + "".join(f"Δ vs {name} (paired; pairs ahead) | " for name in references) + "steps (min-max) | runs at the step cap |",
             "|---|---|" + "---|" * len(references) + "---|---|"]
    for label in labels:
        values = medians(label)
        deltas = ["(reference)" if ref == label else delta_cell(delta_statistics(values, medians(ref))) for ref in references.values()]
        lines.append(f"| {label} | {mean_se_cell(values)} | " + "".join(f"{d} | " for d in deltas)
                     + f"{min(steps(label))}-{max(steps(label))} | {at_cap(label)}/{len(values)} |")
    lines += ["", "'tie': the difference is within one standard error of zero. The s.e. treats the folds x seeds values as independent; "
              "the seeds of one fold share its basins, so it is optimistic."]
    lines += probabilistic_lines([f for r in runs.values() for f in r["folds"]], labels, "(fold, seed) pair")
    return "\n".join(lines) + "\n"
