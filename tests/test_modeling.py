import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import WITHOUT_PACKAGE, tiny_config, tiny_inputs
from transformers import AutoConfig, AutoModel, AutoModelForPreTraining, AutoModelForTimeSeriesPrediction
from transformers.utils import ModelOutput

from stefaland_hf import (
    StefaLandConfig,
    StefaLandForPretraining,
    StefaLandForStaticRegression,
    StefaLandForTimeSeriesRegression,
    StefaLandModel,
)
from stefaland_hf.configuration_stefaland import HBV_HEAD_MODES, HEAD_MODES
from stefaland_hf import modeling_stefaland
from stefaland_hf.modeling_stefaland import STATIC_HEADS, TASK_HEADS, StefaLandNormalizer, head_class, masked_mse

STATIC_TARGETS = dict(target_variables=["sand_fraction", "clay_fraction"], target_mean=[0.4, 0.25], target_std=[0.15, 0.1])
ALL_MODELS = [StefaLandModel, StefaLandForPretraining, StefaLandForTimeSeriesRegression, StefaLandForStaticRegression]


def _config_for(cls, **overrides):
    return tiny_config(**{**(STATIC_TARGETS if cls is StefaLandForStaticRegression else {}), **overrides})


def test_backbone_shapes(config):
    x, c = tiny_inputs(batch=3, length=40)
    out = StefaLandModel(config).eval()(x, c, output_hidden_states=True)
    assert out.last_hidden_state.shape == (3, 41, 16)
    assert out.dynamic_hidden_state.shape == (3, 40, 16)
    assert out.static_hidden_state.shape == (3, 16)
    assert len(out.hidden_states) == config.num_hidden_layers + 1


@pytest.mark.parametrize("mode", ["resconn", "no_adapter", "linear_probe", "scratch", "direct"])
def test_time_series_heads(mode):
    """Each mode trains the parts the paper gives it, and only those, and fits a fixed batch."""
    torch.manual_seed(0)
    config = tiny_config(head_mode=mode, target_variables=["streamflow", "soil_moisture"], target_mean=[1, 0.2], target_std=[1, 0.1])
    x, c = tiny_inputs(batch=2, length=30)
    labels = torch.stack([1.5 + torch.sin(torch.arange(30.0) / 4), 0.2 + 0.05 * torch.cos(torch.arange(30.0) / 5)], -1).repeat(2, 1, 1)
    labels[:, :10] = float("nan")  # unobserved days: outside the loss
    model = StefaLandForTimeSeriesRegression(config).train()
    out = model(x, c, labels=labels)
    assert out.prediction.shape == (2, 30, 2) and torch.isfinite(out.loss)
    out.loss.backward()
    trained = {name.split(".")[0] if name.startswith("stefaland.") else name.split(".")[1] for name, p in model.named_parameters()
               if p.grad is not None and p.grad.abs().sum() > 0}
    expected = {
        "resconn": {"adapter", "lstm_in", "lstm", "residual", "output", "embedding_norm", "embedding_scale"},
        "scratch": {"stefaland", "adapter", "lstm_in", "lstm", "residual", "output", "embedding_norm", "embedding_scale"},
        "no_adapter": {"lstm", "output", "embedding_norm", "embedding_scale"},
        "linear_probe": {"output", "embedding_norm"},
        "direct": {"lstm_in", "lstm", "output"},
    }[mode]
    assert trained == expected  # frozen modes: no gradient reaches the backbone; direct has none
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    first = out.loss.item()
    for _ in range(60):
        optimizer.zero_grad()
        loss = model(x, c, labels=labels).loss
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first, (mode, first, loss.item())


@pytest.mark.parametrize("mode", ["resconn", "linear_probe", "scratch", "direct"])
def test_static_regression_head(mode):
    config = tiny_config(head_mode=mode, target_variables=["sand_fraction", "clay_fraction"], target_mean=[0.4, 0.25], target_std=[0.15, 0.1])
    x, c = tiny_inputs(batch=4, length=20)
    model = StefaLandForStaticRegression(config).eval()
    out = model(x, c, labels=c[:, [4, 6]])
    assert out.prediction.shape == (4, 2)
    # The targets are hidden from the model: changing them must not change the prediction.
    c2 = c.clone()
    c2[:, [4, 6]] = 0.9
    assert torch.equal(model(x, c2).prediction, out.prediction)


