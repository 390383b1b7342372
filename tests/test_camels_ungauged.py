"""Ungauged basins: CamelsUS builds declared basins without streamflow (NaN targets, gauged=False,
reported), refuses to pass a missing streamflow file off as an ungauged basin, reads extra raw
folders such as the unpacked ``camels_us_ungauged.tar.xz``; every builder writes ``gauged``; and
``require_gauged`` refuses ungauged sites in a finetuning/evaluation split. Small synthetic raw
layouts always run; the real archive is read when ../shared/data has it."""

from __future__ import annotations

import logging
import tarfile
from pathlib import Path

import datasets
import numpy as np
import pytest
from conftest import CAMELS_US, SHARED_DATA
from test_camels_us import HUC, N_DAYS, _forcing_lines, make_camels
from test_hydrodl_smap import make_smap

from stefaland_hf.data.camels_us import CamelsUS, read_basin_list
from stefaland_hf.data.errors import DataFormatError
from stefaland_hf.data.hydrodl_smap import HydroDLSmap
from stefaland_hf.data.schema import site_features
from stefaland_hf.data.splits import Split, pub_folds, require_gauged
from stefaland_hf.data.synthland import SynthLand

LOGGER = "stefaland_hf.data.camels_us"
END = f"1980-01-{N_DAYS:02d}"
NEW = "05000003"  # a basin that only the extra folder has


def _build(root: Path, cache: Path, **kw):
    kw.setdefault("end_date", END)
    b = CamelsUS(data_dir=str(root), cache_dir=str(cache), **kw)
    b.download_and_prepare()
    return b, b.as_dataset(split="all")


def _streamflow(root: Path, basin: str) -> Path:
    return root / "usgs_streamflow" / HUC[basin] / f"{basin}_streamflow_qc.txt"


def _extra_folder(root: Path, extra: Path, n_days: int = N_DAYS) -> Path:
    """``extra``: a forcings-only raw folder (like camels_us_ungauged/) with basin NEW, whose
    attribute rows are added to ``root``'s tables (a copy of 03000002's)."""
    f = extra / "basin_mean_forcing" / "daymet" / "05" / f"{NEW}_lump_cida_forcing_leap.txt"
    f.parent.mkdir(parents=True)
    f.write_text("".join(_forcing_lines("03000002", n_days)))
    (extra / "basin_list.txt").write_text(f"{NEW}\n")
    for table in (root / "camels_attributes_v2.0").glob("camels_*.txt"):
        lines = table.read_text().splitlines()
        lines.append(lines[-1].replace("03000002", NEW, 1))
        table.write_text("\n".join(lines) + "\n")
    return extra


# ------------------------------------------------------------------------------------------------
# declaring ungauged basins
# ------------------------------------------------------------------------------------------------


def test_declared_ungauged_basin_builds_with_nan_targets_and_is_reported(tmp_path, caplog):
    root = make_camels(tmp_path / "raw")
    _streamflow(root, "03000002").unlink()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        b, ds = _build(root, tmp_path / "cache", ungauged=["03000002"])
    assert ds["site_id"] == ["01000001", "03000002"] and ds["gauged"] == [True, False]
    rows = ds.with_format("numpy")[:]
    assert np.isnan(rows["targets"][1]).all()
    assert np.isfinite(rows["targets"][0]).sum() == N_DAYS - 2  # the gauged one keeps its streamflow
    precipitation = rows["dynamic"][1][:, list(rows["dynamic_variables"][1]).index("precipitation")]
    np.testing.assert_allclose(precipitation, 1.5 * np.arange(N_DAYS))  # forcings read as usual
    assert np.isfinite(rows["static"][1]).all()
    assert b.ungauged_basins == ["03000002"]
    assert "1 of 2 basins are ungauged (no streamflow file" in caplog.text and "03000002" in caplog.text


def test_ungauged_list_file_names_the_basins(tmp_path, caplog):
    root = make_camels(tmp_path / "raw")
    for basin in HUC:
        _streamflow(root, basin).unlink()
    listing = tmp_path / "ungauged.txt"
    listing.write_text("03000002\n01000001\n09999999\n")  # a catalogue: ids not built are ignored
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        b, ds = _build(root, tmp_path / "cache", ungauged=str(listing))
    assert ds["gauged"] == [False, False] and b.ungauged_basins == ["01000001", "03000002"]
    assert "2 of 2 basins are ungauged" in caplog.text and str(listing) in caplog.text


