"""The frozen-backbone embedding cache: same predictions as the live backbone, keys that follow the content, safe writes."""

import json

import numpy as np
import pytest
import torch
from conftest import tiny_config

from stefaland_hf import StefaLandForTimeSeriesRegression
from stefaland_hf.data import load_site_dataset
from stefaland_hf.data.samplers import WindowDataset, collate_windows
from stefaland_hf.training import embedding_cache
from stefaland_hf.training.embedding_cache import CachedEmbeddingWindows, EmbeddingCache, windows_fingerprint

PERIOD = ("2000-01-01", "2001-12-31")


@pytest.fixture(scope="module")
def synthland(tmp_path_factory):
    return load_site_dataset("synthland", config_name="tiny", cache_dir=str(tmp_path_factory.mktemp("cache")))


def _windows(dataset, config, sites=(0, 1, 2), stride=30):
    return WindowDataset(
        dataset, sites=list(sites), period=PERIOD, seq_len=60, warmup=20, stride=stride,
        dynamic_variables=config.dynamic_variables, static_variables=config.static_variables, target_variables=["streamflow"],
    )


def _model(dataset, head_mode="resconn", seed=0):
    torch.manual_seed(seed)
    row = dataset[0]
    config = tiny_config(
        dynamic_variables=list(row["dynamic_variables"]), static_variables=list(row["static_variables"]),
        dynamic_groups={}, static_groups={}, never_mask_variables=[],
        dynamic_mean=None, dynamic_std=None, static_mean=None, static_std=None, head_mode=head_mode,
    )
    return StefaLandForTimeSeriesRegression(config).eval()


def _silent(*args):
    pass


def test_cached_predictions_match_the_live_backbone(tmp_path, synthland):
    model = _model(synthland)
    windows = _windows(synthland, model.config)
    cache = EmbeddingCache.for_windows(model, windows, tmp_path, batch_size=7, log=_silent)
    assert cache.embeddings.dtype == np.float16 and cache.embeddings.shape == (len(windows), 60, model.config.d_model)
    batch = collate_windows(CachedEmbeddingWindows(windows, cache).__getitems__(np.arange(len(windows))), drop_keys=("site_index", "start"))
    with torch.no_grad():
        live_embedding = model.embed(batch["x_dynamic"], batch["x_static"])
        live = model(batch["x_dynamic"], batch["x_static"]).prediction
        cached = model(batch["x_dynamic"], batch["x_static"], backbone_embedding=batch["backbone_embedding"]).prediction
    # the cache holds the live embedding rounded to float16 (relative step 2**-11 = 4.9e-4)
    np.testing.assert_allclose(batch["backbone_embedding"].float(), live_embedding, rtol=2**-10, atol=1e-6)
    assert not torch.equal(live, cached)  # the cached path really ran on the float16 values
    scale = live.abs().max()
    assert (live - cached).abs().max() <= 2e-3 * scale


def test_the_key_follows_weights_and_data(tmp_path, synthland):
    model = _model(synthland)
    windows = _windows(synthland, model.config)
    first = EmbeddingCache.for_windows(model, windows, tmp_path, log=_silent)
    messages = []
    again = EmbeddingCache.for_windows(model, windows, tmp_path, log=messages.append)
    assert again.path == first.path and "reusing" in messages[0]
    model.head.embedding_adds_static = True  # a head that adds the static token's state reads other embeddings
    with_static = EmbeddingCache.for_windows(model, windows, tmp_path, log=_silent)
    assert with_static.path != first.path and not np.array_equal(with_static.embeddings, first.embeddings)
    model.head.embedding_adds_static = False
    other_sites = EmbeddingCache.for_windows(model, _windows(synthland, model.config, sites=(0, 1, 3)), tmp_path, log=_silent)
    assert other_sites.path != first.path
    with torch.no_grad():
        model.stefaland.output_projection.bias[0] += 1e-3
    retrained = EmbeddingCache.for_windows(model, windows, tmp_path, log=_silent)
    assert retrained.path != first.path
    assert not np.array_equal(retrained.embeddings, first.embeddings)
    # an edited input value changes the data fingerprint
    before = windows_fingerprint(windows)
    windows._static[1, 0] += 1.0
    assert windows_fingerprint(windows) != before


