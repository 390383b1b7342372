"""Data parallelism: N processes with a global batch take the same steps as one process with that batch.

The unit tests check the pieces (masks independent of the split of the global batch, losses normalized
by global counts); the launch test runs tests/distributed_script.py under ``accelerate launch`` with 2
CPU processes (gloo) and compares it with a 1-process run.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config, tiny_inputs
from safetensors.torch import load_file
from transformers import TrainingArguments

from stefaland_hf import StefaLandForPretraining, StefaLandForStaticRegression, StefaLandForTimeSeriesRegression
from stefaland_hf.masking import CrossVariableGroupMasking
from stefaland_hf.modeling_stefaland import masked_mse
from stefaland_hf.training.trainer import ObservedLabelTrainer

SCRIPT = Path(__file__).with_name("distributed_script.py")


def _halves(batch: dict) -> list[dict]:
    size = batch["x_dynamic"].shape[0] // 2
    return [{k: v[i * size : (i + 1) * size] for k, v in batch.items()} for i in range(2)]


def _masked_batch(config, batch=6, seed=0):
    x, c = tiny_inputs(batch=batch, length=40, seed=seed)
    x[0, 3:9, 0] = float("nan")  # unobserved entries leave the counts
    c[4, 2] = float("nan")
    return CrossVariableGroupMasking(config)({"x_dynamic": x, "x_static": c}, rng=np.random.default_rng(seed))


def test_masks_do_not_depend_on_the_split_of_the_global_batch():
    masking = CrossVariableGroupMasking(tiny_config())
    whole = {"x_dynamic": torch.zeros(12, 50, 4), "x_static": torch.zeros(12, 8)}
    expected = masking(dict(whole), rng=np.random.default_rng([3, 1, 5]))
    for count in (2, 3):
        size = 12 // count
        parts = [
            masking({k: v[i * size : (i + 1) * size] for k, v in whole.items()}, rng=np.random.default_rng([3, 1, 5]), shard=(i, count))
            for i in range(count)
        ]
        for key in ("dynamic_mask", "static_mask"):
            assert torch.equal(torch.cat([p[key] for p in parts]), expected[key]), (count, key)
    assert expected["dynamic_mask"].any() and expected["static_mask"].any()
    other = masking(dict(whole), rng=np.random.default_rng([3, 1, 6]))
    assert not torch.equal(other["dynamic_mask"], expected["dynamic_mask"])


def test_masks_are_created_on_the_device_of_the_batch():
    masking = CrossVariableGroupMasking(tiny_config())
    meta = {"x_dynamic": torch.empty(4, 20, 4, device="meta"), "x_static": torch.empty(4, 8, device="meta")}
    out = masking(meta, rng=np.random.default_rng(0))
    assert out["dynamic_mask"].device.type == "meta" and out["static_mask"].device.type == "meta"


def test_shard_out_of_range_is_a_clear_error():
    with pytest.raises(ValueError, match="shard"):
        CrossVariableGroupMasking(tiny_config())({"x_dynamic": torch.zeros(2, 10, 4), "x_static": torch.zeros(2, 8)}, shard=(2, 2))


def test_masked_mse_denominator():
    prediction = torch.tensor([[1.0, 2.0], [4.0, 5.0]])
    target = torch.tensor([[0.0, float("nan")], [4.0, 7.0]])
    selected = torch.ones_like(prediction, dtype=torch.bool)
    assert masked_mse(prediction, target, selected).item() == pytest.approx(5.0 / 3.0)
    assert masked_mse(prediction, target, selected, denominator=10).item() == pytest.approx(0.5)
    nothing = torch.zeros_like(selected)
    assert masked_mse(prediction, target, nothing, denominator=torch.tensor(0)).item() == 0.0  # no 0 / 0


def test_pretraining_losses_with_global_denominators_sum_to_the_whole_batch_loss():
    config = tiny_config()
    model = StefaLandForPretraining(config).eval()
    batch = _masked_batch(config)
    whole = model(**batch)
    counts = [
        (batch["dynamic_mask"] & torch.isfinite(batch["x_dynamic"])).sum(),
        (batch["static_mask"] & torch.isfinite(batch["x_static"])).sum(),
    ]
    assert torch.equal(model(**batch, loss_denominators=counts).loss, whole.loss)  # the default: this batch's counts
    parts = [model(**half, loss_denominators=counts) for half in _halves(batch)]
    for name in ("loss", "dynamic_loss", "static_loss"):
        assert torch.allclose(sum(getattr(p, name) for p in parts), getattr(whole, name), rtol=1e-6), name
    own = [model(**half) for half in _halves(batch)]  # per-half means average to something else
    assert not torch.allclose((own[0].loss + own[1].loss) / 2, whole.loss, rtol=1e-4)


@pytest.mark.parametrize("model_class", [StefaLandForTimeSeriesRegression, StefaLandForStaticRegression])
def test_regression_losses_with_num_items_in_batch_sum_to_the_whole_batch_loss(model_class):
    config = tiny_config(head_mode="direct", head_dropout=0.0)
    model = model_class(config).eval()
    x, c = tiny_inputs(batch=6, length=30)
    labels = torch.rand((6, 30, 1) if model_class is StefaLandForTimeSeriesRegression else (6, 1)) * 3
    whole = model(x, c, labels=labels).loss
    observed = torch.isfinite(labels).sum()
    assert torch.allclose(model(x, c, labels=labels, num_items_in_batch=observed).loss, whole)  # no NaN: unchanged
    labels[:4] = float("nan")  # the first half has 1 observed row of 3, the second half 2 of 3
    labels[0] = 1.0
    whole = model(x, c, labels=labels).loss
    observed = torch.isfinite(labels).sum()
    parts = [model(x[i * 3 : (i + 1) * 3], c[i * 3 : (i + 1) * 3], labels=labels[i * 3 : (i + 1) * 3], num_items_in_batch=observed) for i in range(2)]
    assert torch.allclose(parts[0].loss + parts[1].loss, whole, rtol=1e-6)


def _trainer(model, tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", label_names=["labels"], remove_unused_columns=False)
    return ObservedLabelTrainer(model=model, args=args)


def test_trainer_counts_finite_labels_and_keeps_the_single_process_loss(tmp_path):
    model = StefaLandForTimeSeriesRegression(tiny_config(head_mode="direct", head_dropout=0.0))
    trainer = _trainer(model, tmp_path)
    x, c = tiny_inputs(batch=4, length=30)
    labels = torch.rand(4, 30, 1)
    inputs = {"x_dynamic": x, "x_static": c, "labels": labels}
    count = trainer._get_num_items_in_batch([inputs], torch.device("cpu"))
    assert int(count) == labels.numel()
    assert torch.allclose(trainer.compute_loss(model, dict(inputs), num_items_in_batch=count), model(**inputs).loss)
    gappy = labels.clone()
    gappy[:, :10] = float("nan")
    gappy[1, 20:] = float("nan")
    batches = [{**inputs, "labels": gappy}, {**inputs, "labels": labels}]  # two accumulation micro-batches
    assert int(trainer._get_num_items_in_batch(batches, torch.device("cpu"))) == 4 * 20 - 10 + labels.numel()


def test_eval_loss_is_the_squared_error_over_every_observed_label(tmp_path):
    """Trainer averages per-batch mean losses: 3 windows in batches of 2, window 0 with 40 observed days, windows 1 and
    2 with one each, gave 356 for a squared error over the observed labels of 25.6 per label."""
    model = StefaLandForTimeSeriesRegression(tiny_config(head_mode="direct", head_dropout=0.0)).eval()
    x, c = tiny_inputs(batch=3, length=40)
    labels = torch.full((3, 40, 1), float("nan"))
    labels[0, :, 0] = torch.linspace(0.0, 2.0, 40)
    labels[1, 5, 0], labels[2, 7, 0] = 1.0, 50.0
    windows = [{"x_dynamic": x[i], "x_static": c[i], "labels": labels[i]} for i in range(3)]
    trainer = _trainer(model, tmp_path)
    trainer.args.per_device_eval_batch_size = 2
    eval_loss = trainer.evaluate(eval_dataset=windows)["eval_loss"]
    with torch.no_grad():
        expected = model(x, c, labels=labels).loss  # squared error over the 42 observed labels / 42
    assert eval_loss == pytest.approx(float(expected), rel=1e-5)


def test_trainer_refuses_a_model_without_num_items_in_batch(tmp_path):
    with pytest.raises(TypeError, match="num_items_in_batch"):
        _trainer(StefaLandForPretraining(tiny_config()), tmp_path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(command: list, env: dict) -> None:
    result = subprocess.run([str(a) for a in command], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]


def _finetune_log(run: Path) -> np.ndarray:
    """(loss, grad_norm) of each finetuning step, from Trainer's log history."""
    (state,) = (run / "finetune" / "checkpoints").glob("checkpoint-*/trainer_state.json")
    return np.array([[e["loss"], e["grad_norm"]] for e in json.loads(state.read_text())["log_history"] if "loss" in e])


