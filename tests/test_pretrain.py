import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_config

from stefaland_hf import StefaLandForPretraining
from stefaland_hf.data.synthland import DYNAMIC_VARIABLES, STATIC_VARIABLES, SynthLand
from stefaland_hf.data.samplers import WindowDataset, collate_windows
from stefaland_hf.masking import CrossVariableGroupMasking
from stefaland_hf.training.pretrain import PretrainArguments, pretrain
from stefaland_hf.training.run_folder import CHECKPOINT_COMPLETE_FILE, MANIFEST_FILE, RunFolderError

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
    kwargs = dict(output_dir=str(path), num_train_epochs=2, samples_per_epoch=48, per_device_train_batch_size=16, seq_len=40, learning_rate=1e-3, save_steps=2, seed=7)
    kwargs.update(overrides)
    return PretrainArguments(**kwargs)


def test_pretraining_learns_and_saves(tmp_path, synthland_tiny):
    model = pretrain(_config(), synthland_tiny, list(range(12)), PERIOD, _args(tmp_path, num_train_epochs=8, samples_per_epoch=64, learning_rate=5e-3))
    assert (tmp_path / "model" / "model.safetensors").exists()
    assert len(pd.read_csv(tmp_path / "loss_curve.csv")) == 32
    assert (tmp_path / "loss_curve.csv").exists() and (tmp_path / "loss_curve.png").exists()
    reloaded = StefaLandForPretraining.from_pretrained(tmp_path / "model")
    # Normalization was fitted on the training sites and travels in the config.
    assert reloaded.config.dynamic_mean is not None and len(reloaded.config.static_mean) == len(STATIC_VARIABLES)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reloaded.state_dict().values()))
    # it learned: it reconstructs held-out sites' masked forcings better than the same model untrained
    windows = WindowDataset(synthland_tiny, sites=[12, 13, 14, 15], period=PERIOD, seq_len=40, stride=40, target_variables=[],
                            dynamic_variables=list(DYNAMIC_VARIABLES), static_variables=list(STATIC_VARIABLES))
    batch = collate_windows(windows.__getitems__(list(range(len(windows)))), drop_keys=("labels", "site_index", "start"))
    batch = CrossVariableGroupMasking(reloaded.config)(batch, rng=np.random.default_rng(0))
    torch.manual_seed(0)
    untrained = StefaLandForPretraining(reloaded.config).eval()
    with torch.no_grad():
        # 32 steps: masked forcings 8 % better (0.877 vs 0.957 here); statics of unseen sites barely move yet
        assert reloaded.eval()(**batch).dynamic_loss < 0.95 * untrained(**batch).dynamic_loss


def test_normalization_never_sees_held_out_sites(tmp_path, synthland_tiny):
    a = pretrain(_config(), synthland_tiny, [0, 1, 2, 3], PERIOD, _args(tmp_path / "a", num_train_epochs=1, samples_per_epoch=16))
    b = pretrain(_config(), synthland_tiny, [0, 1, 2, 4], PERIOD, _args(tmp_path / "b", num_train_epochs=1, samples_per_epoch=16))
    assert a.config.static_mean != b.config.static_mean


def test_interrupted_and_resumed_run_matches_uninterrupted(tmp_path, synthland_tiny):
    sites = list(range(12))
    full = pretrain(_config(), synthland_tiny, sites, PERIOD, _args(tmp_path / "full"))
    pretrain(_config(), synthland_tiny, sites, PERIOD, _args(tmp_path / "cut", max_steps=4))  # interrupted mid-epoch 1
    resumed = pretrain(_config(), synthland_tiny, sites, PERIOD, _args(tmp_path / "cut", resume=True))
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, synthland_tiny):
    with pytest.raises(RunFolderError, match="holds no run to continue"):
        pretrain(_config(), synthland_tiny, [0, 1], PERIOD, _args(tmp_path, resume=True))


def _short(path, **overrides):
    return _args(path, **{"num_train_epochs": 1, "samples_per_epoch": 32, **overrides})


