"""The example scripts' command line (stefaland_cli.scripts): --help on one screen and --help-all with every option;
a wrong argument or a user error is one line ``examples/NAME.py: error: ...`` (exit status 2), found before torch,
transformers or datasets are imported where the command line alone shows it."""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from stefaland_cli import scripts

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SCRIPTS = ("pretrain", "finetune_streamflow", "finetune_soil_moisture", "finetune_soil_texture")
HEAVY = ("torch", "transformers", "datasets", "peft", "stefaland_hf")
# runs an example as `python examples/NAME.py ARGS` would, then says which heavy modules it had imported
DRIVER = """
import runpy, sys
sys.argv = [sys.argv[1], *sys.argv[2:]]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exit:
    print("status", exit.code)
print("imported", sorted(m for m in {heavy!r} if m in sys.modules))
""".format(heavy=HEAVY)


def run_example(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-c", DRIVER, str(EXAMPLES / f"{script}.py"), *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def test_the_recorded_options_are_those_of_the_scripts():
    """examples/script_options.json lets a script check its command line without importing transformers."""
    expected = scripts.dumps(scripts.recorded_options(EXAMPLES))
    recorded = (EXAMPLES / scripts.SPEC_FILE).read_text()
    assert json.loads(recorded)["transformers"] == json.loads(expected)["transformers"], "another transformers: rerun the command below"
    assert recorded == expected, "examples/script_options.json is out of date: run `python -m stefaland_cli.scripts --write`"
    assert sorted(json.loads(recorded)["scripts"]) == sorted(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_fits_on_a_screen_without_heavy_imports(script, tmp_path):
    result = run_example(script, "--help", cwd=tmp_path)
    lines = result.stdout.splitlines()
    assert lines[0] == f"usage: examples/{script}.py [options]" and "status 0" in lines, result.stderr
    assert "imported []" in lines
    assert len(lines) - 2 <= 50, result.stdout  # less the driver's two lines
    assert "--help-all" in result.stdout and "--output-dir" in result.stdout


def test_help_all_lists_every_option(tmp_path):
    result = run_example("finetune_streamflow", "--help-all", cwd=tmp_path)
    assert "status 0" in result.stdout, result.stderr
    for option in ("--learning_rate", "--per_device_train_batch_size", "--lr_scheduler_type", "--data_dir", "--paper-scale"):
        assert option in result.stdout


@pytest.mark.parametrize("script, args, message", [
    ("finetune_streamflow", ["--bogus", "1"], "unrecognized arguments: --bogus 1 (see --help)"),
    ("finetune_streamflow", ["--dataset", "camels"], "argument --dataset: invalid choice: 'camels'"),
    ("finetune_streamflow", ["--max-steps", "many"], "argument --max_steps/--max-steps: invalid int value: 'many'"),
    ("finetune_soil_moisture", ["--base", "b", "--data-dir", "no/such/folder"], "--data-dir no/such/folder: no such folder"),
    ("finetune_soil_moisture", ["--base", "b"], "--data-dir: hydrodl_smap is read from its raw release folder"),
    ("finetune_soil_texture", ["--folds", "3"], "the following arguments are required: --base"),
    ("finetune_soil_texture", ["--base", "b", "--ungauged", "list.txt"], "--ungauged list.txt: no such file"),
    ("pretrain", ["--recipe", "no/such/recipe"], "--recipe no/such/recipe: no such file or folder"),
    ("pretrain", ["--split", "pub", "--fold"], "argument --fold: expected one argument"),
])
def test_argument_errors_are_one_line_before_the_heavy_imports(script, args, message, tmp_path):
    result = run_example(script, *args, cwd=tmp_path)
    assert result.stderr == f"examples/{script}.py: error: {result.stderr.split(': error: ', 1)[-1]}" and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert result.stdout.splitlines() == ["status 2", "imported []"]


def _script(tmp_path: Path, main) -> SimpleNamespace:
    """A stand-in example module: examples/demo_script.py with one option and ``main``."""

    def build_parser():
        parser = argparse.ArgumentParser()
        parser.add_argument("--steps", type=int, default=1, help="steps")
        parser.add_argument("--debug", default="", help="Trainer's own --debug option (TrainingArguments.debug)")
        return parser

    (tmp_path / "examples").mkdir(exist_ok=True)
    return SimpleNamespace(__file__=str(tmp_path / "examples" / "demo_script.py"), __doc__="A script.", build_parser=build_parser,
                           MAIN_OPTIONS=("steps",), main=main)


def test_a_user_error_is_one_line_and_debug_shows_the_traceback(tmp_path, capsys):
    def main(argv):
        raise FileNotFoundError("no such thing")

    script = _script(tmp_path, main)
    assert scripts.run_script(script, ["--steps", "2"]) == 2
    assert capsys.readouterr().err == "examples/demo_script.py: error: no such thing\n"
    with pytest.raises(FileNotFoundError, match="no such thing"):
        scripts.run_script(script, ["--debug", "--steps", "2"])


def test_an_unexpected_error_says_it_is_one_and_trainers_debug_option_passes_through(tmp_path, capsys):
    seen = []

    def main(argv):
        seen.append(argv)
        raise TypeError("something internal")

    script = _script(tmp_path, main)
    assert scripts.run_script(script, ["--debug", "underflow_overflow"]) == 2  # a --debug with a value is the script's own
    assert seen == [["--debug", "underflow_overflow"]]
    assert capsys.readouterr().err == ("examples/demo_script.py: error: unexpected TypeError: something internal "
                                       "(rerun with --debug for the traceback and report it)\n")
    assert scripts.run_script(script, ["--steps", "x"]) == 2 and len(seen) == 1  # refused before main
    assert "invalid int value: 'x'" in capsys.readouterr().err


def test_the_recipe_refuses_data_options_from_the_package(tmp_path, monkeypatch):
    """examples/pretrain.py --recipe: the options logic lives in stefaland_hf.experiments.release, the example only calls it."""
    from stefaland_hf.experiments import release

    calls = []
    monkeypatch.setattr(release, "run_release_pretraining", lambda *a, **k: calls.append((a, k)))
    parser = scripts.load_example(EXAMPLES / "pretrain.py").build_parser()
    argv = ["--recipe", "modeling/stefaland-conus", "--output-dir", str(tmp_path), "--learning-rate", "0.01"]
    training, data, _, other = parser.parse_args_into_dataclasses(args=argv, look_for_args_file=False)
    release.run_recipe_command(parser, argv, training, other.recipe, other.data_root, other.unpacked, data.cache_dir)
    assert calls[0][1]["learning_rate"] == 0.01 and "max_steps" not in calls[0][1]
    assert release.passed_options(parser, argv) == {"recipe", "output_dir", "learning_rate"}
    with pytest.raises(release.RecipeError, match=r"drop \['split'\]"):
        release.run_recipe_command(parser, [*argv, "--split", "pur"], training, other.recipe, other.data_root, None, None)


def test_pytest_prints_why_each_test_was_skipped(tmp_path):
    """pyproject's addopts has -rs: a skip (e.g. no ../shared/data) names its reason in the default summary."""
    (tmp_path / "test_skips.py").write_text("import pytest\n\n\ndef test_data():\n    pytest.skip('no ../shared/data here')\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(REPO / "pyproject.toml"),
                             "--rootdir", str(tmp_path), str(tmp_path / "test_skips.py")], capture_output=True, text=True, cwd=tmp_path)
    assert "SKIPPED [1] test_skips.py:5: no ../shared/data here" in result.stdout, result.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_option_of_the_examples_has_help(script):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"example_{script}", EXAMPLES / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    missing = [a.option_strings for a in module.build_parser()._actions if not a.help and a.dest != "help"]
    assert missing == []
