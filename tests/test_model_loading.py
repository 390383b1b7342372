"""Loading cannot lie: variables bound to weights, strict tensors, named file errors, half precision, numpy inputs."""

import json
import logging

import pytest
import torch
import transformers
from conftest import tiny_config, tiny_inputs
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from stefaland_hf import (
    StefaLandConfig,
    StefaLandForPretraining,
    StefaLandForStaticRegression,
    StefaLandForTimeSeriesRegression,
    StefaLandModel,
)

STATIC_TARGETS = dict(target_variables=["sand_fraction"], target_mean=[0.4], target_std=[0.1])


def _save(cls, path, **overrides):
    config = tiny_config(**{**(STATIC_TARGETS if cls is StefaLandForStaticRegression else {}), **overrides})
    torch.manual_seed(0)
    model = cls(config).eval()
    model.save_pretrained(path)
    return model


def _edit_config(path, **changes):
    config = json.loads((path / "config.json").read_text())
    config.update(changes)
    (path / "config.json").write_text(json.dumps(config))


def _rewrite_weights(path, drop=(), add=None, metadata=None):
    """Rewrite model.safetensors without some tensors / with extra ones / with other metadata."""
    file = path / "model.safetensors"
    with safe_open(file, framework="pt") as handle:
        kept_metadata = handle.metadata()
    tensors = {k: v for k, v in load_file(file).items() if k not in drop}
    save_file({**tensors, **(add or {})}, file, metadata=kept_metadata if metadata is None else metadata)


def _metadata(path):
    with safe_open(path / "model.safetensors", framework="pt") as handle:
        return handle.metadata()


# ------------------------------------------------------------------------------------------------
# variables and statistics are bound to the weights
# ------------------------------------------------------------------------------------------------
def test_save_binds_variables_and_statistics_in_the_safetensors_metadata(tmp_path):
    model = _save(StefaLandForTimeSeriesRegression, tmp_path / "task")
    metadata = _metadata(tmp_path / "task")
    assert metadata["format"] == "pt"
    assert json.loads(metadata["stefaland.architecture"]) == "StefaLandForTimeSeriesRegression"
    for field in ("dynamic_variables", "static_variables", "dynamic_mean", "static_std", "target_variables", "target_std"):
        assert json.loads(metadata[f"stefaland.{field}"]) == getattr(model.config, field), field
    # still a plain safetensors file holding exactly the model's tensors
    saved = load_file(tmp_path / "task" / "model.safetensors")
    assert saved.keys() == model.state_dict().keys()
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    # a base encoder binds no targets: its heads are trained later, for whatever targets
    _save(StefaLandForPretraining, tmp_path / "base")
    assert not any("target" in key for key in _metadata(tmp_path / "base"))


def test_swapped_variables_in_config_json_are_refused(tmp_path):
    model = _save(StefaLandForTimeSeriesRegression, tmp_path)
    swapped = list(model.config.dynamic_variables)
    swapped[1], swapped[2] = swapped[2], swapped[1]
    _edit_config(tmp_path, dynamic_variables=swapped)
    with pytest.raises(ValueError) as error:
        StefaLandForTimeSeriesRegression.from_pretrained(tmp_path)
    message = str(error.value)
    assert message.startswith(f"dynamic_variables: the checkpoint {tmp_path / 'model.safetensors'} was saved with ")
    assert json.dumps(model.config.dynamic_variables) in message and json.dumps(swapped) in message
    assert f"config.json ({tmp_path / 'config.json'})" in message


def test_null_statistics_in_config_json_are_refused(tmp_path):
    _save(StefaLandForPretraining, tmp_path)
    _edit_config(tmp_path, static_mean=None, static_std=None)
    with pytest.raises(ValueError, match=r"static_mean: the checkpoint .* was saved with \[40\.0, -100\.0, .*\], but config\.json .* has null"):
        StefaLandForPretraining.from_pretrained(tmp_path)