def test_reusing_a_folder_of_another_run_is_refused_naming_the_fields(tmp_path, synthland_tiny):
    pretrain(_config(), synthland_tiny, [0, 1, 2], PERIOD, _short(tmp_path))
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert manifest["arguments"]["seed"] == 7 and manifest["data"]["train_sites"] == [0, 1, 2]
    with pytest.raises(RunFolderError, match=r"arguments\.seed: 7 in the folder, 8 now") as error:
        pretrain(_config(), synthland_tiny, [0, 1, 2], PERIOD, _short(tmp_path, seed=8, per_device_train_batch_size=8, resume=True))
    assert "arguments.per_device_train_batch_size" in str(error.value)
    with pytest.raises(RunFolderError, match="data.train_sites"):
        pretrain(_config(), synthland_tiny, [0, 1, 3], PERIOD, _short(tmp_path, resume=True))
    with pytest.raises(RunFolderError, match="already holds this run; pass --resume"):
        pretrain(_config(), synthland_tiny, [0, 1, 2], PERIOD, _short(tmp_path))


def test_overwrite_replaces_the_run_and_its_stale_checkpoints(tmp_path, synthland_tiny):
    pretrain(_config(), synthland_tiny, [0, 1, 2], PERIOD, _short(tmp_path, samples_per_epoch=64))
    assert (tmp_path / "checkpoints" / "step_4").is_dir()
    pretrain(_config(), synthland_tiny, [0, 1, 2], PERIOD, _short(tmp_path, seed=8, overwrite=True))
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["config.json", "step_2"]
    assert json.loads((tmp_path / MANIFEST_FILE).read_text())["arguments"]["seed"] == 8


