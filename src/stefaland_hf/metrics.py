"""Hydrological evaluation metrics (plain numpy).

All metrics follow the StefaLand paper's convention (paper App. E, see
``stefaland_paper_spec.md`` §4 "Metric definitions"):

* each metric is computed **per site** (basin / station) using only the time
  steps where *both* the observation and the simulation are finite;
* per-site values are aggregated with the **median** over sites
  (:func:`summarize`), NaN sites being ignored;
* the "±" reported in the paper tables is the standard error across folds
  (:func:`standard_error`).

Scalar functions take 1-D arrays ``f(obs, sim) -> float`` (argument order is
*observations first*, like neuralhydrology / HydroErr). They return ``nan``
when fewer than two valid pairs remain, or when the metric is undefined
(zero variance of the observations for NSE, zero variance of either series for
the correlation and KGE, zero observed mean for KGE's β and PBIAS, ...).

:func:`site_metrics` is the vectorized version for ``[S, T]`` arrays and
returns ``{name: np.ndarray[S]}``. Its values equal the scalar functions
applied row by row (up to floating-point rounding).

Metric names understood by :func:`site_metrics`::

    nse, kge, rmse, ubrmse, pearson_r (alias: r, corr), bias, pbias, fhv, flv

:func:`load_evaluate_metric` returns the packaged ``evaluate`` wrapper
(``stefaland_hf/evaluate_metric/hydro_metrics.py``), loadable offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "nse",
    "kge",
    "rmse",
    "ubrmse",
    "pearson_r",
    "bias",
    "pbias",
    "fhv",
    "flv",
    "crps_ensemble",
    "crps_laplace",
    "interval_coverage",
    "interval_width",
    "probabilistic_site_metrics",
    "reliability",
    "site_metrics",
    "summarize",
    "standard_error",
    "METRICS",
    "DEFAULT_METRICS",
    "EVALUATE_METRIC_PATH",
    "load_evaluate_metric",
]

#: Minimum number of valid (obs, sim) pairs for a metric to be defined.
MIN_VALID = 2

#: Metrics reported in the paper's tables (Tables 1-4) + KGE.
DEFAULT_METRICS: tuple[str, ...] = ("nse", "kge", "rmse", "ubrmse", "pearson_r")

#: Path of the local ``evaluate`` module (usable with ``evaluate.load(path)`` offline).
EVALUATE_METRIC_PATH: Path = Path(__file__).resolve().parent / "evaluate_metric" / "hydro_metrics.py"


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _paired(obs, sim) -> tuple[np.ndarray, np.ndarray]:
    """Return the 1-D float64 arrays restricted to days where both are finite."""
    o = np.asarray(obs, dtype=np.float64)
    s = np.asarray(sim, dtype=np.float64)
    if o.shape != s.shape:
        raise ValueError(f"obs and sim must have the same shape, got {o.shape} and {s.shape}")
    o = o.ravel()
    s = s.ravel()
    mask = np.isfinite(o) & np.isfinite(s)
    return o[mask], s[mask]


def _enough(o: np.ndarray) -> bool:
    return o.size >= MIN_VALID


def _constant(values: np.ndarray) -> bool:
    """All values equal: zero variance, decided exactly (``Σ(x - mean(x))²`` of a constant series is often 1e-31,
    not 0, because ``mean`` rounds)."""
    return bool(values.max() == values.min())


# ---------------------------------------------------------------------------
# scalar metrics
def crps_ensemble(obs, samples, fair: bool = False) -> float:
    """Mean continuous ranked probability score of an ensemble over the observed days, in the observations' units.

    ``obs`` [T], ``samples`` [T, N] (N members per day; N = 1 gives the absolute error of a point forecast, so point
    and probabilistic models sit in one table). Per day the empirical distribution's exact CRPS,
    ``E|X - y| - E|X - X'| / 2``, computed from the sorted members in O(N log N). NaN members and days without an
    observation are left out; NaN when no day remains.

    ``fair``: members drawn at random from a forecast distribution (MC dropout passes) estimate that distribution's
    CRPS without the small-ensemble penalty when the spread term uses the N - 1 other members (``E|X - X'|`` times
    N / (N - 1); Ferro 2014). Quantiles at the levels (2i - 1) / 2N are no random draw: their plain CRPS equals the
    mean pinball loss ``2 / N sum_i rho_(2i-1)/2N(y - x_(i))``, the CRPS of the distribution quantized on them.
    """
    o = np.asarray(obs, dtype=np.float64)
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.shape[0] != o.shape[0]:
        raise ValueError(f"crps_ensemble: obs has {o.shape[0]} days, samples {x.shape[0]}")
    keep = np.isfinite(o) & np.isfinite(x).all(axis=1)
    if not keep.any():
        return float("nan")
    o, x = o[keep], np.sort(x[keep], axis=1)
    n = x.shape[1]
    spread_to_obs = np.abs(x - o[:, None]).mean(axis=1)
    # E|X - X'| over ordered pairs = 2 / n^2 * sum_i (2i - n - 1) x_(i), i = 1..n
    weights = 2.0 * np.arange(1, n + 1) - n - 1
    spread = 2.0 * (x * weights).sum(axis=1) / n**2
    if fair and n > 1:
        spread = spread * n / (n - 1)
    return float(np.mean(spread_to_obs - 0.5 * spread))


def crps_laplace(obs, loc, scale) -> float:
    """Mean CRPS of Laplace forecasts (location ``loc``, scale ``scale`` > 0, per day) over the observed days:
    the closed form ``b (|z| + exp(-|z|) - 3/4)``, ``z = (y - mu) / b``."""
    o, mu, b = (np.asarray(a, dtype=np.float64) for a in (obs, loc, scale))
    o, mu, b = np.broadcast_arrays(o, mu, b)
    keep = np.isfinite(o) & np.isfinite(mu) & np.isfinite(b)
    if np.any(b[keep] <= 0):
        raise ValueError("crps_laplace: scale must be positive")
    if not keep.any():
        return float("nan")
    z = np.abs(o[keep] - mu[keep]) / b[keep]
    return float(np.mean(b[keep] * (z + np.exp(-z) - 0.75)))


def interval_coverage(obs, lower, upper) -> float:
    """Fraction of the observed days whose observation lies in ``[lower, upper]`` (a central interval's reliability:
    a calibrated 90 % interval covers 0.9)."""
    o, lo, hi = (np.asarray(a, dtype=np.float64) for a in (obs, lower, upper))
    keep = np.isfinite(o) & np.isfinite(lo) & np.isfinite(hi)
    if np.any(lo[keep] > hi[keep]):
        raise ValueError("interval_coverage: a lower bound exceeds its upper bound")
    if not keep.any():
        return float("nan")
    return float(np.mean((o[keep] >= lo[keep]) & (o[keep] <= hi[keep])))


def interval_width(obs, lower, upper) -> float:
    """Mean width ``upper - lower`` of an interval over the observed days (those :func:`interval_coverage` counts),
    in the observations' units: of two intervals that cover as often, the narrower is sharper."""
    o, lo, hi = (np.asarray(a, dtype=np.float64) for a in (obs, lower, upper))
    keep = np.isfinite(o) & np.isfinite(lo) & np.isfinite(hi)
    if np.any(lo[keep] > hi[keep]):
        raise ValueError("interval_width: a lower bound exceeds its upper bound")
    return float(np.mean(hi[keep] - lo[keep])) if keep.any() else float("nan")


