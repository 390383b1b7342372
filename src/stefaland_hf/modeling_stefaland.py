"""StefaLand: embeddings, encoder, pretraining decoder and task heads (arXiv 2509.17942, App. A).

Self-contained (torch + transformers + same-folder relative imports) so that ``save_pretrained``
exports code that loads with ``trust_remote_code=True`` where ``stefaland_hf`` is not installed.
Every model takes inputs in physical units and normalizes them with statistics from its config.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.dynamic_module_utils import custom_object_save
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput, can_return_tuple

from .checkpoint_binding import StefaLandCheckpointMixin
from .differentiable_hbv import (
    ROUTING_PARAMETERS as HBV_ROUTING_PARAMETERS,
    STATE_NAMES as HBV_STATE_NAMES,
    check_parameter_ranges,
    extraterrestrial_radiation,
    forcing_sources,
    gamma_unit_hydrograph,
    hargreaves_pet,
    network_outputs,
    parameters_from_network,
    simulate as hbv_simulate,
)
from .configuration_stefaland import BACKBONE_FREE_MODES, DEFAULT_QUANTILES, FROZEN_BACKBONE_MODES, OUTPUT_TRANSFORMS, StefaLandConfig
from .output_distributions import AsymmetricLaplaceMixture, interpolate_quantiles, pinball_loss
from .variables import VARIABLES

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


# ================================================================================================
# Outputs
# ================================================================================================
@dataclass
class StefaLandModelOutput(ModelOutput):
    """Backbone output.

    last_hidden_state: [B, T + 1, D] projected encoder states; the static token is the last one.
    dynamic_hidden_state: [B, T, D] per-day states (the "StefaLand embedding" E_t of the paper).
    static_hidden_state: [B, D] state of the static token.
    dynamic_masked / static_masked: what entered the encoder as mask tokens (given mask OR missing).
    hidden_states: encoder input and every layer's output when requested.
    """

    last_hidden_state: torch.FloatTensor | None = None
    dynamic_hidden_state: torch.FloatTensor | None = None
    static_hidden_state: torch.FloatTensor | None = None
    dynamic_masked: torch.BoolTensor | None = None
    static_masked: torch.BoolTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class StefaLandForPretrainingOutput(ModelOutput):
    """Masked-reconstruction output; reconstructions are in physical units."""

    loss: torch.FloatTensor | None = None
    dynamic_loss: torch.FloatTensor | None = None
    static_loss: torch.FloatTensor | None = None
    dynamic_reconstruction: torch.FloatTensor | None = None
    static_reconstruction: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None


@dataclass
class StefaLandRegressionOutput(ModelOutput):
    """Task-head output; ``prediction`` is in the physical units of the target variables.

    A distributional head (``config.output_distribution``, docs/probabilistic.md) returns in ``prediction`` its mean
    ("cmal") or its median ("quantile"), and:
    distribution_parameters: [..., K, P] the distribution in the normalized target space z = (y - target_mean) /
        target_std, before the output range: "cmal" P = 4 * mixture_components, the components' locations, scales
        (> 0), asymmetries (in (0, 1), the mass below the location) and weights (sum 1), each block one component per
        column; "quantile" P = len(quantiles), the sorted quantile values.
    quantiles: [..., K, Q] the quantiles at the levels passed as ``quantiles=`` to ``forward``, in physical units
        (through the denormalization and the output range, which keep quantiles exact).
    The loss is the mean over observed labels of the negative log-likelihood ("cmal") or of the pinball loss averaged
    over the levels ("quantile"), on normalized targets.
    hbv: an HBV head's parameters, stores and forcings (``StefaLandHBVOutput``), with ``return_hbv_states=True``.
    """

    loss: torch.FloatTensor | None = None
    prediction: torch.FloatTensor | None = None
    distribution_parameters: torch.FloatTensor | None = None
    quantiles: torch.FloatTensor | None = None
    hbv: "StefaLandHBVOutput | None" = None


@dataclass
class StefaLandHBVOutput(ModelOutput):
    """Inside an HBV head (``head_mode`` "hbv"/"resconn_hbv"), from ``forward(..., return_hbv_states=True)``.

    parameters: [B, T, P, nmul] every component parameter of every day in physical units, P in the order of
        ``differentiable_hbv.COMPONENT_PARAMETERS`` (static parameters repeat their last-day value).
    routing_parameters: [B, 2] the gamma unit hydrograph's shape and scale (days), ``ROUTING_PARAMETERS``.
    snowpack, meltwater, soil_moisture, upper_zone, lower_zone: [B, T] stores at the end of each day, mean over the
        components (mm); the lower zone is the groundwater store.
    evapotranspiration, runoff (before routing): [B, T] component means (mm/day).
    precipitation, temperature, pet: [B, T] the forcings the physics ran on (mm/day, degC, mm/day).
    """

    parameters: torch.FloatTensor | None = None
    routing_parameters: torch.FloatTensor | None = None
    snowpack: torch.FloatTensor | None = None
    meltwater: torch.FloatTensor | None = None
    soil_moisture: torch.FloatTensor | None = None
    upper_zone: torch.FloatTensor | None = None
    lower_zone: torch.FloatTensor | None = None
    evapotranspiration: torch.FloatTensor | None = None
    runoff: torch.FloatTensor | None = None
    precipitation: torch.FloatTensor | None = None
    temperature: torch.FloatTensor | None = None
    pet: torch.FloatTensor | None = None


@dataclass
class StefaLandDistributionOutput(ModelOutput):
    """What ``StefaLandForTimeSeriesRegression.predict_distribution`` returns, in the targets' physical units.

    mean: [B, T, K] the distribution's mean (None for a "quantile" head: a few quantiles do not determine it).
    median: [B, T, K] its median.
    quantiles: [B, T, K, Q] its quantiles at ``quantile_levels`` [Q].
    """

    mean: torch.FloatTensor | None = None
    median: torch.FloatTensor | None = None
    quantiles: torch.FloatTensor | None = None
    quantile_levels: torch.FloatTensor | None = None


# ================================================================================================
# Building blocks
# ================================================================================================
class StefaLandNormalizer(nn.Module):
    """z-scores inputs with the statistics stored in the config (non-persistent: the config is the source).

    Statistics and arithmetic stay float32 in a bf16/fp16 model: physical values (an elevation of 3,000 m) lose
    digits in 16 bits, z-scores of order 1 do not, so values are normalized first and cast by the layers after.
    """

    def __init__(self, mean: list[float] | None, std: list[float] | None, size: int):
        super().__init__()
        self.statistics = (
            [0.0] * size if mean is None else [float(v) for v in mean],
            [1.0] * size if std is None else [float(v) for v in std],
        )
        self.register_buffer("mean", torch.tensor(self.statistics[0], dtype=torch.float32), persistent=False)
        self.register_buffer("std", torch.tensor(self.statistics[1], dtype=torch.float32), persistent=False)

    def reset_statistics(self) -> None:
        """Refill the buffers from the config values (transformers materializes models from the meta device)."""
        init.copy_(self.mean, torch.tensor(self.statistics[0], dtype=torch.float32))
        init.copy_(self.std, torch.tensor(self.statistics[1], dtype=torch.float32))

    def _apply(self, fn, recurse=True):
        """``.half()`` / ``.to(torch.bfloat16)`` move the statistics but keep them float32 (rounded, they would shift
        every z-score)."""
        super()._apply(fn, recurse)
        if self.mean.dtype in (torch.float16, torch.bfloat16):
            self.mean = torch.tensor(self.statistics[0], dtype=torch.float32, device=self.mean.device)
            self.std = torch.tensor(self.statistics[1], dtype=torch.float32, device=self.std.device)
        return self

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return (values.float() - self.mean) / self.std

    def denormalize(self, values: torch.Tensor) -> torch.Tensor:
        return values.float() * self.std + self.mean


class StefaLandOutputRange(nn.Module):
    """Keeps task predictions (physical units) within each target's physical range (``stefaland_hf.variables``).

    ``clamp`` clips to [valid_min, valid_max] after the loss, which sees the unclipped output (a clipped
    output has no gradient); ``softplus`` returns ``low + softplus(y - low)`` (then clips at valid_max), and
    the loss sees that output. ``none`` returns the head's output as it is. Targets without a canonical
    variable are unbounded.
    """

    def __init__(self, target_variables: list[str], transform: str):
        super().__init__()
        if transform not in OUTPUT_TRANSFORMS:
            raise ValueError(f"output_transform must be one of {OUTPUT_TRANSFORMS}, got {transform!r}")
        self.transform = transform
        self.bounds = [(VARIABLES[n].valid_min, VARIABLES[n].valid_max) if n in VARIABLES else (-math.inf, math.inf) for n in target_variables]
        self.register_buffer("low", torch.empty(len(self.bounds)), persistent=False)
        self.register_buffer("high", torch.empty(len(self.bounds)), persistent=False)
        self.reset_bounds()

    def reset_bounds(self) -> None:
        """Refill the buffers (transformers materializes models from the meta device, as for the normalizers)."""
        init.copy_(self.low, torch.tensor([b[0] for b in self.bounds], dtype=torch.float32))
        init.copy_(self.high, torch.tensor([b[1] for b in self.bounds], dtype=torch.float32))

    @property
    def in_loss(self) -> bool:
        """Whether the loss is computed on the transformed output."""
        return self.transform == "softplus"

    def forward(self, physical: torch.Tensor) -> torch.Tensor:
        if self.transform == "none":
            return physical
        if self.transform == "softplus":
            low = torch.where(torch.isfinite(self.low), self.low, torch.zeros_like(self.low))
            physical = torch.where(torch.isfinite(self.low), low + F.softplus(physical - low), physical)
        return torch.minimum(torch.maximum(physical, self.low), self.high)

    def extra_repr(self) -> str:
        return f"transform={self.transform!r}"


class StefaLandDropout(nn.Module):
    """Inverted dropout, Bernoulli(1 - p) per element like ``nn.Dropout``, drawn cheaply on CPU.

    On CPU ``nn.Dropout`` draws one mt19937 Bernoulli sample per element (``bernoulli_``: 15 % of a
    base pretraining step). This draws 16 random bits per element from one full-range int64
    ``random_`` (about 10x cheaper), keeps an element when its bits clear a threshold, and saves a
    bool mask (1 byte per element instead of 4) for backward. The keep probability is ``1 - p`` rounded
    to a multiple of 1/65536 (p = 0.1 keeps 0.899994). Other devices, and ``torch.compile`` (whose
    inductor fuses its own dropout), use ``F.dropout``. Seeded by torch's default generator.
    """

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p
        self._threshold = -(2**15) + round(p * 2**16)  # int16 bits >= threshold -> keep

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return hidden
        if hidden.device.type != "cpu" or self.p == 1.0 or torch.compiler.is_compiling():
            return F.dropout(hidden, self.p, training=True)
        words = -(-hidden.numel() // 4)
        bits = torch.empty(words, dtype=torch.int64).random_(-(2**63), 2**63 - 1).view(torch.int16)
        keep = (bits[: hidden.numel()] >= self._threshold).view(hidden.shape)
        return hidden * keep * (1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class StefaLandVariableEmbedding(nn.Module):
    """One small MLP per variable (1 -> H -> D), summed over variables, as ONE batched op.

    Masked or missing entries are replaced by a learned per-variable mask vector before the sum
    (``mask_mode="vector"``, paper Eq. 4-7), or their raw input by a learned scalar before the MLP
    (``mask_mode="scalar"``, the authors' static-attribute code). The sum over variables is a single
    matmul of the gated hidden activations [..., V*H] with the stacked second-layer weights [V*H, D],
    so no [..., V, D] tensor is ever materialized.
    """

    def __init__(self, num_variables: int, hidden: int, d_model: int, activation: str, dropout: float, mask_mode: str = "vector"):
        super().__init__()
        self.num_variables, self.hidden, self.mask_mode = num_variables, hidden, mask_mode
        self.weight1 = nn.Parameter(torch.empty(num_variables, hidden))
        self.bias1 = nn.Parameter(torch.empty(num_variables, hidden))
        self.weight2 = nn.Parameter(torch.empty(num_variables, hidden, d_model))
        self.bias2 = nn.Parameter(torch.empty(num_variables, d_model))
        mask_shape = (num_variables, d_model) if mask_mode == "vector" else (num_variables,)
        self.mask_token = nn.Parameter(torch.empty(mask_shape))
        self.activation = _ACTIVATIONS[activation]
        self.dropout = StefaLandDropout(dropout)

    def forward(self, values: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """values [..., V] (normalized, NaN already removed), masked [..., V] bool -> [..., D] in the weights' dtype."""
        values = values.to(self.weight1.dtype)
        if self.mask_mode == "scalar":
            values = torch.where(masked, self.mask_token.to(values.dtype), values)
        hidden = self.dropout(self.activation(values.unsqueeze(-1) * self.weight1 + self.bias1))
        keep = (~masked).to(hidden.dtype) if self.mask_mode == "vector" else torch.ones_like(values)
        hidden = hidden * keep.unsqueeze(-1)
        out = hidden.flatten(-2) @ self.weight2.flatten(0, 1) + keep @ self.bias2
        if self.mask_mode == "vector":
            out = out + masked.to(hidden.dtype) @ self.mask_token
        return out


class StefaLandSphericalHarmonics(nn.Module):
    """Real spherical harmonics of (latitude, longitude) up to a degree, projected to d_model."""

    def __init__(self, degree: int, d_model: int):
        super().__init__()
        self.degree = degree
        self.projection = nn.Linear((degree + 1) ** 2, d_model)

    def forward(self, latitude: torch.Tensor, longitude: torch.Tensor) -> torch.Tensor:
        return self.projection(self.harmonics(latitude, longitude).to(self.projection.weight.dtype))

    def harmonics(self, latitude: torch.Tensor, longitude: torch.Tensor) -> torch.Tensor:
        """[..., (degree + 1)**2] harmonics in the dtype of the coordinates (float32 in the model, whatever its dtype)."""
        x = torch.cos(torch.deg2rad(90.0 - latitude))  # cos(colatitude)
        phi = torch.deg2rad(longitude)
        sin_theta = torch.sqrt(torch.clamp(1 - x * x, min=0.0))
        features = []
        legendre_mm = torch.ones_like(x)  # P_m^m, updated as m grows
        for m in range(self.degree + 1):
            if m > 0:
                legendre_mm = -(2 * m - 1) * sin_theta * legendre_mm
            p_prev, p_curr = None, legendre_mm
            for l in range(m, self.degree + 1):
                if l == m + 1:
                    p_prev, p_curr = p_curr, x * (2 * m + 1) * p_curr
                elif l > m + 1:
                    p_prev, p_curr = p_curr, ((2 * l - 1) * x * p_curr - (l + m - 1) * p_prev) / (l - m)
                k = math.sqrt((2 * l + 1) / (4 * math.pi) * math.factorial(l - m) / math.factorial(l + m))
                if m == 0:
                    features.append(k * p_curr)
                else:
                    features.append(math.sqrt(2) * k * torch.cos(m * phi) * p_curr)
                    features.append(math.sqrt(2) * k * torch.sin(m * phi) * p_curr)
        return torch.stack(features, dim=-1)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention written out, softmax(Q K^T / sqrt(d)) V with dropout on the weights (``attn_implementation="eager"``,
    to debug or to check the fused kernels). query/key/value [B, H, T, d] -> output [B, T, H, d] and the weights.
    StefaLand attends to every token, so there is never an ``attention_mask``."""
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    weights = torch.softmax(torch.matmul(query, key.transpose(2, 3)) * scaling, dim=-1)
    weights = F.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


class StefaLandAttention(nn.Module):
    """Multi-head self-attention through transformers' attention interface: ``config._attn_implementation`` is
    "sdpa" (default; ``scaled_dot_product_attention``, flash/mem-efficient kernels on GPU) or "eager"
    (``eager_attention_forward``), chosen with ``attn_implementation=`` when a model is built or loaded, or with
    ``set_attn_implementation``."""

    is_causal = False  # every day sees every other day and the static token

    def __init__(self, config: StefaLandConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.dropout = config.dropout if config.attention_dropout is None else config.attention_dropout
        self.in_proj = nn.Linear(config.d_model, 3 * config.d_model)
        self.out_proj = nn.Linear(config.d_model, config.d_model)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        batch, length, width = hidden.shape
        head_dim = width // self.num_heads
        qkv = self.in_proj(hidden).view(batch, length, 3, self.num_heads, head_dim)
        # SDPA's fused CPU kernel is slower in bf16 than in float32 for narrow heads (fwd+bwd, B=32, T=366:
        # head dim 16 111 vs 75 ms, 32 142 vs 118 ms; 64 200 vs 235 ms favours bf16), so those stay float32.
        narrow_cpu_bf16 = qkv.device.type == "cpu" and qkv.dtype == torch.bfloat16 and head_dim < 64
        query, key, value = (qkv.float() if narrow_cpu_bf16 else qkv).permute(2, 0, 3, 1, 4).unbind(0)
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)
        with torch.autocast("cpu", enabled=False) if narrow_cpu_bf16 else contextlib.nullcontext():
            out, _ = attention(self, query, key, value, None, dropout=self.dropout if self.training else 0.0)
        return self.out_proj(out.reshape(batch, length, width).to(qkv.dtype))


class StefaLandLayer(GradientCheckpointingLayer):
    """One encoder layer; post-LN like ``nn.TransformerEncoderLayer`` by default, pre-LN optional."""

    def __init__(self, config: StefaLandConfig):
        super().__init__()
        self.pre_norm = config.pre_norm
        self.self_attn = StefaLandAttention(config)
        self.linear1 = nn.Linear(config.d_model, config.ffn_dim)
        self.linear2 = nn.Linear(config.ffn_dim, config.d_model)
        self.norm1 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.norm2 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.dropout = StefaLandDropout(config.dropout)
        self.activation = _ACTIVATIONS[config.activation]

    def _feed_forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.linear2(self.dropout(self.activation(self.linear1(hidden)))))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.pre_norm:
            hidden = hidden + self.dropout(self.self_attn(self.norm1(hidden)))
            return hidden + self._feed_forward(self.norm2(hidden))
        hidden = self.norm1(hidden + self.dropout(self.self_attn(hidden)))
        return self.norm2(hidden + self._feed_forward(hidden))


class StefaLandReconstructionHeads(nn.Module):
    """Per-variable MLP heads (D -> H -> 1, GELU), batched over variables as one matmul."""

    def __init__(self, num_variables: int, d_model: int, hidden: int, dropout: float):
        super().__init__()
        self.num_variables, self.hidden = num_variables, hidden
        self.weight1 = nn.Parameter(torch.empty(d_model, num_variables * hidden))
        self.bias1 = nn.Parameter(torch.empty(num_variables * hidden))
        self.weight2 = nn.Parameter(torch.empty(num_variables, hidden))
        self.bias2 = nn.Parameter(torch.empty(num_variables))
        self.dropout = StefaLandDropout(dropout)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [..., D] -> [..., V]."""
        inner = F.gelu(hidden @ self.weight1 + self.bias1).unflatten(-1, (self.num_variables, self.hidden))
        return (self.dropout(inner) * self.weight2).sum(-1) + self.bias2


def _input_normalizers(config: StefaLandConfig) -> tuple[StefaLandNormalizer, StefaLandNormalizer]:
    """The dynamic and static input normalizers of a config's statistics."""
    return (
        StefaLandNormalizer(config.dynamic_mean, config.dynamic_std, len(config.dynamic_variables)),
        StefaLandNormalizer(config.static_mean, config.static_std, len(config.static_variables)),
    )


def _nan_to_zero(values: torch.Tensor) -> torch.Tensor:
    return torch.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)


