"""Model names: what ``stefaland_hf.from_pretrained("stefaland-conus")`` loads.

A name with a namespace (``org/repo``) is a Hub repo id, which ``transformers`` serves from the HF cache or the Hub.
A short name (no ``/``) resolves, in this order, to (1) the folder ``./<name>``, (2) ``$STEFALAND_WEIGHTS/<name>``,
(3) the weights shipped in the package's model zoo (:mod:`stefaland_hf.zoo`), (4) the Hub repo
``$STEFALAND_HUB_ORG/<name>`` (organisation ``stefaland`` by default; for ``stefaland-*`` names) or ``<name>`` when
the HF cache holds it, (5) the Hub repo ``$STEFALAND_HUB_ORG/<name>`` when the package publishes that name there
(:data:`HUB_MODELS`). Any other short name fails at once, with no network call: a model-zoo architecture (a
``config.json`` without weights, e.g. ``stefaland-tiny``) says how to pretrain or load it; an unknown name names
the closest known ones and how to load a Hub repo.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from huggingface_hub import try_to_load_from_cache
from huggingface_hub.errors import (
    GatedRepoError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id

from .. import zoo

KNOWN_MODELS = ("stefaland-base", "stefaland-tiny", "stefaland-conus", "stefaland-original")
#: short names whose weights the package publishes on the Hub as ``$STEFALAND_HUB_ORG/<name>``, so that the Hub is
#: asked for them when no local copy exists. None yet: stefaland-conus ships in the package and the other zoo
#: entries are architectures (stefaland-base's weights are being pretrained); add a name when its weights are pushed.
HUB_MODELS: tuple[str, ...] = ()
DEFAULT_HUB_ORG = "stefaland"
HUB_ORG_ENV = "STEFALAND_HUB_ORG"
WEIGHTS_ENV = "STEFALAND_WEIGHTS"
PREFIX = "stefaland-"  # of the package's model names


def _is_short_name(name: str) -> bool:
    """A name of this package's models (``stefaland-*``): its Hub repo is ``$STEFALAND_HUB_ORG/<name>``."""
    return "/" not in name and (name in KNOWN_MODELS or name.startswith(PREFIX))


def _hub_id(name: str) -> str:
    return f"{os.environ.get(HUB_ORG_ENV) or DEFAULT_HUB_ORG}/{name}"


def _hub_candidates(name: str) -> list[str]:
    """The Hub repos a name without ``/`` may stand for: ``$STEFALAND_HUB_ORG/<name>`` (package names) and ``<name>``."""
    return [_hub_id(name), name] if _is_short_name(name) else [name]


def _cached_hub_id(name: str) -> str | None:
    """The first of :func:`_hub_candidates` whose ``config.json`` the HF cache holds (a file look-up, no network)."""
    for repo_id in _hub_candidates(name):
        try:
            if isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
                return repo_id
        except HFValidationError:
            continue
    return None


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
    3. ``org/repo`` -> unchanged: a Hub repo id (the HF cache, or the Hub);
    4. a short name (no ``/``) and ``$STEFALAND_WEIGHTS/<name>`` is a folder -> that folder;
    5. a short name whose model-zoo folder ships weights (``model.safetensors``) -> that folder;
    6. a short name whose Hub repo (``$STEFALAND_HUB_ORG/<name>`` for ``stefaland-*`` names, default organisation
       ``stefaland``, or ``<name>``) is in the HF cache -> that repo id;
    7. a short name the package publishes on the Hub (:data:`HUB_MODELS`) -> ``$STEFALAND_HUB_ORG/<name>``;
    8. any other short name -> ``FileNotFoundError`` at once, without asking the Hub: a model-zoo architecture
       (``config.json``, no weights) says how to pretrain or load it; another name lists what was tried and the
       closest known names.
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
    if "/" in name:
        return name
    weights = os.environ.get(WEIGHTS_ENV)
    if weights and os.path.isdir(os.path.join(weights, name)):
        return os.path.join(weights, name)
    shipped = zoo.shipped_weights(name)
    if shipped is not None:
        return str(shipped)
    cached = _cached_hub_id(name)
    if cached is not None:
        return cached
    if name in HUB_MODELS:
        return _hub_id(name)
    raise _not_here(name)


def _tried_locally(name: str) -> list[str]:
    """What :func:`resolve_model_name` looked at for a short name before the HF cache, as "place: finding" phrases."""
    weights = os.environ.get(WEIGHTS_ENV)
    shipped = [n for n in zoo.zoo_names() if zoo.shipped_weights(n)]
    architectures = [n for n in zoo.zoo_names() if n not in shipped]
    return [
        f"the folder {str(Path(name).absolute())!r}: does not exist",
        f"${WEIGHTS_ENV}/{name}: " + (f"{os.path.join(weights, name)!r} does not exist" if weights else f"${WEIGHTS_ENV} is not set"),
        f"the package's model zoo ({zoo.model_zoo_dir()}): ships no weights for {name!r} (zoo entries with weights: "
        f"{shipped or 'none'}; architectures only: {architectures or 'none'})",
    ]