#: the central intervals the probabilistic metrics score: nominal coverage in percent -> (lower, upper) quantile level
CENTRAL_INTERVALS = {50: (0.25, 0.75), 90: (0.05, 0.95)}


def probabilistic_site_metrics(obs, members, intervals=None, fair: bool = False) -> dict[str, np.ndarray]:
    """Per site of ``[S, T]`` observations: ``crps`` of ``members`` [S, T, N] (:func:`crps_ensemble`; N = 1, a point
    prediction: the mean absolute error), and for each central interval of :data:`CENTRAL_INTERVALS` its
    ``coverage_<p>`` (:func:`interval_coverage`) and ``width_<p>`` (:func:`interval_width`) from ``intervals``
    ``{p: (lower [S, T], upper [S, T])}``; NaN where ``intervals`` lacks one (a point prediction has none)."""
    o = np.asarray(obs, dtype=np.float64)
    x = np.asarray(members, dtype=np.float64)
    if x.ndim == o.ndim:
        x = x[..., None]
    if o.ndim != 2 or x.shape[:2] != o.shape:
        raise ValueError(f"probabilistic_site_metrics: expected obs [S, T] and members [S, T, N], got {o.shape} and {x.shape}")
    intervals = intervals or {}
    out = {"crps": np.array([crps_ensemble(o[i], x[i], fair=fair) for i in range(o.shape[0])])}
    for percent in CENTRAL_INTERVALS:
        if percent in intervals:
            lower, upper = (np.asarray(b, dtype=np.float64) for b in intervals[percent])
            out[f"coverage_{percent}"] = np.array([interval_coverage(o[i], lower[i], upper[i]) for i in range(o.shape[0])])
            out[f"width_{percent}"] = np.array([interval_width(o[i], lower[i], upper[i]) for i in range(o.shape[0])])
        else:
            out[f"coverage_{percent}"] = out[f"width_{percent}"] = np.full(o.shape[0], np.nan)
    return out


