"""``stefaland demo``: the whole StefaLand story on SynthLand, in minutes on a laptop CPU.

1. Build SynthLand (the embedded default data) and hold out a PUB fold of sites.
2. Pretrain ``stefaland-tiny`` (masked autoencoder) on the training sites' forcings and attributes.
3. Finetune a PEFT resConn adapter for streamflow on the training sites (frozen backbone).
4. Train the plain LSTM baseline ("LSTM SL", ``head_mode="direct"``) on the same split.
5. Evaluate both on the held-out sites and test period, next to the oracle (the generator's own
   process model with the true parameters, no observation noise): the best any model could do.

Settings come from a preset (``stefaland_hf/presets/demo/*.yaml``): ``demo`` (:class:`DemoSettings`), ``pretrain``,
``finetune`` and ``baseline`` (the long LSTM run's differences from ``finetune``).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..configuration_stefaland import StefaLandConfig
from ..data.splits import Split, pub_folds
from ..data.synthland import SynthLand
from ..hub.push import finish_artifact
from ..metrics import site_metrics, summarize
from ..evaluation import EVAL_METRICS, write_site_metrics
from ..presets import apply_overrides, load_preset, preset_names
from ..training.argument_checks import require_period
from ..training.arguments import DEFAULT_PERIODS, FinetuneArguments
from ..training.finetune import finetune
from ..training.pretrain import PretrainArguments, pretrain
from ..training.run_folder import build_manifest, prepare_run_folder
from ..zoo import model_zoo_dir
from .plots import plot_hydrographs, plot_metric_cdf


@dataclass
class DemoSettings:
    """The demo's own settings (a preset's ``demo`` section)."""

    synthland_config: str = field(default="default", metadata={"help": "SynthLand config: tiny, default or large"})
    folds: int = field(default=5, metadata={"help": "PUB folds of the sites"})
    fold: int = field(default=0, metadata={"help": "the held-out fold"})
    seed: int = field(default=111, metadata={"help": "draws the folds and the training randomness"})
    train_period: list[str] | None = field(default=None, metadata={"help": "START END of training and validation (default: SynthLand's)"})
    test_period: list[str] | None = field(default=None, metadata={"help": "START END of the evaluation (default: SynthLand's)"})

    def __post_init__(self):
        require_period(self, "train_period", "test_period")


SECTIONS = {"demo": DemoSettings, "pretrain": PretrainArguments, "finetune": FinetuneArguments, "baseline": FinetuneArguments}
PRESETS = tuple(preset_names("demo"))


def demo_preset(name: str, overrides: list[str] = ()) -> dict[str, dict]:
    """Preset ``name`` with ``SECTION.FIELD=VALUE`` overrides and its periods filled in: what a demo run records."""
    preset = apply_overrides(load_preset("demo", name), overrides, SECTIONS)
    settings = DemoSettings(**preset["demo"])
    periods = DEFAULT_PERIODS["synthland"]
    preset["demo"] = {**asdict(settings), "train_period": settings.train_period or periods["train"], "test_period": settings.test_period or periods["test"]}
    return preset


def finetune_arguments(preset: dict[str, dict], output_dir: str | Path, head_mode: str, **fields) -> FinetuneArguments:
    """The demo's finetuning of ``head_mode`` into ``output_dir``: the preset's ``finetune`` section and seed, ``fields`` over both."""
    return FinetuneArguments(**{"seed": preset["demo"]["seed"], **preset["finetune"], **fields, "output_dir": str(output_dir), "head_mode": head_mode})


def tiny_model_config() -> StefaLandConfig:
    """The ``stefaland-tiny`` configuration from the model zoo (``modeling/stefaland-tiny``)."""
    return StefaLandConfig.from_pretrained(model_zoo_dir() / "stefaland-tiny")


def oracle_metrics(dataset, sites, period) -> dict:
    """Metrics of the generator's own noise-free process model against the noisy observations."""
    from ..data.site_arrays import SiteArrays

    arrays = SiteArrays.wrap(dataset)
    p0, p1 = arrays.period_index(period)
    subset = dataset.select(np.asarray(sites)).with_format("numpy", columns=["oracle", "targets"])
    flow = arrays.target_variables.index("streamflow")
    oracle = np.stack([row[p0:p1, flow] for row in subset["oracle"]])
    observed = np.stack([row[p0:p1, flow] for row in subset["targets"]])
    per_site = site_metrics(observed, oracle, metrics=EVAL_METRICS)
    return {"per_site": per_site, "summary": summarize(per_site), "predictions": oracle, "site_ids": [arrays.site_ids[s] for s in sites]}