def test_a_folder_with_foreign_files_is_left_alone(tmp_path, synthland_tiny):
    (tmp_path / "notes.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(RunFolderError, match="not a stefaland run folder"):
            pretrain(_config(), synthland_tiny, [0, 1], PERIOD, _short(tmp_path, overwrite=overwrite))
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_resume_skips_a_checkpoint_killed_mid_write_and_says_which_it_uses(tmp_path, synthland_tiny, capsys):
    sites = list(range(12))
    pretrain(_config(), synthland_tiny, sites, PERIOD, _args(tmp_path, max_steps=4))
    checkpoints = tmp_path / "checkpoints"
    # what a SIGKILL leaves: a renamed-but-unfinished folder cannot exist, so emulate both other states
    (checkpoints / ".partial-step_6").mkdir()
    (checkpoints / "step_6").mkdir()
    resumed = pretrain(_config(), synthland_tiny, sites, PERIOD, _args(tmp_path, resume=True))
    out = capsys.readouterr().out
    assert "skipping incomplete checkpoint" in out and f"resumed from {checkpoints / 'step_4'}" in out
    full = pretrain(_config(), synthland_tiny, sites, PERIOD, _args(tmp_path / "full"))
    assert all(torch.equal(a, b) for a, b in zip(full.state_dict().values(), resumed.state_dict().values()))


def test_a_corrupt_rng_state_stops_the_resume_naming_the_file(tmp_path, synthland_tiny):
    pretrain(_config(), synthland_tiny, [0, 1, 2], PERIOD, _args(tmp_path, max_steps=2))
    checkpoint = tmp_path / "checkpoints" / "step_2"
    assert (checkpoint / CHECKPOINT_COMPLETE_FILE).is_file()
    (checkpoint / "random_states_0.pkl").write_bytes(b"garbage")
    with pytest.raises(RunFolderError, match=r"random_states_0\.pkl changed after it was written"):
        pretrain(_config(), synthland_tiny, [0, 1, 2], PERIOD, _args(tmp_path, resume=True))
    (checkpoint / "random_states_0.pkl").unlink()
    with pytest.raises(RunFolderError, match=r"random_states_0\.pkl is missing"):
        pretrain(_config(), synthland_tiny, [0, 1, 2], PERIOD, _args(tmp_path, resume=True))


@pytest.mark.parametrize(
    "field, value", [("max_steps", -5), ("num_train_epochs", 0), ("per_device_train_batch_size", 0), ("learning_rate", 0.0), ("samples_per_epoch", 0)]
)
def test_degenerate_settings_are_refused_naming_the_argument(tmp_path, field, value):
    with pytest.raises(ValueError, match=rf"PretrainArguments\.{field}={value!r}: expected"):
        _args(tmp_path, **{field: value})


def test_max_steps_trains_that_many_steps_past_the_epochs(tmp_path, synthland_tiny):
    """As in Trainer, max_steps sets the length: it used to stop at the epochs' end (3 steps here) whatever it said."""
    pretrain(_config(), synthland_tiny, [0, 1, 2], PERIOD, _args(tmp_path, num_train_epochs=1, max_steps=7, save_steps=0))
    steps = (tmp_path / "loss_curve.csv").read_text().strip().splitlines()[1:]
    assert len(steps) == 7 and steps[-1].split(",")[0] == "7"


def test_init_from_continues_a_pretrained_model_and_refuses_another_configuration(tmp_path, synthland_tiny):
    """A pretraining whose run folder (optimizer state) is gone continues from its saved weights, never from another model's."""
    from safetensors.torch import load_file

    first = tmp_path / "first"
    pretrain(_config(), synthland_tiny, [0, 1, 2], PERIOD, _args(first, num_train_epochs=1, max_steps=2, save_steps=0))
    weights = load_file(first / "model" / "model.safetensors")
    # a near-zero learning rate: the continued model starts exactly where the first ended
    pretrain(_config(), synthland_tiny, [0, 1, 2], PERIOD,
             _args(tmp_path / "again", num_train_epochs=1, max_steps=1, save_steps=0, learning_rate=1e-12, init_from=str(first / "model")))
    continued = load_file(tmp_path / "again" / "model" / "model.safetensors")
    assert all(torch.allclose(continued[k], weights[k], atol=1e-6) for k in weights)
    manifest = json.loads((tmp_path / "again" / MANIFEST_FILE).read_text())
    assert manifest["base_model"]["init_from"] == str(first / "model") and len(manifest["base_model"]["sha256"]) == 64
    with pytest.raises(ValueError, match=r"differs from this run's configuration in \[.*'d_model'"):
        pretrain(_config().replace(d_model=32), synthland_tiny, [0, 1, 2], PERIOD,
                 _args(tmp_path / "other", max_steps=1, init_from=str(first / "model")))
    with pytest.raises(ValueError, match=r"differs from this run's configuration in \[.*'dynamic_mean'"):  # another corpus
        pretrain(_config(), synthland_tiny, [3, 4, 5], PERIOD, _args(tmp_path / "corpus", max_steps=1, init_from=str(first / "model")))


@pytest.mark.parametrize("length", [dict(max_steps=5), dict(num_train_epochs=2)])
def test_resume_after_the_end_does_nothing_and_says_so(tmp_path, synthland_tiny, capsys, length):
    """--resume on a finished run retrained its last steps (past --max-steps from a checkpoint at the end), rewrote
    its loss curve and model/; it now leaves the folder as it is, and a larger length continues it."""
    first = pretrain(_config(), synthland_tiny, [0, 1, 2], PERIOD, _args(tmp_path, save_steps=2, **length))
    def files():  # all but the manifest (a resume records its arguments there)
        return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file() and p.name != MANIFEST_FILE and p.parent.name != "checkpoints"}

    before = files()
    capsys.readouterr()
    again = pretrain(_config(), synthland_tiny, [0, 1, 2], PERIOD, _args(tmp_path, save_steps=2, resume=True, **length))
    assert "nothing to do" in capsys.readouterr().out
    assert files() == before
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    steps = len(pd.read_csv(tmp_path / "loss_curve.csv"))
    pretrain(_config(), synthland_tiny, [0, 1, 2], PERIOD, _args(tmp_path, save_steps=2, resume=True, max_steps=steps + 2))
    assert pd.read_csv(tmp_path / "loss_curve.csv")["step"].tolist() == list(range(1, steps + 3))


