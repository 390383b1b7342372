"""The ``stefaland`` command reports an error as one line naming what is wrong (the traceback with ``--debug``)."""

import pytest

from stefaland_cli import main
from stefaland_hf.training.run_folder import RunFolderError


def test_an_error_is_one_line_and_debug_shows_the_traceback(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "notes.txt").write_text("not a run")
    assert main(["demo", "--preset", "smoke", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stefaland demo: error: output folder") and "Traceback" not in err
    assert "not a stefaland run folder" in err
    with pytest.raises(RunFolderError, match="not a stefaland run folder"):
        main(["--debug", "demo", "--preset", "smoke", "--out", str(out)])


def test_an_unexpected_error_says_it_is_one(monkeypatch, capsys):
    import stefaland_hf.experiments.demo as demo

    def broken(*args, **kwargs):
        raise TypeError("something internal")

    monkeypatch.setattr(demo, "run_demo", broken)
    assert main(["demo", "--preset", "smoke"]) == 2
    assert "stefaland demo: error: unexpected TypeError: something internal (rerun as `stefaland --debug" in capsys.readouterr().err


def test_finetuning_examples_default_to_laptop_scale_and_paper_scale_is_one_flag():
    from stefaland_hf.presets import load_preset
    from stefaland_hf.training.arguments import finetune_parser, parse_finetune_args

    parser = lambda: finetune_parser("", "runs/x", ["streamflow"], default_base="b")  # noqa: E731
    laptop, *_ = parse_finetune_args(parser(), [])
    assert (laptop.max_steps, laptop.seq_len, laptop.warmup, laptop.head_hidden_size, laptop.lr_scheduler_type) == (400, 365, 180, 64, "constant")
    paper, *_ = parse_finetune_args(parser(), ["--paper-scale"])
    scale = load_preset("benchmark", "paper")["finetune"]
    assert {k: getattr(paper, k) for k in scale} == scale and scale["seq_len"] == 730
    mixed, *_ = parse_finetune_args(parser(), ["--paper-scale", "--max-steps", "50"])
    assert mixed.max_steps == 50 and mixed.seq_len == 730  # what is given explicitly wins
    moisture, *_ = parse_finetune_args(finetune_parser("", "runs/y", ["soil_moisture"], "b", seq_len=180, warmup=60), [])
    assert (moisture.seq_len, moisture.warmup, moisture.target_variables, moisture.output_dir) == (180, 60, ["soil_moisture"], "runs/y")


def test_the_command_line_is_parsed_without_importing_the_heavy_libraries():
    """`stefaland --help` answers at once: building every subcommand's parser imports no torch/transformers/datasets."""
    import subprocess
    import sys

    code = (
        "import sys, stefaland_cli; stefaland_cli.build_parser(); "
        "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'peft', 'stefaland_hf') if m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_the_command_line_choices_are_those_of_the_code_that_runs():
    import stefaland_cli.benchmark as benchmark_cli
    import stefaland_cli.convert as convert_cli
    import stefaland_cli.demo as demo_cli
    from stefaland_hf import convert_original
    from stefaland_hf.experiments import benchmark, demo

    assert set(demo_cli.PRESETS) == set(demo.PRESETS) and set(benchmark_cli.PRESETS) == set(benchmark.PRESETS)
    assert list(benchmark_cli.MODEL_NAMES) == list(benchmark.MODELS.values())
    assert (convert_cli.RELEASED_NUM_HEADS, convert_cli.RELEASED_DROPOUT) == (convert_original.RELEASED_NUM_HEADS, convert_original.RELEASED_DROPOUT)


def parsers(parser):
    """``parser`` and its subcommands' parsers, depth first."""
    import argparse

    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from parsers(sub)


def test_every_option_of_every_subcommand_has_help():
    import argparse

    from stefaland_cli import build_parser

    missing = [f"{p.prog}: {a.option_strings or a.dest}" for p in parsers(build_parser()) for a in p._actions
               if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) and not a.help]
    assert missing == []


def test_builder_options_of_the_examples_reach_only_their_builder(monkeypatch):
    import stefaland_hf.training.arguments as arguments

    seen = {}
    monkeypatch.setattr(arguments, "load_site_dataset", lambda name, **kwargs: seen.update(name=name, **kwargs))
    arguments.DataArguments(dataset="camels_us", data_dir="d", extra_data_dir=["u"], ungauged="u/basin_list.txt").load()
    assert seen["extra_data_dirs"] == ["u"] and seen["ungauged"] == "u/basin_list.txt" and "missing_targets" not in seen
    with pytest.raises(ValueError, match="--ungauged: applies to --dataset camels_us, not hydrodl_smap"):
        arguments.DataArguments(dataset="hydrodl_smap", ungauged="x").load()
    arguments.DataArguments(dataset="hydrodl_smap", missing_targets="nan").load()
    assert seen["missing_targets"] == "nan"


# wrong arguments of every subcommand: each must fail (status 2, one line naming the option) before the work imports
WRONG_ARGUMENTS = [
    (["demo", "--set", "training.max_steps=5"], "expected SECTION.FIELD=VALUE with SECTION one of"),
    (["benchmark", "pub", "--out", "o"], "--data-dir: camels_us is read from its raw release folder"),
    (["benchmark", "pub", "--dataset", "synthland", "--base", "b", "--pretrain-on", "all", "--out", "o"], "not allowed with argument"),
    (["benchmark", "pub", "--data-dir", "no/such/dir", "--out", "o"], "--data-dir no/such/dir: no such folder"),
    (["benchmark", "pub", "--dataset", "synthland", "--training-seeds", "5", "5", "--out", "o"], "a seed is listed twice"),
    (["compare", "--run", "a=no/such/run", "--reference", "a", "resconn"], "--run a=no/such/run: no such folder"),
    (["compare", "--run", "no-label", "--reference", "a", "resconn"], "'no-label': expected LABEL=DIR"),
    (["reconstruct", "--models", "m", "--data-dir", ".", "--sites", "no/such/sites.txt"], "--sites no/such/sites.txt: no such file"),
    (["reconstruct", "--models", "m", "--data-dir", ".", "--sites", "x", "--period", "1990-13-01", "1991-01-01"], "'1990-13-01' is not an ISO date"),
    (["predict", "--adapter", "a", "--data-dir", ".", "--basins", "no/such/list.txt", "--period", "2000-01-01,2001-01-01", "--out", "o"],
     "--basins no/such/list.txt: no such file"),
    (["predict", "--adapter", "a", "--data-dir", ".", "--basins", "b", "--period", "2001-01-01,2000-01-01", "--out", "o"], "the start is after the end"),
    (["push", "model", "no/such/model", "org/name"], "folder no/such/model: no such folder"),
    (["push", "model", ".", "no-namespace"], "expected a Hub repo id NAMESPACE/NAME"),
    (["push", "dataset", "camels", "org/name"], "invalid choice: 'camels'"),
    (["convert-original", "no/such/checkpoint.pt", "--out", "o"], "checkpoint no/such/checkpoint.pt: no such file"),
    (["export", "no/such/adapter", "o"], "adapter no/such/adapter: no such folder"),
    (["export", ".", "o", "--benchmark", "no/such/results.json"], "--benchmark no/such/results.json: no such file"),
]


def test_wrong_arguments_fail_before_the_heavy_imports(tmp_path):
    """`stefaland CMD` with a wrong argument answered after ~6 s of imports; files, folders, dates and combinations
    of options are now checked first (stefaland_cli.checks), for every subcommand."""
    import json
    import subprocess
    import sys

    (tmp_path / "b").write_text("01013500\n")
    (tmp_path / "x").write_text("01013500\n")
    code = f"""
import contextlib, io, json, sys, stefaland_cli
results = []
for argv in {[argv for argv, _ in WRONG_ARGUMENTS]!r}:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            status = stefaland_cli.main(argv)
        except SystemExit as exit:  # argparse's own errors (types, choices)
            status = exit.code
    results.append([status, err.getvalue().strip().splitlines()[-1]])
print(json.dumps({{"results": results, "imported": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path).stdout)
    assert out["imported"] == []
    for (argv, message), (status, line) in zip(WRONG_ARGUMENTS, out["results"]):
        assert status == 2 and line.startswith(f"stefaland {argv[0]}") and message in line, (argv, line)


HEAVY = ("torch", "transformers", "datasets", "peft", "stefaland_hf")


def test_every_subcommands_help_fits_on_a_screen(monkeypatch):
    from stefaland_cli import build_parser

    monkeypatch.setenv("COLUMNS", "80")
    lengths = {p.prog: len(p.format_help().splitlines()) for p in parsers(build_parser())}
    assert len(lengths) >= 10 and max(lengths.values()) <= 50, lengths
    predict = next(p for p in parsers(build_parser()) if p.prog == "stefaland predict").format_help()
    for what in ("basin_mean_forcing/daymet/<HUC02>/<gauge_id>_lump_cida_forcing_leap.txt", "usgs_streamflow/", "camels_attributes_v2.0/",
                 "No basin is skipped silently", "unless --ungauged lists it", "fewer than --warmup days"):
        assert what in predict


def test_the_light_checks_know_the_code_s_datasets_and_sections():
    import stefaland_cli.benchmark as benchmark_cli
    import stefaland_cli.demo as demo_cli
    from stefaland_cli import checks
    from stefaland_hf.data import BUILDERS
    from stefaland_hf.experiments import benchmark, demo

    assert sorted(checks.DATASETS) == sorted(BUILDERS)
    assert list(demo_cli.SECTIONS) == list(demo.SECTIONS) and list(benchmark_cli.SECTIONS) == list(benchmark.SECTIONS)


def test_a_batch_size_below_one_is_refused_while_parsing(capsys):
    from stefaland_cli import build_parser

    for argv in (["predict", "--model", "m", "--forcings", "f", "--out", "o", "--batch-size", "0"],
                 ["reconstruct", "--model", "m", "--out", "o", "--batch-size", "-3"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(argv)
        assert "must be at least 1" in capsys.readouterr().err
