"""``stefaland push model|adapter|dataset``: arguments (the work: ``stefaland_hf.hub.cli``)."""

from __future__ import annotations

from . import runs
from .checks import DATASETS, hub_repo_id, needs_data_dir, paths


def add_parser(subparsers) -> None:
    """Register ``stefaland push model|adapter|dataset``."""
    push = subparsers.add_parser(
        "push", help="publish a model, adapter or dataset to the Hugging Face Hub (one commit; the repo then mirrors the push)")
    kinds = push.add_subparsers(dest="what", required=True)

    def common(p):
        p.add_argument("--private", action="store_true", help="create the repository as private")
        p.add_argument("--commit-message", default=None, help="commit message (default: one naming what is pushed)")
        p.add_argument("--keep", action="append", default=[], metavar="PATTERN",
                       help="keep remote files matching this fnmatch pattern (repeatable); other remote files that are "
                            "not in the push are deleted in the same commit (dot-files such as .gitattributes are always kept)")
        p.set_defaults(func=runs("stefaland_hf.hub.cli", "run_push_cli", paths(("folder",), folder="folder", report="path", data_dir="folder"), needs_data_dir("name")))

    m = kinds.add_parser("model", help="a save_pretrained folder: weights, config, remote code and model card")
    m.add_argument("folder", help="the saved model folder (config.json, model.safetensors)")
    m.add_argument("repo", type=hub_repo_id, help="Hub repo id, e.g. org/stefaland-base")
    m.add_argument("--report", help="finetuning report.json (results go to the card's model-index)")
    m.add_argument("--eval-dataset", default=None, help="dataset name for the card's results (default: the builder in the run_manifest.json beside --report)")
    m.add_argument("--eval-split", default=None, help="split name for the results (default: the report's split name)")
    m.add_argument("--base", default=None,
                   help="base model this checkpoint was finetuned from (a Hub id goes into the card's base_model; a local folder is only named in the text)")
    common(m)

    a = kinds.add_parser("adapter", help="a PEFT resConn adapter folder and its card")
    a.add_argument("folder", help="the saved adapter folder (adapter_config.json, adapter_model.safetensors)")
    a.add_argument("repo", type=hub_repo_id, help="Hub repo id, e.g. org/stefaland-streamflow")
    a.add_argument("--base", required=True, help="Hub id of the base StefaLand model")
    a.add_argument("--report", help="finetuning report.json")
    a.add_argument("--eval-dataset", default=None, help="dataset name for the card's results (default: the builder in the run_manifest.json beside --report)")
    a.add_argument("--eval-split", default=None, help="split name for the results (default: the report's split name)")
    common(a)

    d = kinds.add_parser("dataset", help="build a site dataset and push it as parquet with its card")
    d.add_argument("name", choices=DATASETS, help="the site dataset's builder")
    d.add_argument("repo", type=hub_repo_id, help="Hub dataset repo id, e.g. org/synthland")
    d.add_argument("--data-dir", default=None, help="raw data folder (camels_us, hydrodl_smap)")
    d.add_argument("--config-name", default=None,
                   help="builder config (e.g. tiny), also the Hub config name; default: the builder's default config, pushed as 'default'")
    d.add_argument("--cache-dir", default=None, help="datasets cache folder")
    common(d)
