"""Interleaved A/B timing of training steps: every variant runs once per round, so load hits all alike."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from typing import Callable

import torch


class Variant:
    """A model + AdamW on its trainable parameters; ``step(batch)`` times forward + backward + update."""

    def __init__(self, label: str, model: torch.nn.Module, bf16: bool = False, forward: Callable | None = None, batch_fn: Callable | None = None):
        self.label, self.bf16, self.times = label, bf16, []
        self.model = model.train()
        self.forward = self.model if forward is None else forward
        self.batch_fn = (lambda batch: batch) if batch_fn is None else batch_fn
        self.optimizer = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=1e-4)

    def step(self, batch: dict) -> float:
        started = time.perf_counter()
        context = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with context:
            loss = self.forward(**self.batch_fn(batch)).loss
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - started


def run_rounds(variants: list[Variant], batch: dict, rounds: int, steps: int) -> None:
    """One untimed warm-up step each, then ``rounds`` x (``steps`` timed steps of every variant in turn)."""
    for variant in variants:
        variant.step(batch)
    for _ in range(rounds):
        for variant in variants:
            variant.times += [variant.step(batch) for _ in range(steps)]


def report(variants: list[Variant], batch_size: int, baseline: int = 0, ratio: str = "speed-up") -> list[dict]:
    """Print a markdown table (min/median/max ms, samples/s, ratio to ``variants[baseline]``) and return its rows.

    ``ratio="speed-up"`` prints baseline time / variant time; ``ratio="cost"`` prints variant time / baseline time.
    """
    base = statistics.median(variants[baseline].times)
    header = f"speed-up vs {variants[baseline].label}" if ratio == "speed-up" else f"step time / {variants[baseline].label}"
    print(f"| variant | min ms | median ms | max ms | samples/s | {header} (median) |\n|---|---|---|---|---|---|")
    rows = []
    for variant in variants:
        median = statistics.median(variant.times)
        row = {
            "variant": variant.label, "bf16": variant.bf16, "steps": len(variant.times),
            "min_ms": 1e3 * min(variant.times), "median_ms": 1e3 * median, "max_ms": 1e3 * max(variant.times),
            "samples_per_s": batch_size / median, "ratio": base / median if ratio == "speed-up" else median / base,
        }
        rows.append(row)
        print(
            f"| {variant.label}{' (bf16)' if variant.bf16 else ''} | {row['min_ms']:.0f} | {row['median_ms']:.0f} | "
            f"{row['max_ms']:.0f} | {row['samples_per_s']:.1f} | {row['ratio']:.2f}x |"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return rows
