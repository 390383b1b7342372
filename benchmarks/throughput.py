"""Training throughput, peak memory and the batched-embedding speed-up of StefaLand.

For each model configuration (``tiny`` and ``base`` by default) this measures, on the chosen device:

1. **pretraining step** -- ``StefaLandForPretraining`` forward + backward + ``AdamW.step`` on batches
   carrying cross-variable group masks (``CrossVariableGroupMasking``; masks are drawn before timing),
   in samples/s;
2. **finetuning step** -- ``StefaLandForTimeSeriesRegression`` with ``head_mode="resconn"`` (frozen
   backbone, adapter + LSTM head train) and, as the baseline run side by side in the same process,
   ``head_mode="direct"`` (the paper's plain LSTM on the raw inputs), in samples/s, with their ratio;
3. **peak memory** of each phase above the memory held before it (model + optimizer state +
   activations): on CUDA ``torch.cuda.max_memory_allocated``; on CPU the peak resident set size
   ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` after resetting the high-water mark through
   ``/proc/self/clear_refs`` (Linux) and trimming the malloc arena. (``tracemalloc`` is not used: it does
   not see the tensor allocations of torch's CPU allocator.) RSS also counts allocator slack and freed
   memory that glibc keeps, so CPU figures are approximate;
4. **embedding comparison** -- ``StefaLandVariableEmbedding`` (one batched op over all variables) against a
   naive ``nn.ModuleDict`` of per-variable ``Linear(1, H) -> GELU -> Linear(H, D)`` MLPs run in a Python
   loop, with mask-vector replacement, ``torch.stack`` and a sum (the structure of the authors' code).
   The weights are copied from one to the other and the outputs are asserted equal (1e-5) before timing;
   forward + backward of both are timed interleaved, for the dynamic ([B, T, F]) and the static ([B, C])
   embedding, and the speed ratio is printed;

plus the parameter counts (``model.num_parameters()``) of the backbone and the pretraining model.

Inputs are synthetic, in physical units (per-variable typical mean and spread by unit, non-negative
variables clipped at zero), with ~2 % of dynamic values, ~5 % of static values and ~30 % of labels NaN;
the configs get matching normalization statistics. Step times are medians over the timed steps (robust to
load from other processes); the load average before and after is printed so runs can be judged.

Configs: ``tiny`` and ``base`` load ``modeling/stefaland-{tiny,base}/config.json`` when present, else are
built here (base = ``StefaLandConfig()`` defaults, the paper's D=256, 4 layers, 4 heads, FFN 512,
5 dynamic + 24 static variables; tiny = D=64, 2 layers, 4 heads, FFN 128, variable MLP 32, SynthLand's
6 dynamic + 26 static variables, head LSTM 64). ``--config PATH`` benchmarks any ``config.json`` as well.

Run from the repository root::

    python benchmarks/throughput.py                      # tiny + base, CPU or the GPU if present
    python benchmarks/throughput.py --device cuda --dtype bf16 --batch-size 256 --steps 20
    python benchmarks/throughput.py --configs tiny --config path/to/config.json --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from stefaland_hf import StefaLandConfig
from stefaland_hf.masking import CrossVariableGroupMasking
from stefaland_hf.training.acceleration import bf16_supported
from stefaland_hf.modeling_stefaland import (
    StefaLandForPretraining,
    StefaLandForTimeSeriesRegression,
    StefaLandModel,
    StefaLandVariableEmbedding,
)
from stefaland_hf.variables import VARIABLES
from stefaland_hf.zoo import model_zoo_dir

REPO = Path(__file__).resolve().parents[1]
ZOO = model_zoo_dir()

# --------------------------------------------------------------------------------------------------
# Synthetic inputs in physical units
# --------------------------------------------------------------------------------------------------
# Typical (mean, spread) by unit, with overrides by name; rough magnitudes only, enough to exercise
# the normalizers with realistic scales.
_BY_UNIT = {
    "mm/day": (3.0, 5.0),
    "degC": (10.0, 10.0),
    "W/m2": (180.0, 80.0),
    "Pa": (1000.0, 500.0),
    "kg/kg": (0.008, 0.004),
    "%": (65.0, 20.0),
    "m/s": (3.0, 2.0),
    "s": (43200.0, 8000.0),
    "mm": (20.0, 40.0),
    "degree_north": (40.0, 5.0),
    "degree_east": (-100.0, 15.0),
    "m": (800.0, 600.0),
    "m/km": (20.0, 15.0),
    "km2": (500.0, 400.0),
    "1": (0.4, 0.2),
    "cm/h": (2.0, 1.5),
    "g/cm3": (1.4, 0.15),
    "log10(m2)": (-14.0, 1.5),
    "m2/m2": (3.0, 1.5),
    "days/yr": (20.0, 10.0),
    "days": (3.0, 2.0),
    "1/km2": (50.0, 100.0),
    "USD/km2": (1e6, 2e6),
    "m3/m3": (0.25, 0.1),
}
_BY_NAME = {
    "precipitation": (3.0, 6.0),
    "streamflow": (1.0, 1.5),
    "soil_depth": (1.5, 0.8),
    "max_water_content": (0.5, 0.3),
    "aspect_cosine": (0.0, 0.6),
    "ndvi": (0.5, 0.2),
    "aridity": (1.2, 0.7),
    "precipitation_seasonality": (0.0, 0.4),
    "pet_seasonality": (0.0, 0.4),
}


def _stats(names: list[str]) -> tuple[list[float], list[float]]:
    pairs = [_BY_NAME.get(n) or _BY_UNIT.get(VARIABLES[n].unit, (1.0, 1.0)) for n in names]
    return [float(m) for m, _ in pairs], [float(s) for _, s in pairs]


def _physical(names: list[str], shape: tuple[int, ...], g: torch.Generator, nan_fraction: float) -> torch.Tensor:
    """[*shape, len(names)] values around each variable's typical magnitude, NaN with ``nan_fraction``."""
    mean, std = (torch.tensor(v) for v in _stats(names))
    values = mean + std * torch.randn(*shape, len(names), generator=g)
    nonneg = torch.tensor([not VARIABLES[n].allow_negative for n in names])
    values = torch.where(nonneg, values.clamp(min=0.0), values)
    return values.masked_fill(torch.rand(values.shape, generator=g) < nan_fraction, float("nan"))


