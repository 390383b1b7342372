"""HydroDLSmap builder: real-data checks (skipped without ../shared/data) and bad-input checks on
small files written here (always run)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import SMAP_CONUS as SMAP

from stefaland_hf.data.errors import DataFormatError
from stefaland_hf.data.hydrodl_smap import (
    DYNAMIC_SOURCES,
    DYNAMIC_VARIABLES,
    STATIC_VARIABLES,
    HydroDLSmap,
    region_label,
)

needs_data = pytest.mark.skipif(
    not (SMAP / "crd.csv").is_file(),
    reason=f"real hydroDL SMAP data not found at {SMAP} (set STEFALAND_SHARED_DATA to the shared data folder)",
)


# ------------------------------------------------------------------------------------------------
# real data
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smap(tmp_path_factory):
    b = HydroDLSmap(data_dir=str(SMAP), cache_dir=str(tmp_path_factory.mktemp("smap_cache")))
    b.download_and_prepare()
    return b, b.as_dataset(split="all")


def _raw(path: Path, row: int, col: int) -> float:
    return float(path.read_text().splitlines()[row].split(",")[col])


@needs_data
def test_412_pixels_float32(smap):
    _, ds = smap
    assert ds.num_rows == 412
    f = ds.features
    assert f["dynamic"].dtype == "float32" and f["targets"].dtype == "float32" and f["static"].feature.dtype == "float32"
    row = ds.with_format("numpy")[0]
    assert row["dynamic"].dtype == np.float32 and row["static"].dtype == np.float32
    # years=None selects the year folders with SMAP_AM.csv: 2015 and 2016, not 2017
    assert row["dynamic"].shape == (731, len(DYNAMIC_VARIABLES))
    assert str(row["dates"][0]) == "2015-04-01" and str(row["dates"][-1]) == "2017-03-31"
    assert list(row["dynamic_variables"]) == list(DYNAMIC_VARIABLES)
    assert list(row["static_variables"]) == list(STATIC_VARIABLES)
    assert list(row["target_variables"]) == ["soil_moisture"]
    lat, lon = (float(x) for x in (SMAP / "crd.csv").read_text().splitlines()[0].split(","))
    assert row["latitude"] == pytest.approx(lat) and row["longitude"] == pytest.approx(lon)


@needs_data
def test_precipitation_is_apcp_times_24(smap):
    _, ds = smap
    rows = ds.with_format("numpy")[[0, 200]]
    j = list(DYNAMIC_VARIABLES).index("precipitation")
    k = list(DYNAMIC_VARIABLES).index("temperature_mean")
    for i, pixel in enumerate((0, 200)):
        for day in (0, 100, 365 + 10):
            year = "2015" if day < 366 else "2016"
            col = day if day < 366 else day - 366
            raw = _raw(SMAP / year / "APCP_FORA.csv", pixel, col)
            assert rows["dynamic"][i, day, j] == pytest.approx(raw * 24.0, rel=1e-6)
            assert rows["dynamic"][i, day, k] == pytest.approx(_raw(SMAP / year / "TMP_2_FORA.csv", pixel, col) - 273.15, abs=1e-3)


@needs_data
def test_soil_moisture_target_and_gaps(smap):
    _, ds = smap
    row = ds.with_format("numpy")[0]
    raw = [float(x) for x in (SMAP / "2015" / "SMAP_AM.csv").read_text().splitlines()[0].split(",")]
    sm = row["targets"][:, 0]
    for day, v in enumerate(raw[:40]):
        if v == -9999:
            assert np.isnan(sm[day])
        else:
            assert sm[day] == pytest.approx(v, rel=1e-6)
    assert 0.3 < np.isfinite(sm).mean() < 0.6


@needs_data
def test_statics_units(smap):
    _, ds = smap
    stat = np.asarray(ds.with_format("numpy")["static"])
    names = list(STATIC_VARIABLES)
    sand = stat[:, names.index("sand_fraction")]
    assert np.nanmax(sand) <= 1 and np.nanmin(sand) > 0
    assert sand[0] == pytest.approx(float((SMAP / "const" / "Sand.csv").read_text().split()[0]) / 100, rel=1e-6)
    assert np.isnan(stat).any(axis=1).sum() == 1  # the one pixel with -9999 statics is kept, as NaN


@needs_data
def test_year_selection_and_cache_key(tmp_path):
    b = HydroDLSmap(data_dir=str(SMAP), cache_dir=str(tmp_path), years=[2016], region_grid_deg=None)
    assert b.cache_dir != HydroDLSmap(data_dir=str(SMAP), cache_dir=str(tmp_path)).cache_dir
    b.download_and_prepare()
    ds = b.as_dataset(split="all")
    row = ds.with_format("numpy")[0]
    assert str(row["dates"][0]) == "2016-04-01" and len(row["dates"]) == 365
    assert set(ds["region"]) == {"conus"}
    with pytest.raises(DataFormatError, match="contiguous"):
        HydroDLSmap(data_dir=str(SMAP), cache_dir=str(tmp_path), years=[2015, 2017]).download_and_prepare()


# ------------------------------------------------------------------------------------------------
# small synthetic layout (always runs)
# ------------------------------------------------------------------------------------------------

N_PIX = 3


def make_smap(root: Path, years=((2015, "2015-04-01", 4), (2016, "2015-04-05", 3)), smap_years=(2015, 2016)) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "crd.csv").write_text("45.5,-120.25\n35.0,-95.0\n31.0,-81.5\n")
    (root / "const").mkdir()
    for name, vals in {"Sand": (50, 30, -9999), "Silt": (30, 40, -9999), "Clay": (20, 30, -9999),
                       "Bulk": (1.2, 1.3, -9999), "Capa": (20, 25, -9999), "NDVI": (0.3, 0.5, 0.6)}.items():
        (root / "const" / f"{name}.csv").write_text("".join(f"{v}\n" for v in vals))
    for year, start, n in years:
        d = root / str(year)
        d.mkdir()
        dates = np.arange(np.datetime64(start), np.datetime64(start) + n)
        (d / "timeStr.csv").write_text("".join(f"{x}\n" for x in dates))
        for k, stem in enumerate(s for s, _, _ in DYNAMIC_SOURCES.values()):
            m = np.arange(N_PIX * n, dtype=float).reshape(N_PIX, n) + 10 * k
            if stem == "TMP_2_FORA":
                m += 273.15
            if stem == "SPFH_2_FORA":
                m *= 1e-3  # kg/kg
            m[1, 1] = -9999
            (d / f"{stem}.csv").write_text("\n".join(",".join(f"{v:g}" for v in r) for r in m) + "\n")
        if year in smap_years:
            m = np.full((N_PIX, n), 0.25)
            m[:, ::2] = -9999
            (d / "SMAP_AM.csv").write_text("\n".join(",".join(f"{v:g}" for v in r) for r in m) + "\n")
    return root


def _build(root: Path, cache: Path, **kw):
    b = HydroDLSmap(data_dir=str(root), cache_dir=str(cache), **kw)
    b.download_and_prepare()
    return b, b.as_dataset(split="all")


def test_synthetic_layout_builds(tmp_path):
    root = make_smap(tmp_path / "raw", smap_years=(2015,))
    _, ds = _build(root, tmp_path / "cache", missing_targets="nan")
    assert ds.num_rows == N_PIX and ds["site_id"] == ["pixel_0000", "pixel_0001", "pixel_0002"]
    assert ds["region"] == ["lat40_lon-130", "lat30_lon-100", "lat30_lon-90"]
    rows = ds.with_format("numpy")[:]
    dyn, tgt, stat = rows["dynamic"], rows["targets"], rows["static"]
    assert dyn.shape == (N_PIX, 7, 7) and tgt.shape == (N_PIX, 7, 1)
    j = list(DYNAMIC_VARIABLES).index("precipitation")
    assert dyn[0, 2, j] == pytest.approx(2 * 24.0)
    assert np.isnan(dyn[1, 1]).all()  # -9999 in every forcing file
    assert dyn[0, 0, list(DYNAMIC_VARIABLES).index("temperature_mean")] == pytest.approx(10.0, abs=1e-4)
    assert np.isnan(tgt[:, 0, 0]).all() and tgt[0, 1, 0] == pytest.approx(0.25)
    assert np.isnan(tgt[:, 4:, 0]).all()  # second year has no SMAP_AM.csv, accepted by missing_targets="nan"
    assert stat[0, 0] == pytest.approx(0.5) and np.isnan(stat[2, :5]).all() and stat[2, 5] == pytest.approx(0.6)
    assert stat[1, -2:].tolist() == [35.0, -95.0]


def test_region_labels():
    assert region_label([45.5, 29.9], [-120.25, -80.0], 10).tolist() == ["lat40_lon-130", "lat20_lon-80"]
    assert region_label([45.5], [-120.25], 2.5).tolist() == ["lat45_lon-122.5"]
    assert region_label([45.5], [-120.25], None).tolist() == ["conus"]


def test_wrong_row_count(tmp_path):
    root = make_smap(tmp_path / "raw")
    f = root / "2015" / "DSWRF_FORA.csv"
    f.write_text("\n".join(f.read_text().splitlines()[:2]) + "\n")
    with pytest.raises(DataFormatError, match="expected 3 rows .* found 2 .truncated") as info:
        _build(root, tmp_path / "cache")
    assert info.value.path == str(f)


def test_wrong_column_count_and_non_numeric(tmp_path):
    root = make_smap(tmp_path / "raw")
    f = root / "2016" / "UGRD_10_FORA.csv"
    lines = f.read_text().splitlines()
    good = list(lines)
    lines[1] += ",1.0"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match="expected 3 columns, found 4") as info:
        _build(root, tmp_path / "cache")
    assert info.value.path == str(f) and info.value.line == 2
    parts = good[2].split(",")
    parts[1] = "abc"
    good[2] = ",".join(parts)
    f.write_text("\n".join(good) + "\n")
    with pytest.raises(DataFormatError, match="expected a number, found 'abc'") as info:
        _build(root, tmp_path / "cache2")
    assert info.value.line == 3


def test_missing_forcing_file_is_an_error(tmp_path):
    root = make_smap(tmp_path / "raw")
    (root / "2016" / "SPFH_2_FORA.csv").unlink()
    with pytest.raises(DataFormatError, match="file not found") as info:
        _build(root, tmp_path / "cache")
    assert info.value.path.endswith("SPFH_2_FORA.csv")


def test_missing_static_and_coordinates(tmp_path):
    root = make_smap(tmp_path / "raw")
    (root / "const" / "Capa.csv").unlink()
    with pytest.raises(DataFormatError, match="Capa.csv: file not found"):
        _build(root, tmp_path / "cache")
    (root / "crd.csv").write_text("45.5,-120.25\n35.0\n")
    with pytest.raises(DataFormatError, match=r"crd.csv, line 2: expected 2 columns, found 1"):
        _build(root, tmp_path / "cache2")


def test_years_must_be_contiguous_and_dates_valid(tmp_path):
    root = make_smap(tmp_path / "raw", years=((2015, "2015-04-01", 4), (2016, "2015-04-07", 3)))
    with pytest.raises(DataFormatError, match="contiguous") as info:
        _build(root, tmp_path / "cache")
    assert info.value.path.endswith(os.path.join("2016", "timeStr.csv"))
    _, ds = _build(root, tmp_path / "cache_one", years=[2016])
    assert ds.num_rows == N_PIX
    (root / "2015" / "timeStr.csv").write_text("2015-04-01\n2015-04-02\n2015-13-03\n2015-04-04\n")
    with pytest.raises(DataFormatError, match="YYYY-MM-DD") as info:
        _build(root, tmp_path / "cache2", years=[2015])
    assert info.value.line == 3


def test_missing_year_folder(tmp_path):
    root = make_smap(tmp_path / "raw")
    with pytest.raises(DataFormatError, match="year folder for 2019 not found"):
        _build(root, tmp_path / "cache", years=[2019])
