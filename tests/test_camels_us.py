"""CamelsUS builder: real-data checks (skipped without ../shared/data) and bad-input checks on
small files written here (always run)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import CAMELS_US as CAMELS

from stefaland_hf.data.camels_us import (
    ATTRIBUTE_SOURCES,
    DYNAMIC_VARIABLES,
    PAPER_ATTRIBUTES,
    CamelsUS,
    cfs_to_mm_per_day,
    read_forcing_file,
)
from stefaland_hf.data.errors import DataFormatError
from stefaland_hf.variables import VARIABLES

needs_data = pytest.mark.skipif(
    not (CAMELS / "basin_list.txt").is_file(),
    reason=f"real CAMELS-US data not found at {CAMELS} (set STEFALAND_SHARED_DATA to the shared data folder)",
)
FOUR = ["01022500", "01547700", "02064000", "03015500"]  # basins with maurer/nldas forcings


# ------------------------------------------------------------------------------------------------
# real data
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("camels_cache")


@pytest.fixture(scope="module")
def daymet(cache):
    b = CamelsUS(data_dir=str(CAMELS), cache_dir=str(cache), forcing="daymet")
    b.download_and_prepare()
    return b, b.as_dataset(split="all")


@pytest.fixture(scope="module")
def maurer(cache):
    b = CamelsUS(data_dir=str(CAMELS), cache_dir=str(cache), forcing="maurer", basins=FOUR)
    b.download_and_prepare()
    return b, b.as_dataset(split="all")


def _row(ds, basin):
    ids = ds["site_id"]
    return ds.with_format("numpy")[ids.index(basin)]


def _date_index(row, iso):
    return int(np.flatnonzero(row["dates"] == np.datetime64(iso))[0])


@needs_data
def test_all_67_basins_load(daymet):
    _, ds = daymet
    expected = [s.strip() for s in (CAMELS / "basin_list.txt").read_text().split() if s.strip()]
    assert len(expected) == 67
    assert ds.num_rows == 67
    assert ds["site_id"] == expected
    for region in set(ds["region"]):
        assert len(region) == 2 and region.isdigit()
    row = _row(ds, "01022500")
    assert row["region"] == "01"
    assert row["dynamic"].shape == (12784, len(DYNAMIC_VARIABLES))
    assert str(row["dates"][0]) == "1980-01-01" and str(row["dates"][-1]) == "2014-12-31"
    assert list(row["dynamic_variables"]) == list(DYNAMIC_VARIABLES)
    assert list(row["static_variables"]) == list(PAPER_ATTRIBUTES)
    assert list(row["target_variables"]) == ["streamflow"]


@needs_data
def test_features_are_float32(daymet):
    _, ds = daymet
    f = ds.features
    assert f["dynamic"].dtype == "float32" and f["targets"].dtype == "float32"
    assert f["static"].feature.dtype == "float32" and f["latitude"].dtype == "float32"
    row = _row(ds, "01022500")
    assert row["dynamic"].dtype == np.float32 and row["targets"].dtype == np.float32 and row["static"].dtype == np.float32


@needs_data
def test_streamflow_cfs_to_mm_per_day_01022500(daymet):
    _, ds = daymet
    (ffile,) = (CAMELS / "basin_mean_forcing" / "daymet").glob("*/01022500_lump_cida_forcing_leap.txt")
    area_m2 = float(ffile.read_text().splitlines()[2])  # third header line: area in m²
    (qfile,) = (CAMELS / "usgs_streamflow").glob("*/01022500_streamflow_qc.txt")
    raw = [l.split() for l in qfile.read_text().splitlines() if l.split()[1:4] == ["2000", "01", "01"]]
    assert float(raw[0][4]) == 255.0
    expected = 255.0 * 0.0283168 * 86400.0 * 1000.0 / area_m2
    row = _row(ds, "01022500")
    value = row["targets"][_date_index(row, "2000-01-01"), 0]
    assert value == pytest.approx(expected, rel=1e-6)
    assert value == pytest.approx(1.0616, abs=1e-4)


@needs_data
def test_missing_streamflow_day_is_nan(daymet):
    _, ds = daymet
    (qfile,) = (CAMELS / "usgs_streamflow").glob("*/01022500_streamflow_qc.txt")
    missing = [l.split() for l in qfile.read_text().splitlines() if float(l.split()[4]) == -999.0]
    assert missing, "expected at least one -999 day in 01022500"
    row = _row(ds, "01022500")
    for parts in (missing[0], missing[-1]):
        iso = f"{parts[1]}-{parts[2]}-{parts[3]}"
        assert np.isnan(row["targets"][_date_index(row, iso), 0]), iso
    # present days are finite and non-negative
    assert np.nanmin(row["targets"]) >= 0
    assert np.isfinite(row["targets"]).sum() == 12784 - len(missing)


@needs_data
def test_daymet_columns_map_to_canonical_variables(daymet):
    _, ds = daymet
    (ffile,) = (CAMELS / "basin_mean_forcing" / "daymet").glob("*/01022500_lump_cida_forcing_leap.txt")
    line = next(l for l in ffile.read_text().splitlines()[4:] if l.split()[:3] == ["2000", "01", "01"])
    year, month, day, hr, dayl, prcp, srad, swe, tmax, tmin, vp = (float(x) for x in line.split())
    row = _row(ds, "01022500")
    values = dict(zip(row["dynamic_variables"], row["dynamic"][_date_index(row, "2000-01-01")]))
    expected = {
        "precipitation": prcp,
        "shortwave_radiation": srad * dayl / 86400,  # the product's daylight-hours mean as a 24-hour mean
        "temperature_max": tmax,
        "temperature_min": tmin,
        "temperature_mean": (tmax + tmin) / 2,
        "vapor_pressure": vp,
        "daylength": dayl,
    }
    assert set(values) == set(expected)
    for name, v in expected.items():
        assert values[name] == pytest.approx(v, rel=1e-6, abs=1e-5), name
    assert "snow_water_equivalent" not in row["dynamic_variables"]


@needs_data
def test_static_attributes_units_and_no_signatures(daymet):
    _, ds = daymet
    row = _row(ds, "01022500")
    stat = dict(zip(row["static_variables"], row["static"]))
    soil = (CAMELS / "camels_attributes_v2.0" / "camels_soil.txt").read_text().splitlines()
    header = soil[0].split(";")
    line = next(l for l in soil if l.startswith("01022500;")).split(";")
    assert stat["sand_fraction"] == pytest.approx(float(line[header.index("sand_frac")]) / 100, rel=1e-6)
    assert stat["soil_depth"] == pytest.approx(float(line[header.index("soil_depth_statsgo")]), rel=1e-6)
    for name in row["static_variables"]:
        assert VARIABLES[name].kind == "static"
    hydro = (CAMELS / "camels_attributes_v2.0" / "camels_hydro.txt").read_text().splitlines()[0].split(";")[1:]
    assert all(src[1] not in hydro for src in ATTRIBUTE_SOURCES.values())
    assert 0 <= np.nanmin(row["static"][[row["static_variables"].tolist().index(n) for n in ("sand_fraction", "silt_fraction", "clay_fraction")]]) <= 1


@needs_data
def test_maurer_ends_2008_and_has_its_own_cache(daymet, maurer):
    b_d, _ = daymet
    b_m, ds = maurer
    assert ds.num_rows == 4 and ds["site_id"] == FOUR
    row = _row(ds, "01022500")
    assert str(row["dates"][0]) == "1980-01-01" and str(row["dates"][-1]) == "2008-12-31"
    column = {name: row["dynamic"][:, list(row["dynamic_variables"]).index(name)] for name in ("temperature_max", "temperature_min", "temperature_mean")}
    # the original Maurer files hold the daily mean in both tmax and tmin: a mean, not extremes
    assert np.isnan(column["temperature_max"]).all() and np.isnan(column["temperature_min"]).all()
    assert column["temperature_mean"][0] == pytest.approx(-6.02, abs=0.005)  # 1980-01-01 of 01022500's file
    assert b_d.cache_dir != b_m.cache_dir


@needs_data
def test_config_is_part_of_cache_key(cache):
    a = CamelsUS(data_dir=str(CAMELS), cache_dir=str(cache), basins=["01022500"])
    b = CamelsUS(data_dir=str(CAMELS), cache_dir=str(cache), basins=["01547700"])
    c = CamelsUS(data_dir=str(CAMELS), cache_dir=str(cache), forcing="nldas", basins=["01022500"])
    d = CamelsUS(data_dir=str(CAMELS), cache_dir=str(cache), basins=["01022500"], end_date="2000-12-31")
    assert len({a.cache_dir, b.cache_dir, c.cache_dir, d.cache_dir}) == 4
    d.download_and_prepare()
    row = d.as_dataset(split="all").with_format("numpy")[0]
    assert str(row["dates"][-1]) == "2000-12-31" and row["dynamic"].shape[0] == len(row["dates"])


@needs_data
def test_missing_basin_in_real_data(tmp_path):
    b = CamelsUS(data_dir=str(CAMELS), cache_dir=str(tmp_path), basins=["01022500", "99999999"])
    with pytest.raises(DataFormatError, match="99999999") as info:
        b.download_and_prepare()
    assert "basin_mean_forcing" in info.value.path


# ------------------------------------------------------------------------------------------------
# small synthetic layout (always runs): the exact raw formats, a few days, two basins
# ------------------------------------------------------------------------------------------------

N_DAYS = 10
AREA_M2 = {"01000001": 500_000_000.0, "03000002": 250_000_000.0}
HUC = {"01000001": "01", "03000002": "03"}

_TABLES = {
    "topo": ["gauge_lat", "gauge_lon", "elev_mean", "slope_mean", "area_gages2", "area_geospa_fabric"],
    "soil": [
        "soil_depth_pelletier", "soil_depth_statsgo", "soil_porosity", "soil_conductivity", "max_water_content",
        "sand_frac", "silt_frac", "clay_frac", "water_frac", "organic_frac", "other_frac",
    ],
    "geol": ["geol_1st_class", "glim_1st_class_frac", "geol_2nd_class", "glim_2nd_class_frac", "carbonate_rocks_frac", "geol_porostiy", "geol_permeability"],
    "vege": ["frac_forest", "lai_max", "lai_diff", "gvf_max", "gvf_diff", "dom_land_cover_frac", "dom_land_cover", "root_depth_50", "root_depth_99"],
    "clim": [
        "p_mean", "pet_mean", "p_seasonality", "frac_snow", "aridity", "high_prec_freq", "high_prec_dur",
        "high_prec_timing", "low_prec_freq", "low_prec_dur", "low_prec_timing",
    ],
}


# raw values are 10 * (basin number) + column index, scaled where the variable is a fraction, a leaf
# area index or a log permeability so that every value lies in its physical range
_PLAUSIBLE_SCALE = {
    "soil_porosity": 0.01, "carbonate_rocks_frac": 0.01, "geol_porostiy": 0.01, "frac_forest": 0.01,
    "gvf_max": 0.01, "gvf_diff": 0.01, "frac_snow": 0.01, "lai_max": 0.1, "lai_diff": 0.1, "geol_permeability": -0.5,
}


def _forcing_lines(basin: str, n_days: int = N_DAYS) -> list[str]:
    lines = ["  44.82\n", " 133.00\n", f" {AREA_M2[basin]:.0f}\n",
             "Year Mnth Day Hr dayl(s) prcp(mm/day) srad(W/m2) swe(mm) tmax(C) tmin(C) vp(Pa)\n"]
    for i, d in enumerate(np.arange(np.datetime64("1980-01-01"), np.datetime64("1980-01-01") + n_days)):
        y, m, dd = str(d).split("-")
        lines.append(f"{y} {m} {dd} 12\t{31000 + i:.2f}\t{i * 1.5:.2f}\t{150 + i:.2f}\t0.00\t{2.0 + i:.2f}\t{-5.0 + i:.2f}\t{300 + i:.2f}\n")
    return lines


def make_camels(root: Path, n_days: int = N_DAYS) -> Path:
    for basin, huc in HUC.items():
        f = root / "basin_mean_forcing" / "daymet" / huc / f"{basin}_lump_cida_forcing_leap.txt"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("".join(_forcing_lines(basin, n_days)))
        q = root / "usgs_streamflow" / huc / f"{basin}_streamflow_qc.txt"
        q.parent.mkdir(parents=True, exist_ok=True)
        rows = []
        for i, d in enumerate(np.arange(np.datetime64("1980-01-01"), np.datetime64("1980-01-01") + n_days)):
            if i == 4:
                continue  # a date absent from the file
            y, m, dd = str(d).split("-")
            value, flag = (-999.0, "M") if i == 2 else (100.0 + i, "A")
            rows.append(f"{basin} {y} {m} {dd} {value:8.2f} {flag}\n")
        q.write_text("".join(rows))
    attr = root / "camels_attributes_v2.0"
    attr.mkdir(parents=True, exist_ok=True)
    for table, columns in _TABLES.items():
        lines = [";".join(["gauge_id"] + columns)]
        for k, basin in enumerate(HUC):
            vals = []
            for j, c in enumerate(columns):
                if c in ("geol_1st_class", "geol_2nd_class", "dom_land_cover", "high_prec_timing", "low_prec_timing"):
                    vals.append("    Mixed Forests")
                elif c.startswith("root_depth"):
                    vals.append("NA")
                else:
                    vals.append(f"{(10.0 * (k + 1) + j) * _PLAUSIBLE_SCALE.get(c, 1.0):.3f}")
            lines.append(";".join([basin] + vals))
        (attr / f"camels_{table}.txt").write_text("\n".join(lines) + "\n")
    (attr / "camels_hydro.txt").write_text("gauge_id;q_mean\n01000001;1.0\n03000002;2.0\n")
    (root / "basin_list.txt").write_text("\n".join(HUC) + "\n")
    return root


def _build(root: Path, cache: Path, **kw):
    kw.setdefault("end_date", f"1980-01-{N_DAYS:02d}")
    b = CamelsUS(data_dir=str(root), cache_dir=str(cache), **kw)
    b.download_and_prepare()
    return b, b.as_dataset(split="all")


def _forcing_path(root: Path, basin: str = "01000001") -> Path:
    return root / "basin_mean_forcing" / "daymet" / HUC[basin] / f"{basin}_lump_cida_forcing_leap.txt"


def test_synthetic_layout_builds(tmp_path):
    root = make_camels(tmp_path / "raw")
    b, ds = _build(root, tmp_path / "cache")
    assert ds["site_id"] == list(HUC) and ds["region"] == ["01", "03"]
    row = ds.with_format("numpy")[0]
    assert row["dynamic"].shape == (N_DAYS, 7) and row["targets"].shape == (N_DAYS, 1)
    q = row["targets"][:, 0]
    assert np.isnan(q[2]) and np.isnan(q[4])  # -999 and an absent date
    assert q[3] == pytest.approx(cfs_to_mm_per_day(103.0, AREA_M2["01000001"]), rel=1e-6)
    dyn = dict(zip(row["dynamic_variables"], row["dynamic"][3].tolist()))
    assert dyn["precipitation"] == pytest.approx(4.5) and dyn["temperature_mean"] == pytest.approx((5.0 - 2.0) / 2)
    stat = dict(zip(row["static_variables"], row["static"].tolist()))
    assert stat["sand_fraction"] == pytest.approx((10.0 + 5) / 100)  # sand_frac is column 5 of soil
    assert row["latitude"] == pytest.approx(10.0)
    assert b.skipped_basins == []


def test_area_gages2_option(tmp_path):
    root = make_camels(tmp_path / "raw")
    _, ds = _build(root, tmp_path / "cache", area_source="area_gages2", basins=["01000001"])
    row = ds.with_format("numpy")[0]
    area_km2 = 10.0 + 4  # area_gages2 is column 4 of topo
    assert row["targets"][3, 0] == pytest.approx(cfs_to_mm_per_day(103.0, area_km2 * 1e6), rel=1e-6)


def test_truncated_forcing_file_mid_line(tmp_path):
    root = make_camels(tmp_path / "raw")
    f = _forcing_path(root)
    lines = _forcing_lines("01000001")
    f.write_text("".join(lines[:8]) + lines[8][:12])  # cut inside the 5th data row (line 9)
    with pytest.raises(DataFormatError) as info:
        _build(root, tmp_path / "cache")
    err = info.value
    assert err.path == str(f) and err.line == 9
    assert "expected 11 columns" in str(err) and str(f) in str(err)


def test_truncated_forcing_file_too_short(tmp_path):
    root = make_camels(tmp_path / "raw")
    f = _forcing_path(root)
    f.write_text("".join(_forcing_lines("01000001")[:9]))  # only 5 of 10 days
    with pytest.raises(DataFormatError, match=r"cover 1980-01-01\.\.1980-01-05.*1980-01-10") as info:
        _build(root, tmp_path / "cache")
    assert info.value.path == str(f)


def test_forcing_header_truncated(tmp_path):
    root = make_camels(tmp_path / "raw")
    f = _forcing_path(root)
    f.write_text("".join(_forcing_lines("01000001")[:2]))
    with pytest.raises(DataFormatError, match="header") as info:
        read_forcing_file(f)
    assert info.value.line == 3


def test_wrong_column_count(tmp_path):
    root = make_camels(tmp_path / "raw")
    f = _forcing_path(root)
    lines = _forcing_lines("01000001")
    lines[6] = lines[6].rstrip("\n") + "\t9.99\n"  # file line 7 has 12 columns
    f.write_text("".join(lines))
    with pytest.raises(DataFormatError, match="expected 11 columns, found 12") as info:
        _build(root, tmp_path / "cache")
    assert info.value.line == 7 and info.value.path == str(f)
    lines = _forcing_lines("01000001")
    lines[6] = "\t".join(lines[6].split()[:-1]) + "\n"  # 10 columns
    f.write_text("".join(lines))
    with pytest.raises(DataFormatError, match="expected 11 columns, found 10") as info:
        read_forcing_file(f)
    assert info.value.line == 7


def test_non_numeric_value(tmp_path):
    root = make_camels(tmp_path / "raw")
    f = _forcing_path(root)
    lines = _forcing_lines("01000001")
    parts = lines[10].split("\t")
    parts[5] = "n/a"  # tmax of file line 11
    lines[10] = "\t".join(parts)
    f.write_text("".join(lines))
    with pytest.raises(DataFormatError, match=r"tmax: expected a number, found 'n/a'") as info:
        _build(root, tmp_path / "cache")
    assert info.value.line == 11


def test_bad_streamflow_line(tmp_path):
    root = make_camels(tmp_path / "raw")
    q = root / "usgs_streamflow" / "03" / "03000002_streamflow_qc.txt"
    lines = q.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace("03000002", "03000009")
    q.write_text("".join(lines))
    with pytest.raises(DataFormatError, match="expected gauge_id '03000002'") as info:
        _build(root, tmp_path / "cache")
    assert info.value.path == str(q) and info.value.line == 4


def test_basin_without_files(tmp_path):
    root = make_camels(tmp_path / "raw")
    (root / "camels_attributes_v2.0" / "camels_topo.txt").open("a").write("05999999;1;2;3;4;5;6\n")
    with pytest.raises(DataFormatError, match="no daymet forcing file for basin 01999999"):
        _build(root, tmp_path / "cache", basins=["01000001", "01999999"])


def test_basin_missing_from_attribute_table(tmp_path):
    root = make_camels(tmp_path / "raw")
    f = _forcing_path(root)
    extra = f.parent / "01000009_lump_cida_forcing_leap.txt"
    extra.write_text(f.read_text())
    q = root / "usgs_streamflow" / "01" / "01000001_streamflow_qc.txt"
    (q.parent / "01000009_streamflow_qc.txt").write_text(q.read_text().replace("01000001", "01000009"))
    with pytest.raises(DataFormatError, match=r"no row for basin\(s\) \['01000009'\]") as info:
        _build(root, tmp_path / "cache", basins=["01000001", "01000009"])
    assert info.value.path.endswith("camels_topo.txt")


def test_missing_attribute_table(tmp_path):
    root = make_camels(tmp_path / "raw")
    (root / "camels_attributes_v2.0" / "camels_soil.txt").unlink()
    with pytest.raises(DataFormatError, match="attribute table not found") as info:
        _build(root, tmp_path / "cache")
    assert info.value.path.endswith("camels_soil.txt")


def test_bad_attribute_value(tmp_path):
    root = make_camels(tmp_path / "raw")
    p = root / "camels_attributes_v2.0" / "camels_clim.txt"
    lines = p.read_text().splitlines()
    parts = lines[2].split(";")
    parts[1] = "lots"  # p_mean of the second basin (file line 3)
    lines[2] = ";".join(parts)
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match="'p_mean': expected a number or NA, found 'lots'") as info:
        _build(root, tmp_path / "cache")
    assert info.value.line == 3


def test_skip_bad_basins_reports(tmp_path, caplog):
    root = make_camels(tmp_path / "raw")
    f = _forcing_path(root, "03000002")
    f.write_text("".join(_forcing_lines("03000002")[:8]) + "1980 01 05 12\t31000.00\n")
    with caplog.at_level(logging.WARNING, logger="stefaland_hf.data.camels_us"):
        b, ds = _build(root, tmp_path / "cache", skip_bad_basins=True, basins=["01000001", "03000002", "01999999"])
    assert ds["site_id"] == ["01000001"]
    skipped = dict(b.skipped_basins)
    assert set(skipped) == {"03000002", "01999999"}
    assert str(f) in skipped["03000002"] and "line 9" in skipped["03000002"]
    assert "01999999" in caplog.text and "03000002" in caplog.text


def test_invalid_config(tmp_path):
    root = make_camels(tmp_path / "raw")
    with pytest.raises(ValueError, match="forcing must be one of"):
        CamelsUS(data_dir=str(root), cache_dir=str(tmp_path), config_name="daymet", forcing="era5")
    with pytest.raises(ValueError, match="conflicts"):
        CamelsUS(data_dir=str(root), cache_dir=str(tmp_path), config_name="maurer", forcing="nldas")
    with pytest.raises(ValueError, match="did you mean"):
        CamelsUS(data_dir=str(root), cache_dir=str(tmp_path), attributes=["sand_fractoin"])
    with pytest.raises(ValueError, match="8 digits"):
        CamelsUS(data_dir=str(root), cache_dir=str(tmp_path), basins=["1022500x"])
    with pytest.raises(ValueError, match="before start_date"):
        CamelsUS(data_dir=str(root), cache_dir=str(tmp_path), start_date="2000-01-02", end_date="2000-01-01")


def test_data_format_error_is_value_error():
    e = DataFormatError("/x/y.txt", "expected 11 columns, found 3", line=7)
    assert isinstance(e, ValueError)
    assert (e.path, e.line) == ("/x/y.txt", 7)
    assert str(e) == "/x/y.txt, line 7: expected 11 columns, found 3"
    import pickle

    e2 = pickle.loads(pickle.dumps(e))
    assert (e2.path, e2.line, str(e2)) == (e.path, e.line, str(e))


def test_empty_basins_is_a_clear_error(tmp_path):
    root = make_camels(tmp_path / "raw")
    with pytest.raises(ValueError, match=r"^basins: empty list; pass gauge ids"):
        CamelsUS(data_dir=str(root), cache_dir=str(tmp_path), basins=[])
    (root / "basin_list.txt").write_text("\n\n")
    with pytest.raises(DataFormatError, match="basin list is empty") as info:
        CamelsUS(data_dir=str(root), cache_dir=str(tmp_path))
    assert info.value.path == str(root / "basin_list.txt")
    empty = tmp_path / "none.txt"
    empty.write_text("")
    with pytest.raises(DataFormatError, match="basins= argument") as info:
        CamelsUS(data_dir=str(root), cache_dir=str(tmp_path), basins=str(empty))
    assert info.value.path == str(empty)


def test_missing_data_dir_is_refused_up_front(tmp_path):
    with pytest.raises(ValueError, match="CamelsUS needs data_dir="):
        CamelsUS(cache_dir=str(tmp_path))
