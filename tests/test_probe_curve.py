"""The probe curve: frozen-encoder heads scored at step 0 (a random encoder) and at each pretraining checkpoint."""

import json
import shutil

import pytest

from stefaland_hf import StefaLandConfig
from stefaland_hf.data import load_site_dataset
from stefaland_hf.experiments.benchmark import benchmark_preset
from stefaland_hf.experiments.probe_curve import pretraining_checkpoints, run_probe_curve
from stefaland_hf.training.pretrain import PretrainArguments, config_for_dataset, export_checkpoint, pretrain
from stefaland_hf.training.run_folder import RunFolderError
from stefaland_hf.zoo import model_zoo_dir


@pytest.fixture(scope="module")
def pretraining_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("probe")
    dataset = load_site_dataset("synthland", cache_dir=str(tmp / "cache"))
    config = config_for_dataset(StefaLandConfig.from_pretrained(model_zoo_dir() / "stefaland-tiny"), dataset)
    run = tmp / "pretraining"
    args = PretrainArguments(output_dir=str(run), max_steps=4, save_steps=2, samples_per_epoch=16, per_device_train_batch_size=8, seq_len=60)
    pretrain(config, dataset, list(range(len(dataset))), None, args)
    return dataset, run


def test_checkpoints_export_as_loadable_models_with_the_runs_statistics(pretraining_run, tmp_path):
    from safetensors.torch import load_file

    _, run = pretraining_run
    assert list(pretraining_checkpoints(run)) == [2, 4]
    exported = export_checkpoint(run / "checkpoints" / "step_4", tmp_path / "step_4")
    final = run / "model"
    assert StefaLandConfig.from_pretrained(exported).dynamic_mean == StefaLandConfig.from_pretrained(final).dynamic_mean
    assert all((load_file(exported / "model.safetensors")[k] == v).all() for k, v in load_file(final / "model.safetensors").items())
    # a half-written checkpoint (no completion record) is never taken
    half = shutil.copytree(run / "checkpoints" / "step_4", tmp_path / "half" / "checkpoints" / "step_6")
    (half / "checkpoint_complete.json").unlink()
    shutil.copy(run / "checkpoints" / "config.json", tmp_path / "half" / "checkpoints")
    assert pretraining_checkpoints(tmp_path / "half") == {}
    with pytest.raises(RunFolderError, match="not a complete checkpoint"):
        export_checkpoint(half, tmp_path / "x")
    with pytest.raises(FileNotFoundError, match=r"no complete checkpoint for steps \[6\]"):
        pretraining_checkpoints(tmp_path / "half", steps=[6])


def test_probe_curve_scores_each_head_at_step_0_and_every_checkpoint_and_resumes(pretraining_run, tmp_path):
    dataset, run = pretraining_run
    preset = benchmark_preset("smoke", "synthland")
    results = run_probe_curve(run, dataset, tmp_path / "curve", preset, seed=0, folds=2, heads=("linear_probe", "resconn"))
    assert sorted((e["step"], e["head"]) for e in results["entries"]) == [
        (0, "linear_probe"), (0, "resconn"), (2, "linear_probe"), (2, "resconn"), (4, "linear_probe"), (4, "resconn")]
    split = results["split"]
    assert split["test_sites"] and set(split["test_sites"]).isdisjoint(split["train_sites"] + split["val_sites"])
    assert all(e["n_sites"] == len(split["test_sites"]) for e in results["entries"])
    assert (tmp_path / "curve" / "probe_curve.png").stat().st_size > 0
    csv = (tmp_path / "curve" / "probe_curve.csv").read_text().splitlines()
    assert csv[0] == "step,head,nse,kge,rmse,n_sites" and len(csv) == 7
    # resumed: nothing is scored again (same weights), and the saved scores are kept as they were
    saved = json.loads((tmp_path / "curve" / "probe_curve.json").read_text())
    again = run_probe_curve(run, dataset, tmp_path / "curve", preset, seed=0, folds=2, heads=("linear_probe", "resconn"), resume=True)
    assert again["entries"] == saved["entries"]


def test_an_encoder_that_cannot_read_the_data_is_refused(pretraining_run, tmp_path):
    dataset, run = pretraining_run
    long_windows = benchmark_preset("smoke", "synthland", overrides=["finetune.seq_len=5000"])
    with pytest.raises(ValueError, match="exceed the encoder's 400 positions"):
        run_probe_curve(run, dataset, tmp_path / "curve", long_windows, seed=0, folds=2)
    with pytest.raises(ValueError, match=r"--fold 3: expected 0\.\.1"):
        run_probe_curve(run, dataset, tmp_path / "curve", benchmark_preset("smoke", "synthland"), fold=3, folds=2)
