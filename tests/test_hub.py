"""Publishing: one-commit pushes and pulls against the fake Hub (tests/fake_hub.py), the pushed cards' code, name
resolution. Card rendering and cards' code on local artifacts: tests/test_hub_cards.py.

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
from conftest import tiny_config  # noqa: E402
from fake_hub import start_fake_hub  # noqa: E402
from test_hub_cards import BLOCK_PACKAGE, REPORT, saved  # noqa: E402,F401  (saved: the artifacts fixture)

from stefaland_hf import StefaLandForTimeSeriesRegression  # noqa: E402
from stefaland_hf.hub import cards, names, push  # noqa: E402

HOW_TO_USE = """
import re as _re
def how_to_use(card: str) -> dict:
    \"\"\"Run the "How to use" code of a card (its text) as a user would paste it; return what it defined.\"\"\"
    namespace = {}
    exec(_re.search(r"## How to use\\n\\n```python\\n(.*?)```", card, _re.S).group(1), namespace)
    return namespace
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


def _client(hub, code, tmp_path, name="hf", prefix="", **kw):
    return hub.run_client(prefix + textwrap.dedent(code), hf_home=tmp_path / name, **kw)


# ------------------------------------------------------------------------------------------------
# round trips against the fake Hub
# ------------------------------------------------------------------------------------------------
def test_push_model_from_pretrained_and_remote_code(hub, saved, tmp_path):
    """Push -> from_pretrained by id and by short name; the pushed card's code and remote-code line load it."""
    out = _client(hub, f"""
        import torch
        from huggingface_hub import ModelCard
        from transformers import AutoModelForTimeSeriesPrediction
        from stefaland_hf.hub import from_pretrained, push_model, render_model_card
        from stefaland_hf.hub.cards import results_from_report
        from stefaland_hf.hub.names import resolve_model_name
        card = render_model_card({str(saved / "model")!r}, results=results_from_report({str(saved / "report.json")!r}, "SynthLand"),
                                 repo_id="org/stefaland-tiny")
        info = push_model({str(saved / "model")!r}, "org/stefaland-tiny", card=card)
        io = torch.load({str(saved / "io.pt")!r})
        m = AutoModelForTimeSeriesPrediction.from_pretrained("org/stefaland-tiny").eval()
        short = from_pretrained("stefaland-tiny", AutoModelForTimeSeriesPrediction).eval()  # STEFALAND_HUB_ORG=org
        loaded = ModelCard.load("org/stefaland-tiny")
        snippet = how_to_use(str(loaded))
        emit({{"url": info.commit_url, "same": bool(torch.equal(m(io["x"], io["c"]).prediction, io["y"])),
               "short": [resolve_model_name("stefaland-tiny"), bool(torch.equal(short(io["x"], io["c"]).prediction, io["y"]))],
               "cls": type(m).__module__, "metrics": {{r.metric_type: r.metric_value for r in loaded.data.eval_results}},
               "snippet": bool(torch.allclose(snippet["model"](io["x"], io["c"]).prediction, io["y"]))}})
    """, tmp_path, "hf1", prefix=HOW_TO_USE, env={"STEFALAND_HUB_ORG": "org"}, cwd=tmp_path)
    d = out.data
    assert d["same"] and d["cls"].startswith("stefaland_hf") and d["short"] == ["org/stefaland-tiny", True] and d["snippet"]
    assert d["metrics"] == {"nse": 0.7123, "kge": 0.654, "rmse": 1.111}
    commits = hub.commits("org/stefaland-tiny")
    assert len(commits) == 2 and commits[-1] in d["url"]
    files = hub.list_files("org/stefaland-tiny")
    for name in ("README.md", "config.json", "model.safetensors", *push.REMOTE_CODE_FILES):
        assert name in files
    assert b"model-index" in hub.read_file("org/stefaland-tiny", "README.md")

    # the short name again, offline, from the HF cache that the first client filled
    offline = _client(hub, f"""
        import torch
        from transformers import AutoModelForTimeSeriesPrediction
        from stefaland_hf.hub import from_pretrained
        io = torch.load({str(saved / "io.pt")!r})
        m = from_pretrained("stefaland-tiny", AutoModelForTimeSeriesPrediction).eval()
        emit(bool(torch.equal(m(io["x"], io["c"]).prediction, io["y"])))
    """, tmp_path, "hf1", env={"STEFALAND_HUB_ORG": "org", "HF_HUB_OFFLINE": "1"}, cwd=tmp_path)
    assert offline.data is True

    # the card's remote-code line in a fresh process that cannot import stefaland_hf
    out = _client(hub, f"""
        import os, re, torch
        from huggingface_hub import snapshot_download
        from transformers import AutoModel, AutoModelForTimeSeriesPrediction
        snap = snapshot_download("org/stefaland-tiny")
        io = torch.load({str(saved / "io.pt")!r})
        line = re.search(r"Without the package installed, `(.*?)`", open(os.path.join(snap, "README.md")).read()).group(1)
        m = eval(line).eval()
        backbone = AutoModel.from_pretrained(snap, trust_remote_code=True)
        emit({{"same": bool(torch.equal(m(io["x"], io["c"]).prediction, io["y"])), "module": type(m).__module__,
               "backbone": type(backbone).__name__, "blocked": "stefaland_hf" not in sys.modules,
               "files": sorted(os.listdir(snap)), "line": line}})
    """, tmp_path, "hf2", prefix=BLOCK_PACKAGE)
    d = out.data
    assert d["line"] == 'AutoModelForTimeSeriesPrediction.from_pretrained("org/stefaland-tiny", trust_remote_code=True)'
    assert d["same"] and d["module"].startswith("transformers_modules") and d["blocked"]
    assert d["backbone"] == "StefaLandModel" and "README.md" in d["files"]