def test_statistics_override_is_refused_and_blames_the_override(tmp_path):
    _save(StefaLandModel, tmp_path)
    expected = r"dynamic_std: .* but the config passed to from_pretrained \(config= or keyword arguments\) has \[1\.0, 1\.0, 1\.0, 1\.0\]"
    with pytest.raises(ValueError, match=expected):
        StefaLandModel.from_pretrained(tmp_path, dynamic_std=[1.0, 1.0, 1.0, 1.0])


def test_targets_are_bound_where_the_head_comes_from_the_checkpoint(tmp_path):
    _save(StefaLandForTimeSeriesRegression, tmp_path / "task")
    with pytest.raises(ValueError, match=r"target_mean: the checkpoint .* saved with \[1\.0\], but the config passed .* has \[9\.0\]"):
        StefaLandForTimeSeriesRegression.from_pretrained(tmp_path / "task", target_mean=[9.0])
    with pytest.raises(ValueError, match=r"target_variables: .* \[\"streamflow\"\].* \[\"soil_moisture\"\]; this head predicts the saved targets"):
        StefaLandForTimeSeriesRegression.from_pretrained(tmp_path / "task", target_variables=["soil_moisture"])
    # A new head on a base encoder takes whatever targets it is given.
    _save(StefaLandForPretraining, tmp_path / "base")
    model = StefaLandForTimeSeriesRegression.from_pretrained(
        tmp_path / "base", target_variables=["soil_moisture"], target_mean=[0.2], target_std=[0.1]
    )
    assert model.config.target_variables == ["soil_moisture"]


@pytest.mark.parametrize("field, value", [("num_attention_heads", 4), ("pre_norm", True), ("activation", "gelu"), ("layer_norm_eps", 1e-6)])
def test_settings_that_keep_tensor_shapes_are_bound_too(tmp_path, field, value):
    """Another head count or norm placement loads every tensor and computes something else."""
    _save(StefaLandForPretraining, tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text()).get(field, getattr(StefaLandConfig(), field))
    _edit_config(tmp_path, **{field: value})
    with pytest.raises(ValueError) as error:
        StefaLandForTimeSeriesRegression.from_pretrained(tmp_path)
    assert str(error.value).startswith(
        f"{field}: the checkpoint {tmp_path / 'model.safetensors'} was saved with {json.dumps(saved)}, but config.json "
        f"({tmp_path / 'config.json'}) has {json.dumps(value)}; it changes what the weights compute"
    )


def test_checkpoint_without_binding_loads_checked_against_config_json(tmp_path, load_warnings):
    """Files saved before the binding load as before, with one warning; config.json is then the reference."""
    model = _save(StefaLandForTimeSeriesRegression, tmp_path)
    _rewrite_weights(tmp_path, metadata={"format": "pt"})
    x, c = tiny_inputs()
    loaded = StefaLandForTimeSeriesRegression.from_pretrained(tmp_path).eval()
    assert torch.equal(loaded(x, c).prediction, model(x, c).prediction)
    assert [r.getMessage() for r in load_warnings] == [
        f"{tmp_path / 'model.safetensors'} carries no StefaLand variable binding (saved before stefaland_hf stored "
        "variables and normalization in the weights' metadata): its variables and statistics are checked against "
        "config.json only, which cannot reveal an edited config.json. save_pretrained it again to bind them."
    ]
    with pytest.raises(ValueError, match=r"static_variables: the checkpoint .* but the config passed to from_pretrained"):
        StefaLandForTimeSeriesRegression.from_pretrained(
            tmp_path, static_variables=list(reversed(model.config.static_variables)), static_mean=None, static_std=None, static_groups={}
        )
    # Saving it again binds it: the same edit of config.json is now caught.
    loaded.save_pretrained(tmp_path / "resaved")
    _edit_config(tmp_path / "resaved", dynamic_mean=None, dynamic_std=None)
    with pytest.raises(ValueError, match="dynamic_mean: the checkpoint"):
        StefaLandForTimeSeriesRegression.from_pretrained(tmp_path / "resaved")


