"""Loss curves as CSV + PNG (written at every checkpoint, so an interrupted run keeps its log)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def write_loss_curve(history: list[dict], path_stem: Path) -> None:
    """Write ``<stem>.csv`` and ``<stem>.png`` from a list of per-step records with a ``loss`` key."""
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.DataFrame(history)
    path_stem = Path(path_stem)
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path_stem.with_suffix(".csv"), index=False)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for column in [c for c in frame.columns if c.endswith("loss")]:
        ax.plot(frame["step"], frame[column], label=column, lw=1)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("masked MSE (z-scores)")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path_stem.with_suffix(".png"), dpi=110)
    plt.close(fig)