def test_push_adapter_and_cli_push_model(hub, saved, tmp_path):
    """Adapter push -> PeftModel.from_pretrained, AutoPeftModel.from_pretrained and the pushed card's code give the
    adapter's outputs; the base goes up with `stefaland push model`."""
    out = _client(hub, f"""
        import re, torch
        from peft import AutoPeftModel, PeftModel
        from huggingface_hub import ModelCard
        from stefaland_hf import StefaLandForTimeSeriesRegression
        from stefaland_cli import main
        from stefaland_hf.hub import push_adapter
        main(["push", "model", {str(saved / "model")!r}, "org/adapter-base", "--report", {str(saved / "report.json")!r},
              "--eval-dataset", "SynthLand"])
        info = push_adapter({str(saved / "adapter")!r}, "org/adapter", base_model="org/adapter-base",
                            report={str(saved / "report.json")!r}, dataset_name="SynthLand")
        io = torch.load({str(saved / "io.pt")!r})
        base = StefaLandForTimeSeriesRegression.from_pretrained("org/adapter-base")
        pm = PeftModel.from_pretrained(base, "org/adapter").eval()
        loaded = ModelCard.load("org/adapter")
        line = re.search(r"\\n`(AutoPeftModel\\.from_pretrained\\(.*?\\))`", str(loaded)).group(1)  # the card's one-call load
        auto = eval(line).eval()
        snippet = how_to_use(str(loaded))
        emit({{"same": bool(torch.allclose(pm(io["x"], io["c"]).prediction, io["ya"])),
               "auto": bool(torch.allclose(auto(io["x"], io["c"]).prediction, io["ya"])),
               "snippet": bool(torch.allclose(snippet["model"](io["x"], io["c"]).prediction, io["ya"])), "line": line,
               "base": loaded.data.base_model, "lib": loaded.data.library_name,
               "metrics": sorted(r.metric_type for r in loaded.data.eval_results)}})
    """, tmp_path, "hf1", prefix=HOW_TO_USE)
    assert out.data == {"same": True, "auto": True, "snippet": True, "base": "org/adapter-base", "lib": "peft",
                        "metrics": ["kge", "nse", "rmse"],
                        "line": 'AutoPeftModel.from_pretrained("org/adapter", target_variables=[\'streamflow\'])'}
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
        from datasets import DatasetDict, load_dataset
        from huggingface_hub import DatasetCard, HfApi
        from stefaland_hf.data.synthland import SynthLand
        from stefaland_hf.hub import push_dataset
        builder = SynthLand(config_name="tiny", cache_dir={str(tmp_path / "build")!r})
        builder.download_and_prepare()
        ds = builder.as_dataset(split="all")
        info = push_dataset(ds, "org/synthland", config_name="tiny", name="synthland")
        # a second config in the same repo keeps the first one loadable; re-pushing it without its
        # test split removes that split's shards (the config's folder mirrors the push)
        push_dataset(DatasetDict(train=ds.select(range(4)), test=ds.select(range(4, 6))), "org/synthland",
                     config_name="small", name="synthland")
        after_two = sorted(HfApi().list_repo_files("org/synthland", repo_type="dataset"))
        push_dataset(ds.select(range(4)), "org/synthland", config_name="small", name="synthland")
        back = load_dataset("org/synthland", "tiny", split="train")
        small = load_dataset("org/synthland", "small", split="train")
        a, b = ds.with_format("numpy"), back.with_format("numpy")
        same = all(np.array_equal(np.asarray(a[k]), np.asarray(b[k]), equal_nan=True)
                   for k in ("dynamic", "targets", "oracle", "static", "latitude"))
        card = DatasetCard.load("org/synthland", repo_type="dataset")
        snippet = how_to_use(str(card))
        emit({{"snippet": list(snippet["dynamic"].shape), "expected": [4, *np.asarray(a["dynamic"]).shape[1:]], "same": same, "n": len(back), "n_small": len(small), "sites": back["site_id"] == ds["site_id"],
               "feature": repr(back.features["dynamic"]), "features_equal": back.features == ds.features,
               "configs": sorted(c["config_name"] for c in card.data.configs), "license": card.data.license,
               "after_two": after_two, "small_splits": [s["name"] for i in card.data.dataset_info
                                                        if i["config_name"] == "small" for s in i["splits"]]}})
    """, tmp_path, "hf", prefix=HOW_TO_USE)
    d = out.data
    assert d["same"] and d["sites"] and d["n"] == 16 and d["n_small"] == 4
    assert d["snippet"] == d["expected"]  # the card's code loads the last push: config "small", split "train"
    assert "Array2D" in d["feature"] and d["features_equal"], d
    assert d["configs"] == ["small", "tiny"] and d["license"] == "apache-2.0"
    assert len(hub.commits("org/synthland", repo_type="dataset")) == 4  # create + one commit per push
    assert "small/test-00000-of-00001.parquet" in d["after_two"]
    files = hub.list_files("org/synthland", repo_type="dataset")
    assert files == [".gitattributes", "README.md", "small/train-00000-of-00001.parquet", "tiny/train-00000-of-00001.parquet"]
    assert d["small_splits"] == ["train"]
    readme = hub.read_file("org/synthland", "README.md", repo_type="dataset").decode()
    assert "`precipitation` | mm/day" in readme and "array2_d" in readme


def test_converted_checkpoint_pushed_with_its_card(hub, tmp_path):
    """docs/converting_original_checkpoints.md, step 3: the conversion card rendered for the repo; its code loads it."""
    import warnings

    from test_convert_original import HEADS, make_inputs, original_state_dict

    from stefaland_hf.convert_original import convert_original_checkpoint

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no stats: "inputs must be z-scored"
        result = convert_original_checkpoint(original_state_dict(), out_dir=tmp_path / "stefaland-base", num_attention_heads=HEADS)
    x, c, _, _ = make_inputs()
    with torch.no_grad():
        torch.save({"x": x, "c": c, "expected": result.model.eval()(x, c).dynamic_reconstruction}, tmp_path / "io.pt")
    out = _client(hub, f"""
        import json, torch
        from huggingface_hub import ModelCard
        from stefaland_hf.hub import push_model, render_converted_card

        report = json.loads(open("stefaland-base/conversion_report.json").read())
        push_model("stefaland-base", "org/stefaland-base", card=render_converted_card(report, "org/stefaland-base"))
        snippet = how_to_use(str(ModelCard.load("org/stefaland-base")))
        io = torch.load({str(tmp_path / "io.pt")!r})
        emit(bool(torch.allclose(snippet["model"](io["x"], io["c"]).dynamic_reconstruction, io["expected"])))
    """, tmp_path, "hf1", prefix=HOW_TO_USE, cwd=tmp_path)
    assert out.data is True
    readme = hub.read_file("org/stefaland-base", "README.md").decode()
    assert 'StefaLandForPretraining.from_pretrained("org/stefaland-base")' in readme and "must be z-scored" in readme
    assert "conversion_report.json" in hub.list_files("org/stefaland-base")


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
                return {{"raised": str(e), "operation": e.operation, "repo": e.repo_id, "cause": type(e.__cause__).__name__,
                         "committed": e.committed}}
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
    assert f"No commit was made: 'main' is still at {before[-1]}" in failed["raised"] and failed["committed"] is False
    assert retried["raised"] is None
    after = hub.commits("org/interrupted")
    assert after[:-1] == before and len(after) == len(before) + 1 and after[-1] in retried["url"]


def test_repush_mirrors_the_folder_in_one_commit(hub, saved, tmp_path):
    """Files dropped from the folder disappear from the repo in the re-push's single commit; dot-files and --keep stay."""
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(saved / "model", folder)
    (folder / "B.txt").write_text("only in the first push")
    (folder / "old").mkdir()
    (folder / "old" / "weights.safetensors").write_bytes(b"stale weights")
    out = _client(hub, f"""
        from huggingface_hub import HfApi
        from stefaland_hf.hub import push_model
        push_model({str(folder)!r}, "org/mirror")
        api = HfApi()  # files added by other means: one the user keeps, one dot-file of the Hub
        api.upload_file(path_or_fileobj=b"{{}}", path_in_repo="eval/results.json", repo_id="org/mirror")
        api.upload_file(path_or_fileobj=b"x: 1", path_in_repo=".eval_results/nse.yaml", repo_id="org/mirror")
        emit(sorted(api.list_repo_files("org/mirror")))
    """, tmp_path, "hf1")
    first = out.data
    assert {"B.txt", "old/weights.safetensors", "eval/results.json", "model.safetensors"} <= set(first)
    before = hub.commits("org/mirror")

    (folder / "B.txt").unlink()
    shutil.rmtree(folder / "old")
    _client(hub, f"""
        from stefaland_cli import main
        main(["push", "model", {str(folder)!r}, "org/mirror", "--keep", "eval/*"])
    """, tmp_path, "hf2")
    after = hub.commits("org/mirror")
    assert after[:-1] == before and len(after) == len(before) + 1  # one commit for the whole re-push
    files = hub.list_files("org/mirror")
    assert set(first) - set(files) == {"B.txt", "old/weights.safetensors"}
    assert {".gitattributes", ".eval_results/nse.yaml", "eval/results.json"} <= set(files)
    with hub._lock:
        description = hub.repos[("model", "org/mirror")].commits[after[-1]].message
    assert "B.txt" in description and "old/weights.safetensors" in description  # the commit says what it deleted


