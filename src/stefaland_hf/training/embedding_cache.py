"""Frozen-backbone embeddings computed once and memory-mapped, so finetuning costs what the head costs.

In the frozen-backbone head modes (resconn, no_adapter, linear_probe) the encoder runs in eval mode
without masks, so the embedding of a window is a pure function of the window's inputs and the
backbone's weights. :class:`EmbeddingCache` computes it once for every window of a
:class:`~stefaland_hf.data.samplers.WindowDataset` (a fixed grid of starts), stores it as float16 in a
``.npy`` file that is memory-mapped when read, and :class:`CachedEmbeddingWindows` serves it to
the model as ``backbone_embedding``.

A cache folder is named by a SHA-256 key of everything the embeddings depend on: the backbone's
config and every weight, whether the head adds the static token's state (``embedding_adds_static``), and the
windows' variable lists, sites, starts and input values. Edited
data or another base model get another folder; a stale cache cannot be read. Folders are written
under a temporary name and renamed when complete, so an interrupted build leaves nothing that
looks finished; the SHA-256 of the embeddings file is recorded when it is built and checked each time it is reused
(a file zeroed or overwritten in place keeps its name and size). Location: ``embedding_cache_dir``, else ``$STEFALAND_CACHE_DIR/embeddings``, else
``~/.cache/stefaland_hf/embeddings``; delete a folder (or the whole directory) to clear it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..checkpoint_binding import backbone_fingerprint
from ..data.samplers import WindowBatch, WindowDataset, collate_windows

CACHE_DTYPE = np.float16
FORMAT_VERSION = 2  # 2: the manifest records the SHA-256 of embeddings.npy, checked on reuse
EMBEDDINGS_FILE = "embeddings.npy"
MANIFEST_FILE = "manifest.json"


def default_cache_dir() -> Path:
    root = os.environ.get("STEFALAND_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "stefaland_hf") / "embeddings"


def windows_fingerprint(windows: WindowDataset, site_chunk: int = 64) -> str:
    """SHA-256 of the windows' definition and the input values they read (dynamic span and statics per site)."""
    digest = hashlib.sha256(
        json.dumps([windows.dynamic_variables, windows.static_variables, windows.seq_len]).encode()
    )
    sites, starts = windows.site_index, windows.start
    digest.update(sites.tobytes())
    digest.update(starts.tobytes())
    if len(sites) == 0:
        return digest.hexdigest()
    first, last = int(starts.min()), int(starts.max()) + windows.seq_len
    unique_sites = np.unique(sites)
    for c0 in range(0, len(unique_sites), site_chunk):
        chunk = unique_sites[c0 : c0 + site_chunk]
        dynamic = windows.arrays.gather_dynamic(chunk, np.full(len(chunk), first), last - first, windows._dyn_cols)
        digest.update(np.ascontiguousarray(dynamic).tobytes())
    digest.update(np.ascontiguousarray(windows._static[unique_sites]).tobytes())
    return digest.hexdigest()


def _backbone_model(model):
    """The StefaLandForTimeSeriesRegression under a PEFT wrapper (or the model itself)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if getattr(base, "stefaland", None) is None or not base.config.backbone_frozen:
        raise ValueError(
            f"embedding cache: needs a model with a frozen backbone (head_mode resconn, no_adapter or linear_probe); "
            f"got {type(base).__name__} with head_mode={getattr(base.config, 'head_mode', None)!r}"
        )
    return base


class EmbeddingCache:
    """Float16 backbone embeddings [N, T, D] of N windows, memory-mapped read-only."""

    def __init__(self, path: Path, manifest: dict):
        self.path, self.manifest = Path(path), manifest
        try:
            self.embeddings = np.load(self.path / EMBEDDINGS_FILE, mmap_mode="r")
        except (OSError, ValueError, EOFError) as error:
            raise ValueError(
                f"embedding cache {self.path}: {EMBEDDINGS_FILE} is unreadable ({type(error).__name__}: {error}); it is "
                f"truncated or corrupt: delete the folder {self.path} to rebuild it"
            ) from error
        expected = tuple(manifest["shape"])
        if self.embeddings.shape != expected or self.embeddings.dtype != CACHE_DTYPE:
            raise ValueError(
                f"embedding cache {self.path}: {EMBEDDINGS_FILE} holds {self.embeddings.dtype} {self.embeddings.shape}, "
                f"its manifest says {np.dtype(CACHE_DTYPE)} {expected}; delete the folder to rebuild it"
            )

    @property
    def nbytes(self) -> int:
        return int(self.embeddings.nbytes)

    @classmethod
    def for_windows(
        cls, model, windows: WindowDataset, cache_dir: str | Path | None = None, batch_size: int = 128, log=print
    ) -> "EmbeddingCache":
        """The cache of ``model``'s backbone embeddings for ``windows``: reused when its key matches, else built."""
        base = _backbone_model(model)
        if len(windows) == 0:
            raise ValueError("embedding cache: the window dataset is empty; there is nothing to cache")
        manifest = {
            "format_version": FORMAT_VERSION,
            "backbone": backbone_fingerprint(base.stefaland),
            "adds_static_token": base.running_head().embedding_adds_static,
            "windows": windows_fingerprint(windows),
            "shape": [len(windows), windows.seq_len, base.config.d_model],
            "dtype": np.dtype(CACHE_DTYPE).name,
        }
        key = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:24]
        root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        path = root / key
        if path.is_dir():
            stored = _read_manifest(path)
            differing = [k for k in manifest if stored.get(k) != manifest[k]]
            if differing:
                raise ValueError(f"embedding cache {path}: manifest differs in {differing}; delete the folder to rebuild it")
            cache = cls(path, stored)
            _check_content(path, stored)
            log(f"embedding cache: reusing {len(windows):,} windows ({cache.nbytes / 2**20:.0f} MiB) from {path}")
            return cache
        started = time.perf_counter()
        _build(base, windows, path, manifest, batch_size)
        stored = _read_manifest(path)
        stored["build_seconds"] = round(time.perf_counter() - started, 2)
        cache = cls(path, stored)
        log(f"embedding cache: built {len(windows):,} windows ({cache.nbytes / 2**20:.0f} MiB) in {stored['build_seconds']:.1f} s at {path}")
        return cache


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _check_content(path: Path, stored: dict) -> None:
    """Refuse a cache whose embeddings file is not the one built (same name and size, other bytes): reading it costs
    one pass over the file: 356 MiB in 0.50 s (700 MiB/s, one core, file in the page cache), measured for issue 31."""
    expected = stored.get("content_sha256")
    actual = _file_sha256(path / EMBEDDINGS_FILE)
    if actual != expected:
        raise ValueError(
            f"embedding cache {path}: {EMBEDDINGS_FILE} is not the file that was built (SHA-256 {actual[:12]}…, recorded "
            f"{str(expected)[:12]}…): it was modified or damaged after it was written; delete the folder {path} to rebuild it"
        )


