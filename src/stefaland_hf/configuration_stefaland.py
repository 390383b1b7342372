"""StefaLand model configuration.

Self-contained (standard library, huggingface_hub, transformers, torch through ``differentiable_hbv``, and
same-folder relative imports only) so that ``save_pretrained`` exports working remote code.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import os

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from .differentiable_hbv import COMPONENT_PARAMETERS, DEFAULT_DYNAMIC_PARAMETERS, check_parameter_ranges, forcing_sources
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

HEAD_MODES = ("resconn", "no_adapter", "linear_probe", "scratch", "direct", "hbv", "resconn_hbv")
OUTPUT_TRANSFORMS = ("clamp", "softplus", "none")  # how task predictions respect the targets' physical range
OUTPUT_DISTRIBUTIONS = ("none", "cmal", "quantile")  # what a time-series head predicts per target and day
DEFAULT_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# the head modes whose last layer is a linear output layer that can return a distribution's parameters
DISTRIBUTION_HEAD_MODES = ("resconn", "no_adapter", "linear_probe", "scratch", "direct")
FROZEN_BACKBONE_MODES = ("resconn", "no_adapter", "linear_probe", "resconn_hbv")
BACKBONE_FREE_MODES = ("direct", "hbv")  # head modes whose model has no StefaLand encoder
HBV_HEAD_MODES = ("hbv", "resconn_hbv")  # heads whose streamflow comes from the differentiable HBV (docs/hbv.md)


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
            (resconn architecture, everything trained), "direct" (no backbone: LSTM on raw inputs), "hbv" (no backbone:
            an LSTM on raw inputs predicts the parameters of a differentiable HBV that makes the streamflow: δHBV,
            Feng et al. 2022) and "resconn_hbv" (frozen backbone + the resconn adapter predict them: the paper's
            hybrid, Table 9). The HBV heads (docs/hbv.md) predict "streamflow" only, one value per day.
        head_hidden_size (`int`, 256): LSTM width of the task head.
        head_dropout (`float`, 0.2): dropout inside the task head.
        adapter_dropout (`float`, 0.1): dropout of the adapter's forcing/attribute projections.
        embedding_scale_init (`float`, 0.1): initial value of the learned scale applied to LayerNorm(E) (the paper's
            0.1; a `no_adapter` head, which reads only E, trains much faster from 1.0: docs/RESULTS.md).
        embedding_adds_static (`bool`, False): the embedding E_t a head reads: False, the day tokens' states (the
            paper's code); True, plus the static token's state on every day (the authors' follow-up fine-tuning code).
            The day tokens hardly attend to the static token (docs/RESULTS.md), so only True brings the encoder's
            reading of the attributes into E_t.
        output_transform (`str`, "clamp"): how predictions respect each target's physical range
            (`stefaland_hf.variables`, e.g. streamflow >= 0): "clamp" clips them to it (the loss sees the unclipped
            output), "softplus" maps the output smoothly above the lower bound (the loss sees the mapped output),
            "none" returns the head's raw output. Chosen by measurement: README "Non-negative streamflow".
        output_distribution (`str`, "none"): what a time-series head predicts per target and day (docs/probabilistic.md):
            "none" one value (the masked MSE), "cmal" a countable mixture of asymmetric Laplace distributions
            (Klotz et al. 2022; negative log-likelihood), "quantile" the levels of `quantiles` (pinball loss). The
            distribution lives in the normalized target space; its quantiles map through the target's denormalization
            and `output_transform` ("clamp" puts the mass below a bound at the bound; "softplus" is refused), and
            `prediction` is its mean (CMAL: the exact mean of the clamped mixture) or, for "quantile", its median.
            Heads with an output layer only (`DISTRIBUTION_HEAD_MODES`); time-series models only.
        mixture_components (`int`, 3): components of a "cmal" mixture (>= 1).
        quantiles (`list[float]`, optional): increasing levels in (0, 1) a "quantile" head predicts, bracketing 0.5 (its
            median is `prediction`); None means `DEFAULT_QUANTILES` (5, 25, 50, 75, 95 %) for a "quantile" head.

    Differentiable HBV heads (`head_mode` "hbv" and "resconn_hbv"; `stefaland_hf.differentiable_hbv`, docs/hbv.md):
        hbv_nmul (`int`, 16): parallel HBV components per basin, each with its own parameters; their runoff is averaged.
        hbv_dynamic_parameters (`list[str]`, optional): component parameters that vary by day (the network's value of
            each day); the others are the network's value on the window's last day. None means the paper's hybrid's
            ["BETA", "K0", "BETAET"] (its Tab. 17); [] makes every parameter static.
        hbv_warmup_days (`int`, 365): days at the start of each window that spin up the HBV stores (their streamflow
            is simulated without gradient); finetuning sets it to its `warmup`. Windows must be longer.
        hbv_parameter_ranges (`dict[str, list[float]]`, optional): [low, high] replacing the range of a parameter in
            `differentiable_hbv.HBV_PARAMETER_RANGES`; reversed bounds and bounds outside the parameter's physical
            limits (`PHYSICAL_LIMITS`) are refused.
        The HBV reads physical forcings: precipitation, temperature ("temperature_mean", or the mean of
        "temperature_max" and "temperature_min") and "potential_evapotranspiration", or Hargreaves PET from
        "temperature_max", "temperature_min", "daylength" and the static "latitude"; a config of an HBV head without
        them is refused, naming what is missing.
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
    embedding_adds_static: bool = False
    output_transform: str = "clamp"
    output_distribution: str = "none"
    mixture_components: int = 3
    quantiles: list[float] | None = None
    hbv_nmul: int = 16
    hbv_dynamic_parameters: list[str] | None = None
    hbv_warmup_days: int = 365
    hbv_parameter_ranges: dict[str, list[float]] | None = None

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
        if self.quantiles is None and self.output_distribution == "quantile":
            self.quantiles = list(DEFAULT_QUANTILES)
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
        self._check_hbv(dyn, sta)
        check_output_distribution(self.output_distribution, self.mixture_components, self.quantiles, self.head_mode, self.output_transform)
        self._check_stats("dynamic_mean", "dynamic_std", len(dyn))
        self._check_stats("static_mean", "static_std", len(sta))
        if self.target_variables is not None:
            validate_names(self.target_variables, "target_variables")
            self._check_stats("target_mean", "target_std", len(self.target_variables))

    def _check_hbv(self, dynamic: list[str], static: list[str]) -> None:
        """The HBV settings (checked whatever the head, so a bad value never waits in a config); for an HBV head also
        the forcings it needs, its target and its point output."""
        if self.hbv_nmul < 1:
            raise ValueError(f"hbv_nmul must be at least 1 (parallel HBV components), got {self.hbv_nmul}")
        if self.hbv_warmup_days < 0:
            raise ValueError(f"hbv_warmup_days must be >= 0, got {self.hbv_warmup_days}")
        if self.hbv_dynamic_parameters is not None:
            unknown = [name for name in self.hbv_dynamic_parameters if name not in COMPONENT_PARAMETERS]
            if unknown or len(set(self.hbv_dynamic_parameters)) != len(self.hbv_dynamic_parameters):
                raise ValueError(
                    f"hbv_dynamic_parameters: expected distinct names among the HBV component parameters {list(COMPONENT_PARAMETERS)}, "
                    f"got {self.hbv_dynamic_parameters}" + (f" ({unknown} unknown)" if unknown else "")
                )
        if self.hbv_parameter_ranges is not None and not isinstance(self.hbv_parameter_ranges, dict):
            raise ValueError(f"hbv_parameter_ranges must be a mapping of parameter name to [low, high], got {self.hbv_parameter_ranges!r}")
        check_parameter_ranges(self.hbv_parameter_ranges)
        if self.head_mode not in HBV_HEAD_MODES:
            return
        forcing_sources(dynamic, static, owner=f"head_mode={self.head_mode!r} (the differentiable HBV)")
        if self.target_variables is not None and list(self.target_variables) != ["streamflow"]:
            raise ValueError(
                f"head_mode={self.head_mode!r}: the HBV physics predicts streamflow only; target_variables must be "
                f"['streamflow'], got {self.target_variables}"
            )
        if self.output_distribution != "none":
            raise ValueError(
                f"head_mode={self.head_mode!r} predicts one streamflow per day from the HBV physics (a point prediction): "
                f"output_distribution must be 'none', got {self.output_distribution!r}"
            )

    @property
    def hbv_dynamic(self) -> tuple[str, ...]:
        """The HBV parameters that vary by day, in the physics' order (``hbv_dynamic_parameters`` or their default)."""
        chosen = DEFAULT_DYNAMIC_PARAMETERS if self.hbv_dynamic_parameters is None else self.hbv_dynamic_parameters
        return tuple(name for name in COMPONENT_PARAMETERS if name in chosen)

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


