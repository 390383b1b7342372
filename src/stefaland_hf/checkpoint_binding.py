"""Checkpoint binding: the weights of a StefaLand checkpoint carry what they were trained with, and loading checks it.

``save_pretrained`` writes into the safetensors metadata the variable lists, the normalization statistics, a task
head's targets and the settings that change what the weights compute without changing their shapes;
``from_pretrained`` refuses a config that disagrees with them, and a missing or unexpected tensor, except in the two
loads that are partial by design (:class:`StefaLandCheckpointMixin`, which the models' base class inherits).
:func:`backbone_fingerprint` names an encoder by those settings and its tensors.

Beside ``modeling_stefaland.py`` and imported by it relatively (torch + safetensors + transformers + same-folder
relative imports only), so that ``save_pretrained`` exports it with the model code for ``trust_remote_code=True``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from contextvars import ContextVar
from dataclasses import dataclass

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from transformers.utils import cached_file

from .configuration_stefaland import StefaLandConfig, config_file_name

logger = logging.getLogger(__name__)


# ================================================================================================
# Variable binding: safetensors metadata, and what from_pretrained knows about the checkpoint it loads
# ================================================================================================
_BINDING_PREFIX = "stefaland."
_INPUT_BINDING = ("dynamic_variables", "static_variables", "dynamic_mean", "dynamic_std", "static_mean", "static_std")
# Settings that change what the weights compute but not their shapes, so that no tensor check can catch them.
_SHAPELESS_BINDING = (
    "num_attention_heads", "activation", "embedding_activation", "pre_norm", "scale_embeddings", "layer_norm_eps"
)
_TARGET_BINDING = ("target_variables", "target_mean", "target_std")
# A task head's settings that change its outputs (bound with its targets): most leave its tensors as they are; the
# distribution's change the output layer's width too, and a point model would read a distribution's parameters as values.
_HEAD_BINDING = (
    "output_transform", "hidden_static_variables", "embedding_adds_static", "output_distribution", "mixture_components", "quantiles"
)
_STATISTICS = ("dynamic_mean", "dynamic_std", "static_mean", "static_std", "target_mean", "target_std")
# The config fields an encoder's output depends on beyond its tensors (whose shapes carry the sizes).
BACKBONE_SETTINGS = ("model_type",) + _SHAPELESS_BINDING + _INPUT_BINDING
_HUB_KWARGS = ("cache_dir", "force_download", "proxies", "token", "revision", "local_files_only", "subfolder")
_WEIGHTS_NAME, _WEIGHTS_INDEX_NAME = "model.safetensors", "model.safetensors.index.json"


@dataclass
class _CheckpointSource:
    """What ``from_pretrained`` read about a checkpoint before transformers loads it (checked by the load hook)."""

    location: str
    weights_file: str | None = None
    architecture: str | None = None
    binding: dict | None = None  # from the safetensors metadata; None for a file saved before binding
    saved_config: StefaLandConfig | None = None  # its config.json
    checked: bool = False
    accept_changed: tuple[str, ...] = ()  # bound fields whose new value the caller accepts deliberately


_LOADING: ContextVar[_CheckpointSource | None] = ContextVar("stefaland_loading", default=None)


def _binding_hint(field: str) -> str:
    """What a disagreement on ``field`` would break, and what to do instead."""
    if field in _SHAPELESS_BINDING:
        return "it changes what the weights compute, not their shapes, so the model would load and give other outputs."
    if field == "target_variables":
        return (
            "this head predicts the saved targets; a head for other targets starts from a base encoder checkpoint "
            "(StefaLandModel or StefaLandForPretraining)."
        )
    if field in ("output_distribution", "mixture_components", "quantiles"):
        return (
            "the head's output layer returns this distribution's parameters; read as another distribution (or as a point "
            "prediction) they would mean something else."
        )
    if field in _HEAD_BINDING:
        return "it changes what the head returns (or what it hides from the encoder) without changing any tensor."
    if field.endswith("_variables"):
        return (
            "per-variable weights are matched by position, so other names or another order would mislabel them. "
            "Align your data to the checkpoint's variables instead (stefaland_hf.align_variables fills missing ones "
            "with NaN, which the model masks)."
        )
    return (
        "the weights were trained on values z-scored with the saved statistics (null: inputs already z-scored), "
        "so other statistics would shift every value they see or return; restore them, or drop the override."
    )


def _binding_value(field: str, value):
    """Comparable form of a bound field: names as a list, statistics as floats (1 and 1.0 are the same)."""
    if value is None:
        return value
    if field.endswith("_variables"):
        return list(value)
    return [float(v) for v in value] if field in _STATISTICS else value


def _preview(keys: list[str], count: int = 5) -> str:
    return ", ".join(keys[:count]) + (f", ... ({len(keys)} in all)" if len(keys) > count else "")


def _with_variant(name: str, variant: str | None) -> str:
    """``model.safetensors`` -> ``model.<variant>.safetensors``, as transformers names variants."""
    if not variant:
        return name
    stem, extension = name.rsplit(".", 1)
    return f"{stem}.{variant}.{extension}"


def _weight_files(location, variant: str | None, hub_kwargs: dict) -> list[str]:
    """The safetensors file(s) from_pretrained will read: one, or the shards of an index; [] if there are none."""
    optional = dict(_raise_exceptions_for_missing_entries=False, **hub_kwargs)
    single = cached_file(location, _with_variant(_WEIGHTS_NAME, variant), **optional)
    if single:
        return [single]
    index = cached_file(location, _with_variant(_WEIGHTS_INDEX_NAME, variant), **optional)
    if not index:
        return []
    try:
        with open(index, encoding="utf-8") as handle:
            shards = sorted(set(json.load(handle)["weight_map"].values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise OSError(f"{index}: not a readable safetensors index ({type(error).__name__}: {error})") from error
    return [cached_file(location, shard, **hub_kwargs) for shard in shards]


def _saved_weight_files(save_directory, variant: str | None) -> list[str]:
    """The safetensors file(s) ``save_pretrained`` just wrote into ``save_directory``."""
    single = os.path.join(save_directory, _with_variant(_WEIGHTS_NAME, variant))
    if os.path.isfile(single):
        return [single]
    index = os.path.join(save_directory, _with_variant(_WEIGHTS_INDEX_NAME, variant))
    if not os.path.isfile(index):
        return []
    with open(index, encoding="utf-8") as handle:
        return [os.path.join(save_directory, shard) for shard in sorted(set(json.load(handle)["weight_map"].values()))]


def unreadable_safetensors(path, error: Exception) -> OSError:
    """The error for a weights file that safetensors cannot open: it names the file and the fix."""
    return OSError(f"{path}: not a readable safetensors file ({error}); it is truncated or corrupt (an interrupted copy "
                   "or download): delete it and save or download it again")


def read_binding(files: list[str]) -> tuple[dict | None, str | None]:
    """(binding, architecture) from the metadata of the weight files; an unreadable file is an error naming it."""
    bindings = []
    for path in files:
        try:
            with safe_open(path, framework="pt") as handle:
                metadata = handle.metadata() or {}
        except (OSError, SafetensorError) as error:
            raise unreadable_safetensors(path, error) from error
        try:
            bindings.append(
                {k[len(_BINDING_PREFIX):]: json.loads(v) for k, v in metadata.items() if k.startswith(_BINDING_PREFIX)}
            )
        except ValueError as error:
            raise OSError(f"{path}: its StefaLand metadata is not valid JSON ({error})") from error
        if bindings[-1] != bindings[0]:
            raise OSError(
                f"{path}: its variable binding differs from that of {files[0]}; the shards come from different models"
            )
    if not bindings or not bindings[0]:
        return None, None
    binding = dict(bindings[0])
    return binding, binding.pop("architecture", None)


def _write_binding(path: str, metadata: dict[str, str]) -> None:
    """Rewrite one safetensors file with the binding in its metadata: same tensors, still ``format: pt``."""
    with safe_open(path, framework="pt") as handle:
        existing = handle.metadata() or {}
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    kept = {k: v for k, v in existing.items() if not k.startswith(_BINDING_PREFIX)}
    partial = path + ".partial"
    save_file(tensors, partial, metadata={**kept, **metadata, "format": "pt"})
    os.replace(partial, path)


# ================================================================================================
# Which encoder: its bound settings and every tensor
# ================================================================================================
def backbone_fingerprint(backbone: torch.nn.Module) -> str:
    """SHA-256 of the settings the encoder computes with and every parameter and buffer (name, dtype, shape, bytes).

    Where the checkpoint was loaded from and the task head's settings are left out: the same encoder loaded
    from another folder, or under another head, has the same fingerprint (and shares its embedding cache).
    """
    settings = {name: getattr(backbone.config, name) for name in BACKBONE_SETTINGS}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    tensors = {**dict(backbone.named_parameters()), **dict(backbone.named_buffers())}
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


# ================================================================================================
# Loading and saving the StefaLand models
# ================================================================================================
class StefaLandCheckpointMixin:
    """``from_pretrained`` checks and the binding ``save_pretrained`` writes, for the StefaLand model classes.

    The model classes (``modeling_stefaland``) declare what the checks read: ``_head_modules``, ``_is_task_model``,
    ``_is_backbone`` and ``_checkpoint_class``.
    """

    _head_modules: tuple[str, ...] = ()  # top-level modules outside the ``stefaland`` backbone
    _is_task_model = False  # a task head: its targets are bound, and it may start from a base encoder checkpoint
    _is_backbone = False  # the encoder alone (StefaLandModel): it may load out of any StefaLand checkpoint

    @staticmethod
    def _checkpoint_class(architecture: str | None) -> type | None:
        """The StefaLand model class of the architecture a checkpoint records; None if it is not one."""
        raise NotImplementedError

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """Load a checkpoint, refusing what would load but compute something else.

        * Variables and normalization are bound to the weights by name: the config (config.json plus ``config=`` or
          keyword overrides) must agree with the lists and statistics stored in model.safetensors' metadata (see
          ``save_pretrained``). A checkpoint saved before that binding is checked against its config.json only.
        * A missing or unexpected tensor is an error. Two loads are partial by design and run quietly: a task model
          from a base encoder checkpoint (StefaLandModel / StefaLandForPretraining: the head is new, a decoder is
          dropped), and StefaLandModel out of any StefaLand checkpoint (its heads are dropped).
        * A folder of another model type, and an unreadable config.json or safetensors file, are errors naming the file.
        * ``accept_changed=["output_transform", ...]`` accepts a new value of those bound fields deliberately (with a
          warning); ``save_pretrained`` then binds the new value.
        """
        source = _CheckpointSource(str(pretrained_model_name_or_path))
        source.accept_changed = tuple(kwargs.pop("accept_changed", None) or ())
        bound = _SHAPELESS_BINDING + _INPUT_BINDING + _TARGET_BINDING + _HEAD_BINDING
        if set(source.accept_changed) - set(bound):
            raise ValueError(f"accept_changed: {sorted(set(source.accept_changed) - set(bound))} are not bound fields; bound: {list(bound)}")
        if pretrained_model_name_or_path is not None and kwargs.get("state_dict") is None:
            hub_kwargs = {k: kwargs[k] for k in _HUB_KWARGS if k in kwargs}
            source.saved_config = cls.config_class.from_pretrained(pretrained_model_name_or_path, **hub_kwargs)
            files = _weight_files(pretrained_model_name_or_path, kwargs.get("variant"), hub_kwargs)
            source.weights_file = files[0] if files else None
            source.binding, architecture = read_binding(files)
            source.architecture = architecture or (source.saved_config.architectures or [None])[0]
        token = _LOADING.set(source)
        try:
            loaded = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        finally:
            _LOADING.reset(token)
        if source.weights_file is not None and not source.checked:
            raise RuntimeError(
                "this transformers version loaded the weights without calling "
                "PreTrainedModel._adjust_missing_and_unexpected_keys, where StefaLand checks the variable binding and "
                "the tensors; install a transformers version this stefaland_hf supports (see pyproject.toml)"
            )
        if source.saved_config is not None and source.binding is None:
            logger.warning(
                "%s carries no StefaLand variable binding (saved before stefaland_hf stored variables and normalization "
                "in the weights' metadata): its variables and statistics are checked against config.json only, which "
                "cannot reveal an edited config.json. save_pretrained it again to bind them.",
                source.weights_file or source.location,
            )
        return loaded

    def _adjust_missing_and_unexpected_keys(self, loading_info) -> None:
        """transformers' hook before its load report: check the binding and the tensors here, so that an error
        replaces the report and the expected gaps of a new task head are not reported at all."""
        super()._adjust_missing_and_unexpected_keys(loading_info)
        source = _LOADING.get()
        if source is None:  # loaded by transformers' own from_pretrained, not through ours
            return
        source.checked = True
        try:
            self._check_binding(source)
            self._check_tensors(source, loading_info)
        except ValueError:
            # The error names every problem: no report table as well, and no second error raised by the report.
            loading_info.missing_keys.clear()
            loading_info.unexpected_keys.clear()
            loading_info.mismatched_keys.clear()
            raise

    def _check_binding(self, source: _CheckpointSource) -> None:
        """Refuse a config whose variable lists, statistics or shape-less settings differ from the saved ones."""
        reference = source.binding
        if reference is None:  # saved before binding: config.json is the only record
            if source.saved_config is None:
                return
            fields = _SHAPELESS_BINDING + _INPUT_BINDING + _TARGET_BINDING + _HEAD_BINDING
            reference = {f: getattr(source.saved_config, f) for f in fields}
        fields = _SHAPELESS_BINDING + _INPUT_BINDING
        if self._is_task_model and source.architecture == type(self).__name__:
            fields += _TARGET_BINDING + _HEAD_BINDING  # the head comes from the checkpoint, so do its settings
        weights = source.weights_file or source.location
        for field in fields:
            if field not in reference:
                continue
            saved, given = _binding_value(field, reference[field]), _binding_value(field, getattr(self.config, field))
            if saved == given:
                continue
            if field in source.accept_changed:
                logger.warning(
                    "%s: %s is %s, not %s as saved with the weights (accepted by accept_changed)",
                    source.weights_file or source.location, field, json.dumps(given), json.dumps(saved),
                )
                continue
            in_config_json = _binding_value(field, getattr(source.saved_config, field)) != saved
            origin = (
                f"config.json ({config_file_name(source.location)})"
                if in_config_json
                else "the config passed to from_pretrained (config= or keyword arguments)"
            )
            raise ValueError(
                f"{field}: the checkpoint {weights} was saved with {json.dumps(saved)}, but {origin} has "
                f"{json.dumps(given)}; {_binding_hint(field)} To change it deliberately, pass "
                f"accept_changed=[{field!r}] to from_pretrained (save_pretrained then binds the new value)."
            )

    def _check_tensors(self, source: _CheckpointSource, loading_info) -> None:
        """Missing or unexpected tensors are an error, except the head/decoder gaps of the two partial loads."""
        source_class = self._checkpoint_class(source.architecture)
        new_head = self._is_task_model and source_class is not None and not source_class._is_task_model
        take_backbone = self._is_backbone and source_class is not None
        may_be_new = self._head_modules if new_head else ()
        may_be_dropped = source_class._head_modules if new_head or take_backbone else ()
        missing = sorted(k for k in loading_info.missing_keys if k.split(".", 1)[0] not in may_be_new)
        unexpected = sorted(k for k in loading_info.unexpected_keys if k.split(".", 1)[0] not in may_be_dropped)
        if missing or unexpected:
            problems = []
            if missing:
                problems.append(
                    f"{len(missing)} tensor(s) the model needs are not in it and would stay random: {_preview(missing)}"
                )
            if unexpected:
                problems.append(
                    f"{len(unexpected)} tensor(s) in it have no place in the model and would be ignored: "
                    f"{_preview(unexpected)}"
                )
            heads = self._head_modules + (source_class._head_modules if source_class is not None else ())
            only_heads = all(k.split(".", 1)[0] in heads for k in missing + unexpected)
            hint = (
                "Only two loads may be partial: a task model from a base encoder checkpoint (StefaLandModel or "
                "StefaLandForPretraining), and StefaLandModel out of any StefaLand checkpoint."
                if only_heads and source_class not in (None, type(self))
                else "The file is incomplete, or the config does not describe the architecture it was saved with."
            )
            raise ValueError(
                f"{source.weights_file or source.location}: cannot load this {source.architecture or 'checkpoint'} as a "
                f"{type(self).__name__}: " + "; ".join(problems) + ". " + hint
            )
        loading_info.missing_keys.clear()  # what remained was the new head and the dropped parts, as intended
        loading_info.unexpected_keys.clear()

    def _binding_metadata(self) -> dict[str, str]:
        """Safetensors metadata binding the weights to their variables, normalization, a head's targets, and the
        settings that change their computation without changing their shapes."""
        fields = _SHAPELESS_BINDING + _INPUT_BINDING
        if self._is_task_model:
            fields += _TARGET_BINDING + _HEAD_BINDING
        return {
            _BINDING_PREFIX + "architecture": json.dumps(type(self).__name__),
            **{_BINDING_PREFIX + f: json.dumps(getattr(self.config, f)) for f in fields},
        }

    def _bind_saved_weights(self, save_directory, variant: str | None) -> None:
        """Write the binding into the metadata of the safetensors file(s) ``save_pretrained`` just wrote."""
        for path in _saved_weight_files(save_directory, variant):
            _write_binding(path, self._binding_metadata())
