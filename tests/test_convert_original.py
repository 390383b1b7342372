"""Converting the authors' original StefaLand (MFFormer_dec_LSTM) checkpoints, with proof of equivalence.

A replica of the authors' module tree (same attribute names and registration order, hence the same state-dict keys
and key order) provides checkpoints in the original layout. The converted model is checked against
``reference_forward``: the original equations (spec §1.3-§1.5) written out with plain tensor ops in float64,
independently of both the replica and the modeling code.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from stefaland_hf import StefaLandForPretraining
from stefaland_cli import main as cli_main
from stefaland_hf.convert_original import (
    OriginalCheckpointError,
    convert_original_checkpoint,
    expected_keys,
    map_variable_names,
    missing_vocabulary,
    parse_original_layout,
)

# Author names in a deliberately non-canonical order: the converter must take the order from the keys.
DYN = ["P", "RelHum", "SWd", "Tmax", "Tmin"]
STA = ["meanP", "HWSD_clay", "catchsize", "NDVI"]
DYN_CANONICAL = ["precipitation", "relative_humidity", "shortwave_radiation", "temperature_max", "temperature_min"]
STA_CANONICAL = ["mean_precipitation", "clay_fraction", "area", "ndvi"]
# The 5 + 48 variables read off StefaLandGlobal20.pt (spec §2.1, last row).
GLOBAL20_DYN = ["P", "RelHum", "SWd", "Tmax", "Tmin"]
GLOBAL20_STA = (
    "ETPOT_Hargr GMTED_aspectcosine GMTED_elevation GMTED_slope HWSD_clay HWSD_gravel HWSD_sand HWSD_silt MODIS_NDVI "
    "MSWEP_P MSWX_LWd MSWX_PET MSWX_RH MSWX_SWd MSWX_SpecHum MSWX_Tmax MSWX_Tmean MSWX_Tmin MSWX_Wind "
    "Permeability_no_permafrost SoilGrid2_bulk_density SoilGrid2_clay SoilGrid2_organic_carbon_stock SoilGrid2_sand "
    "SoilGrid2_silt agriculture_fraction_2000 agriculture_fraction_2018 carbonate_sedimentary_rocks_frac catchsize "
    "forest_fraction_2000 forest_fraction_2018 gdp_2000_buffer grassland_fraction_2000 grassland_fraction_2018 "
    "intact_forest meanP meanTa population_density_2000_buffer porosity seasonality_P seasonality_PET snow_fraction "
    "snowfall_fraction soil_depth soil_erosion soil_moisture urban_fraction_2000 urban_fraction_2018"
).split()
D, HEADS, FFN, LAYERS, MLP, MAX_LEN = 16, 4, 32, 2, 8, 64


# ================================================================================================
# Replica of the authors' module tree (only for names, order and shapes of the state dict)
# ================================================================================================
class _TimeSeriesEncEmbedding(nn.Module):
    def __init__(self, names, d):
        super().__init__()
        self.embeddings1 = nn.ModuleDict({n: nn.Linear(1, MLP) for n in names})
        self.embeddings2 = nn.ModuleDict({n: nn.Linear(MLP, d) for n in names})
        self.masked_values = nn.Parameter(torch.randn(len(names), d))


class _StaticEncEmbedding(nn.Module):
    def __init__(self, names, d, max_len):
        super().__init__()
        self.numerical_embeddings1 = nn.ModuleDict({n: nn.Linear(1, MLP) for n in names})
        self.numerical_embeddings2 = nn.ModuleDict({n: nn.Linear(MLP, d) for n in names})
        self.categorical_embeddings1 = nn.ModuleDict()
        self.categorical_embeddings2_linear = nn.ModuleDict()
        self.masked_values = nn.Parameter(torch.randn(max_len, len(names)))


class _Projection(nn.Module):
    def __init__(self, names, d, prefix):
        super().__init__()
        setattr(self, f"{prefix}1", nn.ModuleDict({n: nn.Linear(d, MLP) for n in names}))
        setattr(self, f"{prefix}2", nn.ModuleDict({n: nn.Linear(MLP, 1) for n in names}))


class _PositionalEncoding(nn.Module):
    def __init__(self, d, max_len):
        super().__init__()
        self.position_embedding = nn.Parameter(torch.empty(max_len, d))


class _TransformerBackbone(nn.Module):
    def __init__(self, d, layers):
        super().__init__()
        self.transformer_encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d, HEADS, FFN, 0.1), layers, enable_nested_tensor=False
        )


class OriginalReplica(nn.Module):
    """Attribute names and registration order of ``MFFormer_dec_LSTM.Model`` (authors' release)."""

    def __init__(self, dyn, sta, d=D, layers=LAYERS, max_len=MAX_LEN):
        super().__init__()
        self.encoder_norm = nn.LayerNorm(d)
        self.decoder_norm = nn.LayerNorm(d)
        self.time_series_embedding = _TimeSeriesEncEmbedding(dyn, d)
        self.static_embedding = _StaticEncEmbedding(sta, d, max_len)
        self.positional_encoding = _PositionalEncoding(d, max_len)
        self.encoder = _TransformerBackbone(d, layers)
        self.enc_2_dec_embedding = nn.Linear(d, d)
        self.decoder = nn.LSTM(d, d, batch_first=True)
        self.time_series_projection = _Projection(dyn, d, "embeddings")
        self.static_projection = _Projection(sta, d, "numerical_embeddings")
        self.dyn, self.sta, self.d = list(dyn), list(sta), d

    def forward(self, x, c, x_mask, c_mask):
        """The authors' forward (is_mask=True, eval mode), re-typed over these torch modules."""
        F = nn.functional
        x_missing, c_missing = torch.isnan(x), torch.isnan(c)
        x, c = x.masked_fill(x_missing, 0), c.masked_fill(c_missing, 0)
        x_mask, c_mask = x_mask | x_missing, c_mask | c_missing
        ts, st = self.time_series_embedding, self.static_embedding
        embeds = torch.stack(
            [ts.embeddings2[n](F.gelu(ts.embeddings1[n](x[..., i : i + 1]))) for i, n in enumerate(self.dyn)], -2
        )
        embeds = torch.where(x_mask[..., None], ts.masked_values.expand_as(embeds), embeds).sum(-2)
        c = torch.where(c_mask, st.masked_values[: c.shape[0]], c)
        static = torch.stack(
            [st.numerical_embeddings2[n](F.gelu(st.numerical_embeddings1[n](c[..., j : j + 1]))) for j, n in enumerate(self.sta)],
            -1,
        ).sum(-1)
        h = torch.cat([embeds, static[:, None]], 1)
        h = h + self.positional_encoding.position_embedding[: h.shape[1]]
        h = self.encoder.transformer_encoder((h * math.sqrt(self.d)).transpose(0, 1)).transpose(0, 1)
        h = self.enc_2_dec_embedding(self.encoder_norm(h))
        dec, _ = self.decoder(h)
        dec = self.decoder_norm(dec)
        tp, sp = self.time_series_projection, self.static_projection
        x_hat = torch.cat([tp.embeddings2[n](F.gelu(tp.embeddings1[n](dec[:, :-1]))) for n in self.dyn], -1)
        c_hat = torch.cat([sp.numerical_embeddings2[n](F.gelu(sp.numerical_embeddings1[n](dec[:, -1]))) for n in self.sta], -1)
        return x_hat, c_hat


def original_state_dict(dyn=DYN, sta=STA, seed=0, same_static_mask_rows=True, **kwargs):
    """Random weights at scales that make every path matter, in the original key names and order."""
    torch.manual_seed(seed)
    model = OriginalReplica(dyn, sta, **kwargs)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif p.dim() == 1 or "masked_values" in name:
                p.copy_(0.5 * torch.randn_like(p))
            elif name == "positional_encoding.position_embedding":
                p.copy_(0.3 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / math.sqrt(p.shape[1]))
        if same_static_mask_rows:
            masks = model.static_embedding.masked_values
            masks.copy_(masks[:1].expand_as(masks))
    return model.state_dict()


# ================================================================================================
# Independent reference: the original forward (spec §1.3-§1.5), float64, plain tensor ops
# ================================================================================================
def _gelu(z):
    return 0.5 * z * (1 + torch.erf(z / math.sqrt(2)))


def _layer_norm(x, w, b, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w + b


def _mlp_1_to_d(value, w1, b1, w2, b2):
    """Linear(1, H) -> GELU -> Linear(H, D) of a scalar per entry: value [...] -> [..., D]."""
    return _gelu(value[..., None] * w1[:, 0] + b1) @ w2.T + b2


def reference_forward(sd, dyn, sta, x, c, x_mask, c_mask, num_heads=HEADS):
    """Original MFFormer_dec_LSTM forward (eval mode, is_mask=True) on z-scored inputs -> (x_hat [B,T,F], c_hat [B,C])."""
    sd = {k: v.double() for k, v in sd.items()}
    x, c = x.double(), c.double()
    batch, length, _ = x.shape
    # missing values are filled with 0 and flagged as masked
    x_missing, c_missing = torch.isnan(x), torch.isnan(c)
    x, c = x.masked_fill(x_missing, 0), c.masked_fill(c_missing, 0)
    x_mask, c_mask = x_mask | x_missing, c_mask | c_missing
    # dynamic tokens: per-variable MLP, masked entries replaced by the variable's mask vector, summed over variables
    tokens = torch.zeros(batch, length, D, dtype=torch.float64)
    for i, n in enumerate(dyn):
        e = _mlp_1_to_d(
            x[..., i],
            sd[f"time_series_embedding.embeddings1.{n}.weight"],
            sd[f"time_series_embedding.embeddings1.{n}.bias"],
            sd[f"time_series_embedding.embeddings2.{n}.weight"],
            sd[f"time_series_embedding.embeddings2.{n}.bias"],
        )
        tokens = tokens + torch.where(x_mask[..., i, None], sd["time_series_embedding.masked_values"][i], e)
    # static token: masked raw inputs replaced by the learned scalar of (batch row, attribute), MLPs summed
    c = torch.where(c_mask, sd["static_embedding.masked_values"][:batch], c)
    static = sum(
        _mlp_1_to_d(
            c[:, j],
            sd[f"static_embedding.numerical_embeddings1.{n}.weight"],
            sd[f"static_embedding.numerical_embeddings1.{n}.bias"],
            sd[f"static_embedding.numerical_embeddings2.{n}.weight"],
            sd[f"static_embedding.numerical_embeddings2.{n}.bias"],
        )
        for j, n in enumerate(sta)
    )
    h = torch.cat([tokens, static[:, None]], 1)  # static token last
    h = (h + sd["positional_encoding.position_embedding"][: length + 1]) * math.sqrt(D)
    # post-LN encoder layers, ReLU FFN, no attention mask
    dh = D // num_heads
    for layer in range(LAYERS):
        p = lambda name: sd[f"encoder.transformer_encoder.layers.{layer}.{name}"]  # noqa: E731
        q, k, v = (h @ p("self_attn.in_proj_weight").T + p("self_attn.in_proj_bias")).chunk(3, -1)
        split = lambda t: t.view(batch, length + 1, num_heads, dh).transpose(1, 2)  # noqa: E731
        attn = torch.softmax(split(q) @ split(k).transpose(-1, -2) / math.sqrt(dh), -1) @ split(v)
        attn = attn.transpose(1, 2).reshape(batch, length + 1, D) @ p("self_attn.out_proj.weight").T + p("self_attn.out_proj.bias")
        h = _layer_norm(h + attn, p("norm1.weight"), p("norm1.bias"))
        ffn = torch.relu(h @ p("linear1.weight").T + p("linear1.bias")) @ p("linear2.weight").T + p("linear2.bias")
        h = _layer_norm(h + ffn, p("norm2.weight"), p("norm2.bias"))
    h = _layer_norm(h, sd["encoder_norm.weight"], sd["encoder_norm.bias"])
    h = h @ sd["enc_2_dec_embedding.weight"].T + sd["enc_2_dec_embedding.bias"]
    # unidirectional LSTM over all T + 1 tokens (gate order i, f, g, o), zero initial state
    hidden = cell = torch.zeros(batch, D, dtype=torch.float64)
    outputs = []
    for t in range(length + 1):
        gates = h[:, t] @ sd["decoder.weight_ih_l0"].T + sd["decoder.bias_ih_l0"] + hidden @ sd["decoder.weight_hh_l0"].T + sd["decoder.bias_hh_l0"]
        i_g, f_g, g_g, o_g = gates.chunk(4, -1)
        cell = torch.sigmoid(f_g) * cell + torch.sigmoid(i_g) * torch.tanh(g_g)
        hidden = torch.sigmoid(o_g) * torch.tanh(cell)
        outputs.append(hidden)
    d = _layer_norm(torch.stack(outputs, 1), sd["decoder_norm.weight"], sd["decoder_norm.bias"])

    def head(prefix, n, z):
        inner = _gelu(z @ sd[f"{prefix}1.{n}.weight"].T + sd[f"{prefix}1.{n}.bias"])
        return (inner @ sd[f"{prefix}2.{n}.weight"].T + sd[f"{prefix}2.{n}.bias"])[..., 0]

    x_hat = torch.stack([head("time_series_projection.embeddings", n, d[:, :length]) for n in dyn], -1)
    c_hat = torch.stack([head("static_projection.numerical_embeddings", n, d[:, length]) for n in sta], -1)
    return x_hat, c_hat


def make_inputs(batch=3, length=20, seed=1, nans=False, masks=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, len(DYN), generator=g)
    c = torch.randn(batch, len(STA), generator=g)
    x_mask = torch.zeros_like(x, dtype=torch.bool)
    c_mask = torch.zeros_like(c, dtype=torch.bool)
    if masks:
        x_mask = torch.rand(x.shape, generator=g) < 0.4
        x_mask[:, :, 2] = True  # a whole variable hidden
        c_mask = torch.rand(c.shape, generator=g) < 0.5
        c_mask[0, 1] = True
    if nans:
        x[torch.rand(x.shape, generator=g) < 0.2] = float("nan")
        x[1, :, 0] = float("nan")
        c[2, 3] = float("nan")
        c[0, 0] = float("nan")
    return x, c, x_mask, c_mask


def _hf_forward(model, x, c, x_mask, c_mask):
    with torch.no_grad():
        out = model(x, c, dynamic_mask=x_mask, static_mask=c_mask)
    return out.dynamic_reconstruction.double(), out.static_reconstruction.double()


def _assert_close(actual, expected, atol=1e-5):
    diff = (actual - expected).abs().max().item()
    assert diff <= atol, f"max abs difference {diff:.3g} > {atol}"


@pytest.fixture(scope="module")
def state_dict():
    return original_state_dict()


@pytest.fixture(scope="module")
def converted(state_dict):
    with pytest.warns(UserWarning, match="z-scored"):
        return convert_original_checkpoint(state_dict, num_attention_heads=HEADS)


# ================================================================================================
# Layout
# ================================================================================================
def test_replica_has_the_documented_key_layout():
    sd = original_state_dict(GLOBAL20_DYN, GLOBAL20_STA, layers=4, max_len=MAX_LEN)
    assert len(sd) == 485  # spec §7: 5 dynamic + 48 static variables
    layout = parse_original_layout(sd)
    assert layout.dynamic_names == GLOBAL20_DYN and layout.static_names == GLOBAL20_STA
    assert (layout.d_model, layout.num_layers, layout.ffn_dim, layout.mlp_dim) == (D, 4, FFN, MLP)
    assert sorted(expected_keys(layout)) == sorted(sd)


def test_variable_order_comes_from_key_order(state_dict):
    layout = parse_original_layout(state_dict)
    assert layout.dynamic_names == DYN and layout.static_names == STA
    shuffled = {k: state_dict[k] for k in sorted(state_dict, key=lambda k: ("Tmin" not in k, k))}
    assert parse_original_layout(shuffled).dynamic_names[0] == "Tmin"


def test_default_names_and_released_checkpoint_vocabulary():
    assert map_variable_names(DYN, STA) == (DYN_CANONICAL, STA_CANONICAL)
    assert missing_vocabulary(GLOBAL20_STA) == {}  # every attribute of the released checkpoint has a canonical name
    dynamic, static = map_variable_names(GLOBAL20_DYN, GLOBAL20_STA)
    assert len(static) == len(set(static)) == 48 and dynamic[0] == "precipitation"


# ================================================================================================
# Equivalence
# ================================================================================================
def test_reference_matches_the_torch_modules_of_the_original(state_dict):
    """The hand-written equations agree with nn.TransformerEncoderLayer / nn.LSTM as the authors' code calls them."""
    replica = OriginalReplica(DYN, STA).eval()
    replica.load_state_dict(state_dict)
    x, c, x_mask, c_mask = make_inputs(nans=True, masks=True)
    expected = reference_forward(state_dict, DYN, STA, x, c, x_mask, c_mask)
    with torch.no_grad():
        actual = replica(x, c, x_mask, c_mask)
    _assert_close(actual[0].double(), expected[0])
    _assert_close(actual[1].double(), expected[1])


@pytest.mark.parametrize("masks", [False, True], ids=["no-masks", "masks"])
@pytest.mark.parametrize("nans", [False, True], ids=["no-nans", "nans"])
def test_converted_model_reproduces_original_forward(state_dict, converted, masks, nans):
    x, c, x_mask, c_mask = make_inputs(nans=nans, masks=masks)
    expected = reference_forward(state_dict, DYN, STA, x, c, x_mask, c_mask)
    actual = _hf_forward(converted.model, x, c, x_mask, c_mask)
    _assert_close(actual[0], expected[0])
    _assert_close(actual[1], expected[1])
    assert converted.model.config.dynamic_variables == DYN_CANONICAL
    assert converted.model.config.static_variables == STA_CANONICAL


def test_no_mask_equals_all_false_mask(converted):
    x, c, _, _ = make_inputs(nans=True)
    with torch.no_grad():
        a = converted.model(x, c)
        b = converted.model(x, c, torch.zeros_like(x, dtype=torch.bool), torch.zeros_like(c, dtype=torch.bool))
    assert torch.equal(a.dynamic_reconstruction, b.dynamic_reconstruction)


def test_reference_is_sensitive_to_the_mapping(state_dict, converted):
    """Guard against a vacuous proof: swapping two variables' weights changes the output far beyond 1e-5."""
    swapped = dict(state_dict)
    for part in ("embeddings1", "embeddings2"):
        for suffix in ("weight", "bias"):
            a, b = f"time_series_embedding.{part}.P.{suffix}", f"time_series_embedding.{part}.Tmax.{suffix}"
            swapped[a], swapped[b] = state_dict[b], state_dict[a]
    x, c, x_mask, c_mask = make_inputs(masks=True)
    expected = reference_forward(swapped, DYN, STA, x, c, x_mask, c_mask)
    actual = _hf_forward(converted.model, x, c, x_mask, c_mask)
    assert (actual[0] - expected[0]).abs().max() > 1e-3


def test_static_mask_table_row_zero_is_kept():
    """Original: learned scalar per (batch row, attribute). Converted: row 0 for every row (documented)."""
    sd = original_state_dict(same_static_mask_rows=False, seed=3)
    with pytest.warns(UserWarning):
        model = convert_original_checkpoint(sd, num_attention_heads=HEADS).model
    x, c, x_mask, _ = make_inputs(batch=3, masks=True)
    c_mask = torch.zeros_like(c, dtype=torch.bool)
    c_mask[0, :2] = True  # row 0: exact
    c_mask[2, 1] = True  # row 2: uses row 0's scalar instead of row 2's
    expected = reference_forward(sd, DYN, STA, x, c, x_mask, c_mask)
    actual = _hf_forward(model, x, c, x_mask, c_mask)
    _assert_close(actual[0][:2], expected[0][:2])  # rows 0 and 1 (no static mask) agree
    _assert_close(actual[1][:2], expected[1][:2])
    assert (actual[1][2] - expected[1][2]).abs().max() > 1e-4  # the documented consequence


# ================================================================================================
# Files, statistics, CLI
# ================================================================================================
def _stats():
    dyn = {n: {"mean": 1.0 + i, "std": 2.0 + 0.5 * i} for i, n in enumerate(DYN)}
    sta = {n: [10.0 * (j + 1), 3.0 + j] for j, n in enumerate(STA)}
    sta["mean_precipitation"] = sta.pop("meanP")  # canonical names work too
    return {"dynamic": dyn, "static": sta, "Runoff": {"mean": 0.0, "std": 1.0}}


def test_cli_with_stats_takes_physical_units(tmp_path, state_dict, capsys):
    checkpoint = tmp_path / "StefaLandA.pt"
    torch.save({"model_state_dict": {f"module.{k}": v for k, v in state_dict.items()}, "epoch": 20}, checkpoint)
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps(_stats()))
    out = tmp_path / "stefaland-base"
    argv = ["convert-original", str(checkpoint), "--out", str(out), "--stats", str(stats), "--num-heads", str(HEADS)]
    assert cli_main(argv) == 0
    assert "stats entries not used: ['Runoff']" in capsys.readouterr().out
    assert (out / "model.safetensors").exists() and (out / "config.json").exists()
    card = (out / "README.md").read_text()
    assert "StefaLandA.pt" in card and "`meanP` | `mean_precipitation`" in card and "row 0" in card
    report = json.loads((out / "conversion_report.json").read_text())
    assert report["num_tensors"] == len(state_dict) and report["ignored_top_level_entries"] == {"epoch": "20"}

    model = StefaLandForPretraining.from_pretrained(out).eval()
    mean_x = torch.tensor([1.0 + i for i in range(len(DYN))])
    std_x = torch.tensor([2.0 + 0.5 * i for i in range(len(DYN))])
    mean_c = torch.tensor([10.0 * (j + 1) for j in range(len(STA))])
    std_c = torch.tensor([3.0 + j for j in range(len(STA))])
    x, c, x_mask, c_mask = make_inputs(nans=True, masks=True)
    expected = reference_forward(state_dict, DYN, STA, x, c, x_mask, c_mask)  # z-scores
    actual = _hf_forward(model, x * std_x + mean_x, c * std_c + mean_c, x_mask, c_mask)  # physical units
    _assert_close((actual[0] - mean_x.double()) / std_x.double(), expected[0], atol=2e-5)
    _assert_close((actual[1] - mean_c.double()) / std_c.double(), expected[1], atol=2e-5)

    assert cli_main(argv) == 2  # refuses a non-empty folder without --overwrite
    assert cli_main(argv + ["--overwrite"]) == 0


def test_without_stats_config_is_identity_and_card_warns(tmp_path, state_dict):
    with pytest.warns(UserWarning, match="must be z-scored"):
        result = convert_original_checkpoint(state_dict, out_dir=tmp_path / "m", num_attention_heads=HEADS)
    assert result.model.config.dynamic_mean is None and result.model.config.static_std is None
    assert "must be z-scored by the user" in (tmp_path / "m" / "README.md").read_text()


def test_missing_stats_is_an_error(state_dict):
    stats = _stats()
    del stats["dynamic"]["SWd"]
    with pytest.raises(ValueError, match="SWd"):
        convert_original_checkpoint(state_dict, stats=stats, num_attention_heads=HEADS)


# ================================================================================================
# Errors name the key
# ================================================================================================
def test_missing_key_is_named(state_dict):
    sd = dict(state_dict)
    del sd["time_series_projection.embeddings2.SWd.bias"]
    with pytest.raises(OriginalCheckpointError, match=r"missing key 'time_series_projection\.embeddings2\.SWd\.bias'"):
        convert_original_checkpoint(sd)


def test_unexpected_key_is_named(state_dict):
    sd = dict(state_dict)
    sd["decoder.weight_ih_l0_reverse"] = sd["decoder.weight_ih_l0"]
    with pytest.raises(OriginalCheckpointError, match=r"unexpected key 'decoder\.weight_ih_l0_reverse'"):
        convert_original_checkpoint(sd)
    sd = dict(state_dict)
    sd["static_projection.numerical_embeddings1.ghost.weight"] = torch.zeros(MLP, D)
    sd["static_projection.numerical_embeddings1.ghost.bias"] = torch.zeros(MLP)
    with pytest.raises(OriginalCheckpointError, match="ghost"):
        convert_original_checkpoint(sd)


def test_shape_disagreeing_with_variable_counts_is_named(state_dict):
    sd = dict(state_dict)
    sd["time_series_embedding.masked_values"] = torch.zeros(len(DYN) + 1, D)
    with pytest.raises(OriginalCheckpointError, match=r"'time_series_embedding\.masked_values' has shape \(6, 16\), expected \(5, 16\)"):
        convert_original_checkpoint(sd)
    sd = dict(state_dict)
    sd["time_series_projection.embeddings2.P.weight"] = torch.zeros(2, MLP)
    with pytest.raises(OriginalCheckpointError, match="heteroscedastic"):
        convert_original_checkpoint(sd)


def test_unknown_author_name_asks_for_variable_map(state_dict):
    renamed = {k.replace(".NDVI.", ".mystery_index."): v for k, v in state_dict.items()}
    with pytest.raises(OriginalCheckpointError, match=r"'mystery_index'.*\n.*--variable-map"):
        convert_original_checkpoint(renamed)
    with pytest.warns(UserWarning):
        result = convert_original_checkpoint(renamed, variable_map={"static": {"mystery_index": "ndvi"}}, num_attention_heads=HEADS)
    assert result.static_variables[-1] == "ndvi"


def test_unsafe_pickle_is_refused(tmp_path, state_dict):
    path = tmp_path / "unsafe.pt"
    torch.save({"state_dict": state_dict, "args": argparse_namespace()}, path)
    with pytest.raises(OriginalCheckpointError, match="weights_only=True"):
        convert_original_checkpoint(path)


def argparse_namespace():
    import argparse

    return argparse.Namespace(d_model=D)
