"""Regression tests for the resConn PEFT method (it relies on PEFT's private mapping tables; peft is pinned)."""

import json

import pytest
import torch
from conftest import tiny_config, tiny_inputs
from peft import LoraConfig, PeftConfig, PeftModel, get_peft_model
from safetensors.torch import load_file

from stefaland_hf import ResConnConfig, StefaLandForTimeSeriesRegression
from stefaland_hf.peft_adapters import ResConnLayer


def _base():
    torch.manual_seed(0)
    return StefaLandForTimeSeriesRegression(tiny_config())


def _train_a_little(model, labels_dim=1, steps=3):
    x, c = tiny_inputs()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = model(x_dynamic=x, x_static=c, labels=torch.randn(3, 40, labels_dim)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


def test_only_adapter_parameters_train():
    model = get_peft_model(_base(), ResConnConfig(target_mean=[1.0], target_std=[2.0], head_hidden_size=12))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".resconn_heads.default." in n for n in trainable)
    trainable_count, total = model.get_nb_trainable_parameters()
    assert 0 < trainable_count < total
    _train_a_little(model)
    assert all(p.grad is None for n, p in model.named_parameters() if "resconn_heads" not in n)


def test_save_writes_only_the_adapter_and_reload_is_exact(tmp_path):
    config = ResConnConfig(target_mean=[1.0], target_std=[2.0], head_hidden_size=12)
    model = _train_a_little(get_peft_model(_base(), config))
    x, c = tiny_inputs(seed=5)
    expected = model(x_dynamic=x, x_static=c).prediction
    model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "adapter_model.safetensors")
    assert weights and all("resconn_heads" in k for k in weights)
    assert not any("stefaland." in k for k in weights)
    saved = json.loads((tmp_path / "adapter_config.json").read_text())
    assert saved["peft_type"] == "RESCONN" and saved["target_mean"] == [1.0]
    assert isinstance(PeftConfig.from_pretrained(tmp_path), ResConnConfig)
    reloaded = PeftModel.from_pretrained(_base(), tmp_path).eval()
    assert torch.equal(reloaded(x_dynamic=x, x_static=c).prediction, expected)


def test_merge_and_unload_makes_a_complete_model_that_loads_without_peft(tmp_path):
    from transformers import AutoModelForTimeSeriesPrediction

    config = ResConnConfig(target_mean=[1.0], target_std=[2.0], head_hidden_size=12, output_distribution="cmal", mixture_components=2)
    model = _train_a_little(get_peft_model(_base(), config))
    x, c = tiny_inputs(seed=5)
    expected = model(x_dynamic=x, x_static=c).prediction
    complete = model.merge_and_unload()
    assert type(complete) is StefaLandForTimeSeriesRegression and not isinstance(complete.head, ResConnLayer)
    assert complete.config.target_mean == [1.0] and complete.config.output_distribution == "cmal"
    assert complete.config.head_hidden_size == 12 and complete.config.mixture_components == 2
    assert torch.equal(complete(x_dynamic=x, x_static=c).prediction, expected)
    complete.save_pretrained(tmp_path)
    for loader in (StefaLandForTimeSeriesRegression, AutoModelForTimeSeriesPrediction):
        reloaded = loader.from_pretrained(tmp_path).eval()
        assert torch.equal(reloaded(x_dynamic=x, x_static=c).prediction, expected)
    with pytest.raises(ValueError, match="output_distribution"):  # a distributional model is not a point model
        StefaLandForTimeSeriesRegression.from_pretrained(tmp_path, output_distribution="none")


def test_merge_and_unload_needs_the_active_adapter():
    model = get_peft_model(_base(), ResConnConfig(target_mean=[1.0], target_std=[2.0], head_hidden_size=12), adapter_name="a")
    model.add_adapter("b", ResConnConfig(target_mean=[3.0], target_std=[1.0], head_hidden_size=12))
    with pytest.raises(ValueError, match="the active one \\('a'\\), not \\['b'\\]"):
        model.merge_and_unload(adapter_names=["b"])
    with model.disable_adapter(), pytest.raises(ValueError, match="no active resConn adapter"):
        model.merge_and_unload()


