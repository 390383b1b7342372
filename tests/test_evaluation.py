"""Whole-period evaluation: sequential window plans, stitching, and the device rule."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from site_data import DYN, STAT, make_data, multi_chunk, nan_equal

from stefaland_hf.data.site_arrays import SiteArrays
from stefaland_hf.evaluation import evaluate_sites, model_device, predict_sites, sequential_window_plan


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.mark.parametrize("warmup,period,context", [(4, ("2000-01-15", "2000-02-24"), True), (0, None, True), (5, None, True), (6, (10, 47), False)])
def test_predict_sites_identity_reproduces_observations(data, warmup, period, context):
    ds, dyn, tgt, *_ = data
    ds = multi_chunk(ds)
    calls = []

    def identity(model, batch):
        calls.append(batch["x_dynamic"].shape)
        # the labels are the observations except on the warm-up days
        assert torch.isnan(batch["labels"][:, :warmup]).all()
        return batch["labels"]

    res = predict_sites(
        torch.nn.Identity(), ds, sites=[5, 0, 2], period=period, seq_len=12, warmup=warmup, batch_size=4,
        drop_keys=(), context_before_period=context, forward=identity,
    )
    a = SiteArrays(ds)
    p0, p1 = a.period_index(period)
    assert res["predictions"].shape == res["observations"].shape == (3, p1 - p0, 2)
    assert res["site_ids"] == ["site5", "site0", "site2"]
    assert res["dates"][0] == a.dates[p0] and len(res["dates"]) == p1 - p0
    np.testing.assert_array_equal(res["observations"], tgt[[5, 0, 2], p0:p1])
    f = res["first_predicted"]
    expect_f = max(warmup - p0, 0) if context else warmup
    assert f == expect_f
    assert np.isnan(res["predictions"][:, :f]).all()
    assert nan_equal(res["predictions"][:, f:], res["observations"][:, f:])
    assert all(shape[1] == 12 for shape in calls)


def test_predict_sites_uses_model_outputs_not_labels(data):
    ds, dyn, *_ = data

    def day_of_window(model, batch):  # returns start + position: checks the stitching offsets
        b, length, _ = batch["x_dynamic"].shape
        pos = batch["start"][:, None].float() + torch.arange(length)[None, :].float()
        return pos[..., None].expand(b, length, 1).contiguous()

    res = predict_sites(
        torch.nn.Identity(), ds, period=("2000-01-11", "2000-02-29"), seq_len=9, warmup=3,
        target_variables=["streamflow"], drop_keys=("labels",), forward=day_of_window,
    )
    days = np.arange(10, 60, dtype=np.float32)
    np.testing.assert_array_equal(res["predictions"][:, :, 0], np.broadcast_to(days, (6, 50)))


def test_sequential_plan_covers_period_once():
    for n, p, L, wu, ctx in [(100, (30, 100), 20, 5, True), (100, (0, 100), 20, 5, True), (100, (3, 90), 20, 5, True),
                             (100, (3, 90), 20, 5, False), (50, (40, 50), 20, 5, True), (30, (0, 12), 20, 5, True)]:
        plan = sequential_window_plan(n, p, L, wu, ctx)
        written = []
        for s, w0 in zip(plan["starts"], plan["write_from"]):
            assert s >= (0 if ctx else p[0]) and s + plan["length"] <= p[1]
            assert w0 >= wu
            written.extend(range(s + w0, s + plan["length"]))
        assert written == list(range(plan["first_predicted"], p[1]))  # each day once, in order


class DeviceRecorder(torch.nn.Module):
    """A model whose weights live on the ``meta`` device (a device other than the CPU, on any machine): it
    records the device of every input and predicts zeros on the CPU."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1, device="meta"))
        self.input_devices = []

    def forward(self, x_dynamic, x_static):
        self.input_devices += [x_dynamic.device, x_static.device]
        return SimpleNamespace(prediction=torch.zeros(*x_dynamic.shape[:2], 1))


def test_predictions_run_on_the_model_device(data):
    ds, *_ = data
    model = DeviceRecorder()
    assert model_device(model) == torch.device("meta") and model_device(torch.nn.Identity()) == torch.device("cpu")
    res = predict_sites(model, ds, period=(10, 60), seq_len=12, warmup=4, target_variables=["streamflow"], batch_size=4)
    assert model.input_devices and set(model.input_devices) == {model_device(model)}
    assert isinstance(res["predictions"], np.ndarray) and (res["predictions"][:, res["first_predicted"] :] == 0).all()


def test_evaluate_sites_runs_on_the_model_device(data):
    ds, *_ = data
    model = DeviceRecorder()
    evaluation = evaluate_sites(model, ds, [0, 3], (10, 60), 12, 4, 4, DYN, STAT, ["streamflow"])
    assert model.input_devices and set(model.input_devices) == {torch.device("meta")}
    assert evaluation["predictions"].shape == (2, 50, 1) and set(evaluation["per_site"]) >= {"nse", "kge"}
