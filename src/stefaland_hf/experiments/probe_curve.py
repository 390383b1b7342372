"""``stefaland probe-curve``: is the pretraining improving the embedding? Frozen-encoder heads along a pretraining run.

For step 0 (a randomly initialized encoder of the run's configuration, drawn from ``seed``) and every complete
checkpoint ``checkpoints/step_N`` of a pretraining run folder, the frozen-encoder heads (``linear_probe``,
``no_adapter``, ``resconn``) are finetuned on one fixed PUB split (fold ``fold`` of ``folds``, drawn from ``seed``) and
scored on its held-out sites over the test period. A curve that does not rise above step 0 says the pretraining put
nothing into the encoder that these heads can use. Each (step, head) result is kept with the SHA-256 of the weights it
scored, so a run resumed later (with new checkpoints of a pretraining that went on) scores only what is new.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from ..configuration_stefaland import StefaLandConfig
from ..training.finetune import finetune
from ..training.pretrain import export_checkpoint
from ..training.run_folder import CHECKPOINT_COMPLETE_FILE, build_manifest, dataset_fingerprint, file_sha256, prepare_run_folder
from .benchmark import finetune_arguments, make_splits, random_encoder

HEADS = ("linear_probe", "no_adapter", "resconn")
RESULTS_FILE = "probe_curve.json"


def pretraining_checkpoints(run_dir: str | Path, steps: Sequence[int] | None = None) -> dict[int, Path]:
    """``{step: folder}`` of the complete checkpoints of pretraining run ``run_dir`` (``steps``: only these, each must exist).

    Half-written checkpoints (no completion record) are never taken.
    """
    folder = Path(run_dir) / "checkpoints"
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{run_dir}: not a pretraining run folder with recorded checkpoints (no {folder / 'config.json'})")
    found = {int(p.name[5:]): p for p in folder.glob("step_*") if p.name[5:].isdigit() and (p / CHECKPOINT_COMPLETE_FILE).is_file()}
    if steps is None:
        return dict(sorted(found.items()))
    wanted = [s for s in steps if s != 0]
    missing = [s for s in wanted if s not in found]
    if missing:
        raise FileNotFoundError(f"{run_dir}: no complete checkpoint for steps {missing}; complete: {sorted(found)}")
    return {s: found[s] for s in sorted(wanted)}


def check_encoder_fits_data(config: StefaLandConfig, dataset, seq_len: int, where: str) -> None:
    """Refuse an encoder that cannot read this data: no forcing in common, or windows longer than its position table."""
    data_forcings = list(dataset[0]["dynamic_variables"])
    if not set(config.dynamic_variables) & set(data_forcings):
        raise ValueError(f"{where}: the encoder's forcings {list(config.dynamic_variables)} share none with the data's {data_forcings}")
    if seq_len > config.max_position_embeddings:
        raise ValueError(f"{where}: finetuning windows of {seq_len} days exceed the encoder's {config.max_position_embeddings} positions "
                         f"(max_position_embeddings); lower finetune.seq_len")


def run_probe_curve(
    run_dir: str | Path,
    dataset,
    out: str | Path,
    preset: dict[str, dict],
    seed: int = 111,
    fold: int = 0,
    folds: int = 5,
    steps: Sequence[int] | None = None,
    heads: Sequence[str] = HEADS,
    resume: bool = False,
    overwrite: bool = False,
) -> dict:
    """Score ``heads`` at step 0 and each checkpoint of ``run_dir``; writes OUT/probe_curve.{json,csv,png}.

    ``preset`` comes from :func:`stefaland_hf.experiments.benchmark.benchmark_preset` (its ``finetune`` section and
    periods).
    """
    run_dir, out = Path(run_dir), Path(out)
    unknown = sorted(set(heads) - set(HEADS))
    if unknown:
        raise ValueError(f"probe-curve heads {unknown}: expected frozen-encoder heads among {list(HEADS)}")
    if not 0 <= fold < folds:
        raise ValueError(f"--fold {fold}: expected 0..{folds - 1} (--folds {folds})")
    checkpoints = pretraining_checkpoints(run_dir, steps)
    config = StefaLandConfig.from_pretrained(run_dir / "checkpoints")
    check_encoder_fits_data(config, dataset, preset["finetune"].get("seq_len", 365), str(run_dir))
    for head in heads:  # every head's arguments are checked before anything trains
        finetune_arguments(preset, out / head, head, seed, out / "embedding_cache")
    settings = preset["benchmark"]
    arguments = {"run": str(run_dir), "seed": seed, "fold": fold, "folds": folds, "heads": list(heads), "preset": preset}
    manifest = build_manifest("probe_curve", arguments, data=dataset_fingerprint(dataset))
    prepare_run_folder(out, manifest, resume, overwrite, volatile=("run",))
    split = make_splits("pub", dataset, folds, seed, settings["train_period"], settings["test_period"])[fold]

    results_file = out / RESULTS_FILE
    entries = json.loads(results_file.read_text())["entries"] if results_file.is_file() else []
    encoders = {0: random_encoder(run_dir / "checkpoints", seed, out / "encoders")}
    for step, checkpoint in checkpoints.items():
        folder = out / "encoders" / f"step_{step}"
        if not (folder / "model.safetensors").is_file():
            export_checkpoint(checkpoint, folder)
        encoders[step] = folder
    for step, encoder in encoders.items():
        weights = file_sha256(encoder / "model.safetensors")
        for head in heads:
            if any(e["step"] == step and e["head"] == head and e["weights_sha256"] == weights for e in entries):
                continue
            args = finetune_arguments(preset, out / "runs" / f"step_{step}" / head, head, seed, out / "embedding_cache")
            report = finetune(encoder, dataset, split, args)
            entries = [e for e in entries if (e["step"], e["head"]) != (step, head)]
            entries.append({"step": step, "head": head, "weights_sha256": weights, "n_sites": report["n_test_sites_observed"],
                            **{k: _float(report["summary"][k]) for k in ("nse", "kge", "rmse")}})
            results_file.write_text(json.dumps({"run": str(run_dir), "fold": fold, "split": split.to_dict(), "entries": entries}, indent=1))
            print(f"step {step} {head}: median NSE {report['summary']['nse']:.3f}")
        shutil.rmtree(out / "embedding_cache", ignore_errors=True)  # one encoder's embeddings serve its heads only

    entries = sorted(entries, key=lambda e: (e["head"], e["step"]))
    results = {"run": str(run_dir), "fold": fold, "split": split.to_dict(), "entries": entries}
    results_file.write_text(json.dumps(results, indent=1))
    lines = ["step,head,nse,kge,rmse,n_sites"] + [f"{e['step']},{e['head']},{e['nse']},{e['kge']},{e['rmse']},{e['n_sites']}" for e in entries]
    (out / "probe_curve.csv").write_text("\n".join(lines) + "\n")
    plot_probe_curve(entries, out / "probe_curve.png", title=f"{run_dir.name}: PUB fold {fold} of {folds} (seed {seed})")
    return results


def _float(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def plot_probe_curve(entries: list[dict], path: Path, title: str = "") -> None:
    """Median held-out NSE against pretraining step, one line per head (step 0: the random encoder)."""
    from .plots import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for head in dict.fromkeys(e["head"] for e in entries):
        points = sorted((e["step"], np.nan if e["nse"] is None else e["nse"]) for e in entries if e["head"] == head)
        ax.plot(*zip(*points), marker="o", label=head)
    ax.set_xlabel("pretraining step (0: random encoder)")
    ax.set_ylabel("median NSE, held-out sites")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_cli(args) -> int:
    """``stefaland probe-curve`` (its arguments: ``stefaland_cli.probe_curve``)."""
    from ..data import load_site_dataset
    from .benchmark import benchmark_preset

    preset = benchmark_preset(args.preset, args.dataset, args.overrides)
    kwargs = {k: v for k, v in (("basins", args.basins), ("extra_data_dirs", args.extra_data_dir)) if v}
    dataset = load_site_dataset(args.dataset, data_dir=args.data_dir, cache_dir=args.cache_dir, **kwargs)
    results = run_probe_curve(args.run, dataset, args.out, preset, args.seed, args.fold, args.folds, args.steps, args.heads,
                              args.resume, args.overwrite)
    print(f"{len(results['entries'])} scores in {Path(args.out) / RESULTS_FILE}; curve: {Path(args.out) / 'probe_curve.png'}")
    return 0