def reliability(obs, quantiles) -> tuple[np.ndarray, int]:
    """Per quantile level: the fraction of observed days at or below the predicted quantile, pooled over sites and days
    (a calibrated forecast's fraction equals the level; the reliability diagram plots one against the other), and the
    number of days counted. ``obs`` [...], ``quantiles`` [..., L]; days with a NaN anywhere are left out."""
    o = np.asarray(obs, dtype=np.float64)
    q = np.asarray(quantiles, dtype=np.float64)
    if q.shape[:-1] != o.shape:
        raise ValueError(f"reliability: expected quantiles [..., L] over obs {o.shape}, got {q.shape}")
    keep = np.isfinite(o) & np.isfinite(q).all(axis=-1)
    if not keep.any():
        return np.full(q.shape[-1], np.nan), 0
    return (o[keep][:, None] <= q[keep]).mean(axis=0), int(keep.sum())


# ---------------------------------------------------------------------------
def nse(obs, sim) -> float:
    """Nash-Sutcliffe efficiency ``1 - Σ(sim-obs)² / Σ(obs-mean(obs))²``.

    NaN if the observations have zero variance. Equals the ``r2`` of the
    paper's reference code (``self.nse = self.r2``).
    """
    o, s = _paired(obs, sim)
    if not _enough(o) or _constant(o):
        return float("nan")
    return float(1.0 - np.sum((s - o) ** 2) / np.sum((o - o.mean()) ** 2))


def pearson_r(obs, sim) -> float:
    """Pearson correlation coefficient; NaN if either series has zero variance."""
    o, s = _paired(obs, sim)
    if not _enough(o) or _constant(o) or _constant(s):
        return float("nan")
    do = o - o.mean()
    ds = s - s.mean()
    return float(np.sum(do * ds) / np.sqrt(np.sum(do**2) * np.sum(ds**2)))


def kge(obs, sim) -> float:
    """Kling-Gupta efficiency, 2009 form (Gupta et al., 2009).

    ``KGE = 1 - sqrt((r-1)² + (α-1)² + (β-1)²)`` with ``r`` the Pearson
    correlation, ``α = σ_sim/σ_obs`` (population std) and ``β = μ_sim/μ_obs``.
    NaN if ``r`` is undefined (zero variance) or ``μ_obs == 0``.
    """
    o, s = _paired(obs, sim)
    if not _enough(o):
        return float("nan")
    r = pearson_r(o, s)  # NaN for a constant series
    mo = o.mean()
    if not np.isfinite(r) or mo == 0:
        return float("nan")
    alpha = s.std() / o.std()
    beta = s.mean() / mo
    return float(1.0 - np.sqrt((r - 1.0) ** 2 + (alpha - 1.0) ** 2 + (beta - 1.0) ** 2))


def rmse(obs, sim) -> float:
    """Root mean squared error ``sqrt(mean((sim-obs)²))``."""
    o, s = _paired(obs, sim)
    if not _enough(o):
        return float("nan")
    return float(np.sqrt(np.mean((s - o) ** 2)))


def ubrmse(obs, sim) -> float:
    """Unbiased RMSE: RMSE of the anomalies of each series about its own mean.

    ``sqrt(mean(((sim - mean(sim)) - (obs - mean(obs)))²))``, both means taken
    over the shared valid days. Equivalently ``sqrt(RMSE² - bias²)``.
    """
    o, s = _paired(obs, sim)
    if not _enough(o):
        return float("nan")
    return float(np.sqrt(np.mean(((s - s.mean()) - (o - o.mean())) ** 2)))


def bias(obs, sim) -> float:
    """Mean error ``mean(sim - obs)`` (positive = overestimation), in data units."""
    o, s = _paired(obs, sim)
    if not _enough(o):
        return float("nan")
    return float(np.mean(s - o))


def pbias(obs, sim) -> float:
    """Percent bias ``100 * Σ(sim - obs) / Σ obs`` (positive = overestimation).

    NaN if ``Σ obs == 0``. Same sign as :func:`bias`; note that some packages
    (e.g. hydroeval) define PBIAS with the opposite sign ``Σ(obs - sim)``.
    """
    o, s = _paired(obs, sim)
    if not _enough(o):
        return float("nan")
    so = np.sum(o)
    if so == 0:
        return float("nan")
    return float(100.0 * np.sum(s - o) / so)


