"""StefaLand model configuration.

Self-contained (standard library, huggingface_hub, transformers and same-folder relative imports
only) so that ``save_pretrained`` exports working remote code.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from .variables import DYNAMIC, STATIC, TARGET, validate_names

# The pretraining variables of the authors' 8,634-basin configuration (paper spec §2.1, first row),
# mapped to canonical names. These are the defaults of ``stefaland-original`` (the layout of the authors' checkpoint).
PAPER_DYNAMIC_VARIABLES = (
    "precipitation",
    "shortwave_radiation",
    "relative_humidity",
    "temperature_max",
    "temperature_min",
)
PAPER_STATIC_VARIABLES = (
    "mean_precipitation",
    "precipitation_seasonality",
    "pet_seasonality",
    "snow_fraction",
    "snowfall_fraction",
    "mean_temperature",
    "elevation",
    "slope",
    "aspect_cosine",
    "clay_fraction",
    "sand_fraction",
    "silt_fraction",
    "geology_porosity",
    "geology_permeability",
    "carbonate_rocks_fraction",
    "soil_depth",
    "ndvi",
    "grassland_fraction",
    "forest_fraction_1992",
    "forest_fraction",
    "area",
    "population_density",
    "gdp_density",
    "intact_forest_fraction",
)
PAPER_STATIC_GROUPS = {
    "climate": ["mean_precipitation", "precipitation_seasonality", "pet_seasonality", "mean_temperature"],
    "topography": ["elevation", "slope", "aspect_cosine", "soil_depth"],
    "soil": ["clay_fraction", "sand_fraction", "silt_fraction"],
    "geology": ["geology_permeability", "carbonate_rocks_fraction", "geology_porosity"],
    "vegetation": ["ndvi", "grassland_fraction", "forest_fraction_1992", "forest_fraction"],
}
PAPER_NEVER_MASK = ("area", "population_density", "gdp_density", "intact_forest_fraction")

HEAD_MODES = ("resconn", "no_adapter", "linear_probe", "scratch", "direct")
OUTPUT_TRANSFORMS = ("clamp", "softplus", "none")  # how task predictions respect the targets' physical range
FROZEN_BACKBONE_MODES = ("resconn", "no_adapter", "linear_probe")


@strict
class StefaLandConfig(PreTrainedConfig):
    r"""
    Configuration of a StefaLand model (Kraabel et al., arXiv 2509.17942). Every field is documented here.

    Variables (canonical names from `stefaland_hf.variables`):
        dynamic_variables (`list[str]`): daily forcings, one embedding MLP each, in input column order.
            Defaults to the paper's five MSWX/MSWEP forcings.
        static_variables (`list[str]`): static attributes, one embedding MLP each, in input column order.
            Defaults to the paper's 24 attributes.
        dynamic_groups (`dict[str, list[str]]`): dynamic variables masked jointly in time during pretraining.
        static_groups (`dict[str, list[str]]`): physically related static attributes masked together.
        never_mask_variables (`list[str]`): variables pretraining never masks (e.g. area).

    Architecture (paper Tab. 15 defaults):
        d_model (`int`, 256): width of tokens and encoder.
        num_attention_heads (`int`, 4), num_hidden_layers (`int`, 4), ffn_dim (`int`, 512): encoder shape.
        dropout (`float`, 0.1): dropout in embeddings, attention, FFN and heads.
        attention_dropout (`float`, optional): dropout on attention weights; None means `dropout` (as in
            ``nn.TransformerEncoderLayer``). On CPU it dominates the cost of long windows, so small configs set 0.
        variable_mlp_dim (`int`, 64): hidden width of every per-variable embedding and reconstruction MLP.
        max_position_embeddings (`int`, 1000): size of the learned position table; windows need T + 1 <= this.
        pre_norm (`bool`, False): pre-LN encoder layers; the paper and its code use post-LN.
        activation (`str`, "relu"): encoder FFN activation ("relu" as the authors' code actually runs, or "gelu").
        embedding_activation (`str`, "gelu"): activation inside per-variable MLPs.
        scale_embeddings (`bool`, True): multiply the encoder input by sqrt(d_model) after adding positions.
        layer_norm_eps (`float`, 1e-5).
        initializer_range (`float`, 0.02): per-variable MLPs, mask tokens and positions are U(-r, r) (the authors' init).
        static_mask_mode (`str`, "vector"): how a masked static attribute enters the static token: "vector" replaces
            its embedding with a learned D-vector (as the paper describes), "scalar" replaces its raw input with a
            learned scalar before the MLP (the authors' code; used by converted checkpoints).
        coordinate_encoding (`str`, "none"): "spherical_harmonics" adds real spherical harmonics of latitude/longitude
            (both must be static variables) up to `coordinate_encoding_degree` to the static token, where both
            coordinates are shown (a hidden or missing one leaves it out). Not in the paper (spec §1).
        coordinate_encoding_degree (`int`, 3).
        decoder_bidirectional (`bool`, False): the pretraining LSTM decoder direction (code: unidirectional; paper
            text: bidirectional).

    Pretraining (cross-variable group masking, paper App. A.2 and Tab. 15):
        dynamic_mask_ratio (`float`, 0.5): share of each window's days covered by masked spans per dynamic variable.
        static_mask_ratio (`float`, 0.5): share of static masking units (groups + ungrouped attributes) masked.
        mask_window_min (`int`, 30), mask_window_max (`int`, 90): bounds of each masked span in days.
        dynamic_loss_weight (`float`, 1.0), static_loss_weight (`float`, 0.5): weights of the two masked-MSE terms.

    Normalization (fitted on training data; the model takes and returns physical units):
        dynamic_mean, dynamic_std, static_mean, static_std (`list[float]`, optional): per-variable z-score
            statistics in the order of the variable lists. None means identity (inputs already normalized).

    Downstream tasks:
        target_variables (`list[str]`, optional): what a task head predicts (time-series targets such as
            "streamflow", or static attributes such as "sand_fraction" for static regression).
        target_mean, target_std (`list[float]`, optional): target normalization; heads return physical units.
        hidden_static_variables (`list[str]`, optional): static inputs a static-regression model always hides,
            besides its targets (attributes derived from them, e.g. silt = 1 - sand - clay); saved with the model,
            so a reloaded model hides them too.
        head_mode (`str`, "resconn"): "resconn" (frozen backbone + dual residual adapter + residual LSTM),
            "no_adapter" (frozen backbone -> LSTM), "linear_probe" (frozen backbone -> linear), "scratch"
            (resconn architecture, everything trained), "direct" (no backbone: LSTM on raw inputs).
        head_hidden_size (`int`, 256): LSTM width of the task head.
        head_dropout (`float`, 0.2): dropout inside the task head.
        adapter_dropout (`float`, 0.1): dropout of the adapter's forcing/attribute projections.
        embedding_scale_init (`float`, 0.1): initial value of the learned scale applied to LayerNorm(E) (the paper's
            0.1; a `no_adapter` head, which reads only E, trains much faster from 1.0: docs/RESULTS.md).
        output_transform (`str`, "clamp"): how predictions respect each target's physical range
            (`stefaland_hf.variables`, e.g. streamflow >= 0): "clamp" clips them to it (the loss sees the unclipped
            output), "softplus" maps the output smoothly above the lower bound (the loss sees the mapped output),
            "none" returns the head's raw output. Chosen by measurement: README "Non-negative streamflow".
    """

    model_type = "stefaland"
    attribute_map = {"hidden_size": "d_model"}

    dynamic_variables: list[str] | None = None
    static_variables: list[str] | None = None
    dynamic_groups: dict[str, list[str]] | None = None
    static_groups: dict[str, list[str]] | None = None
    never_mask_variables: list[str] | None = None

    d_model: int = 256
    num_attention_heads: int = 4
    num_hidden_layers: int = 4
    ffn_dim: int = 512
    dropout: float = 0.1
    attention_dropout: float | None = None
    variable_mlp_dim: int = 64
    max_position_embeddings: int = 1000
    pre_norm: bool = False
    activation: str = "relu"
    embedding_activation: str = "gelu"
    scale_embeddings: bool = True
    layer_norm_eps: float = 1e-5
    initializer_range: float = 0.02
    static_mask_mode: str = "vector"
    coordinate_encoding: str = "none"
    coordinate_encoding_degree: int = 3
    decoder_bidirectional: bool = False

    dynamic_mask_ratio: float = 0.5
    static_mask_ratio: float = 0.5
    mask_window_min: int = 30
    mask_window_max: int = 90
    dynamic_loss_weight: float = 1.0
    static_loss_weight: float = 0.5

    dynamic_mean: list[float] | None = None
    dynamic_std: list[float] | None = None
    static_mean: list[float] | None = None
    static_std: list[float] | None = None

    target_variables: list[str] | None = None
    target_mean: list[float] | None = None
    target_std: list[float] | None = None
    hidden_static_variables: list[str] | None = None
    head_mode: str = "resconn"
    head_hidden_size: int = 256
    head_dropout: float = 0.2
    adapter_dropout: float = 0.1
    embedding_scale_init: float = 0.1
    output_transform: str = "clamp"

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Like ``PreTrainedConfig.from_pretrained``, but refuses a folder of another model type (its fields would
        silently build a default StefaLand model), validates keyword overrides too, and names the file (and the
        overrides) when a value is invalid."""
        where = config_file_name(pretrained_model_name_or_path, kwargs.get("subfolder"))
        folder = os.path.dirname(where)
        if os.path.isdir(folder) and not os.path.isfile(where):
            # transformers would go on to other sources or fail with "Should have a model_type key"
            raise OSError(
                f"{folder}: a folder without config.json, so no model folder. A local folder comes before the model zoo "
                f"and the Hub: if you meant the model named {os.path.basename(os.path.normpath(folder))!r}, remove or "
                "rename this folder (or run from another directory); else pass the folder that holds config.json"
            )
        config_dict, kwargs = cls.get_config_dict(pretrained_model_name_or_path, **kwargs)
        model_type = config_dict.get("model_type", cls.model_type)
        if model_type != cls.model_type:
            raise ValueError(
                f"{where}: model_type is {model_type!r}, expected {cls.model_type!r}; this folder holds another kind "
                "of model and cannot be loaded as StefaLand"
            )
        try:
            loaded = cls.from_dict(config_dict, **kwargs)
            (loaded[0] if isinstance(loaded, tuple) else loaded)._validate()  # from_dict sets overrides unchecked
            return loaded
        except (TypeError, ValueError) as error:
            overrides = sorted(set(kwargs) & {f.name for f in dataclasses.fields(cls)})
            source = where + (f" with the keyword overrides {', '.join(overrides)}" if overrides else "")
            raise ValueError(f"{source}: {error}") from error

    def __post_init__(self, **kwargs):
        paper_statics = self.static_variables is None
        if self.dynamic_variables is None:
            self.dynamic_variables = list(PAPER_DYNAMIC_VARIABLES)
        if paper_statics:
            self.static_variables = list(PAPER_STATIC_VARIABLES)
        if self.static_groups is None:
            self.static_groups = {k: list(v) for k, v in PAPER_STATIC_GROUPS.items()} if paper_statics else {}
        if self.never_mask_variables is None:
            self.never_mask_variables = list(PAPER_NEVER_MASK) if paper_statics else []
        if self.dynamic_groups is None:
            self.dynamic_groups = {}
        if self.hidden_static_variables is None:
            self.hidden_static_variables = []
        self._validate()
        super().__post_init__(**kwargs)

    # ------------------------------------------------------------------------------------------
    def _validate(self) -> None:
        self._check_scalar_types()
        dyn = validate_names(self.dynamic_variables, "dynamic_variables", kinds=(DYNAMIC, TARGET))
        sta = validate_names(self.static_variables, "static_variables", kinds=(STATIC,))
        if not dyn:
            raise ValueError("dynamic_variables: at least one dynamic variable is required")
        for field, groups, allowed in (
            ("dynamic_groups", self.dynamic_groups, dyn),
            ("static_groups", self.static_groups, sta),
        ):
            seen: dict[str, str] = {}
            for group, members in groups.items():
                for name in members:
                    if name not in allowed:
                        raise ValueError(
                            f"{field}[{group!r}]: {name!r} is not one of the configured "
                            f"{'dynamic' if field == 'dynamic_groups' else 'static'} variables {allowed}"
                        )
                    if name in seen:
                        raise ValueError(f"{field}: {name!r} is in both group {seen[name]!r} and group {group!r}")
                    seen[name] = group
        for name in self.never_mask_variables:
            if name not in dyn and name not in sta:
                raise ValueError(f"never_mask_variables: {name!r} is neither a dynamic nor a static variable of this config")
        for name in self.hidden_static_variables:
            if name not in sta:
                raise ValueError(f"hidden_static_variables: {name!r} is not one of the static variables {list(sta)}")
        if self.d_model % self.num_attention_heads:
            raise ValueError(
                f"d_model ({self.d_model}) must be divisible by num_attention_heads ({self.num_attention_heads})"
            )
        for name in ("d_model", "num_attention_heads", "ffn_dim", "variable_mlp_dim", "max_position_embeddings", "head_hidden_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_hidden_layers < 0:
            raise ValueError(f"num_hidden_layers must be >= 0, got {self.num_hidden_layers}")
        attention_dropout = self.attention_dropout
        if attention_dropout is not None and not (_is_number(attention_dropout) and 0.0 <= attention_dropout <= 1.0):
            raise ValueError(f"attention_dropout must be in [0, 1], got {attention_dropout!r}")
        for name in ("dropout", "head_dropout", "adapter_dropout", "dynamic_mask_ratio", "static_mask_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if not 1 <= self.mask_window_min <= self.mask_window_max:
            raise ValueError(
                f"mask_window_min/mask_window_max must satisfy 1 <= min <= max, got {self.mask_window_min}/{self.mask_window_max}"
            )
        choices = {
            "activation": ("relu", "gelu"),
            "embedding_activation": ("relu", "gelu"),
            "static_mask_mode": ("vector", "scalar"),
            "coordinate_encoding": ("none", "spherical_harmonics"),
            "head_mode": HEAD_MODES,
            "output_transform": OUTPUT_TRANSFORMS,
        }
        for name, allowed_values in choices.items():
            if getattr(self, name) not in allowed_values:
                raise ValueError(f"{name} must be one of {allowed_values}, got {getattr(self, name)!r}")
        if self.coordinate_encoding != "none":
            missing = {"latitude", "longitude"} - set(sta)
            if missing:
                raise ValueError(f"coordinate_encoding={self.coordinate_encoding!r} needs static variables {sorted(missing)}")
        self._check_stats("dynamic_mean", "dynamic_std", len(dyn))
        self._check_stats("static_mean", "static_std", len(sta))
        if self.target_variables is not None:
            validate_names(self.target_variables, "target_variables")
            self._check_stats("target_mean", "target_std", len(self.target_variables))

    def _check_scalar_types(self) -> None:
        """Name the field of a wrongly typed value (e.g. ``"pre_norm": "yes"`` in a hand-edited config.json).

        ``@strict`` does not check this module's string annotations, and would refuse an integer for a float
        field; the expected type is that of the field's default.
        """
        for field in dataclasses.fields(StefaLandConfig):
            if field.name not in vars(StefaLandConfig)["__annotations__"] or field.default is None:
                continue
            value, default = getattr(self, field.name), field.default
            if isinstance(default, bool):
                ok, expected = isinstance(value, bool), "true or false"
            elif isinstance(default, int):
                ok, expected = isinstance(value, numbers.Integral) and not isinstance(value, bool), "an integer"
            elif isinstance(default, float):
                ok, expected = _is_number(value), "a number"
            else:
                ok, expected = isinstance(value, str), "a string"
            if not ok:
                raise ValueError(f"{field.name} must be {expected}, got {value!r}")

    def _check_stats(self, mean_name: str, std_name: str, expected: int) -> None:
        mean, std = getattr(self, mean_name), getattr(self, std_name)
        for name, values in ((mean_name, mean), (std_name, std)):
            if values is not None and not (isinstance(values, (list, tuple)) and all(_is_number(v) for v in values)):
                raise ValueError(f"{name} must be a list of numbers (one per variable), got {values!r}")
        if (mean is None) != (std is None):
            raise ValueError(f"{mean_name} and {std_name} must be given together")
        if mean is None:
            return
        for name, values in ((mean_name, mean), (std_name, std)):
            if len(values) != expected:
                raise ValueError(f"{name} has {len(values)} values, expected {expected} (one per variable)")
            if not all(math.isfinite(v) for v in values):
                raise ValueError(f"{name} must be finite, got {values}")
        if any(v <= 0 for v in std):
            raise ValueError(f"{std_name} must be positive, got {std}")

    # ------------------------------------------------------------------------------------------
    def replace(self, **changes) -> "StefaLandConfig":
        """A validated copy with ``changes`` applied (the one way the training paths derive a config)."""
        return type(self)(**{**self.to_dict(), **changes})

    @property
    def backbone_frozen(self) -> bool:
        """Whether task heads train with the pretrained backbone frozen (paper §2.3)."""
        return self.head_mode in FROZEN_BACKBONE_MODES

    def masking_units(self) -> list[list[str]]:
        """Static masking units: each group, then each ungrouped maskable attribute."""
        grouped = {name for members in self.static_groups.values() for name in members}
        units = [
            [n for n in members if n not in self.never_mask_variables] for members in self.static_groups.values()
        ]
        units = [u for u in units if u]
        units += [[n] for n in self.static_variables if n not in grouped and n not in self.never_mask_variables]
        return units


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def config_file_name(pretrained_model_name_or_path, subfolder: str | None = None) -> str:
    """The config.json that ``from_pretrained`` reads, for error messages (a local path, or the repo id's file)."""
    path = str(pretrained_model_name_or_path)
    return path if os.path.isfile(path) else os.path.join(path, subfolder or "", "config.json")


__all__ = ["StefaLandConfig"]
