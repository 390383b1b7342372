"""Convert the authors' original StefaLand checkpoints (``MFFormer_dec_LSTM``) into a ``StefaLandForPretraining`` folder.

The authors pretrained StefaLand with the ``MFFormer_dec_LSTM`` model of their code release (paper App. A;
spec §1.2-§1.6). Its state dict is a flat mapping of tensors whose names encode the variable lists::

    encoder_norm.{weight,bias}                          decoder_norm.{weight,bias}
    time_series_embedding.masked_values                 [F, D]
    time_series_embedding.embeddings1.<var>.{weight [64, 1], bias [64]}
    time_series_embedding.embeddings2.<var>.{weight [D, 64], bias [D]}
    static_embedding.masked_values                      [1000, C]   (a learned scalar per (batch row, attribute))
    static_embedding.numerical_embeddings{1,2}.<var>.*  (as above)
    positional_encoding.position_embedding              [1000, D]
    encoder.transformer_encoder.layers.<i>.{self_attn.in_proj_weight, self_attn.in_proj_bias, self_attn.out_proj.*,
                                            linear1.*, linear2.*, norm1.*, norm2.*}
    enc_2_dec_embedding.{weight,bias}
    decoder.{weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0}
    time_series_projection.embeddings1.<var>.{weight [64, D], bias [64]}
    time_series_projection.embeddings2.<var>.{weight [1, 64], bias [1]}
    static_projection.numerical_embeddings{1,2}.<var>.* (as above)

(5 dynamic + 48 static variables give 485 tensors.) The variable lists and their column order are recovered from
the order of the ``*.embeddings1.<var>.weight`` keys: the original ``ModuleDict`` s are built from the same
variable lists that define the input column order. Author names are mapped to the canonical names of
:mod:`stefaland_hf.variables` with :data:`DEFAULT_VARIABLE_MAP`, overridable per name.

Every tensor is consumed or the conversion fails naming the key: a missing or unexpected key, or a shape that
disagrees with the recovered variable counts and widths, is an error. Weights are matched by name, never by shape.

Approximations (also written to the model card, ``hub_cards/converted_card.md``):

* ``static_embedding.masked_values`` is a [1000, C] table indexed by the *batch-row position*; the converted model
  keeps one learned scalar per attribute (``static_mask_mode="scalar"``), taken from row ``static_mask_row``
  (default 0). Batch row 0 reproduces the original exactly; for another row b, a masked or missing static
  attribute used ``masked_values[b]`` in the original and uses ``masked_values[0]`` here.
* ``num_attention_heads``, ``dropout`` and the LayerNorm epsilon are not stored in a state dict; they default to the
  released configuration (4 heads, 0.1, 1e-5) and can be overridden.
* The checkpoint carries no scaler. Without per-variable statistics the config records identity normalization and
  the caller must pass z-scored inputs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import sys
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from .configuration_stefaland import StefaLandConfig
from .variables import DYNAMIC, STATIC, TARGET, VARIABLES

# ================================================================================================
# Author names -> canonical names
# ================================================================================================
# Names used by the authors' configurations (spec §2.1: the 8,634-basin, 6,738-basin, "SubsetA" configurations and
# the 48 statics of StefaLandGlobal20.pt). Some targets are not (yet) in the canonical vocabulary; they are listed
# here with the proposed canonical name so that the conversion starts working once the vocabulary gains them, and
# until then fails with a message naming them (see `missing_vocabulary`).
DEFAULT_DYNAMIC_MAP: dict[str, str] = {
    "P": "precipitation",
    "SWd": "shortwave_radiation",
    "RelHum": "relative_humidity",
    "Tmax": "temperature_max",
    "Tmin": "temperature_min",
    "Temp": "temperature_mean",
    "Tmean": "temperature_mean",
    "PET": "potential_evapotranspiration",
    "LWd": "longwave_radiation",
    "SpecHum": "specific_humidity",
    "Wind": "wind_speed",
    "streamflow": "streamflow",
    "Runoff": "streamflow",
}
DEFAULT_STATIC_MAP: dict[str, str] = {
    # location / topography
    "lat": "latitude",
    "lon": "longitude",
    "meanelevation": "elevation",
    "GMTED_elevation": "elevation",
    "meanslope": "slope",
    "GMTED_slope": "slope",
    "aspectcosine": "aspect_cosine",
    "GMTED_aspectcosine": "aspect_cosine",
    "catchsize": "area",
    # soils and geology
    "HWSD_clay": "clay_fraction",
    "HWSD_sand": "sand_fraction",
    "HWSD_silt": "silt_fraction",
    "HWSD_gravel": "gravel_fraction",  # proposed
    "SoilGrid2_clay": "clay_fraction_soilgrids",  # proposed
    "SoilGrid2_sand": "sand_fraction_soilgrids",  # proposed
    "SoilGrid2_silt": "silt_fraction_soilgrids",  # proposed
    "SoilGrids1km_clay": "clay_fraction_soilgrids",  # proposed
    "SoilGrids1km_sand": "sand_fraction_soilgrids",  # proposed
    "SoilGrids1km_silt": "silt_fraction_soilgrids",  # proposed
    "SoilGrid2_bulk_density": "bulk_density",
    "SoilGrid2_organic_carbon_stock": "soil_organic_carbon_stock",  # proposed
    "soil_depth": "soil_depth",
    "soil_erosion": "soil_erosion",  # proposed
    "soil_moisture": "mean_soil_moisture",  # proposed (a static long-term mean, not the daily target)
    "porosity": "geology_porosity",
    "Porosity": "geology_porosity",
    "Permeability_no_permafrost": "geology_permeability",
    "permeability": "geology_permeability",
    "carbonate_sedimentary_rocks_frac": "carbonate_rocks_fraction",
    "glaciers": "glacier_fraction",  # proposed
    "permafrost": "permafrost_fraction",  # proposed
    # vegetation and land cover (unsuffixed canonical name = most recent year, as forest_fraction / _1992)
    "NDVI": "ndvi",
    "MODIS_NDVI": "ndvi",
    "forest_fraction_2018": "forest_fraction",
    "forest_fraction_2000": "forest_fraction_2000",  # proposed
    "forest_fraction_1992": "forest_fraction_1992",
    "grassland_fraction_2018": "grassland_fraction",
    "grassland_fraction_2000": "grassland_fraction_2000",  # proposed
    "agriculture_fraction_2018": "agriculture_fraction",  # proposed
    "agriculture_fraction_2000": "agriculture_fraction_2000",  # proposed
    "urban_fraction_2018": "urban_fraction",  # proposed
    "urban_fraction_2000": "urban_fraction_2000",  # proposed
    "intact_forest": "intact_forest_fraction",
    # climate indices
    "meanP": "mean_precipitation",
    "MSWEP_P": "mean_precipitation_mswep",  # proposed (coexists with meanP in StefaLandGlobal20.pt)
    "meanTa": "mean_temperature",
    "MSWX_Tmean": "mean_temperature_mswx",  # proposed (coexists with meanTa)
    "ETPOT_Hargr": "mean_pet",
    "MSWX_PET": "mean_pet_mswx",  # proposed (coexists with ETPOT_Hargr)
    "MSWX_Tmax": "mean_temperature_max",  # proposed
    "MSWX_Tmin": "mean_temperature_min",  # proposed
    "MSWX_SWd": "mean_shortwave_radiation",  # proposed
    "MSWX_LWd": "mean_longwave_radiation",  # proposed
    "MSWX_RH": "mean_relative_humidity",  # proposed
    "MSWX_SpecHum": "mean_specific_humidity",  # proposed
    "MSWX_Wind": "mean_wind_speed",  # proposed
    "aridity": "aridity",
    "seasonality_P": "precipitation_seasonality",
    "seasonality_PET": "pet_seasonality",
    "snow_fraction": "snow_fraction",
    "snowfall_fraction": "snowfall_fraction",
    # socio-economic
    "population_density_2000_buffer": "population_density",
    "gdp_2000_buffer": "gdp_density",
}
DEFAULT_VARIABLE_MAP: dict[str, dict[str, str]] = {"dynamic": DEFAULT_DYNAMIC_MAP, "static": DEFAULT_STATIC_MAP}

RELEASED_NUM_HEADS = 4
RELEASED_DROPOUT = 0.1
TORCH_LAYER_NORM_EPS = 1e-5

_STATE_DICT_CONTAINER_KEYS = ("model_state_dict", "state_dict", "model", "net", "module", "weights")


class OriginalCheckpointError(ValueError):
    """The file is not a convertible original StefaLand (MFFormer_dec_LSTM) checkpoint."""


# ================================================================================================
# Loading
# ================================================================================================
def load_original_state_dict(path: str | os.PathLike) -> tuple["OrderedDict[str, torch.Tensor]", dict[str, str]]:
    """Load a checkpoint with ``torch.load(weights_only=True)``.

    Accepts a plain state dict or a dict holding one (under e.g. ``model_state_dict`` / ``state_dict``); strips a
    ``module.`` prefix (``nn.DataParallel``). Returns the state dict (key order preserved) and a description of the
    top-level entries that were not part of it (optimizer state, epoch counters, ...), which the card reports.
    """
    try:
        obj = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # pickle.UnpicklingError and friends
        raise OriginalCheckpointError(
            f"{path}: torch.load(weights_only=True) refused the file ({type(error).__name__}: {error}). "
            "The converter never unpickles arbitrary objects; re-save the weights alone with "
            "torch.save(model.state_dict(), ...) in the authors' environment."
        ) from error
    return extract_state_dict(obj, source=str(path))


def extract_state_dict(obj: Any, source: str = "checkpoint") -> tuple["OrderedDict[str, torch.Tensor]", dict[str, str]]:
    """Find the state dict inside a loaded checkpoint object (see :func:`load_original_state_dict`)."""
    if not isinstance(obj, Mapping):
        raise OriginalCheckpointError(f"{source}: expected a state dict or a dict holding one, got {type(obj).__name__}")
    ignored: dict[str, str] = {}
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = obj
    else:
        candidates = [k for k in _STATE_DICT_CONTAINER_KEYS if isinstance(obj.get(k), Mapping)]
        candidates += [
            k
            for k, v in obj.items()
            if k not in candidates
            and isinstance(v, Mapping)
            and any("time_series_embedding." in str(n) for n in v)
        ]
        if not candidates:
            raise OriginalCheckpointError(
                f"{source}: no state dict found; top-level entries are {sorted(map(str, obj))[:20]}. Expected tensors "
                f"named like 'time_series_embedding.embeddings1.<var>.weight', or a dict under one of {list(_STATE_DICT_CONTAINER_KEYS)}"
            )
        chosen = candidates[0]
        state = obj[chosen]
        for key, value in obj.items():
            if key != chosen:
                ignored[str(key)] = _describe(value)
        bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
        if bad:
            raise OriginalCheckpointError(f"{source}: entry {chosen!r} holds non-tensor values under keys {bad[:5]}")
    keys = list(state)
    if keys and all(str(k).startswith("module.") for k in keys):  # nn.DataParallel
        state = OrderedDict((str(k)[len("module."):], v) for k, v in state.items())
    return OrderedDict((str(k), v) for k, v in state.items()), ignored


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor {tuple(value.shape)}"
    if isinstance(value, Mapping):
        return f"dict with {len(value)} entries"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__} of {len(value)}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ================================================================================================
# Layout
# ================================================================================================
@dataclass
class OriginalLayout:
    """What the key names and shapes of an original checkpoint say about the model."""

    dynamic_names: list[str]
    static_names: list[str]
    d_model: int
    mlp_dim: int
    ffn_dim: int
    num_layers: int
    max_position_embeddings: int
    static_mask_rows: int


_VAR_PATTERNS = {
    # (prefix, kind) -> the variable name is what sits between prefix and .weight/.bias
    ("time_series_embedding.embeddings1.", "dynamic"),
    ("time_series_embedding.embeddings2.", "dynamic"),
    ("time_series_projection.embeddings1.", "dynamic"),
    ("time_series_projection.embeddings2.", "dynamic"),
    ("static_embedding.numerical_embeddings1.", "static"),
    ("static_embedding.numerical_embeddings2.", "static"),
    ("static_projection.numerical_embeddings1.", "static"),
    ("static_projection.numerical_embeddings2.", "static"),
}
_UNSUPPORTED_PREFIXES = {
    "static_embedding.categorical_embeddings1.": "categorical static attributes are not supported by the converter",
    "static_embedding.categorical_embeddings2_linear.": "categorical static attributes are not supported by the converter",
    "static_projection.categorical_embeddings2.": "categorical static attributes are not supported by the converter",
}
_LAYER_RE = re.compile(r"^encoder\.transformer_encoder\.layers\.(\d+)\.(.+)$")
_LAYER_PARAMS = (
    "self_attn.in_proj_weight",
    "self_attn.in_proj_bias",
    "self_attn.out_proj.weight",
    "self_attn.out_proj.bias",
    "linear1.weight",
    "linear1.bias",
    "linear2.weight",
    "linear2.bias",
    "norm1.weight",
    "norm1.bias",
    "norm2.weight",
    "norm2.bias",
)
_FIXED_KEYS = (
    "encoder_norm.weight",
    "encoder_norm.bias",
    "decoder_norm.weight",
    "decoder_norm.bias",
    "time_series_embedding.masked_values",
    "static_embedding.masked_values",
    "positional_encoding.position_embedding",
    "enc_2_dec_embedding.weight",
    "enc_2_dec_embedding.bias",
    "decoder.weight_ih_l0",
    "decoder.weight_hh_l0",
    "decoder.bias_ih_l0",
    "decoder.bias_hh_l0",
)


def _variables_in_order(keys: list[str], prefix: str) -> list[str]:
    names: list[str] = []
    for key in keys:
        if key.startswith(prefix) and key.endswith(".weight"):
            name = key[len(prefix) : -len(".weight")]
            if name and name not in names:
                names.append(name)
    return names


def expected_keys(layout: OriginalLayout) -> list[str]:
    """Every key an original checkpoint with this layout holds (485 for 5 + 48 variables and 4 layers)."""
    keys = list(_FIXED_KEYS)
    for prefix, kind in sorted(_VAR_PATTERNS):
        for name in layout.dynamic_names if kind == "dynamic" else layout.static_names:
            keys += [f"{prefix}{name}.weight", f"{prefix}{name}.bias"]
    for i in range(layout.num_layers):
        keys += [f"encoder.transformer_encoder.layers.{i}.{p}" for p in _LAYER_PARAMS]
    return keys


def parse_original_layout(state_dict: Mapping[str, torch.Tensor]) -> OriginalLayout:
    """Recover variable lists (in column order), widths and depth from key names; check every key and shape.

    Raises :class:`OriginalCheckpointError` naming the first offending key (unexpected, missing, or mis-shaped).
    """
    keys = list(state_dict)
    for key in keys:
        for prefix, why in _UNSUPPORTED_PREFIXES.items():
            if key.startswith(prefix):
                raise OriginalCheckpointError(f"unexpected key {key!r}: {why}")
    if "positional_encoding.position_embedding" not in state_dict:
        raise OriginalCheckpointError(
            "missing key 'positional_encoding.position_embedding': this does not look like an original StefaLand "
            f"(MFFormer_dec_LSTM) checkpoint (first keys: {keys[:5]})"
        )
    position = state_dict["positional_encoding.position_embedding"]
    if position.dim() != 2:
        raise OriginalCheckpointError(
            f"'positional_encoding.position_embedding' should be [max_len, d_model], got {tuple(position.shape)}"
        )
    max_len, d_model = position.shape
    dynamic = _variables_in_order(keys, "time_series_embedding.embeddings1.")
    static = _variables_in_order(keys, "static_embedding.numerical_embeddings1.")
    if not dynamic:
        raise OriginalCheckpointError("no 'time_series_embedding.embeddings1.<var>.weight' keys: no dynamic variables found")
    if not static:
        raise OriginalCheckpointError("no 'static_embedding.numerical_embeddings1.<var>.weight' keys: no static variables found")
    first = state_dict[f"time_series_embedding.embeddings1.{dynamic[0]}.weight"]
    if first.dim() != 2 or first.shape[1] != 1:
        raise OriginalCheckpointError(
            f"'time_series_embedding.embeddings1.{dynamic[0]}.weight' should be [hidden, 1], got {tuple(first.shape)}"
        )
    mlp_dim = first.shape[0]
    layer_ids = sorted({int(m.group(1)) for k in keys if (m := _LAYER_RE.match(k))})
    if layer_ids != list(range(len(layer_ids))):
        raise OriginalCheckpointError(f"encoder layer indices are not contiguous from 0: {layer_ids}")
    ffn_dim = 0
    if layer_ids:
        linear1 = state_dict.get("encoder.transformer_encoder.layers.0.linear1.weight")
        if linear1 is None:
            raise OriginalCheckpointError("missing key 'encoder.transformer_encoder.layers.0.linear1.weight'")
        ffn_dim = linear1.shape[0]
    static_masks = state_dict.get("static_embedding.masked_values")
    layout = OriginalLayout(
        dynamic_names=dynamic,
        static_names=static,
        d_model=int(d_model),
        mlp_dim=int(mlp_dim),
        ffn_dim=int(ffn_dim),
        num_layers=len(layer_ids),
        max_position_embeddings=int(max_len),
        static_mask_rows=int(static_masks.shape[0]) if static_masks is not None and static_masks.dim() == 2 else 0,
    )
    wanted = expected_keys(layout)
    wanted_set = set(wanted)
    unexpected = [k for k in keys if k not in wanted_set]
    if unexpected:
        hint = ""
        if any("_reverse" in k for k in unexpected):
            hint = " (a bidirectional decoder LSTM is not the MFFormer_dec_LSTM layout)"
        elif any(k.startswith(("time_series_projection.", "static_projection.")) for k in unexpected):
            hint = " (the reconstruction heads name variables the embeddings do not have)"
        raise OriginalCheckpointError(
            f"unexpected key {unexpected[0]!r}{hint}; {len(unexpected)} unexpected key(s) in all: {unexpected[:10]}"
        )
    present = set(keys)
    missing = [k for k in wanted if k not in present]
    if missing:
        raise OriginalCheckpointError(f"missing key {missing[0]!r}; {len(missing)} missing key(s) in all: {missing[:10]}")
    for key, shape in _expected_shapes(layout).items():
        actual = tuple(state_dict[key].shape)
        if actual != shape:
            raise OriginalCheckpointError(
                f"key {key!r} has shape {actual}, expected {shape} for {len(dynamic)} dynamic and {len(static)} static "
                f"variables, d_model={layout.d_model}, hidden={layout.mlp_dim}, ffn={layout.ffn_dim}"
                + (
                    " (heteroscedastic heads with 2 outputs, add_input_noise=True, are not supported)"
                    if key.startswith(("time_series_projection.", "static_projection.")) and actual[:1] == (2,)
                    else ""
                )
            )
    for key in keys:
        if not state_dict[key].is_floating_point():
            raise OriginalCheckpointError(f"key {key!r} holds {state_dict[key].dtype}, expected a floating-point tensor")
    return layout


def _expected_shapes(layout: OriginalLayout) -> dict[str, tuple[int, ...]]:
    d, h, f = layout.d_model, layout.mlp_dim, layout.ffn_dim
    shapes: dict[str, tuple[int, ...]] = {
        "encoder_norm.weight": (d,),
        "encoder_norm.bias": (d,),
        "decoder_norm.weight": (d,),
        "decoder_norm.bias": (d,),
        "time_series_embedding.masked_values": (len(layout.dynamic_names), d),
        "static_embedding.masked_values": (layout.static_mask_rows, len(layout.static_names)),
        "positional_encoding.position_embedding": (layout.max_position_embeddings, d),
        "enc_2_dec_embedding.weight": (d, d),
        "enc_2_dec_embedding.bias": (d,),
        "decoder.weight_ih_l0": (4 * d, d),
        "decoder.weight_hh_l0": (4 * d, d),
        "decoder.bias_ih_l0": (4 * d,),
        "decoder.bias_hh_l0": (4 * d,),
    }
    enc = {"embeddings1": ((h, 1), (h,)), "embeddings2": ((d, h), (d,))}
    proj = {"embeddings1": ((h, d), (h,)), "embeddings2": ((1, h), (1,))}
    for names, emb_prefix, proj_prefix, emb_mod in (
        (layout.dynamic_names, "time_series_embedding.", "time_series_projection.", "embeddings"),
        (layout.static_names, "static_embedding.", "static_projection.", "numerical_embeddings"),
    ):
        for name in names:
            for which in ("1", "2"):
                w, b = enc[f"embeddings{which}"]
                shapes[f"{emb_prefix}{emb_mod}{which}.{name}.weight"] = w
                shapes[f"{emb_prefix}{emb_mod}{which}.{name}.bias"] = b
                w, b = proj[f"embeddings{which}"]
                shapes[f"{proj_prefix}{emb_mod}{which}.{name}.weight"] = w
                shapes[f"{proj_prefix}{emb_mod}{which}.{name}.bias"] = b
    layer = {
        "self_attn.in_proj_weight": (3 * d, d),
        "self_attn.in_proj_bias": (3 * d,),
        "self_attn.out_proj.weight": (d, d),
        "self_attn.out_proj.bias": (d,),
        "linear1.weight": (f, d),
        "linear1.bias": (f,),
        "linear2.weight": (d, f),
        "linear2.bias": (d,),
        "norm1.weight": (d,),
        "norm1.bias": (d,),
        "norm2.weight": (d,),
        "norm2.bias": (d,),
    }
    for i in range(layout.num_layers):
        for p, shape in layer.items():
            shapes[f"encoder.transformer_encoder.layers.{i}.{p}"] = shape
    return shapes


# ================================================================================================
# Names and statistics
# ================================================================================================
def load_variable_map(path: str | os.PathLike | None) -> dict[str, dict[str, str]]:
    """Read a ``--variable-map`` JSON: ``{"dynamic": {author: canonical}, "static": {...}}`` or a flat mapping."""
    if path is None:
        return {}
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    return _split_map(data, source=str(path))


def _split_map(data: Mapping[str, Any] | None, source: str = "variable_map") -> dict[str, dict[str, str]]:
    if not data:
        return {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}")
    if set(data) <= {"dynamic", "static"} and all(isinstance(v, Mapping) for v in data.values()):
        out = {kind: dict(data.get(kind, {})) for kind in ("dynamic", "static")}
    else:
        out = {"dynamic": dict(data), "static": dict(data)}
    for kind, mapping in out.items():
        for author, canonical in mapping.items():
            if not isinstance(canonical, str):
                raise ValueError(f"{source}: {kind} name {author!r} must map to a string, got {canonical!r}")
    return out


def map_variable_names(
    dynamic_names: list[str], static_names: list[str], variable_map: Mapping[str, Any] | None = None
) -> tuple[list[str], list[str]]:
    """Author names -> canonical names (user map first, then :data:`DEFAULT_VARIABLE_MAP`, then identity).

    Fails with one message listing every name that has no canonical counterpart, every collision, and whether the
    vocabulary lacks a proposed name (see :func:`missing_vocabulary`).
    """
    user = _split_map(variable_map)
    problems: list[str] = []
    result: dict[str, list[str]] = {}
    for kind, names, kinds in (("dynamic", dynamic_names, (DYNAMIC, TARGET)), ("static", static_names, (STATIC,))):
        mapped: list[str] = []
        for name in names:
            canonical = user.get(kind, {}).get(name) or DEFAULT_VARIABLE_MAP[kind].get(name) or name
            variable = VARIABLES.get(canonical)
            if variable is None:
                source = "your --variable-map" if name in user.get(kind, {}) else (
                    "the default map" if name in DEFAULT_VARIABLE_MAP[kind] else "no mapping")
                problems.append(
                    f"{kind} {name!r} -> {canonical!r} ({source}) is not a canonical variable of stefaland_hf.variables"
                )
            elif variable.kind not in kinds:
                problems.append(f"{kind} {name!r} -> {canonical!r} is a {variable.kind} variable, expected {'/'.join(kinds)}")
            mapped.append(canonical)
        seen: dict[str, str] = {}
        for name, canonical in zip(names, mapped):
            if canonical in seen:
                problems.append(f"{kind} {seen[canonical]!r} and {name!r} both map to {canonical!r}")
            seen.setdefault(canonical, name)
        result[kind] = mapped
    if problems:
        proposed = any("(the default map)" in p for p in problems)
        raise OriginalCheckpointError(
            "cannot map the checkpoint's variable names to canonical names:\n  - " + "\n  - ".join(problems)
            + "\nPass --variable-map MAP.json ({\"dynamic\": {author: canonical}, \"static\": {...}}) to map them to "
            "names listed in stefaland_hf.variables.VARIABLES."
            + (
                " Targets marked '(the default map)' are proposed canonical names that the vocabulary does not "
                "define yet (stefaland_hf.convert_original.missing_vocabulary() lists them)."
                if proposed
                else ""
            )
        )
    return result["dynamic"], result["static"]


def missing_vocabulary(names: list[str] | None = None, kind: str = "static") -> dict[str, str]:
    """Author names whose default canonical name is not (yet) in :data:`stefaland_hf.variables.VARIABLES`."""
    table = DEFAULT_VARIABLE_MAP[kind]
    names = list(table) if names is None else names
    return {n: table.get(n, n) for n in names if table.get(n, n) not in VARIABLES}


def load_stats(path: str | os.PathLike | Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Read per-variable statistics: ``{name: {"mean": m, "std": s}}``, ``{name: [m, s]}``, optionally nested under
    ``"dynamic"`` / ``"static"``. Names may be author names or canonical names."""
    if isinstance(path, Mapping):
        data, source = path, "stats"
    else:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        source = str(path)
    if not isinstance(data, Mapping):
        raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}")
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("dynamic", "static") and isinstance(value, Mapping) and not {"mean", "std"} <= set(value):
            flat.update(value)
        else:
            flat[key] = value
    out: dict[str, tuple[float, float]] = {}
    for name, value in flat.items():
        if isinstance(value, Mapping) and "mean" in value and "std" in value:
            mean, std = value["mean"], value["std"]
        elif isinstance(value, (list, tuple)) and len(value) == 2:
            mean, std = value
        else:
            raise ValueError(f"{source}: statistics of {name!r} must be {{'mean': m, 'std': s}} or [m, s], got {value!r}")
        out[str(name)] = (float(mean), float(std))
    return out


