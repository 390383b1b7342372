"""align_variables binds columns by name: a source column that would be dropped is an error unless
it is listed in ``ignore``; unknown names are errors; target names the source lacks become NaN."""

from __future__ import annotations

import numpy as np
import pytest

from stefaland_hf import align_variables

SOURCE = ["precipitation", "temperature_max", "vapor_pressure"]


def test_reorders_by_name_and_masks_missing_targets():
    x = np.array([[1.0, 20.0, 900.0], [2.0, 21.0, 950.0]])
    out = align_variables(x, SOURCE, ["temperature_max", "wind_speed", "precipitation", "vapor_pressure"])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[:, [0, 2, 3]], x[:, [1, 0, 2]])
    assert np.isnan(out[:, 1]).all()  # the paper's masking: absent variables are NaN


def test_source_name_not_among_targets_is_an_error():
    x = np.zeros((4, 3))
    with pytest.raises(ValueError) as info:
        align_variables(x, SOURCE, ["precipitation", "temperature_max"], "x_dynamic")
    msg = str(info.value)
    assert msg.startswith("x_dynamic: source variable(s) ['vapor_pressure'] are not among the target variables")
    assert "ignore=['vapor_pressure']" in msg


def test_ignore_drops_on_purpose():
    x = np.arange(6.0).reshape(2, 3)
    out = align_variables(x, SOURCE, ["precipitation", "temperature_max"], ignore=["vapor_pressure"])
    np.testing.assert_array_equal(out, x[:, :2])


def test_unknown_names_are_errors():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"values source names: unknown variable 'precip'; did you mean 'precipitation'"):
        align_variables(x, ["precip", "temperature_max", "vapor_pressure"], ["precipitation"])
    with pytest.raises(ValueError, match=r"values target names: unknown variable 'temp_max'"):
        align_variables(x, SOURCE, ["temp_max"] + SOURCE)
    with pytest.raises(ValueError, match=r"values ignore: unknown variable 'vapour_pressure'"):
        align_variables(x, SOURCE, SOURCE[:2], ignore=["vapour_pressure"])


def test_duplicate_source_name_is_an_error():
    with pytest.raises(ValueError, match="source names: variable 'precipitation' is listed twice"):
        align_variables(np.zeros((1, 2)), ["precipitation", "precipitation"], ["precipitation"])


def test_column_count_must_match_names():
    with pytest.raises(ValueError, match="last axis has 2 columns but 3 variable names were given"):
        align_variables(np.zeros((1, 2)), SOURCE, SOURCE)