def assert_same_training(one: Path, two: Path) -> None:
    """The 2-process run ``two`` got disjoint halves of the batches of ``one`` and ended with the same weights and logs."""
    batches_one = json.loads((one / "windows_rank0.json").read_text())
    ranks = [json.loads((two / f"windows_rank{r}.json").read_text()) for r in range(2)]
    for phase, batches in batches_one.items():
        assert len(batches) == len(ranks[0][phase]) == len(ranks[1][phase]) > 0, phase
        for step, windows in enumerate(batches):
            shards = [{tuple(w) for w in rank[phase][step]} for rank in ranks]
            assert len(shards[0]) == len(shards[1]) == 8 and not shards[0] & shards[1], (phase, step)
            assert shards[0] | shards[1] == {tuple(w) for w in windows}, (phase, step)

    for part in ("pretrain", "finetune"):
        expected, got = (load_file(run / part / "model" / "model.safetensors") for run in (one, two))
        assert expected.keys() == got.keys()
        for name in expected:
            # AdamW's first steps are about lr * sign(gradient), which amplifies float noise (measured: < 2e-6).
            torch.testing.assert_close(got[name], expected[name], rtol=0, atol=1e-5, msg=lambda m: f"{part}: {name}: {m}")
    # Logged losses and gradient norms are those of the global batch.
    curves = [np.loadtxt(run / "pretrain" / "loss_curve.csv", delimiter=",", skiprows=1) for run in (one, two)]
    np.testing.assert_allclose(curves[1], curves[0], rtol=1e-5)
    np.testing.assert_allclose(_finetune_log(two), _finetune_log(one), rtol=1e-5)


def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    cache = tmp_path / "cache"
    # The 1-process run also prepares the dataset cache, which the 2 processes then only read.
    _run([sys.executable, SCRIPT, tmp_path / "one", cache, "--batch-size", 16], env)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", 2, "--num_machines", 1,
              "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", _free_port()]
    _run([*launch, SCRIPT, tmp_path / "two", cache, "--batch-size", 8], env)
    assert_same_training(tmp_path / "one", tmp_path / "two")