def test_two_task_adapters_switch_and_disable(tmp_path):
    base = _base().eval()
    x, c = tiny_inputs()
    base_out = base(x, c).prediction.clone()
    model = get_peft_model(base, ResConnConfig(target_variables=["streamflow"], target_mean=[1.0], target_std=[2.0], head_hidden_size=12), adapter_name="streamflow")
    model.add_adapter("soil_moisture", ResConnConfig(target_variables=["soil_moisture"], target_mean=[0.25], target_std=[0.08], head_mode="no_adapter", head_hidden_size=8))
    model.eval()
    model.set_adapter("streamflow")
    flow = model(x_dynamic=x, x_static=c).prediction
    model.set_adapter("soil_moisture")
    soil = model(x_dynamic=x, x_static=c).prediction
    assert flow.shape == soil.shape == (3, 40, 1)
    assert not torch.allclose(flow, soil)
    assert abs(soil.mean().item() - 0.25) < abs(flow.mean().item() - 0.25)  # each head carries its own units
    with model.disable_adapter():
        assert torch.equal(model(x_dynamic=x, x_static=c).prediction, base_out)
    layer = model.base_model.model.head
    assert isinstance(layer, ResConnLayer) and set(layer.resconn_heads) == {"streamflow", "soil_moisture"}
    model.save_pretrained(tmp_path)
    assert (tmp_path / "soil_moisture" / "adapter_model.safetensors").exists()


def test_lora_on_encoder():
    base = _base()
    config = LoraConfig(r=4, target_modules=["in_proj", "out_proj", "linear1", "linear2"], modules_to_save=["head"])
    model = get_peft_model(base, config)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("lora_A" in n for n in trainable) and any("head" in n for n in trainable)
    _train_a_little(model)
    lora = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert any(p.abs().sum() > 0 for p in lora)


def test_wrong_target_module_is_a_clear_error():
    with pytest.raises(ValueError, match="ResConnConfig.target_modules"):
        get_peft_model(_base(), ResConnConfig(target_modules=["output_projection"]))


def test_adapter_config_validation():
    with pytest.raises(ValueError, match="target_mean has 2 values, expected 1"):
        ResConnConfig(target_mean=[1.0, 2.0], target_std=[1.0])
    with pytest.raises(ValueError, match="unknown variable 'flow'"):
        ResConnConfig(target_variables=["flow"])


def test_an_adapter_saved_under_a_name_loads_under_any_name_with_its_weights(tmp_path):
    model = get_peft_model(_base(), ResConnConfig(target_variables=["streamflow"], target_mean=[1.0], target_std=[1.5]), adapter_name="streamflow")
    _train_a_little(model)
    trained = {k.replace(".streamflow.", "."): v.detach().clone() for k, v in model.named_parameters() if ".streamflow." in k}
    model.save_pretrained(tmp_path / "adapters")  # a named adapter goes to adapters/streamflow
    assert not any(".streamflow." in key for key in load_file(tmp_path / "adapters" / "streamflow" / "adapter_model.safetensors"))
    for name in (None, "streamflow", "flow"):
        kwargs = {} if name is None else {"adapter_name": name}
        loaded = PeftModel.from_pretrained(_base(), tmp_path / "adapters" / "streamflow", **kwargs)
        tag = f".{name or 'default'}."
        weights = {k.replace(tag, "."): v for k, v in loaded.named_parameters() if tag in k}
        assert weights.keys() == trained.keys() and all(torch.equal(weights[k], trained[k]) for k in trained), name


