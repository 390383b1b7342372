"""Training-step cost of the differentiable-HBV heads against the heads they extend.

Side by side in one process, in interleaved rounds, on the same batch of SynthLand windows (forward + backward +
``AdamW.step``, as ``side_by_side.Variant`` times it):

- ``resConn`` and ``resconn_hbv`` on the embedding cache of a frozen ``stefaland-tiny`` encoder (how finetuning
  trains both): the same adapter and residual LSTM, then a linear output or HBV parameters -> the HBV;
- ``direct`` (the LSTM baseline) and ``hbv`` (δHBV: the same LSTM -> HBV parameters -> the HBV).

The HBV runs ``--nmul`` components over every day of the window; its first ``--warmup`` days spin up the stores
(two passes without autograd), the rest run with autograd: the one loop over days the physics has. The printed ratio
``resconn_hbv / resConn`` is the figure of merit (issue: at most 3x on one core). Defaults are the ``cpu-quick``
benchmark's finetuning: batch 64 x 365 days with a 180-day warm-up, head LSTM 64, 16 components.

    python benchmarks/hbv_speed.py                          # 1 thread
    python benchmarks/hbv_speed.py --seq-len 730 --warmup 365 --head-hidden-size 256   # the paper's windows
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from stefaland_hf import StefaLandConfig, StefaLandForTimeSeriesRegression
from stefaland_hf.data import load_site_dataset
from stefaland_hf.data.samplers import WindowDataset, collate_windows
from stefaland_hf.training.embedding_cache import CachedEmbeddingWindows, EmbeddingCache
from stefaland_hf.training.pretrain import config_for_dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from side_by_side import Variant, report, run_rounds  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def physics_alone(args, repeats: int = 5) -> str:
    """The loop over days by itself: ``simulate`` on random forcings of the batch's shape, spin-up passes only (no
    autograd) and the whole window (forward + backward of the days after the spin-up), medians of ``repeats``."""
    import time

    from stefaland_hf import differentiable_hbv as hbv

    generator = torch.Generator().manual_seed(0)
    shape = (args.batch_size, args.seq_len)
    forcings = (10 * torch.rand(shape, generator=generator) ** 3, 10 + 8 * torch.randn(shape, generator=generator),
                3 * torch.rand(shape, generator=generator))
    static_size, dynamic_size = hbv.network_outputs(args.nmul, hbv.DEFAULT_DYNAMIC_PARAMETERS)
    last_day = torch.randn(args.batch_size, static_size, generator=generator).requires_grad_(True)
    daily = torch.randn(args.batch_size, args.seq_len, dynamic_size, generator=generator).requires_grad_(True)

    def run(warmup_days: int, backward: bool) -> float:
        started = time.perf_counter()
        with torch.set_grad_enabled(backward):
            component, routing = hbv.parameters_from_network(last_day, daily, hbv.HBV_PARAMETER_RANGES, args.nmul, hbv.DEFAULT_DYNAMIC_PARAMETERS)
            routed = hbv.simulate(*forcings, component, hbv.gamma_unit_hydrograph(routing["ROUTE_SHAPE"], routing["ROUTE_SCALE"]),
                                  warmup_days=warmup_days)
            if backward:
                routed.streamflow[:, warmup_days:].sum().backward()
        return time.perf_counter() - started

    whole = statistics.median([run(args.warmup, True) for _ in range(repeats)])
    no_grad = statistics.median([run(args.warmup, False) for _ in range(repeats)])  # 2 spin-up passes + the rest, no autograd
    spinup_day = no_grad / (2 * args.warmup + args.seq_len - args.warmup)
    autograd_days = args.seq_len - args.warmup
    per_autograd_day = (whole - 2 * args.warmup * spinup_day) / autograd_days
    return (f"HBV physics alone (B={args.batch_size}, nmul={args.nmul}): {1e3 * whole:.0f} ms per step = 2 x {args.warmup} spin-up days at "
            f"{1e6 * spinup_day:.0f} us + {autograd_days} days with autograd (forward + backward) at {1e6 * per_autograd_day:.0f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=365)
    parser.add_argument("--warmup", type=int, default=180, help="days of each window that spin up the HBV stores (no loss)")
    parser.add_argument("--nmul", type=int, default=16, help="parallel HBV components")
    parser.add_argument("--head-hidden-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant per round")
    parser.add_argument("--json", default=None, help="write the rows to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as folder:
        dataset = load_site_dataset("synthland", config_name="tiny", cache_dir=str(Path(folder) / "data"))
        architecture = StefaLandConfig.from_pretrained(REPO / "modeling" / "stefaland-tiny")
        config = config_for_dataset(architecture, dataset).to_dict()
        config.update(target_variables=["streamflow"], head_hidden_size=args.head_hidden_size, hbv_nmul=args.nmul,
                      hbv_warmup_days=args.warmup, max_position_embeddings=max(architecture.max_position_embeddings, args.seq_len + 1))
        windows = WindowDataset(
            dataset, period=("2000-01-01", "2002-12-31"), seq_len=args.seq_len, warmup=args.warmup, stride=args.seq_len - args.warmup,
            dynamic_variables=config["dynamic_variables"], static_variables=config["static_variables"], target_variables=["streamflow"],
        )

        def model(mode: str) -> StefaLandForTimeSeriesRegression:
            torch.manual_seed(0)
            return StefaLandForTimeSeriesRegression(StefaLandConfig(**{**config, "head_mode": mode}))

        resconn, resconn_hbv = model("resconn"), model("resconn_hbv")
        indices = np.random.default_rng(0).choice(len(windows), size=args.batch_size, replace=len(windows) < args.batch_size)
        batch = collate_windows(windows.__getitems__(indices), drop_keys=("site_index", "start"))
        cache = EmbeddingCache.for_windows(resconn, windows, Path(folder) / "cache")
        cached = CachedEmbeddingWindows(windows, cache)

        def from_cache(plain: dict) -> dict:
            rows = collate_windows(cached.__getitems__(indices), drop_keys=("site_index", "start"))
            return {**plain, "backbone_embedding": rows["backbone_embedding"]}

        variants = [
            Variant("resConn, embedding cache", resconn, batch_fn=from_cache),
            Variant("resconn_hbv, embedding cache", resconn_hbv, batch_fn=from_cache),
            Variant("LSTM baseline (direct)", model("direct")),
            Variant("δHBV (hbv)", model("hbv")),
        ]
        print(
            f"## stefaland-tiny heads (LSTM {args.head_hidden_size}), B={args.batch_size} x T={args.seq_len} (warm-up {args.warmup}), "
            f"HBV nmul={args.nmul}, {args.threads} thread(s); load average {os.getloadavg()[0]:.2f}"
        )
        run_rounds(variants, batch, args.rounds, args.steps)
        rows = report(variants, args.batch_size, ratio="cost")
        median = {variant.label: statistics.median(variant.times) for variant in variants}
        ratio = median["resconn_hbv, embedding cache"] / median["resConn, embedding cache"]
        print(f"resconn_hbv / resConn step time: {ratio:.2f}x (median over {len(variants[0].times)} steps each)")
        print(f"hbv / direct step time: {median['δHBV (hbv)'] / median['LSTM baseline (direct)']:.2f}x")
        print(physics_alone(args))
    if args.json:
        Path(args.json).write_text(json.dumps({"resconn_hbv_over_resconn": ratio, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
