"""Figures for experiment reports: metric CDFs across sites and hydrographs of a few sites."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_metric_cdf(per_model: dict[str, np.ndarray], path: Path, metric: str = "NSE", lower: float = -1.0) -> None:
    """Empirical CDF of a per-site metric for each model (the paper's Fig. style)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, values in per_model.items():
        values = np.sort(np.asarray(values, dtype=float)[np.isfinite(values)])
        if values.size:
            ax.step(np.clip(values, lower, None), np.arange(1, values.size + 1) / values.size, where="post", label=f"{label} (median {np.median(values):.3f})")
    ax.set_xlabel(f"{metric} (clipped at {lower})")
    ax.set_ylabel("fraction of held-out sites")
    ax.set_xlim(lower, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_hydrographs(dates, observed: np.ndarray, simulated: dict[str, np.ndarray], site_ids, path: Path, n_sites: int = 4, days: int = 730) -> None:
    """Observed vs simulated series for the first ``n_sites`` held-out sites (last ``days`` days)."""
    plt = _pyplot()
    n = min(n_sites, observed.shape[0])
    fig, axes = plt.subplots(n, 1, figsize=(9, 2.2 * n), sharex=True, squeeze=False)
    window = slice(max(0, observed.shape[1] - days), observed.shape[1])
    for i in range(n):
        ax = axes[i, 0]
        ax.plot(dates[window], observed[i, window], color="black", lw=1.0, label="observed")
        for label, values in simulated.items():
            ax.plot(dates[window], values[i, window], lw=0.9, label=label)
        ax.set_ylabel("mm/day")
        ax.set_title(f"site {site_ids[i]}", fontsize=9, loc="left")
    axes[0, 0].legend(fontsize=7, ncol=len(simulated) + 1, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