def _pick_stats(
    stats: Mapping[str, tuple[float, float]], author: list[str], canonical: list[str], kind: str, epsilon: float
) -> tuple[list[float], list[float]]:
    means, stds, missing = [], [], []
    for a, c in zip(author, canonical):
        value = stats.get(a, stats.get(c))
        if value is None:
            missing.append(a if a == c else f"{a} ({c})")
            continue
        mean, std = value
        std = std + epsilon
        if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
            raise ValueError(f"stats: {kind} variable {a!r} has mean={mean}, std={std}; need finite values and std > 0")
        means.append(mean)
        stds.append(std)
    if missing:
        raise ValueError(f"stats: no mean/std for {kind} variable(s) {missing}")
    return means, stds


# ================================================================================================
# Conversion
# ================================================================================================
def convert_state_dict(
    state_dict: Mapping[str, torch.Tensor], layout: OriginalLayout, static_mask_row: int = 0
) -> "OrderedDict[str, torch.Tensor]":
    """Original keys -> ``StefaLandForPretraining`` keys, by name (every original tensor is used exactly once)."""
    if not 0 <= static_mask_row < layout.static_mask_rows:
        raise OriginalCheckpointError(
            f"static_mask_row={static_mask_row} is outside 'static_embedding.masked_values' "
            f"({layout.static_mask_rows} rows)"
        )
    sd = {k: v.detach().to(torch.float32) for k, v in state_dict.items()}
    used: set[str] = set()

    def take(key: str) -> torch.Tensor:
        used.add(key)
        return sd[key]

    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for hf, names, emb, proj, mod in (
        ("dynamic", layout.dynamic_names, "time_series_embedding", "time_series_projection", "embeddings"),
        ("static", layout.static_names, "static_embedding", "static_projection", "numerical_embeddings"),
    ):
        prefix = f"stefaland.{hf}_embedding."
        out[prefix + "weight1"] = torch.stack([take(f"{emb}.{mod}1.{n}.weight")[:, 0] for n in names])
        out[prefix + "bias1"] = torch.stack([take(f"{emb}.{mod}1.{n}.bias") for n in names])
        out[prefix + "weight2"] = torch.stack([take(f"{emb}.{mod}2.{n}.weight").t() for n in names])
        out[prefix + "bias2"] = torch.stack([take(f"{emb}.{mod}2.{n}.bias") for n in names])
        masks = take(f"{emb}.masked_values")
        out[prefix + "mask_token"] = masks if hf == "dynamic" else masks[static_mask_row]
        head = f"{hf}_head."
        out[head + "weight1"] = torch.cat([take(f"{proj}.{mod}1.{n}.weight").t() for n in names], dim=1)
        out[head + "bias1"] = torch.cat([take(f"{proj}.{mod}1.{n}.bias") for n in names])
        out[head + "weight2"] = torch.stack([take(f"{proj}.{mod}2.{n}.weight")[0] for n in names])
        out[head + "bias2"] = torch.cat([take(f"{proj}.{mod}2.{n}.bias") for n in names])
    out["stefaland.position_embedding"] = take("positional_encoding.position_embedding")
    for i in range(layout.num_layers):
        src, dst = f"encoder.transformer_encoder.layers.{i}.", f"stefaland.layers.{i}."
        out[dst + "self_attn.in_proj.weight"] = take(src + "self_attn.in_proj_weight")
        out[dst + "self_attn.in_proj.bias"] = take(src + "self_attn.in_proj_bias")
        for name in ("self_attn.out_proj", "linear1", "linear2", "norm1", "norm2"):
            out[dst + name + ".weight"] = take(src + name + ".weight")
            out[dst + name + ".bias"] = take(src + name + ".bias")
    for src, dst in (
        ("encoder_norm", "stefaland.encoder_norm"),
        ("enc_2_dec_embedding", "stefaland.output_projection"),
        ("decoder_norm", "decoder_norm"),
    ):
        out[dst + ".weight"] = take(src + ".weight")
        out[dst + ".bias"] = take(src + ".bias")
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
        out[f"decoder.{name}"] = take(f"decoder.{name}")
    unused = [k for k in state_dict if k not in used]
    if unused:  # parse_original_layout makes this unreachable; kept as the "every tensor consumed" invariant
        raise OriginalCheckpointError(f"key {unused[0]!r} was not consumed by the conversion ({len(unused)} unused)")
    return OrderedDict((k, v.contiguous()) for k, v in out.items())


