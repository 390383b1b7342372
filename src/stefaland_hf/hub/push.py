"""Pushes to the Hugging Face Hub, exactly one commit each (the Hub applies a commit atomically).

:func:`push_model` (weights, config, remote code so ``trust_remote_code=True`` works without this package,
and the card as README.md), :func:`push_adapter` (PEFT resConn adapter + card) and :func:`push_dataset`
(parquet shards + a card whose YAML carries ``configs``/``dataset_info``, so ``load_dataset(repo, config)``
gives back the same data with ``Array2D`` features). :func:`finish_artifact` writes a finetuning artifact's card
and pushes it; :func:`check_artifact_push` refuses such a push before the training that would end in it.

A push *mirrors*: after it the repository (a dataset repository: the pushed config's data folder) holds
exactly what was pushed. Remote files that are not in the push are deleted in the same commit, except
``.gitattributes`` and other dot-files (the Hub's own; pushes never upload dot-files) and paths matching
``keep`` (fnmatch patterns, ``--keep`` on the command line). The commit is made on top of the head read
at the start (``parent_commit``), so a concurrent push makes it fail instead of mixing the two.

Before any network call :func:`check_push_target` refuses a repo id without a namespace and a missing
token. Every push runs create repository -> read the head and files -> upload LFS files -> commit; a
failure raises :class:`HubPushError` naming the operation and the repository. A failure of the commit
request itself (an error answer, a dropped connection) is followed by a look at the branch, and the error
says what it found: the push was applied (``committed=True``), no commit was made (``False``), or that
is unknown (``None``, with the URL to check).
"""

from __future__ import annotations

import fnmatch
import functools
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    DatasetCard,
    HfApi,
    ModelCard,
    RepoFile,
    get_token,
)
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from huggingface_hub.utils.sha import git_hash

from .cards import dataset_splits, render_adapter_card, render_dataset_card, render_model_card, results_from_report
from .names import hub_base

logger = logging.getLogger(__name__)

# copied next to the weights so that a pushed model loads with trust_remote_code=True where stefaland_hf is not installed
REMOTE_CODE_FILES = (
    "configuration_stefaland.py", "modeling_stefaland.py", "checkpoint_binding.py", "variables.py", "output_distributions.py",
    "differentiable_hbv.py",
)
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


# ================================================================================================
# Errors
# ================================================================================================
_NO_COMMIT = "The repository may have been created, but this push made no commit (it stopped before committing); re-run it to retry."


class HubPushError(RuntimeError):
    """A push to the Hub failed. ``operation`` is what failed, ``repo_id``/``repo_type`` where.

    ``committed`` is what the Hub showed afterwards: True (the branch holds this push, at ``commit_oid``),
    False (no commit was made) or None (unknown; ``state`` says where to check).
    """

    def __init__(self, kind: str, repo_id: str, repo_type: str, operation: str, error: BaseException, *,
                 committed: bool | None = False, state: str = _NO_COMMIT, commit_oid: str | None = None):
        self.kind, self.repo_id, self.repo_type, self.operation = kind, repo_id, repo_type, operation
        self.committed, self.commit_oid, self.state = committed, commit_oid, state
        detail = str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() else "(no message)"
        where = f"{repo_type} repository {repo_id!r}"
        hint = _http_hint(error, repo_id)
        super().__init__(f"push {kind} to {where} failed while {operation}: {type(error).__name__}: {detail}"
                         f"{'. ' + hint if hint else ''}. {state}")


def _http_status(error: BaseException) -> int | None:
    """The HTTP status the Hub answered with, or None when no answer came (connection error, timeout)."""
    return getattr(getattr(error, "response", None), "status_code", None)


def _http_hint(error: BaseException, repo_id: str) -> str:
    """What to do about an authentication or permission answer."""
    status, namespace = _http_status(error), repo_id.split("/")[0]
    if status == 401:
        return ("The Hub rejected the token (401): log in again with `hf auth login`, or set HF_TOKEN to a valid token "
                "with write access")
    if status == 403:
        return (f"The token may not write to the namespace {namespace!r} (403): use a token with write access to it, "
                "or push to your own namespace")
    return ""