def test_identity_normalization_is_bound_too(tmp_path, load_warnings):
    """A model saved without statistics (e.g. converted without --stats) loads quietly, and refuses added ones."""
    _save(StefaLandForPretraining, tmp_path, dynamic_mean=None, dynamic_std=None, static_mean=None, static_std=None)
    assert json.loads(_metadata(tmp_path)["stefaland.dynamic_mean"]) is None
    assert StefaLandForPretraining.from_pretrained(tmp_path).config.dynamic_mean is None
    assert load_warnings == []
    with pytest.raises(ValueError, match=r"dynamic_mean: the checkpoint .* was saved with null, but the config passed"):
        StefaLandForPretraining.from_pretrained(tmp_path, dynamic_mean=[0.0] * 4, dynamic_std=[1.0] * 4)


def test_sharded_checkpoint_is_bound_in_every_shard(tmp_path):
    torch.manual_seed(0)
    model = StefaLandForPretraining(tiny_config()).eval()
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    shards = sorted(tmp_path.glob("model-*.safetensors"))
    assert len(shards) > 1 and not (tmp_path / "model.safetensors").exists()
    for shard in shards:
        with safe_open(shard, framework="pt") as handle:
            assert json.loads(handle.metadata()["stefaland.dynamic_variables"]) == model.config.dynamic_variables
    x, c = tiny_inputs()
    loaded = StefaLandForPretraining.from_pretrained(tmp_path).eval()
    assert torch.equal(loaded(x, c).dynamic_reconstruction, model(x, c).dynamic_reconstruction)
    _edit_config(tmp_path, static_variables=list(reversed(model.config.static_variables)), static_groups={}, never_mask_variables=[])
    with pytest.raises(ValueError, match="static_variables: the checkpoint .*model-00001-of-"):
        StefaLandForPretraining.from_pretrained(tmp_path)


def test_save_pretrained_push_to_hub_pushes_a_bound_save(tmp_path, monkeypatch):
    """save_pretrained(push_to_hub=True) must not upload before the binding is written: it goes through push_to_hub."""
    pushed = {}

    def fake_push(self, repo_id, **kwargs):
        pushed.update(repo_id=repo_id, **kwargs, bound="stefaland.dynamic_variables" in _metadata(tmp_path))

    monkeypatch.setattr(StefaLandModel, "push_to_hub", fake_push)
    StefaLandModel(tiny_config()).save_pretrained(tmp_path, push_to_hub=True, repo_id="org/tiny", commit_message="add model")
    assert pushed == {"repo_id": "org/tiny", "token": None, "commit_message": "add model", "bound": True}


# ------------------------------------------------------------------------------------------------
# missing and unexpected tensors
# ------------------------------------------------------------------------------------------------
def test_deleted_tensor_is_an_error_naming_it(tmp_path):
    _save(StefaLandForTimeSeriesRegression, tmp_path)
    _rewrite_weights(tmp_path, drop={"head.lstm.weight_hh_l0"})
    with pytest.raises(ValueError) as error:
        StefaLandForTimeSeriesRegression.from_pretrained(tmp_path)
    assert str(error.value).startswith(
        f"{tmp_path / 'model.safetensors'}: cannot load this StefaLandForTimeSeriesRegression as a "
        "StefaLandForTimeSeriesRegression: 1 tensor(s) the model needs are not in it and would stay random: head.lstm.weight_hh_l0. "
        "The file is incomplete"
    )


def test_extra_tensor_is_an_error_naming_it(tmp_path):
    _save(StefaLandModel, tmp_path)
    _rewrite_weights(tmp_path, add={"layers.7.linear1.weight": torch.zeros(2, 2)})
    with pytest.raises(ValueError, match=r"1 tensor\(s\) in it have no place in the model and would be ignored: layers\.7\.linear1\.weight"):
        StefaLandModel.from_pretrained(tmp_path)


def test_config_json_that_drops_a_part_of_the_architecture_is_refused(tmp_path):
    """Unexpected tensors of the backbone are never 'the other class's head', not even for StefaLandModel."""
    _save(StefaLandForPretraining, tmp_path, coordinate_encoding="spherical_harmonics", coordinate_encoding_degree=2)
    _edit_config(tmp_path, coordinate_encoding="none")
    for cls in (StefaLandForPretraining, StefaLandModel, StefaLandForTimeSeriesRegression):
        with pytest.raises(ValueError) as error:
            cls.from_pretrained(tmp_path)
        assert "have no place in the model and would be ignored: stefaland.coordinate_encoding.projection.bias" in str(error.value)
        assert str(error.value).endswith("the config does not describe the architecture it was saved with.")