def test_missing_streamflow_file_of_undeclared_basin_is_an_error(tmp_path):
    root = make_camels(tmp_path / "raw")
    _streamflow(root, "03000002").unlink()
    with pytest.raises(DataFormatError, match=r"no streamflow file for basin 03000002 .*declare it with ungauged=") as info:
        _build(root, tmp_path / "cache")
    assert "usgs_streamflow" in info.value.path


def test_declaring_one_basin_does_not_hide_another_missing_file(tmp_path):
    root = make_camels(tmp_path / "raw")
    for basin in HUC:
        _streamflow(root, basin).unlink()
    with pytest.raises(DataFormatError, match="no streamflow file for basin 01000001"):
        _build(root, tmp_path / "cache", ungauged=["03000002"])


def test_declared_basin_with_a_streamflow_file_is_an_error(tmp_path):
    root = make_camels(tmp_path / "raw")
    with pytest.raises(DataFormatError, match="basin 03000002 is declared ungauged by the ungauged= list but has this streamflow file") as info:
        _build(root, tmp_path / "cache", ungauged=["03000002"])
    assert info.value.path == str(_streamflow(root, "03000002"))


def test_skip_bad_basins_skips_a_missing_streamflow_file_instead_of_calling_it_ungauged(tmp_path):
    root = make_camels(tmp_path / "raw")
    _streamflow(root, "03000002").unlink()
    b, ds = _build(root, tmp_path / "cache", skip_bad_basins=True)
    assert ds["site_id"] == ["01000001"] and ds["gauged"] == [True]
    assert b.ungauged_basins == [] and "no streamflow file for basin 03000002" in dict(b.skipped_basins)["03000002"]


def test_bad_ungauged_argument(tmp_path):
    root = make_camels(tmp_path / "raw")
    with pytest.raises(ValueError, match=r"ungauged: '3000002' is not a CAMELS gauge id"):
        CamelsUS(data_dir=str(root), cache_dir=str(tmp_path), ungauged=["3000002"])
    with pytest.raises(ValueError, match=r"ungauged: \['03000002'\] listed more than once"):
        CamelsUS(data_dir=str(root), cache_dir=str(tmp_path), ungauged=["03000002", "03000002"])
    with pytest.raises(DataFormatError, match="basin list file not found") as info:
        CamelsUS(data_dir=str(root), cache_dir=str(tmp_path), ungauged=str(tmp_path / "absent.txt"))
    assert info.value.path == str(tmp_path / "absent.txt")


def test_cache_key_follows_the_ungauged_list_and_new_streamflow_files(tmp_path):
    root = make_camels(tmp_path / "raw")
    flow = _streamflow(root, "03000002")
    record = flow.read_text()
    flow.unlink()
    listing = tmp_path / "ungauged.txt"
    listing.write_text("03000002\n")
    a, _ = _build(root, tmp_path / "cache", ungauged=str(listing))
    listing.write_text("03000002\n04000000\n")
    b, _ = _build(root, tmp_path / "cache", ungauged=str(listing))
    assert b.cache_dir != a.cache_dir  # the list's contents are part of the key
    # a streamflow file appearing for a declared basin is not hidden by the cached build
    flow.write_text(record)
    with pytest.raises(DataFormatError, match="declared ungauged"):
        _build(root, tmp_path / "cache", ungauged=str(listing))


# ------------------------------------------------------------------------------------------------
# extra raw folders (the layout of camels_us_ungauged.tar.xz)
# ------------------------------------------------------------------------------------------------


def test_extra_data_dir_adds_its_basins_and_files(tmp_path, caplog):
    root = make_camels(tmp_path / "raw")
    extra = _extra_folder(root, tmp_path / "camels_us_ungauged")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        b, ds = _build(root, tmp_path / "cache", extra_data_dirs=[str(extra)], ungauged=str(extra / "basin_list.txt"))
    assert ds["site_id"] == ["01000001", "03000002", NEW]  # data_dir's basin list, then the extra folder's
    assert ds["gauged"] == [True, True, False] and ds["region"][2] == "05"
    rows = ds.with_format("numpy")[:]
    assert np.isnan(rows["targets"][2]).all() and np.isfinite(rows["targets"][1]).any()
    np.testing.assert_array_equal(rows["static"][2], rows["static"][1])  # the copied attribute row
    assert "1 of 3 basins are ungauged" in caplog.text