def test_an_adapter_checkpoint_missing_tensors_is_refused(tmp_path):
    from safetensors.torch import save_file

    model = get_peft_model(_base(), ResConnConfig(target_variables=["streamflow"], target_mean=[1.0], target_std=[1.5]))
    model.save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "adapter_model.safetensors")
    save_file({k: v for k, v in tensors.items() if "lstm" not in k}, tmp_path / "adapter_model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"resConn adapter 'default': the checkpoint lacks \d+ of its \d+ tensors"):
        PeftModel.from_pretrained(_base(), tmp_path)


def test_auto_peft_model_builds_the_base_from_the_adapter_config(tmp_path):
    """adapter_config.json names transformers' AutoModelForTimeSeriesPrediction (inside PEFT's import allowlist) and
    the base folder; a pretrained encoder base names no targets, so AutoPeftModel is given the adapter's."""
    from peft import AutoPeftModel

    from stefaland_hf import StefaLandForPretraining

    StefaLandForPretraining(tiny_config(target_variables=None, target_mean=None, target_std=None)).save_pretrained(tmp_path / "base")
    base = StefaLandForTimeSeriesRegression.from_pretrained(tmp_path / "base", target_variables=["streamflow"])
    model = _train_a_little(get_peft_model(base, ResConnConfig(target_mean=[1.0], target_std=[2.0], head_hidden_size=12)))
    model.save_pretrained(tmp_path / "adapter")
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert saved["auto_mapping"] == {"base_model_class": "AutoModelForTimeSeriesPrediction", "parent_library": "transformers"}
    assert saved["base_model_name_or_path"] == str(tmp_path / "base")
    x, c = tiny_inputs(seed=5)
    with pytest.raises(ValueError, match="target_variables"):
        AutoPeftModel.from_pretrained(str(tmp_path / "adapter"))
    loaded = AutoPeftModel.from_pretrained(str(tmp_path / "adapter"), target_variables=["streamflow"]).eval()
    assert torch.equal(loaded(x_dynamic=x, x_static=c).prediction, model(x_dynamic=x, x_static=c).prediction)


def test_an_adapter_is_refused_on_another_base(tmp_path):
    """The adapter records its base's variable order and encoder fingerprint; PEFT alone loaded it onto any base of the
    same shapes (other weights, or the inputs in another order), which then predicts nonsense without a warning."""
    model = _train_a_little(get_peft_model(_base(), ResConnConfig(target_mean=[1.0], target_std=[2.0], head_hidden_size=12)))
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "adapter_config.json").read_text())
    assert saved["base_dynamic_variables"] == list(tiny_config().dynamic_variables) and len(saved["base_fingerprint"]) == 64
    torch.manual_seed(1)
    with pytest.raises(ValueError, match="trained on another base model: its base_fingerprint"):
        PeftModel.from_pretrained(StefaLandForTimeSeriesRegression(tiny_config()), tmp_path)
    config = tiny_config()
    reordered = tiny_config(dynamic_variables=list(reversed(config.dynamic_variables)), dynamic_mean=None, dynamic_std=None, dynamic_groups={})
    with pytest.raises(ValueError, match="its base_dynamic_variables"):
        PeftModel.from_pretrained(StefaLandForTimeSeriesRegression(reordered), tmp_path)
    for name in ("base_dynamic_variables", "base_static_variables", "base_fingerprint"):
        saved.pop(name)  # an adapter saved before these were recorded still loads (nothing to check it against)
    (tmp_path / "adapter_config.json").write_text(json.dumps(saved))
    x, c = tiny_inputs(seed=5)
    assert torch.equal(PeftModel.from_pretrained(_base(), tmp_path).eval()(x_dynamic=x, x_static=c).prediction, model(x_dynamic=x, x_static=c).prediction)


@pytest.mark.parametrize(
    "field, value",
    [("target_mean", [3.0]), ("target_std", [5.0]), ("output_transform", "none"), ("head_mode", "no_adapter"), ("head_hidden_size", 20),
     ("embedding_adds_static", True)],
)
def test_edited_adapter_config_is_refused_naming_the_field(tmp_path, field, value):
    """Fields of adapter_config.json that change predictions loaded silently (issue 31: 0.85 -> 3.77 mm/day); they are
    bound to the weights (the head's adapter_binding tensor in adapter_model.safetensors) and checked on load."""
    model = _train_a_little(get_peft_model(_base(), ResConnConfig(target_mean=[1.0], target_std=[2.0], head_hidden_size=12)))
    model.save_pretrained(tmp_path)
    assert any(key.endswith("adapter_binding") for key in load_file(tmp_path / "adapter_model.safetensors"))
    saved = json.loads((tmp_path / "adapter_config.json").read_text())
    (tmp_path / "adapter_config.json").write_text(json.dumps({**saved, field: value}))
    with pytest.raises(ValueError, match=rf"resConn adapter 'default': {field} is .* but the adapter's weights .* were saved with .*accept_changed"):
        PeftModel.from_pretrained(_base(), tmp_path)


def test_an_accepted_adapter_change_loads_with_a_warning_and_is_bound_when_saved_again(tmp_path, caplog):
    model = _train_a_little(get_peft_model(_base(), ResConnConfig(target_mean=[1.0], target_std=[2.0], head_hidden_size=12)))
    model.save_pretrained(tmp_path / "a")
    saved = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    (tmp_path / "a" / "adapter_config.json").write_text(json.dumps({**saved, "target_std": [4.0], "accept_changed": ["target_std"]}))
    x, c = tiny_inputs(seed=5)
    with caplog.at_level("WARNING"):
        loaded = PeftModel.from_pretrained(_base(), tmp_path / "a").eval()
    assert "accepted by accept_changed" in caplog.text
    before, after = model(x_dynamic=x, x_static=c).prediction, loaded(x_dynamic=x, x_static=c).prediction
    assert not torch.equal(before, after)
    loaded.save_pretrained(tmp_path / "b")
    assert json.loads((tmp_path / "b" / "adapter_config.json").read_text())["accept_changed"] is None
    assert torch.equal(PeftModel.from_pretrained(_base(), tmp_path / "b").eval()(x_dynamic=x, x_static=c).prediction, after)


