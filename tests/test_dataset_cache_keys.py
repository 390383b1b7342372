"""Dataset caches are keyed by what the builders read: an edited, replaced or added raw file, or a
changed basin list, is rebuilt instead of served from the old cache; unchanged files reuse it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_camels_us import AREA_M2, _forcing_lines, _forcing_path, make_camels
from test_hydrodl_smap import make_smap

from stefaland_hf.data.camels_us import CamelsUS
from stefaland_hf.data.errors import DataFormatError
from stefaland_hf.data.hydrodl_smap import HydroDLSmap
from stefaland_hf.training.run_folder import dataset_content_sha256, dataset_fingerprint

END = "1980-01-10"


def _camels(root: Path, cache: Path, **kw) -> CamelsUS:
    return CamelsUS(data_dir=str(root), cache_dir=str(cache), end_date=END, **kw)


def _prepared(builder):
    builder.download_and_prepare()
    return builder.as_dataset(split="all").with_format("numpy")


def _precipitation(ds, site: int = 0) -> np.ndarray:
    return ds[site]["dynamic"][:, list(ds[site]["dynamic_variables"]).index("precipitation")]


def test_unchanged_files_reuse_the_cache(tmp_path):
    root = make_camels(tmp_path / "raw")
    a = _camels(root, tmp_path / "cache")
    _prepared(a)
    b = _camels(root, tmp_path / "cache")
    assert b.cache_dir == a.cache_dir
    assert Path(b.cache_dir).parent.parent.parent == tmp_path / "cache" / "camels_us"  # <builder>/<config>/<version>/<key>
    assert Path(b.cache_dir).name == b.hash and len(b.hash) == 16


def test_edited_forcing_file_is_rebuilt(tmp_path):
    root = make_camels(tmp_path / "raw")
    a = _camels(root, tmp_path / "cache")
    before = _precipitation(_prepared(a))
    assert before[3] == pytest.approx(4.5)
    f = _forcing_path(root)
    f.write_text(f.read_text().replace("\t4.50\t", "\t14.50\t"))  # day 3 precipitation
    b = _camels(root, tmp_path / "cache")
    assert b.cache_dir != a.cache_dir
    after = _precipitation(_prepared(b))
    assert after[3] == pytest.approx(14.5)
    ds_a = a.as_dataset(split="all")
    ds_b = b.as_dataset(split="all")
    assert ds_a._fingerprint != ds_b._fingerprint
    assert dataset_content_sha256(ds_a) != dataset_content_sha256(ds_b)  # what run manifests record


def test_the_same_data_elsewhere_has_the_same_manifest_identity(tmp_path):
    """Run manifests record the data's content: a copy of the raw files in another folder (other paths and
    modification times, so another cache) is the same data; a subset of its rows is not."""
    root = make_camels(tmp_path / "raw")
    copy = shutil.copytree(root, tmp_path / "elsewhere" / "raw", copy_function=shutil.copy)  # new mtimes
    a = _prepared(_camels(root, tmp_path / "cache"))
    b = _prepared(_camels(copy, tmp_path / "cache2"))
    assert a._fingerprint != b._fingerprint
    assert dataset_fingerprint(a) == dataset_fingerprint(b)
    assert dataset_content_sha256(a.select([0])) != dataset_content_sha256(a) != dataset_content_sha256(a.select([1, 0]))


def test_same_size_edit_with_a_new_mtime_is_rebuilt(tmp_path):
    root = make_camels(tmp_path / "raw")
    f = _forcing_path(root)
    st = os.stat(f)
    a = _camels(root, tmp_path / "cache")
    _prepared(a)
    f.write_text(f.read_text().replace("\t4.50\t", "\t7.50\t"))  # same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert os.stat(f).st_size == st.st_size
    b = _camels(root, tmp_path / "cache")
    assert b.cache_dir != a.cache_dir
    assert _precipitation(_prepared(b))[3] == pytest.approx(7.5)


def test_streamflow_and_attribute_files_are_part_of_the_key(tmp_path):
    root = make_camels(tmp_path / "raw")
    a = _camels(root, tmp_path / "cache")
    q = root / "usgs_streamflow" / "01" / "01000001_streamflow_qc.txt"
    q.write_text(q.read_text().replace("  103.00 ", " 1103.00 "))
    b = _camels(root, tmp_path / "cache")
    soil = root / "camels_attributes_v2.0" / "camels_soil.txt"
    soil.write_text(soil.read_text() + "\n")
    c = _camels(root, tmp_path / "cache")
    assert len({a.cache_dir, b.cache_dir, c.cache_dir}) == 3


def test_forcing_replaced_by_garbage_is_an_error_not_the_old_data(tmp_path):
    root = make_camels(tmp_path / "raw")
    _prepared(_camels(root, tmp_path / "cache"))
    f = _forcing_path(root)
    f.write_text("garbage\n")
    with pytest.raises(DataFormatError) as info:
        _prepared(_camels(root, tmp_path / "cache"))
    assert info.value.path == str(f)


def _add_basin(root: Path, basin: str = "01000003", huc: str = "01") -> None:
    src = _forcing_path(root, "01000001")
    (root / "basin_mean_forcing" / "daymet" / huc / f"{basin}_lump_cida_forcing_leap.txt").write_text(src.read_text())
    q = root / "usgs_streamflow" / huc / "01000001_streamflow_qc.txt"
    (q.parent / f"{basin}_streamflow_qc.txt").write_text(q.read_text().replace("01000001", basin))
    for table in ("topo", "soil", "geol", "vege", "clim"):
        p = root / "camels_attributes_v2.0" / f"camels_{table}.txt"
        lines = p.read_text().splitlines()
        lines.append(lines[1].replace("01000001", basin))
        p.write_text("\n".join(lines) + "\n")


def test_basin_added_to_basin_list_appears(tmp_path):
    root = make_camels(tmp_path / "raw")
    a = _camels(root, tmp_path / "cache")
    assert list(_prepared(a)["site_id"]) == ["01000001", "03000002"]
    _add_basin(root)
    with open(root / "basin_list.txt", "a") as fh:
        fh.write("01000003\n")
    b = _camels(root, tmp_path / "cache")
    assert b.cache_dir != a.cache_dir
    assert list(_prepared(b)["site_id"]) == ["01000001", "03000002", "01000003"]


def test_basin_list_contents_not_only_its_path(tmp_path):
    root = make_camels(tmp_path / "raw")
    listing = tmp_path / "my_basins.txt"
    listing.write_text("01000001\n")
    a = _camels(root, tmp_path / "cache", basins=str(listing))
    assert list(_prepared(a)["site_id"]) == ["01000001"]
    listing.write_text("03000002\n")  # same size, same path
    b = _camels(root, tmp_path / "cache", basins=str(listing))
    assert list(_prepared(b)["site_id"]) == ["03000002"]


def test_smap_edited_target_is_rebuilt(tmp_path):
    root = make_smap(tmp_path / "raw")
    a = HydroDLSmap(data_dir=str(root), cache_dir=str(tmp_path / "cache"))
    before = _prepared(a)[0]["targets"][1, 0]
    assert before == pytest.approx(0.25)
    f = root / "2015" / "SMAP_AM.csv"
    f.write_text(f.read_text().replace("0.25", "0.125"))
    b = HydroDLSmap(data_dir=str(root), cache_dir=str(tmp_path / "cache"))
    assert b.cache_dir != a.cache_dir
    assert _prepared(b)[0]["targets"][1, 0] == pytest.approx(0.125)


def test_smap_new_year_folder_changes_the_key(tmp_path):
    root = make_smap(tmp_path / "raw", years=((2015, "2015-04-01", 4),), smap_years=(2015,))
    a = HydroDLSmap(data_dir=str(root), cache_dir=str(tmp_path / "cache"))
    assert len(_prepared(a)[0]["dates"]) == 4
    extra = make_smap(tmp_path / "other", years=((2016, "2015-04-05", 3),), smap_years=(2016,))
    (extra / "2016").rename(root / "2016")
    b = HydroDLSmap(data_dir=str(root), cache_dir=str(tmp_path / "cache"))
    assert b.cache_dir != a.cache_dir
    assert len(_prepared(b)[0]["dates"]) == 7


def test_area_header_is_read_from_the_current_file(tmp_path):
    """The mm/day conversion uses the forcing header's area: editing it must change the targets."""
    root = make_camels(tmp_path / "raw")
    a = _prepared(_camels(root, tmp_path / "cache", basins=["01000001"]))
    f = _forcing_path(root)
    lines = _forcing_lines("01000001")
    lines[2] = f" {AREA_M2['01000001'] * 2:.0f}\n"
    f.write_text("".join(lines))
    b = _prepared(_camels(root, tmp_path / "cache", basins=["01000001"]))
    assert b[0]["targets"][3, 0] == pytest.approx(a[0]["targets"][3, 0] / 2, rel=1e-6)
