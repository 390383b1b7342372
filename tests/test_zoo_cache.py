"""The brief's line: ``AutoModel.from_pretrained("stefaland-base")`` in a fresh process, any folder, through the HF
cache entries that ``import stefaland_hf`` writes (hub/zoo_cache.py)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fake_hub import start_fake_hub
from stefaland_hf import zoo
from stefaland_hf.hub.zoo_cache import DISABLE_ENV, cache_folder, install_model, install_shipped_models

LOAD_BY_SHORT_NAME = """
    import json, time
    start = time.perf_counter()
    import stefaland_hf
    from transformers import AutoModel
    model = AutoModel.from_pretrained("stefaland-base")
    seconds = time.perf_counter() - start
    reference = stefaland_hf.from_pretrained("stefaland-base")
    equal = all(
        name == other and (tensor == tensor_other).all().item()
        for (name, tensor), (other, tensor_other) in zip(model.state_dict().items(), reference.state_dict().items())
    )
    print(json.dumps({"class": type(model).__name__, "equal": equal, "keys": len(model.state_dict()), "seconds": seconds}))
"""


def _run(code: str, cwd: Path, env: dict[str, str]) -> dict:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "STEFALAND_"))}
    env.update(OMP_NUM_THREADS="1", HF_HUB_DISABLE_TELEMETRY="1", **extra)
    return env


@pytest.mark.skipif(zoo.shipped_weights("stefaland-base") is None, reason="this install ships no stefaland-base weights")
def test_automodel_loads_the_shipped_base_by_short_name_offline_in_any_folder(tmp_path):
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    out = _run(LOAD_BY_SHORT_NAME, workdir, _clean_env(HF_HUB_CACHE=str(tmp_path / "hf-cache"), HF_HUB_OFFLINE="1"))
    assert out["class"] == "StefaLandModel" and out["equal"] and out["keys"] > 10
    print(f"import + AutoModel.from_pretrained('stefaland-base'): {out['seconds']:.1f} s")


@pytest.mark.skipif(zoo.shipped_weights("stefaland-base") is None, reason="this install ships no stefaland-base weights")
def test_online_the_short_name_falls_back_to_the_installed_snapshot(tmp_path):
    """The Hub answers "no such repo" for the unqualified name: huggingface_hub serves the cached snapshot."""
    hub = start_fake_hub()
    try:
        env = hub.client_env(tmp_path / "hf")
        env.update(OMP_NUM_THREADS="1")
        env.pop("HF_HUB_OFFLINE", None)
        out = _run(LOAD_BY_SHORT_NAME, tmp_path, env)
    finally:
        hub.stop()
    assert out["class"] == "StefaLandModel" and out["equal"]


def test_a_wrong_name_fails_at_once_offline(tmp_path):
    out = _run(
        """
        import json, time
        import stefaland_hf
        from transformers import AutoModel
        start = time.perf_counter()
        try:
            AutoModel.from_pretrained("stefaland-bsae")
        except OSError as error:
            message = str(error)
        seconds = time.perf_counter() - start
        try:
            stefaland_hf.from_pretrained("stefaland-bsae")
        except FileNotFoundError as error:
            suggestion = str(error)
        print(json.dumps({"seconds": seconds, "message": message, "suggestion": suggestion}))
        """,
        tmp_path,
        _clean_env(HF_HUB_CACHE=str(tmp_path / "hf-cache"), HF_HUB_OFFLINE="1"),
    )
    assert out["seconds"] < 5 and "stefaland-bsae" not in os.listdir(tmp_path / "hf-cache")
    assert "did you mean 'stefaland-base'" in out["suggestion"]


def _zoo_folder(root: Path, weights: bytes) -> Path:
    folder = root / "zoo-model"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text('{"model_type": "stefaland"}')
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def test_install_is_idempotent_and_an_upgrade_moves_main(tmp_path):
    cache = tmp_path / "cache"
    first = install_model("stefaland-x", _zoo_folder(tmp_path, b"one"), cache)
    repo = cache_folder("stefaland-x", cache)
    assert (repo / "refs" / "main").read_text() == first and len(first) == 40
    snapshot = repo / "snapshots" / first
    assert (snapshot / "model.safetensors").read_bytes() == b"one"
    assert (snapshot / "model.safetensors").resolve().parent == (repo / "blobs").resolve()
    assert (repo / ".no_exist" / first / "adapter_config.json").is_file()
    assert install_model("stefaland-x", _zoo_folder(tmp_path, b"one"), cache) == first
    assert not list(repo.rglob("*.incomplete"))

    second = install_model("stefaland-x", _zoo_folder(tmp_path, b"two"), cache)
    assert second != first and (repo / "refs" / "main").read_text() == second
    assert (repo / "snapshots" / second / "model.safetensors").read_bytes() == b"two"


def test_a_users_own_entry_is_left_alone(tmp_path):
    cache = tmp_path / "cache"
    repo = cache_folder("stefaland-x", cache)
    own = "0123456789abcdef0123456789abcdef01234567"
    (repo / "snapshots" / own).mkdir(parents=True)
    (repo / "snapshots" / own / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(own)
    assert install_model("stefaland-x", _zoo_folder(tmp_path, b"one"), cache) is None
    assert (repo / "refs" / "main").read_text() == own and not (repo / "blobs").exists()


def test_an_unwritable_cache_or_the_opt_out_skips_without_error(tmp_path, monkeypatch):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    assert install_shipped_models(not_a_folder) == {}
    monkeypatch.setenv(DISABLE_ENV, "1")
    assert install_shipped_models(tmp_path / "cache") == {} and not (tmp_path / "cache").exists()