def fhv(obs, sim, h: float = 0.02) -> float:
    """Percent bias of the high-flow segment of the flow duration curve (FHV).

    Yilmaz et al. (2008), as implemented in neuralhydrology ``fdc_fhv``:
    both series (restricted to shared valid days) are sorted independently in
    descending order (their FDCs), the top ``round(h * n)`` values are kept
    (``np.round``, i.e. round-half-to-even) and
    ``FHV = 100 * Σ(sim_top - obs_top) / Σ obs_top``.

    NaN if fewer than one value falls in the segment or ``Σ obs_top == 0``.
    """
    if not 0 < h < 1:
        raise ValueError("h must be in (0, 1)")
    o, s = _paired(obs, sim)
    if not _enough(o):
        return float("nan")
    k = int(np.round(h * o.size))
    if k < 1:
        return float("nan")
    o_top = -np.sort(-o)[:k]
    s_top = -np.sort(-s)[:k]
    den = np.sum(o_top)
    if den == 0:
        return float("nan")
    return float(100.0 * np.sum(s_top - o_top) / den)


#: Value substituted for non-positive flows before taking logs in :func:`flv`.
FLV_EPS = 1e-6


def flv(obs, sim, l: float = 0.3) -> float:  # noqa: E741 (name from Yilmaz 2008)
    """Percent bias of the low-flow segment of the FDC in log space (FLV).

    Yilmaz et al. (2008), as implemented in neuralhydrology ``fdc_flv``:

    1. **zeros**: values ``<= 0`` are replaced by ``FLV_EPS = 1e-6`` in both
       series before the log (neuralhydrology does this for ``sim <= 0`` and
       ``obs == 0``; we also clip negative observations instead of producing
       NaN);
    2. both series are sorted in descending order and their last ``round(l * n)``
       values are kept (``np.round``, half to even: n = 5, l = 0.3 keeps 2, where
       ``[round((1 - l) * n):]`` would keep 1 or 2 depending on float rounding);
    3. with ``QSL = Σ(log sim - min log sim)`` and
       ``QOL = Σ(log obs - min log obs)`` over that segment,
       ``FLV = -100 * (QSL - QOL) / (QOL + 1e-6)``.

    The ``+1e-6`` in the denominator is kept for parity with neuralhydrology;
    when all low observed flows are equal (``QOL == 0``) the value is therefore
    huge rather than NaN. NaN if the segment has fewer than one value (neuralhydrology's
    ``array[-0:]`` would then silently use the whole curve).
    """
    if not 0 < l < 1:
        raise ValueError("l must be in (0, 1)")
    o, s = _paired(obs, sim)
    if not _enough(o):
        return float("nan")
    k = int(np.round(l * o.size))
    if k < 1:
        return float("nan")
    start = o.size - k
    o = np.where(o <= 0, FLV_EPS, o)
    s = np.where(s <= 0, FLV_EPS, s)
    o_low = np.log(-np.sort(-o)[start:])
    s_low = np.log(-np.sort(-s)[start:])
    qsl = np.sum(s_low - s_low.min())
    qol = np.sum(o_low - o_low.min())
    return float(-100.0 * (qsl - qol) / (qol + 1e-6))


#: name -> scalar function
METRICS: dict[str, Callable[..., float]] = {
    "nse": nse,
    "kge": kge,
    "rmse": rmse,
    "ubrmse": ubrmse,
    "pearson_r": pearson_r,
    "bias": bias,
    "pbias": pbias,
    "fhv": fhv,
    "flv": flv,
}
_ALIASES = {"r": "pearson_r", "corr": "pearson_r", "r2": "nse"}


def _canonical(name: str) -> str:
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key not in METRICS:
        raise KeyError(f"unknown metric {name!r}; known: {sorted(METRICS) + sorted(_ALIASES)}")
    return key