def test_push_refuses_missing_token_and_namespace_up_front(hub, saved, tmp_path):
    """No token / no namespace: one clear ValueError before any request; a rejected token names the 401 and the fix."""
    hub.valid_tokens = {"hf_fake"}
    n_requests = len(hub.requests)
    try:
        out = _client(hub, f"""
            import os
            os.environ.pop("HF_TOKEN")  # and HF_HOME is fresh: no stored token either
            from stefaland_hf.hub import HubPushError, push_model
            def attempt(repo_id, **kw):
                try:
                    push_model({str(saved / "model")!r}, repo_id, **kw)
                except (ValueError, HubPushError) as e:
                    return {{"type": type(e).__name__, "message": str(e)}}
            emit({{"no_token": attempt("org/no-token"), "no_namespace": attempt("stefaland-tiny", token="hf_fake"),
                   "too_deep": attempt("org/team/model", token="hf_fake")}})
        """, tmp_path, "hf1")
        requests_without_token = hub.requests[n_requests:]
        rejected = _client(hub, f"""
            from stefaland_hf.hub import HubPushError, push_model
            try:
                push_model({str(saved / "model")!r}, "org/bad-token", token="hf_revoked")
            except HubPushError as e:
                emit({{"message": str(e), "operation": e.operation, "committed": e.committed}})
        """, tmp_path, "hf2").data
    finally:
        hub.valid_tokens = None
    d = out.data
    assert d["no_token"]["type"] == "ValueError"
    assert "'org/no-token'" in d["no_token"]["message"] and "hf auth login" in d["no_token"]["message"]
    assert "HF_TOKEN" in d["no_token"]["message"]
    for case in ("no_namespace", "too_deep"):
        assert d[case]["type"] == "ValueError" and "'namespace/name'" in d[case]["message"], d[case]
    assert "'stefaland-tiny'" in d["no_namespace"]["message"] and "'my-user/stefaland-tiny'" in d["no_namespace"]["message"]
    assert requests_without_token == []  # refused before any request
    assert not hub.repo_exists("org/no-token") and not hub.repo_exists(f"{hub.user}/stefaland-tiny")
    assert rejected["operation"] == "creating the repository" and rejected["committed"] is False
    assert "rejected the token (401)" in rejected["message"] and "hf auth login" in rejected["message"]
    assert "'org/bad-token'" in rejected["message"] and not hub.repo_exists("org/bad-token")


