import pytest
import torch
from conftest import tiny_config

from stefaland_hf import StefaLandForPretraining
from stefaland_hf.data.synthland import DYNAMIC_VARIABLES, STATIC_VARIABLES, SynthLand
from stefaland_hf.training.pretrain import PretrainArguments, pretrain

PERIOD = ("2000-01-01", "2001-12-31")


@pytest.fixture(scope="module")
def synthland_tiny(tmp_path_factory):
    builder = SynthLand(config_name="tiny", cache_dir=str(tmp_path_factory.mktemp("synthland")))
    builder.download_and_prepare()
    return builder.as_dataset(split="train")


def _config():
    return tiny_config(
        dynamic_variables=list(DYNAMIC_VARIABLES),
        static_variables=list(STATIC_VARIABLES),
        dynamic_groups={"temperature": ["temperature_max", "temperature_min"]},
        static_groups={"soil": ["sand_fraction", "silt_fraction", "clay_fraction"]},
        never_mask_variables=["area"],
        dynamic_mean=None, dynamic_std=None, static_mean=None, static_std=None,
        target_variables=None, target_mean=None, target_std=None,
        num_hidden_layers=1,
        max_position_embeddings=64,
    )


def _args(path, **overrides):
    kwargs = dict(output_dir=str(path), epochs=2, samples_per_epoch=48, batch_size=16, seq_len=40, learning_rate=1e-3, save_every_steps=2, seed=7)
    kwargs.update(overrides)
    return PretrainArguments(**kwargs)


def test_pretraining_learns_and_saves(tmp_path, synthland_tiny):
    model = pretrain(_config(), synthland_tiny, list(range(12)), PERIOD, _args(tmp_path, epochs=3))
    assert (tmp_path / "model" / "model.safetensors").exists()
    assert (tmp_path / "loss_curve.csv").exists() and (tmp_path / "loss_curve.png").exists()
    reloaded = StefaLandForPretraining.from_pretrained(tmp_path / "model")
    # Normalization was fitted on the training sites and travels in the config.
    assert reloaded.config.dynamic_mean is not None and len(reloaded.config.static_mean) == len(STATIC_VARIABLES)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reloaded.state_dict().values()))


def test_normalization_never_sees_held_out_sites(tmp_path, synthland_tiny):
    a = pretrain(_config(), synthland_tiny, [0, 1, 2, 3], PERIOD, _args(tmp_path / "a", epochs=1, samples_per_epoch=16))
    b = pretrain(_config(), synthland_tiny, [0, 1, 2, 4], PERIOD, _args(tmp_path / "b", epochs=1, samples_per_epoch=16))
    assert a.config.static_mean != b.config.static_mean


def test_interrupted_and_resumed_run_matches_uninterrupted(tmp_path, synthland_tiny):
    sites = list(range(12))
    full = pretrain(_config(), synthland_tiny, sites, PERIOD, _args(tmp_path / "full"))
    pretrain(_config(), synthland_tiny, sites, PERIOD, _args(tmp_path / "cut", max_steps=4))  # interrupted mid-epoch 1
    resumed = pretrain(_config(), synthland_tiny, sites, PERIOD, _args(tmp_path / "cut", resume=True))
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, synthland_tiny):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        pretrain(_config(), synthland_tiny, [0, 1], PERIOD, _args(tmp_path, resume=True))
