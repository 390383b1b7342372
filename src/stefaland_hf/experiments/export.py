"""A finetuned resConn adapter as one complete model folder, for the model zoo or a Hub repo that loads without PEFT.

``stefaland export RUN/adapter OUT`` loads the adapter on the base its ``finetuning.json`` names, installs its head as
the model's own (:meth:`ResConnModel.merge_and_unload`) and writes ``OUT`` with ``config.json``, ``model.safetensors``,
the ``finetuning.json`` record (training basins and period: what ``in_sample`` flags) and a card.
With ``--benchmark RESULTS.json`` the card states the held-out skill that a benchmark measured for the same recipe,
per fold: what to expect at a basin the model never saw. The folder is written beside ``OUT`` and renamed into place,
so an interrupted export leaves no half-written model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Mapping

import numpy as np

from ..metrics import standard_error
from ..hub.cards import render_model_card, results_from_report

__all__ = ["export_complete_model", "benchmark_skill"]


def benchmark_skill(results: Mapping, label: str, metric: str = "nse") -> dict:
    """Per-fold medians of ``metric`` of model ``label`` in a benchmark's ``results.json``, their mean and standard
    error, the basins scored and the protocol; a label the benchmark did not run is an error naming those it ran."""
    folds = results.get("folds") or []
    labels = sorted({name for fold in folds for name in fold["models"]})
    if not folds or label not in labels:
        raise ValueError(f"--benchmark-model {label!r}: not in the benchmark's results (models: {labels or 'none'})")
    medians = [fold["models"][label]["summary"].get(metric) for fold in folds]
    if any(m is None for m in medians):
        raise ValueError(f"--benchmark-model {label!r}: a fold has no median {metric}")
    basins = sum(fold["models"][label]["n_test_sites_observed"] for fold in folds)
    return {
        "model": label, "metric": metric, "kind": results.get("kind"), "folds": [round(float(m), 3) for m in medians],
        "mean": float(np.mean(medians)), "standard_error": float(standard_error(medians)), "basins": int(basins),
        "n_basins": results.get("n_basins"), "protocol": results.get("protocol"),
    }


def _skill_text(skill: Mapping, command: str | None) -> str:
    kind = {"pub": "ungauged basins (PUB)", "pur": "ungauged regions (PUR)"}.get(skill["kind"], str(skill["kind"]))
    text = (f"median {skill['metric'].upper()} {skill['mean']:.3f} ± {skill['standard_error']:.3f} (s.e. over "
            f"{len(skill['folds'])} folds; per fold {' / '.join(f'{m:.3f}' for m in skill['folds'])}) over {skill['basins']} "
            f"held-out basins of {skill['n_basins']}, {kind}, the same recipe trained on the other folds")
    return text + (f"; command: `{command}`" if command else "")


def _compute_text(report: Mapping, evaluations: Path, host: str | None) -> str:
    """Steps, how the run stopped (the step of the best validation loss, from the run's evaluations.csv), time, host."""
    steps, cap = report.get("steps"), (report.get("arguments") or {}).get("max_steps")
    text = f"{steps} optimizer steps" + (" (the step cap)" if steps == cap else " (early stopping)")
    if evaluations.is_file():
        import pandas as pd

        log = pd.read_csv(evaluations)
        text += f", best validation loss {log['loss'].min():.4f} at step {int(log.loc[log['loss'].idxmin(), 'step'])}"
    if report.get("train_seconds") is not None:
        text += f"; {float(report['train_seconds']) / 60:.0f} min of training"
    return text + (f"; {host}" if host else "")


def export_complete_model(
    adapter: str | os.PathLike,
    out: str | os.PathLike,
    *,
    benchmark: str | os.PathLike | None = None,
    benchmark_model: str = "StefaLand resConn",
    benchmark_command: str | None = None,
    dataset_name: str = "camels_us",
    summary: str | None = None,
    location: str | None = None,
    host: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the resConn ``adapter`` folder of a finetuning run as a complete model folder ``out`` (see the module).
    ``location``: what the card's code loads the model by (a short name of the model zoo, a Hub id; default ``out``);
    ``host``: the machine, precision and threads of the finetuning, for the card's compute row."""
    from ..training.finetune import FINETUNING_FILE
    from .prediction import load_trained_model

    adapter, out = Path(adapter), Path(out)
    if not (adapter / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter}: no adapter_config.json; pass the adapter/ folder of a resConn finetuning run")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
    report_file = adapter.parent / "report.json"
    report = json.loads(report_file.read_text()) if report_file.is_file() else None
    skill = None
    if benchmark is not None:
        skill = benchmark_skill(json.loads(Path(benchmark).read_text()), benchmark_model)
    model, record = load_trained_model(adapter)
    complete = model.merge_and_unload()
    base = ((record or {}).get("base_model") or {}).get("name")
    training = {}
    data = (record or {}).get("data") or {}
    if data.get("trained_on"):
        training["data"] = (f"{len(data['trained_on']['site_ids'])} basins of `{data.get('builder')}` (config "
                            f"`{data.get('config')}`: its forcing product), their ids in {FINETUNING_FILE}")
    if skill is not None:
        training["Expected skill at a basin it never saw"] = _skill_text(skill, benchmark_command)
    if report is not None:
        training["compute"] = _compute_text(report, adapter.parent / "evaluations.csv", host)
    location = location or str(out)
    if summary is None:
        summary = (
            f"A StefaLand streamflow model: the frozen `{base}` encoder with a resConn adapter finetuned on "
            + (f"{len(data['trained_on']['site_ids'])} basins of `{data.get('builder')}` ({data.get('config')} forcings)" if data.get("trained_on") else "its training basins")
            + f". Daily streamflow in mm/day from a table of daily forcings and a few attributes: "
            f"`stefaland_hf.predict_streamflow(\"{location}\", forcings, attributes)`, "
            f"`transformers.pipeline(\"streamflow-prediction\", model=\"{location}\")` or "
            f"`stefaland predict --model {location} --forcings F.csv --attributes A.csv --out DIR`; variables the tables lack "
            "become mask tokens and are reported, and days of its training basins and periods are flagged `in_sample`."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        complete.save_pretrained(staging)
        for code in staging.glob("*.py"):  # `stefaland push model` adds the remote code; zoo folders carry none
            code.unlink()
        if record is not None:
            (staging / FINETUNING_FILE).write_text(json.dumps(record, indent=1))
        if skill is not None:
            (staging / "benchmark_skill.json").write_text(json.dumps(skill, indent=1))
        card = render_model_card(
            staging, training=training, report=report, base_model=base, model_id=out.name, summary=summary, repo_id=location,
            results=results_from_report(report, dataset_name) if report else None,
        )
        card.save(staging / "README.md")
        for path in (staging, *staging.iterdir()):  # mkdtemp's private mode: readable like any folder save_pretrained writes
            path.chmod(0o755 if path.is_dir() else 0o644)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def run_cli(args) -> int:
    """``stefaland export``."""
    out = export_complete_model(
        args.adapter, args.out, benchmark=args.benchmark, benchmark_model=args.benchmark_model,
        benchmark_command=args.benchmark_command, summary=args.summary, location=args.card_location, host=args.host,
        overwrite=args.overwrite,
    )
    print(f"wrote {out}: load it with stefaland_hf.from_pretrained({str(out)!r}, StefaLandForTimeSeriesRegression)")
    return 0