def make_batch(config: StefaLandConfig, batch: int, length: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "x_dynamic": _physical(config.dynamic_variables, (batch, length), g, 0.02),
        "x_static": _physical(config.static_variables, (batch,), g, 0.05),
        "labels": _physical(config.target_variables, (batch, length), g, 0.30),
    }


# --------------------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------------------
def _tiny_config() -> StefaLandConfig:
    from stefaland_hf.data.synthland import DYNAMIC_VARIABLES, STATIC_VARIABLES

    return StefaLandConfig(
        dynamic_variables=list(DYNAMIC_VARIABLES),
        static_variables=list(STATIC_VARIABLES),
        d_model=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        ffn_dim=128,
        variable_mlp_dim=32,
        head_hidden_size=64,  # as modeling/stefaland-tiny/config.json
        max_position_embeddings=400,
    )


def load_config(name_or_path: str) -> tuple[str, StefaLandConfig, str]:
    """(label, config with normalization statistics and a streamflow target, where it came from)."""
    path = Path(name_or_path)
    if not path.suffix == ".json" and (ZOO / f"stefaland-{name_or_path}" / "config.json").is_file():
        path = ZOO / f"stefaland-{name_or_path}" / "config.json"
    if path.suffix == ".json":
        if not path.is_file():
            raise SystemExit(f"--config: {path} does not exist")
        label = name_or_path if not path.parent.name.startswith("stefaland-") else path.parent.name.removeprefix("stefaland-")
        config, source = StefaLandConfig.from_json_file(str(path)), str(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    elif name_or_path == "tiny":
        label, config, source = "tiny", _tiny_config(), "built in script"
    elif name_or_path == "base":
        label, config, source = "base", StefaLandConfig(), "built in script (StefaLandConfig defaults)"
    else:
        raise SystemExit(f"--configs: unknown config {name_or_path!r} (use tiny, base, or --config PATH)")
    if config.dynamic_mean is None:
        config.dynamic_mean, config.dynamic_std = _stats(config.dynamic_variables)
    if config.static_mean is None:
        config.static_mean, config.static_std = _stats(config.static_variables)
    if not config.target_variables:
        config.target_variables = ["streamflow"]
        config.target_mean, config.target_std = None, None
    if config.target_mean is None:
        config.target_mean, config.target_std = _stats(config.target_variables)
    return label, config, source


# --------------------------------------------------------------------------------------------------
# Timing and memory helpers
# --------------------------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _trim_malloc() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _maxrss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 1024


class PeakMemory:
    """Peak memory of a block above what was held when it started (MB)."""

    cpu_reset_works: bool | None = None

    def __init__(self, device: torch.device):
        self.device = device
        self.peak_mb = float("nan")

    def __enter__(self):
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        else:
            _trim_malloc()
            try:  # "5" resets the peak RSS (VmHWM, which ru_maxrss reports) to the current RSS
                with open("/proc/self/clear_refs", "w") as fh:
                    fh.write("5")
                PeakMemory.cpu_reset_works = _maxrss_mb() <= _rss_mb() + 1.0
            except OSError:
                PeakMemory.cpu_reset_works = False
            self.start = _rss_mb()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.peak_mb = (torch.cuda.max_memory_allocated(self.device) - self.start) / 2**20
        else:
            self.peak_mb = _maxrss_mb() - self.start
        return False


def _autocast(device: torch.device, dtype: str):
    if dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[dtype])


