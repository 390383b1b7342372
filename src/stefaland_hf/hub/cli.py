"""The work of ``stefaland push model|adapter|dataset`` (its arguments: ``stefaland_cli.push``)."""

from __future__ import annotations

import argparse

from .cards import render_adapter_card, render_model_card, results_from_report
from .push import check_push_target, push_adapter, push_dataset, push_model


def run_push_cli(args: argparse.Namespace) -> int:
    """``stefaland push model|adapter|dataset``: render the card, push in one commit, print the commit URL."""
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
        from ..data import load_site_dataset

        ds = load_site_dataset(args.name, config_name=args.config_name, data_dir=args.data_dir, cache_dir=args.cache_dir)
        info = push_dataset(ds, args.repo, config_name=args.config_name or "default", name=args.name,
                            private=args.private, keep=args.keep, **_message(args))
    print(getattr(info, "commit_url", None) or info)
    return 0


def _message(args) -> dict:
    return {"commit_message": args.commit_message} if args.commit_message else {}
