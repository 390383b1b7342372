"""Finetuning step cost of resConn with and without the embedding cache, against the LSTM baseline.

Side by side in one process, in interleaved rounds, on the same batch of SynthLand windows:

- ``LSTM baseline``: ``head_mode="direct"`` (the paper's "LSTM SL" on raw forcings and attributes).
- ``resConn, live backbone``: the frozen encoder runs every step (today's path without the cache).
- ``resConn, embedding cache``: the head trains on the window's float16 embedding from an
  :class:`~stefaland_hf.training.embedding_cache.EmbeddingCache` on disk; reading it from the
  memory map is inside the timed step.
- on a CPU with bf16 arithmetic, the LSTM baseline and the cached resConn again under bf16 autocast
  (finetuning's opt-in ``--bf16``).

A step is forward + backward + ``AdamW.step`` on the trainable parameters. The cache's size and build
time for these windows are printed too. Defaults are the ``cpu-quick`` benchmark preset's finetuning
(batch 64 x 365 days, head LSTM 64).

    python benchmarks/finetune_speed.py                                 # stefaland-tiny, 1 thread
    python benchmarks/finetune_speed.py --config base --head-hidden-size 256 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from stefaland_hf import StefaLandConfig, StefaLandForTimeSeriesRegression
from stefaland_hf.data import load_site_dataset
from stefaland_hf.data.samplers import WindowDataset, collate_windows
from stefaland_hf.training.acceleration import bf16_supported
from stefaland_hf.training.embedding_cache import CachedEmbeddingWindows, EmbeddingCache
from stefaland_hf.training.pretrain import config_for_dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from side_by_side import Variant, report, run_rounds  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=["tiny", "base"], default="tiny", help="model-zoo architecture")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=365)
    parser.add_argument("--warmup", type=int, default=180)
    parser.add_argument("--head-hidden-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant per round")
    parser.add_argument("--json", default=None, help="write the rows to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as folder:
        dataset = load_site_dataset("synthland", config_name="tiny", cache_dir=str(Path(folder) / "data"))
        architecture = StefaLandConfig.from_pretrained(REPO / "modeling" / f"stefaland-{args.config}")
        config = config_for_dataset(architecture, dataset).to_dict()
        config.update(target_variables=["streamflow"], head_hidden_size=args.head_hidden_size)
        windows = WindowDataset(
            dataset, period=("1995-01-01", "2004-12-31"), seq_len=args.seq_len, warmup=args.warmup, stride=args.seq_len - args.warmup,
            dynamic_variables=config["dynamic_variables"], static_variables=config["static_variables"], target_variables=["streamflow"],
        )

        def model(mode: str) -> StefaLandForTimeSeriesRegression:
            torch.manual_seed(0)
            return StefaLandForTimeSeriesRegression(StefaLandConfig(**{**config, "head_mode": mode}))

        resconn = model("resconn")
        cache = EmbeddingCache.for_windows(resconn, windows, Path(folder) / "cache")
        cached = CachedEmbeddingWindows(windows, cache)
        indices = np.random.default_rng(0).choice(len(windows), size=args.batch_size, replace=False)
        batch = collate_windows(windows.__getitems__(indices), drop_keys=("site_index", "start"))

        def from_cache(plain: dict) -> dict:
            rows = collate_windows(cached.__getitems__(indices), drop_keys=("site_index", "start"))
            return {**plain, "backbone_embedding": rows["backbone_embedding"]}

        variants = [
            Variant("LSTM baseline", model("direct")),
            Variant("resConn, live backbone", model("resconn")),
            Variant("resConn, embedding cache", resconn, batch_fn=from_cache),
        ]
        if bf16_supported("cpu"):  # the opt-in --bf16 of finetuning (CPU autocast), both sides
            variants += [
                Variant("LSTM baseline", model("direct"), bf16=True),
                Variant("resConn, embedding cache", model("resconn"), bf16=True, batch_fn=from_cache),
            ]
        print(
            f"## stefaland-{args.config} heads (LSTM {args.head_hidden_size}), B={args.batch_size} x T={args.seq_len}, "
            f"{args.threads} thread(s); load average {os.getloadavg()[0]:.2f}"
        )
        per_window = cache.nbytes / len(windows)
        print(
            f"embedding cache: {len(windows)} windows, {cache.nbytes / 2**20:.1f} MiB ({per_window / 2**10:.0f} KiB per "
            f"{args.seq_len}-day window of D={architecture.d_model}), built in {cache.manifest['build_seconds']:.1f} s"
        )
        run_rounds(variants, batch, args.rounds, args.steps)
        rows = report(variants, args.batch_size, ratio="cost")
    if args.json:
        Path(args.json).write_text(json.dumps({"cache_bytes_per_window": per_window, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