def time_steps(step, batches, warmup: int, steps: int, device: torch.device) -> list[float]:
    """Run ``warmup`` untimed then ``steps`` timed calls of ``step(batch)``; per-step seconds."""
    times = []
    for i in range(warmup + steps):
        batch = batches[i % len(batches)]
        _sync(device)
        t0 = time.perf_counter()
        step(batch)
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


# --------------------------------------------------------------------------------------------------
# (1) pretraining and (2) finetuning steps
# --------------------------------------------------------------------------------------------------
def bench_pretraining(config, args, device, warmup, steps) -> dict:
    collator = CrossVariableGroupMasking(config, seed=0)
    batches = []
    for i in range(min(warmup + steps, 3)):
        batch = make_batch(config, args.batch_size, args.seq_len, seed=i)
        del batch["labels"]
        batches.append(_to(collator(batch), device))
    model, times, memory = _time_training(lambda: StefaLandForPretraining(config), 1e-4, batches, args, device, warmup, steps)
    result = {
        "samples_per_s": args.batch_size / statistics.median(times),
        "step_s_median": statistics.median(times),
        "step_s_all": times,
        "peak_memory_mb": memory.peak_mb,
        "params_pretraining": model.num_parameters(),
        "params_backbone": model.stefaland.num_parameters(),
    }
    del model
    return result


def _time_training(build_model, lr, batches, args, device, warmup, steps):
    """Train steps (forward, backward, AdamW on the trainable parameters) timed after warm-up, under peak-memory tracking."""
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and args.dtype == "fp16")
    with PeakMemory(device) as memory:
        torch.manual_seed(0)
        model = build_model().to(device).train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)

        def step(batch):
            optimizer.zero_grad(set_to_none=True)
            with _autocast(device, args.dtype):
                loss = model(**batch).loss
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

        times = time_steps(step, batches, warmup, steps, device)
    return model, times, memory


def bench_finetuning(config, mode, args, device, warmup, steps) -> dict:
    config = StefaLandConfig.from_dict({**config.to_dict(), "head_mode": mode})
    batches = [_to(make_batch(config, args.batch_size, args.seq_len, seed=100 + i), device) for i in range(min(warmup + steps, 3))]
    model, times, memory = _time_training(lambda: StefaLandForTimeSeriesRegression(config), 1e-3, batches, args, device, warmup, steps)
    result = {
        "samples_per_s": args.batch_size / statistics.median(times),
        "step_s_median": statistics.median(times),
        "step_s_all": times,
        "peak_memory_mb": memory.peak_mb,
        "params_total": model.num_parameters(),
        "params_trainable": model.num_parameters(only_trainable=True),
    }
    del model
    return result


