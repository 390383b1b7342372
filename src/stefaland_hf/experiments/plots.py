"""Figures for experiment reports: metric CDFs across sites and hydrographs of held-out sites."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: below this fraction of observed days, observations are drawn as points: a line joins only consecutive observed days
SPARSE_OBSERVATIONS = 0.5


def plot_observed(ax, dates, observed, label: str = "observed") -> int:
    """Draw ``observed`` (NaN = no observation) on ``ax`` and return on how many days there is one.

    A line hides every observation whose neighbours are both missing, so sparse series (fewer than
    :data:`SPARSE_OBSERVATIONS` of the days observed, e.g. a gauge with a few field measurements or SMAP's revisits) are
    drawn as points, and isolated days of a line as points on it.
    """
    observed = np.asarray(observed, dtype=float)
    finite = np.isfinite(observed)
    if finite.sum() < SPARSE_OBSERVATIONS * observed.size:
        ax.plot(dates, observed, linestyle="none", marker="o", markersize=2.5, color="black", label=label)
    else:
        ax.plot(dates, observed, color="black", lw=1.0, label=label)
        before, after = np.r_[False, finite[:-1]], np.r_[finite[1:], False]
        isolated = finite & ~before & ~after
        if isolated.any():
            ax.plot(np.asarray(dates)[isolated], observed[isolated], linestyle="none", marker="o", markersize=2.5, color="black")
    return int(finite.sum())


def plot_metric_cdf(per_model: dict[str, np.ndarray], path: Path, metric: str = "NSE", lower: float = -1.0) -> None:
    """Empirical CDF of a per-site metric for each model (the paper's Fig. style)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, values in per_model.items():
        values = np.asarray(values, dtype=float)  # None (an undefined metric, e.g. from results.json) -> NaN
        values = np.sort(values[np.isfinite(values)])
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


def plot_hydrographs(
    dates,
    observed: np.ndarray,
    simulated: dict[str, np.ndarray],
    site_ids,
    path: Path,
    n_sites: int = 4,
    window: tuple[str, str] | None = None,
    variable: str = "streamflow",
    units: str = "mm/day",
) -> list[str]:
    """Observed vs each model for ``n_sites`` held-out sites, chosen across the first model's NSE range.

    Panels show the sites at evenly spaced ranks of the first model's NSE (best to worst), so the
    figure is not a cherry-pick; each panel gives every model's NSE over the whole evaluation period.
    ``window`` (inclusive dates) limits the days drawn, else the whole period is shown; the title says which.
    Returns the ids of the sites drawn, top to bottom.
    """
    from ..metrics import site_metrics

    plt = _pyplot()
    dates = np.asarray(dates).astype("datetime64[D]")
    nse = {label: np.asarray(site_metrics(observed, values, metrics=("nse",))["nse"], dtype=float) for label, values in simulated.items()}
    first = next(iter(nse.values()))
    ranked = [i for i in np.argsort(-np.nan_to_num(first, nan=-np.inf)) if np.isfinite(first[i])]
    n = min(n_sites, len(ranked))
    if n == 0:
        raise ValueError(f"plot_hydrographs: no site has observations, so there is nothing to compare ({path})")
    chosen = [ranked[round(k * (len(ranked) - 1) / max(n - 1, 1))] for k in range(n)]
    shown = np.ones(len(dates), dtype=bool)
    if window is not None:
        shown = (dates >= np.datetime64(window[0], "D")) & (dates <= np.datetime64(window[1], "D"))
        if not shown.any():
            raise ValueError(f"plot_hydrographs: window {window} holds none of the dates {dates[0]}..{dates[-1]}")
    fig, axes = plt.subplots(n, 1, figsize=(11, 2.3 * n + 0.9), sharex=True, squeeze=False)
    for row, site in enumerate(chosen):
        ax = axes[row, 0]
        days = plot_observed(ax, dates[shown], observed[site, shown])
        for label, values in simulated.items():
            ax.plot(dates[shown], values[site, shown], lw=0.9, alpha=0.85, label=label)
        scores = " · ".join(f"{label} {nse[label][site]:.2f}" for label in simulated)
        ax.set_title(f"site {site_ids[site]}: NSE {scores}; observed on {days} of {int(shown.sum())} days shown", fontsize=8.5, loc="left")
        ax.set_ylabel(f"{variable}\n({units})", fontsize=8.5)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("date")
    span = f"{dates[shown][0]} to {dates[shown][-1]}" + ("" if window is None else f" (window of the evaluation period {dates[0]} to {dates[-1]})")
    fig.suptitle(f"Held-out sites at evenly spaced NSE ranks of {next(iter(simulated))}, {span}; NSE over the whole evaluation period", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 0.975))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [str(site_ids[site]) for site in chosen]