def _hub_step(kind: str, repo_id: str, repo_type: str, operation: str, fn, /, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except HubPushError:
        raise
    except Exception as error:  # HfHubHTTPError, connection errors, ...: say what failed, where
        raise HubPushError(kind, repo_id, repo_type, operation, error) from error


def check_push_target(repo_id: str, token: str | None = None) -> str:
    """Refuse a push that can only fail, before any work or network call; return the token to use.

    A repo id needs a namespace (``namespace/name``: without one the Hub would create the repository under
    the token's user and the commit URL would not exist), and a push needs a token (``token=``, HF_TOKEN or
    ``hf auth login``). Call it at argument-parsing time to fail before a long run that ends with a push.
    """
    namespace, _, name = repo_id.partition("/") if isinstance(repo_id, str) else ("", "", "")
    valid = bool(namespace and name)
    example = (repo_id.strip("/").split("/")[-1] if isinstance(repo_id, str) else "") or "stefaland-model"
    if valid:
        try:
            validate_repo_id(repo_id)
        except HFValidationError:
            valid = False
    if not valid:
        raise ValueError(
            f"repo_id: {repo_id!r} is not a Hub repo id of the form 'namespace/name' (namespace = your user name, "
            f"which `hf auth whoami` prints, or an organisation; name = letters, digits, '-', '_', '.'), e.g. 'my-user/{example}'"
        )
    token = token or get_token()
    if not token:
        raise ValueError(
            f"token: pushing to {repo_id!r} needs a Hugging Face token with write access and none was found: run "
            "`hf auth login`, or set HF_TOKEN, or pass token=..."
        )
    return token


# ================================================================================================
# Pushes
# ================================================================================================
def _card_text(card) -> str | None:
    if card is None:
        return None
    if isinstance(card, (ModelCard, DatasetCard)) or hasattr(card, "content"):
        return str(card)
    path = Path(card)
    if path.is_file():
        return path.read_text(encoding="utf-8")
    raise ValueError(f"card: expected a ModelCard/DatasetCard or a markdown file, got {card!r}")


def _folder_files(folder: Path) -> list[Path]:
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if not path.is_file() or any(p.startswith(".") or p == "__pycache__" for p in rel.parts):
            continue
        out.append(path)
    return out


def _kept(path: str, keep: Sequence[str]) -> bool:
    """Remote files a mirroring push leaves alone: dot-files (``.gitattributes``, ``.eval_results/``: the Hub's
    own, and never uploaded since local dot-files are skipped) and ``keep`` patterns (fnmatch, case-sensitive)."""
    return any(part.startswith(".") for part in path.split("/")) or any(fnmatch.fnmatchcase(path, p) for p in keep)


def _commit(
    kind: str,
    repo_id: str,
    repo_type: str,
    operations: list,
    *,
    private: bool,
    commit_message: str,
    token: str,
    revision: str | None,
    keep: Sequence[str] = (),
    scope: str = "",
    remote_fn=None,
):
    """create repository -> read head and files -> upload LFS files -> one atomic commit that mirrors the push.

    Remote files under ``scope`` ("" = the whole repository) that are not pushed and not :func:`_kept` are
    deleted in the same commit. ``remote_fn(api, head, files)`` adds operations computed from the remote
    state (the dataset card). The commit's parent is the head read here, so a push in between makes it fail
    rather than be overwritten; a failed commit request is followed by :func:`_commit_outcome`.
    """
    api = HfApi(token=token)
    step = functools.partial(_hub_step, kind, repo_id, repo_type)
    step("creating the repository", api.create_repo, repo_id, repo_type=repo_type, private=private, exist_ok=True)
    head = step("reading the repository head", api.repo_info, repo_id, repo_type=repo_type, revision=revision).sha
    remote = step("listing the repository files", api.list_repo_files, repo_id, repo_type=repo_type, revision=head)
    if remote_fn is not None:
        operations = operations + remote_fn(api, head, remote)
    pushed = {op.path_in_repo for op in operations}
    stale = [f for f in remote if f.startswith(scope) and f not in pushed and not _kept(f, keep)]
    operations = operations + [CommitOperationDelete(path_in_repo=f) for f in stale]
    description = f"Deleted (not in this push): {', '.join(stale)}" if stale else ""
    if stale:
        logger.info("push %s to %r deletes %d remote file(s) not in the push: %s", kind, repo_id, len(stale), ", ".join(stale))
    additions = [op for op in operations if isinstance(op, CommitOperationAdd)]
    names = ", ".join(op.path_in_repo for op in additions[:4]) + (", ..." if len(additions) > 4 else "")
    step(f"uploading files ({names})", api.preupload_lfs_files, repo_id, additions, repo_type=repo_type, revision=revision)
    try:
        return api.create_commit(repo_id, operations, commit_message=commit_message, commit_description=description,
                                 repo_type=repo_type, revision=revision, parent_commit=head)
    except Exception as error:
        committed, state, oid = _commit_outcome(api, repo_id, repo_type, revision, head, operations, error)
        raise HubPushError(kind, repo_id, repo_type, "creating the commit", error,
                           committed=committed, state=state, commit_oid=oid) from error


_GATEWAY_STATUSES = (502, 503, 504)  # a proxy answered: the Hub behind it may still be applying the commit


def _commit_outcome(api: HfApi, repo_id: str, repo_type: str, revision: str | None, before: str,
                    operations: list, error: BaseException) -> tuple[bool | None, str, str | None]:
    """(committed, what to tell the user, commit id) after a failed commit request, read from the branch now.

    A lost answer does not mean a lost commit: the branch is compared with its head before the push, and a
    new head counts as this push only if it holds every pushed file with the pushed content.
    """
    branch = revision or "main"
    url = f"{api.endpoint}/{'' if repo_type == 'model' else repo_type + 's/'}{repo_id}/commits/{branch}"
    try:
        head = api.repo_info(repo_id, repo_type=repo_type, revision=branch).sha
        holds = head != before and _holds(api, repo_id, repo_type, head, operations)
    except Exception as check_error:
        return None, (f"Unknown whether a commit was made: reading {branch!r} afterwards failed too "
                      f"({type(check_error).__name__}); check {url}"), None
    if holds:
        return True, (f"The push was applied all the same: {branch!r} is now at commit {head}, which holds "
                      "exactly the pushed files; nothing to re-run."), head
    status = _http_status(error)
    refused = status is not None and status not in _GATEWAY_STATUSES
    if head == before and refused:
        return False, f"No commit was made: {branch!r} is still at {before}; re-run the push to retry.", None
    if head == before:
        return None, (f"Unknown whether a commit was made: the Hub did not answer and {branch!r} is still at {before}, "
                      f"but it may still apply the commit; check {url} (re-running the push is safe either way: it "
                      "makes the repository mirror the push)."), None
    if refused and status < 500:
        return False, (f"No commit was made by this push: {branch!r} moved from {before} to {head} meanwhile "
                       f"(another push?) and does not hold these files; check {url}, then re-run the push."), None
    return None, (f"Unknown whether a commit was made: {branch!r} moved from {before} to {head} but does not hold "
                  f"exactly the pushed files (another push?); check {url}."), None


def _holds(api: HfApi, repo_id: str, repo_type: str, commit: str, operations: list) -> bool:
    """Whether ``commit`` has every added file with the pushed content and none of the deleted ones."""
    additions = {op.path_in_repo: op for op in operations if isinstance(op, CommitOperationAdd)}
    deleted = [op.path_in_repo for op in operations if isinstance(op, CommitOperationDelete)]
    infos = api.get_paths_info(repo_id, [*additions, *deleted], repo_type=repo_type, revision=commit)
    found = {info.path: info for info in infos if isinstance(info, RepoFile)}
    if any(path in found for path in deleted):
        return False
    for path, op in additions.items():
        remote = found.get(path)
        if remote is None:
            return False
        if remote.lfs is not None:
            same = remote.lfs.sha256 == op.upload_info.sha256.hex()
        else:
            with op.as_file() as file:
                same = remote.blob_id == git_hash(file.read())
        if not same:
            return False
    return True


def push_model(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    card=None,
    private: bool = False,
    commit_message: str = "Upload StefaLand model",
    token: str | None = None,
    revision: str | None = None,
    keep: Sequence[str] = (),
):
    """Push a saved StefaLand model folder (``save_pretrained`` output) and its card in **one** commit.

    The repository then mirrors the push: remote files not in it are deleted, except dot-files and paths
    matching a ``keep`` pattern (fnmatch, e.g. ``("eval/*",)``).

    ``card``: a ``ModelCard`` or a markdown file; None uses the folder's README.md as it is (its "How to use"
    loads from wherever it was rendered for: render the card with ``repo_id``, or ``render_converted_card(report,
    repo_id)``, to point it at the repo) and renders one with :func:`render_model_card` if there is none. Remote
    code (:data:`REMOTE_CODE_FILES`) and the full ``auto_map`` are added if the folder lacks them, so the repo loads
    with ``trust_remote_code=True`` where ``stefaland_hf`` is not installed. Returns the ``CommitInfo``
    (``.commit_url``). Raises :class:`HubPushError` on failure.
    """
    from ..modeling_stefaland import AUTO_MAP

    token = check_push_target(repo_id, token)
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ValueError(f"folder: {str(folder)!r} has no config.json (expected a save_pretrained folder)")
    config = json.loads(config_path.read_text())
    if config.get("model_type") != "stefaland":
        raise ValueError(f"folder: {str(folder)!r} is not a StefaLand model (model_type={config.get('model_type')!r})")
    if not list(folder.glob("*.safetensors")) and not list(folder.glob("*.bin")):
        raise ValueError(f"folder: {str(folder)!r} has no weights (*.safetensors)")
    readme = folder / "README.md"
    text = _card_text(card) or (readme.read_text() if readme.is_file() else str(render_model_card(folder, repo_id=repo_id)))
    operations = []
    for path in _folder_files(folder):
        rel = path.relative_to(folder).as_posix()
        if rel in ("README.md", "config.json"):
            continue
        operations.append(CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(path)))
    if not config.get("auto_map"):
        config["auto_map"] = dict(AUTO_MAP)
    operations.append(CommitOperationAdd(path_in_repo="config.json", path_or_fileobj=(json.dumps(config, indent=2, sort_keys=True) + "\n").encode()))
    for name in REMOTE_CODE_FILES:
        if not (folder / name).is_file():
            operations.append(CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(_PACKAGE_DIR / name)))
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=text.encode("utf-8")))
    return _commit("model", repo_id, "model", operations, private=private, commit_message=commit_message, token=token,
                   revision=revision, keep=keep)