def test_every_head_mode_has_a_head_class():
    """Every mode has a time-series head; every mode but the HBV ones (daily streamflow only) a static one."""
    assert list(TASK_HEADS) == list(HEAD_MODES)
    assert list(STATIC_HEADS) == [mode for mode in HEAD_MODES if mode not in HBV_HEAD_MODES]
    hbv_forcings = dict(dynamic_variables=["precipitation", "temperature_mean", "potential_evapotranspiration"], dynamic_groups={},
                        dynamic_mean=None, dynamic_std=None)
    for mode in HEAD_MODES:
        forcings = hbv_forcings if mode in HBV_HEAD_MODES else {}
        assert type(StefaLandForTimeSeriesRegression(tiny_config(head_mode=mode, **forcings)).head) is TASK_HEADS[mode]
    for mode in STATIC_HEADS:
        assert type(StefaLandForStaticRegression(tiny_config(head_mode=mode, **STATIC_TARGETS)).head) is STATIC_HEADS[mode]
    with pytest.raises(ValueError, match="embedding_adds_static=True: a static-regression head already reads the static token"):
        StefaLandForStaticRegression(tiny_config(head_mode="resconn", embedding_adds_static=True, **STATIC_TARGETS))
    with pytest.raises(ValueError, match=r"head_mode must be one of \('resconn', 'no_adapter', 'linear_probe', 'scratch', 'direct', "
                                         r"'hbv', 'resconn_hbv'\), got 'lora'"):
        head_class(TASK_HEADS, "lora")


@pytest.mark.parametrize("cls", [StefaLandForTimeSeriesRegression, StefaLandForStaticRegression])
@pytest.mark.parametrize("mode", ["resconn", "direct"])
def test_a_task_model_holds_one_set_of_normalizers(cls, mode):
    """The raw inputs the heads see are z-scored by the backbone's normalizers; only a model without one has its own."""
    model = cls(_config_for(cls, head_mode=mode))
    names = {name for name, module in model.named_modules() if isinstance(module, StefaLandNormalizer)}
    inputs = "" if mode == "direct" else "stefaland."
    targets = "head.targets" if cls is StefaLandForTimeSeriesRegression else "targets"
    assert names == {f"{inputs}dynamic_normalizer", f"{inputs}static_normalizer", f"{targets}.normalizer"}


@pytest.mark.parametrize("cls", ALL_MODELS)
def test_return_dict_follows_the_argument_then_the_config(cls):
    model = cls(_config_for(cls)).eval()
    x, c = tiny_inputs()
    output = model(x, c)
    assert isinstance(output, ModelOutput)
    as_tuple = model(x, c, return_dict=False)
    assert isinstance(as_tuple, tuple) and all(torch.equal(a, b) for a, b in zip(as_tuple, output.to_tuple(), strict=True))
    model.config.return_dict = False  # the task models still read their backbone's output by name
    assert isinstance(model(x, c), tuple) and torch.equal(model(x, c)[0], output[0])
    assert isinstance(model(x, c, return_dict=True), ModelOutput)


