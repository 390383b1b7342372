"""Cards: rendering from the hub_cards/ templates, and every card's code run against the artifact it describes.

The "How to use" code of each card (the model card of each architecture, the adapter card, the converted-checkpoint
card) and the model card's remote-code line run as written, in a fresh interpreter, against a tiny saved artifact
of that kind. Cards rendered for Hub repos (and the dataset card, whose code needs a Hub repo) run their code
against the fake Hub in tests/test_hub.py.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import tiny_config, tiny_inputs  # noqa: E402
from test_convert_original import HEADS, _stats, make_inputs, original_state_dict  # noqa: E402

from stefaland_hf import (  # noqa: E402
    StefaLandForPretraining,
    StefaLandForStaticRegression,
    StefaLandForTimeSeriesRegression,
    StefaLandModel,
)
from stefaland_hf.hub import cards  # noqa: E402

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
NO_TARGETS = dict(target_variables=None, target_mean=None, target_std=None)
# every architecture a model card describes: its config and the output its card's code is checked by
ARCHITECTURES = {
    StefaLandModel: (NO_TARGETS, "dynamic_hidden_state"),
    StefaLandForPretraining: (NO_TARGETS, "dynamic_reconstruction"),
    StefaLandForTimeSeriesRegression: ({}, "prediction"),
    StefaLandForStaticRegression: (dict(target_variables=["sand_fraction"], target_mean=[0.4], target_std=[0.1]), "prediction"),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny saved regression model, a resConn adapter on it, a saved model of every architecture
    (``kinds/<class name>``), inputs and reference outputs (``io.pt``)."""
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
    io = {"x": x, "c": c, "y": y, "ya": ya}
    for cls, (overrides, field) in ARCHITECTURES.items():
        kind = cls(tiny_config(**overrides)).eval()
        kind.save_pretrained(root / "kinds" / cls.__name__)
        with torch.no_grad():
            io[cls.__name__] = kind(x, c)[field]
    torch.save(io, root / "io.pt")
    (root / "report.json").write_text(json.dumps(REPORT))
    return root


def how_to_use(card) -> str:
    """The Python block of a card's "How to use" section."""
    return re.search(r"## How to use\n\n```python\n(.*?)```", str(card), re.S).group(1)