def check_output_distribution(
    output_distribution: str, mixture_components: int, quantiles, head_mode: str | None = None, output_transform: str | None = None,
    owner: str = "",
) -> None:
    """Refuse a distributional head that cannot be built, naming the field (prefixed with ``owner``, e.g.
    ``"FinetuneArguments."``): an unknown distribution (with the closest name), a mixture without components, a
    quantile list outside (0, 1), unsorted or not bracketing the median, a head without an output layer, softplus."""
    if output_distribution not in OUTPUT_DISTRIBUTIONS:
        close = difflib.get_close_matches(str(output_distribution).lower(), OUTPUT_DISTRIBUTIONS, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        unsupported = " (GMM and UMAL heads are not implemented)" if str(output_distribution).lower() in ("gmm", "umal") else ""
        raise ValueError(f"{owner}output_distribution must be one of {OUTPUT_DISTRIBUTIONS}, got {output_distribution!r}{hint}{unsupported}")
    if isinstance(mixture_components, bool) or not isinstance(mixture_components, numbers.Integral) or mixture_components < 1:
        raise ValueError(f"{owner}mixture_components must be an integer >= 1 (the components of a CMAL mixture), got {mixture_components!r}")
    if quantiles is not None:
        if isinstance(quantiles, (str, bytes)) or not all(_is_number(q) for q in quantiles) or not len(quantiles):
            raise ValueError(f"{owner}quantiles must be a non-empty list of numbers in (0, 1), got {quantiles!r}")
        outside = [q for q in quantiles if not 0.0 < q < 1.0]
        if outside:
            raise ValueError(f"{owner}quantiles must lie strictly between 0 and 1, got {outside[0]!r} in {list(quantiles)}")
        if any(b <= a for a, b in zip(quantiles, quantiles[1:])):
            raise ValueError(f"{owner}quantiles must be strictly increasing (sorted, no repeats), got {list(quantiles)}; e.g. {sorted(set(quantiles))}")
        if output_distribution == "quantile" and not quantiles[0] <= 0.5 <= quantiles[-1]:
            raise ValueError(f"{owner}quantiles {list(quantiles)} must bracket 0.5: a quantile head's prediction is its median")
    if output_distribution == "none":
        return
    if head_mode is not None and head_mode not in DISTRIBUTION_HEAD_MODES:
        raise ValueError(
            f"{owner}output_distribution={output_distribution!r} needs a head with an output layer {DISTRIBUTION_HEAD_MODES}, "
            f"not head_mode={head_mode!r}"
        )
    if output_transform == "softplus":
        raise ValueError(
            f"{owner}output_distribution={output_distribution!r} with output_transform='softplus': a distribution's mass below "
            "the lower bound is put at the bound ('clamp', whose quantiles and mean are exact) or left ('none'); use one of them"
        )


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def config_file_name(pretrained_model_name_or_path, subfolder: str | None = None) -> str:
    """The config.json that ``from_pretrained`` reads, for error messages (a local path, or the repo id's file)."""
    path = str(pretrained_model_name_or_path)
    return path if os.path.isfile(path) else os.path.join(path, subfolder or "", "config.json")


__all__ = ["StefaLandConfig"]