# A normalized input further than this from 0 is no measurement: a fill value (netCDF's 9.96921e36, 1e30), a unit
# error or an overflow. float32 arithmetic of the embedding and attention overflows to inf/NaN well before such
# values reach 1e30, and would silently turn the whole sample's output into NaN.
MAX_ABS_ZSCORE = 1e6


def refuse_implausible_values(name: str, raw: torch.Tensor, normalized: torch.Tensor, variables: list[str]) -> None:
    """Refuse +-inf (only NaN means missing) and values more than ``MAX_ABS_ZSCORE`` standard deviations from their
    variable's training mean, naming the first one; NaN passes (the model masks it)."""
    bad = normalized.abs() > MAX_ABS_ZSCORE  # NaN compares False, +-inf True
    if not bool(bad.any()):
        return
    index = tuple(int(i) for i in bad.nonzero()[0])
    value, count = float(raw[index]), int(bad.sum())
    reason = (
        "infinite; only NaN means missing"
        if math.isinf(value)
        else f"more than {MAX_ABS_ZSCORE:g} standard deviations from the variable's training mean: a fill value "
        "(e.g. netCDF's 9.96921e36), a unit error or corrupt data, which would turn the sample's output into NaN"
    )
    raise ValueError(
        f"{name}{list(index)} ({variables[index[-1]]}) = {value:g} is {reason} ({count} such value(s) in {name}); "
        "replace them with NaN (missing), which the model masks"
    )