def push_adapter(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    base_model: str | None = None,
    card=None,
    report: str | os.PathLike | Mapping | None = None,
    dataset_name: str | None = None,
    private: bool = False,
    commit_message: str = "Upload StefaLand resConn adapter",
    token: str | None = None,
    revision: str | None = None,
    keep: Sequence[str] = (),
):
    """Push a PEFT resConn adapter folder and its card in **one** commit (mirroring, as :func:`push_model`).

    PEFT's generic README is replaced by ``card`` or by :func:`render_adapter_card` (with ``report`` /
    ``dataset_name`` for results). ``base_model`` (default: the adapter config's) must name a Hub repo (or a
    short name such as ``stefaland-base``), since users of the pushed adapter load it from there; it is
    written into the pushed ``adapter_config.json`` as ``base_model_name_or_path``. A local base folder is
    refused. Returns the ``CommitInfo``; raises :class:`HubPushError`.
    """
    token = check_push_target(repo_id, token)
    folder = Path(folder)
    config_path = folder / "adapter_config.json"
    if not config_path.is_file():
        raise ValueError(f"folder: {str(folder)!r} has no adapter_config.json (expected a PEFT save_pretrained folder)")
    adapter_config = json.loads(config_path.read_text())
    base_model = base_model or adapter_config.get("base_model_name_or_path")
    if not base_model:
        raise ValueError("base_model: pass the Hub id of the base model (the adapter config does not record it)")
    hub_id, local_base = hub_base(base_model)
    if hub_id is None:
        raise ValueError(
            f"base_model: {local_base!r} is a local folder, not a Hub repo id, and users of the adapter on the Hub "
            f"could not load it: push the base model first (`stefaland push model {local_base} <namespace>/<name>`) "
            "and pass that id (base_model=... or --base)"
        )
    adapter_config["base_model_name_or_path"] = hub_id  # the Hub id, not the local path it was trained from
    text = _card_text(card) or str(render_adapter_card(folder, report, base_model, dataset_name=dataset_name, repo_id=repo_id))
    operations = [
        CommitOperationAdd(path_in_repo=path.relative_to(folder).as_posix(), path_or_fileobj=str(path))
        for path in _folder_files(folder)
        if path.relative_to(folder).as_posix() not in ("README.md", "adapter_config.json")
    ]
    operations.append(CommitOperationAdd(path_in_repo="adapter_config.json", path_or_fileobj=(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n").encode()))
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=text.encode("utf-8")))
    return _commit("adapter", repo_id, "model", operations, private=private, commit_message=commit_message, token=token,
                   revision=revision, keep=keep)


def finish_artifact(
    report: Mapping, dataset_name: str, base_model: str | None = None, push_to_hub: str | None = None, private: bool = False
) -> str | None:
    """Write the card of a finetuning artifact (``report["artifact"]``: an adapter or a model folder) as its
    README.md, and push the folder with it in one commit when ``push_to_hub`` names a repo (created private with
    ``private``, e.g. from ``--hub_private_repo``). Returns the commit URL."""
    folder = Path(report["artifact"])
    report = {k: v for k, v in report.items() if k != "evaluation"}
    if (folder / "adapter_config.json").is_file():
        card = render_adapter_card(folder, report, base_model, dataset_name=dataset_name, repo_id=push_to_hub)
        card.save(folder / "README.md")
        return push_adapter(folder, push_to_hub, base_model=base_model, card=card, private=private).commit_url if push_to_hub else None
    results = results_from_report(report, dataset_name)
    # a full model from finetune() is `scratch` or `direct`: trained from random weights, so it has no base model
    card = render_model_card(folder, report=report, results=results, base_model=None, repo_id=push_to_hub)
    card.save(folder / "README.md")
    return push_model(folder, push_to_hub, card=card, private=private).commit_url if push_to_hub else None


def check_artifact_push(push_to_hub: str | None, base_model: str | os.PathLike | None, adapter: bool) -> None:
    """Before a finetuning run that ends with ``finish_artifact(..., push_to_hub=...)``: refuse what that push
    would refuse (no token, no namespace, an adapter whose base is not on the Hub), so no run is lost to it."""
    if not push_to_hub:
        return
    check_push_target(push_to_hub)
    if adapter and hub_base(base_model)[0] is None:
        raise ValueError(
            f"--push-to-hub {push_to_hub}: an adapter on the Hub needs its base on the Hub, and {os.fspath(base_model)!r} "
            "is a local folder; push it first (`stefaland push model <folder> <namespace>/<name>`) and pass that id as --base"
        )


def push_dataset(
    dataset_or_dict,
    repo_id: str,
    *,
    config_name: str = "default",
    card=None,
    name: str | None = None,
    private: bool = False,
    commit_message: str = "Upload StefaLand site dataset",
    max_shard_size: int = 500 * 1024 * 1024,
    token: str | None = None,
    revision: str | None = None,
    keep: Sequence[str] = (),
):
    """Push a site dataset as parquet shards + card in **one** commit (unlike ``Dataset.push_to_hub`` + card).

    Layout as ``datasets`` writes it: ``{data_dir}/{split}-{i:05d}-of-{n:05d}.parquet`` with ``data_dir =
    config_name`` (``"data"`` for ``"default"``). The card's YAML gets ``configs`` (data files) and
    ``dataset_info`` (features incl. ``Array2D``, splits); entries of other configs already in the repo's card
    are kept. ``{data_dir}/`` mirrors the push: files in it that are not pushed now (old shards, splits no
    longer pushed) are deleted in the same commit unless they match a ``keep`` pattern; other configs' folders
    are left alone. So ``load_dataset(repo_id, config_name)`` returns exactly this data. ``card``: a ``DatasetCard`` or markdown
    file; None renders one with :func:`render_dataset_card` (``name`` = builder name, default the dataset's
    ``info.dataset_name``). Returns the ``CommitInfo``; raises :class:`HubPushError`.
    """
    from datasets.info import DatasetInfo, DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from datasets.utils.metadata import MetadataConfigs

    token = check_push_target(repo_id, token)
    splits = dataset_splits(dataset_or_dict)
    if not splits:
        raise ValueError("dataset: nothing to push (no splits)")
    first = next(iter(splits.values()))
    features = first.features
    for split, ds in splits.items():
        if ds.features != features:
            raise ValueError(f"dataset: split {split!r} has different features from the first split")
    name = name or getattr(first.info, "dataset_name", None) or repo_id.split("/")[-1]
    data_dir = config_name if config_name != "default" else "data"
    text = _card_text(card) or str(render_dataset_card(splits, name, repo_id=repo_id, config_name=config_name))
    new_card = DatasetCard(text)

    workdir = tempfile.TemporaryDirectory(prefix="stefaland_push_")
    try:
        operations: list = []
        info = DatasetInfo(config_name=config_name, features=features, splits=SplitDict(), download_size=0, dataset_size=0)
        for split, ds in splits.items():
            nbytes = ds._estimate_nbytes() if len(ds) else 0
            num_shards = max(1, min(len(ds), int(nbytes / max_shard_size) + 1)) if len(ds) else 1
            for index in range(num_shards):
                shard = ds.shard(num_shards=num_shards, index=index, contiguous=True)
                path_in_repo = f"{data_dir}/{split}-{index:05d}-of-{num_shards:05d}.parquet"
                local = Path(workdir.name) / path_in_repo
                local.parent.mkdir(parents=True, exist_ok=True)
                shard.to_parquet(str(local))
                info.download_size += local.stat().st_size
                operations.append(CommitOperationAdd(path_in_repo=path_in_repo, path_or_fileobj=str(local)))
            info.splits.add(SplitInfo(name=split, num_bytes=nbytes, num_examples=len(ds)))
            info.dataset_size += nbytes
        info.size_in_bytes = info.download_size + info.dataset_size

        def card_with_other_configs(api: HfApi, head: str, files: list[str]) -> list:
            """The card, with the other configs of the card at ``head`` merged in."""
            if "README.md" in files:
                old_path = _hub_step("dataset", repo_id, "dataset", "reading the existing dataset card", api.hf_hub_download,
                                     repo_id, "README.md", repo_type="dataset", revision=head)
                old = DatasetCard(Path(old_path).read_text(encoding="utf-8")).data
                for key in ("configs", "dataset_info"):
                    if old.get(key) is not None:
                        new_card.data[key] = old.get(key)
            MetadataConfigs(
                {config_name: {"data_files": [{"split": s, "path": f"{data_dir}/{s}-*"} for s in splits]}}
            ).to_dataset_card_data(new_card.data)
            DatasetInfosDict({config_name: info}).to_dataset_card_data(new_card.data)
            return [CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=str(new_card).encode("utf-8"))]

        return _commit("dataset", repo_id, "dataset", operations, private=private, commit_message=commit_message,
                       token=token, revision=revision, keep=keep, scope=f"{data_dir}/", remote_fn=card_with_other_configs)
    finally:
        workdir.cleanup()