def run_python(code: str, cwd: Path) -> None:
    """Run ``code`` in a fresh interpreter, offline, with its own HF cache (remote code is copied there)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(cwd / "hf")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env)
    assert done.returncode == 0, f"{code}\n--- stderr ---\n{done.stderr[-3000:]}"


# ------------------------------------------------------------------------------------------------
# rendering
# ------------------------------------------------------------------------------------------------
def test_templates_are_found():
    for name in ("model_card.md", "adapter_card.md", "dataset_card.md", "converted_card.md"):
        assert cards.template_path(name) == REPO_ROOT / "hub_cards" / name


def test_rendering_cards_loads_no_push_machinery(tmp_path):
    """Pretraining, finetuning and convert-original render cards; `import stefaland_hf` resolves names."""
    run_python(
        "import sys, stefaland_hf, stefaland_hf.hub.cards, stefaland_hf.hub as hub\n"
        "assert 'stefaland_hf.hub.push' not in sys.modules and 'stefaland_hf.hub.cli' not in sys.modules, sorted(sys.modules)\n"
        "assert stefaland_hf.from_pretrained is hub.from_pretrained is stefaland_hf.hub.names.from_pretrained\n"
        "assert hub.push_model is stefaland_hf.hub.push.push_model and sorted(hub.__all__) == sorted(set(dir(hub)) & set(hub.__all__))\n",
        tmp_path,
    )


def test_results_from_report_and_model_card_yaml(saved, tmp_path):
    from huggingface_hub import ModelCard

    path = tmp_path / "report.json"
    path.write_text(json.dumps(REPORT))
    results = cards.results_from_report(path, "CAMELS-US")
    assert [r.metric_type for r in results] == ["nse", "kge", "rmse"]
    assert results[0].metric_value == 0.7123 and results[0].dataset_split == "pub_fold0"
    assert results[0].dataset_type == "camels_us"
    card = cards.render_model_card(saved / "model", results=results, report=REPORT, repo_id="org/m",
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
    assert 'AutoModelForTimeSeriesPrediction.from_pretrained("org/m")' in how_to_use(card)


def test_render_from_config_and_adapter_card(saved):
    from huggingface_hub import ModelCard

    from stefaland_hf import ResConnConfig

    card = cards.render_model_card(tiny_config())
    assert "Parameters |" in str(card) and ModelCard(str(card)).data.eval_results is None
    assert 'from_pretrained("<model folder or Hub id>")' in how_to_use(card)  # nothing to load from yet
    with pytest.raises(ValueError, match="base_model"):
        cards.render_adapter_card(ResConnConfig(), None, None)
    card = cards.render_adapter_card(saved / "adapter", REPORT, "org/base", dataset_name="SynthLand", repo_id="org/a")
    data = ModelCard(str(card)).data
    assert data.library_name == "peft" and data.base_model == "org/base"
    assert [r.metric_type for r in data.eval_results] == ["nse", "kge", "rmse"]


def test_cards_say_how_predictions_respect_the_physical_range(saved):
    assert "clipped to each target's physical range (e.g. streamflow >= 0 mm/day" in str(cards.render_adapter_card(saved / "adapter", None, None))
    model = StefaLandForTimeSeriesRegression(tiny_config(head_mode="direct", output_transform="none"))
    assert "may leave the physical range (e.g. negative streamflow" in str(cards.render_model_card(model))


# ------------------------------------------------------------------------------------------------
# every card's code, run against the artifact it describes
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", list(ARCHITECTURES), ids=lambda cls: cls.__name__)
def test_the_model_cards_how_to_use_code_loads_this_model(cls, saved, tmp_path):
    name, field = cls.__name__, ARCHITECTURES[cls][1]
    card = cards.render_model_card(saved / "kinds" / name)
    check = (f'\nio = torch.load({str(saved / "io.pt")!r})\nassert type(model).__name__ == {name!r}, type(model)\n'
             f'with torch.no_grad():\n    assert torch.allclose(model(io["x"], io["c"])[{field!r}], io[{name!r}])\n')
    run_python(how_to_use(card) + check, tmp_path)


def test_the_model_cards_remote_code_line_loads_this_model_without_the_package(saved, tmp_path):
    """"Without the package installed, `AutoModelForX.from_pretrained(..., trust_remote_code=True)`" (the static model:
    its bundled class through ``get_class_from_dynamic_module``), per architecture."""
    cases = []
    for cls, (_, field) in ARCHITECTURES.items():
        text = str(cards.render_model_card(saved / "kinds" / cls.__name__))
        cases.append((cls.__name__, field, re.search(r"Without the package installed, `(.*?)`", text).group(1)))
    run_python(BLOCK_PACKAGE + f"""
import torch, transformers, transformers.dynamic_module_utils
io = torch.load({str(saved / "io.pt")!r})
names = {{"transformers": transformers, **{{c: getattr(transformers, c) for c in ("AutoModel", "AutoModelForPreTraining", "AutoModelForTimeSeriesPrediction")}}}}
for name, field, line in {cases!r}:
    model = eval(line, names).eval()
    assert type(model).__name__ == name and type(model).__module__.startswith("transformers_modules"), type(model)
    with torch.no_grad():
        assert torch.allclose(model(io["x"], io["c"])[field], io[name]), name