def test_connection_drop_reports_what_the_hub_holds(hub, saved, tmp_path):
    """A drop after the commit was applied says so (with its id); a drop before it says it is unknown, with the URL."""
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(saved / "model", folder)
    hub.create_repo("org/dropped")
    commit = r"^/api/models/org/dropped/commit/"
    hub.fail_next("POST", commit, drop=True, after=True)  # first push: applied, then the connection drops
    hub.fail_next("POST", commit, drop=True)  # second push: dropped before the Hub handled it
    try:
        out = _client(hub, f"""
            from pathlib import Path
            from huggingface_hub import HfApi
            from stefaland_hf.hub import HubPushError, push_model
            def push():
                try:
                    return {{"url": push_model({str(folder)!r}, "org/dropped").commit_url}}
                except HubPushError as e:
                    return {{"message": str(e), "committed": e.committed, "oid": e.commit_oid, "operation": e.operation,
                            "cause": type(e.__cause__).__name__}}
            applied = push()
            head = HfApi().repo_info("org/dropped").sha
            Path({str(folder / "notes.txt")!r}).write_text("a change, so that the next push commits")
            unknown = push()
            retried = push()
            emit({{"applied": applied, "unknown": unknown, "retried": retried, "head": head}})
        """, tmp_path, "hf1")
    finally:
        hub.clear_failures()
    d = out.data
    commits = hub.commits("org/dropped")
    applied, unknown = d["applied"], d["unknown"]
    assert applied["operation"] == "creating the commit" and applied["cause"] == "RemoteProtocolError", applied
    assert applied["committed"] is True and applied["oid"] == commits[1] == d["head"]
    assert f"is now at commit {commits[1]}" in applied["message"] and "no commit" not in applied["message"].lower()
    assert unknown["committed"] is None and unknown["oid"] is None
    assert unknown["message"].count("Unknown whether a commit was made") == 1 and f"still at {commits[1]}" in unknown["message"]
    assert f"{hub.url}/org/dropped/commits/main" in unknown["message"]
    assert len(commits) == 3 and commits[-1] in d["retried"]["url"]  # the retry made the one missing commit
    assert "notes.txt" in hub.list_files("org/dropped")


