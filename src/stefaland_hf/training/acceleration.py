"""Speed options of the training loops: mixed precision chosen by the hardware, opt-in ``torch.compile``.

Both refuse loudly what the platform cannot do (bf16 on a CPU without bf16 instructions would run
emulated, many times slower; ``torch.compile`` on CPU needs a C++ compiler) and print the fallback
they take for ``"auto"``.
"""

from __future__ import annotations

import os
import shutil

import torch

MIXED_PRECISION_CHOICES = ("auto", "no", "bf16")


def bf16_supported(device_type: str) -> bool:
    """Native bf16 arithmetic: CUDA with bf16 support, or a CPU with AVX512-BF16 or AMX tiles."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return False


def resolve_mixed_precision(requested: str, device_type: str, log=print) -> str:
    """``"bf16"`` or ``"no"`` for ``requested`` on ``device_type``.

    ``"auto"`` is bf16 autocast where the hardware has bf16 arithmetic, else full precision (printed).
    An explicit ``"bf16"`` the hardware cannot run is an error naming the argument. fp16 is refused: it
    needs loss scaling, which the pretraining loop does not do.
    """
    if requested == "fp16":
        raise ValueError("mixed_precision='fp16' needs loss scaling, which pretraining does not do; use 'bf16' or 'no'")
    if requested not in MIXED_PRECISION_CHOICES:
        raise ValueError(f"mixed_precision: expected one of {MIXED_PRECISION_CHOICES}, got {requested!r}")
    if requested == "auto":
        chosen = "bf16" if bf16_supported(device_type) else "no"
        if chosen == "no":
            log(f"mixed_precision=auto: this {device_type} has no native bf16 arithmetic; training in float32")
        return chosen
    if requested == "bf16" and not bf16_supported(device_type):
        raise ValueError(
            f"mixed_precision='bf16': this {device_type} has no native bf16 arithmetic (CPU: AVX512-BF16 or AMX; "
            "CUDA: compute capability 8.0+); use 'auto' or 'no'"
        )
    return requested


def autocast(device_type: str, mixed_precision: str):
    """The forward pass's autocast context for a resolved ``mixed_precision``.

    Applied by the loop itself rather than through ``Accelerator(mixed_precision=...)``: accelerate keeps
    one process-wide state, and a Trainer finetuning in the same process (demo, benchmark) would clash with it.
    """
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=mixed_precision == "bf16")


def compile_model(model: torch.nn.Module, device_type: str) -> torch.nn.Module:
    """``torch.compile(model)``, after checking the inductor backend can build kernels here."""
    if device_type == "cpu":
        compiler = os.environ.get("CXX", "g++")
        if shutil.which(compiler) is None and shutil.which("clang++") is None:
            raise RuntimeError(
                f"--compile: torch.compile on CPU needs a C++ compiler (looked for {compiler!r} and 'clang++' on PATH); "
                "install one (apt-get install g++) or run without --compile"
            )
    return torch.compile(model)