def test_missing_backbone_tensor_is_an_error_for_a_task_model_from_a_base(tmp_path):
    _save(StefaLandForPretraining, tmp_path)
    _rewrite_weights(tmp_path, drop={"stefaland.layers.0.linear1.weight"})
    expected = (
        r"cannot load this StefaLandForPretraining as a StefaLandForStaticRegression: 1 tensor\(s\) the model needs "
        r"are not in it and would stay random: stefaland\.layers\.0\.linear1\.weight\. The file is incomplete"
    )
    with pytest.raises(ValueError, match=expected):
        StefaLandForStaticRegression.from_pretrained(tmp_path, **STATIC_TARGETS)


@pytest.fixture
def load_warnings():
    """Warnings logged by transformers (its load report) and by stefaland_hf while a test runs."""
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    loggers = [logging.getLogger("transformers"), logging.getLogger("stefaland_hf")]
    for logger in loggers:
        logger.addHandler(handler)
    yield records
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.mark.parametrize(
    "source, target",
    [
        (StefaLandForPretraining, StefaLandForTimeSeriesRegression),
        (StefaLandModel, StefaLandForStaticRegression),
        (StefaLandForPretraining, StefaLandModel),
        (StefaLandForTimeSeriesRegression, StefaLandModel),
    ],
)
def test_partial_loads_by_design_are_quiet_and_carry_the_backbone(tmp_path, load_warnings, source, target):
    base = _save(source, tmp_path)
    model, info = target.from_pretrained(tmp_path, output_loading_info=True)
    assert [r.getMessage() for r in load_warnings] == []  # no LOAD REPORT table
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()
    backbone = lambda m: m if isinstance(m, StefaLandModel) else m.stefaland  # noqa: E731
    assert all(torch.equal(a, b) for a, b in zip(backbone(model).state_dict().values(), backbone(base).state_dict().values()))


def test_a_static_regression_folder_loads_by_its_class_and_auto_model_gives_its_encoder(tmp_path, load_warnings):
    """StefaLandForStaticRegression has no Auto class: its auto_map names the encoder for AutoModel, as the installed
    package does, and the folder carries the code that loads the whole model."""
    model = _save(StefaLandForStaticRegression, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_stefaland.StefaLandModel"
    assert "StefaLandForStaticRegression" not in json.dumps(config["auto_map"])
    assert (tmp_path / "modeling_stefaland.py").is_file()
    x, c = tiny_inputs()
    loaded = StefaLandForStaticRegression.from_pretrained(tmp_path).eval()
    assert torch.equal(loaded(x, c).prediction, model(x, c).prediction)
    encoder = transformers.AutoModel.from_pretrained(tmp_path).eval()
    assert type(encoder) is StefaLandModel
    assert torch.equal(encoder(x, c).last_hidden_state, model.stefaland(x, c).last_hidden_state)
    assert [r.getMessage() for r in load_warnings] == []  # the head is dropped quietly, as from any task model


@pytest.mark.parametrize(
    "source, target",
    [
        (StefaLandForTimeSeriesRegression, StefaLandForStaticRegression),
        (StefaLandForStaticRegression, StefaLandForTimeSeriesRegression),
        (StefaLandForTimeSeriesRegression, StefaLandForPretraining),
        (StefaLandModel, StefaLandForPretraining),
    ],
)
def test_other_partial_loads_are_refused(tmp_path, source, target):
    _save(source, tmp_path)
    kwargs = STATIC_TARGETS if target is StefaLandForStaticRegression else {}
    with pytest.raises(ValueError, match=rf"cannot load this {source.__name__} as a {target.__name__}: .*Only two loads may be partial"):
        target.from_pretrained(tmp_path, **kwargs)


def test_a_transformers_that_skips_the_load_hook_is_refused(tmp_path, monkeypatch):
    """The checks live in a transformers hook; should a transformers release stop calling it, loading must fail."""
    _save(StefaLandModel, tmp_path)
    monkeypatch.setattr(transformers.PreTrainedModel, "_finalize_model_loading", staticmethod(lambda model, load_config, info: info))
    with pytest.raises(RuntimeError, match="without calling PreTrainedModel._adjust_missing_and_unexpected_keys"):
        StefaLandModel.from_pretrained(tmp_path)


# ------------------------------------------------------------------------------------------------
# files that cannot be read, and other model types
# ------------------------------------------------------------------------------------------------
def test_another_model_type_is_refused(tmp_path):
    _save(StefaLandModel, tmp_path)
    _edit_config(tmp_path, model_type="bert")
    expected = rf"{tmp_path / 'config.json'}: model_type is 'bert', expected 'stefaland'"
    with pytest.raises(ValueError, match=expected):
        StefaLandModel.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match=expected):
        StefaLandConfig.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match=expected):  # even with a config given: the folder's weights are not ours
        StefaLandModel.from_pretrained(tmp_path, config=tiny_config())


