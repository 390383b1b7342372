"""What a finetuning run prints: one labelled progress bar and one line per evaluation (also kept as a CSV).

Trainer's own printers write every log record as a raw dict (numbers as strings, dozens per run);
:class:`EvaluationConsole` replaces them.
"""

from __future__ import annotations

import contextlib
import csv
import time
import warnings
from pathlib import Path

from tqdm.auto import tqdm
from transformers import PrinterCallback, ProgressCallback, TrainerCallback

EVALUATION_LOG = "evaluations.csv"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class EvaluationConsole(TrainerCallback):
    """A ``label`` progress bar (unless disabled) and, per evaluation, one line and a row of ``evaluations.csv``."""

    def __init__(self, label: str, log_dir: str | Path, show_bar: bool = True):
        self.label, self.log_path, self.show_bar = label, Path(log_dir) / EVALUATION_LOG, show_bar
        self.bar = None
        self.started = time.time()
        self.best = None

    @classmethod
    def install(cls, trainer, label: str, log_dir: str | Path) -> "EvaluationConsole":
        """Replace ``trainer``'s dict printers with this console."""
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
        console = cls(label, log_dir, show_bar=not trainer.args.disable_tqdm)
        trainer.add_callback(console)
        return console

    def _print(self, line: str) -> None:
        (self.bar.write if self.bar is not None else print)(line)

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.time()
        if state.is_world_process_zero:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log_path.unlink(missing_ok=True)
            if self.show_bar:
                self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=f"finetuning {self.label}", unit="step")

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not state.is_world_process_zero or not metrics:
            return
        loss = metrics.get("eval_loss")
        improved = loss is not None and (self.best is None or loss < self.best)
        if improved:
            self.best = loss
        elapsed = time.time() - self.started
        remaining = elapsed / max(state.global_step, 1) * (state.max_steps - state.global_step)
        scores = ", ".join(f"{name.upper()} {metrics[f'eval_{name}']:.3f}" for name in ("nse", "kge") if f"eval_{name}" in metrics)
        self._print(
            f"[{self.label}] step {state.global_step}/{state.max_steps}: val loss {loss:.4f}{' (best)' if improved else ''}"
            f"{f', median {scores}' if scores else ''}; {_duration(elapsed)} elapsed, at most {_duration(remaining)} to go"
        )
        row = {"step": state.global_step, "seconds": round(elapsed, 1), **{k.removeprefix("eval_"): v for k, v in metrics.items()}}
        new = not self.log_path.exists()
        with open(self.log_path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if state.is_world_process_zero:
            stopped = "early stopping" if state.global_step < state.max_steps else "the step cap"
            best = f"best val loss {self.best:.4f}" if self.best is not None else "no evaluation"
            print(f"[{self.label}] stopped at step {state.global_step}/{state.max_steps} ({stopped}); {best}; {_duration(time.time() - self.started)}")


@contextlib.contextmanager
def quiet_library_output():
    """Hide what transformers prints inside PEFT/Trainer's own calls and a user cannot act on: its deprecation of
    ``is_gradient_checkpointing`` and a progress bar per weight load/save (dozens per run)."""
    from transformers.utils import logging as transformers_logging

    bars = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            yield
    finally:
        if bars:
            transformers_logging.enable_progress_bar()
