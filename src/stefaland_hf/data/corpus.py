"""A pretraining corpus: several site datasets read as one, in one canonical vocabulary.

Pretraining reads forcings and attributes only, so datasets with different variables, periods and
site counts (670 CAMELS basins 1980-2014, 412 SMAP pixels 2015-2017, SynthLand) can feed one
encoder. The corpus's variables are the union of the sources'; a variable a source lacks is NaN in
its windows, which the model treats as masked (the paper's mechanism). Three things are refused up
front, since each would train a model that looks fine and is wrong:

- an input variable that is a prediction target (``streamflow``, ``soil_moisture``) or one of a
  source's target variables: pretraining on it leaks the finetuning task;
- sources that declare different units for one variable;
- a source sharing no variable with the corpus vocabulary (nothing of it would be read).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from ..variables import TARGET, get_variable
from .normalization import Normalization, fit_pooled_normalization
from .samplers import WindowBatch, WindowDataset
from .site_arrays import SiteArrays

__all__ = ["CorpusSource", "PretrainingCorpus", "CorpusError"]


class CorpusError(ValueError):
    """A corpus that cannot be pretrained on as asked (target leakage, unit conflict, empty source)."""


@dataclass
class CorpusSource:
    """One dataset of a corpus: its training ``sites`` (rows; None = all) and ``period`` (None = all days).

    ``units`` declares units per variable where they are not the canonical ones of
    :mod:`stefaland_hf.variables` (the package's builders always convert to those).
    """

    name: str
    dataset: Any
    sites: Any = None
    period: Any = None
    units: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        self.arrays = SiteArrays.wrap(self.dataset)
        n = self.arrays.n_sites
        self.sites = np.arange(n, dtype=np.int64) if self.sites is None else np.asarray(self.sites, dtype=np.int64).ravel()
        if self.sites.size == 0:
            raise CorpusError(f"corpus source {self.name!r}: no sites")
        # a period off the record is named with its source here, not later by a window sampler that knows no source
        self.arrays.period_index(self.period, f"corpus source {self.name!r}: period")

    def unit(self, variable: str) -> str:
        return self.units.get(variable, get_variable(variable).unit)


def _union(lists: Sequence[Sequence[str]]) -> list[str]:
    out: list[str] = []
    for names in lists:
        out += [n for n in names if n not in out]
    return out


class PretrainingCorpus:
    """Sources read together: a pooled normalization and one window dataset over all of them."""

    def __init__(self, sources: Sequence[CorpusSource]):
        if not sources:
            raise CorpusError("a corpus needs at least one source")
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise CorpusError(f"corpus source names must be unique, got {names}")
        self.sources = list(sources)

    @property
    def dynamic_variables(self) -> list[str]:
        """The union of the sources' forcings (first-seen order)."""
        return _union([s.arrays.dynamic_variables for s in self.sources])

    @property
    def static_variables(self) -> list[str]:
        return _union([s.arrays.static_variables for s in self.sources])

    def check(self, dynamic_variables: Sequence[str], static_variables: Sequence[str]) -> None:
        """Refuse target leakage, unit conflicts and sources of which nothing would be read."""
        inputs = list(dynamic_variables) + list(static_variables)
        source_targets = {n for s in self.sources for n in s.arrays.target_variables}
        leaking = [n for n in inputs if get_variable(n).kind == TARGET or n in source_targets]
        if leaking:
            raise CorpusError(
                f"pretraining inputs {leaking} are prediction targets: a pretraining corpus reads forcings and "
                "attributes only (remove them from the model's variable lists)"
            )
        for variable in inputs:
            units = {s.name: s.unit(variable) for s in self.sources if variable in s.arrays.dynamic_variables + s.arrays.static_variables}
            if len(set(units.values())) > 1:
                raise CorpusError(f"variable {variable!r}: the corpus sources disagree on its unit ({units}); convert them to one")
        for s in self.sources:
            if not set(s.arrays.dynamic_variables + s.arrays.static_variables) & set(inputs):
                raise CorpusError(f"corpus source {s.name!r} has none of the model's variables; nothing of it would be read")

    def fit_normalization(self, dynamic_variables: Sequence[str], static_variables: Sequence[str]) -> Normalization:
        return fit_pooled_normalization(
            [(s.name, s.arrays, s.sites, s.period) for s in self.sources], dynamic_variables, static_variables
        )

    def windows(self, seq_len: int, stride: int, dynamic_variables: Sequence[str], static_variables: Sequence[str]) -> "CorpusWindows":
        return CorpusWindows(
            [
                WindowDataset(
                    s.arrays, sites=s.sites, period=s.period, seq_len=seq_len, stride=stride,
                    dynamic_variables=dynamic_variables, static_variables=static_variables, target_variables=[],
                )
                for s in self.sources
            ]
        )

    def describe(self) -> dict:
        """Sites, periods and variables per source (for the manifest and the model card)."""
        out = {}
        for s in self.sources:
            p0, p1 = s.arrays.period_index(s.period)
            out[s.name] = {
                "n_sites": int(len(s.sites)),
                "period": [str(s.arrays.dates[p0]), str(s.arrays.dates[p1 - 1])],
                "dynamic_variables": list(s.arrays.dynamic_variables),
                "static_variables": list(s.arrays.static_variables),
            }
        return out


class CorpusWindows(torch.utils.data.Dataset):
    """Windows of several :class:`WindowDataset` s as one index; a batch is gathered per source, vectorized.

    ``site_index`` in a batch is a row of that window's own source (pretraining does not use it).
    """

    def __init__(self, parts: Sequence[WindowDataset]):
        self.parts = list(parts)
        self.offsets = np.cumsum([0] + [len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return {k: v[0] for k, v in self.__getitems__([i]).arrays.items()}

    def __getitems__(self, indices: Sequence[int]) -> WindowBatch:
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"window index out of range for {len(self)} windows")
        part = np.searchsorted(self.offsets, idx, side="right") - 1
        pieces, order = [], []
        for p in np.unique(part):
            where = np.nonzero(part == p)[0]
            pieces.append(self.parts[p]._batch(idx[where] - self.offsets[p]))
            order.append(where)
        inverse = np.argsort(np.concatenate(order), kind="stable")  # back to the requested order
        return WindowBatch({k: np.concatenate([b[k] for b in pieces])[inverse] for k in pieces[0]})
