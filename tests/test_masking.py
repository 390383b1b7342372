import numpy as np
import pytest
import torch
from conftest import tiny_config

from stefaland_hf.masking import CrossVariableGroupMasking


def _masks(seed=0, batch=64, length=200, **overrides):
    masking = CrossVariableGroupMasking(tiny_config(**overrides), seed=seed)
    batch_dict = masking({"x_dynamic": torch.zeros(batch, length, 4), "x_static": torch.zeros(batch, 8)})
    return batch_dict["dynamic_mask"].numpy(), batch_dict["static_mask"].numpy()


def test_reproducible_from_seed():
    a, b = _masks(seed=3), _masks(seed=3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    c = _masks(seed=4)
    assert not np.array_equal(a[0], c[0])


def test_state_dict_resumes_the_sequence():
    config = tiny_config()
    masking = CrossVariableGroupMasking(config, seed=1)
    batch = {"x_dynamic": torch.zeros(4, 50, 4), "x_static": torch.zeros(4, 8)}
    masking(dict(batch))
    state = masking.state_dict()
    expected = masking(dict(batch))["dynamic_mask"]
    resumed = CrossVariableGroupMasking(config, seed=99)
    resumed.load_state_dict(state)
    assert torch.equal(resumed(dict(batch))["dynamic_mask"], expected)


def test_dynamic_ratio_and_window_bounds():
    dynamic, _ = _masks(seed=0, batch=200, length=200)
    share = dynamic.mean(axis=1)  # [B, F]
    # Spans sum to exactly int(0.5 * 200) = 100 days; overlaps can only lower the share.
    assert share.max() <= 0.5 + 1e-9
    assert 0.3 < share.mean() < 0.5
    # Every maximal masked run is a union of spans: at least one span long unless trimmed (>= 1 day),
    # and the longest run is at least mask_window_min.
    runs = []
    for row in dynamic[:20, :, 0]:
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(int), [0]])))
        runs += list(edges[1::2] - edges[::2])
    assert max(runs) >= 3 and min(runs) >= 1


def test_dynamic_groups_masked_jointly_and_others_independently():
    dynamic, _ = _masks(seed=2)
    assert np.array_equal(dynamic[..., 1], dynamic[..., 2])  # temperature_max / temperature_min grouped
    assert not np.array_equal(dynamic[..., 0], dynamic[..., 3])


def test_static_groups_never_mask_and_ratio():
    _, static = _masks(seed=5, batch=500)
    # units: soil group, location group, elevation, slope (area is never masked) -> E = 4, k = 2
    assert not static[:, 7].any()
    assert np.array_equal(static[:, 4], static[:, 5]) and np.array_equal(static[:, 4], static[:, 6])
    assert np.array_equal(static[:, 0], static[:, 1])
    units = np.stack([static[:, 4], static[:, 0], static[:, 2], static[:, 3]], axis=1)
    assert (units.sum(axis=1) == 2).all()
    # Each unit is chosen about half the time over many samples.
    assert np.allclose(units.mean(axis=0), 0.5, atol=0.08)


def test_never_mask_dynamic_variable():
    dynamic, _ = _masks(seed=0, never_mask_variables=["area", "precipitation"])
    assert not dynamic[..., 0].any() and dynamic[..., 3].any()


def test_short_window_still_masks():
    dynamic, _ = _masks(seed=0, length=5)
    assert dynamic.mean() == pytest.approx(2 / 5, abs=0.2)


def test_a_derivation_family_is_masked_together():
    """CAMELS' temperature_mean is (max + min) / 2: masked alone beside the shown max and min, it was an identity."""
    config = tiny_config(dynamic_variables=["precipitation", "temperature_max", "temperature_min", "temperature_mean"],
                         dynamic_mean=None, dynamic_std=None, dynamic_groups={"temperature": ["temperature_max", "temperature_min"]})
    masked = CrossVariableGroupMasking(config, seed=0)({"x_dynamic": torch.zeros(64, 200, 4), "x_static": torch.zeros(64, 8)})
    dynamic = masked["dynamic_mask"].numpy()
    assert np.array_equal(dynamic[..., 1], dynamic[..., 3]) and np.array_equal(dynamic[..., 2], dynamic[..., 3])
    assert not np.array_equal(dynamic[..., 0], dynamic[..., 3])


def test_sources_of_a_family_stay_independent_without_the_derived_variable():
    """The paper's configuration has no temperature_mean and no groups: max and min are masked independently."""
    from stefaland_hf import StefaLandConfig
    from stefaland_hf.masking import dynamic_masking_units

    assert dynamic_masking_units(StefaLandConfig()) == [[i] for i in range(5)]