def test_truncated_config_json_names_the_file(tmp_path):
    _save(StefaLandModel, tmp_path)
    text = (tmp_path / "config.json").read_text()
    (tmp_path / "config.json").write_text(text[: len(text) // 2])
    with pytest.raises(OSError, match=rf"config file at '{tmp_path / 'config.json'}' is not a valid JSON file"):
        StefaLandModel.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"pre_norm": "yes"}, "pre_norm must be true or false, got 'yes'"),
        ({"d_model": 16.5}, "d_model must be an integer, got 16.5"),
        ({"dropout": "0.1"}, "dropout must be a number, got '0.1'"),
        ({"dynamic_std": ["4", 10.0, 10.0, 80.0]}, r"dynamic_std must be a list of numbers \(one per variable\), got \['4', 10.0, 10.0, 80.0\]"),
    ],
)
def test_wrongly_typed_config_value_names_the_file_and_field(tmp_path, changes, message):
    _save(StefaLandModel, tmp_path)
    _edit_config(tmp_path, **changes)
    with pytest.raises(ValueError, match=rf"^{tmp_path / 'config.json'}: {message}$"):
        StefaLandModel.from_pretrained(tmp_path)


def test_keyword_overrides_are_validated_and_named(tmp_path):
    """transformers sets keyword overrides after the config's validation; a head for two targets with one mean
    would broadcast that mean over both."""
    _save(StefaLandForPretraining, tmp_path)
    expected = (
        rf"^{tmp_path / 'config.json'} with the keyword overrides target_mean, target_std, target_variables: "
        "target_mean has 1 values, expected 2"
    )
    with pytest.raises(ValueError, match=expected):
        StefaLandForTimeSeriesRegression.from_pretrained(
            tmp_path, target_variables=["streamflow", "soil_moisture"], target_mean=[1.0], target_std=[2.0]
        )
    with pytest.raises(ValueError, match=r"with the keyword overrides head_mode: head_mode must be one of"):
        StefaLandForTimeSeriesRegression.from_pretrained(tmp_path, head_mode="lora")


