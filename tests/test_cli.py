"""The ``stefaland`` command reports an error as one line naming what is wrong (the traceback with ``--debug``)."""

import pytest

from stefaland_hf.cli import main
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
    import argparse

    from stefaland_hf.training.cli_args import PAPER_SCALE, add_finetune_arguments, add_split_arguments, finetune_arguments_from_args

    parser = argparse.ArgumentParser()
    add_finetune_arguments(parser, "runs/x")
    add_split_arguments(parser)
    laptop = finetune_arguments_from_args(parser.parse_args(["--base", "b"]), ["streamflow"])
    assert (laptop.max_steps, laptop.seq_len, laptop.warmup, laptop.head_hidden_size) == (400, 365, 180, 64)
    paper = finetune_arguments_from_args(parser.parse_args(["--base", "b", "--paper-scale"]), ["streamflow"])
    assert {k: getattr(paper, k) for k in PAPER_SCALE} == PAPER_SCALE
    mixed = finetune_arguments_from_args(parser.parse_args(["--base", "b", "--paper-scale", "--max-steps", "50"]), ["streamflow"])
    assert mixed.max_steps == 50 and mixed.seq_len == 730  # what is given explicitly wins
