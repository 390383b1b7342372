"""The README's code runs as written: its Python blocks are executed, its `stefaland` and `examples/` command lines parsed.

The Python blocks run in a fresh folder that holds what the README says the main job leaves behind
(`stefaland-demo/pretraining/model`, here from a seconds-long pretraining). Blocks that read the real data run
only where it is present.
"""

import importlib.util
import os
import re
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import CAMELS_US, SHARED_DATA

from stefaland_cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = [(m.group(1), m.group(2), README.read_text()[: m.start()].count("\n") + 1)
          for m in re.finditer(r"```(\w*)\n(.*?)```", README.read_text(), re.S)]
PYTHON = [(code, line) for kind, code, line in BLOCKS if kind == "python"]
UNGAUGED_ARCHIVE = SHARED_DATA / "camels_us_ungauged.tar.xz"


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    """A working folder with ``stefaland-demo/pretraining/model`` as ``stefaland demo`` leaves it (tiny)."""
    from test_finetune import _tiny_zoo_config

    from stefaland_hf.data import load_site_dataset
    from stefaland_hf.training.pretrain import PretrainArguments, pretrain

    folder = tmp_path_factory.mktemp("readme")
    dataset = load_site_dataset("synthland", config_name="tiny", cache_dir=str(folder / "cache"))
    arguments = PretrainArguments(output_dir=str(folder / "stefaland-demo" / "pretraining"), num_train_epochs=1, samples_per_epoch=16, per_device_train_batch_size=8, seq_len=60)
    pretrain(_tiny_zoo_config(), dataset, list(range(8)), ("2000-01-01", "2001-12-31"), arguments)
    return folder


def _run(code: str, cwd: Path, line: int) -> None:
    """Execute ``code`` in a fresh interpreter in ``cwd`` (as a user would paste it), failing with its output."""
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, f"README block at line {line} failed:\n{code}\n--- stderr ---\n{done.stderr[-3000:]}"


@pytest.mark.parametrize("code, line", [b for b in PYTHON if "../shared/data" not in b[0]], ids=lambda v: f"line{v}" if isinstance(v, int) else None)
def test_python_block_runs(code, line, demo_folder):
    _run(code, demo_folder, line)


@pytest.mark.skipif(not (CAMELS_US.exists() and UNGAUGED_ARCHIVE.exists()), reason=f"real CAMELS-US data or {UNGAUGED_ARCHIVE} not found")
@pytest.mark.parametrize("code, line", [b for b in PYTHON if "../shared/data" in b[0]], ids=lambda v: f"line{v}" if isinstance(v, int) else None)
def test_real_data_block_runs(code, line, tmp_path):
    """Run with the README's relative data paths pointing at the shared data, and DIR at an unpacked archive."""
    (tmp_path / "work").mkdir()
    (tmp_path / "shared").symlink_to(SHARED_DATA.parent)
    if "DIR/" in code:
        with tarfile.open(UNGAUGED_ARCHIVE) as archive:
            archive.extractall(tmp_path / "work" / "DIR", filter="data")
    _run(code, tmp_path / "work", line)


COMMAND_LINES = [
    (shlex.split(command)[1:], line)
    for kind, code, line in BLOCKS if kind == "bash"
    for text in code.replace("\\\n", " ").splitlines()
    for command in (part.strip() for part in text.split("#")[0].split("&&"))
    if command.startswith("stefaland ") and "..." not in command
]


@pytest.mark.parametrize("argv, line", COMMAND_LINES, ids=lambda v: " ".join(v[:2]) if isinstance(v, list) else None)
def test_stefaland_command_line_parses(argv, line):
    """Each `stefaland ...` line of the README names a subcommand and options that exist."""
    args = build_parser().parse_args(argv)
    assert callable(args.func), f"README line {line}: {argv}"


EXAMPLE_LINES = [
    (Path(words[i]).stem, words[i + 1:], line)
    for kind, code, line in BLOCKS if kind == "bash"
    for text in code.replace("\\\n", " ").splitlines()
    if "..." not in text and (words := shlex.split(text.split("#")[0]))
    for i in [next((k for k, w in enumerate(words) if w.startswith("examples/") and w.endswith(".py")), None)]
    if i is not None
]


@pytest.mark.parametrize("script, argv, line", EXAMPLE_LINES, ids=lambda v: v if isinstance(v, str) else None)
def test_example_command_line_parses(script, argv, line):
    """Each `python|accelerate launch examples/X.py ...` line of the README passes X's own argument parser."""
    spec = importlib.util.spec_from_file_location(f"example_{script}", README.parent / "examples" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = module.build_parser().parse_args(argv)
    assert args is not None, f"README line {line}"


@pytest.mark.parametrize("script", sorted({script for script, _, _ in EXAMPLE_LINES}))
def test_every_option_of_the_examples_has_help(script):
    spec = importlib.util.spec_from_file_location(f"example_{script}", README.parent / "examples" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    missing = [a.option_strings for a in module.build_parser()._actions if not a.help and a.dest != "help"]
    assert missing == []


def test_the_readme_has_code_to_check():
    assert len(PYTHON) >= 3 and len(COMMAND_LINES) >= 5 and len(EXAMPLE_LINES) >= 5