def _closest(name: str) -> list[str]:
    """Known names (package, zoo, ``$STEFALAND_WEIGHTS`` folders) close to ``name`` (difflib ratio >= 0.75)."""
    weights = os.environ.get(WEIGHTS_ENV)
    known = {*KNOWN_MODELS, *HUB_MODELS, *zoo.zoo_names()}
    if weights and os.path.isdir(weights):
        known |= {p.name for p in Path(weights).iterdir() if p.is_dir()}

    def similarity(other: str) -> float:  # a shared "stefaland-" would make every package name look close
        bare = difflib.SequenceMatcher(None, name.removeprefix(PREFIX), other.removeprefix(PREFIX)).ratio()
        both = name.startswith(PREFIX) and other.startswith(PREFIX)
        return bare if both else max(bare, difflib.SequenceMatcher(None, name, other).ratio())

    scored = sorted(((similarity(other), other) for other in known if other != name), reverse=True)
    return [other for score, other in scored[:3] if score >= 0.75]


def _not_here(name: str) -> FileNotFoundError:
    """The error for a short name found nowhere locally that the Hub is not asked for."""
    from huggingface_hub import constants

    cache = f"the HF cache ({constants.HF_HUB_CACHE}): no {' or '.join(map(repr, _hub_candidates(name)))}"
    folder = zoo.model_zoo_dir() / name
    if (folder / "config.json").is_file():
        recipe = (folder / "recipe.json").is_file()
        pretrain = (f"--recipe {folder} --data-root DATA_ROOT" if recipe else f"--model {folder} --dataset DATASET [--data-dir DIR]")
        return FileNotFoundError(
            f"{name!r} is an architecture in the package's model zoo ({folder}: config.json{', recipe.json' if recipe else ''}, "
            f"no weights), not a pretrained model (also looked at: {'; '.join(_tried_locally(name)[:2])}; {cache}). "
            f"To get weights: pretrain it (`python examples/pretrain.py {pretrain} --output-dir OUT`, then pass OUT/model or "
            f"put that folder at ${WEIGHTS_ENV}/{name}), convert the authors' released checkpoint (`stefaland convert-original "
            f"CHECKPOINT.pt --out DIR`), or load a pushed copy by its Hub id OWNER/NAME. The untrained architecture: "
            f"StefaLandModel(StefaLandConfig.from_pretrained({str(folder)!r}))"
        )
    closest = _closest(name)
    return FileNotFoundError(
        f"model {name!r} not found" + (f" (did you mean {' or '.join(map(repr, closest))}?)" if closest else "")
        + "; tried " + "; ".join([*_tried_locally(name), cache])
        + f". The Hub was not asked: {name!r} is no model this package publishes there; load a Hub repo by its full id "
        f"OWNER/NAME (e.g. {_hub_id(name) if _is_short_name(name) else 'OWNER/' + name!r})"
    )


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
    ``$STEFALAND_WEIGHTS`` folder and the model zoo for short names, the Hub repo or the HF cache when offline);
    a short name that is neither local nor published fails before any network call (:func:`resolve_model_name`).
    """
    if model_class is None:
        from transformers import AutoModel as model_class

    text = os.fspath(name)
    target = resolve_model_name(text)
    try:
        return model_class.from_pretrained(target, **kwargs)
    except OSError as error:
        cause = _not_found(error)
        if cause is None or os.path.isdir(target):
            raise
        from huggingface_hub import constants

        # a short name reaches the Hub only when it is not local (a cached or published repo)
        tried = _tried_locally(text) if "/" not in text else [f"the folder {str(Path(text).absolute())!r}: does not exist"]
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
        tried.append(hub)
        raise FileNotFoundError(
            f"model {text!r} not found; tried " + "; ".join(tried) + ". To get weights: pretrain one "
            "(`python examples/pretrain.py`, or `stefaland demo` writes one to <out>/pretraining/model), convert the "
            "authors' checkpoint (`stefaland convert-original CHECKPOINT.pt --out DIR`), or download a pushed model "
            f"once online (it is then served from the HF cache); set ${WEIGHTS_ENV} to a folder of such models"
        ) from error


__all__ = ["resolve_model_name", "from_pretrained", "looks_like_path", "hub_base", "KNOWN_MODELS", "HUB_MODELS"]
