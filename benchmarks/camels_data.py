"""Benchmark the CAMELS-US builder on the raw release layout: build time, peak memory, cache size.

Builds the dataset from the raw text files (every basin of ``basin_list.txt``; 67 in the shared
test data) into a fresh Arrow cache and reports

- build time (``download_and_prepare``) and basins/s;
- peak RSS (``resource.getrusage``) of a process that only builds, measured for a quarter, half
  and all of the basins, each in its own child process, above the RSS after imports; a straight-
  line fit over those builds gives the extrapolation to the 671-basin release;
- the Arrow cache size on disk, and its extrapolation to 671 basins (size is linear in basins);
- with :mod:`stefaland_hf.data.samplers`, one epoch of training windows over the paper's training
  period (1999-10-01..2008-09-30, 365-day windows, batch 256) in windows/s, read zero-copy from the
  memory-mapped cache, and the peak RSS after it.

Run from the repository root::

    python benchmarks/camels_data.py --data-dir ../shared/data/camels_us
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_RELEASE = 671  # basins in the full CAMELS-US release


def _rss_mb() -> float:
    """Current resident set size (MB), from /proc when available."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def _peak_rss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 1024  # bytes on macOS, KiB on Linux


def _dir_size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20


def _build(data_dir: str, cache_dir: str, forcing: str, n_basins: int | None):
    from stefaland_hf.data.camels_us import CamelsUS, read_basin_list

    basins = read_basin_list(Path(data_dir) / "basin_list.txt")
    if n_basins is not None:
        basins = basins[:n_basins]
    b = CamelsUS(data_dir=data_dir, cache_dir=cache_dir, forcing=forcing, basins=basins)
    t0 = time.perf_counter()
    b.download_and_prepare()
    return b, time.perf_counter() - t0, len(basins)


def child(args) -> None:
    """Build only; print JSON with times and memory (run in a fresh process)."""
    import datasets  # noqa: F401  (imports count in the baseline, not in the build)
    import stefaland_hf.data.camels_us  # noqa: F401

    datasets.disable_progress_bars()
    base = _rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        b, seconds, n = _build(args.data_dir, tmp, args.forcing, args.n_basins)
        size = _dir_size_mb(Path(b.cache_dir))
    print(json.dumps({"n": n, "seconds": seconds, "base_rss_mb": base, "peak_rss_mb": _peak_rss_mb(), "cache_mb": size}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "camels_us"))
    p.add_argument("--forcing", default="daymet", choices=["daymet", "maurer", "nldas"])
    p.add_argument("--cache-dir", default=None, help="Arrow cache for the main build (default: a temporary folder)")
    p.add_argument("--seq-len", type=int, default=365)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--max-windows", type=int, default=None, help="stop the epoch after this many windows")
    p.add_argument("--n-basins", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    if not (Path(args.data_dir) / "basin_list.txt").is_file():
        sys.exit(f"no CAMELS-US data at {args.data_dir} (pass --data-dir)")

    from stefaland_hf.data.camels_us import read_basin_list

    n_all = len(read_basin_list(Path(args.data_dir) / "basin_list.txt"))

    # 1) memory of a build-only process, for 1/4, 1/2 and all basins (fresh process each)
    print(f"CAMELS-US ({args.forcing}), {n_all} basins from {args.data_dir}")
    runs = []
    for n in sorted({max(1, n_all // 4), max(1, n_all // 2), n_all}):
        cmd = [sys.executable, __file__, "--child", "--data-dir", args.data_dir, "--forcing", args.forcing, "--n-basins", str(n)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        runs.append(r)
        print(
            f"  build {r['n']:4d} basins: {r['seconds']:6.2f} s ({r['n'] / r['seconds']:6.1f} basins/s)  "
            f"RSS after imports {r['base_rss_mb']:7.1f} MB, peak {r['peak_rss_mb']:7.1f} MB "
            f"(+{r['peak_rss_mb'] - r['base_rss_mb']:6.1f} MB)  cache {r['cache_mb']:7.1f} MB"
        )
    import numpy as np

    ns = np.array([r["n"] for r in runs], float)
    extra = np.array([r["peak_rss_mb"] - r["base_rss_mb"] for r in runs])
    cache = np.array([r["cache_mb"] for r in runs])
    secs = np.array([r["seconds"] for r in runs])
    if len(ns) > 1:
        mem_slope, mem_icpt = np.polyfit(ns, extra, 1)
        sec_slope, sec_icpt = np.polyfit(ns, secs, 1)
    else:
        mem_slope, mem_icpt, sec_slope, sec_icpt = 0.0, float(extra[0]), float(secs[0] / ns[0]), 0.0
    per_basin_mb = cache[-1] / ns[-1]
    print(
        f"  per basin: {per_basin_mb:.2f} MB of Arrow cache, {1000 * sec_slope:.1f} ms build, "
        f"{1024 * mem_slope:+.1f} KB of peak build memory (fit over the builds above)"
    )
    print(
        f"  extrapolated to {N_RELEASE} basins: cache {per_basin_mb * N_RELEASE:.0f} MB on disk, "
        f"build {sec_icpt + sec_slope * N_RELEASE:.0f} s, "
        f"peak build memory {runs[-1]['base_rss_mb'] + mem_icpt + max(mem_slope, 0.0) * N_RELEASE:.0f} MB "
        f"(imports {runs[-1]['base_rss_mb']:.0f} MB + {mem_icpt + max(mem_slope, 0.0) * N_RELEASE:.0f} MB)"
    )

    # 2) main build in this process (kept, then memory-mapped), and one epoch of windows
    import datasets

    datasets.disable_progress_bars()
    tmp = None
    cache_dir = args.cache_dir
    if cache_dir is None:
        tmp = tempfile.TemporaryDirectory()
        cache_dir = tmp.name
    b, seconds, n = _build(args.data_dir, cache_dir, args.forcing, None)
    ds = b.as_dataset(split="all")
    print(f"main build: {n} basins in {seconds:.2f} s, cache {_dir_size_mb(Path(b.cache_dir)):.1f} MB at {b.cache_dir}")
    import torch

    from stefaland_hf.data.samplers import WindowDataset, collate_windows

    rss_before = _rss_mb()
    wd = WindowDataset(ds, period=("1999-10-01", "2008-09-30"), seq_len=args.seq_len)
    n_windows = len(wd) if args.max_windows is None else min(len(wd), args.max_windows)
    loader = torch.utils.data.DataLoader(
        wd, batch_size=args.batch_size, shuffle=True, collate_fn=collate_windows, generator=torch.Generator().manual_seed(0)
    )
    seen, t0 = 0, time.perf_counter()
    checksum = 0.0
    for batch in loader:
        seen += batch["x_dynamic"].shape[0]
        checksum += float(batch["x_dynamic"][:, -1, 0].nan_to_num().sum())
        if seen >= n_windows:
            break
    dt = time.perf_counter() - t0
    print(
        f"one epoch of training windows: {seen} windows of {args.seq_len} days x {len(wd.dynamic_variables)} inputs, "
        f"batch {args.batch_size}, shuffled: {dt:.2f} s = {seen / dt:,.0f} windows/s "
        f"({seen * args.seq_len * len(wd.dynamic_variables) * 4 / dt / 2**30:.2f} GiB/s gathered); "
        f"RSS {rss_before:.0f} -> {_rss_mb():.0f} MB, peak {_peak_rss_mb():.0f} MB"
    )
    if tmp is not None:
        del ds, wd, loader
        tmp.cleanup()


if __name__ == "__main__":
    main()