def test_extra_folder_basin_without_declaration_is_an_error(tmp_path):
    root = make_camels(tmp_path / "raw")
    extra = _extra_folder(root, tmp_path / "camels_us_ungauged")
    with pytest.raises(DataFormatError, match=f"no streamflow file for basin {NEW} in any HUC-02 folder of {root / 'usgs_streamflow'}, {extra / 'usgs_streamflow'}"):
        _build(root, tmp_path / "cache", extra_data_dirs=[str(extra)])


def test_basin_with_files_in_two_folders_is_an_error(tmp_path):
    root = make_camels(tmp_path / "raw")
    extra = _extra_folder(root, tmp_path / "camels_us_ungauged")
    twin = extra / "basin_mean_forcing" / "daymet" / "01" / "01000001_lump_cida_forcing_leap.txt"
    twin.parent.mkdir()
    twin.write_text("".join(_forcing_lines("01000001")))
    with pytest.raises(DataFormatError, match="more than one daymet forcing file for basin 01000001"):
        _build(root, tmp_path / "cache", extra_data_dirs=[str(extra)], ungauged=[NEW])


def test_basin_in_two_basin_lists_is_built_once(tmp_path):
    """As the shared archives come: one folder's list names basins whose streamflow another folder holds."""
    root = make_camels(tmp_path / "raw")
    extra = _extra_folder(root, tmp_path / "camels_us_ungauged")
    (extra / "basin_list.txt").write_text(f"{NEW}\n03000002\n")
    builder = CamelsUS(data_dir=str(root), cache_dir=str(tmp_path), extra_data_dirs=[str(extra)], ungauged=[NEW])
    ids = builder.basin_ids()
    assert ids.count("03000002") == 1 and ids[-1] == NEW and ids[:-1] == read_basin_list(root / "basin_list.txt")


def test_bad_extra_data_dirs(tmp_path):
    root = make_camels(tmp_path / "raw")
    with pytest.raises(DataFormatError, match="extra_data_dirs: folder not found") as info:
        CamelsUS(data_dir=str(root), cache_dir=str(tmp_path), extra_data_dirs=[str(tmp_path / "nowhere")])
    assert info.value.path == str(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="repeats a folder or data_dir"):
        CamelsUS(data_dir=str(root), cache_dir=str(tmp_path), extra_data_dirs=[str(root)])


# ------------------------------------------------------------------------------------------------
# every builder writes the same columns, gauged included
# ------------------------------------------------------------------------------------------------


def test_every_builder_writes_the_gauged_column(tmp_path):
    _, camels = _build(make_camels(tmp_path / "raw"), tmp_path / "c1")
    smap_builder = HydroDLSmap(data_dir=str(make_smap(tmp_path / "smap")), cache_dir=str(tmp_path / "c2"))
    smap_builder.download_and_prepare()
    smap = smap_builder.as_dataset(split="all")
    synth_builder = SynthLand(config_name="tiny", cache_dir=str(tmp_path / "c3"), n_sites=3)
    synth_builder.download_and_prepare()
    synth = synth_builder.as_dataset(split="all")
    schema = set(site_features(1, 1, 1))
    assert set(camels.column_names) == set(smap.column_names) == schema
    assert set(synth.column_names) == schema | {"oracle"}
    for ds in (camels, smap, synth):
        assert ds.features["gauged"] == datasets.Value("bool")
        assert all(g is True for g in ds["gauged"])


def test_smap_without_any_target_year_is_ungauged(tmp_path):
    b = HydroDLSmap(data_dir=str(make_smap(tmp_path / "smap", smap_years=())), cache_dir=str(tmp_path / "cache"), years=[2016], missing_targets="nan")
    b.download_and_prepare()
    ds = b.as_dataset(split="all")
    assert ds["gauged"] == [False] * ds.num_rows
    assert np.isnan(ds.with_format("numpy")[:]["targets"]).all()


# ------------------------------------------------------------------------------------------------
# require_gauged
# ------------------------------------------------------------------------------------------------


def _sites_dataset(gauged: list) -> datasets.Dataset:
    n, t = len(gauged), 3
    dates = np.arange(np.datetime64("2000-01-01"), np.datetime64("2000-01-01") + t).tolist()
    return datasets.Dataset.from_dict(
        {
            "site_id": [f"site{i}" for i in range(n)],
            "region": ["01"] * n,
            "latitude": [40.0] * n,
            "longitude": [-100.0] * n,
            "dates": [dates] * n,
            "dynamic": [np.zeros((t, 1), np.float32)] * n,
            "static": [[0.0]] * n,
            "targets": [np.zeros((t, 1), np.float32) if g else np.full((t, 1), np.nan, np.float32) for g in gauged],
            "gauged": gauged,
            "dynamic_variables": [["precipitation"]] * n,
            "static_variables": [["area"]] * n,
            "target_variables": [["streamflow"]] * n,
        },
        features=site_features(1, 1, 1),
    )