# ------------------------------------------------------------------------------------------------
# name resolution
# ------------------------------------------------------------------------------------------------
def test_resolve_model_name_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STEFALAND_WEIGHTS", raising=False)
    monkeypatch.delenv("STEFALAND_HUB_ORG", raising=False)
    monkeypatch.setattr(names, "HUB_MODELS", ("stefaland-original",))  # as if the package published its weights on the Hub
    assert names.resolve_model_name("stefaland-original") == "stefaland/stefaland-original"
    monkeypatch.setenv("STEFALAND_HUB_ORG", "myorg")
    assert names.resolve_model_name("stefaland-original") == "myorg/stefaland-original"
    weights = tmp_path / "weights"
    (weights / "stefaland-original").mkdir(parents=True)
    monkeypatch.setenv("STEFALAND_WEIGHTS", str(weights))
    assert names.resolve_model_name("stefaland-original") == str(weights / "stefaland-original")
    with pytest.raises(FileNotFoundError, match="'stefaland-tiny' is an architecture"):  # not in STEFALAND_WEIGHTS, not published
        names.resolve_model_name("stefaland-tiny")
    (tmp_path / "stefaland-original").mkdir()
    assert names.resolve_model_name("stefaland-original") == "stefaland-original"  # CWD folder wins
    assert names.resolve_model_name("other/repo") == "other/repo"