def test_an_adapter_on_a_base_built_for_other_targets_is_refused(tmp_path):
    """AutoPeftModel.from_pretrained(..., target_variables=["soil_moisture"]) on a streamflow adapter loaded and the
    base config labelled streamflow as soil moisture."""
    from peft import AutoPeftModel

    from stefaland_hf import StefaLandForPretraining

    StefaLandForPretraining(tiny_config(target_variables=None, target_mean=None, target_std=None)).save_pretrained(tmp_path / "base")
    base = StefaLandForTimeSeriesRegression.from_pretrained(tmp_path / "base", target_variables=["streamflow"])
    get_peft_model(base, ResConnConfig(target_mean=[1.0], target_std=[2.0], head_hidden_size=12)).save_pretrained(tmp_path / "adapter")
    with pytest.raises(ValueError, match=r"predicts \['streamflow'\], but the base model was built with target_variables=\['soil_moisture'\]"):
        AutoPeftModel.from_pretrained(str(tmp_path / "adapter"), target_variables=["soil_moisture"])


def test_a_truncated_adapter_file_names_the_file(tmp_path):
    get_peft_model(_base(), ResConnConfig(target_mean=[1.0], target_std=[2.0])).save_pretrained(tmp_path)
    data = (tmp_path / "adapter_model.safetensors").read_bytes()
    (tmp_path / "adapter_model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match=r"adapter_model.safetensors: not a readable safetensors file .* delete it and save or download it again"):
        PeftModel.from_pretrained(_base(), tmp_path)


def test_an_adapter_saved_before_binding_loads_with_a_warning(tmp_path, caplog):
    from safetensors.torch import save_file

    model = _train_a_little(get_peft_model(_base(), ResConnConfig(target_mean=[1.0], target_std=[2.0], head_hidden_size=12)))
    model.save_pretrained(tmp_path)
    tensors = {k: v for k, v in load_file(tmp_path / "adapter_model.safetensors").items() if not k.endswith("adapter_binding")}
    save_file(tensors, tmp_path / "adapter_model.safetensors", metadata={"format": "pt"})
    x, c = tiny_inputs(seed=5)
    with caplog.at_level("WARNING"):
        loaded = PeftModel.from_pretrained(_base(), tmp_path).eval()
    assert "carries no binding" in caplog.text
    assert torch.equal(loaded(x_dynamic=x, x_static=c).prediction, model(x_dynamic=x, x_static=c).prediction)


def test_an_adapter_that_adds_the_static_token_reads_it_and_reloads_exactly(tmp_path):
    """embedding_adds_static (the authors' follow-up variant): E_t + the static token's state, per adapter."""
    x, c = tiny_inputs(seed=5)
    plain = get_peft_model(_base(), ResConnConfig(target_mean=[1.0], target_std=[2.0], head_hidden_size=12)).eval()
    model = _train_a_little(get_peft_model(_base(), ResConnConfig(target_mean=[1.0], target_std=[2.0], head_hidden_size=12,
                                                                  embedding_adds_static=True)))
    encoder = model.get_base_model().stefaland(x, c, return_dict=True)
    expected_embedding = encoder.dynamic_hidden_state + encoder.static_hidden_state[:, None]
    assert torch.equal(model.get_base_model().embed(x, c), expected_embedding)
    assert torch.equal(plain.get_base_model().embed(x, c), encoder.dynamic_hidden_state)
    expected = model(x_dynamic=x, x_static=c).prediction
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "adapter_config.json").read_text())["embedding_adds_static"] is True
    reloaded = PeftModel.from_pretrained(_base(), tmp_path).eval()
    assert torch.equal(reloaded(x_dynamic=x, x_static=c).prediction, expected)
    complete = model.merge_and_unload()
    assert complete.config.embedding_adds_static and torch.equal(complete(x_dynamic=x, x_static=c).prediction, expected)
    complete.save_pretrained(tmp_path / "complete")
    with pytest.raises(ValueError, match="embedding_adds_static"):  # bound to the weights: an edit would change predictions
        StefaLandForTimeSeriesRegression.from_pretrained(tmp_path / "complete", embedding_adds_static=False)
