"""Pretraining step throughput of today's code against a frozen reference commit, side by side.

The reference is the package's model code at ``--reference`` (default 9c5726b, the last commit before
the speed work), read with ``git show`` into a temporary package, with that commit's model-zoo config.
Each lever of the current code is timed alone and combined, in interleaved rounds (A, B, C, ... A,
B, C, ...) so that load from other processes hits every variant alike:

- ``reference``: the old code, float32, its own config (base: dropout on attention probabilities).
- ``fast dropout``: today's code (``StefaLandDropout``), float32, the reference config.
- ``fused attention``: today's code, float32, ``attention_dropout=0`` (SDPA's fused CPU kernel).
- ``bf16 autocast``: today's code, the reference config, under bf16 autocast.
- ``default``: today's zoo config under the precision ``mixed_precision="auto"`` picks here.
- ``default + compile`` (``--compile``): the default under ``torch.compile``.

A step is forward + backward + ``AdamW.step`` of ``StefaLandForPretraining`` on one batch of B x T
windows carrying cross-variable group masks (drawn once, the same for every variant). Before timing,
eval-mode outputs of the reference and today's code are compared on the same weights.

    python benchmarks/pretrain_speed.py                        # tiny + base, 1 and 2 threads
    python benchmarks/pretrain_speed.py --configs base --threads 1 --rounds 5 --compile
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from stefaland_hf import StefaLandConfig
from stefaland_hf.masking import CrossVariableGroupMasking
from stefaland_hf.modeling_stefaland import StefaLandForPretraining
from stefaland_hf.training.acceleration import compile_model, resolve_mixed_precision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from side_by_side import Variant, report, run_rounds  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REFERENCE_FILES = ("configuration_stefaland.py", "modeling_stefaland.py", "variables.py")


def load_reference(revision: str, folder: Path):
    """Import the model code of ``revision`` as the package ``stefaland_reference``."""
    package = folder / "stefaland_reference"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in REFERENCE_FILES:
        source = subprocess.run(
            ["git", "show", f"{revision}:src/stefaland_hf/{name}"], cwd=REPO, check=True, capture_output=True, text=True
        ).stdout
        (package / name).write_text(source)
    sys.path.insert(0, str(folder))
    return importlib.import_module("stefaland_reference.modeling_stefaland")


# the zoo folder of each config today: the reference revision's stefaland-base (the paper's D=256 over the authors'
# 5 + 24 variables) is today's stefaland-original, so both sides of a row run the same layout
CURRENT_FOLDER = {"tiny": "stefaland-tiny", "base": "stefaland-original"}


def zoo_config(name: str, revision: str | None = None) -> dict:
    if revision is None:
        return json.loads((REPO / "modeling" / CURRENT_FOLDER[name] / "config.json").read_text())
    path = f"modeling/stefaland-{name}/config.json"
    return json.loads(subprocess.run(["git", "show", f"{revision}:{path}"], cwd=REPO, check=True, capture_output=True, text=True).stdout)


def make_batch(config: StefaLandConfig, batch_size: int, length: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    batch = {
        "x_dynamic": torch.randn(batch_size, length, len(config.dynamic_variables), generator=generator),
        "x_static": torch.randn(batch_size, len(config.static_variables), generator=generator),
    }
    batch["x_dynamic"][torch.rand(batch["x_dynamic"].shape, generator=generator) < 0.02] = float("nan")
    return CrossVariableGroupMasking(config, seed=0)(batch)


def check_eval_outputs(reference_model, model, batch: dict) -> float:
    """Max abs difference of eval-mode reconstructions on identical weights (must be float round-off)."""
    model.load_state_dict(reference_model.state_dict())
    reference_model.eval(), model.eval()
    with torch.no_grad():
        a = reference_model(**batch).dynamic_reconstruction
        b = model(**batch).dynamic_reconstruction
    return float((a - b).abs().max())


def build_variants(name: str, args, reference_module) -> tuple[list[Variant], float]:
    ref_dict, new_dict = zoo_config(name, args.reference), zoo_config(name)
    bf16_default = resolve_mixed_precision("auto", "cpu", log=lambda message: None) == "bf16"

    def new_model(config_dict: dict) -> StefaLandForPretraining:
        torch.manual_seed(0)
        return StefaLandForPretraining(StefaLandConfig(**config_dict))

    torch.manual_seed(0)
    reference_model = reference_module.StefaLandForPretraining(reference_module.StefaLandConfig(**ref_dict))
    fused = {**ref_dict, "attention_dropout": 0.0}
    batch_config = StefaLandConfig(**new_dict)
    difference = check_eval_outputs(reference_model, new_model(ref_dict), make_batch(batch_config, 4, args.seq_len))
    variants = [
        Variant("reference", reference_model, bf16=False),
        Variant("fast dropout", new_model(ref_dict), bf16=False),
        Variant("fused attention", new_model(fused), bf16=False),
        Variant("bf16 autocast", new_model(ref_dict), bf16=True),
        Variant("default", new_model(new_dict), bf16=bf16_default),
    ]
    if args.compile:
        model = new_model(new_dict)
        variants.append(Variant("default + compile", model, bf16=bf16_default, forward=compile_model(model, "cpu")))
    return variants, difference


def run(name: str, threads: int, args, reference_module) -> list[dict]:
    torch.set_num_threads(threads)
    variants, difference = build_variants(name, args, reference_module)
    batch = make_batch(StefaLandConfig(**zoo_config(name)), args.batch_size, args.seq_len)
    print(f"\n## stefaland-{name}, B={args.batch_size} x T={args.seq_len}, {threads} thread(s); load average {os.getloadavg()[0]:.2f}")
    print(f"eval-mode reconstructions, reference vs today's code on the same weights: max |diff| = {difference:.2e}")
    run_rounds(variants, batch, args.rounds, args.steps)
    return [{"config": name, "threads": threads, **row} for row in report(variants, args.batch_size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", default="9c5726b", help="git revision of the reference code")
    parser.add_argument("--configs", nargs="+", default=["tiny", "base"], choices=["tiny", "base"], help="model-zoo configs")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="torch thread counts to run")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=365)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the variants")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per variant per round")
    parser.add_argument("--compile", action="store_true", help="also time the default under torch.compile")
    parser.add_argument("--json", default=None, help="write the rows to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        reference_module = load_reference(args.reference, Path(folder))
        rows = [row for name in args.configs for threads in args.threads for row in run(name, threads, args, reference_module)]
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