@pytest.mark.parametrize("cls", ALL_MODELS)
def test_eager_and_sdpa_attention_agree(tmp_path, cls, monkeypatch):
    """attn_implementation="eager" (softmax(QK^T/sqrt(d))V written out) at construction, at load, or switched later
    gives the outputs of the default "sdpa" to float tolerance."""
    eager_calls = []
    eager = modeling_stefaland.eager_attention_forward
    monkeypatch.setattr(modeling_stefaland, "eager_attention_forward", lambda *a, **k: eager_calls.append(1) or eager(*a, **k))
    x, c = tiny_inputs()
    torch.manual_seed(0)
    sdpa_model = cls(_config_for(cls)).eval()
    assert sdpa_model.config._attn_implementation == "sdpa"
    reference = sdpa_model(x, c).to_tuple()
    assert not eager_calls
    torch.manual_seed(0)
    built = cls(_config_for(cls, attn_implementation="eager")).eval()
    sdpa_model.save_pretrained(tmp_path)
    loaded = cls.from_pretrained(tmp_path, attn_implementation="eager").eval()
    switched = cls.from_pretrained(tmp_path).eval()
    switched.set_attn_implementation("eager")
    for model in (built, loaded, switched):
        assert model.config._attn_implementation == "eager"
        calls = len(eager_calls)
        for got, want in zip(model(x, c).to_tuple(), reference, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        assert len(eager_calls) == calls + 2  # one call per encoder layer
    loaded.train()
    loaded(x, c).to_tuple()[0].float().square().mean().backward()  # dropout on the attention weights in training


@pytest.mark.parametrize("name", ["stefaland-tiny", "stefaland-base", "stefaland-original", "stefaland-conus"])
def test_model_zoo_architectures_train_attention_on_the_fused_kernel(name):
    """The zoo's one documented difference from the paper: no dropout on the attention probabilities (every other
    dropout kept), so that a training step runs SDPA's fused CPU kernel instead of its math path."""
    config = StefaLandConfig.from_pretrained(Path(__file__).resolve().parents[1] / "modeling" / name)
    assert config.attention_dropout == 0.0 and config.dropout > 0
    model = StefaLandForPretraining(config).train()
    x = torch.randn(2, 8, len(config.dynamic_variables))
    c = torch.randn(2, len(config.static_variables))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        model(x, c, dynamic_mask=torch.rand(x.shape) < 0.5).loss.backward()
    kernels = {event.key for event in profile.key_averages()}
    assert "aten::_scaled_dot_product_flash_attention_for_cpu" in kernels
    assert "aten::_scaled_dot_product_attention_math" not in kernels


def test_an_attention_implementation_stefaland_lacks_is_refused():
    with pytest.raises(ValueError, match="does not support Flash Attention"):
        StefaLandModel(tiny_config(attn_implementation="flash_attention_2"))


def test_pretraining_shapes_and_loss(config):
    x, c = tiny_inputs()
    model = StefaLandForPretraining(config).eval()
    assert model(x, c).loss is None  # nothing masked, nothing to reconstruct
    dynamic_mask = torch.zeros_like(x, dtype=torch.bool)
    dynamic_mask[:, 5:15, 0] = True
    static_mask = torch.zeros_like(c, dtype=torch.bool)
    static_mask[:, 2] = True
    out = model(x, c, dynamic_mask, static_mask)
    assert out.dynamic_reconstruction.shape == x.shape and out.static_reconstruction.shape == c.shape
    # Loss recomputed by hand from the reconstructions (z-scores) on the masked entries only.
    mean_d, std_d = torch.tensor(config.dynamic_mean), torch.tensor(config.dynamic_std)
    mean_s, std_s = torch.tensor(config.static_mean), torch.tensor(config.static_std)
    err_d = ((out.dynamic_reconstruction - x) / std_d)[dynamic_mask]
    err_s = ((out.static_reconstruction - c) / std_s)[static_mask]
    expected = 1.0 * (err_d**2).mean() + 0.5 * (err_s**2).mean()
    assert torch.allclose(out.loss, expected, atol=1e-5)


def test_masked_mse_hand_computed():
    prediction = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    target = torch.tensor([[0.0, 2.0, float("nan")], [4.0, 7.0, 100.0]])
    selected = torch.tensor([[True, True, True], [False, True, False]])
    # selected and observed: (1-0)^2, (2-2)^2, (5-7)^2 -> (1 + 0 + 4) / 3
    assert masked_mse(prediction, target, selected).item() == pytest.approx(5.0 / 3.0)
    # Changing unselected or NaN entries changes nothing.
    target2 = target.clone()
    target2[1, 0], target2[1, 2] = -50.0, 3.0
    assert masked_mse(prediction, target2, selected).item() == pytest.approx(5.0 / 3.0)


def test_nan_target_is_excluded_from_pretraining_loss(config):
    x, c = tiny_inputs()
    model = StefaLandForPretraining(config).eval()
    dynamic_mask = torch.zeros_like(x, dtype=torch.bool)
    dynamic_mask[:, 5:10, 1] = True
    x_nan = x.clone()
    x_nan[0, 7, 1] = float("nan")
    out, out_nan = model(x, c, dynamic_mask), model(x_nan, c, dynamic_mask)
    # The encoder sees a mask token either way, so the reconstructions are identical ...
    assert torch.equal(out.dynamic_reconstruction, out_nan.dynamic_reconstruction)
    # ... and the loss is the mean over the remaining masked entries.
    err = ((out.dynamic_reconstruction - x) / torch.tensor(config.dynamic_std)) ** 2
    keep = dynamic_mask.clone()
    keep[0, 7, 1] = False
    assert torch.allclose(out_nan.dynamic_loss, err[keep].mean(), atol=1e-6)


def test_all_nan_variable_equals_masked(config):
    x, c = tiny_inputs()
    model = StefaLandModel(config).eval()
    x_nan = x.clone()
    x_nan[..., 3] = float("nan")
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[..., 3] = True
    c_nan = c.clone()
    c_nan[:, 2] = float("nan")
    static_mask = torch.zeros_like(c, dtype=torch.bool)
    static_mask[:, 2] = True
    assert torch.equal(model(x_nan, c_nan).last_hidden_state, model(x, c, mask, static_mask).last_hidden_state)


@pytest.mark.parametrize("mode", ["resconn", "no_adapter", "linear_probe"])
def test_frozen_modes_leave_backbone_gradients_none(mode):
    model = StefaLandForTimeSeriesRegression(tiny_config(head_mode=mode)).train()
    x, c = tiny_inputs()
    model(x, c, labels=torch.randn(3, 40, 1)).loss.backward()
    assert all(p.grad is None for p in model.stefaland.parameters())
    assert all(p.grad is not None for p in model.head.parameters() if p.requires_grad)
    assert not model.stefaland.training  # frozen encoder runs without dropout


def test_scratch_mode_trains_backbone():
    model = StefaLandForTimeSeriesRegression(tiny_config(head_mode="scratch")).train()
    x, c = tiny_inputs()
    model(x, c, labels=torch.randn(3, 40, 1)).loss.backward()
    assert model.stefaland.layers[0].linear1.weight.grad is not None


def test_sparse_labels_only_observed_days_count():
    model = StefaLandForTimeSeriesRegression(tiny_config()).eval()
    x, c = tiny_inputs()
    labels = torch.full((3, 40, 1), float("nan"))
    labels[:, ::3] = 2.0
    out = model(x, c, labels=labels)
    expected = (((out.prediction - 2.0) / 1.5) ** 2)[:, ::3].mean()
    assert torch.allclose(out.loss, expected, atol=1e-6)


def test_coordinate_encoding_sees_shown_coordinates_only():
    """The encoding adds location to the static token, but not when the coordinates are hidden or missing: masking
    the location group in pretraining or in a zero-shot score then hid nothing."""
    config = tiny_config(coordinate_encoding="spherical_harmonics", coordinate_encoding_degree=2)
    model = StefaLandModel(config).eval()
    x, c = tiny_inputs()
    moved = c.clone()
    moved[:, 1] += 30.0
    assert not torch.allclose(model(x, c).static_hidden_state, model(x, moved).static_hidden_state)
    hidden = torch.zeros_like(c, dtype=torch.bool)
    hidden[:, :2] = True
    torch.testing.assert_close(model(x, c, static_mask=hidden).static_hidden_state, model(x, moved, static_mask=hidden).static_hidden_state)
    missing = c.clone()
    missing[:, :2] = float("nan")
    torch.testing.assert_close(model(x, missing).static_hidden_state, model(x, c, static_mask=hidden).static_hidden_state)


def test_spherical_harmonics_are_orthonormal():
    from stefaland_hf.modeling_stefaland import StefaLandSphericalHarmonics

    sh = StefaLandSphericalHarmonics(2, 4)
    lat = torch.linspace(-89.75, 89.75, 360).repeat_interleave(720)
    lon = torch.linspace(-179.75, 179.75, 720).repeat(360)
    y = sh.harmonics(lat.double(), lon.double())
    weight = torch.cos(torch.deg2rad(lat.double())) * (torch.pi / 360) * (2 * torch.pi / 720)
    gram = (y * weight[:, None]).T @ y
    assert torch.allclose(gram, torch.eye(9, dtype=torch.float64), atol=1e-3)


@pytest.mark.parametrize(
    "cls", [StefaLandModel, StefaLandForPretraining, StefaLandForTimeSeriesRegression, StefaLandForStaticRegression]
)
def test_save_load_round_trip(tmp_path, cls):
    config = tiny_config(target_variables=["sand_fraction"], target_mean=[0.4], target_std=[0.1]) if cls is StefaLandForStaticRegression else tiny_config()
    model = cls(config).eval()
    x, c = tiny_inputs()
    model.save_pretrained(tmp_path)
    loaded = cls.from_pretrained(tmp_path).eval()
    assert torch.equal(model(x, c)[0], loaded(x, c)[0])
    assert (tmp_path / "model.safetensors").exists() and not list(tmp_path.glob("*.bin"))


def test_auto_classes(tmp_path, config):
    StefaLandForPretraining(config).save_pretrained(tmp_path)  # a base: each Auto class loads it without a gap
    assert isinstance(AutoConfig.from_pretrained(tmp_path), StefaLandConfig)
    assert isinstance(AutoModel.from_pretrained(tmp_path), StefaLandModel)
    assert isinstance(AutoModelForPreTraining.from_pretrained(tmp_path), StefaLandForPretraining)
    assert isinstance(AutoModelForTimeSeriesPrediction.from_pretrained(tmp_path), StefaLandForTimeSeriesRegression)


def test_backbone_weights_carry_into_task_model(tmp_path, config):
    pretrain = StefaLandForPretraining(config)
    pretrain.save_pretrained(tmp_path)
    task = StefaLandForTimeSeriesRegression.from_pretrained(tmp_path)
    assert torch.equal(task.stefaland.position_embedding, pretrain.stefaland.position_embedding)


def test_remote_code_loads_without_package(tmp_path, config):
    """Saved folders carry their code: the Auto classes of their auto_map, and StefaLandForStaticRegression (which has
    no Auto class) through transformers' get_class_from_dynamic_module."""
    model = StefaLandForTimeSeriesRegression(config).eval()
    static = StefaLandForStaticRegression(_config_for(StefaLandForStaticRegression)).eval()
    x, c = tiny_inputs()
    model.save_pretrained(tmp_path / "model")
    static.save_pretrained(tmp_path / "static")
    torch.save({"x": x, "c": c, "y": model(x, c).prediction, "s": static(x, c).prediction}, tmp_path / "io.pt")
    code = WITHOUT_PACKAGE + textwrap.dedent(
        f"""
        import torch
        from transformers import AutoModel, AutoModelForTimeSeriesPrediction
        io = torch.load({str(tmp_path / "io.pt")!r})
        model = AutoModelForTimeSeriesPrediction.from_pretrained({str(tmp_path / "model")!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        assert torch.equal(model(io["x"], io["c"]).prediction, io["y"])
        backbone = AutoModel.from_pretrained({str(tmp_path / "model")!r}, trust_remote_code=True)
        from transformers.dynamic_module_utils import get_class_from_dynamic_module
        static_class = get_class_from_dynamic_module("modeling_stefaland.StefaLandForStaticRegression", {str(tmp_path / "static")!r})
        static = static_class.from_pretrained({str(tmp_path / "static")!r}).eval()
        assert torch.equal(static(io["x"], io["c"]).prediction, io["s"])
        encoder = AutoModel.from_pretrained({str(tmp_path / "static")!r}, trust_remote_code=True)
        assert "stefaland_hf" not in sys.modules
        print("REMOTE-OK", type(backbone).__name__, type(encoder).__name__)
        """
    )
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert "REMOTE-OK StefaLandModel StefaLandModel" in result.stdout, result.stderr[-3000:]


# ------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------
def test_unknown_variable_name():
    with pytest.raises(ValueError, match="dynamic_variables: unknown variable 'precip'.*'precipitation'"):
        tiny_config(dynamic_variables=["precip"], dynamic_mean=None, dynamic_std=None, dynamic_groups={})


def test_config_validation_messages():
    with pytest.raises(ValueError, match="static_groups\\['soil'\\]: 'ndvi' is not one of"):
        tiny_config(static_groups={"soil": ["ndvi"]})
    with pytest.raises(ValueError, match="dynamic_mean has 3 values, expected 4"):
        tiny_config(dynamic_mean=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="head_mode must be one of"):
        tiny_config(head_mode="lora")
    with pytest.raises(ValueError, match="hidden_static_variables: 'precipitation' is not one of the static variables"):
        tiny_config(hidden_static_variables=["precipitation"])


def test_wrong_rank_and_variable_count(config):
    model = StefaLandModel(config)
    x, c = tiny_inputs()
    with pytest.raises(ValueError, match=r"x_dynamic: expected shape \[batch, time, 4\].*got \(3, 40\)"):
        model(x[..., 0], c)
    with pytest.raises(ValueError, match=r"x_dynamic: expected shape \[batch, time, 4\].*got \(3, 40, 3\)"):
        model(x[..., :3], c)
    with pytest.raises(ValueError, match=r"x_static: expected shape \[3, 8\]"):
        model(x, c[:, :5])
    with pytest.raises(ValueError, match=r"dynamic_mask: expected shape"):
        model(x, c, dynamic_mask=torch.zeros(3, 40, 2, dtype=torch.bool))


def test_sequence_longer_than_position_table(config):
    x, c = tiny_inputs(length=64)
    with pytest.raises(ValueError, match="exceeds max_position_embeddings=64"):
        StefaLandModel(config)(x, c)


def test_labels_shape_checked(config):
    x, c = tiny_inputs()
    with pytest.raises(ValueError, match=r"labels: expected shape \(3, 40, 1\)"):
        StefaLandForTimeSeriesRegression(config)(x, c, labels=torch.zeros(3, 40))


def test_checkpoint_variable_mismatch_is_an_error(tmp_path, config):
    StefaLandModel(config).save_pretrained(tmp_path)
    reordered = list(reversed(config.dynamic_variables))
    with pytest.raises(ValueError, match="dynamic_variables: the checkpoint"):
        StefaLandModel.from_pretrained(tmp_path, dynamic_variables=reordered, dynamic_mean=None, dynamic_std=None, dynamic_groups={})
    fewer = tiny_config(static_variables=config.static_variables[:-1], static_mean=None, static_std=None, never_mask_variables=[])
    with pytest.raises(ValueError, match="static_variables: the checkpoint .* but the config passed to from_pretrained"):
        StefaLandModel.from_pretrained(tmp_path, config=fewer)


def test_gradient_checkpointing_matches(config):
    torch.manual_seed(0)
    model = StefaLandForTimeSeriesRegression(tiny_config(head_mode="scratch", dropout=0.0, head_dropout=0.0, adapter_dropout=0.0)).train()
    x, c = tiny_inputs()
    labels = torch.randn(3, 40, 1)
    model(x, c, labels=labels).loss.backward()
    reference = model.stefaland.layers[0].linear1.weight.grad.clone()
    model.zero_grad()
    model.activation_checkpointing_enable()
    model(x, c, labels=labels).loss.backward()
    assert torch.allclose(model.stefaland.layers[0].linear1.weight.grad, reference, atol=1e-6)


def test_streamflow_predictions_respect_its_physical_range():
    """A head whose raw output lies far below zero (target mean -5 mm/day): clamp and softplus return streamflow
    >= 0; clamp's loss is the raw output's (a clipped output has no gradient), softplus's is the mapped output's."""
    x, c = tiny_inputs()
    labels = torch.full((3, 40, 1), 0.5)
    outputs = {}
    for transform in ("none", "clamp", "softplus"):
        torch.manual_seed(0)
        config = tiny_config(head_mode="direct", output_transform=transform, target_mean=[-5.0], target_std=[1.0])
        outputs[transform] = StefaLandForTimeSeriesRegression(config)(x_dynamic=x, x_static=c, labels=labels)
    raw = outputs["none"].prediction
    assert (raw < 0).all()
    assert torch.equal(outputs["clamp"].prediction, raw.clamp(min=0.0)) and torch.equal(outputs["clamp"].loss, outputs["none"].loss)
    softplus = outputs["softplus"].prediction
    assert (softplus > 0).all() and torch.allclose(softplus, torch.nn.functional.softplus(raw))
    torch.testing.assert_close(outputs["softplus"].loss, ((softplus - (-5.0)) / 1.0 - (0.5 + 5.0)).pow(2).mean())


def test_an_unknown_output_transform_is_refused():
    with pytest.raises(ValueError, match="output_transform must be one of"):
        tiny_config(output_transform="relu")


@pytest.mark.parametrize("mode", ["direct", "resconn"])
def test_a_masked_input_reaches_no_part_of_a_task_model(mode):
    """Masks hid values from the backbone only: the head's raw-input path still read them."""
    model = StefaLandForTimeSeriesRegression(tiny_config(head_mode=mode)).eval()
    x, c = tiny_inputs()
    dynamic_mask = torch.zeros_like(x, dtype=torch.bool)
    dynamic_mask[:, :, 0] = True
    static_mask = torch.zeros_like(c, dtype=torch.bool)
    static_mask[:, 3] = True
    moved_x, moved_c = x.clone(), c.clone()
    moved_x[:, :, 0] += 5.0
    moved_c[:, 3] += 5.0
    a = model(x, c, dynamic_mask=dynamic_mask, static_mask=static_mask).prediction
    b = model(moved_x, moved_c, dynamic_mask=dynamic_mask, static_mask=static_mask).prediction
    torch.testing.assert_close(a, b)


def test_a_target_among_the_dynamic_inputs_is_refused():
    config = tiny_config()
    with pytest.raises(ValueError, match=r"target_variables \['precipitation'\] are also dynamic_variables"):
        StefaLandForTimeSeriesRegression(tiny_config(target_variables=["precipitation"], target_mean=[1.0], target_std=[1.0]))
    assert "streamflow" not in config.dynamic_variables