@pytest.mark.parametrize("keep", [0.5, 0.0005])
def test_truncated_safetensors_names_the_file(tmp_path, keep):
    _save(StefaLandForTimeSeriesRegression, tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(OSError, match=rf"^{tmp_path / 'model.safetensors'}: not a readable safetensors file \(.*\); it is truncated or corrupt .*: delete it and save or download it again$"):
        StefaLandForTimeSeriesRegression.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "cls, overrides, field, value",
    [
        (StefaLandForTimeSeriesRegression, {}, "output_transform", "none"),
        (StefaLandForTimeSeriesRegression, {}, "output_transform", "softplus"),
        (StefaLandForStaticRegression, dict(target_variables=["sand_fraction"], target_mean=[0.4], target_std=[0.1]), "hidden_static_variables", ["clay_fraction"]),
    ],
)
def test_head_settings_that_keep_tensor_shapes_are_bound_and_can_be_accepted(tmp_path, cls, overrides, field, value):
    """An edited output_transform or hidden_static_variables in config.json loaded silently and changed predictions
    (issue 31); it is refused naming the field and the way to accept it, and accept_changed= accepts it loudly."""
    torch.manual_seed(0)
    cls(tiny_config(**overrides)).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())[field]
    _edit_config(tmp_path, **{field: value})
    with pytest.raises(ValueError) as error:
        cls.from_pretrained(tmp_path)
    assert str(error.value).startswith(f"{field}: the checkpoint {tmp_path / 'model.safetensors'} was saved with {json.dumps(saved)}")
    assert f"accept_changed=[{field!r}]" in str(error.value)
    accepted = cls.from_pretrained(tmp_path, accept_changed=[field])
    assert getattr(accepted.config, field) == value
    accepted.save_pretrained(tmp_path / "again")  # the accepted value is bound from then on
    assert getattr(cls.from_pretrained(tmp_path / "again").config, field) == value
    with pytest.raises(ValueError, match="accept_changed: \\['d_model'\\] are not bound fields"):
        cls.from_pretrained(tmp_path, accept_changed=["d_model"])


# ------------------------------------------------------------------------------------------------
# half precision and numpy inputs
# ------------------------------------------------------------------------------------------------
HALF_TOLERANCE = {torch.bfloat16: 3e-2, torch.float16: 5e-3}  # about 8 and 5 units of the dtype's relative precision


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize(
    "cls, overrides, field",
    [
        (StefaLandModel, {}, "last_hidden_state"),
        (StefaLandForPretraining, {}, "dynamic_reconstruction"),
        (StefaLandForTimeSeriesRegression, {"coordinate_encoding": "spherical_harmonics"}, "prediction"),
        (StefaLandForTimeSeriesRegression, {"head_mode": "direct"}, "prediction"),
        (StefaLandForStaticRegression, {}, "prediction"),
        (StefaLandForStaticRegression, {"head_mode": "direct"}, "prediction"),
    ],
)
def test_half_precision_models_run_close_to_float32(tmp_path, dtype, cls, overrides, field):
    reference = _save(cls, tmp_path, initializer_range=0.2, **overrides)  # larger weights: outputs vary across inputs
    model = cls.from_pretrained(tmp_path, dtype=dtype).eval()
    assert model.dtype == dtype and all(b.dtype == torch.float32 for n, b in model.named_buffers() if "normalizer" in n)
    x, c = tiny_inputs(batch=4, length=50)
    with torch.no_grad():
        expected, actual = getattr(reference(x, c), field), getattr(model(x, c), field)
    assert actual.dtype == (dtype if cls is StefaLandModel else torch.float32)  # physical units come back in float32
    error = (actual.float() - expected).abs().max()
    assert error <= HALF_TOLERANCE[dtype] * expected.abs().max(), (error, expected.abs().max())


def test_half_precision_hidden_states_track_float32(tmp_path):
    """The backbone's states, whose spread is of order one, stay within a few bf16 steps of that spread."""
    reference = _save(StefaLandModel, tmp_path, initializer_range=0.2)
    model = StefaLandModel.from_pretrained(tmp_path, dtype=torch.bfloat16).eval()
    x, c = tiny_inputs(batch=4, length=50)
    with torch.no_grad():
        expected, actual = reference(x, c).last_hidden_state, model(x, c).last_hidden_state.float()
        # normalization runs in float32 whatever the model's dtype: identical z-scores
        assert all(torch.equal(a, b) for a, b in zip(model.normalize(x, c), reference.normalize(x, c)))
    assert (actual - expected).abs().max() <= 0.1 * expected.std()