def _as_tensors(device: torch.device, **inputs) -> list[torch.Tensor | None]:
    """numpy arrays (and other array-likes) as tensors on the model's device; tensors and None pass unchanged."""
    converted = []
    for name, value in inputs.items():
        if value is not None and not isinstance(value, torch.Tensor):
            try:
                value = torch.as_tensor(value, device=device)
            except (TypeError, ValueError, RuntimeError) as error:
                raise TypeError(
                    f"{name}: expected a torch.Tensor or a numpy array, got {type(value).__name__} ({error})"
                ) from None
        converted.append(value)
    return converted


def _check_inputs(config: StefaLandConfig, x_dynamic, x_static, dynamic_mask, static_mask) -> None:
    """Clear errors for the mistakes users make: wrong rank, wrong variable count, too long windows."""
    num_dynamic, num_static = len(config.dynamic_variables), len(config.static_variables)
    if x_dynamic.dim() == 3 and 0 in x_dynamic.shape[:2]:
        raise ValueError(
            f"x_dynamic: shape {tuple(x_dynamic.shape)} holds no {'sample' if x_dynamic.shape[0] == 0 else 'day'} "
            "(a zero-length batch or window); pass at least one sample of at least one day"
        )
    if x_dynamic.dim() != 3 or x_dynamic.shape[-1] != num_dynamic:
        raise ValueError(
            f"x_dynamic: expected shape [batch, time, {num_dynamic}] for dynamic_variables {config.dynamic_variables}, "
            f"got {tuple(x_dynamic.shape)}"
        )
    if x_static.dim() != 2 or x_static.shape[-1] != num_static or x_static.shape[0] != x_dynamic.shape[0]:
        raise ValueError(
            f"x_static: expected shape [{x_dynamic.shape[0]}, {num_static}] for static_variables {config.static_variables}, "
            f"got {tuple(x_static.shape)}"
        )
    if x_dynamic.shape[1] + 1 > config.max_position_embeddings:
        raise ValueError(
            f"x_dynamic: sequence of {x_dynamic.shape[1]} days plus the static token exceeds "
            f"max_position_embeddings={config.max_position_embeddings}; use windows of at most "
            f"{config.max_position_embeddings - 1} days"
        )
    for name, mask, values in (("dynamic_mask", dynamic_mask, x_dynamic), ("static_mask", static_mask, x_static)):
        if mask is not None and tuple(mask.shape) != tuple(values.shape):
            raise ValueError(f"{name}: expected shape {tuple(values.shape)}, got {tuple(mask.shape)}")


# ================================================================================================
# Pretrained base
# ================================================================================================
class StefaLandPreTrainedModel(StefaLandCheckpointMixin, PreTrainedModel):
    """Loading, saving and initialization shared by the StefaLand models (loading and the weights' binding:
    ``checkpoint_binding.StefaLandCheckpointMixin``).

    As in transformers, every ``forward`` returns its ``ModelOutput``, or ``output.to_tuple()`` when called with
    ``return_dict=False`` or when ``config.return_dict`` is False; ``attn_implementation="sdpa"`` (default) or
    ``"eager"`` at construction or load selects the attention (``StefaLandAttention``).
    """

    config: StefaLandConfig
    config_class = StefaLandConfig
    base_model_prefix = "stefaland"
    main_input_name = "x_dynamic"
    input_modalities = ("time",)
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["StefaLandLayer"]
    accepts_loss_kwargs = False

    def _init_weights(self, module: nn.Module) -> None:
        r = self.config.initializer_range
        if isinstance(module, StefaLandNormalizer):
            module.reset_statistics()
        elif isinstance(module, StefaLandOutputRange):
            module.reset_bounds()
        elif isinstance(module, (StefaLandVariableEmbedding, StefaLandReconstructionHeads)):
            for parameter in module.parameters(recurse=False):
                init.uniform_(parameter, -r, r)
        elif isinstance(module, StefaLandModel):
            init.uniform_(module.position_embedding, -r, r)
        elif isinstance(module, (StefaLandResConnHead, StefaLandNoAdapterHead)):
            init.constant_(module.embedding_scale, self.config.embedding_scale_init)
        else:
            super()._init_weights(module)

    @staticmethod
    def _checkpoint_class(architecture: str | None) -> type[StefaLandPreTrainedModel] | None:
        return _ARCHITECTURES.get(architecture)

    def save_pretrained(
        self, save_directory, is_main_process: bool = True, state_dict=None, push_to_hub: bool = False, **kwargs
    ):
        """Write ``AUTO_MAP`` into config.json, this code beside it, and the variable binding into model.safetensors'
        metadata (``checkpoint_binding``).

        transformers copies the code only of a class registered for an Auto class; StefaLandForStaticRegression has
        none (see ``AUTO_CLASSES``), so its code is copied here. ``push_to_hub=True`` goes through ``push_to_hub``
        (which saves through this method), so no file is uploaded before it is bound.
        """
        self.config.auto_map = dict(AUTO_MAP)
        hub = {k: kwargs.pop(k) for k in ("repo_id", "commit_message", "create_pr", "private") if k in kwargs}
        result = super().save_pretrained(save_directory, is_main_process=is_main_process, state_dict=state_dict, **kwargs)
        if is_main_process:
            if not self.is_remote_code():
                custom_object_save(self, save_directory)
            self._bind_saved_weights(save_directory, kwargs.get("variant"))
        if push_to_hub:
            repo_id = hub.pop("repo_id", os.path.basename(os.path.normpath(save_directory)))
            self.push_to_hub(repo_id, token=kwargs.get("token"), **hub)
        return result


