"""Short model names: what ``stefaland_hf.from_pretrained("stefaland-base")`` loads.

A name resolves, in this order, to (1) the folder ``./<name>``, (2) ``$STEFALAND_WEIGHTS/<name>``, (3) the
weights shipped in the package's model zoo (:mod:`stefaland_hf.zoo`), (4) the Hub repo
``$STEFALAND_HUB_ORG/<name>`` (organisation ``stefaland`` by default), which ``transformers`` serves from the
HF cache (only from there when ``HF_HUB_OFFLINE=1``). Steps 2-4 apply to short names (``stefaland-*`` without
a namespace); ``org/repo`` ids go to the Hub unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub.errors import (
    GatedRepoError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id

from .. import zoo

KNOWN_MODELS = ("stefaland-base", "stefaland-tiny")
DEFAULT_HUB_ORG = "stefaland"
HUB_ORG_ENV = "STEFALAND_HUB_ORG"
WEIGHTS_ENV = "STEFALAND_WEIGHTS"


def _is_short_name(name: str) -> bool:
    return "/" not in name and (name in KNOWN_MODELS or name.startswith("stefaland-"))


def looks_like_path(name: str) -> bool:
    """Whether ``name`` can only mean a local folder: absolute, ``.``/``~``, a backslash, more than one
    ``/``, a trailing ``/``, or a first component that is an existing folder (``runs/model`` with ``runs/``)."""
    if os.path.isabs(name) or name.startswith((".", "~")) or "\\" in name or name.endswith("/") or name.count("/") > 1:
        return True
    return "/" in name and os.path.isdir(name.split("/")[0])


def _nearest_existing(path: str) -> str:
    parent = Path(path).expanduser().absolute().parent
    while not parent.is_dir():
        parent = parent.parent
    return str(parent)


def resolve_model_name(name: str | os.PathLike) -> str:
    """What ``from_pretrained`` should load for ``name``.

    1. ``name`` is an existing folder (relative to the CWD, or absolute) -> that folder;
    2. ``name`` looks like a path (see :func:`looks_like_path`) -> ``FileNotFoundError("no such folder")``,
       rather than a confusing "not a valid Hub id" from the Hub client;
    3. a short name (``stefaland-base``, ``stefaland-tiny``, any ``stefaland-*`` without ``/``) and
       ``$STEFALAND_WEIGHTS/<name>`` is a folder -> that folder;
    4. a short name whose model-zoo folder ships weights (``model.safetensors``) -> that folder;
    5. a short name -> the Hub repo ``$STEFALAND_HUB_ORG/<name>`` (default organisation ``stefaland``), which
       transformers loads from the HF cache or the Hub (only the cache when ``HF_HUB_OFFLINE=1``);
    6. anything else (``org/repo`` ids) is returned unchanged.
    """
    name = os.fspath(name)
    if os.path.isdir(name):
        return name
    if os.path.exists(name):
        raise NotADirectoryError(f"not a folder: {name!r} is a file; pass the model folder (the one with config.json)")
    if looks_like_path(name):
        raise FileNotFoundError(
            f"no such folder: {name!r} (looked for {str(Path(name).expanduser().absolute())!r}; the nearest existing "
            f"folder is {_nearest_existing(name)!r})"
            + (f"; it is read as a local path because the folder {name.split('/')[0]!r} exists here"
               if name.count("/") == 1 and not os.path.isabs(name) and not name.startswith((".", "~")) else "")
        )
    if not _is_short_name(name):
        return name
    weights = os.environ.get(WEIGHTS_ENV)
    if weights and os.path.isdir(os.path.join(weights, name)):
        return os.path.join(weights, name)
    shipped = zoo.shipped_weights(name)
    if shipped is not None:
        return str(shipped)
    org = os.environ.get(HUB_ORG_ENV) or DEFAULT_HUB_ORG
    return f"{org}/{name}"


def hub_base(base_model: str | os.PathLike | None) -> tuple[str | None, str | None]:
    """(Hub repo id, local folder) of a base model as :func:`resolve_model_name` reads it; exactly one is set.

    A card's ``base_model`` links the model to a Hub repo, so a local folder (existing or not) must never go
    there; callers name it in prose instead.
    """
    if not base_model:
        return None, None
    name = os.fspath(base_model)
    try:
        target = resolve_model_name(name)
        validate_repo_id(target)
    except (OSError, HFValidationError):
        return None, name
    return (None, name) if os.path.isdir(target) else (target, None)


def _not_found(error: BaseException) -> BaseException | None:
    """The Hub client's "this repo is not there" error behind a transformers ``OSError``, if that is the cause."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, GatedRepoError):  # it exists; the original message says how to get access
            return None
        if isinstance(cause, (RepositoryNotFoundError, RevisionNotFoundError, LocalEntryNotFoundError, HFValidationError)):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


def from_pretrained(name: str | os.PathLike, model_class=None, **kwargs):
    """``model_class.from_pretrained(resolve_model_name(name), **kwargs)``; ``model_class`` defaults to ``AutoModel``.

    A name found nowhere raises ``FileNotFoundError`` listing every place that was tried (folder, the
    ``$STEFALAND_WEIGHTS`` folder for short names, the Hub repo or the HF cache when offline).
    """
    if model_class is None:
        from transformers import AutoModel as model_class
    import stefaland_hf  # noqa: F401  (registers the Auto classes)

    text = os.fspath(name)
    target = resolve_model_name(text)
    try:
        return model_class.from_pretrained(target, **kwargs)
    except OSError as error:
        cause = _not_found(error)
        if cause is None or os.path.isdir(target):
            raise
        from huggingface_hub import constants

        tried = [f"the folder {str(Path(text).absolute())!r}: does not exist"]
        if _is_short_name(text):
            weights = os.environ.get(WEIGHTS_ENV)
            tried.append(f"${WEIGHTS_ENV}/{text}: " + (f"{os.path.join(weights, text)!r} does not exist" if weights
                                                       else f"${WEIGHTS_ENV} is not set"))
        if isinstance(cause, LocalEntryNotFoundError):
            hub = (f"the Hub repo {target!r}: not (completely) in the HF cache ({constants.HF_HUB_CACHE}) and the Hub was not "
                   f"reached ({'HF_HUB_OFFLINE is set' if constants.is_offline_mode() else 'no connection'})")
        elif isinstance(cause, RevisionNotFoundError):
            hub = f"the Hub repo {target!r}: has no revision {kwargs.get('revision', 'main')!r}"
        elif isinstance(cause, HFValidationError):
            hub = f"the Hub repo {target!r}: not a valid repo id ('namespace/name')"
        else:
            hub = (f"the Hub repo {target!r}: not found on {constants.ENDPOINT} (or it is private: log in with "
                   "`hf auth login` or set HF_TOKEN)")
        if _is_short_name(text):
            tried.append(f"the package's model zoo ({zoo.model_zoo_dir()}): ships no weights for {text!r}"
                         f" (zoo entries with weights: {[n for n in zoo.zoo_names() if zoo.shipped_weights(n)] or 'none'})")
        tried.append(hub)
        raise FileNotFoundError(
            f"model {text!r} not found; tried " + "; ".join(tried) + ". To get weights: pretrain one "
            "(`python examples/pretrain.py`, or `stefaland demo` writes one to <out>/pretraining/model), convert the "
            "authors' checkpoint (`stefaland convert-original CHECKPOINT.pt --out DIR`), or download a pushed model "
            f"once online (it is then served from the HF cache); set ${WEIGHTS_ENV} to a folder of such models"
        ) from error


__all__ = ["resolve_model_name", "from_pretrained", "looks_like_path", "hub_base"]