def run_demo(
    output_dir: str | Path, preset: dict[str, dict], cache_dir: str | None = None, disable_tqdm: bool | None = None, overwrite: bool = False
) -> dict:
    """Run the demo of ``preset`` (:func:`demo_preset`) into ``output_dir`` (new or empty, or an earlier demo's folder with
    ``overwrite``)."""
    output_dir = Path(output_dir)
    settings = DemoSettings(**preset["demo"])
    cache = {"disable_tqdm": disable_tqdm, "embedding_cache_dir": str(output_dir / "embedding_cache")}
    resconn = finetune_arguments(preset, output_dir / "resconn", "resconn", **cache)
    if list(resconn.target_variables) != ["streamflow"]:  # the oracle, the plots and the table are streamflow's
        raise ValueError(f"finetune.target_variables={resconn.target_variables}: the demo predicts streamflow only")
    direct = finetune_arguments(preset, output_dir / "direct", "direct", **cache)
    direct_long = finetune_arguments(preset, output_dir / "direct_long", "direct", **{**preset["baseline"], **cache})
    runs = {  # label: arguments, all checked before anything trains
        f"StefaLand resConn ({resconn.max_steps} steps)": resconn,
        f"LSTM baseline ({direct.max_steps} steps)": direct,
        f"LSTM baseline (early stopping, <= {direct_long.max_steps} steps)": direct_long,
    }
    prepare_run_folder(output_dir, build_manifest("demo", preset), overwrite=overwrite)
    started = time.time()
    timings: dict[str, float] = {}

    builder = SynthLand(config_name=settings.synthland_config, cache_dir=cache_dir)
    builder.download_and_prepare()
    dataset = builder.as_dataset(split="all")
    periods = {"train_period": settings.train_period, "val_period": settings.train_period, "test_period": settings.test_period}
    split = pub_folds(list(dataset["site_id"]), k=settings.folds, seed=settings.seed, val_fraction=0.1, **periods)[settings.fold]
    timings["data"] = time.time() - started
    print(f"SynthLand '{settings.synthland_config}': {len(dataset)} sites; {split}")

    phases = len(runs) + 2

    def phase(number: int, title: str) -> None:
        print(f"\n== {number}/{phases} {title} ==")

    phase(1, f"pretraining stefaland-tiny on the {len(split.sites('train'))} training sites' forcings and attributes")
    t0 = time.time()
    # Pretraining sees only the training sites' forcings and attributes, never a held-out site.
    pretrain_args = PretrainArguments(**{"seed": settings.seed, **preset["pretrain"], "output_dir": str(output_dir / "pretraining")})
    pretrain(tiny_model_config(), dataset, split.sites("train"), split.period("train"), pretrain_args)
    base = output_dir / "pretraining" / "model"
    timings["pretraining"] = time.time() - t0

    reports = {}
    for number, (label, args) in enumerate(runs.items(), start=2):
        phase(number, f"{label} for streamflow")
        t0 = time.time()
        reports[label] = finetune(base, dataset, split, args)
        finish_artifact(reports[label], dataset_name="synthland", base_model=str(base))
        timings[Path(args.output_dir).name] = time.time() - t0
    shutil.rmtree(output_dir / "embedding_cache", ignore_errors=True)  # derived from this run's base; never reused

    phase(phases, f"evaluation on the {len(split.sites('test'))} held-out sites, {settings.test_period[0]} to {settings.test_period[1]}")
    oracle = oracle_metrics(dataset, split.sites("test"), split.period("test"))
    write_site_metrics(oracle, output_dir / "oracle_metrics_per_site.csv")
    summaries = {label: report["summary"] for label, report in reports.items()}
    summaries["Oracle (true process model)"] = oracle["summary"]

    evaluation = next(iter(reports.values()))["evaluation"]
    per_model_nse = {label: r["evaluation"]["per_site"]["nse"] for label, r in reports.items()}
    per_model_nse["Oracle (true process model)"] = oracle["per_site"]["nse"]
    plot_metric_cdf(per_model_nse, output_dir / "nse_cdf.png", metric="NSE")
    plot_hydrographs(
        evaluation["dates"],
        evaluation["observations"][..., 0],
        {label: r["evaluation"]["predictions"][..., 0] for label, r in reports.items()} | {"Oracle": oracle["predictions"]},
        evaluation["site_ids"],
        output_dir / "hydrographs.png",
    )
    timings["total"] = time.time() - started
    result = {
        "settings": preset,
        "split": split.to_dict(),
        "protocol": (
            "PUB: test sites are held out of pretraining, finetuning and normalization; metrics are medians over "
            "test sites in the test period; the oracle is the generator's process model with true parameters."
        ),
        "summary": summaries,
        "seconds": {k: round(v, 1) for k, v in timings.items()},
        "artifacts": {"base_model": str(base), **{label: r["artifact"] for label, r in reports.items()}},
    }
    (output_dir / "report.json").write_text(json.dumps(result, indent=1, default=str))
    print_summary_table(summaries, timings["total"])
    return result


def load_finished_demo(folder: str | Path, cache_dir: str | None = None):
    """``(preset, dataset, split)`` of a finished demo run in ``folder``: to train other models on its split
    and base (``folder/pretraining/model``) with its settings (:func:`finetune_arguments`), as ``benchmarks/`` does."""
    path = Path(folder) / "report.json"
    report = json.loads(path.read_text())
    preset = report["settings"]
    if set(preset) != set(SECTIONS):
        raise ValueError(f"{path}: settings without the sections {sorted(SECTIONS)} (written by an older stefaland); run the demo again")
    settings = DemoSettings(**preset["demo"])
    builder = SynthLand(config_name=settings.synthland_config, cache_dir=cache_dir)
    builder.download_and_prepare()
    return preset, builder.as_dataset(split="all"), Split.from_dict(report["split"])


def print_summary_table(summaries: dict[str, dict], seconds: float | None = None) -> None:
    print()
    print("| model | median NSE | median KGE | median RMSE (mm/day) |")
    print("|---|---|---|---|")
    for label, summary in summaries.items():
        print(f"| {label} | {summary['nse']:.3f} | {summary['kge']:.3f} | {summary['rmse']:.3f} |")
    if seconds is not None:
        print(f"\nwall time: {seconds / 60:.1f} min")


def run_cli(args) -> int:
    """``stefaland demo`` (its arguments: ``stefaland_cli.demo``)."""
    overrides = [*args.overrides, *([f"demo.seed={args.seed}"] if args.seed is not None else [])]
    run_demo(args.out, demo_preset(args.preset, overrides), cache_dir=args.cache_dir, overwrite=args.overwrite)
    return 0
