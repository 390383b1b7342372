"""Physical ranges of the canonical variables: sentinels become NaN, other out-of-range values are
errors naming file, line, variable and value (or NaN, counted, with ``out_of_range="nan"``), in
every builder; SynthLand and the real data satisfy the ranges."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
from conftest import CAMELS_US, SMAP_CONUS
from test_camels_us import _build as build_camels, _forcing_lines, _forcing_path, make_camels
from test_hydrodl_smap import N_PIX, _build as build_smap, make_smap

from stefaland_hf.data.camels_us import ATTRIBUTE_SOURCES, read_camels_attributes
from stefaland_hf.data.errors import DataFormatError, PhysicalRangeCheck
from stefaland_hf.data.hydrodl_smap import DYNAMIC_VARIABLES as SMAP_DYNAMIC, HydroDLSmap
from stefaland_hf.data.synthland import generate_synthland
from stefaland_hf.variables import VARIABLES

# ------------------------------------------------------------------------------------------------
# the ranges themselves
# ------------------------------------------------------------------------------------------------


def test_every_variable_has_a_finite_lower_bound_and_a_reason():
    for v in VARIABLES.values():
        assert math.isfinite(v.valid_min) and v.valid_min < v.valid_max, v.name
        assert len(v.range_reason) > 10, v.name
        assert v.allow_negative == (v.valid_min < 0), v.name
        # a -999 / -9999 sentinel taken as a number is out of range for every variable
        assert v.valid_min > -999, v.name


def test_cited_bounds():
    r = {n: (v.valid_min, v.valid_max) for n, v in VARIABLES.items()}
    assert r["daylength"] == (0, 86400)
    assert r["precipitation"] == (0, 1825)
    assert r["temperature_max"] == r["temperature_min"] == r["temperature_mean"] == (-90, 60)
    assert r["soil_moisture"] == (0, 1)
    assert r["sand_fraction"] == r["forest_fraction"] == (0, 1)
    assert r["streamflow"] == (0, math.inf)
    assert "1,825 mm" in VARIABLES["precipitation"].range_reason
    assert "86,400" in VARIABLES["daylength"].range_reason


def test_range_check_error_names_file_line_variable_value():
    values = np.array([[1.0, 2.0, 3.0], [4.0, 90000.0, np.nan]])
    check = PhysicalRangeCheck()
    with pytest.raises(DataFormatError) as info:
        check(values, "daylength", "/x/f.csv", lambda i: (10 + i[0], f"column {i[1] + 1}"))
    e = info.value
    assert (e.path, e.line) == ("/x/f.csv", 11)
    assert "column 2: daylength = 90000 s is outside its physical range 0..86400 s" in str(e)
    assert "out_of_range='nan'" in str(e)


def test_range_check_nan_policy_counts_and_leaves_valid_values():
    values = np.array([-1.0, 5.0, np.nan, 2000.0, 3000.0, np.inf])
    check = PhysicalRangeCheck("nan")
    check(values, "precipitation", "/x/p.txt", lambda i: (5 + i[0], "column prcp"))
    assert np.isnan(values[[0, 2, 3, 4, 5]]).all() and values[1] == 5.0
    assert check.counts == {"precipitation": 4}
    assert check.summary() == "precipitation: 4 value(s), first at /x/p.txt, line 5, column prcp: -1 mm/day"


def test_infinity_is_out_of_range_even_without_upper_bound():
    with pytest.raises(DataFormatError, match="streamflow = inf mm/day"):
        PhysicalRangeCheck()(np.array([1.0, np.inf]), "streamflow", "/q.txt", lambda i: (i[0] + 1, "column Q"))


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match=r"out_of_range must be one of \['error', 'nan'\], got 'drop'"):
        PhysicalRangeCheck("drop")


# ------------------------------------------------------------------------------------------------
# CAMELS-US
# ------------------------------------------------------------------------------------------------


def _set_forcing(root, row: int, column: int, value: str, basin: str = "01000001"):
    """Put ``value`` into data row ``row`` (file line 5 + row), column position ``column``."""
    f = _forcing_path(root, basin)
    lines = _forcing_lines(basin)
    parts = lines[4 + row].rstrip("\n").split("\t")
    parts[column - 3] = value  # parts[0] holds "Year Mnth Day Hr"
    lines[4 + row] = "\t".join(parts) + "\n"
    f.write_text("".join(lines))
    return f


def test_camels_minus_999_forcing_is_missing_not_a_number(tmp_path):
    root = make_camels(tmp_path / "raw")
    f = _forcing_path(root)
    lines = _forcing_lines("01000001")
    parts = lines[4 + 3].rstrip("\n").split("\t")
    parts[2] = "-999.00"  # prcp of day 3
    parts[5] = "-999.00"  # tmax of day 3
    lines[4 + 3] = "\t".join(parts) + "\n"
    f.write_text("".join(lines))
    _, ds = build_camels(root, tmp_path / "cache")
    row = ds.with_format("numpy")[0]
    dyn = dict(zip(row["dynamic_variables"], row["dynamic"][3]))
    assert np.isnan(dyn["precipitation"]) and np.isnan(dyn["temperature_max"]) and np.isnan(dyn["temperature_mean"])
    assert dyn["temperature_min"] == pytest.approx(-2.0)  # the rest of the day is kept
    assert np.nanmin(row["dynamic"][:, 0]) >= 0


@pytest.mark.parametrize(
    "column, value, variable, shown",
    [(4, "387807.00", "daylength", "387807 s"), (8, "2604.00", "temperature_max", "2604 degC"), (5, "-3.00", "precipitation", "-3 mm/day")],
)
def test_camels_out_of_range_forcing_is_an_error(tmp_path, column, value, variable, shown):
    root = make_camels(tmp_path / "raw")
    f = _set_forcing(root, 6, column, value)
    with pytest.raises(DataFormatError) as info:
        build_camels(root, tmp_path / "cache")
    e = info.value
    assert e.path == str(f) and e.line == 11
    assert f"{variable} = {shown} is outside its physical range" in e.reason


def test_camels_out_of_range_nan_option_counts_and_warns(tmp_path, caplog):
    root = make_camels(tmp_path / "raw")
    f = _set_forcing(root, 6, 4, "387807.00")
    with caplog.at_level(logging.WARNING, logger="stefaland_hf.data.camels_us"):
        b, ds = build_camels(root, tmp_path / "cache", out_of_range="nan")
    row = ds.with_format("numpy")[0]
    dayl = row["dynamic"][:, list(row["dynamic_variables"]).index("daylength")]
    assert np.isnan(dayl[6]) and np.isfinite(np.delete(dayl, 6)).all()
    assert b.range_check.counts == {"daylength": 1}
    assert "daylength: 1 value(s)" in caplog.text and f"{f}, line 11" in caplog.text


def test_camels_out_of_range_outside_the_period_is_not_read(tmp_path):
    root = make_camels(tmp_path / "raw")
    _set_forcing(root, 8, 4, "387807.00")  # day 9, after end_date
    _, ds = build_camels(root, tmp_path / "cache", end_date="1980-01-05")
    assert ds.num_rows == 2


def test_camels_attribute_out_of_range(tmp_path):
    root = make_camels(tmp_path / "raw")
    p = root / "camels_attributes_v2.0" / "camels_soil.txt"
    lines = p.read_text().splitlines()
    parts = lines[2].split(";")
    col = lines[0].split(";").index("sand_frac")
    parts[col] = "120.0"  # percent
    lines[2] = ";".join(parts)
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError) as info:
        build_camels(root, tmp_path / "cache")
    e = info.value
    assert e.path == str(p) and e.line == 3
    assert "column sand_frac (basin 03000002): sand_fraction = 1.2 is outside its physical range 0..1" in e.reason
    _, ds = build_camels(root, tmp_path / "cache_nan", out_of_range="nan")
    stat = dict(zip(ds["static_variables"][1], ds.with_format("numpy")[1]["static"]))
    assert np.isnan(stat["sand_fraction"]) and stat["silt_fraction"] > 0


def test_camels_negative_streamflow(tmp_path):
    root = make_camels(tmp_path / "raw")
    q = root / "usgs_streamflow" / "01" / "01000001_streamflow_qc.txt"
    lines = q.read_text().splitlines(keepends=True)
    lines[5] = lines[5].replace(" 106.00 ", "  -5.00 ")  # 1980-01-07, file line 6
    q.write_text("".join(lines))
    with pytest.raises(DataFormatError) as info:
        build_camels(root, tmp_path / "cache")
    assert info.value.path == str(q) and info.value.line == 6
    assert "column Q (-5 ft3/s): streamflow = " in info.value.reason and "outside its physical range 0..inf" in info.value.reason
    _, ds = build_camels(root, tmp_path / "cache_nan", out_of_range="nan", basins=["01000001"])
    flow = ds.with_format("numpy")[0]["targets"][:, 0]
    assert np.isnan(flow[6]) and flow[5] > 0


def test_camels_invalid_out_of_range_value(tmp_path):
    root = make_camels(tmp_path / "raw")
    with pytest.raises(ValueError, match="out_of_range must be one of"):
        build_camels(root, tmp_path / "cache", out_of_range="clip")


needs_camels = pytest.mark.skipif(
    not (CAMELS_US / "camels_attributes_v2.0").is_dir(), reason=f"real CAMELS-US data not found at {CAMELS_US}"
)


@needs_camels
def test_real_camels_attributes_of_all_671_basins_are_in_range():
    topo = CAMELS_US / "camels_attributes_v2.0" / "camels_topo.txt"
    ids = pd.read_csv(topo, sep=";", dtype={"gauge_id": str})["gauge_id"].tolist()
    assert len(ids) == 671
    for source in ("statsgo", "pelletier"):
        frame = read_camels_attributes(CAMELS_US, ids, list(ATTRIBUTE_SOURCES), source)  # strict: raises if not
        assert frame.shape == (671, len(ATTRIBUTE_SOURCES))


# ------------------------------------------------------------------------------------------------
# hydroDL SMAP
# ------------------------------------------------------------------------------------------------


def _set_matrix(path, row: int, col: int, value: str):
    lines = path.read_text().splitlines()
    parts = lines[row].split(",")
    parts[col] = value
    lines[row] = ",".join(parts)
    path.write_text("\n".join(lines) + "\n")


def test_smap_minus_999_kelvin_is_an_error_not_minus_1272_degc(tmp_path):
    root = make_smap(tmp_path / "raw")
    f = root / "2015" / "TMP_2_FORA.csv"
    _set_matrix(f, 2, 1, "-999")
    with pytest.raises(DataFormatError) as info:
        build_smap(root, tmp_path / "cache")
    e = info.value
    assert e.path == str(f) and e.line == 3
    assert "column 2 (2015-04-02): temperature_mean = -1272.15 degC is outside its physical range -90..60 degC" in e.reason


def test_smap_soil_moisture_of_5_is_an_error(tmp_path):
    root = make_smap(tmp_path / "raw")
    f = root / "2016" / "SMAP_AM.csv"
    _set_matrix(f, 0, 1, "5")
    with pytest.raises(DataFormatError) as info:
        build_smap(root, tmp_path / "cache")
    assert info.value.path == str(f) and info.value.line == 1
    assert "column 2 (2015-04-06): soil_moisture = 5 m3/m3 is outside its physical range 0..1 m3/m3" in info.value.reason


def test_smap_static_out_of_range_and_nan_option(tmp_path, caplog):
    root = make_smap(tmp_path / "raw")
    f = root / "const" / "Bulk.csv"
    f.write_text("1.2\n13\n-9999\n")
    with pytest.raises(DataFormatError, match=r"Bulk.csv, line 2: column 1: bulk_density = 13 g/cm3 is outside"):
        build_smap(root, tmp_path / "cache")
    with caplog.at_level(logging.WARNING, logger="stefaland_hf.data.hydrodl_smap"):
        b, ds = build_smap(root, tmp_path / "cache_nan", out_of_range="nan")
    stat = ds.with_format("numpy")[:]["static"]
    j = list(ds["static_variables"][0]).index("bulk_density")
    assert stat[0, j] == pytest.approx(1.2) and np.isnan(stat[1, j])
    assert b.range_check.counts == {"bulk_density": 1}
    assert "bulk_density: 1 value(s)" in caplog.text


# ------------------------------------------------------------------------------------------------
# a missing per-year target file
# ------------------------------------------------------------------------------------------------


def test_smap_missing_target_file_of_a_selected_year_is_an_error(tmp_path):
    root = make_smap(tmp_path / "raw", smap_years=(2015,))
    with pytest.raises(DataFormatError) as info:
        build_smap(root, tmp_path / "cache", years=[2015, 2016])
    assert info.value.path == str(root / "2016" / "SMAP_AM.csv")
    assert "file not found: the soil-moisture target of year 2016" in info.value.reason
    assert "missing_targets='nan'" in info.value.reason


def test_smap_years_none_leaves_out_years_without_targets(tmp_path, caplog):
    root = make_smap(tmp_path / "raw", smap_years=(2015,))
    with caplog.at_level(logging.WARNING, logger="stefaland_hf.data.hydrodl_smap"):
        b, ds = build_smap(root, tmp_path / "cache")
    assert b.years() == [2015]
    assert len(ds[0]["dates"]) == 4
    assert "leaves out the year folder(s) [2016]" in caplog.text


def test_smap_missing_targets_nan_keeps_the_forcings(tmp_path, caplog):
    root = make_smap(tmp_path / "raw", smap_years=(2015,))
    with caplog.at_level(logging.WARNING, logger="stefaland_hf.data.hydrodl_smap"):
        _, ds = build_smap(root, tmp_path / "cache", missing_targets="nan")
    rows = ds.with_format("numpy")[:]
    assert rows["dynamic"].shape == (N_PIX, 7, len(SMAP_DYNAMIC))
    assert np.isnan(rows["targets"][:, 4:]).all() and np.isfinite(rows["targets"][:, :4]).any()
    assert f"{root / '2016' / 'SMAP_AM.csv'} absent" in caplog.text


def test_smap_no_year_with_targets(tmp_path):
    root = make_smap(tmp_path / "raw", smap_years=())
    with pytest.raises(DataFormatError, match="no <year>/ folder holds SMAP_AM.csv"):
        build_smap(root, tmp_path / "cache")
    with pytest.raises(ValueError, match="missing_targets must be one of"):
        build_smap(root, tmp_path / "cache", missing_targets="skip")


needs_smap = pytest.mark.skipif(not (SMAP_CONUS / "crd.csv").is_file(), reason=f"real hydroDL SMAP data not found at {SMAP_CONUS}")


@needs_smap
def test_real_smap_2017_forcings_are_in_range(tmp_path):
    b = HydroDLSmap(data_dir=str(SMAP_CONUS), cache_dir=str(tmp_path), years=[2017], missing_targets="nan")
    b.download_and_prepare()
    row = b.as_dataset(split="all").with_format("numpy")[0]
    assert len(row["dates"]) == 365 and np.isnan(row["targets"]).all()
    assert b.range_check.counts == {}


# ------------------------------------------------------------------------------------------------
# SynthLand generates its data: check that the generator stays inside the ranges
# ------------------------------------------------------------------------------------------------


def test_synthland_output_is_in_range():
    d = generate_synthland(n_sites=24, start="2000-01-01", end="2001-12-31", seed=3)
    for key, names in (("dynamic", d["dynamic_variables"]), ("static", d["static_variables"]), ("targets", d["target_variables"])):
        for j, name in enumerate(names):
            values = d[key][..., j]
            v = VARIABLES[name]
            finite = values[np.isfinite(values)]
            assert finite.size > 0, name
            assert finite.min() >= v.valid_min and finite.max() <= v.valid_max, (name, finite.min(), finite.max())
            assert not np.isinf(values).any(), name