# ---------------------------------------------------------------------------
# vectorized per-site metrics
# ---------------------------------------------------------------------------
def site_metrics(obs, sim, metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, np.ndarray]:
    """Per-site metrics for arrays of shape ``[S, T]`` (sites x time).

    Returns ``{name: array[S]}`` with the names as given in ``metrics``
    (aliases ``r``/``corr`` are accepted for ``pearson_r``). nse/kge/rmse/
    ubrmse/pearson_r/bias/pbias are fully vectorized with NaN-masking;
    fhv/flv loop over sites (they sort each site's series). A 1-D input is
    treated as a single site.
    """
    o = np.asarray(obs, dtype=np.float64)
    s = np.asarray(sim, dtype=np.float64)
    if o.shape != s.shape:
        raise ValueError(f"obs and sim must have the same shape, got {o.shape} and {s.shape}")
    if o.ndim == 1:
        o, s = o[None, :], s[None, :]
    if o.ndim != 2:
        raise ValueError(f"expected [S, T] arrays, got shape {o.shape}")

    mask = np.isfinite(o) & np.isfinite(s)
    n = mask.sum(axis=1).astype(np.float64)
    enough = n >= MIN_VALID
    nan = np.full(o.shape[0], np.nan)
    out: dict[str, np.ndarray] = {}

    with np.errstate(divide="ignore", invalid="ignore"):
        o0 = np.where(mask, o, 0.0)
        s0 = np.where(mask, s, 0.0)
        nn = np.where(n > 0, n, 1.0)
        mo = o0.sum(axis=1) / nn
        ms = s0.sum(axis=1) / nn
        do = np.where(mask, o - mo[:, None], 0.0)
        ds = np.where(mask, s - ms[:, None], 0.0)
        err = s0 - o0
        sse = np.sum(err**2, axis=1)
        sst = np.sum(do**2, axis=1)
        sss = np.sum(ds**2, axis=1)
        cov = np.sum(do * ds, axis=1)
        # zero variance decided exactly from the range (a constant series' sum of squares is often 1e-31, not 0)
        varies_o = np.where(mask, o, -np.inf).max(axis=1) > np.where(mask, o, np.inf).min(axis=1)
        varies_s = np.where(mask, s, -np.inf).max(axis=1) > np.where(mask, s, np.inf).min(axis=1)
        den_r = np.sqrt(sst * sss)
        r = np.where(enough & varies_o & varies_s, cov / np.where(den_r > 0, den_r, 1.0), np.nan)

        for name in metrics:
            key = _canonical(name)
            if key == "nse":
                val = np.where(enough & varies_o, 1.0 - sse / np.where(sst > 0, sst, 1.0), np.nan)
            elif key == "pearson_r":
                val = r
            elif key == "kge":
                alpha = np.sqrt(sss / np.where(sst > 0, sst, 1.0))
                beta = ms / np.where(mo != 0, mo, 1.0)
                k = 1.0 - np.sqrt((r - 1.0) ** 2 + (alpha - 1.0) ** 2 + (beta - 1.0) ** 2)
                val = np.where(enough & np.isfinite(r) & (mo != 0), k, np.nan)
            elif key == "rmse":
                val = np.where(enough, np.sqrt(sse / nn), np.nan)
            elif key == "ubrmse":
                val = np.where(enough, np.sqrt(np.sum((ds - do) ** 2, axis=1) / nn), np.nan)
            elif key == "bias":
                val = np.where(enough, err.sum(axis=1) / nn, np.nan)
            elif key == "pbias":
                so = o0.sum(axis=1)
                val = np.where(enough & (so != 0), 100.0 * err.sum(axis=1) / np.where(so != 0, so, 1.0), np.nan)
            else:  # fhv / flv: sorting per site
                fn = METRICS[key]
                val = nan.copy()
                for i in range(o.shape[0]):
                    val[i] = fn(o[i], s[i])
            out[name] = np.asarray(val, dtype=np.float64)
    return out


def summarize(per_site: Mapping[str, Iterable[float]]) -> dict[str, float]:
    """Median over sites of each metric, ignoring NaN (NaN if all are NaN)."""
    res: dict[str, float] = {}
    for name, values in per_site.items():
        v = np.asarray(values, dtype=np.float64).ravel()
        v = v[np.isfinite(v)]
        res[name] = float(np.median(v)) if v.size else float("nan")
    return res


def standard_error(values_per_fold: Iterable[float]) -> float:
    """Standard error of the mean across folds: ``std(ddof=1) / sqrt(k)``.

    Non-finite fold values are dropped; NaN if fewer than two remain. This is
    the "±" of the paper's tables.
    """
    v = np.asarray(list(values_per_fold), dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size < 2:
        return float("nan")
    return float(np.std(v, ddof=1) / np.sqrt(v.size))


def load_evaluate_metric(**kwargs):
    """``evaluate.load`` the packaged local ``hydro_metrics`` module (works offline).

    Extra keyword arguments are forwarded to :func:`evaluate.load`.
    """
    import evaluate

    return evaluate.load(str(EVALUATE_METRIC_PATH), **kwargs)