# --------------------------------------------------------------------------------------------------
# (4) batched vs naive per-variable embedding
# --------------------------------------------------------------------------------------------------
class NaiveVariableEmbedding(nn.Module):
    """Per-variable MLPs in an ``nn.ModuleDict``, looped in Python; masked entries become a learned vector."""

    def __init__(self, names: list[str], hidden: int, d_model: int):
        super().__init__()
        self.names = list(names)
        self.mlps = nn.ModuleDict({n: nn.Sequential(nn.Linear(1, hidden), nn.GELU(), nn.Linear(hidden, d_model)) for n in names})
        self.mask_tokens = nn.ParameterDict({n: nn.Parameter(torch.zeros(d_model)) for n in names})

    @torch.no_grad()
    def copy_from(self, batched: StefaLandVariableEmbedding) -> None:
        for v, n in enumerate(self.names):
            first, second = self.mlps[n][0], self.mlps[n][2]
            first.weight.copy_(batched.weight1[v].unsqueeze(1))
            first.bias.copy_(batched.bias1[v])
            second.weight.copy_(batched.weight2[v].T)
            second.bias.copy_(batched.bias2[v])
            self.mask_tokens[n].copy_(batched.mask_token[v])

    def forward(self, values: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        embeddings = []
        for v, n in enumerate(self.names):
            embedding = self.mlps[n](values[..., v : v + 1])
            embeddings.append(torch.where(masked[..., v : v + 1], self.mask_tokens[n], embedding))
        return torch.stack(embeddings, dim=-2).sum(-2)


def bench_embedding(config, names, leading, args, device, reps: int) -> dict:
    torch.manual_seed(0)
    r = config.initializer_range
    batched = StefaLandVariableEmbedding(len(names), config.variable_mlp_dim, config.d_model, "gelu", 0.0, "vector")
    for p in batched.parameters():
        nn.init.uniform_(p, -r, r)
    naive = NaiveVariableEmbedding(names, config.variable_mlp_dim, config.d_model)
    naive.copy_from(batched)
    batched, naive = batched.to(device), naive.to(device)
    g = torch.Generator().manual_seed(1)
    values = torch.randn(*leading, len(names), generator=g).to(device)
    masked = (torch.rand(*leading, len(names), generator=g) < 0.3).to(device)
    with torch.no_grad():
        err = (batched(values, masked) - naive(values, masked)).abs().max().item()
    assert err <= 1e-5, f"batched and naive embeddings differ by {err}"

    def step(module):
        def run(_):
            for p in module.parameters():
                p.grad = None
            with _autocast(device, args.dtype):
                out = module(values, masked)
            out.float().square().mean().backward()

        return run

    t_naive, t_batched = [], []
    for _ in range(2):  # warm-up
        step(naive)(None), step(batched)(None)
    for _ in range(reps):  # interleaved so that load from other processes hits both alike
        t_naive += time_steps(step(naive), [None], 0, 1, device)
        t_batched += time_steps(step(batched), [None], 0, 1, device)
    naive_s, batched_s = statistics.median(t_naive), statistics.median(t_batched)
    return {"shape": [*leading, len(names)], "max_abs_diff": err, "naive_ms": 1e3 * naive_s, "batched_ms": 1e3 * batched_s, "speedup": naive_s / batched_s}


# --------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="*", default=["tiny", "base"], help="built-in names (tiny, base) or config.json paths")
    parser.add_argument("--config", action="append", default=[], metavar="PATH", help="also benchmark this config.json (repeatable)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=365)
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 5; 3 for base-sized models on CPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed warm-up steps (default 2; 1 for base-sized models on CPU)")
    parser.add_argument("--embedding-reps", type=int, default=10, help="timed forward+backward repetitions per embedding")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="fp32", help="autocast dtype (CPU: fp32 or bf16, the latter where the CPU has bf16 arithmetic)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads on CPU (default: torch's choice)")
    parser.add_argument("--json", metavar="OUT", help="write all results as JSON here")
    args = parser.parse_args(argv)

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available")
    if device.type == "cpu" and args.dtype == "fp16":
        raise SystemExit("--dtype fp16: CPU autocast is measured in fp32 or bf16 only (fp16 has no fast CPU kernels)")
    if device.type == "cpu" and args.dtype == "bf16" and not bf16_supported("cpu"):
        raise SystemExit("--dtype bf16: this CPU has no native bf16 arithmetic (AVX512-BF16 or AMX); use fp32")
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
    load_before = os.getloadavg()
    memory_method = (
        "torch.cuda.max_memory_allocated above the phase's start"
        if device.type == "cuda"
        else "peak RSS (getrusage ru_maxrss after /proc/self/clear_refs reset) above the phase's start"
    )
    print(f"device: {device_name}; torch {torch.__version__}; dtype {args.dtype}; batch {args.batch_size} x {args.seq_len} days")
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f} (os.cpu_count()={os.cpu_count()})")
    if device.type == "cpu" and torch.get_num_threads() > 1 and load_before[0] >= 0.5:
        print(
            "WARNING: other processes are using the CPU. With several torch threads on busy cores every parallel op\n"
            "waits for descheduled threads, which can slow small ops by 10-100x and inflates the naive embedding\n"
            "loop most. Rerun on a quiet machine, or pass --threads 1 for load-robust (but single-core) figures."
        )

    results = []
    for spec in [*args.configs, *args.config]:
        label, config, source = load_config(spec)
        big = config.d_model * config.num_hidden_layers >= 512
        steps = args.steps if args.steps is not None else (3 if big and device.type == "cpu" else 5)
        warmup = args.warmup if args.warmup is not None else 2
        if args.steps is None and big and device.type == "cpu":
            warmup = min(warmup, 1)
        F, C = len(config.dynamic_variables), len(config.static_variables)
        print(
            f"\n== {label} ({source}): D={config.d_model}, layers={config.num_hidden_layers}, heads={config.num_attention_heads}, "
            f"FFN={config.ffn_dim}, variable MLP={config.variable_mlp_dim}, {F} dynamic + {C} static, head LSTM {config.head_hidden_size}; "
            f"{warmup} warm-up + {steps} timed steps"
        )
        t0 = time.perf_counter()
        entry = {"config": label, "source": source, "d_model": config.d_model, "layers": config.num_hidden_layers,
                 "dynamic": F, "static": C, "warmup": warmup, "steps": steps}
        entry["params_backbone"] = StefaLandModel(config).num_parameters()
        entry["pretraining"] = pre = bench_pretraining(config, args, device, warmup, steps)
        print(f"pretraining step:  {pre['samples_per_s']:8.1f} samples/s (median {pre['step_s_median']*1e3:.0f} ms), peak {pre['peak_memory_mb']:.0f} MB, "
              f"{pre['params_pretraining']:,} parameters ({pre['params_backbone']:,} in the backbone)")
        for mode in ("resconn", "direct"):
            entry[mode] = ft = bench_finetuning(config, mode, args, device, warmup, steps)
            print(f"finetune {mode:8s}:  {ft['samples_per_s']:8.1f} samples/s (median {ft['step_s_median']*1e3:.0f} ms), peak {ft['peak_memory_mb']:.0f} MB, "
                  f"{ft['params_trainable']:,} trainable of {ft['params_total']:,}")
        entry["resconn_over_direct"] = entry["resconn"]["samples_per_s"] / entry["direct"]["samples_per_s"]
        print(f"finetune resconn / direct LSTM throughput: {entry['resconn_over_direct']:.2f}x")
        entry["embedding_dynamic"] = emb_d = bench_embedding(config, config.dynamic_variables, (args.batch_size, args.seq_len), args, device, args.embedding_reps)
        entry["embedding_static"] = emb_s = bench_embedding(config, config.static_variables, (args.batch_size,), args, device, args.embedding_reps)
        for name, emb in (("dynamic", emb_d), ("static", emb_s)):
            print(f"embedding {name:7s} {emb['shape']}: naive ModuleDict loop {emb['naive_ms']:.2f} ms, batched {emb['batched_ms']:.2f} ms "
                  f"-> batched is {emb['speedup']:.1f}x faster (fwd+bwd; outputs agree to {emb['max_abs_diff']:.1e})")
        entry["wall_s"] = time.perf_counter() - t0
        results.append(entry)

    load_after = os.getloadavg()
    print(f"\nload average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    if device.type == "cpu" and PeakMemory.cpu_reset_works is False:
        memory_method = "peak RSS (getrusage ru_maxrss; the reset failed, so later phases may read low)"

    print(f"\nDevice: {device_name}, {args.dtype}, batch {args.batch_size}, {args.seq_len} days; samples/s from the median timed step. "
          f"Memory: {memory_method}.\n")
    header = ["config", "params (backbone / pretrain)", "pretrain samples/s", "pretrain peak MB", "resconn samples/s",
              "direct LSTM samples/s", "resconn / direct", "resconn peak MB", "direct peak MB",
              "embed fwd+bwd speed-up dyn (static)"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for e in results:
        row = [
            f"{e['config']} (D={e['d_model']}, L={e['layers']}, {e['dynamic']}+{e['static']} vars)",
            f"{e['params_backbone'] / 1e6:.2f} M / {e['pretraining']['params_pretraining'] / 1e6:.2f} M",
            f"{e['pretraining']['samples_per_s']:.1f}",
            f"{e['pretraining']['peak_memory_mb']:.0f}",
            f"{e['resconn']['samples_per_s']:.1f}",
            f"{e['direct']['samples_per_s']:.1f}",
            f"{e['resconn_over_direct']:.2f}x",
            f"{e['resconn']['peak_memory_mb']:.0f}",
            f"{e['direct']['peak_memory_mb']:.0f}",
            f"{e['embedding_dynamic']['speedup']:.1f}x ({e['embedding_static']['speedup']:.1f}x)",
        ]
        print("| " + " | ".join(row) + " |")

    if args.json:
        payload = {
            "device": device_name, "torch": torch.__version__, "dtype": args.dtype, "batch_size": args.batch_size,
            "seq_len": args.seq_len, "memory_method": memory_method, "load_before": load_before, "load_after": load_after,
            "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]), "results": results,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
