"""Per-variable normalization statistics, fitted on the training split only.

:func:`fit_normalization` computes nan-aware mean and (population, ``ddof=0``) standard
deviation per variable over the **training sites and training period only**: dynamic inputs and
targets over all (site, day) pairs, static attributes over the training sites. It streams
``site_chunk`` sites at a time from the zero-copy views of :class:`~stefaland_hf.data.site_arrays.SiteArrays`,
accumulating counts, sums and sums of squares in float64 around a per-variable shift (the first
chunk's mean) for numerical stability, so memory stays bounded by one chunk. This equals
``np.nanmean``/``np.nanstd`` over axes (site, day) of the training subset (the paper's recipe).

Guards:

- std floor: ``std = max(std, 1e-3 * |mean| + 1e-6)``, so nearly constant variables do not blow up
  after z-scoring; the floor is relative to the variable's magnitude and only bites when the spread is
  below 0.1% of it.
- a variable that is exactly constant on the training split (a fraction that is 0 at every training
  site) gets ``std = |mean|``, or 1 when the mean is 0, and a ``UserWarning``: the floor alone would
  turn a held-out site's 0.5 into a z-score of 500,000. Training values z-score to 0 either way.
- a variable with no finite value on the training split (absent from the dataset, or all NaN)
  gets ``mean = 0, std = 1`` and a ``UserWarning``; it stays NaN in the data and the model
  treats it as masked.

The result travels with the weights, and this object is the one place that says which statistics go where:
:meth:`Normalization.input_statistics` gives the backbone's ``StefaLandConfig`` fields (``dynamic_mean, dynamic_std,
static_mean, static_std``) and :meth:`Normalization.target_statistics` a task head's (``target_variables,
target_mean, target_std``). Every training path (pretraining, finetuning, static regression) writes them into the
model config through these two methods, and saves the whole object as ``normalization.json`` beside the weights.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from .splits import _period_to_json
from .site_arrays import SiteArrays

__all__ = ["Normalization", "fit_normalization", "fit_pooled_normalization", "STD_FLOOR_RELATIVE", "STD_FLOOR_ABSOLUTE"]

STD_FLOOR_RELATIVE = 1e-3
STD_FLOOR_ABSOLUTE = 1e-6

_KINDS = ("dynamic", "static", "target")
INPUT_FIELDS = ("dynamic_mean", "dynamic_std", "static_mean", "static_std")
TARGET_FIELDS = ("target_mean", "target_std")


@dataclass
class Normalization:
    """Per-variable mean/std for the dynamic inputs, static attributes and targets.

    ``*_count`` is the number of finite values each statistic was computed from; ``fitted_on``
    records the training sites count and period (JSON-friendly).
    """

    dynamic_variables: list[str]
    dynamic_mean: list[float]
    dynamic_std: list[float]
    static_variables: list[str]
    static_mean: list[float]
    static_std: list[float]
    target_variables: list[str]
    target_mean: list[float]
    target_std: list[float]
    dynamic_count: list[int] = field(default_factory=list)
    static_count: list[int] = field(default_factory=list)
    target_count: list[int] = field(default_factory=list)
    fitted_on: dict = field(default_factory=dict)

    def __post_init__(self):
        for kind in _KINDS:
            names = list(getattr(self, f"{kind}_variables"))
            setattr(self, f"{kind}_variables", names)
            for stat in ("mean", "std"):
                vals = [float(v) for v in getattr(self, f"{kind}_{stat}")]
                if len(vals) != len(names):
                    raise ValueError(f"Normalization: {len(vals)} {kind}_{stat} values for {len(names)} {kind} variables")
                setattr(self, f"{kind}_{stat}", vals)
            if any(s <= 0 or not np.isfinite(s) for s in getattr(self, f"{kind}_std")):
                raise ValueError(f"Normalization: {kind}_std must be finite and positive")

    def input_statistics(self) -> dict[str, list[float]]:
        """The input statistics as ``StefaLandConfig`` fields: what a backbone normalizes its inputs with."""
        return {field: list(getattr(self, field)) for field in INPUT_FIELDS}

    def target_statistics(self) -> dict[str, list]:
        """The targets and their statistics as ``StefaLandConfig``/``ResConnConfig`` fields: what a task head
        predicts and denormalizes with."""
        return {"target_variables": list(self.target_variables), **{field: list(getattr(self, field)) for field in TARGET_FIELDS}}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Normalization":
        return cls(**d)

    def _stats(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        return (
            np.asarray(getattr(self, f"{kind}_mean"), dtype=np.float32),
            np.asarray(getattr(self, f"{kind}_std"), dtype=np.float32),
        )

    def normalize(self, kind: str, values: np.ndarray) -> np.ndarray:
        """``(values - mean) / std`` over the last axis (NaN stays NaN)."""
        mean, std = self._stats(kind)
        return ((np.asarray(values, dtype=np.float32) - mean) / std).astype(np.float32)

    def denormalize(self, kind: str, values: np.ndarray) -> np.ndarray:
        mean, std = self._stats(kind)
        return (np.asarray(values, dtype=np.float32) * std + mean).astype(np.float32)


class _Moments:
    """Streaming nan-aware count / shifted sum / shifted sum of squares per variable (float64)."""

    def __init__(self, n: int):
        self.count = np.zeros(n, dtype=np.int64)
        self.s1 = np.zeros(n, dtype=np.float64)
        self.s2 = np.zeros(n, dtype=np.float64)
        self.low = np.full(n, np.inf)
        self.high = np.full(n, -np.inf)
        self.shift: np.ndarray | None = None

    def update(self, values: np.ndarray) -> None:
        if values.shape[-1] == 0:  # no variables of this kind requested (e.g. no targets in pretraining)
            return
        x = values.reshape(-1, values.shape[-1]).astype(np.float64)
        finite = np.isfinite(x)
        if len(x):
            self.low = np.fmin(self.low, np.where(finite, x, np.inf).min(0))
            self.high = np.fmax(self.high, np.where(finite, x, -np.inf).max(0))
        if self.shift is None:
            cnt = finite.sum(0)
            with np.errstate(invalid="ignore", divide="ignore"):
                first_mean = np.where(finite, x, 0.0).sum(0) / cnt
            self.shift = np.where(cnt > 0, first_mean, 0.0)
        x -= self.shift
        x[~finite] = 0.0
        self.count += finite.sum(0)
        self.s1 += x.sum(0)
        self.s2 += np.einsum("ij,ij->j", x, x)

    def finish(self, names: Sequence[str], kind: str) -> tuple[list[float], list[float], list[int]]:
        n = len(names)
        shift = np.zeros(n) if self.shift is None else self.shift
        mean = np.zeros(n)
        std = np.ones(n)
        empty, constant = [], []
        for j in range(n):
            c = int(self.count[j])
            if c == 0:
                empty.append(names[j])
                continue
            m1 = self.s1[j] / c
            var = max(self.s2[j] / c - m1 * m1, 0.0)
            mean[j] = shift[j] + m1
            if self.low[j] == self.high[j]:
                constant.append(names[j])
                std[j] = abs(mean[j]) or 1.0
                continue
            floor = STD_FLOOR_RELATIVE * abs(mean[j]) + STD_FLOOR_ABSOLUTE
            std[j] = max(np.sqrt(var), floor)
        if constant:
            warnings.warn(
                f"fit_normalization: {kind} variables constant on the training split get std = |mean| (1 if the mean "
                f"is 0), so that other values at held-out sites stay moderate: {constant}",
                UserWarning,
                stacklevel=4,
            )
        if empty:
            warnings.warn(
                f"fit_normalization: {kind} variables without any finite value on the training split "
                f"(absent or all NaN) get mean 0, std 1: {empty}",
                UserWarning,
                stacklevel=4,
            )
        return mean.tolist(), std.tolist(), [int(c) for c in self.count]


def _accumulate(a: SiteArrays, sites: np.ndarray, period, names: dict, moments: dict, site_chunk: int) -> tuple[int, int]:
    """Add one source's training sites x period to ``moments``; returns the period's index range."""
    if sites.size == 0:
        raise ValueError("fit_normalization: no training sites")
    if sites.min() < 0 or sites.max() >= a.n_sites:
        raise IndexError(f"fit_normalization: site index out of range for {a.n_sites} sites")
    p0, p1 = a.period_index(period)
    dcols, tcols = a.column_map("dynamic", names["dynamic"]), a.column_map("target", names["target"])
    # a chunk holds site_chunk * P * F float64 values at most (e.g. 64 * 3650 * 16 * 8 B = 30 MB)
    for c0 in range(0, len(sites), site_chunk):
        chunk = sites[c0 : c0 + site_chunk]
        zeros = np.full(len(chunk), p0, dtype=np.int64)
        moments["dynamic"].update(a.gather_dynamic(chunk, zeros, p1 - p0, dcols))
        moments["target"].update(a.gather_targets(chunk, zeros, p1 - p0, tcols))
    moments["static"].update(a.static_matrix(names["static"])[sites])
    return p0, p1


def _finish(names: dict, moments: dict, fitted_on: dict) -> Normalization:
    stats = {}
    for kind in _KINDS:
        mean, std, count = moments[kind].finish(names[kind], kind)
        stats.update({f"{kind}_variables": names[kind], f"{kind}_mean": mean, f"{kind}_std": std, f"{kind}_count": count})
    return Normalization(**stats, fitted_on=fitted_on)


def fit_normalization(
    data,
    sites: Sequence[int] | np.ndarray | None = None,
    period: Any = None,
    dynamic_variables: Sequence[str] | None = None,
    static_variables: Sequence[str] | None = None,
    target_variables: Sequence[str] | None = None,
    site_chunk: int = 64,
) -> Normalization:
    """Fit per-variable mean/std on the training ``sites`` (dataset rows) and ``period``.

    ``data`` is a site ``datasets.Dataset`` or a :class:`~stefaland_hf.data.site_arrays.SiteArrays`;
    ``period`` is a date/index period (see :mod:`stefaland_hf.data.splits`); variable lists are the
    model's canonical names (``None`` = the dataset's own). Variables the dataset lacks get mean 0,
    std 1 with a warning. Nothing outside the training sites and period is read.
    """
    a = SiteArrays.wrap(data)
    sites = np.arange(a.n_sites, dtype=np.int64) if sites is None else np.asarray(sites, dtype=np.int64).ravel()
    names = {
        "dynamic": list(a.dynamic_variables if dynamic_variables is None else dynamic_variables),
        "static": list(a.static_variables if static_variables is None else static_variables),
        "target": list(a.target_variables if target_variables is None else target_variables),
    }
    moments = {kind: _Moments(len(names[kind])) for kind in _KINDS}
    p0, p1 = _accumulate(a, sites, period, names, moments, site_chunk)
    fitted_on = {
        "n_sites": int(len(sites)),
        "period": _period_to_json((str(a.dates[p0]), str(a.dates[p1 - 1]))) if p1 > p0 else None,
        "n_days": int(p1 - p0),
    }
    return _finish(names, moments, fitted_on)


def fit_pooled_normalization(
    sources: Sequence[tuple[str, Any, Any, Any]],
    dynamic_variables: Sequence[str],
    static_variables: Sequence[str],
    site_chunk: int = 64,
) -> Normalization:
    """One mean/std per variable over several datasets together: ``sources`` are ``(name, data, sites, period)``.

    Every (site, day) of every source counts once, as if the sources were one dataset; a variable
    a source lacks contributes nothing from it. No targets are fitted (pretraining reads none).
    """
    names = {"dynamic": list(dynamic_variables), "static": list(static_variables), "target": []}
    moments = {kind: _Moments(len(names[kind])) for kind in _KINDS}
    fitted_on = {"sources": {}}
    for name, data, sites, period in sources:
        a = SiteArrays.wrap(data)
        sites = np.arange(a.n_sites, dtype=np.int64) if sites is None else np.asarray(sites, dtype=np.int64).ravel()
        p0, p1 = _accumulate(a, sites, period, names, moments, site_chunk)
        fitted_on["sources"][name] = {
            "n_sites": int(len(sites)),
            "period": _period_to_json((str(a.dates[p0]), str(a.dates[p1 - 1]))),
            "n_days": int(p1 - p0),
        }
    fitted_on["n_sites"] = sum(s["n_sites"] for s in fitted_on["sources"].values())
    return _finish(names, moments, fitted_on)
