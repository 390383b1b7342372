"""Output folders that say what produced them, and checkpoints that are complete or absent.

Every run folder (pretraining, finetuning, benchmark, demo) holds ``run_manifest.json``: the run's
kind, arguments, data fingerprint, base model hash and package version. A run refuses a folder that
holds another run (naming the fields that differ), a folder that holds the same run unless it is
explicitly resumed or overwritten, and a non-empty folder without a manifest (it is not ours to
delete). A folder of the same run that holds nothing but its manifest (the run failed before its first checkpoint)
is reused as it is, without flags. Checkpoints are written to a hidden temporary folder and renamed when complete, with the
SHA-256 of every file, so a resume never starts from a half-written or corrupted checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable

from ..version import __version__

MANIFEST_FILE = "run_manifest.json"
CHECKPOINT_COMPLETE_FILE = "checkpoint_complete.json"
_PARTIAL_PREFIX = ".partial-"


class RunFolderError(ValueError):
    """An output folder or checkpoint that this run must not use as it is."""


def _plain(value: Any) -> Any:
    """JSON round trip, so tuples and lists (and paths and strings) compare equal."""
    return json.loads(json.dumps(value, default=str))


def build_manifest(kind: str, arguments: dict, data: Any = None, base_model: Any = None, **fields: Any) -> dict:
    """What produced a run folder: compared field by field (``package_version`` aside) when the folder is reused."""
    manifest = {"kind": kind, "arguments": arguments, "data": data, "base_model": base_model, **fields}
    return _plain({**manifest, "package_version": __version__})


def dataset_fingerprint(dataset) -> dict:
    """Identity of a site dataset: its builder, config, size and the SHA-256 of its content.

    The content, not the cache's key: that key follows the raw files' paths and modification times (cheap, and
    right for rebuilding a cache), so the same data unpacked on another machine would read as other data and
    refuse to resume a run folder moved there.
    """
    return {
        "builder": dataset.info.builder_name,
        "config": dataset.info.config_name,
        "sites": len(dataset),
        "content_sha256": dataset_content_sha256(dataset),
    }


def dataset_content_sha256(dataset) -> str:
    """SHA-256 over a ``datasets.Dataset``'s Arrow columns (schema, and every buffer with its offset and length) and its
    row selection, if any: the memory-mapped buffers are read once per call (38 MB for the 67 CAMELS basins)."""
    digest = hashlib.sha256()
    indices = getattr(dataset, "_indices", None)  # a select()/shuffle() view over the table
    for table in (dataset.data, indices):
        if table is None:
            continue
        digest.update(table.schema.to_string(show_schema_metadata=False).encode())
        for batch in table.to_batches():
            for column in batch.columns:
                digest.update(f"|{column.offset}|{len(column)}|".encode())
                for buffer in column.buffers():
                    digest.update(memoryview(buffer) if buffer is not None else b"-")
    return digest.hexdigest()


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            name = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                found.append(f"{name}: {old.get(key, '(absent)')!r} in the folder, {new.get(key, '(absent)')!r} now")
            else:
                found += _differences(old[key], new[key], name)
        return found
    return [] if old == new else [f"{prefix}: {old!r} in the folder, {new!r} now"]


def check_run_folder(
    folder: str | os.PathLike,
    manifest: dict,
    resume: bool = False,
    overwrite: bool = False,
    volatile: Iterable[str] = (),
) -> str:
    """Decide what this run does with ``folder``: ``"new"``, ``"resume"`` or ``"overwrite"``; raise when none is right.

    Reads only, so every process of a data-parallel run can check before the main one writes.
    ``volatile`` names argument fields that may change on resume (e.g. ``epochs`` to train longer).
    """
    if resume and overwrite:
        raise RunFolderError("resume and overwrite: choose one (continue the run in the folder, or replace it)")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"output folder {folder}: is a file, expected a folder")
    manifest_path = folder / MANIFEST_FILE
    if not folder.exists() or not any(folder.iterdir()):
        if resume:
            raise RunFolderError(f"--resume: {folder} holds no run to continue")
        return "new"
    if not manifest_path.is_file():
        raise RunFolderError(
            f"output folder {folder} holds files but no {MANIFEST_FILE}, so it is not a stefaland run folder (or one "
            "written before manifests existed); it is left alone: choose a new or empty folder, or empty this one yourself"
        )
    try:
        existing = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as error:
        raise RunFolderError(
            f"{manifest_path}: unreadable manifest ({error}), so what the folder holds is unknown; it is left alone: "
            "choose a new or empty folder, or empty this one yourself"
        ) from None
    if existing.get("kind") != manifest.get("kind"):  # --overwrite replaces a run, never e.g. a demo holding the base
        raise RunFolderError(
            f"output folder {folder} holds a {existing.get('kind')} run, not a {manifest.get('kind')} run; it is left alone "
            "(--overwrite replaces a run of the same kind only): choose another folder"
        )
    if overwrite:
        return "overwrite"
    volatile = set(volatile)

    def compared(m: dict) -> dict:
        fields = {k: v for k, v in m.items() if k != "package_version"}
        fields["arguments"] = {k: v for k, v in (m.get("arguments") or {}).items() if k not in volatile}
        return fields

    differences = _differences(compared(existing), compared(manifest))
    if differences:
        raise RunFolderError(
            f"output folder {folder} holds another run ({manifest_path}); differing fields:\n  "
            + "\n  ".join(differences)
            + "\nchoose another folder, or pass --overwrite to replace that run"
        )
    if not holds_results(folder):
        return "overwrite"  # this run stopped before its first checkpoint: nothing to resume or keep, start again
    if not resume:
        raise RunFolderError(
            f"output folder {folder} already holds this run; pass --resume to continue it (where supported) "
            "or --overwrite to start it again"
        )
    return "resume"


def holds_results(folder: str | os.PathLike) -> bool:
    """Whether a run folder holds anything a run wrote after it started: a file other than its manifest, outside the
    hidden folders of checkpoints killed mid-write. A run that failed before its first checkpoint leaves none."""
    for path in Path(folder).rglob("*"):
        relative = path.relative_to(folder)
        if any(part.startswith(_PARTIAL_PREFIX) for part in relative.parts):
            continue
        if path.is_file() and relative.as_posix() != MANIFEST_FILE:
            return True
    return False


def claim_run_folder(folder: str | os.PathLike, manifest: dict, decision: str) -> None:
    """Carry out ``check_run_folder``'s decision (main process only): clear on overwrite, then write the manifest."""
    folder = Path(folder)
    if decision == "overwrite":
        for child in folder.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"{_PARTIAL_PREFIX}{MANIFEST_FILE}"
    partial.write_text(json.dumps(manifest, indent=1))
    os.replace(partial, folder / MANIFEST_FILE)


