"""Publishing: cards, one-commit pushes and pulls against the fake Hub (tests/fake_hub.py), name resolution.

HF clients run in subprocesses pointed at the fake Hub (see the fake_hub docstring for why).
"""

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import tiny_config, tiny_inputs  # noqa: E402
from fake_hub import start_fake_hub  # noqa: E402

from stefaland_hf import StefaLandForTimeSeriesRegression  # noqa: E402
from stefaland_hf import hub as hubmod  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
REPORT = {
    "head_mode": "resconn",
    "split": {"name": "pub_fold0", "train_sites": [0, 1, 2], "val_sites": [3], "test_sites": [4, 5],
              "train_period": ["2000-01-01", "2001-06-30"], "val_period": ["2000-01-01", "2001-06-30"],
              "test_period": ["2001-07-01", "2002-12-31"], "site_ids": None, "info": {"fold": 0}},
    "summary": {"nse": 0.71234, "kge": 0.654, "rmse": 1.111, "ubrmse": 1.0, "fhv": float("nan")},
    "arguments": {"target_variables": ["streamflow"], "seq_len": 365, "learning_rate": 0.001},
    "trainable_parameters": 1234,
    "steps": 50,
    "train_seconds": 3.2,
}
BLOCK_PACKAGE = """
import importlib.abc, sys
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "stefaland_hf":
            raise ImportError("stefaland_hf is blocked in this process")
sys.meta_path.insert(0, _Block())
"""
FAST_BACKOFF = """
import functools
import huggingface_hub.lfs as _lfs
_lfs.http_backoff = functools.partial(_lfs.http_backoff, base_wait_time=0.01, max_wait_time=0.01)
"""