def test_require_gauged_names_the_ungauged_sites_of_each_part():
    ds = _sites_dataset([True, False, True, False, True])
    split = Split("fold0", train_sites=[0, 1], val_sites=[2], test_sites=[3, 4])
    with pytest.raises(ValueError, match=r"split 'fold0' puts ungauged sites") as info:
        require_gauged(ds, split)
    message = str(info.value)
    assert "train: 1 of 2 sites (site1)" in message and "test: 1 of 2 sites (site3)" in message
    assert "val:" not in message
    require_gauged(ds, split, parts=["val"])  # only the parts asked for are checked


def test_require_gauged_accepts_ungauged_sites_outside_the_split():
    ds = _sites_dataset([True, False, True, True])
    require_gauged(ds, Split("fold0", train_sites=[0], val_sites=[2], test_sites=[3]))
    gauged = np.flatnonzero(ds["gauged"])  # the way the error message suggests to make splits
    for split in pub_folds(len(gauged), k=3, seed=0, val_fraction=0.0):
        parts = {p: gauged[split.sites(p)] for p in ("train", "val", "test")}
        require_gauged(ds, Split(split.name, parts["train"], parts["val"], parts["test"]))


def test_require_gauged_lists_at_most_20_ids_with_the_count():
    ds = _sites_dataset([True] + [False] * 25)
    with pytest.raises(ValueError, match=r"test: 25 of 25 sites \(site1, .*, site20, \.\.\.\)") as info:
        require_gauged(ds, Split("s", train_sites=[0], val_sites=[], test_sites=list(range(1, 26))))
    assert "site21" not in str(info.value)


def test_require_gauged_refuses_a_split_of_another_site_order():
    ds = _sites_dataset([True, True, False])
    split = Split("s", train_sites=[0], val_sites=[], test_sites=[1], site_ids=["site2", "site1", "site0"])
    with pytest.raises(ValueError, match=r"not the dataset's .*split.remap\(dataset\['site_id'\]\)"):
        require_gauged(ds, split)
    with pytest.raises(ValueError, match=r"train: 1 of 1 sites \(site2\)"):  # by id, train holds site2
        require_gauged(ds, split.remap(ds["site_id"]))


def test_require_gauged_needs_the_gauged_column_and_valid_indices():
    ds = _sites_dataset([True, True])
    with pytest.raises(ValueError, match="has no 'gauged' column"):
        require_gauged(ds.remove_columns("gauged"), Split("s", [0], [], [1]))
    with pytest.raises(ValueError, match=r"split 's', test part: site index 5 is out of range for a dataset of 2 sites"):
        require_gauged(ds, Split("s", [0], [], [5]))


# ------------------------------------------------------------------------------------------------
# the real archive: 603 forcings-only CAMELS-US basins (../shared/data/camels_us_ungauged.tar.xz)
# ------------------------------------------------------------------------------------------------

ARCHIVE = SHARED_DATA / "camels_us_ungauged.tar.xz"
needs_archive = pytest.mark.skipif(
    not (ARCHIVE.is_file() and (CAMELS_US / "basin_list.txt").is_file()),
    reason=f"real CAMELS-US data and its ungauged archive not found at {CAMELS_US} and {ARCHIVE} (set STEFALAND_SHARED_DATA to the shared data folder)",
)
N_FORCINGS = 2  # forcing files unpacked: the archive is streamed and only its first members are read


@pytest.fixture(scope="session")
def ungauged_dir(tmp_path_factory) -> Path:
    """``<tmp>/camels_us_ungauged/`` with the archive's basin_list.txt and its first N_FORCINGS
    forcing files: a partial unpack in well under a second, where the whole one takes ~10 s."""
    dest = tmp_path_factory.mktemp("camels_us_ungauged")
    forcings = 0
    with tarfile.open(ARCHIVE, "r|xz") as archive:
        for member in archive:
            is_forcing = member.name.endswith("_lump_cida_forcing_leap.txt")
            if member.isfile() and (member.name.endswith("/basin_list.txt") or (is_forcing and forcings < N_FORCINGS)):
                archive.extract(member, dest, filter="data")
                forcings += is_forcing
            if forcings == N_FORCINGS and (dest / "camels_us_ungauged" / "basin_list.txt").is_file():
                break
    return dest / "camels_us_ungauged"