def test_a_tampered_or_partial_cache_is_never_read(tmp_path, synthland, monkeypatch):
    model = _model(synthland)
    windows = _windows(synthland, model.config)
    cache = EmbeddingCache.for_windows(model, windows, tmp_path, log=_silent)
    manifest = json.loads((cache.path / "manifest.json").read_text())
    (cache.path / "manifest.json").write_text(json.dumps({**manifest, "backbone": "0" * 64}))
    with pytest.raises(ValueError, match="manifest differs in \\['backbone'\\]"):
        EmbeddingCache.for_windows(model, windows, tmp_path, log=_silent)
    (cache.path / "manifest.json").write_text("{truncated")
    with pytest.raises(ValueError, match="unreadable manifest.json"):
        EmbeddingCache.for_windows(model, windows, tmp_path, log=_silent)

    # a build that fails half-way leaves no folder that looks complete
    fresh = tmp_path / "fresh"
    calls = {"n": 0}
    embed = model.embed

    def failing_embed(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("interrupted")
        return embed(*args, **kwargs)

    monkeypatch.setattr(model, "embed", failing_embed)
    with pytest.raises(RuntimeError, match="interrupted"):
        EmbeddingCache.for_windows(model, windows, fresh, batch_size=2, log=_silent)
    assert list(fresh.iterdir()) == []
    monkeypatch.setattr(model, "embed", embed)
    assert EmbeddingCache.for_windows(model, windows, fresh, log=_silent).embeddings.shape[0] == len(windows)


def test_a_full_disk_is_refused_before_writing(tmp_path, synthland, monkeypatch):
    model = _model(synthland)
    windows = _windows(synthland, model.config)
    monkeypatch.setattr(embedding_cache.shutil, "disk_usage", lambda path: type("Usage", (), {"free": 1024})())
    with pytest.raises(OSError, match="MiB needed under .*1 MiB free|MiB needed under .*0 MiB free"):
        EmbeddingCache.for_windows(model, windows, tmp_path, log=_silent)
    assert not any(tmp_path.iterdir())


def test_precomputed_embeddings_are_refused_where_they_cannot_stand_in(synthland):
    for mode in ("scratch", "direct"):
        model = _model(synthland, head_mode=mode)
        x_dynamic, x_static = torch.zeros(2, 10, len(model.config.dynamic_variables)), torch.zeros(2, len(model.config.static_variables))
        with pytest.raises(ValueError, match="frozen modes"):
            model(x_dynamic, x_static, backbone_embedding=torch.zeros(2, 10, model.config.d_model))
        with pytest.raises(ValueError, match="frozen backbone"):
            EmbeddingCache.for_windows(model, _windows(synthland, model.config), "unused", log=_silent)
    model = _model(synthland)
    with pytest.raises(ValueError, match="expected shape \\(2, 10, 16\\)"):
        model(x_dynamic, x_static, backbone_embedding=torch.zeros(2, 10, 8))


def test_a_cache_another_process_finished_first_is_used(tmp_path, synthland):
    """Two runs building the same key at once: the later rename finds the folder complete, keeps it and drops its copy."""
    model = _model(synthland)
    windows = _windows(synthland, model.config)
    cache = EmbeddingCache.for_windows(model, windows, tmp_path, log=_silent)
    before = np.array(cache.embeddings)
    manifest = {k: v for k, v in json.loads((cache.path / "manifest.json").read_text()).items() if k != "build_seconds"}
    embedding_cache._build(model, windows, cache.path, manifest, batch_size=4)
    assert [p.name for p in tmp_path.iterdir()] == [cache.path.name]  # no partial copy left behind
    np.testing.assert_array_equal(EmbeddingCache.for_windows(model, windows, tmp_path, log=_silent).embeddings, before)


def test_a_cache_with_changed_content_or_a_truncated_file_is_refused_naming_the_folder(tmp_path, synthland):
    """An embeddings.npy zeroed in place (same name and size) was reused (median NSE 0.017 -> -0.043); a truncated one
    failed with numpy's message, naming no path. Both now name the folder and say to delete it."""
    model = _model(synthland)
    windows = _windows(synthland, model.config)
    cache = EmbeddingCache.for_windows(model, windows, tmp_path, log=_silent)
    assert len(cache.manifest["content_sha256"]) == 64
    file = cache.path / "embeddings.npy"
    data = file.read_bytes()
    header = len(data) - cache.nbytes
    file.write_bytes(data[:header] + bytes(cache.nbytes))  # zeroed, same size
    with pytest.raises(ValueError, match=rf"embedding cache {cache.path}: embeddings.npy is not the file that was built .* delete the folder {cache.path} to rebuild it"):
        EmbeddingCache.for_windows(model, windows, tmp_path, log=_silent)
    file.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"embedding cache {cache.path}: embeddings.npy is unreadable .* delete the folder {cache.path} to rebuild it"):
        EmbeddingCache.for_windows(model, windows, tmp_path, log=_silent)
    file.write_bytes(data)
    assert np.array_equal(EmbeddingCache.for_windows(model, windows, tmp_path, log=_silent).embeddings, cache.embeddings)
