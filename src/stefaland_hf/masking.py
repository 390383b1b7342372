"""Cross-variable group masking (CVGM, paper App. A.2) as a data collator.

Dynamic variables: per sample and per masking unit (a dynamic group masked jointly in time, or a
single ungrouped variable; units sharing a derivation family such as the three temperatures merge),
spans of ``mask_window_min``..``mask_window_max`` days are drawn at uniform positions until their summed length reaches ``dynamic_mask_ratio * T`` (the last span is
trimmed; spans may overlap, so the realised share can be lower, as in the authors' code).
Static attributes: per sample, ``int(static_mask_ratio * E)`` of the E masking units (each static
group as a whole, then each ungrouped attribute) are chosen uniformly at random. Variables in
``never_mask_variables`` are never masked. NaN inputs need no mask here: the model always treats
them as masked and the loss always excludes them.

Everything is vectorized over samples and units. Masks come from a numpy Generator: the collator's
own seeded stream (whose state can be saved and restored), or one passed per call. The pretraining
loop passes ``np.random.default_rng([seed, epoch, micro_batch])`` and the process's ``shard`` of the
global batch, so masks depend neither on how the global batch is split over processes nor on what
ran before a resume.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .configuration_stefaland import StefaLandConfig
from .variables import DERIVED_DYNAMIC


def dynamic_masking_units(config: StefaLandConfig) -> list[list[int]]:
    """Dynamic masking units: each group, then each ungrouped variable; units that share a derivation family
    (``DERIVED_DYNAMIC``: temperature_mean = (max + min) / 2) merge, or the hidden one is an identity of the shown."""
    index = {name: i for i, name in enumerate(config.dynamic_variables)}
    never = set(config.never_mask_variables)
    grouped = {n for members in config.dynamic_groups.values() for n in members}
    units = [[index[n] for n in members if n not in never] for members in config.dynamic_groups.values()]
    units += [[index[n]] for n in config.dynamic_variables if n not in grouped and n not in never]
    units = [u for u in units if u]
    for derived, sources in DERIVED_DYNAMIC.items():
        if derived not in index:  # without the derived variable its sources are independent inputs
            continue
        family = {index[n] for n in (derived, *sources) if n in index}
        joined = [u for u in units if family & set(u)]
        if len(joined) > 1:
            units = [u for u in units if not family & set(u)] + [sorted({i for u in joined for i in u})]
    return units


def _unit_matrix(units: list[list[int]], num_variables: int) -> np.ndarray:
    """[U, V] 0/1 matrix mapping masking units to the variables they cover."""
    matrix = np.zeros((len(units), num_variables), dtype=np.float32)
    for u, members in enumerate(units):
        matrix[u, members] = 1.0
    return matrix


class CrossVariableGroupMasking:
    """Collator step that adds ``dynamic_mask`` [B, T, F] and ``static_mask`` [B, C] (bool tensors) to a batch."""

    def __init__(self, config: StefaLandConfig, seed: int = 0):
        self.ratio_dynamic = config.dynamic_mask_ratio
        self.ratio_static = config.static_mask_ratio
        self.window_min, self.window_max = config.mask_window_min, config.mask_window_max
        self.dynamic_units = _unit_matrix(dynamic_masking_units(config), len(config.dynamic_variables))
        static_index = {name: i for i, name in enumerate(config.static_variables)}
        static_units = [[static_index[n] for n in unit] for unit in config.masking_units()]
        self.static_units = _unit_matrix(static_units, len(config.static_variables))
        self.rng = np.random.default_rng(seed)

    # -- checkpointing (accelerate.register_for_checkpointing accepts objects with these two methods) --
    def state_dict(self) -> dict[str, Any]:
        return {"bit_generator": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["bit_generator"]

    # --------------------------------------------------------------------------------------------
    def dynamic_mask(self, batch: int, length: int, rng: np.random.Generator, rows: slice = slice(None)) -> np.ndarray:
        """[rows, T, F] masks of ``rows`` of a batch of ``batch`` samples: spans are drawn for all, masks built for ``rows``."""
        units = self.dynamic_units.shape[0]
        budget = int(length * self.ratio_dynamic)
        if units == 0 or budget == 0:
            return np.zeros((batch, length, self.dynamic_units.shape[1]), dtype=bool)[rows]
        low = min(self.window_min, length)
        high = min(self.window_max, length)
        max_spans = -(-budget // low) + 1
        lengths = rng.integers(low, high + 1, size=(batch, units, max_spans))
        before = np.cumsum(lengths, axis=-1) - lengths  # summed length of earlier spans
        lengths = np.clip(np.minimum(lengths, budget - before), 0, None)  # trim the last span, drop the rest
        starts = (rng.random((batch, units, max_spans)) * (length - lengths + 1)).astype(np.int64)
        lengths, starts = lengths[rows], starts[rows]
        coverage = np.zeros((*lengths.shape[:2], length + 1), dtype=np.int32)
        b, u, _ = np.indices(lengths.shape)
        np.add.at(coverage, (b, u, starts), (lengths > 0).astype(np.int32))
        np.add.at(coverage, (b, u, starts + lengths), -(lengths > 0).astype(np.int32))
        unit_masked = np.cumsum(coverage[..., :length], axis=-1) > 0  # [B, U, T]
        return np.einsum("but,uv->btv", unit_masked.astype(np.float32), self.dynamic_units) > 0

    def static_mask(self, batch: int, rng: np.random.Generator, rows: slice = slice(None)) -> np.ndarray:
        """[rows, C] masks of ``rows`` of a batch of ``batch`` samples."""
        units = self.static_units.shape[0]
        count = int(units * self.ratio_static)
        if units == 0 or count == 0:
            return np.zeros((batch, self.static_units.shape[1]), dtype=bool)[rows]
        order = np.argsort(rng.random((batch, units))[rows], axis=1)
        chosen = np.zeros(order.shape, dtype=np.float32)
        np.put_along_axis(chosen, order[:, :count], 1.0, axis=1)
        return chosen @ self.static_units > 0

    def __call__(
        self,
        batch: dict[str, torch.Tensor],
        rng: np.random.Generator | None = None,
        shard: tuple[int, int] = (0, 1),
    ) -> dict[str, torch.Tensor]:
        """Add the masks, on the device of ``batch["x_dynamic"]``.

        rng: the generator to draw from (default: this collator's own stream).
        shard: ``(index, count)``: ``batch`` is part ``index`` of ``count`` equal parts of one global batch
            (the process index and the number of processes). Masks are drawn for the whole global batch and
            this part's rows are kept, so a sample's mask depends on its position in the global batch only.
        """
        index, count = shard
        if not 0 <= index < count:
            raise ValueError(f"shard: expected (index, count) with 0 <= index < count, got {shard}")
        size, length = batch["x_dynamic"].shape[:2]
        rng = self.rng if rng is None else rng
        rows = slice(index * size, (index + 1) * size)
        device = batch["x_dynamic"].device
        dynamic = self.dynamic_mask(count * size, length, rng, rows)
        static = self.static_mask(count * size, rng, rows)
        batch["dynamic_mask"] = torch.from_numpy(dynamic).to(device)
        batch["static_mask"] = torch.from_numpy(static).to(device)
        return batch


__all__ = ["CrossVariableGroupMasking"]