def _read_manifest(path: Path) -> dict:
    try:
        return json.loads((path / MANIFEST_FILE).read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"embedding cache {path}: unreadable {MANIFEST_FILE} ({error}); delete the folder to rebuild it") from error


def _build(base, windows: WindowDataset, path: Path, manifest: dict, batch_size: int) -> None:
    """Write the embeddings into a temporary sibling folder, then rename it to ``path``."""
    needed = int(np.prod(manifest["shape"])) * np.dtype(CACHE_DTYPE).itemsize
    path.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path.parent).free
    if needed > free:
        raise OSError(
            f"embedding cache: {needed / 2**20:.0f} MiB needed under {path.parent}, {free / 2**20:.0f} MiB free; "
            "free space, set another embedding_cache_dir, or turn the cache off (embedding_cache=False)"
        )
    partial = path.parent / f".{path.name}.partial-{uuid.uuid4().hex[:8]}"
    partial.mkdir()
    try:
        out = np.lib.format.open_memmap(partial / EMBEDDINGS_FILE, mode="w+", dtype=CACHE_DTYPE, shape=tuple(manifest["shape"]))
        device = next(base.parameters()).device
        was_training = base.training
        base.eval()
        with torch.no_grad():
            for i0 in range(0, len(windows), batch_size):
                batch = collate_windows(windows.__getitems__(range(i0, min(i0 + batch_size, len(windows)))))
                embedding = base.embed(batch["x_dynamic"].to(device), batch["x_static"].to(device)).float().cpu().numpy()
                if not np.isfinite(embedding).all() or np.abs(embedding).max() > np.finfo(CACHE_DTYPE).max:
                    raise ValueError(
                        f"embedding cache: windows {i0}..{i0 + len(embedding) - 1} give non-finite embeddings or values beyond "
                        f"the float16 range; the cache cannot hold them (turn it off with embedding_cache=False)"
                    )
                out[i0 : i0 + len(embedding)] = embedding
        base.train(was_training)
        out.flush()
        del out
        content = {"content_sha256": _file_sha256(partial / EMBEDDINGS_FILE)}
        (partial / MANIFEST_FILE).write_text(json.dumps({**manifest, **content}, indent=1))
        try:
            os.replace(partial, path)
        except OSError:
            if not (path / MANIFEST_FILE).is_file():
                raise
            # another process finished the same cache first (same key, so the same manifest): use its copy
            shutil.rmtree(partial, ignore_errors=True)
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise OSError(f"embedding cache: writing {needed / 2**20:.0f} MiB to {partial} failed: {error}") from error
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


class CachedEmbeddingWindows(torch.utils.data.Dataset):
    """The windows of a :class:`WindowDataset`, each with its cached ``backbone_embedding``."""

    def __init__(self, windows: WindowDataset, cache: EmbeddingCache):
        if cache.embeddings.shape[:2] != (len(windows), windows.seq_len):
            raise ValueError(
                f"embedding cache {cache.path}: holds {cache.embeddings.shape[0]} windows of {cache.embeddings.shape[1]} days, "
                f"the dataset has {len(windows)} of {windows.seq_len}"
            )
        self.windows, self.cache = windows, cache

    @property
    def site_index(self) -> np.ndarray:
        return self.windows.site_index

    def __len__(self) -> int:
        return len(self.windows)

    def __getitems__(self, indices: Sequence[int]) -> WindowBatch:
        idx = np.asarray(indices, dtype=np.int64)
        arrays = self.windows.__getitems__(idx).arrays
        return WindowBatch({**arrays, "backbone_embedding": np.asarray(self.cache.embeddings[idx])})

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return {k: v[0] for k, v in self.__getitems__([int(i)]).arrays.items()}


__all__ = ["EmbeddingCache", "CachedEmbeddingWindows", "default_cache_dir"]