def prepare_run_folder(
    folder, manifest: dict, resume: bool = False, overwrite: bool = False, volatile: Iterable[str] = (), state=None
) -> str:
    """``check_run_folder`` on every process, then ``claim_run_folder`` on the main one; returns the decision.

    ``state`` is the run's ``accelerate`` state (an ``Accelerator`` or ``PartialState``) in a data-parallel run:
    every process reads the folder before the main one writes to it, and all wait until it has.
    """
    decision = check_run_folder(folder, manifest, resume, overwrite, volatile)
    if state is not None:
        state.wait_for_everyone()
    if state is None or state.is_main_process:
        claim_run_folder(folder, manifest, decision)
    if state is not None:
        state.wait_for_everyone()
    return decision


# ------------------------------------------------------------------------------------------------
# Atomic checkpoints
# ------------------------------------------------------------------------------------------------
def partial_checkpoint_path(final: Path) -> Path:
    """The hidden folder a checkpoint is written to before it is renamed to ``final``."""
    return final.parent / f"{_PARTIAL_PREFIX}{final.name}"


def complete_checkpoint(partial: Path, final: Path) -> None:
    """Record the SHA-256 of every file of ``partial``, then rename it to ``final`` (replacing an older copy)."""
    files = sorted(p for p in partial.rglob("*") if p.is_file())
    checksums = {p.relative_to(partial).as_posix(): file_sha256(p) for p in files}
    (partial / CHECKPOINT_COMPLETE_FILE).write_text(json.dumps(checksums, indent=1))
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)


def verify_checkpoint(path: Path) -> None:
    """Raise naming the file when a complete checkpoint's file is missing or differs from what was written."""
    checksums = json.loads((path / CHECKPOINT_COMPLETE_FILE).read_text())
    for name, expected in checksums.items():
        file = path / name
        if not file.is_file():
            raise RunFolderError(f"checkpoint {path}: {name} is missing; it cannot be resumed exactly")
        if file_sha256(file) != expected:
            raise RunFolderError(f"checkpoint {path}: {file} changed after it was written (checksum mismatch); it cannot be resumed exactly")


def latest_complete_checkpoint(folder: Path, prefix: str = "step_", log: Callable[[str], None] = print) -> Path | None:
    """The newest complete and intact ``{prefix}N`` checkpoint under ``folder``; incomplete ones are named and skipped."""
    candidates = [p for p in folder.glob(f"{prefix}*") if p.is_dir() and p.name[len(prefix):].isdigit()]
    for path in sorted(candidates, key=lambda p: int(p.name[len(prefix):]), reverse=True):
        if (path / CHECKPOINT_COMPLETE_FILE).is_file():
            verify_checkpoint(path)
            return path
        log(f"skipping incomplete checkpoint {path} (no {CHECKPOINT_COMPLETE_FILE}: the run stopped while writing it)")
    for partial in folder.glob(f"{_PARTIAL_PREFIX}{prefix}*"):
        log(f"skipping incomplete checkpoint {partial} (the run stopped while writing it)")
    return None
