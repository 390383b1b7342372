"""The shipped models in the HF cache, so ``AutoModel.from_pretrained("stefaland-base")`` works by short name.

transformers resolves a name that is not a local folder through the Hugging Face cache (``HF_HUB_CACHE``) and the Hub.
At ``import stefaland_hf`` every model-zoo folder that ships weights is written into that cache in its documented
layout, as the model repo named by its short name::

    <HF_HUB_CACHE>/models--stefaland-base/
        blobs/<sha256 of each file>
        refs/main                     -> the revision below
        snapshots/<revision>/<file>   -> ../../blobs/<sha256> (a copy where symlinks are not allowed)
        .no_exist/<revision>/adapter_config.json   (transformers asks for it; the marker says "not in this repo")

The revision is a content hash of the folder, so an upgraded package writes a new snapshot and moves ``refs/main``;
an unchanged one only reads the files to hash them. Offline, transformers serves the snapshot; online, the Hub has no
repo of that short name (the package publishes ``stefaland/<name>``), and huggingface_hub falls back to the cached
snapshot. Writes go to temporary names and are renamed into place, so concurrent imports (``accelerate launch``) and
an interrupted import leave no half-written entry. An entry of that name that the package did not write (the user's
own, say) is never replaced. A cache that cannot be written (read-only, full) is skipped with a
log message: the short name then works through ``stefaland_hf.from_pretrained`` only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from huggingface_hub import constants

from .. import zoo

logger = logging.getLogger(__name__)

DISABLE_ENV = "STEFALAND_NO_HF_CACHE_ZOO"  # set to 1 to keep the package out of the HF cache
# files transformers' from_pretrained looks for beside config.json; without the cache's "does not exist" marker a
# connected-but-offline machine (no HF_HUB_OFFLINE) retries the Hub for them for ~45 s
PROBED_ABSENT_FILES = ("adapter_config.json",)


def cache_folder(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """``<HF_HUB_CACHE>/models--<name>``: where huggingface_hub looks for the model repo ``name``."""
    return Path(cache_dir or constants.HF_HUB_CACHE) / f"models--{name}"


def _file_digests(folder: Path) -> dict[str, str]:
    """Relative POSIX path -> sha256 of every regular file under ``folder`` (hidden files skipped)."""
    digests = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            digests[relative.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def revision_of(digests: dict[str, str]) -> str:
    """A 40-hex revision (the shape of a git commit id, which huggingface_hub expects) for a folder's content."""
    manifest = "".join(f"{relative}\0{digest}\n" for relative, digest in sorted(digests.items()))
    return hashlib.sha1(manifest.encode()).hexdigest()


def _write_atomically(path: Path, write) -> None:
    """``write(temporary_path)`` then rename onto ``path``: readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".incomplete")
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _link_or_copy(blob: Path, target: Path) -> None:
    """``target`` -> ``blob`` as the relative symlink huggingface_hub makes, or a copy where symlinks fail."""
    def link(temporary: Path) -> None:
        temporary.unlink()
        try:
            temporary.symlink_to(os.path.relpath(blob, target.parent))
        except OSError:
            shutil.copyfile(blob, temporary)

    _write_atomically(target, link)


def _written_here(snapshot: Path, revision: str) -> bool:
    """Whether ``snapshot`` is one this module wrote (its name is the hash of its content), not the user's own."""
    return snapshot.is_dir() and revision_of(_file_digests(snapshot)) == revision


def install_model(name: str, folder: Path, cache_dir: str | os.PathLike | None = None) -> str | None:
    """Write the model folder ``folder`` into the HF cache as repo ``name``; returns its revision. Idempotent. An
    entry whose ``refs/main`` points to a snapshot this module did not write is left as it is (returns None)."""
    digests = _file_digests(folder)
    revision = revision_of(digests)
    repo = cache_folder(name, cache_dir)
    snapshot = repo / "snapshots" / revision
    ref = repo / "refs" / "main"
    if ref.is_file():
        current = ref.read_text()
        if current == revision and all((snapshot / relative).is_file() for relative in digests):
            return revision
        if current != revision and not _written_here(repo / "snapshots" / current, current):
            return None  # an entry the user made or downloaded: theirs, never replaced
    for relative, digest in digests.items():
        blob = repo / "blobs" / digest
        if not blob.is_file():
            _write_atomically(blob, lambda temporary, source=folder / relative: shutil.copyfile(source, temporary))
        target = snapshot / relative
        if not target.is_file():
            _link_or_copy(blob, target)
    for absent in PROBED_ABSENT_FILES:
        if absent not in digests:
            marker = repo / ".no_exist" / revision / absent
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
    _write_atomically(ref, lambda temporary: temporary.write_text(revision))  # last: the snapshot is complete
    return revision


def install_shipped_models(cache_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """Every zoo model with weights into the HF cache (name -> revision); skipped when ``$STEFALAND_NO_HF_CACHE_ZOO``
    is set, and per model (logged) when the cache cannot be written."""
    if os.environ.get(DISABLE_ENV, "").strip() not in ("", "0"):
        return {}
    installed = {}
    for name in zoo.zoo_names():
        folder = zoo.shipped_weights(name)
        if folder is None:
            continue
        try:
            revision = install_model(name, folder, cache_dir)
        except OSError as error:
            logger.info("stefaland_hf: %r not written to the HF cache (%s); load it with stefaland_hf.from_pretrained(%r)", name, error, name)
            continue
        if revision is None:
            logger.info("stefaland_hf: the HF cache's %r is not the package's copy; left as it is", name)
        else:
            installed[name] = revision
    return installed


__all__ = ["install_shipped_models", "install_model", "cache_folder", "revision_of", "DISABLE_ENV"]