@pytest.fixture(scope="module")
def hub():
    h = start_fake_hub()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny saved regression model, a resConn adapter on it, inputs and reference outputs."""
    from peft import get_peft_model

    from stefaland_hf import ResConnConfig

    root = tmp_path_factory.mktemp("artifacts")
    torch.manual_seed(0)
    model = StefaLandForTimeSeriesRegression(tiny_config()).eval()
    model.save_pretrained(root / "model")
    x, c = tiny_inputs()
    with torch.no_grad():
        y = model(x, c).prediction
    torch.manual_seed(1)
    base = StefaLandForTimeSeriesRegression.from_pretrained(root / "model")
    peft_model = get_peft_model(base, ResConnConfig(target_mean=[1.0], target_std=[2.0], head_hidden_size=8))
    with torch.no_grad():  # make the adapter differ from a fresh init
        for p in peft_model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    peft_model.eval()
    peft_model.save_pretrained(root / "adapter")
    with torch.no_grad():
        ya = peft_model(x, c).prediction
    torch.save({"x": x, "c": c, "y": y, "ya": ya}, root / "io.pt")
    (root / "report.json").write_text(json.dumps(REPORT))
    return root


def _client(hub, code, tmp_path, name="hf", prefix="", **kw):
    return hub.run_client(prefix + textwrap.dedent(code), hf_home=tmp_path / name, **kw)


# ------------------------------------------------------------------------------------------------
# templates and cards (no server)
# ------------------------------------------------------------------------------------------------
def test_templates_are_found():
    for name in ("model_card.md", "adapter_card.md", "dataset_card.md"):
        assert hubmod.template_path(name) == REPO_ROOT / "hub_cards" / name


def test_results_from_report_and_model_card_yaml(saved, tmp_path):
    from huggingface_hub import ModelCard

    path = tmp_path / "report.json"
    path.write_text(json.dumps(REPORT))
    results = hubmod.results_from_report(path, "CAMELS-US")
    assert [r.metric_type for r in results] == ["nse", "kge", "rmse"]
    assert results[0].metric_value == 0.7123 and results[0].dataset_split == "pub_fold0"
    assert results[0].dataset_type == "camels_us"
    card = hubmod.render_model_card(saved / "model", results=results, report=REPORT, repo_id="org/m",
                                    training={"data": "SynthLand tiny"})
    parsed = ModelCard(str(card))
    assert parsed.data.library_name == "transformers" and parsed.data.license == "apache-2.0"
    assert {(r.metric_type, r.metric_value) for r in parsed.data.eval_results} == {("nse", 0.7123), ("kge", 0.654), ("rmse", 1.111)}
    text = str(card)
    assert "`precipitation` | mm/day" in text and "`streamflow` | mm/day" in text
    assert "StefaLandForTimeSeriesRegression" in text and "AutoModelForTimeSeriesPrediction" in text
    assert "arXiv:2509.17942" in text and "Spatial extrapolation" in text and "SynthLand tiny" in text
    assert "| 0 | `precipitation` | mm/day | daily total precipitation (rain + snow, water equivalent) | 2 | 4 |" in text
    assert "pub_fold0" in text and "Newman" in text  # CAMELS citation


def test_render_from_config_and_adapter_card(saved):
    from huggingface_hub import ModelCard

    card = hubmod.render_model_card(tiny_config())
    assert "Parameters |" in str(card) and ModelCard(str(card)).data.eval_results is None
    from stefaland_hf import ResConnConfig

    with pytest.raises(ValueError, match="base_model"):
        hubmod.render_adapter_card(ResConnConfig(), None, None)
    card = hubmod.render_adapter_card(saved / "adapter", REPORT, "org/base", dataset_name="SynthLand", repo_id="org/a")
    data = ModelCard(str(card)).data
    assert data.library_name == "peft" and data.base_model == "org/base"
    assert [r.metric_type for r in data.eval_results] == ["nse", "kge", "rmse"]


# ------------------------------------------------------------------------------------------------
# round trips against the fake Hub
# ------------------------------------------------------------------------------------------------
def test_push_model_from_pretrained_and_remote_code(hub, saved, tmp_path):
    out = _client(hub, f"""
        import torch
        import stefaland_hf.hub as h
        from huggingface_hub import ModelCard
        from transformers import AutoModelForTimeSeriesPrediction
        card = h.render_model_card({str(saved / "model")!r}, results=h.results_from_report({str(saved / "report.json")!r}, "SynthLand"),
                                   repo_id="org/stefaland-tiny")
        info = h.push_model({str(saved / "model")!r}, "org/stefaland-tiny", card=card)
        io = torch.load({str(saved / "io.pt")!r})
        m = AutoModelForTimeSeriesPrediction.from_pretrained("org/stefaland-tiny").eval()
        short = h.from_pretrained("stefaland-tiny", AutoModelForTimeSeriesPrediction).eval()  # STEFALAND_HUB_ORG=org
        loaded = ModelCard.load("org/stefaland-tiny")
        emit({{"url": info.commit_url, "same": bool(torch.equal(m(io["x"], io["c"]).prediction, io["y"])),
               "short": [h.resolve_model_name("stefaland-tiny"), bool(torch.equal(short(io["x"], io["c"]).prediction, io["y"]))],
               "cls": type(m).__module__, "metrics": {{r.metric_type: r.metric_value for r in loaded.data.eval_results}}}})
    """, tmp_path, "hf1", env={"STEFALAND_HUB_ORG": "org"}, cwd=tmp_path)
    d = out.data
    assert d["same"] and d["cls"].startswith("stefaland_hf") and d["short"] == ["org/stefaland-tiny", True]
    assert d["metrics"] == {"nse": 0.7123, "kge": 0.654, "rmse": 1.111}
    commits = hub.commits("org/stefaland-tiny")
    assert len(commits) == 2 and commits[-1] in d["url"]
    files = hub.list_files("org/stefaland-tiny")
    for name in ("README.md", "config.json", "model.safetensors", *hubmod.REMOTE_CODE_FILES):
        assert name in files
    assert b"model-index" in hub.read_file("org/stefaland-tiny", "README.md")

    # the short name again, offline, from the HF cache that the first client filled
    offline = _client(hub, f"""
        import torch, stefaland_hf.hub as h
        from transformers import AutoModelForTimeSeriesPrediction
        io = torch.load({str(saved / "io.pt")!r})
        m = h.from_pretrained("stefaland-tiny", AutoModelForTimeSeriesPrediction).eval()
        emit(bool(torch.equal(m(io["x"], io["c"]).prediction, io["y"])))
    """, tmp_path, "hf1", env={"STEFALAND_HUB_ORG": "org", "HF_HUB_OFFLINE": "1"}, cwd=tmp_path)
    assert offline.data is True

    # remote code in a fresh process that cannot import stefaland_hf
    out = _client(hub, f"""
        import os, torch
        from huggingface_hub import snapshot_download
        from transformers import AutoModel, AutoModelForTimeSeriesPrediction
        snap = snapshot_download("org/stefaland-tiny")
        io = torch.load({str(saved / "io.pt")!r})
        m = AutoModelForTimeSeriesPrediction.from_pretrained("org/stefaland-tiny", trust_remote_code=True).eval()
        backbone = AutoModel.from_pretrained(snap, trust_remote_code=True)
        emit({{"same": bool(torch.equal(m(io["x"], io["c"]).prediction, io["y"])), "module": type(m).__module__,
               "backbone": type(backbone).__name__, "blocked": "stefaland_hf" not in sys.modules,
               "files": sorted(os.listdir(snap))}})
    """, tmp_path, "hf2", prefix=BLOCK_PACKAGE)
    d = out.data
    assert d["same"] and d["module"].startswith("transformers_modules") and d["blocked"]
    assert d["backbone"] == "StefaLandModel" and "README.md" in d["files"]


def test_push_adapter_and_cli_push_model(hub, saved, tmp_path):
    """Adapter push -> PeftModel.from_pretrained equal outputs; the base goes up with `stefaland push model`."""
    out = _client(hub, f"""
        import torch
        from peft import PeftModel
        from huggingface_hub import ModelCard
        from stefaland_hf import StefaLandForTimeSeriesRegression
        from stefaland_hf.cli import main
        from stefaland_hf.hub import push_adapter
        main(["push", "model", {str(saved / "model")!r}, "org/adapter-base", "--report", {str(saved / "report.json")!r},
              "--eval-dataset", "SynthLand"])
        info = push_adapter({str(saved / "adapter")!r}, "org/adapter", base_model="org/adapter-base",
                            report={str(saved / "report.json")!r}, dataset_name="SynthLand")
        io = torch.load({str(saved / "io.pt")!r})
        base = StefaLandForTimeSeriesRegression.from_pretrained("org/adapter-base")
        pm = PeftModel.from_pretrained(base, "org/adapter").eval()
        card = ModelCard.load("org/adapter")
        emit({{"same": bool(torch.allclose(pm(io["x"], io["c"]).prediction, io["ya"])),
               "base": card.data.base_model, "lib": card.data.library_name,
               "metrics": sorted(r.metric_type for r in card.data.eval_results)}})
    """, tmp_path, "hf1")
    assert out.data == {"same": True, "base": "org/adapter-base", "lib": "peft", "metrics": ["kge", "nse", "rmse"]}
    assert len(hub.commits("org/adapter")) == 2
    base_commits = hub.commits("org/adapter-base")
    assert len(base_commits) == 2 and f"{base_commits[-1]}" in out.stdout  # the CLI prints the commit URL
    assert b"name: NSE (median over sites)" in hub.read_file("org/adapter-base", "README.md")
    files = hub.list_files("org/adapter")
    assert {"README.md", "adapter_config.json", "adapter_model.safetensors"} <= set(files)
    assert json.loads(hub.read_file("org/adapter", "adapter_config.json"))["base_model_name_or_path"] == "org/adapter-base"
    assert b"[More Information Needed]" not in hub.read_file("org/adapter", "README.md")  # PEFT's stub was replaced


def test_push_dataset_load_dataset_array2d(hub, tmp_path):
    out = _client(hub, f"""
        import numpy as np
        from datasets import load_dataset
        from huggingface_hub import DatasetCard
        from stefaland_hf.data.synthland import SynthLand
        from stefaland_hf.hub import push_dataset
        builder = SynthLand(config_name="tiny", cache_dir={str(tmp_path / "build")!r})
        builder.download_and_prepare()
        ds = builder.as_dataset(split="all")
        info = push_dataset(ds, "org/synthland", config_name="tiny", name="synthland")
        # a second config in the same repo keeps the first one loadable
        push_dataset(ds.select(range(4)), "org/synthland", config_name="small", name="synthland")
        back = load_dataset("org/synthland", "tiny", split="train")
        small = load_dataset("org/synthland", "small", split="train")
        a, b = ds.with_format("numpy"), back.with_format("numpy")
        same = all(np.array_equal(np.asarray(a[k]), np.asarray(b[k]), equal_nan=True)
                   for k in ("dynamic", "targets", "oracle", "static", "latitude"))
        card = DatasetCard.load("org/synthland", repo_type="dataset")
        emit({{"same": same, "n": len(back), "n_small": len(small), "sites": back["site_id"] == ds["site_id"],
               "feature": repr(back.features["dynamic"]), "features_equal": back.features == ds.features,
               "configs": sorted(c["config_name"] for c in card.data.configs), "license": card.data.license}})
    """, tmp_path, "hf")
    d = out.data
    assert d["same"] and d["sites"] and d["n"] == 16 and d["n_small"] == 4
    assert "Array2D" in d["feature"] and d["features_equal"], d
    assert d["configs"] == ["small", "tiny"] and d["license"] == "apache-2.0"
    assert len(hub.commits("org/synthland", repo_type="dataset")) == 3  # create + one commit per push
    files = hub.list_files("org/synthland", repo_type="dataset")
    assert "README.md" in files and "tiny/train-00000-of-00001.parquet" in files and "small/train-00000-of-00001.parquet" in files
    readme = hub.read_file("org/synthland", "README.md", repo_type="dataset").decode()
    assert "`precipitation` | mm/day" in readme and "array2_d" in readme


def test_failed_push_leaves_no_commit_and_names_the_operation(hub, saved, tmp_path):
    torch.manual_seed(7)  # weights the fake Hub has never stored, so the LFS upload really happens
    StefaLandForTimeSeriesRegression(tiny_config()).save_pretrained(tmp_path / "model")
    hub.create_repo("org/interrupted")
    before = hub.commits("org/interrupted")
    push = textwrap.dedent(f"""
        def push():
            from stefaland_hf.hub import HubPushError, push_model
            try:
                return {{"raised": None, "url": push_model({str(tmp_path / "model")!r}, "org/interrupted").commit_url}}
            except HubPushError as e:
                return {{"raised": str(e), "operation": e.operation, "repo": e.repo_id, "cause": type(e.__cause__).__name__}}
    """)
    hub.fail_next("PUT", r"^/__lfs__/", times=100)  # every LFS upload attempt fails (5xx: retried, then given up)
    try:
        out = _client(hub, push + "emit(push())", tmp_path, "hf1", prefix=FAST_BACKOFF)
    finally:
        hub.clear_failures()
    d = out.data
    assert d["raised"] and "uploading files" in d["operation"] and d["repo"] == "org/interrupted"
    assert "org/interrupted" in d["raised"] and "model.safetensors" in d["raised"] and "no commit" in d["raised"]
    assert hub.commits("org/interrupted") == before

    # the commit POST fails after the LFS upload succeeded; then a retry makes exactly one commit
    hub.fail_next("POST", r"^/api/models/org/interrupted/commit/", times=1)
    out = _client(hub, push + "emit([push(), push()])", tmp_path, "hf2")
    failed, retried = out.data
    assert failed["operation"] == "creating the commit" and failed["cause"] == "HfHubHTTPError"
    assert "push model to model repository 'org/interrupted' failed while creating the commit" in failed["raised"]
    assert retried["raised"] is None
    after = hub.commits("org/interrupted")
    assert after[:-1] == before and len(after) == len(before) + 1 and after[-1] in retried["url"]


# ------------------------------------------------------------------------------------------------
# name resolution
# ------------------------------------------------------------------------------------------------
def test_resolve_model_name_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STEFALAND_WEIGHTS", raising=False)
    monkeypatch.delenv("STEFALAND_HUB_ORG", raising=False)
    assert hubmod.resolve_model_name("stefaland-base") == "stefaland/stefaland-base"
    monkeypatch.setenv("STEFALAND_HUB_ORG", "myorg")
    assert hubmod.resolve_model_name("stefaland-base") == "myorg/stefaland-base"
    weights = tmp_path / "weights"
    (weights / "stefaland-base").mkdir(parents=True)
    monkeypatch.setenv("STEFALAND_WEIGHTS", str(weights))
    assert hubmod.resolve_model_name("stefaland-base") == str(weights / "stefaland-base")
    assert hubmod.resolve_model_name("stefaland-tiny") == "myorg/stefaland-tiny"  # not in STEFALAND_WEIGHTS
    (tmp_path / "stefaland-base").mkdir()
    assert hubmod.resolve_model_name("stefaland-base") == "stefaland-base"  # CWD folder wins
    assert hubmod.resolve_model_name("other/repo") == "other/repo"


def test_offline_automodel_short_name_from_hand_made_cache(saved, tmp_path):
    """Plain ``AutoModel.from_pretrained("stefaland-base")`` offline from ``models--stefaland-base`` in the HF cache."""
    import shutil
    import subprocess

    sha = "0123456789abcdef0123456789abcdef01234567"
    entry = tmp_path / "hf" / "hub" / "models--stefaland-base"
    shutil.copytree(saved / "model", entry / "snapshots" / sha)
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text(sha)
    code = textwrap.dedent(f"""
        import torch, stefaland_hf
        from transformers import AutoModel, AutoModelForTimeSeriesPrediction
        io = torch.load({str(saved / "io.pt")!r})
        m = AutoModelForTimeSeriesPrediction.from_pretrained("stefaland-base").eval()
        assert torch.equal(m(io["x"], io["c"]).prediction, io["y"])
        print("OFFLINE-OK", type(AutoModel.from_pretrained("stefaland-base")).__name__)
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1")
    (tmp_path / "elsewhere").mkdir()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path / "elsewhere")
    assert "OFFLINE-OK StefaLandModel" in result.stdout, result.stderr[-3000:]