# ================================================================================================
# Backbone
# ================================================================================================
class StefaLandModel(StefaLandPreTrainedModel):
    """Embeddings + transformer encoder + final norm and projection (the "encoder path" of the paper)."""

    _is_backbone = True

    def __init__(self, config: StefaLandConfig):
        super().__init__(config)
        num_dynamic, num_static = len(config.dynamic_variables), len(config.static_variables)
        self.dynamic_normalizer, self.static_normalizer = _input_normalizers(config)
        mlp = (config.variable_mlp_dim, config.d_model, config.embedding_activation, config.dropout)
        self.dynamic_embedding = StefaLandVariableEmbedding(num_dynamic, *mlp, mask_mode="vector")
        self.static_embedding = StefaLandVariableEmbedding(num_static, *mlp, mask_mode=config.static_mask_mode)
        self.coordinate_encoding = None
        if config.coordinate_encoding == "spherical_harmonics":
            self.coordinate_encoding = StefaLandSphericalHarmonics(config.coordinate_encoding_degree, config.d_model)
            self._lat_index = config.static_variables.index("latitude")
            self._lon_index = config.static_variables.index("longitude")
        self.position_embedding = nn.Parameter(torch.empty(config.max_position_embeddings, config.d_model))
        self.embedding_dropout = StefaLandDropout(config.dropout)
        self.layers = nn.ModuleList([StefaLandLayer(config) for _ in range(config.num_hidden_layers)])
        self.encoder_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.output_dropout = StefaLandDropout(config.dropout)
        self.output_projection = nn.Linear(config.d_model, config.d_model)
        self.gradient_checkpointing = False
        self.post_init()

    def normalize(self, x_dynamic: torch.Tensor, x_static: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Physical units -> z-scores (NaN stays NaN)."""
        return self.dynamic_normalizer(x_dynamic), self.static_normalizer(x_static)

    @can_return_tuple
    def forward(
        self,
        x_dynamic: torch.Tensor,
        x_static: torch.Tensor,
        dynamic_mask: torch.Tensor | None = None,
        static_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> StefaLandModelOutput | tuple:
        r"""
        x_dynamic: [B, T, F] daily inputs in physical units, columns in ``config.dynamic_variables`` order; NaN = missing.
        x_static: [B, C] static attributes in physical units, ``config.static_variables`` order; NaN = missing.
        dynamic_mask / static_mask: optional bool tensors of the same shapes; True hides the value behind a mask token.
        numpy arrays are accepted for every input; hidden states come back in the model's dtype.
        """
        x_dynamic, x_static, dynamic_mask, static_mask = _as_tensors(
            self.device, x_dynamic=x_dynamic, x_static=x_static, dynamic_mask=dynamic_mask, static_mask=static_mask
        )
        _check_inputs(self.config, x_dynamic, x_static, dynamic_mask, static_mask)
        dynamic_norm, static_norm = self.normalize(x_dynamic.float(), x_static.float())
        refuse_implausible_values("x_dynamic", x_dynamic, dynamic_norm, self.config.dynamic_variables)
        refuse_implausible_values("x_static", x_static, static_norm, self.config.static_variables)
        dynamic_masked = ~torch.isfinite(dynamic_norm)  # NaN inputs are missing
        static_masked = ~torch.isfinite(static_norm)
        if dynamic_mask is not None:
            dynamic_masked = dynamic_masked | dynamic_mask.bool()
        if static_mask is not None:
            static_masked = static_masked | static_mask.bool()

        dynamic_tokens = self.dynamic_embedding(_nan_to_zero(dynamic_norm), dynamic_masked)  # [B, T, D]
        static_token = self.static_embedding(_nan_to_zero(static_norm), static_masked)  # [B, D]
        if self.coordinate_encoding is not None:
            # only where both coordinates are shown: a hidden or missing one must not reach the model through here
            located = ~(static_masked[:, self._lat_index] | static_masked[:, self._lon_index])
            encoding = self.coordinate_encoding(
                _nan_to_zero(x_static[:, self._lat_index].float()), _nan_to_zero(x_static[:, self._lon_index].float())
            )
            static_token = static_token + encoding * located.unsqueeze(-1).to(encoding.dtype)
        tokens = torch.cat([dynamic_tokens, static_token.unsqueeze(1)], dim=1)
        hidden = self.embedding_dropout(tokens + self.position_embedding[: tokens.shape[1]])
        if self.config.scale_embeddings:
            hidden = hidden * math.sqrt(self.config.d_model)

        all_hidden = (hidden,) if output_hidden_states else None
        for layer in self.layers:
            hidden = layer(hidden)
            if output_hidden_states:
                all_hidden = all_hidden + (hidden,)
        hidden = self.output_projection(self.output_dropout(self.encoder_norm(hidden)))

        return StefaLandModelOutput(
            last_hidden_state=hidden,
            dynamic_hidden_state=hidden[:, :-1],
            static_hidden_state=hidden[:, -1],
            dynamic_masked=dynamic_masked,
            static_masked=static_masked,
            hidden_states=all_hidden,
        )


# ================================================================================================
# Pretraining: masked reconstruction
# ================================================================================================
def masked_mse(
    prediction: torch.Tensor, target: torch.Tensor, selected: torch.Tensor, denominator: torch.Tensor | int | None = None
) -> torch.Tensor:
    """Mean squared error over ``selected`` observed entries (0 with a gradient path when nothing is selected).

    ``denominator`` replaces this batch's count of selected observed entries, e.g. by their count over all
    processes of a data-parallel step, so that the per-process losses sum to the loss of the whole batch.
    """
    selected = selected & torch.isfinite(target)
    diff = torch.where(selected, prediction - _nan_to_zero(target), torch.zeros_like(prediction))
    count = selected.sum() if denominator is None else torch.as_tensor(denominator, device=prediction.device)
    return (diff**2).sum() / count.clamp(min=1)


def _masked_mean(values: torch.Tensor, observed: torch.Tensor, denominator: torch.Tensor | int | None = None) -> torch.Tensor:
    """Sum of ``values`` over ``observed`` entries divided by their count or ``denominator`` (as ``masked_mse``)."""
    count = observed.sum() if denominator is None else torch.as_tensor(denominator, device=values.device)
    return torch.where(observed, values, torch.zeros_like(values)).sum() / count.clamp(min=1)


class StefaLandForPretraining(StefaLandPreTrainedModel):
    """Backbone + LSTM decoder + per-variable reconstruction heads; loss = masked MSE on z-scores (paper §2.4)."""

    _head_modules = ("decoder", "decoder_norm", "dynamic_head", "static_head")

    def __init__(self, config: StefaLandConfig):
        super().__init__(config)
        self.stefaland = StefaLandModel(config)
        hidden = config.d_model // 2 if config.decoder_bidirectional else config.d_model
        self.decoder = nn.LSTM(config.d_model, hidden, batch_first=True, bidirectional=config.decoder_bidirectional)
        self.decoder_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.decoder_dropout = StefaLandDropout(config.dropout)
        heads = (config.d_model, config.variable_mlp_dim, config.dropout)
        self.dynamic_head = StefaLandReconstructionHeads(len(config.dynamic_variables), *heads)
        self.static_head = StefaLandReconstructionHeads(len(config.static_variables), *heads)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        x_dynamic: torch.Tensor,
        x_static: torch.Tensor,
        dynamic_mask: torch.Tensor | None = None,
        static_mask: torch.Tensor | None = None,
        loss_denominators: tuple[torch.Tensor | int, torch.Tensor | int] | None = None,
    ) -> StefaLandForPretrainingOutput | tuple:
        r"""
        Inputs as for ``StefaLandModel``. The loss covers the entries hidden by ``dynamic_mask`` / ``static_mask``
        that are observed (not NaN): ``dynamic_loss_weight * L_dyn + static_loss_weight * L_static``. Without
        masks there is nothing to reconstruct and ``loss`` is None.
        loss_denominators: ``(dynamic, static)`` counts that the squared-error sums are divided by instead of this
        batch's counts of masked observed entries; data-parallel training passes the counts summed over processes.
        """
        x_dynamic, x_static, dynamic_mask, static_mask = _as_tensors(
            self.device, x_dynamic=x_dynamic, x_static=x_static, dynamic_mask=dynamic_mask, static_mask=static_mask
        )
        backbone = self.stefaland(x_dynamic, x_static, dynamic_mask, static_mask, return_dict=True)
        decoded, _ = self.decoder(backbone.last_hidden_state)
        decoded = self.decoder_dropout(self.decoder_norm(decoded))
        dynamic_pred = self.dynamic_head(decoded[:, :-1])  # [B, T, F] z-scores
        static_pred = self.static_head(decoded[:, -1])  # [B, C] z-scores

        loss = dynamic_loss = static_loss = None
        if dynamic_mask is not None or static_mask is not None:
            dynamic_target, static_target = self.stefaland.normalize(x_dynamic.float(), x_static.float())
            dynamic_sel = dynamic_mask.bool() if dynamic_mask is not None else torch.zeros_like(dynamic_pred, dtype=torch.bool)
            static_sel = static_mask.bool() if static_mask is not None else torch.zeros_like(static_pred, dtype=torch.bool)
            dynamic_denominator, static_denominator = (None, None) if loss_denominators is None else loss_denominators
            dynamic_loss = masked_mse(dynamic_pred, dynamic_target, dynamic_sel, dynamic_denominator)
            static_loss = masked_mse(static_pred, static_target, static_sel, static_denominator)
            loss = self.config.dynamic_loss_weight * dynamic_loss + self.config.static_loss_weight * static_loss

        return StefaLandForPretrainingOutput(
            loss=loss,
            dynamic_loss=dynamic_loss,
            static_loss=static_loss,
            dynamic_reconstruction=self.stefaland.dynamic_normalizer.denormalize(dynamic_pred),
            static_reconstruction=self.stefaland.static_normalizer.denormalize(static_pred),
            last_hidden_state=backbone.last_hidden_state,
        )


# ================================================================================================
# Downstream heads
# ================================================================================================
def _backbone_needs_grad(backbone: nn.Module) -> bool:
    """A frozen backbone runs without autograd; one with trainable parts (scratch, LoRA) runs with it."""
    return torch.is_grad_enabled() and any(p.requires_grad for p in backbone.parameters())


class StefaLandTargets(nn.Module):
    """What a task predicts: its target variables, their normalization and physical range, and the loss.

    Heads compute normalized targets; this maps them to physical units within each target's range and computes the
    masked MSE on normalized values over observed (non-NaN) labels. With ``output_transform="softplus"`` the loss
    sees the transformed output, with ``clamp`` the raw one (a clipped output has no gradient).

    A distributional head (``output_distribution`` "cmal" or "quantile") returns ``outputs_per_target`` values per
    target: the distribution in the normalized space, whose loss (negative log-likelihood, pinball) is computed there
    on the unclipped distribution, and whose quantiles and mean map to physical units within the output range.
    """

    def __init__(self, config: StefaLandConfig):
        super().__init__()
        self.variables = list(config.target_variables)
        self.normalizer = StefaLandNormalizer(config.target_mean, config.target_std, len(self.variables))
        self.output_range = StefaLandOutputRange(self.variables, config.output_transform)
        self.distribution = config.output_distribution
        self.quantile_levels = tuple(float(q) for q in (config.quantiles or DEFAULT_QUANTILES))
        per_target = {"none": 1, "cmal": 4 * config.mixture_components, "quantile": len(self.quantile_levels)}
        self.outputs_per_target = per_target[self.distribution]

    @property
    def num_outputs(self) -> int:
        """Width of the head's output layer: one value per target, or the distribution's parameters per target."""
        return len(self.variables) * self.outputs_per_target

    def check_labels(self, labels: torch.Tensor | None, leading_shape: tuple[int, ...]) -> None:
        """A clear error for labels not shaped [*leading_shape, num_targets]."""
        expected = (*leading_shape, len(self.variables))
        if labels is not None and tuple(labels.shape) != expected:
            raise ValueError(f"labels: expected shape {expected} for target_variables {self.variables}, got {tuple(labels.shape)}")

    def forward(
        self,
        normalized: torch.Tensor,
        labels: torch.Tensor | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
        quantiles: torch.Tensor | list[float] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, torch.Tensor]]:
        """normalized [..., K * outputs_per_target] from a head -> (prediction in physical units, loss or None, the
        distribution's fields of ``StefaLandRegressionOutput``), float32 whatever the head's dtype. num_items_in_batch:
        the loss denominator instead of the count of observed labels (``masked_mse``); quantiles: levels [Q] in (0, 1)
        whose physical quantiles a distributional head returns."""
        normalized = normalized.float()
        if self.distribution != "none":
            return self._distribution(normalized, labels, num_items_in_batch, quantiles)
        if quantiles is not None:
            raise ValueError(
                "quantiles: this head predicts one value per day (output_distribution='none'); train it with "
                "output_distribution='cmal' or 'quantile', or score its MC dropout ensemble (stefaland_hf.evaluation)"
            )
        physical = self.output_range(self.normalizer.denormalize(normalized))
        if self.output_range.in_loss:
            normalized = self.normalizer(physical)
        loss = None
        if labels is not None:
            target = self.normalizer(labels.float())
            refuse_implausible_values("labels", labels, target, self.variables)  # inf was dropped as if missing
            loss = masked_mse(normalized, target, torch.ones_like(normalized, dtype=torch.bool), num_items_in_batch)
        return physical, loss, {}

    def _distribution(self, raw, labels, num_items_in_batch, quantiles):
        """``forward`` of a distributional head: raw [..., K * P] -> (physical mean or median, loss, parameters and
        requested quantiles)."""
        raw = raw.unflatten(-1, (len(self.variables), self.outputs_per_target))
        target = None
        if labels is not None:
            target = self.normalizer(labels.float())
            refuse_implausible_values("labels", labels, target, self.variables)
        levels = None if quantiles is None else self.checked_levels(quantiles, raw.device)
        if self.distribution == "cmal":
            mixture = AsymmetricLaplaceMixture.from_head_output(raw)
            parameters = mixture.parameters()
            low, high = self._normalized_bounds()
            prediction = self.output_range(self.normalizer.denormalize(mixture.clipped_mean(low, high)))
            per_label = None if target is None else -mixture.log_prob(_nan_to_zero(target))
            wanted = None if levels is None else mixture.quantile(levels)
        else:
            parameters = raw.sort(-1).values  # rearranged: a quantile function never decreases
            prediction = self.to_physical(interpolate_quantiles(parameters, self.quantile_levels, [0.5])).squeeze(-1)
            per_label = None if target is None else pinball_loss(parameters, _nan_to_zero(target), self.quantile_levels)
            wanted = None if levels is None else interpolate_quantiles(parameters, self.quantile_levels, levels)
        loss = None if target is None else _masked_mean(per_label, torch.isfinite(target), num_items_in_batch)
        fields = {"distribution_parameters": parameters}
        if wanted is not None:
            fields["quantiles"] = self.to_physical(wanted)
        return prediction, loss, fields

    def checked_levels(self, quantiles, device: torch.device) -> torch.Tensor:
        """``quantiles`` as a 1-D float32 tensor of levels in (0, 1), refusing others; a quantile head knows only the
        levels between its lowest and highest trained one (between two of them its quantile function is linear)."""
        levels = torch.as_tensor(quantiles, dtype=torch.float32, device=device).reshape(-1)
        shown = [round(q, 6) for q in levels.tolist()]
        if levels.numel() == 0 or not bool(((levels > 0) & (levels < 1)).all()):
            raise ValueError(f"quantiles: expected levels strictly between 0 and 1, got {shown}")
        low, high = self.quantile_levels[0], self.quantile_levels[-1]
        if self.distribution == "quantile" and not bool(((levels >= low - 1e-7) & (levels <= high + 1e-7)).all()):
            raise ValueError(
                f"quantiles: {shown} reach beyond the levels this quantile head was trained on "
                f"({list(self.quantile_levels)}); ask for levels within {low}..{high}"
            )
        return levels

    def _normalized_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The output range [K] in the normalized space (-inf/+inf where unbounded or where nothing is clipped)."""
        if self.output_range.transform == "none":
            infinite = torch.full_like(self.normalizer.mean, math.inf)
            return -infinite, infinite
        return self.normalizer(self.output_range.low), self.normalizer(self.output_range.high)

    def to_physical(self, normalized: torch.Tensor) -> torch.Tensor:
        """Normalized values [..., K, Q] (Q values per target, e.g. quantiles) -> physical units within the output
        range: both maps are monotone, so quantiles stay quantiles."""
        return self.output_range(self.normalizer.denormalize(normalized.transpose(-1, -2))).transpose(-1, -2)


class StefaLandDualResidualAdapter(nn.Module):
    """Fuses the scaled embedding H with the raw forcings x and attributes c (paper §2.3, "resConn")."""

    def __init__(self, d_model: int, num_dynamic: int, num_static: int, dropout: float):
        super().__init__()
        self.dynamic_proj = nn.Linear(num_dynamic, d_model)
        self.static_proj = nn.Linear(num_static, d_model)
        self.fuse_in = nn.Linear(3 * d_model, 2 * d_model)
        self.fuse_out = nn.Linear(2 * d_model, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = StefaLandDropout(dropout)
        self.fuse_dropout = StefaLandDropout(2 * dropout)

    def forward(self, embedding: torch.Tensor, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        forcing = self.dropout(F.relu(self.dynamic_proj(x)))
        static = self.dropout(F.relu(self.static_proj(c))).unsqueeze(1).expand_as(forcing)
        update = self.fuse_out(self.fuse_dropout(F.relu(self.fuse_in(torch.cat([embedding, forcing, static], -1)))))
        fused = self.norm1(embedding + update)
        return self.norm2(fused + forcing + static)


class StefaLandTaskHead(nn.Module):
    """Base of the time-series heads, one subclass per ``head_mode`` (``TASK_HEADS``).

    A subclass builds its layers from the config and implements ``predict``; the order in which it builds them is
    the order of initialization and of the parameters, so it stays fixed (seeded runs repeat). This class casts the
    inputs to the head's dtype and turns the normalized prediction into physical units and the loss
    (``StefaLandTargets``). A head is built from a config, so a PEFT adapter (``ResConnConfig``) carries its own
    targets and their statistics.
    """

    unread_settings: tuple[str, ...] = ()  # head settings of the config this head does not read (runs say so)

    def __init__(self, config: StefaLandConfig):
        super().__init__()
        self.targets = StefaLandTargets(config)
        self.embedding_adds_static = bool(config.embedding_adds_static)  # read by the model's ``embed``

    def predict(self, embedding: torch.Tensor | None, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """embedding [B, T, D] (None without a backbone), x [B, T, F], c [B, C] -> normalized targets [B, T, K]."""
        raise NotImplementedError

    def output_size(self, config: StefaLandConfig) -> int:
        """Width of the output layer: the targets' outputs (an HBV head outputs its parameters instead)."""
        return self.targets.num_outputs

    def _cast_inputs(self, embedding, x, c):
        """The inputs in the head's dtype (an adapter head may differ from the backbone: float32 head on a bf16 base)."""
        dtype = self.output.weight.dtype
        x, c = x.to(dtype), c.to(dtype)
        if embedding is not None and not torch.is_autocast_enabled(embedding.device.type):
            embedding = embedding.to(dtype)  # (autocast casts per op; casting first would change its numerics)
        return embedding, x, c

    def forward(
        self,
        embedding: torch.Tensor | None,
        x: torch.Tensor,
        c: torch.Tensor,
        labels: torch.Tensor | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
        quantiles: torch.Tensor | list[float] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, torch.Tensor]]:
        """embedding [B, T, D] (None for direct), x [B, T, F] and c [B, C] normalized without NaN -> (prediction in
        physical units, loss or None, the distribution's output fields); num_items_in_batch: the loss denominator (see
        ``masked_mse``); quantiles: levels whose physical quantiles a distributional head returns."""
        self.targets.check_labels(labels, x.shape[:2])
        embedding, x, c = self._cast_inputs(embedding, x, c)
        return self.targets(self.predict(embedding, x, c), labels, num_items_in_batch, quantiles)


def _over_time(c: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Static attributes c [B, C] repeated along the days of x [B, T, F] (a view)."""
    return c.unsqueeze(1).expand(-1, x.shape[1], -1)


class StefaLandResConnHead(StefaLandTaskHead):
    """The paper's head (§2.3): LayerNorm(E)·s -> dual residual adapter with x and c -> residual LSTM -> linear."""

    def __init__(self, config: StefaLandConfig):
        super().__init__(config)
        num_dynamic, num_static = len(config.dynamic_variables), len(config.static_variables)
        raw, hidden = num_dynamic + num_static, config.head_hidden_size
        self.embedding_norm = nn.LayerNorm(config.d_model)
        self.embedding_scale = nn.Parameter(torch.tensor(float(config.embedding_scale_init)))
        self.adapter = StefaLandDualResidualAdapter(config.d_model, num_dynamic, num_static, config.adapter_dropout)
        self.lstm_in = nn.Linear(config.d_model + raw, config.d_model)
        self.lstm = nn.LSTM(config.d_model, hidden, batch_first=True)
        self.residual = nn.Linear(hidden + raw, hidden)
        self.dropout = StefaLandDropout(config.head_dropout)
        self.output = nn.Linear(hidden, self.output_size(config))

    def predict(self, embedding, x, c):
        return self.output(self.features(embedding, x, c))

    def features(self, embedding, x, c):
        """The residual LSTM's daily features [B, T, head_hidden_size] (what the output layer reads)."""
        static = _over_time(c, x)
        fused = self.adapter(self.embedding_norm(embedding) * self.embedding_scale, x, c)
        hidden, _ = self.lstm(self.lstm_in(torch.cat([fused, x, static], -1)))
        hidden = self.dropout(hidden)
        return self.residual(torch.cat([hidden, x, static], -1)) + hidden


class StefaLandScratchHead(StefaLandResConnHead):
    """The resConn head on a backbone that is randomly initialized and trained with it (the paper's "scratch")."""


class StefaLandNoAdapterHead(StefaLandTaskHead):
    """Ablation without the adapter: LayerNorm(E)·s -> LSTM -> linear; the raw inputs are not used."""

    def __init__(self, config: StefaLandConfig):
        super().__init__(config)
        self.embedding_norm = nn.LayerNorm(config.d_model)
        self.embedding_scale = nn.Parameter(torch.tensor(float(config.embedding_scale_init)))
        self.lstm = nn.LSTM(config.d_model, config.head_hidden_size, batch_first=True)
        self.dropout = StefaLandDropout(config.head_dropout)
        self.output = nn.Linear(config.head_hidden_size, self.targets.num_outputs)

    def predict(self, embedding, x, c):
        hidden, _ = self.lstm(self.embedding_norm(embedding) * self.embedding_scale)
        return self.output(self.dropout(hidden))


class StefaLandLinearProbeHead(StefaLandTaskHead):
    """Linear probe: linear(LayerNorm(E)) per day."""

    unread_settings = ("head_hidden_size", "head_dropout", "embedding_scale_init")

    def __init__(self, config: StefaLandConfig):
        super().__init__(config)
        self.embedding_norm = nn.LayerNorm(config.d_model)
        self.output = nn.Linear(config.d_model, self.targets.num_outputs)

    def predict(self, embedding, x, c):
        return self.output(self.embedding_norm(embedding))


class StefaLandDirectHead(StefaLandTaskHead):
    """No pretrained embedding: an LSTM on the raw [x, c] -> linear (the paper's "LSTM SL" baseline)."""

    unread_settings = ("embedding_scale_init", "embedding_adds_static")

    def __init__(self, config: StefaLandConfig):
        super().__init__(config)
        raw, hidden = len(config.dynamic_variables) + len(config.static_variables), config.head_hidden_size
        self.lstm_in = nn.Linear(raw, hidden)
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        self.dropout = StefaLandDropout(config.head_dropout)
        self.output = nn.Linear(hidden, self.output_size(config))

    def predict(self, embedding, x, c):
        return self.output(self.features(embedding, x, c))

    def features(self, embedding, x, c):
        """The LSTM's daily features [B, T, head_hidden_size] (what the output layer reads)."""
        hidden, _ = self.lstm(self.lstm_in(torch.cat([x, _over_time(c, x)], -1)))
        return self.dropout(hidden)


class StefaLandHBVPhysics:
    """What the HBV heads add to their network (``differentiable_hbv``, docs/hbv.md): its output layer gives the
    parameters of the last day (``output``) and of every day (``dynamic_output``, for ``hbv_dynamic_parameters``),
    and the streamflow is HBV's, driven by the physical forcings recovered from the head's z-scored inputs with the
    config's statistics. A missing or masked forcing reaches the head at its training mean, and so it drives the
    physics. The first ``hbv_warmup_days`` of a window spin up the stores (no gradient). The loss is the masked MSE
    on normalized streamflow, as for the other heads; the output range (``output_transform``) is not applied: HBV's
    streamflow is never negative.
    """

    def _build_physics(self, config: StefaLandConfig) -> None:
        """Called by the head's ``__init__`` after its network: layers in a fixed order (seeded runs repeat)."""
        self.nmul, self.dynamic_parameters, self.warmup_days = config.hbv_nmul, config.hbv_dynamic, config.hbv_warmup_days
        self.parameter_ranges = check_parameter_ranges(config.hbv_parameter_ranges)
        self.sources = forcing_sources(config.dynamic_variables, config.static_variables, owner=f"head_mode={config.head_mode!r}")
        dynamic_size = network_outputs(self.nmul, self.dynamic_parameters)[1]
        self.dynamic_output = nn.Linear(self.output.in_features, dynamic_size) if dynamic_size else None
        self.dynamic_normalizer, self.static_normalizer = _input_normalizers(config)  # to undo the inputs' z-scores

    def output_size(self, config: StefaLandConfig) -> int:
        """The last-day parameters: static component parameters x nmul and the routing parameters."""
        return network_outputs(config.hbv_nmul, config.hbv_dynamic)[0]

    def forcings(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(precipitation, daily mean temperature, PET) [B, T] in mm/day and degC from the z-scored inputs."""
        source = self.sources
        dynamic = self.dynamic_normalizer.denormalize(x)
        column = lambda index: dynamic[..., index]  # noqa: E731
        if source.temperature_mean is not None:
            temperature = column(source.temperature_mean)
        else:
            temperature = 0.5 * (column(source.temperature_max) + column(source.temperature_min))
        if source.pet is not None:
            pet = column(source.pet)
        else:
            latitude = self.static_normalizer.denormalize(c)[:, source.latitude : source.latitude + 1]
            radiation = extraterrestrial_radiation(latitude, column(source.daylength))
            pet = hargreaves_pet(column(source.temperature_max), column(source.temperature_min), radiation)
        return column(source.precipitation), temperature, pet

    def forward(
        self,
        embedding: torch.Tensor | None,
        x: torch.Tensor,
        c: torch.Tensor,
        labels: torch.Tensor | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
        quantiles: torch.Tensor | list[float] | None = None,
        return_states: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, dict]:
        """As ``StefaLandTaskHead.forward``; ``return_states`` adds ``{"hbv": StefaLandHBVOutput}`` to the fields."""
        self.targets.check_labels(labels, x.shape[:2])
        if quantiles is not None:
            raise ValueError("quantiles: an HBV head predicts one streamflow per day (a point prediction), not a distribution")
        if x.shape[1] <= self.warmup_days:
            raise ValueError(
                f"x_dynamic: a window of {x.shape[1]} days; this HBV head spins up its stores on the first "
                f"hbv_warmup_days={self.warmup_days} days of each window and needs longer windows"
            )
        forcings = self.forcings(x.float(), c.float())  # before the cast to the head's dtype (e.g. bf16)
        embedding, x, c = self._cast_inputs(embedding, x, c)
        features = self.features(embedding, x, c)
        component, routing = parameters_from_network(
            self.output(features[:, -1]).float(),
            None if self.dynamic_output is None else self.dynamic_output(features).float(),
            self.parameter_ranges, self.nmul, self.dynamic_parameters,
        )
        unit_hydrograph = gamma_unit_hydrograph(routing["ROUTE_SHAPE"], routing["ROUTE_SCALE"])
        simulation = hbv_simulate(*forcings, component, unit_hydrograph, warmup_days=self.warmup_days)
        streamflow = simulation.streamflow.unsqueeze(-1)
        loss = None
        if labels is not None:
            target = self.targets.normalizer(labels.float())
            refuse_implausible_values("labels", labels, target, self.targets.variables)  # inf was dropped as if missing
            normalized = self.targets.normalizer(streamflow)
            loss = masked_mse(normalized, target, torch.ones_like(normalized, dtype=torch.bool), num_items_in_batch)
        fields = {"hbv": _hbv_output(simulation, component, routing, forcings)} if return_states else {}
        return streamflow, loss, fields


class StefaLandHBVHead(StefaLandHBVPhysics, StefaLandDirectHead):
    """δHBV (Feng et al. 2022), the ``hbv`` baseline: an LSTM on the raw [x, c] predicts the parameters of the
    differentiable HBV, whose routed runoff is the streamflow. No StefaLand encoder."""

    unread_settings = ("embedding_scale_init", "embedding_adds_static", "output_transform")

    def __init__(self, config: StefaLandConfig):
        super().__init__(config)
        self._build_physics(config)


class StefaLandResConnHBVHead(StefaLandHBVPhysics, StefaLandResConnHead):
    """The paper's hybrid (Table 9), ``resconn_hbv``: the frozen encoder's embedding through the resConn adapter and
    residual LSTM predicts the parameters of the differentiable HBV, whose routed runoff is the streamflow."""

    unread_settings = ("output_transform",)

    def __init__(self, config: StefaLandConfig):
        super().__init__(config)
        self._build_physics(config)


def _hbv_output(simulation, component: dict, routing: dict, forcings) -> "StefaLandHBVOutput":
    """An HBV head's simulation as ``StefaLandHBVOutput``: component means of the stores, every parameter per day."""
    n_days = simulation.streamflow.shape[1]
    per_day = [value if value.dim() == 3 else value.unsqueeze(1).expand(-1, n_days, -1) for value in component.values()]
    return StefaLandHBVOutput(
        parameters=torch.stack(per_day, dim=2),
        routing_parameters=torch.stack([routing[name] for name in HBV_ROUTING_PARAMETERS], dim=-1),
        precipitation=forcings[0],
        temperature=forcings[1],
        pet=forcings[2],
        evapotranspiration=simulation.evapotranspiration.mean(-1),
        runoff=simulation.runoff,
        **{name: getattr(simulation, name).mean(-1) for name in HBV_STATE_NAMES},
    )


class StefaLandStaticMLPHead(nn.Sequential):
    """Static-regression head: features -> linear -> GELU -> dropout -> linear, normalized targets."""

    def __init__(self, config: StefaLandConfig, in_features: int):
        super().__init__(
            nn.Linear(in_features, config.head_hidden_size),
            nn.GELU(),
            StefaLandDropout(config.head_dropout),
            nn.Linear(config.head_hidden_size, len(config.target_variables)),
        )


class StefaLandStaticLinearProbeHead(nn.Linear):
    """Static-regression linear probe: one linear map from the features to normalized targets."""

    def __init__(self, config: StefaLandConfig, in_features: int):
        super().__init__(in_features, len(config.target_variables))


# config.head_mode -> head class, for each task model (configuration_stefaland.HEAD_MODES lists the same modes).
TASK_HEADS: dict[str, type[StefaLandTaskHead]] = {
    "resconn": StefaLandResConnHead,
    "no_adapter": StefaLandNoAdapterHead,
    "linear_probe": StefaLandLinearProbeHead,
    "scratch": StefaLandScratchHead,
    "direct": StefaLandDirectHead,
    "hbv": StefaLandHBVHead,
    "resconn_hbv": StefaLandResConnHBVHead,
}
# The static-regression heads: every mode but the HBV ones (HBV predicts daily streamflow, not a per-site value).
STATIC_HEADS: dict[str, type[nn.Module]] = {
    "resconn": StefaLandStaticMLPHead,
    "no_adapter": StefaLandStaticMLPHead,
    "linear_probe": StefaLandStaticLinearProbeHead,
    "scratch": StefaLandStaticMLPHead,
    "direct": StefaLandStaticMLPHead,
}


def head_class(heads: dict[str, type[nn.Module]], head_mode: str) -> type[nn.Module]:
    """``heads[head_mode]``; an unknown mode is an error naming the valid ones."""
    if head_mode not in heads:
        raise ValueError(f"head_mode must be one of {tuple(heads)}, got {head_mode!r}")
    return heads[head_mode]


class StefaLandTaskModel(StefaLandPreTrainedModel):
    """Shared plumbing of the task models: optional backbone, input normalization, frozen-backbone handling."""

    _head_modules = ("head",)
    _is_task_model = True

    def _build_inputs(self, config: StefaLandConfig) -> None:
        """The backbone, or in the modes without one (direct, hbv) the input normalizers; a model has one set of them."""
        if not config.target_variables:
            raise ValueError(f"target_variables: a {type(self).__name__} needs at least one target variable")
        if config.head_mode in BACKBONE_FREE_MODES:
            self.stefaland = None
            self.dynamic_normalizer, self.static_normalizer = _input_normalizers(config)
        else:
            self.stefaland = StefaLandModel(config)

    def _freeze_backbone(self) -> None:
        if self.config.backbone_frozen:
            self.stefaland.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.stefaland is not None and self.config.backbone_frozen:
            self.stefaland.eval()  # a frozen encoder runs without dropout (as in the authors' finetuning)
        return self

    def normalize(self, x_dynamic: torch.Tensor, x_static: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Physical units -> z-scores (NaN stays NaN), with the backbone's normalizers when there is a backbone."""
        if self.stefaland is not None:
            return self.stefaland.normalize(x_dynamic, x_static)
        return self.dynamic_normalizer(x_dynamic), self.static_normalizer(x_static)

    def normalized_inputs(
        self, x_dynamic: torch.Tensor, x_static: torch.Tensor, dynamic_mask: torch.Tensor | None = None, static_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """z-scored raw inputs with missing and masked values at the mean (0), as the heads consume them: a value
        hidden from the backbone must not reach the head's raw-input path either."""
        dynamic, static = self.normalize(x_dynamic.float(), x_static.float())
        refuse_implausible_values("x_dynamic", x_dynamic, dynamic, self.config.dynamic_variables)
        refuse_implausible_values("x_static", x_static, static, self.config.static_variables)
        if dynamic_mask is not None:
            dynamic = dynamic.masked_fill(dynamic_mask.bool(), 0.0)
        if static_mask is not None:
            static = static.masked_fill(static_mask.bool(), 0.0)
        return _nan_to_zero(dynamic), _nan_to_zero(static)


class StefaLandForTimeSeriesRegression(StefaLandTaskModel):
    """Daily targets (streamflow, soil moisture) from a (usually frozen) StefaLand backbone.

    Targets may be sparse: the loss covers observed (non-NaN) label entries only. ``head_mode`` selects the
    paper's variants (``TASK_HEADS``); in the frozen modes the backbone has ``requires_grad=False`` and stays in
    eval mode.
    """

    def __init__(self, config: StefaLandConfig):
        leaked = [name for name in config.target_variables or [] if name in config.dynamic_variables]
        if leaked:
            raise ValueError(f"target_variables {leaked} are also dynamic_variables: the model would read the day's target as an input")
        super().__init__(config)
        self._build_inputs(config)
        self.head = head_class(TASK_HEADS, config.head_mode)(config)
        self.post_init()
        self._freeze_backbone()

    def _checked_backbone_embedding(self, embedding, x_dynamic, dynamic_mask, static_mask) -> torch.Tensor:
        if not self.config.backbone_frozen:
            raise ValueError(
                f"backbone_embedding: head_mode={self.config.head_mode!r} has no frozen backbone to stand in for; "
                f"precomputed embeddings serve the frozen modes ({', '.join(FROZEN_BACKBONE_MODES)}) only"
            )
        if dynamic_mask is not None or static_mask is not None:
            raise ValueError("backbone_embedding: was computed without masks; pass no dynamic_mask/static_mask with it")
        expected = (*x_dynamic.shape[:2], self.config.d_model)
        if tuple(embedding.shape) != expected:
            raise ValueError(f"backbone_embedding: expected shape {expected} (batch, time, d_model), got {tuple(embedding.shape)}")
        return embedding.float()

    def embed(self, x_dynamic, x_static, dynamic_mask=None, static_mask=None) -> torch.Tensor | None:
        """The per-day StefaLand embedding E [B, T, D] that the running head consumes (None in direct mode): the day
        tokens' states, plus the static token's on every day where the head has ``embedding_adds_static``."""
        if self.stefaland is None:
            return None
        with torch.set_grad_enabled(_backbone_needs_grad(self.stefaland)):
            out = self.stefaland(x_dynamic, x_static, dynamic_mask, static_mask, return_dict=True)
        if self.running_head().embedding_adds_static:
            return out.dynamic_hidden_state + out.static_hidden_state.unsqueeze(1)
        return out.dynamic_hidden_state

    @can_return_tuple
    def forward(
        self,
        x_dynamic: torch.Tensor,
        x_static: torch.Tensor,
        labels: torch.Tensor | None = None,
        dynamic_mask: torch.Tensor | None = None,
        static_mask: torch.Tensor | None = None,
        backbone_embedding: torch.Tensor | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
        quantiles: torch.Tensor | list[float] | None = None,
        return_hbv_states: bool = False,
    ) -> StefaLandRegressionOutput | tuple:
        r"""
        x_dynamic [B, T, F], x_static [B, C] in physical units; labels [B, T, K] in the target units, NaN where
        unobserved. Returns ``prediction`` [B, T, K] in physical units and the masked MSE on normalized targets (a
        distributional head: see ``StefaLandRegressionOutput``).
        backbone_embedding [B, T, D]: ``embed(x_dynamic, x_static)`` computed earlier (an embedding cache), used
        instead of running the frozen backbone; only for the frozen-backbone head modes.
        num_items_in_batch: count of observed labels the squared-error sum is divided by instead of this batch's
        (``transformers.Trainer`` passes the count over the optimizer step and all processes).
        quantiles: levels [Q] in (0, 1) whose physical quantiles [B, T, K, Q] a distributional head returns in
        ``quantiles`` (``predict_distribution`` adds the mean and median).
        return_hbv_states: an HBV head (head_mode "hbv", "resconn_hbv") also returns its parameters, stores and
        forcings in ``hbv`` (``StefaLandHBVOutput``).
        numpy arrays are accepted for every input; ``prediction`` is float32 whatever the model's dtype.
        """
        if return_hbv_states and not isinstance(self.running_head(), StefaLandHBVPhysics):
            raise ValueError(
                f"return_hbv_states: this model's head ({type(self.running_head()).__name__}) has no HBV physics; "
                "it needs head_mode 'hbv' or 'resconn_hbv'"
            )
        x_dynamic, x_static, labels, dynamic_mask, static_mask, backbone_embedding = _as_tensors(
            self.device, x_dynamic=x_dynamic, x_static=x_static, labels=labels, dynamic_mask=dynamic_mask,
            static_mask=static_mask, backbone_embedding=backbone_embedding,
        )
        _check_inputs(self.config, x_dynamic, x_static, dynamic_mask, static_mask)
        if backbone_embedding is None:
            embedding = self.embed(x_dynamic, x_static, dynamic_mask, static_mask)
        else:
            embedding = self._checked_backbone_embedding(backbone_embedding, x_dynamic, dynamic_mask, static_mask)
        inputs = self.normalized_inputs(x_dynamic, x_static, dynamic_mask, static_mask)
        distribution = {} if quantiles is None else {"quantiles": quantiles}
        if return_hbv_states:
            distribution["return_states"] = True
        prediction, loss, *fields = self.head(embedding, *inputs, labels, num_items_in_batch, **distribution)
        return StefaLandRegressionOutput(loss=loss, prediction=prediction, **(fields[0] if fields else {}))

    def running_head(self) -> StefaLandTaskHead:
        """The head that runs: ``self.head``, or the active adapter's when a PEFT tuner wraps it (its
        ``active_task_head``)."""
        return getattr(self.head, "active_task_head", self.head)

    def head_distribution(self) -> tuple[str, tuple[float, ...] | None]:
        """(output_distribution, trained quantile levels of a "quantile" head or None) of the head that runs."""
        targets = self.running_head().targets
        return targets.distribution, targets.quantile_levels if targets.distribution == "quantile" else None

    def predict_distribution(
        self,
        x_dynamic: torch.Tensor,
        x_static: torch.Tensor,
        quantiles=DEFAULT_QUANTILES,
        dynamic_mask: torch.Tensor | None = None,
        static_mask: torch.Tensor | None = None,
        backbone_embedding: torch.Tensor | None = None,
    ) -> StefaLandDistributionOutput:
        """The predictive distribution of a distributional head in physical units: its mean, median and the
        ``quantiles`` (levels in (0, 1), default 5, 25, 50, 75 and 95 %) per day and target
        (``StefaLandDistributionOutput``). Inputs as for ``forward``; a point model (output_distribution "none") is
        refused: score its MC dropout ensemble instead (``stefaland_hf.evaluation.mc_dropout_forward``)."""
        kind, _ = self.head_distribution()
        if kind == "none":
            raise ValueError(
                "predict_distribution: this model's head predicts one value per day (output_distribution='none'); "
                "finetune with output_distribution='cmal' or 'quantile' for a distribution"
            )
        self.running_head().targets.checked_levels(quantiles, self.device)  # the levels asked for, before the median is added
        levels = [float(q) for q in torch.as_tensor(quantiles, dtype=torch.float64).reshape(-1).tolist()]
        out = self(
            x_dynamic, x_static, dynamic_mask=dynamic_mask, static_mask=static_mask, backbone_embedding=backbone_embedding,
            quantiles=levels + [0.5], return_dict=True,
        )
        return StefaLandDistributionOutput(
            mean=out.prediction if kind == "cmal" else None,
            median=out.quantiles[..., -1],
            quantiles=out.quantiles[..., :-1],
            quantile_levels=torch.tensor(levels, dtype=torch.float32),
        )


class StefaLandForStaticRegression(StefaLandTaskModel):
    """Per-site targets (e.g. soil texture) predicted from the backbone with the target attributes masked.

    Target variables that are also static inputs are always hidden from the model (paper §3.4), and so are
    ``config.hidden_static_variables`` (attributes derived from the targets). The head
    (``STATIC_HEADS``) is an MLP on [mean_t E_t, E_static] (frozen modes, scratch), a linear probe on them, or, in
    ``direct`` mode, an MLP on [mean_t x_t, c] of the raw inputs.

    It has no Auto class (transformers has none for this task; ``AutoModel`` gives the encoder of its checkpoint):
    load it with ``StefaLandForStaticRegression.from_pretrained(folder)``, or without this package with
    ``get_class_from_dynamic_module("modeling_stefaland.StefaLandForStaticRegression", folder)`` from
    ``transformers.dynamic_module_utils`` (the folder carries the code).
    """

    def __init__(self, config: StefaLandConfig):
        if config.output_distribution != "none":
            raise ValueError(
                f"output_distribution={config.output_distribution!r}: distributional heads predict daily targets "
                "(StefaLandForTimeSeriesRegression); a static-regression head predicts one value per site"
            )
        if config.embedding_adds_static:
            raise ValueError(
                "embedding_adds_static=True: a static-regression head already reads the static token's state beside the "
                "days' mean embedding ([mean_t E_t, E_static]); the setting is for the daily heads"
            )
        super().__init__(config)
        self._build_inputs(config)
        self.targets = StefaLandTargets(config)
        features = 2 * config.d_model if self.stefaland is not None else len(config.dynamic_variables) + len(config.static_variables)
        self.head = head_class(STATIC_HEADS, config.head_mode)(config, features)
        hidden = [n for n in config.target_variables if n in config.static_variables] + list(config.hidden_static_variables)
        self._hidden_columns = sorted({config.static_variables.index(n) for n in hidden})
        self.post_init()
        self._freeze_backbone()

    @can_return_tuple
    def forward(
        self,
        x_dynamic: torch.Tensor,
        x_static: torch.Tensor,
        labels: torch.Tensor | None = None,
        dynamic_mask: torch.Tensor | None = None,
        static_mask: torch.Tensor | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> StefaLandRegressionOutput | tuple:
        r"""labels [B, K] in target units (NaN = unknown); returns ``prediction`` [B, K] in target units.

        num_items_in_batch: count of observed labels the squared-error sum is divided by instead of this batch's
        (``transformers.Trainer`` passes the count over the optimizer step and all processes).
        numpy arrays are accepted for every input; ``prediction`` is float32 whatever the model's dtype.
        """
        x_dynamic, x_static, labels, dynamic_mask, static_mask = _as_tensors(
            self.device, x_dynamic=x_dynamic, x_static=x_static, labels=labels, dynamic_mask=dynamic_mask,
            static_mask=static_mask,
        )
        _check_inputs(self.config, x_dynamic, x_static, dynamic_mask, static_mask)
        self.targets.check_labels(labels, x_dynamic.shape[:1])
        hide = torch.zeros_like(x_static, dtype=torch.bool)
        hide[:, self._hidden_columns] = True
        x_static = torch.where(hide, torch.full_like(x_static, float("nan")), x_static)
        if self.stefaland is None:
            x, c = self.normalized_inputs(x_dynamic, x_static, dynamic_mask, static_mask)
            features = torch.cat([x.mean(1), c], -1)
        else:
            static_mask = hide if static_mask is None else (static_mask.bool() | hide)
            with torch.set_grad_enabled(_backbone_needs_grad(self.stefaland)):
                out = self.stefaland(x_dynamic, x_static, dynamic_mask, static_mask, return_dict=True)
            features = torch.cat([out.dynamic_hidden_state.mean(1), out.static_hidden_state], -1)
        prediction, loss, _ = self.targets(self.head(features.to(next(self.head.parameters()).dtype)), labels, num_items_in_batch)
        return StefaLandRegressionOutput(loss=loss, prediction=prediction)


_ARCHITECTURES = {
    cls.__name__: cls
    for cls in (StefaLandModel, StefaLandForPretraining, StefaLandForTimeSeriesRegression, StefaLandForStaticRegression)
}

# transformers Auto class -> the StefaLand class it loads. ``import stefaland_hf`` registers these, and every saved
# config.json's ``auto_map`` lists them (with the config) for ``trust_remote_code=True``, so both paths give the same
# class. StefaLandForStaticRegression has none: transformers has no Auto class for per-site regression.
AUTO_CLASSES: dict[str, type[StefaLandPreTrainedModel]] = {
    "AutoModel": StefaLandModel,
    "AutoModelForPreTraining": StefaLandForPretraining,
    "AutoModelForTimeSeriesPrediction": StefaLandForTimeSeriesRegression,
}
AUTO_MAP = {
    "AutoConfig": f"configuration_stefaland.{StefaLandConfig.__name__}",
    **{auto: f"modeling_stefaland.{cls.__name__}" for auto, cls in AUTO_CLASSES.items()},
}

__all__ = [
    "StefaLandPreTrainedModel",
    "StefaLandTaskModel",
    "StefaLandModel",
    "StefaLandForPretraining",
    "StefaLandForTimeSeriesRegression",
    "StefaLandForStaticRegression",
    "StefaLandModelOutput",
    "StefaLandForPretrainingOutput",
    "StefaLandRegressionOutput",
    "StefaLandDistributionOutput",
    "StefaLandTargets",
    "StefaLandTaskHead",
    "StefaLandResConnHead",
    "StefaLandScratchHead",
    "StefaLandNoAdapterHead",
    "StefaLandLinearProbeHead",
    "StefaLandDirectHead",
    "StefaLandHBVPhysics",
    "StefaLandHBVHead",
    "StefaLandResConnHBVHead",
    "StefaLandHBVOutput",
    "StefaLandStaticMLPHead",
    "StefaLandStaticLinearProbeHead",
    "TASK_HEADS",
    "STATIC_HEADS",
    "AUTO_CLASSES",
    "masked_mse",
]
