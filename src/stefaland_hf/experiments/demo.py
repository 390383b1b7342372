"""``stefaland demo``: the whole StefaLand story on SynthLand, in minutes on a laptop CPU.

1. Build SynthLand (the embedded default data) and hold out a PUB fold of sites.
2. Pretrain ``stefaland-tiny`` (masked autoencoder) on the training sites' forcings and attributes.
3. Finetune a PEFT resConn adapter for streamflow on the training sites (frozen backbone).
4. Train the plain LSTM baseline ("LSTM SL", ``head_mode="direct"``) on the same split.
5. Evaluate both on the held-out sites and test period, next to the oracle (the generator's own
   process model with the true parameters, no observation noise): the best any model could do.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..configuration_stefaland import StefaLandConfig
from ..data.splits import Split, pub_folds
from ..data.synthland import SynthLand
from ..hub.push import finish_artifact
from ..metrics import site_metrics, summarize
from ..training.finetune import EVAL_METRICS, finetune, write_site_metrics
from ..training.pretrain import pretrain
from ..training.run_folder import build_manifest, prepare_run_folder
from ..zoo import model_zoo_dir
from .plots import plot_hydrographs, plot_metric_cdf
from .recipe import Recipe

MODEL_ZOO = model_zoo_dir()


@dataclass
class DemoSettings(Recipe):
    synthland_config: str = "default"
    folds: int = 5
    fold: int = 0
    train_period: tuple[str, str] = ("1995-01-01", "2005-12-31")
    test_period: tuple[str, str] = ("2006-01-01", "2009-12-31")
    # The LSTM is ~5x cheaper per step than resConn: it also trains to early stopping with this cap.
    baseline_long_steps: int = 2000


PRESETS = {
    "default": DemoSettings(),
    # a minute-long smoke run for tests and quick checks (not a meaningful comparison)
    "smoke": DemoSettings(
        synthland_config="tiny",
        folds=4,
        train_period=("2000-01-01", "2001-12-31"),
        test_period=("2002-01-01", "2002-12-31"),
        seq_len=120,
        warmup=30,
        pretrain_epochs=1,
        pretrain_samples_per_epoch=64,
        pretrain_batch_size=16,
        finetune_steps=6,
        finetune_eval_steps=3,
        baseline_long_steps=9,
        finetune_batch_size=16,
        head_hidden_size=16,
    ),
}


def tiny_model_config() -> StefaLandConfig:
    """The ``stefaland-tiny`` configuration from the model zoo (``modeling/stefaland-tiny``)."""
    return StefaLandConfig.from_pretrained(MODEL_ZOO / "stefaland-tiny")


def oracle_metrics(dataset, sites, period) -> dict:
    """Metrics of the generator's own noise-free process model against the noisy observations."""
    from ..data.windows import SiteArrays

    arrays = SiteArrays.wrap(dataset)
    p0, p1 = arrays.period_index(period)
    subset = dataset.select(np.asarray(sites)).with_format("numpy", columns=["oracle", "targets"])
    flow = arrays.target_variables.index("streamflow")
    oracle = np.stack([row[p0:p1, flow] for row in subset["oracle"]])
    observed = np.stack([row[p0:p1, flow] for row in subset["targets"]])
    per_site = site_metrics(observed, oracle, metrics=EVAL_METRICS)
    return {"per_site": per_site, "summary": summarize(per_site), "predictions": oracle, "site_ids": [arrays.site_ids[s] for s in sites]}


def run_demo(
    output_dir: str | Path, settings: DemoSettings, cache_dir: str | None = None, disable_tqdm: bool | None = None, overwrite: bool = False
) -> dict:
    """Run the demo into ``output_dir`` (new or empty, or an earlier demo's folder with ``overwrite``)."""
    output_dir = Path(output_dir)
    prepare_run_folder(output_dir, build_manifest("demo", asdict(settings)), overwrite=overwrite)
    started = time.time()
    timings: dict[str, float] = {}

    builder = SynthLand(config_name=settings.synthland_config, cache_dir=cache_dir)
    builder.download_and_prepare()
    dataset = builder.as_dataset(split="all")
    periods = {"train_period": settings.train_period, "val_period": settings.train_period, "test_period": settings.test_period}
    split = pub_folds(list(dataset["site_id"]), k=settings.folds, seed=settings.seed, val_fraction=0.1, **periods)[settings.fold]
    timings["data"] = time.time() - started
    print(f"SynthLand '{settings.synthland_config}': {len(dataset)} sites; {split}")

    runs = (
        (f"StefaLand resConn ({settings.finetune_steps} steps)", "resconn", "resconn", settings.finetune_steps),
        (f"LSTM baseline ({settings.finetune_steps} steps)", "direct", "direct", settings.finetune_steps),
        (f"LSTM baseline (early stopping, <= {settings.baseline_long_steps} steps)", "direct", "direct_long", settings.baseline_long_steps),
    )
    phases = len(runs) + 2

    def phase(number: int, title: str) -> None:
        print(f"\n== {number}/{phases} {title} ==")

    phase(1, f"pretraining stefaland-tiny on the {len(split.sites('train'))} training sites' forcings and attributes")
    t0 = time.time()
    # Pretraining sees only the training sites' forcings and attributes, never a held-out site.
    pretrain(tiny_model_config(), dataset, split.sites("train"), split.period("train"), settings.pretrain_arguments(output_dir / "pretraining"))
    base = output_dir / "pretraining" / "model"
    timings["pretraining"] = time.time() - t0

    reports = {}
    for number, (label, mode, folder, steps) in enumerate(runs, start=2):
        phase(number, f"{label} for streamflow")
        t0 = time.time()
        args = settings.finetune_arguments(output_dir / folder, mode, disable_tqdm, embedding_cache_dir=output_dir / "embedding_cache")
        reports[label] = finetune(base, dataset, split, replace(args, max_steps=steps))
        finish_artifact(reports[label], dataset_name="synthland", base_model=str(base))
        timings[folder] = time.time() - t0
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
        "settings": asdict(settings),
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
    """``(settings, dataset, split)`` of a finished demo run in ``folder``: to train other models on its split
    and base (``folder/pretraining/model``), as the scripts in ``benchmarks/`` do."""
    report = json.loads((Path(folder) / "report.json").read_text())
    settings = DemoSettings(**{**asdict(PRESETS["default"]), **report["settings"]})
    builder = SynthLand(config_name=settings.synthland_config, cache_dir=cache_dir)
    builder.download_and_prepare()
    return settings, builder.as_dataset(split="all"), Split.from_dict(report["split"])


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
    settings = PRESETS[args.preset]
    if args.seed is not None:
        settings = DemoSettings(**{**asdict(settings), "seed": args.seed})
    run_demo(args.out, settings, cache_dir=args.cache_dir, overwrite=args.overwrite)
    return 0