assert "stefaland_hf" not in sys.modules
""", tmp_path)


def test_the_adapter_cards_how_to_use_code_runs_and_loads_this_adapter(saved, tmp_path):
    card = cards.render_adapter_card(saved / "adapter", None, None)
    check = f'\nio = torch.load({str(saved / "io.pt")!r})\nassert torch.allclose(model(io["x"], io["c"]).prediction, io["ya"])\n'
    run_python(how_to_use(card) + check, tmp_path)
    # the card's one-call alternative: AutoPeftModel builds the base named in adapter_config.json
    line = re.search(r"\n`(AutoPeftModel\.from_pretrained\(.*?\))`", str(card)).group(1)
    assert line == f'AutoPeftModel.from_pretrained("{saved / "adapter"}", target_variables=[\'streamflow\'])'
    run_python(f"import stefaland_hf, torch\nfrom peft import AutoPeftModel\nmodel = {line}.eval()" + check, tmp_path)


@pytest.mark.parametrize("with_stats", [False, True], ids=["identity", "stats"])
def test_the_converted_cards_how_to_use_code_loads_the_converted_model(with_stats, tmp_path):
    import warnings

    from stefaland_hf.convert_original import convert_original_checkpoint

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # without stats: "inputs must be z-scored" (test_convert_original)
        result = convert_original_checkpoint(original_state_dict(), out_dir=tmp_path / "converted", num_attention_heads=HEADS,
                                             stats=_stats() if with_stats else None)
    card = (tmp_path / "converted" / "README.md").read_text()
    assert ("must be z-scored by the user" in card) is not with_stats and "`meanP` | `mean_precipitation`" in card
    x, c, _, _ = make_inputs()
    with torch.no_grad():
        expected = result.model.eval()(x, c).dynamic_reconstruction
    torch.save({"x": x, "c": c, "expected": expected}, tmp_path / "io.pt")
    check = (f'\nio = torch.load({str(tmp_path / "io.pt")!r})\nwith torch.no_grad():\n'
             '    assert torch.allclose(model(io["x"], io["c"]).dynamic_reconstruction, io["expected"])\n')
    run_python(how_to_use(card) + check, tmp_path)



ZOO_CARDS = sorted((REPO_ROOT / "modeling").glob("*/README.md"))
ZOO_BLOCKS = [(card.parent.name, kind, code) for card in ZOO_CARDS
              for kind, code in re.findall(r"```(\w*)\n(.*?)```", card.read_text(), re.S)]


@pytest.mark.parametrize("code", [code for _, kind, code in ZOO_BLOCKS if kind == "python"],
                         ids=[name for name, kind, _ in ZOO_BLOCKS if kind == "python"])
def test_the_model_zoo_cards_python_code_runs(code, tmp_path):
    """The hand-written cards of the shipped models (modeling/<name>/README.md) load what they describe, offline."""
    run_python(code, tmp_path)


def test_the_model_zoo_cards_command_lines_parse():
    import importlib.util
    import shlex

    from stefaland_cli import build_parser

    lines = [shlex.split(text.split("#")[0]) for _, kind, code in ZOO_BLOCKS if kind == "bash"
             for text in code.replace("\\\n", " ").splitlines() if "stefaland " in text or "examples/" in text]
    assert lines
    for words in lines:
        if words[0] == "stefaland":
            assert callable(build_parser().parse_args(words[1:]).func), words
            continue
        script = next(w for w in words if w.startswith("examples/"))
        spec = importlib.util.spec_from_file_location("example", REPO_ROOT / script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert module.build_parser().parse_args(words[words.index(script) + 1:]) is not None, words


def test_the_split_line_says_whether_test_sites_were_finetuning_sites():
    """A temporal split tests the training sites in a later period; the card said "never seen in training"."""
    from stefaland_hf.data.splits import pub_folds, temporal_split
    from stefaland_hf.hub.cards import _describe_split

    temporal = temporal_split(3, ["2000-01-01", "2000-12-31"], None, ["2001-01-01", "2001-12-31"]).to_dict()
    assert "3 of the 3 test sites are training sites, tested in another period" in _describe_split(temporal)
    pub = pub_folds([f"s{i}" for i in range(10)], k=5, seed=0, val_fraction=0.2)[0].to_dict()
    assert "random site hold-out (PUB); test sites never seen in finetuning" in _describe_split(pub)


def test_push_takes_the_dataset_from_the_run_and_refuses_another_runs_report(tmp_path):
    """`stefaland push` labelled every card's results SynthLand unless told otherwise, and took any report."""
    from stefaland_hf.hub.cli import report_for

    run = tmp_path / "moved_run"  # trained elsewhere: the report's artifact path is stale, the layout is not
    (run / "adapter").mkdir(parents=True)
    (run / "report.json").write_text(json.dumps({**REPORT, "artifact": "/elsewhere/run/adapter"}))
    (run / "run_manifest.json").write_text(json.dumps({"data": {"builder": "camels_us"}}))
    assert report_for(str(run / "adapter"), str(run / "report.json")) == (run / "report.json", "CAMELS-US")
    assert report_for(str(run / "adapter"), str(run))[1] == "CAMELS-US"  # the run folder for the report
    (tmp_path / "other").mkdir()
    with pytest.raises(ValueError, match="it reports on /elsewhere/run/adapter, not on"):
        report_for(str(tmp_path / "other"), str(run / "report.json"))


def test_results_name_the_one_target_the_evaluation_scores():
    from stefaland_hf.hub.cards import results_from_report

    report = {**REPORT, "arguments": {**REPORT.get("arguments", {}), "target_variables": ["streamflow", "soil_moisture"]}}
    assert {r.task_name for r in results_from_report(report, "CAMELS-US")} == {"streamflow prediction"}


def test_a_card_of_a_folder_with_a_truncated_weights_file_names_the_file(tmp_path):
    from stefaland_hf.hub.cards import render_model_card

    model = StefaLandForPretraining(tiny_config())
    model.save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(OSError, match=r"model.safetensors: not a readable safetensors file .* delete it and save or download it again"):
        render_model_card(tmp_path / "m")
