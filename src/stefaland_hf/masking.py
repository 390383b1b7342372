"""Cross-variable group masking (CVGM, paper App. A.2) as a data collator.

Dynamic variables: per sample and per masking unit (a dynamic group masked jointly in time, or a
single ungrouped variable), spans of ``mask_window_min``..``mask_window_max`` days are drawn at
uniform positions until their summed length reaches ``dynamic_mask_ratio * T`` (the last span is
trimmed; spans may overlap, so the realised share can be lower, as in the authors' code).
Static attributes: per sample, ``int(static_mask_ratio * E)`` of the E masking units (each static
group as a whole, then each ungrouped attribute) are chosen uniformly at random. Variables in
``never_mask_variables`` are never masked. NaN inputs need no mask here: the model always treats
them as masked and the loss always excludes them.

Everything is vectorized over samples and units; the generator state can be saved and restored so
an interrupted pretraining run resumes with the same masks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .configuration_stefaland import StefaLandConfig


def _dynamic_units(config: StefaLandConfig) -> list[list[int]]:
    index = {name: i for i, name in enumerate(config.dynamic_variables)}
    never = set(config.never_mask_variables)
    grouped = {n for members in config.dynamic_groups.values() for n in members}
    units = [[index[n] for n in members if n not in never] for members in config.dynamic_groups.values()]
    units += [[index[n]] for n in config.dynamic_variables if n not in grouped and n not in never]
    return [u for u in units if u]


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
        self.dynamic_units = _unit_matrix(_dynamic_units(config), len(config.dynamic_variables))
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
    def dynamic_mask(self, batch: int, length: int) -> np.ndarray:
        units = self.dynamic_units.shape[0]
        budget = int(length * self.ratio_dynamic)
        if units == 0 or budget == 0:
            return np.zeros((batch, length, self.dynamic_units.shape[1]), dtype=bool)
        low = min(self.window_min, length)
        high = min(self.window_max, length)
        max_spans = -(-budget // low) + 1
        lengths = self.rng.integers(low, high + 1, size=(batch, units, max_spans))
        before = np.cumsum(lengths, axis=-1) - lengths  # summed length of earlier spans
        lengths = np.clip(np.minimum(lengths, budget - before), 0, None)  # trim the last span, drop the rest
        starts = (self.rng.random((batch, units, max_spans)) * (length - lengths + 1)).astype(np.int64)
        coverage = np.zeros((batch, units, length + 1), dtype=np.int32)
        b, u, _ = np.indices(lengths.shape)
        np.add.at(coverage, (b, u, starts), (lengths > 0).astype(np.int32))
        np.add.at(coverage, (b, u, starts + lengths), -(lengths > 0).astype(np.int32))
        unit_masked = np.cumsum(coverage[..., :length], axis=-1) > 0  # [B, U, T]
        return np.einsum("but,uv->btv", unit_masked.astype(np.float32), self.dynamic_units) > 0

    def static_mask(self, batch: int) -> np.ndarray:
        units = self.static_units.shape[0]
        count = int(units * self.ratio_static)
        if units == 0 or count == 0:
            return np.zeros((batch, self.static_units.shape[1]), dtype=bool)
        order = np.argsort(self.rng.random((batch, units)), axis=1)
        chosen = np.zeros((batch, units), dtype=np.float32)
        np.put_along_axis(chosen, order[:, :count], 1.0, axis=1)
        return chosen @ self.static_units > 0

    def __call__(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        size, length = batch["x_dynamic"].shape[:2]
        batch["dynamic_mask"] = torch.from_numpy(self.dynamic_mask(size, length))
        batch["static_mask"] = torch.from_numpy(self.static_mask(size))
        return batch


__all__ = ["CrossVariableGroupMasking"]