def test_resume_of_a_run_stopped_before_writing_its_model_writes_it_without_training(tmp_path, synthland_tiny):
    pretrain(_config(), synthland_tiny, [0, 1, 2], PERIOD, _args(tmp_path, max_steps=5, save_steps=2))
    shutil.rmtree(tmp_path / "model")
    curve = (tmp_path / "loss_curve.csv").read_text()
    pretrain(_config(), synthland_tiny, [0, 1, 2], PERIOD, _args(tmp_path, max_steps=5, save_steps=2, resume=True))
    assert (tmp_path / "model" / "model.safetensors").is_file() and (tmp_path / "loss_curve.csv").read_text() == curve


def test_a_folder_of_a_run_that_failed_before_its_first_checkpoint_is_reused_without_flags(tmp_path, synthland_tiny, monkeypatch):
    """It held only run_manifest.json, and rerunning into it was refused ("already holds this run; pass --resume")."""
    def fail(*args, **kwargs):
        raise RuntimeError("out of memory")

    with monkeypatch.context() as patch:
        patch.setattr(StefaLandForPretraining, "forward", fail)
        with pytest.raises(RuntimeError, match="out of memory"):
            pretrain(_config(), synthland_tiny, [0, 1, 2], PERIOD, _short(tmp_path))
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [MANIFEST_FILE]
    (tmp_path / "checkpoints" / ".partial-step_2").mkdir(parents=True)  # and one killed mid-write
    pretrain(_config(), synthland_tiny, [0, 1, 2], PERIOD, _short(tmp_path))
    assert (tmp_path / "model" / "model.safetensors").is_file() and not (tmp_path / "checkpoints" / ".partial-step_2").exists()
    with pytest.raises(RunFolderError, match="already holds this run; pass --resume"):  # now it holds results
        pretrain(_config(), synthland_tiny, [0, 1, 2], PERIOD, _short(tmp_path))


def test_reconstruct_refuses_the_sites_a_model_was_pretrained_on(tmp_path, synthland_tiny, capsys):
    """stefaland reconstruct scored a model's own pretraining sites as zero-shot: every pretraining now lists them."""
    from stefaland_hf.experiments.reconstruction import check_never_seen

    pretrain(_config(), synthland_tiny, [0, 1, 2], PERIOD, _short(tmp_path))
    ids = list(synthland_tiny["site_id"])
    record = json.loads((tmp_path / "model" / "pretraining_sites.json").read_text())
    assert [s["site_ids"] for s in record.values()] == [ids[:3]] and [s["period"] for s in record.values()] == [list(PERIOD)]
    model = StefaLandForPretraining.from_pretrained(tmp_path / "model")
    with pytest.raises(ValueError, match=rf"--sites: 1 site\(s\) were in the pretraining of m .* not zero-shot"):
        check_never_seen(model, "m", [ids[1], ids[5]], "synthland")
    check_never_seen(model, "m", [ids[5], ids[6]], "synthland")  # held out: scored
    check_never_seen(model, "m", [ids[1]], "camels_us")  # ids of another dataset are other sites
    (tmp_path / "model" / "pretraining_sites.json").unlink()
    check_never_seen(StefaLandForPretraining.from_pretrained(tmp_path / "model"), "m", [ids[1]], "synthland")
    assert "cannot check that --sites are unseen" in capsys.readouterr().out


def test_init_from_a_truncated_model_names_the_file_and_the_fix(tmp_path, synthland_tiny):
    """--init_from read the weights with safetensors' load_file: a truncated file was an "unexpected SafetensorError"."""
    pretrain(_config(), synthland_tiny, [0, 1, 2], PERIOD, _short(tmp_path / "a"))
    weights = tmp_path / "a" / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(OSError, match=rf"{weights}: not a readable safetensors file .* delete it and save or download it again"):
        pretrain(_config(), synthland_tiny, [0, 1, 2], PERIOD, _short(tmp_path / "b", init_from=str(tmp_path / "a" / "model")))