@pytest.fixture
def no_network():
    """huggingface_hub's HTTP client refuses and records every request (transformers downloads through it)."""
    import httpx2
    import huggingface_hub
    from huggingface_hub.utils import _http

    requests = []

    class Refuse(httpx2.BaseTransport):
        def handle_request(self, request):
            requests.append(str(request.url))
            raise httpx2.ConnectError("the test allows no network", request=request)

    huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=Refuse()))
    yield requests
    huggingface_hub.set_client_factory(_http.default_client_factory)


def test_unknown_short_names_fail_at_once_without_the_network(tmp_path, monkeypatch, no_network):
    """A mistyped name (stefaland-conos) or a zoo architecture cost ~47 s of Hub retries before the error; now the Hub
    is asked only for OWNER/NAME ids and names the package publishes, also when HF_HUB_OFFLINE is not set."""
    import huggingface_hub.constants
    from huggingface_hub.utils import get_session

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("STEFALAND_WEIGHTS", raising=False)
    monkeypatch.delenv("STEFALAND_HUB_ORG", raising=False)
    with pytest.raises(FileNotFoundError) as raised:
        names.from_pretrained("stefaland-conos")
    message = str(raised.value)
    assert message.startswith("model 'stefaland-conos' not found (did you mean 'stefaland-conus'?); tried ")
    assert "The Hub was not asked" in message and "full id OWNER/NAME" in message
    with pytest.raises(FileNotFoundError, match="model 'base' not found \\(did you mean 'stefaland-base'\\?\\)"):
        names.from_pretrained("base")
    for architecture in ("stefaland-tiny", "stefaland-original"):
        with pytest.raises(FileNotFoundError) as raised:
            names.from_pretrained(architecture)
        message = str(raised.value)
        assert message.startswith(f"{architecture!r} is an architecture in the package's model zoo")
        assert "python examples/pretrain.py" in message and "StefaLandConfig.from_pretrained" in message
    assert names.resolve_model_name("stefaland-base").endswith("stefaland-base")  # ships its weights: the zoo folder
    assert no_network == []
    with pytest.raises(Exception):
        get_session().get("https://huggingface.co/api/models/org/x")  # the refusal is in place
    assert no_network == ["https://huggingface.co/api/models/org/x"]


def test_a_short_name_in_the_hf_cache_resolves_to_its_repo(tmp_path, monkeypatch):
    """A zoo architecture whose pushed weights the HF cache holds (``$STEFALAND_HUB_ORG/<name>``) loads from there."""
    import huggingface_hub.constants

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("STEFALAND_WEIGHTS", raising=False)
    monkeypatch.setenv("STEFALAND_HUB_ORG", "org")
    sha = "0123456789abcdef0123456789abcdef01234567"
    entry = tmp_path / "hub" / "models--org--stefaland-tiny"
    (entry / "snapshots" / sha).mkdir(parents=True)
    (entry / "snapshots" / sha / "config.json").write_text("{}")
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text(sha)
    assert names.resolve_model_name("stefaland-tiny") == "org/stefaland-tiny"


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


