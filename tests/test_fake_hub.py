"""End-to-end tests of the offline fake Hub (tests/fake_hub.py).

HF client code runs in subprocesses (see the fake_hub module docstring for why);
the server runs in a thread of the pytest process.
"""

import base64
import hashlib
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_hub import start_fake_hub  # noqa: E402


@pytest.fixture(scope="module")
def hub():
    h = start_fake_hub()
    yield h
    h.stop()


def _http(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _ndjson(*items):
    return b"".join(json.dumps(i).encode() + b"\n" for i in items)


def test_raw_protocol_and_atomic_commits(hub):
    repo = hub.create_repo("raw/atomic").repo_id
    base = f"{hub.url}/api/models/{repo}"
    assert len(hub.commits(repo)) == 1  # initial commit with .gitattributes

    # unknown repo / missing tree path / missing file -> typed 404s
    status, headers, _ = _http("GET", f"{hub.url}/api/models/raw/nope")
    assert status == 404 and headers["X-Error-Code"] == "RepoNotFound"
    status, headers, _ = _http("GET", f"{base}/tree/main/missing")
    assert status == 404 and headers["X-Error-Code"] == "EntryNotFound"
    status, headers, _ = _http("HEAD", f"{hub.url}/{repo}/resolve/main/missing.txt")
    assert status == 404 and headers["X-Error-Code"] == "EntryNotFound"

    # a commit referencing an LFS object that was never uploaded is rejected as a whole
    missing_oid = hashlib.sha256(b"never uploaded").hexdigest()
    payload = _ndjson(
        {"key": "header", "value": {"summary": "partial"}},
        {"key": "file", "value": {"path": "a.txt", "content": base64.b64encode(b"A").decode(), "encoding": "base64"}},
        {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": missing_oid, "size": 14}},
    )
    status, _, _ = _http("POST", f"{base}/commit/main", payload, {"Content-Type": "application/x-ndjson"})
    assert status == 422
    assert len(hub.commits(repo)) == 1 and hub.list_files(repo) == [".gitattributes"]

    # upload the LFS object (batch + PUT), then the same commit succeeds
    blob = b"never uploaded"
    status, _, body = _http(
        "POST", f"{hub.url}/{repo}.git/info/lfs/objects/batch",
        json.dumps({"operation": "upload", "objects": [{"oid": missing_oid, "size": len(blob)}]}).encode(),
        {"Content-Type": "application/json"},
    )
    href = json.loads(body)["objects"][0]["actions"]["upload"]["href"]
    assert _http("PUT", href, b"corrupted")[0] == 400  # sha256 is checked
    assert _http("PUT", href, blob)[0] == 200

    # injected failure on the commit POST: nothing changes
    hub.fail_next("POST", r"/commit/", times=1)
    status, _, _ = _http("POST", f"{base}/commit/main", payload, {"Content-Type": "application/x-ndjson"})
    assert status == 500 and len(hub.commits(repo)) == 1

    status, _, body = _http("POST", f"{base}/commit/main", payload, {"Content-Type": "application/x-ndjson"})
    assert status == 200
    commits = hub.commits(repo)
    assert len(commits) == 2 and json.loads(body)["commitOid"] == commits[-1]
    assert hub.list_files(repo) == [".gitattributes", "a.txt", "w.bin"]
    assert hub.is_lfs(repo, "w.bin") and not hub.is_lfs(repo, "a.txt")

    # resolve with Range, tree listing, paths-info
    status, headers, body = _http("GET", f"{hub.url}/{repo}/resolve/main/w.bin", headers={"Range": "bytes=6-9"})
    assert status == 206 and body == blob[6:10] and headers["X-Repo-Commit"] == commits[-1]
    status, _, body = _http("GET", f"{base}/tree/main?recursive=true")
    assert sorted(e["path"] for e in json.loads(body)) == [".gitattributes", "a.txt", "w.bin"]
    status, _, body = _http("POST", f"{base}/paths-info/main", b"paths=a.txt&paths=nope&expand=False",
                            {"Content-Type": "application/x-www-form-urlencoded"})
    assert [e["path"] for e in json.loads(body)] == ["a.txt"]

    # deleting a missing file fails the whole commit
    payload = _ndjson({"key": "header", "value": {"summary": "del"}},
                      {"key": "deletedFile", "value": {"path": "a.txt"}},
                      {"key": "deletedFile", "value": {"path": "nope.txt"}})
    status, headers, _ = _http("POST", f"{base}/commit/main", payload, {"Content-Type": "application/x-ndjson"})
    assert status == 404 and hub.list_files(repo) == [".gitattributes", "a.txt", "w.bin"]


def test_failures_after_handling_and_token_check(hub):
    """``after=True`` applies the commit before failing/dropping; ``drop=True`` sends no response; tokens are checked."""
    import http.client

    repo = hub.create_repo("raw/after").repo_id
    url = f"{hub.url}/api/models/{repo}/commit/main"
    payload = lambda name: _ndjson(  # noqa: E731
        {"key": "header", "value": {"summary": name}},
        {"key": "file", "value": {"path": f"{name}.txt", "content": base64.b64encode(b"x").decode(), "encoding": "base64"}},
    )
    ndjson = {"Content-Type": "application/x-ndjson"}

    hub.fail_next("POST", r"/commit/", drop=True)  # dropped before handling: no commit, no response
    with pytest.raises((http.client.RemoteDisconnected, urllib.error.URLError, ConnectionError)):
        _http("POST", url, payload("dropped"), ndjson)
    assert len(hub.commits(repo)) == 1 and hub.requests[-1][2] == 0

    hub.fail_next("POST", r"/commit/", drop=True, after=True)  # applied, then the connection drops
    with pytest.raises((http.client.RemoteDisconnected, urllib.error.URLError, ConnectionError)):
        _http("POST", url, payload("applied"), ndjson)
    assert len(hub.commits(repo)) == 2 and "applied.txt" in hub.list_files(repo)

    hub.fail_next("POST", r"/commit/", status=502, after=True)  # applied, then a gateway error
    status, _, _ = _http("POST", url, payload("gateway"), ndjson)
    assert status == 502 and len(hub.commits(repo)) == 3 and "gateway.txt" in hub.list_files(repo)

    hub.valid_tokens = {"hf_good"}
    try:
        assert _http("POST", url, payload("anonymous"), ndjson)[0] == 401
        assert _http("POST", url, payload("wrong"), {**ndjson, "Authorization": "Bearer hf_bad"})[0] == 401
        assert _http("GET", f"{hub.url}/api/models/{repo}")[0] == 200  # reads stay anonymous
        assert _http("POST", url, payload("good"), {**ndjson, "Authorization": "Bearer hf_good"})[0] == 200
    finally:
        hub.valid_tokens = None
    assert hub.list_files(repo) == [".gitattributes", "applied.txt", "gateway.txt", "good.txt"]


def test_hfapi_round_trip(hub, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    weights = os.urandom(1_500_000)
    (src / "model.safetensors").write_bytes(weights)
    (src / "config.json").write_text('{"hidden_size": 8}')
    (src / "sub" / "notes.txt").write_text("hello")
    out = hub.run_client(
        f"""
        from pathlib import Path
        from huggingface_hub import HfApi, hf_hub_download, snapshot_download
        api = HfApi()
        url = api.create_repo("org/roundtrip")
        api.create_repo("org/roundtrip", exist_ok=True)
        api.upload_folder(folder_path={str(src)!r}, repo_id="org/roundtrip", commit_message="add files")
        api.upload_folder(folder_path={str(src)!r}, repo_id="org/roundtrip")  # no change -> no commit
        files = api.list_repo_files("org/roundtrip")
        p = hf_hub_download("org/roundtrip", "model.safetensors")
        snap = Path(snapshot_download("org/roundtrip"))
        emit({{
            "url": str(url),
            "files": files,
            "sha256": __import__("hashlib").sha256(Path(p).read_bytes()).hexdigest(),
            "snapshot": sorted(str(f.relative_to(snap)) for f in snap.rglob("*") if f.is_file()),
            "notes": (snap / "sub" / "notes.txt").read_text(),
            "sha": api.model_info("org/roundtrip").sha,
            "n_commits": len(api.list_repo_commits("org/roundtrip")),
            "whoami": api.whoami()["name"],
        }})
        """,
        hf_home=tmp_path / "hf",
    )
    d = out.data
    expected = [".gitattributes", "config.json", "model.safetensors", "sub/notes.txt"]
    assert sorted(d["files"]) == expected and d["snapshot"] == expected
    assert d["sha256"] == hashlib.sha256(weights).hexdigest()
    assert d["notes"] == "hello"
    commits = hub.commits("org/roundtrip")
    assert len(commits) == 2 and d["n_commits"] == 2 and d["sha"] == commits[-1]
    assert hub.is_lfs("org/roundtrip", "model.safetensors")
    assert d["whoami"] == hub.user
    assert hub.unhandled == []


def test_transformers_push_and_from_pretrained(hub, tmp_path):
    out = hub.run_client(
        """
        import torch
        from transformers import BertConfig, BertModel
        torch.manual_seed(0)
        cfg = BertConfig(vocab_size=64, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=16, max_position_embeddings=32)
        model = BertModel(cfg)
        model.push_to_hub("org/tiny-bert")
        again = BertModel.from_pretrained("org/tiny-bert")
        sd1, sd2 = model.state_dict(), again.state_dict()
        same = sorted(sd1) == sorted(sd2) and all(torch.equal(sd1[k], sd2[k]) for k in sd1)
        emit({"same": same, "hidden": again.config.hidden_size})
        """,
        hf_home=tmp_path / "hf",
    )
    assert out.data == {"same": True, "hidden": 8}
    assert len(hub.commits("org/tiny-bert")) == 2  # create_repo + exactly one commit for the push
    files = hub.list_files("org/tiny-bert")
    assert "config.json" in files and "model.safetensors" in files
    assert hub.is_lfs("org/tiny-bert", "model.safetensors")


def test_datasets_push_and_load_array2d(hub, tmp_path):
    out = hub.run_client(
        """
        import numpy as np
        from datasets import Array2D, Dataset, Features, Value, load_dataset
        rng = np.random.default_rng(0)
        x = rng.normal(size=(5, 3, 4)).astype("float32")
        feats = Features({"site": Value("string"), "x": Array2D(shape=(3, 4), dtype="float32")})
        ds = Dataset.from_dict({"site": [f"s{i}" for i in range(5)], "x": x}, features=feats)
        ds.push_to_hub("org/tiny-ds")
        back = load_dataset("org/tiny-ds", split="train")
        bx = np.asarray(back.with_format("numpy")["x"])
        emit({"equal": bool(np.array_equal(bx, x)), "feature": str(back.features["x"]),
              "sites": list(back["site"]), "n": len(back)})
        """,
        hf_home=tmp_path / "hf",
    )
    d = out.data
    assert d["equal"] and d["n"] == 5 and d["sites"] == [f"s{i}" for i in range(5)]
    assert "Array2D" in d["feature"]
    assert len(hub.commits("org/tiny-ds", repo_type="dataset")) == 2
    files = hub.list_files("org/tiny-ds", repo_type="dataset")
    assert "README.md" in files and any(f.endswith(".parquet") for f in files)


def test_model_card_eval_results_round_trip(hub, tmp_path):
    out = hub.run_client(
        """
        from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData
        HfApi().create_repo("org/card-model")
        data = ModelCardData(
            license="mit", model_name="stefaland-test",
            eval_results=[EvalResult(task_type="time-series-forecasting", dataset_type="camels",
                                     dataset_name="CAMELS", metric_type="nse", metric_value=0.74,
                                     dataset_split="test")],
        )
        card = ModelCard.from_template(data, model_id="stefaland-test")
        card.validate()
        card.push_to_hub("org/card-model")
        loaded = ModelCard.load("org/card-model")
        r = loaded.data.eval_results[0]
        emit({"metric_type": r.metric_type, "value": r.metric_value, "dataset": r.dataset_name,
              "license": loaded.data.license})
        """,
        hf_home=tmp_path / "hf",
    )
    assert out.data == {"metric_type": "nse", "value": 0.74, "dataset": "CAMELS", "license": "mit"}
    assert len(hub.commits("org/card-model")) == 2
    assert b"model-index" in hub.read_file("org/card-model", "README.md")


def test_failure_injection_leaves_no_partial_commit(hub, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "weights.safetensors").write_bytes(os.urandom(300_000))
    (src / "config.json").write_text("{}")
    hub.create_repo("org/interrupted")
    before = hub.commits("org/interrupted")
    # LFS PUT fails on every attempt (huggingface_hub retries 5xx; the client below shortens the backoff)
    hub.fail_next("PUT", r"^/__lfs__/", times=100)
    out = hub.run_client(
        f"""
        import functools
        import huggingface_hub.lfs as lfs
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError
        lfs.http_backoff = functools.partial(lfs.http_backoff, base_wait_time=0.01, max_wait_time=0.01)
        api = HfApi()
        try:
            api.upload_folder(folder_path={str(src)!r}, repo_id="org/interrupted")
            emit({{"raised": None}})
        except Exception as e:
            emit({{"raised": type(e).__name__, "http": isinstance(e, HfHubHTTPError) or
                   isinstance(e.__cause__, HfHubHTTPError)}})
        """,
        hf_home=tmp_path / "hf1",
    )
    hub.clear_failures()
    assert out.data["raised"] is not None and out.data["http"], out.data
    assert hub.commits("org/interrupted") == before
    assert not any(m == "POST" and "/api/models/org/interrupted/commit/" in p for m, p, _ in hub.requests)

    # the LFS objects are uploaded but the commit POST fails -> still no commit, client raises
    hub.fail_next("POST", r"^/api/models/org/interrupted/commit/", times=1)
    out = hub.run_client(
        f"""
        from huggingface_hub import HfApi
        try:
            HfApi().upload_folder(folder_path={str(src)!r}, repo_id="org/interrupted")
            emit({{"raised": None}})
        except Exception as e:
            emit({{"raised": type(e).__name__}})
        """,
        hf_home=tmp_path / "hf2",
    )
    assert out.data["raised"] == "HfHubHTTPError"
    assert hub.commits("org/interrupted") == before
    assert hub.list_files("org/interrupted") == [".gitattributes"]

    # retry without failures -> exactly one new commit with all files
    hub.run_client(
        f"""
        from huggingface_hub import HfApi
        HfApi().upload_folder(folder_path={str(src)!r}, repo_id="org/interrupted")
        """,
        hf_home=tmp_path / "hf3",
    )
    after = hub.commits("org/interrupted")
    assert after[:-1] == before and len(after) == len(before) + 1
    assert hub.list_files("org/interrupted") == [".gitattributes", "config.json", "weights.safetensors"]


def test_peft_adapter_push_and_load(hub, tmp_path):
    out = hub.run_client(
        """
        import torch
        from peft import LoraConfig, PeftModel, get_peft_model
        from transformers import BertConfig, BertModel
        torch.manual_seed(0)
        cfg = BertConfig(vocab_size=64, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=16, max_position_embeddings=32)
        base = BertModel(cfg)
        base.push_to_hub("org/peft-base")
        pm = get_peft_model(base, LoraConfig(r=2, target_modules=["query", "value"], init_lora_weights=False))
        pm.push_to_hub("org/peft-adapter")
        pm2 = PeftModel.from_pretrained(BertModel.from_pretrained("org/peft-base"), "org/peft-adapter")
        pm.eval(); pm2.eval()
        x = torch.randint(0, 64, (1, 5))
        emit({"same": bool(torch.allclose(pm(x).last_hidden_state, pm2(x).last_hidden_state))})
        """,
        hf_home=tmp_path / "hf",
    )
    assert out.data == {"same": True}
    assert len(hub.commits("org/peft-adapter")) == 2
    assert {"adapter_config.json", "adapter_model.safetensors"} <= set(hub.list_files("org/peft-adapter"))
