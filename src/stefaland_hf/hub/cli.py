"""The work of ``stefaland push model|adapter|dataset`` (its arguments: ``stefaland_cli.push``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data import DATASET_TITLES
from .cards import render_adapter_card, render_model_card, results_from_report
from .push import check_push_target, push_adapter, push_dataset, push_model

def report_for(folder: str, report: str) -> tuple[Path, str | None]:
    """``--report``'s file and the dataset its run manifest names; refused when it reports on another folder.

    A card must not carry another run's test metrics: the report's ``artifact`` is the folder it trained (compared
    by path, or by name beside the report when the run folder was moved).
    """
    path = Path(report) / "report.json" if Path(report).is_dir() else Path(report)
    data = json.loads(path.read_text())
    artifact = data.get("artifact")
    if artifact:
        same = Path(artifact).resolve() == Path(folder).resolve() or (path.parent / Path(artifact).name).resolve() == Path(folder).resolve()
        if not same:
            raise ValueError(f"--report {report}: it reports on {artifact}, not on {folder}; push each folder with its own report")
    manifest = path.parent / "run_manifest.json"
    builder = json.loads(manifest.read_text()).get("data", {}).get("builder") if manifest.is_file() else None
    return path, None if builder is None else DATASET_TITLES.get(builder, builder)


def _results(args) -> tuple[list, str | None]:
    """The model-index results of ``--report`` and the dataset they are on (``--eval-dataset`` or the run's builder)."""
    if not args.report:
        return [], None
    report, dataset = report_for(args.folder, args.report)
    dataset = args.eval_dataset or dataset
    if dataset is None:
        raise ValueError(f"--report {args.report}: no run_manifest.json beside it names the dataset; pass --eval-dataset NAME")
    return results_from_report(report, dataset, args.eval_split), dataset


def run_push_cli(args: argparse.Namespace) -> int:
    """``stefaland push model|adapter|dataset``: render the card, push in one commit, print the commit URL."""
    check_push_target(args.repo)  # before building a card or a dataset
    if args.what == "model":
        results, _ = _results(args)
        card = render_model_card(args.folder, results=results, report=args.report, base_model=args.base, repo_id=args.repo)
        info = push_model(args.folder, args.repo, card=card, private=args.private, keep=args.keep, **_message(args))
    elif args.what == "adapter":
        results, dataset = _results(args)
        card = render_adapter_card(args.folder, args.report, args.base, results=results, dataset_name=dataset, repo_id=args.repo)
        info = push_adapter(args.folder, args.repo, base_model=args.base, card=card, private=args.private, keep=args.keep,
                            **_message(args))
    else:
        from ..data import load_site_dataset

        ds = load_site_dataset(args.name, config_name=args.config_name, data_dir=args.data_dir, cache_dir=args.cache_dir)
        info = push_dataset(ds, args.repo, config_name=args.config_name or "default", name=args.name,
                            private=args.private, keep=args.keep, **_message(args))
    print(getattr(info, "commit_url", None) or info)
    return 0


def _message(args) -> dict:
    return {"commit_message": args.commit_message} if args.commit_message else {}