def test_missing_local_base_is_no_such_folder(tmp_path, monkeypatch):
    """A path-like name that is not a folder says "no such folder", never "invalid Hub id"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "weights.safetensors").write_bytes(b"")
    for name in ("./runs/nothere", "runs/pretrain/model", str(tmp_path / "gone"), "runs/model"):
        with pytest.raises(FileNotFoundError, match="no such folder") as raised:
            names.from_pretrained(name)
        message = str(raised.value)
        assert repr(name) in message and "Hub id" not in message and "repo id" not in message
        assert f"the nearest existing folder is {str(tmp_path)!r}" in message or "runs" in name
    with pytest.raises(FileNotFoundError, match="no such folder: '~/no-such-stefaland-run'"):
        names.from_pretrained("~/no-such-stefaland-run")
    with pytest.raises(FileNotFoundError, match="because the folder 'runs' exists here"):
        names.resolve_model_name("runs/model")  # one slash, but runs/ is a local folder
    with pytest.raises(NotADirectoryError, match="'weights.safetensors' is a file"):
        names.from_pretrained("weights.safetensors")
    assert names.resolve_model_name("org/model") == "org/model"  # no local 'org/': a Hub id


def test_name_found_nowhere_lists_what_was_tried(hub, tmp_path, monkeypatch):
    """Offline (HF cache) and online (fake Hub) misses name every place that was tried."""
    import huggingface_hub.constants

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("STEFALAND_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("STEFALAND_HUB_ORG", "org")
    with pytest.raises(FileNotFoundError) as raised:
        names.from_pretrained("stefaland-nowhere")
    message = str(raised.value)
    assert message.startswith("model 'stefaland-nowhere' not found; tried ")
    assert f"the folder {str(tmp_path / 'stefaland-nowhere')!r}: does not exist" in message
    assert f"$STEFALAND_WEIGHTS/stefaland-nowhere: {str(tmp_path / 'weights' / 'stefaland-nowhere')!r} does not exist" in message
    assert "the HF cache (" in message and "no 'org/stefaland-nowhere' or 'stefaland-nowhere'" in message
    assert "The Hub was not asked" in message
    monkeypatch.setattr(names, "HUB_MODELS", ("stefaland-nowhere",))  # a published name goes to the HF cache / the Hub
    with pytest.raises(FileNotFoundError) as raised:
        names.from_pretrained("stefaland-nowhere")
    message = str(raised.value)
    assert message.startswith("model 'stefaland-nowhere' not found; tried ")
    assert "the Hub repo 'org/stefaland-nowhere': not (completely) in the HF cache" in message
    assert "HF_HUB_OFFLINE is set" in message

    out = _client(hub, """
        import stefaland_hf.hub as h
        try:
            h.from_pretrained("org/never-pushed")
        except FileNotFoundError as e:
            emit(str(e))
    """, tmp_path, "hf1", cwd=tmp_path)
    assert out.data.startswith("model 'org/never-pushed' not found; tried ")
    assert f"the Hub repo 'org/never-pushed': not found on {hub.url}" in out.data


def test_card_base_model_is_a_hub_id_or_omitted(saved, tmp_path, monkeypatch):
    """A local base folder never goes into a card's ``base_model`` (or an adapter's pushed config); a Hub id does."""
    from huggingface_hub import ModelCard

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STEFALAND_WEIGHTS", raising=False)
    monkeypatch.delenv("STEFALAND_HUB_ORG", raising=False)
    local = str(saved / "model")
    for base in (local, "runs/deleted/base"):  # an existing and a missing local folder
        card = cards.render_model_card(saved / "model", base_model=base, repo_id="org/m")
        assert ModelCard(str(card)).data.base_model is None
        assert f"finetuned from the local checkpoint `{base}` (not on the Hub)" in str(card)
        adapter = cards.render_adapter_card(saved / "adapter", REPORT, base, repo_id="org/a")
        data = ModelCard(str(adapter)).data
        assert data.base_model is None and not any(t.startswith("base_model:") for t in data.tags)
        assert f"`{base}`" in str(adapter)
    assert ModelCard(str(cards.render_model_card(saved / "model", base_model="org/base"))).data.base_model == "org/base"
    monkeypatch.setattr(names, "HUB_MODELS", ("stefaland-original",))  # a short name the package publishes on the Hub
    short = cards.render_adapter_card(saved / "adapter", REPORT, "stefaland-original", repo_id="org/a")
    assert ModelCard(str(short)).data.base_model == "stefaland/stefaland-original"
    monkeypatch.setattr(names, "HUB_MODELS", ())  # an architecture with no weights anywhere links to no repo
    short = cards.render_adapter_card(saved / "adapter", REPORT, "stefaland-original", repo_id="org/a")
    assert ModelCard(str(short)).data.base_model is None and "`stefaland-original`" in str(short)
    with pytest.raises(ValueError, match="is a local folder, not a Hub repo id") as raised:
        push.push_adapter(saved / "adapter", "org/a", base_model=local, token="hf_unused")
    assert f"stefaland push model {local}" in str(raised.value)


def test_finetuning_push_is_checked_before_training(tmp_path, monkeypatch):
    from stefaland_hf.hub.push import check_artifact_push

    monkeypatch.setenv("HF_TOKEN", "hf_test")
    check_artifact_push(None, str(tmp_path), adapter=True)  # no push, nothing to check
    check_artifact_push("org/model", str(tmp_path), adapter=False)  # a full model carries no base link
    with pytest.raises(ValueError, match="needs its base on the Hub"):
        check_artifact_push("org/adapter", str(tmp_path), adapter=True)
    with pytest.raises(ValueError, match="not a Hub repo id"):
        check_artifact_push("adapter", "org/base", adapter=True)


def test_short_names_resolve_to_weights_shipped_in_the_model_zoo(tmp_path, monkeypatch):
    """Order: folder, $STEFALAND_WEIGHTS, the package's zoo (when it ships weights), the HF cache / Hub."""
    import huggingface_hub.constants

    import stefaland_hf
    import stefaland_hf.zoo as zoo
    from stefaland_hf import StefaLandModel

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.delenv("STEFALAND_WEIGHTS", raising=False)
    fake_zoo = tmp_path / "zoo"
    StefaLandModel(tiny_config()).save_pretrained(fake_zoo / "stefaland-shipped")
    tiny_config().save_pretrained(fake_zoo / "stefaland-config-only")  # an architecture without weights
    monkeypatch.setattr(zoo, "model_zoo_dir", lambda: fake_zoo)
    model = stefaland_hf.from_pretrained("stefaland-shipped")
    assert isinstance(model, StefaLandModel) and model.config.d_model == tiny_config().d_model
    with pytest.raises(FileNotFoundError) as raised:
        stefaland_hf.from_pretrained("stefaland-config-only")  # a config is no model
    message = str(raised.value)
    assert message.startswith(f"'stefaland-config-only' is an architecture in the package's model zoo ({fake_zoo / 'stefaland-config-only'}")
    assert "stefaland convert-original" in message
    with pytest.raises(FileNotFoundError) as raised:
        stefaland_hf.from_pretrained("stefaland-shiped")
    message = str(raised.value)
    assert message.startswith("model 'stefaland-shiped' not found (did you mean 'stefaland-shipped'?)")
    assert f"the package's model zoo ({fake_zoo}): ships no weights for 'stefaland-shiped'" in message
    assert "zoo entries with weights: ['stefaland-shipped']" in message
    # $STEFALAND_WEIGHTS comes before the zoo
    StefaLandModel(tiny_config(d_model=16, num_attention_heads=2)).save_pretrained(tmp_path / "w" / "stefaland-shipped")
    monkeypatch.setenv("STEFALAND_WEIGHTS", str(tmp_path / "w"))
    assert stefaland_hf.from_pretrained("stefaland-shipped").config.d_model == 16