@dataclass
class ConversionResult:
    model: Any
    layout: OriginalLayout
    dynamic_variables: list[str]
    static_variables: list[str]
    normalized_inputs: bool
    report: dict[str, Any] = field(default_factory=dict)


def convert_original_checkpoint(
    checkpoint: str | os.PathLike | Mapping[str, Any],
    out_dir: str | os.PathLike | None = None,
    stats: str | os.PathLike | Mapping[str, Any] | None = None,
    variable_map: str | os.PathLike | Mapping[str, Any] | None = None,
    num_attention_heads: int = RELEASED_NUM_HEADS,
    dropout: float = RELEASED_DROPOUT,
    layer_norm_eps: float = TORCH_LAYER_NORM_EPS,
    static_mask_row: int = 0,
    std_epsilon: float = 0.0,
    overwrite: bool = False,
) -> ConversionResult:
    """Convert an original ``MFFormer_dec_LSTM`` checkpoint into a ``StefaLandForPretraining`` model.

    Args:
        checkpoint: path of the ``.pt`` file (loaded with ``weights_only=True``), or an already loaded state dict /
            dict holding one.
        out_dir: if given, ``save_pretrained`` (safetensors) there plus ``README.md`` (model card) and
            ``conversion_report.json``.
        stats: per-variable ``mean``/``std`` (path of a JSON file or a mapping, see :func:`load_stats`). With them the
            model takes physical units; without them the config records identity normalization (inputs must be
            z-scored by the caller) and a ``UserWarning`` says so.
        variable_map: author name -> canonical name overrides (path or mapping, see :func:`load_variable_map`).
        num_attention_heads, dropout, layer_norm_eps: hyperparameters a state dict does not record.
        static_mask_row: row of the original [max_len, C] static mask table used as the per-attribute mask scalar.
        std_epsilon: added to every std (the authors' transform divides by ``std + 1e-5`` for some variables).
        overwrite: allow writing into a non-empty ``out_dir``.
    """
    from .hub.cards import render_converted_card
    from .modeling_stefaland import StefaLandForPretraining

    if isinstance(checkpoint, Mapping):
        state_dict, ignored = extract_state_dict(checkpoint)
        source_name, digest = "<in-memory state dict>", None
    else:
        state_dict, ignored = load_original_state_dict(checkpoint)
        source_name, digest = Path(checkpoint).name, _sha256(checkpoint)
    layout = parse_original_layout(state_dict)
    if isinstance(variable_map, (str, os.PathLike)):
        variable_map = load_variable_map(variable_map)
    dynamic, static = map_variable_names(layout.dynamic_names, layout.static_names, variable_map)
    if layout.d_model % num_attention_heads:
        raise OriginalCheckpointError(f"d_model={layout.d_model} is not divisible by num_attention_heads={num_attention_heads}")

    stat_kwargs: dict[str, Any] = {}
    if stats is not None:
        table = load_stats(stats)
        stat_kwargs["dynamic_mean"], stat_kwargs["dynamic_std"] = _pick_stats(
            table, layout.dynamic_names, dynamic, "dynamic", std_epsilon
        )
        stat_kwargs["static_mean"], stat_kwargs["static_std"] = _pick_stats(
            table, layout.static_names, static, "static", std_epsilon
        )
        known = set(layout.dynamic_names) | set(layout.static_names) | set(dynamic) | set(static)
        unused_stats = sorted(set(table) - known)
    else:
        unused_stats = []
        warnings.warn(
            "convert-original: no --stats given; the original checkpoint carries no scaler, so the converted model "
            "records identity normalization and its inputs must be z-scored by the user with the pretraining "
            "statistics (per-variable mean/std).",
            UserWarning,
            stacklevel=2,
        )

    config = StefaLandConfig(
        dynamic_variables=dynamic,
        static_variables=static,
        d_model=layout.d_model,
        num_attention_heads=num_attention_heads,
        num_hidden_layers=layout.num_layers,
        ffn_dim=layout.ffn_dim or 1,
        dropout=dropout,
        variable_mlp_dim=layout.mlp_dim,
        max_position_embeddings=layout.max_position_embeddings,
        pre_norm=False,
        activation="relu",
        embedding_activation="gelu",
        scale_embeddings=True,
        layer_norm_eps=layer_norm_eps,
        static_mask_mode="scalar",
        decoder_bidirectional=False,
        **stat_kwargs,
    )
    converted = convert_state_dict(state_dict, layout, static_mask_row)
    model = StefaLandForPretraining(config)
    expected = set(model.state_dict())
    extra, lacking = sorted(set(converted) - expected), sorted(expected - set(converted))
    if extra or lacking:  # the modeling code changed its parameter names
        raise OriginalCheckpointError(
            f"StefaLandForPretraining parameters do not match the conversion: unexpected {extra[:5]}, missing {lacking[:5]}"
        )
    model.load_state_dict(converted, strict=True)
    model.eval()

    static_masks = state_dict["static_embedding.masked_values"].float()
    trained_rows = static_masks[: min(256, static_masks.shape[0])]
    spread = (trained_rows - static_masks[static_mask_row]).abs().amax(0)
    report = {
        "source": source_name,
        "sha256": digest,
        "num_tensors": len(state_dict),
        "num_parameters": int(sum(t.numel() for t in state_dict.values())),
        "ignored_top_level_entries": ignored,
        "dynamic_variables": [{"author": a, "canonical": c} for a, c in zip(layout.dynamic_names, dynamic)],
        "static_variables": [{"author": a, "canonical": c} for a, c in zip(layout.static_names, static)],
        "d_model": layout.d_model,
        "num_hidden_layers": layout.num_layers,
        "ffn_dim": layout.ffn_dim,
        "variable_mlp_dim": layout.mlp_dim,
        "max_position_embeddings": layout.max_position_embeddings,
        "assumed": {"num_attention_heads": num_attention_heads, "dropout": dropout, "layer_norm_eps": layer_norm_eps},
        "static_mask_row": static_mask_row,
        "static_mask_rows": layout.static_mask_rows,
        "static_mask_max_abs_diff_rows_0_255": {c: float(v) for c, v in zip(static, spread.tolist())},
        "normalization": "physical units (stats given)" if stats is not None else "identity: inputs must be z-scored",
        "std_epsilon": std_epsilon,
        "unused_stats_entries": unused_stats,
    }
    result = ConversionResult(model, layout, dynamic, static, stats is None, report)
    if out_dir is not None:
        out = Path(out_dir)
        if out.exists() and any(out.iterdir()) and not overwrite:
            raise FileExistsError(f"{out} exists and is not empty; pass overwrite=True (--overwrite) to write into it")
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out, safe_serialization=True)
        (out / "conversion_report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        render_converted_card(report, str(out)).save(out / "README.md")
    return result


def _sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ================================================================================================
# CLI
# ================================================================================================
def _run_cli(args: argparse.Namespace) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        result = convert_original_checkpoint(
            args.checkpoint,
            out_dir=args.out,
            stats=args.stats,
            variable_map=args.variable_map,
            num_attention_heads=args.num_heads,
            dropout=args.dropout,
            static_mask_row=args.static_mask_row,
            std_epsilon=args.std_epsilon,
            overwrite=args.overwrite,
        )
    for warning in caught:
        print(f"WARNING: {warning.message}")
    report = result.report
    print(
        f"Converted {report['num_tensors']} tensors: {len(result.dynamic_variables)} dynamic and "
        f"{len(result.static_variables)} static variables, d_model={report['d_model']}, "
        f"{report['num_hidden_layers']} layers -> {args.out}"
    )
    print("dynamic: " + ", ".join(f"{v['author']}->{v['canonical']}" for v in report["dynamic_variables"]))
    print("static:  " + ", ".join(f"{v['author']}->{v['canonical']}" for v in report["static_variables"]))
    if report["unused_stats_entries"]:
        print(f"stats entries not used: {report['unused_stats_entries']}")
    return 0


def run_cli(args: argparse.Namespace) -> int:
    """``stefaland convert-original`` (its arguments: ``stefaland_cli.convert``)."""
    try:
        return _run_cli(args)
    except (OriginalCheckpointError, ValueError, FileExistsError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


__all__ = [
    "DEFAULT_VARIABLE_MAP",
    "OriginalCheckpointError",
    "OriginalLayout",
    "ConversionResult",
    "load_original_state_dict",
    "extract_state_dict",
    "parse_original_layout",
    "expected_keys",
    "map_variable_names",
    "missing_vocabulary",
    "load_variable_map",
    "load_stats",
    "convert_state_dict",
    "convert_original_checkpoint",
]
