"""``stefaland convert-original``: arguments (the work: ``stefaland_hf.convert_original``)."""

from __future__ import annotations

from . import runs
from .checks import paths

# what the released checkpoint does not store (stefaland_hf.convert_original.RELEASED_NUM_HEADS / RELEASED_DROPOUT)
RELEASED_NUM_HEADS = 4
RELEASED_DROPOUT = 0.1


def add_parser(subparsers) -> None:
    """Register ``stefaland convert-original``."""
    parser = subparsers.add_parser(
        "convert-original",
        help="convert the authors' original StefaLand (MFFormer_dec_LSTM) checkpoint into a model folder (the stefaland-original layout)",
        description=(
            "Convert an original StefaLand checkpoint (.pt, loaded with weights_only=True) into a "
            "StefaLandForPretraining folder (safetensors + model card). Variable lists and order are read from the "
            "key names; every tensor is converted by name or the conversion fails naming the key."
        ),
    )
    parser.add_argument("checkpoint", help="the original .pt file (a state dict or a dict holding one)")
    parser.add_argument("--out", required=True, help="output folder (e.g. stefaland-original)")
    parser.add_argument(
        "--stats",
        help='JSON of per-variable statistics {name: {"mean": m, "std": s}} (author or canonical names; optionally '
        'under "dynamic"/"static"). Without it the model expects z-scored inputs.',
    )
    parser.add_argument(
        "--variable-map",
        help='JSON {"dynamic": {author: canonical}, "static": {...}} (or a flat mapping) overriding the default names',
    )
    parser.add_argument("--num-heads", type=int, default=RELEASED_NUM_HEADS, help="attention heads (not stored in the file; default 4)")
    parser.add_argument("--dropout", type=float, default=RELEASED_DROPOUT, help="dropout (not stored in the file; default 0.1)")
    parser.add_argument(
        "--static-mask-row", type=int, default=0,
        help="row of the original per-(batch row, attribute) static mask table to keep (default 0)",
    )
    parser.add_argument("--std-epsilon", type=float, default=0.0, help="added to every std of --stats (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty --out folder")
    parser.set_defaults(func=runs("stefaland_hf.convert_original", "run_cli", paths(("checkpoint",), checkpoint="file", stats="file", variable_map="file")))
