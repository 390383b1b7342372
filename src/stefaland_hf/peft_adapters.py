"""The resConn residual adapter as a PEFT method ("RESCONN").

PEFT 0.21 has no public hook for new methods (``register_peft_method`` rejects names outside its
closed ``PeftType`` enum), but ``PeftType`` is a str enum, so a plain string key in PEFT's three
mapping tables works for ``get_peft_model``, ``save_pretrained``, ``PeftModel.from_pretrained``,
``set_adapter`` and ``disable_adapter``. That is private API: ``peft`` is pinned in
``pyproject.toml`` and ``tests/test_peft_adapters.py`` guards it.

The tuner wraps the ``head`` of a :class:`StefaLandForTimeSeriesRegression`. Each adapter is a
complete task head (LayerNorm·s -> dual residual adapter -> residual LSTM -> linear, or the
``no_adapter`` / ``linear_probe`` variants) with its own targets and target normalization, so
several tasks (streamflow, soil moisture) share one frozen base and switch with ``set_adapter``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field

import torch
from peft.config import PeftConfig
from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING, PEFT_TYPE_TO_PREFIX_MAPPING, PEFT_TYPE_TO_TUNER_MAPPING
from peft.tuners.tuners_utils import BaseTuner, BaseTunerLayer
from torch import nn

from .checkpoint_binding import backbone_fingerprint, read_binding
from .configuration_stefaland import DEFAULT_QUANTILES, OUTPUT_TRANSFORMS, StefaLandConfig, check_output_distribution
from .modeling_stefaland import TASK_HEADS, StefaLandTaskHead, head_class
from .variables import validate_names

logger = logging.getLogger(__name__)

PEFT_TYPE = "RESCONN"
ADAPTER_HEAD_MODES = ("resconn", "no_adapter", "linear_probe", "resconn_hbv")
# The ResConnConfig fields that change an adapter's predictions (or which base it reads): bound to its weights as the
# ``adapter_binding`` tensor of its head, saved in adapter_model.safetensors and checked on load.
ADAPTER_BINDING = (
    "target_variables", "target_mean", "target_std", "head_mode", "head_hidden_size", "output_transform", "embedding_adds_static",
    "base_dynamic_variables", "base_static_variables", "base_fingerprint",
    "output_distribution", "mixture_components", "quantiles",
    "hbv_nmul", "hbv_dynamic_parameters", "hbv_warmup_days", "hbv_parameter_ranges",
)
BINDING_BUFFER = "adapter_binding"


@dataclass
class ResConnConfig(PeftConfig):
    """A task head trained on a frozen StefaLand backbone (paper §2.3).

    target_variables / target_mean / target_std: what this adapter predicts and its normalization
    (fitted on the training split); predictions come back in physical units.
    head_mode: "resconn" (default), "no_adapter" or "linear_probe" (the paper's ablations), or "resconn_hbv" (the
    adapter predicts the parameters of a differentiable HBV: the paper's hybrid, docs/hbv.md).
    hbv_nmul / hbv_dynamic_parameters / hbv_warmup_days / hbv_parameter_ranges: a "resconn_hbv" head's HBV, as the
    StefaLandConfig fields of the same names.
    output_distribution / mixture_components / quantiles: a distributional head, as the StefaLandConfig fields of the
    same names (docs/probabilistic.md); "none" (default) predicts one value per day.
    base_dynamic_variables / base_static_variables / base_fingerprint: the base the adapter was created on (its
    variable order, which the adapter's raw-input layers read, and ``backbone_fingerprint`` of its encoder), filled
    when the adapter is created; loading it onto another base is refused. None (adapters saved before) skips the check.
    """

    target_variables: list[str] = field(default_factory=lambda: ["streamflow"])
    target_mean: list[float] | None = None
    target_std: list[float] | None = None
    head_mode: str = "resconn"
    head_hidden_size: int = 256
    head_dropout: float = 0.2
    adapter_dropout: float = 0.1
    embedding_scale_init: float = 0.1
    embedding_adds_static: bool = False  # as StefaLandConfig.embedding_adds_static: the static token's state added to E_t
    output_transform: str = "clamp"  # as StefaLandConfig.output_transform: predictions within the targets' physical range
    output_distribution: str = "none"
    mixture_components: int = 3
    quantiles: list[float] | None = None
    hbv_nmul: int = 16
    hbv_dynamic_parameters: list[str] | None = None
    hbv_warmup_days: int = 365
    hbv_parameter_ranges: dict[str, list[float]] | None = None
    base_dynamic_variables: list[str] | None = None
    base_static_variables: list[str] | None = None
    base_fingerprint: str | None = None
    # Fields of ADAPTER_BINDING whose new value (in adapter_config.json or the config given) is accepted deliberately
    # instead of the value the weights were saved with; cleared when the adapter is saved again (the weights are then
    # bound to the new value).
    accept_changed: list[str] | None = None
    target_modules: list[str] | str | None = field(default_factory=lambda: ["head"])
    exclude_modules: list[str] | str | None = None
    modules_to_save: list[str] | None = None

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PEFT_TYPE
        validate_names(self.target_variables, "ResConnConfig.target_variables")
        if self.head_mode not in ADAPTER_HEAD_MODES:
            raise ValueError(f"ResConnConfig.head_mode must be one of {ADAPTER_HEAD_MODES}, got {self.head_mode!r}")
        if self.output_transform not in OUTPUT_TRANSFORMS:
            raise ValueError(f"ResConnConfig.output_transform must be one of {OUTPUT_TRANSFORMS}, got {self.output_transform!r}")
        if self.quantiles is None and self.output_distribution == "quantile":
            self.quantiles = list(DEFAULT_QUANTILES)
        check_output_distribution(
            self.output_distribution, self.mixture_components, self.quantiles, self.head_mode, self.output_transform, "ResConnConfig."
        )
        for name in ("target_mean", "target_std"):
            values = getattr(self, name)
            if values is not None and len(values) != len(self.target_variables):
                raise ValueError(
                    f"ResConnConfig.{name} has {len(values)} values, expected {len(self.target_variables)} "
                    f"(one per target variable {self.target_variables})"
                )
        unknown = sorted(set(self.accept_changed or ()) - set(ADAPTER_BINDING))
        if unknown:
            raise ValueError(f"ResConnConfig.accept_changed: {unknown} are not bound fields; bound: {list(ADAPTER_BINDING)}")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, subfolder=None, **kwargs):
        """PEFT's, then a readability check of the adapter weights beside it: a truncated adapter_model.safetensors is
        an error naming the file (PEFT's own is a bare SafetensorError)."""
        from transformers.utils import cached_file

        config = super().from_pretrained(pretrained_model_name_or_path, subfolder=subfolder, **kwargs)
        hub = {k: kwargs[k] for k in ("revision", "cache_dir", "token", "local_files_only") if k in kwargs}
        weights = cached_file(
            pretrained_model_name_or_path, "adapter_model.safetensors", subfolder=subfolder or "",
            _raise_exceptions_for_missing_entries=False, **hub,
        )
        if weights:
            read_binding([weights])  # raises OSError naming the file when it is truncated or corrupt
        config._loaded_from = os.path.join(str(pretrained_model_name_or_path), subfolder or "")  # for error messages
        return config

    def files(self) -> tuple[str, str]:
        """(adapter_config.json, adapter_model.safetensors) as error messages name them: with their folder when known."""
        folder = getattr(self, "_loaded_from", None)
        return tuple(os.path.join(folder, name) if folder else name for name in ("adapter_config.json", "adapter_model.safetensors"))

    def binding(self) -> dict:
        """The bound fields (ADAPTER_BINDING) as saved: names as lists, statistics as floats."""
        return {name: _bound_value(name, getattr(self, name)) for name in ADAPTER_BINDING}

    def head_config(self, model_config: StefaLandConfig) -> StefaLandConfig:
        """The base model's config with this adapter's head settings (same field names): what its head is built from."""
        head = {name: getattr(self, name) for name in _HEAD_FIELDS}
        return model_config.replace(**head)

    def save_pretrained(self, save_directory: str, **kwargs) -> None:
        """Record the base model class in ``adapter_config.json`` as transformers' ``AutoModelForTimeSeriesPrediction``.

        PEFT records the class's own module (``stefaland_hf.modeling_stefaland``), which ``AutoPeftModel.from_pretrained``
        refuses to import (its allowlist holds ``transformers`` and a few others); ``import stefaland_hf``, needed for
        the RESCONN type anyway, registers the Auto class.
        """
        if kwargs.get("auto_mapping_dict") is not None:
            kwargs["auto_mapping_dict"] = {"base_model_class": "AutoModelForTimeSeriesPrediction", "parent_library": "transformers"}
        accepted, self.accept_changed = self.accept_changed, None  # saved weights are bound to the values saved here
        try:
            super().save_pretrained(save_directory, **kwargs)
        finally:
            self.accept_changed = accepted


def _bound_value(name: str, value):
    if value is None:
        return None
    if name.endswith("_variables"):
        return list(value)
    if name in ("target_mean", "target_std", "quantiles"):
        return [float(v) for v in value]
    if name == "hbv_dynamic_parameters":
        return list(value)
    if name == "hbv_parameter_ranges":
        return {key: [float(bound) for bound in bounds] for key, bounds in sorted(value.items())}
    return value


def _encode_binding(binding: dict) -> torch.Tensor:
    return torch.tensor(list(json.dumps(binding, sort_keys=True).encode()), dtype=torch.uint8)


def _decode_binding(tensor: torch.Tensor) -> dict:
    return json.loads(bytes(tensor.detach().cpu().to(torch.uint8).tolist()).decode())


# The ResConnConfig fields that are StefaLandConfig head settings under the same names.
_HEAD_FIELDS = (
    "target_variables", "target_mean", "target_std", "head_mode", "head_hidden_size", "head_dropout",
    "adapter_dropout", "embedding_scale_init", "embedding_adds_static", "output_transform", "output_distribution", "mixture_components", "quantiles",
    "hbv_nmul", "hbv_dynamic_parameters", "hbv_warmup_days", "hbv_parameter_ranges",
)


RESCONN_HEADS = "resconn_heads"  # the ModuleDict of adapter heads in ResConnLayer


class ResConnLayer(nn.Module, BaseTunerLayer):
    """Wraps the base model's task head; the active adapter's head replaces it in the forward pass."""

    adapter_layer_names = (RESCONN_HEADS,)

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: ResConnConfig, model_config):
        super().__init__()
        self.base_layer = base_layer
        self.model_config = model_config
        self.resconn_heads = nn.ModuleDict({})
        self._active_adapter = adapter_name
        self.merged_adapters = []
        self.update_layer(adapter_name, config)

    def update_layer(self, adapter_name: str, config: ResConnConfig) -> None:
        head = head_class(TASK_HEADS, config.head_mode)(config.head_config(self.model_config))
        # what the weights are trained with travels with them (adapter_model.safetensors), checked on load
        head.register_buffer(BINDING_BUFFER, _encode_binding(config.binding()))
        self.resconn_heads[adapter_name] = head.to(next(self.base_layer.parameters()).device)
        self.set_adapter(adapter_name, inference_mode=config.inference_mode)

    @property
    def active_task_head(self) -> StefaLandTaskHead:
        """The head that runs now: the active adapter's, or the base model's own while adapters are disabled (what
        ``StefaLandForTimeSeriesRegression.running_head`` asks for)."""
        if self.disable_adapters or not self.active_adapters:
            return self.base_layer
        return self.resconn_heads[self.active_adapters[0]]

    def merge(self, adapter_names=None, safe_merge: bool = False) -> None:
        raise NotImplementedError("resConn adapters are whole task heads; there is nothing to merge into the base")

    def unmerge(self) -> None:
        raise NotImplementedError("resConn adapters are never merged")

    def forward(self, *args, **kwargs):
        if self.disable_adapters or not self.active_adapters:
            return self.base_layer(*args, **kwargs)
        if len(self.active_adapters) != 1:
            raise ValueError(f"resConn runs one adapter at a time, got active adapters {self.active_adapters}")
        return self.resconn_heads[self.active_adapters[0]](*args, **kwargs)


class ResConnModel(BaseTuner):
    """PEFT tuner that installs :class:`ResConnLayer` on the ``head`` of a StefaLand time-series model."""

    prefix: str = "resconn_"
    tuner_layer_cls = ResConnLayer
    target_module_mapping = {"stefaland": ["head"]}

    def _create_and_replace(self, peft_config, adapter_name, target, target_name, parent, current_key) -> None:
        if isinstance(target, ResConnLayer):
            self._bind_base(peft_config, adapter_name)
            target.update_layer(adapter_name, peft_config)
            return
        if not isinstance(target, StefaLandTaskHead):
            raise ValueError(
                f"ResConnConfig.target_modules: {current_key!r} is a {type(target).__name__}; resConn adapters replace "
                "the StefaLandTaskHead named 'head' of a StefaLandForTimeSeriesRegression"
            )
        base_targets = list(self.model.config.target_variables or [])
        if base_targets != list(peft_config.target_variables):
            raise ValueError(
                f"resConn adapter {adapter_name!r} predicts {list(peft_config.target_variables)}, but the base model was "
                f"built with target_variables={base_targets}, and its config would label the adapter's outputs so. "
                f"Load the base with target_variables={list(peft_config.target_variables)} (or none: AutoPeftModel "
                "then refuses a base without targets and names them)."
            )
        self._bind_base(peft_config, adapter_name)
        new_module = ResConnLayer(target, adapter_name, peft_config, self.model.config)
        if adapter_name not in self.active_adapters:
            new_module.requires_grad_(False)
        self._replace_module(parent, target_name, new_module, target)

    def _bind_base(self, config: ResConnConfig, adapter_name: str) -> None:
        """Record the base in a new adapter's config; refuse one recorded on another base (an adapter reads the raw
        inputs in its base's variable order and that encoder's embeddings: elsewhere it predicts nonsense, silently)."""
        backbone = getattr(self.model, "stefaland", None)
        base = {
            "base_dynamic_variables": list(self.model.config.dynamic_variables),
            "base_static_variables": list(self.model.config.static_variables),
            "base_fingerprint": None if backbone is None else backbone_fingerprint(backbone),
        }
        for name, value in base.items():
            recorded = getattr(config, name)
            if recorded is None:
                setattr(config, name, value)
            elif recorded != value:
                raise ValueError(
                    f"resConn adapter {adapter_name!r} was trained on another base model: its {name} is {recorded!r}, this "
                    f"base's {value!r}. Load it onto the base it was trained on (the same weights, in the same dtype)."
                )

    def _cast_adapter_dtype(self, adapter_name: str, autocast_adapter_dtype: bool = True) -> None:
        """Adapter heads keep the dtype they were built with."""

    def merge_and_unload(self, progressbar: bool = False, safe_merge: bool = False, adapter_names=None):
        """The base model as a complete task model of the active adapter: its head becomes the model's own ``head`` and
        its head settings (targets, statistics, head mode, distribution) the model's config, so ``save_pretrained``
        writes one folder that ``StefaLandForTimeSeriesRegression.from_pretrained`` (or ``AutoModelForTimeSeriesPrediction``)
        loads without PEFT or a separate base. A resConn head has nothing to fold into the encoder's weights: this
        installs the whole head. The other adapters are dropped; ``adapter_names`` may only name the active one."""
        layer = self.model.head
        if not isinstance(layer, ResConnLayer) or not layer.active_adapters or layer.disable_adapters:
            raise ValueError("merge_and_unload: no active resConn adapter to make the model's head")
        (name,) = layer.active_adapters
        if adapter_names is not None and list(adapter_names) != [name]:
            raise ValueError(f"merge_and_unload: resConn installs one adapter as the head, the active one ({name!r}), not {list(adapter_names)}")
        head = layer.resconn_heads[name]
        del head._buffers[BINDING_BUFFER]  # the complete model's config holds these settings, loaded with the weights
        self.model.config = self.peft_config[name].head_config(self.model.config)
        self.model.head = head
        return self.model

    @classmethod
    def _remove_adapter_name_from_key(cls, key: str, adapter_name: str) -> str:
        """Checkpoint keys carry no adapter name, so a saved adapter loads under any name.

        A resConn adapter is a whole module tree under ``resconn_heads.<name>.``; PEFT's default rule only
        strips a name in the last two key parts, which left it in most keys, and an adapter saved as
        ``streamflow`` then loaded as ``default`` came back randomly initialized.
        """
        return key.replace(f"{RESCONN_HEADS}.{adapter_name}.", f"{RESCONN_HEADS}.")

    @classmethod
    def _remap_adapter_state_dict_for_load(cls, model, config, adapter_name: str, state_dict: dict) -> dict:
        """PEFT's remapping, refusing a checkpoint that lacks any tensor of the adapter (PEFT only warns)."""
        remapped = super()._remap_adapter_state_dict_for_load(model, config, adapter_name, state_dict)
        strip = lambda key: key.removeprefix("base_model.model.")  # noqa: E731
        own = {strip(key): tensor for key, tensor in model.state_dict().items() if f"{RESCONN_HEADS}.{adapter_name}." in key}
        remapped = cls._check_binding(config, adapter_name, remapped, own, strip)
        loaded = {strip(key): key for key in remapped}
        missing = [key for key in own if key not in loaded]
        if missing:
            raise ValueError(
                f"resConn adapter {adapter_name!r}: the checkpoint lacks {len(missing)} of its {len(own)} tensors "
                f"(e.g. {missing[:3]}); checkpoint keys look like {sorted(state_dict)[:3]}. Was it saved by another "
                "version or for another head_mode?"
            )
        unexpected = [key for key in loaded if f"{RESCONN_HEADS}.{adapter_name}." in key and key not in own]
        if unexpected:
            raise ValueError(
                f"resConn adapter {adapter_name!r}: {len(unexpected)} tensor(s) of {config.files()[1]} have no place in "
                f"a head_mode={config.head_mode!r} head and would be ignored (e.g. {unexpected[:3]}); the adapter was "
                f"saved with another head_mode: restore the head_mode of {config.files()[0]}."
            )
        mismatched = [
            f"{key}: checkpoint {tuple(remapped[loaded[key]].shape)}, the config builds {tuple(own[key].shape)}"
            for key in own if key in loaded and tuple(remapped[loaded[key]].shape) != tuple(own[key].shape)
        ]
        if mismatched:
            raise ValueError(
                f"resConn adapter {adapter_name!r}: {len(mismatched)} tensor(s) of {config.files()[1]} have other sizes "
                f"than the head {config.files()[0]} describes (head_hidden_size={config.head_hidden_size}, "
                f"{len(config.target_variables)} target(s)): {'; '.join(mismatched[:3])}. Restore the adapter_config.json "
                "saved with the weights."
            )
        return remapped

    @staticmethod
    def _check_binding(config: ResConnConfig, adapter_name: str, remapped: dict, own: dict, strip) -> dict:
        """Refuse a config whose bound fields (ADAPTER_BINDING) differ from those the weights were saved with, except
        those named in ``accept_changed``; an adapter saved before binding loads with a warning."""
        key = next((k for k in own if k.endswith(f"{RESCONN_HEADS}.{adapter_name}.{BINDING_BUFFER}")), None)
        if key is None:
            return remapped
        saved_key = next((k for k in remapped if strip(k) == key), None)
        expected = own[key]
        remapped = dict(remapped)
        if saved_key is None:
            logger.warning(
                "resConn adapter %r carries no binding of its settings (saved before stefaland_hf bound "
                "target_variables, target statistics, head_mode and output_transform to the adapter weights): an edited "
                "adapter_config.json cannot be detected. Save it again to bind them.", adapter_name,
            )
            prefix = "base_model.model." if any(k.startswith("base_model.model.") for k in remapped) else ""
            remapped[prefix + key] = expected.clone()
            return remapped
        saved, given = _decode_binding(remapped[saved_key]), config.binding()
        accepted = set(config.accept_changed or ())
        for name in ADAPTER_BINDING:
            if name not in saved or saved[name] == given[name]:
                continue
            if name in accepted:
                logger.warning(
                    "resConn adapter %r: %s is %s, not %s as saved with the weights (accepted by accept_changed)",
                    adapter_name, name, json.dumps(given[name]), json.dumps(saved[name]),
                )
                continue
            config_file, weights_file = config.files()
            raise ValueError(
                f"resConn adapter {adapter_name!r}: {name} is {json.dumps(given[name])} in {config_file} (or the "
                f"config passed to from_pretrained), but the adapter's weights ({weights_file}) were saved "
                f"with {json.dumps(saved[name])}; loading would silently change or mislabel its predictions. Restore "
                f"the saved value, or accept the change deliberately by adding {name!r} to accept_changed in "
                f"{config_file} (saving the adapter again then binds the new value)."
            )
        remapped[saved_key] = expected.clone()  # the accepted values are bound from here on
        return remapped


PEFT_TYPE_TO_CONFIG_MAPPING[PEFT_TYPE] = ResConnConfig
PEFT_TYPE_TO_TUNER_MAPPING[PEFT_TYPE] = ResConnModel
PEFT_TYPE_TO_PREFIX_MAPPING[PEFT_TYPE] = ResConnModel.prefix

__all__ = ["ResConnConfig", "ResConnModel", "ResConnLayer"]