def test_float32_adapter_head_on_a_bf16_base(tmp_path):
    """A resConn adapter head is built in float32; on a bf16 base it takes the base's bf16 embeddings."""
    from peft import get_peft_model

    from stefaland_hf import ResConnConfig

    _save(StefaLandForPretraining, tmp_path, initializer_range=0.2)
    x, c = tiny_inputs()
    outputs = []
    for dtype in (torch.float32, torch.bfloat16):
        base = StefaLandForTimeSeriesRegression.from_pretrained(tmp_path, dtype=dtype)
        torch.manual_seed(0)
        model = get_peft_model(base, ResConnConfig(target_mean=[1.0], target_std=[2.0], head_hidden_size=8)).eval()
        with torch.no_grad():
            outputs.append(model(x, c).prediction)
    assert outputs[1].dtype == torch.float32
    assert (outputs[1] - outputs[0]).abs().max() <= HALF_TOLERANCE[torch.bfloat16] * outputs[0].abs().max()


@pytest.mark.parametrize("mode", ["resconn", "no_adapter", "linear_probe"])
def test_bf16_head_takes_float32_cached_embeddings(mode):
    """An embedding cache hands float16 embeddings over as float32; a bf16 head must cast them to its dtype."""
    model = StefaLandForTimeSeriesRegression(tiny_config(head_mode=mode, initializer_range=0.2)).to(torch.bfloat16).eval()
    x, c = tiny_inputs()
    with torch.no_grad():
        live = model(x, c).prediction
        cached = model(x, c, backbone_embedding=model.embed(x, c).to(torch.float16).float()).prediction
    assert (cached - live).abs().max() <= HALF_TOLERANCE[torch.bfloat16] * live.abs().max()


def test_cast_to_half_keeps_exact_float32_statistics():
    config = tiny_config(static_mean=[40.1, -100.3, 801.7, 20.2, 0.41, 0.35, 0.25, 500.9])
    model = StefaLandForTimeSeriesRegression(config).to(torch.bfloat16)
    normalizer = model.stefaland.static_normalizer
    assert normalizer.mean.dtype == torch.float32
    assert torch.equal(normalizer.mean, torch.tensor(config.static_mean, dtype=torch.float32))
    assert model.stefaland.layers[0].linear1.weight.dtype == torch.bfloat16
    x, c = tiny_inputs()
    assert torch.isfinite(model.eval()(x, c).prediction).all()


def test_numpy_inputs_give_the_same_outputs_as_tensors():
    x, c = tiny_inputs()
    labels = torch.randn(3, 40, 1)
    dynamic_mask = torch.zeros_like(x, dtype=torch.bool)
    dynamic_mask[:, 5:9, 1] = True
    task = StefaLandForTimeSeriesRegression(tiny_config()).eval()
    as_tensors = task(x, c, labels=labels, dynamic_mask=dynamic_mask)
    as_numpy = task(x.double().numpy(), c.double().numpy(), labels=labels.numpy(), dynamic_mask=dynamic_mask.numpy())
    assert torch.equal(as_numpy.prediction, as_tensors.prediction) and torch.equal(as_numpy.loss, as_tensors.loss)
    pretraining = StefaLandForPretraining(tiny_config()).eval()
    assert torch.equal(pretraining(x.numpy(), c.numpy(), dynamic_mask.numpy()).loss, pretraining(x, c, dynamic_mask).loss)
    static = StefaLandForStaticRegression(tiny_config(**STATIC_TARGETS)).eval()
    assert torch.equal(static(x.numpy(), c.numpy()).prediction, static(x, c).prediction)


def test_unconvertible_input_names_the_argument():
    x, _ = tiny_inputs()
    with pytest.raises(TypeError, match=r"^x_static: expected a torch\.Tensor or a numpy array, got str"):
        StefaLandModel(tiny_config())(x, "latitude, longitude")


def test_an_empty_folder_named_like_a_zoo_model_names_itself_and_the_fix(tmp_path, monkeypatch):
    """An empty folder ./stefaland-base shadowed the zoo model ("Should have a model_type key", or no weights found)."""
    from stefaland_hf.hub.names import from_pretrained

    monkeypatch.chdir(tmp_path)
    (tmp_path / "stefaland-base").mkdir()
    with pytest.raises(OSError, match=r"^stefaland-base: a folder without config.json, so no model folder.*remove or rename this folder"):
        from_pretrained("stefaland-base", StefaLandForPretraining)
    with pytest.raises(OSError, match="a folder without config.json"):
        StefaLandConfig.from_pretrained(tmp_path / "stefaland-base")