@needs_archive
def test_real_archive_is_603_more_basins_with_attributes(ungauged_dir):
    ungauged = read_basin_list(ungauged_dir / "basin_list.txt")
    gauged = read_basin_list(CAMELS_US / "basin_list.txt")
    assert len(ungauged) == 603 and len(gauged) == 67 and not set(ungauged) & set(gauged)
    topo = (CAMELS_US / "camels_attributes_v2.0" / "camels_topo.txt").read_text().splitlines()[1:]
    with_attributes = {line.split(";")[0] for line in topo}
    assert len(with_attributes) == 671 and with_attributes - set(ungauged) - set(gauged) == {"02464000"}
    assert not (ungauged_dir / "usgs_streamflow").exists()


@needs_archive
def test_real_670_basins_resolve_from_both_folders(ungauged_dir, tmp_path):
    b = CamelsUS(data_dir=str(CAMELS_US), cache_dir=str(tmp_path), extra_data_dirs=[str(ungauged_dir)], ungauged=str(ungauged_dir / "basin_list.txt"))
    ids = b.basin_ids()
    assert len(ids) == 670 and ids[:67] == read_basin_list(CAMELS_US / "basin_list.txt")
    assert set(b.ungauged_ids()) == set(ids[67:])


@needs_archive
def test_real_ungauged_basins_build_beside_a_gauged_one(ungauged_dir, tmp_path, caplog):
    unpacked = sorted(p.name[:8] for p in ungauged_dir.glob("basin_mean_forcing/daymet/*/*_lump_cida_forcing_leap.txt"))
    assert len(unpacked) == N_FORCINGS
    basins = ["01022500"] + unpacked
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        b = CamelsUS(
            data_dir=str(CAMELS_US), cache_dir=str(tmp_path), extra_data_dirs=[str(ungauged_dir)], basins=basins,
            ungauged=str(ungauged_dir / "basin_list.txt"), start_date="2000-01-01", end_date="2000-12-31",
        )
        b.download_and_prepare()
    ds = b.as_dataset(split="all")
    assert ds["site_id"] == basins and ds["gauged"] == [True, False, False]
    assert f"{N_FORCINGS} of 3 basins are ungauged (no streamflow file" in caplog.text
    rows = ds.with_format("numpy")[:]
    assert np.isfinite(rows["targets"][0]).all() and np.isnan(rows["targets"][1:]).all()
    assert np.isfinite(rows["dynamic"][1:]).all() and np.isfinite(rows["static"][1:]).all()
    (ffile,) = ungauged_dir.glob(f"basin_mean_forcing/daymet/*/{unpacked[0]}_lump_cida_forcing_leap.txt")
    line = next(l for l in ffile.read_text().splitlines()[4:] if l.split()[:3] == ["2000", "07", "01"])
    prcp = float(line.split()[5])
    day = int(np.flatnonzero(rows["dates"][1] == np.datetime64("2000-07-01"))[0])
    assert rows["dynamic"][1][day, list(rows["dynamic_variables"][1]).index("precipitation")] == pytest.approx(prcp, abs=1e-5)
    assert ds["region"][1] == ffile.parent.name


@needs_archive
def test_the_shipped_531_list_is_530_basins_of_the_shared_data_less_02464000(ungauged_dir, tmp_path):
    from stefaland_hf.data.camels_us import SHIPPED_BASIN_LISTS

    b = CamelsUS(data_dir=str(CAMELS_US), cache_dir=str(tmp_path), basins="camels_us_531")
    ids = b.basin_ids()
    assert len(ids) == len(set(ids)) == 530 and "02464000" not in ids
    assert "02464000" in SHIPPED_BASIN_LISTS["camels_us_531"].read_text()  # the header names the missing one
    shared = set(read_basin_list(CAMELS_US / "basin_list.txt")) | set(read_basin_list(ungauged_dir / "basin_list.txt"))
    assert set(ids) <= shared
    # the standard subset's published criteria (area < 2,000 km2, the two area estimates within 10 %) hold for nearly all
    topo = {line.split(";")[0]: line.split(";") for line in (CAMELS_US / "camels_attributes_v2.0" / "camels_topo.txt").read_text().splitlines()[1:]}
    small = [i for i in ids if float(topo[i][5]) < 2000 and abs(float(topo[i][6]) - float(topo[i][5])) / float(topo[i][5]) < 0.1]
    assert len(small) >= 525
