"""Release pretrainings from a model-zoo recipe (``modeling/<name>/recipe.json``).

A recipe names the architecture (a zoo config), the corpus sources (builder, raw folders, builder
options, period) and the pretraining arguments. Raw folders are written with two placeholders:
``{data}`` (the shared data folder, e.g. ``../shared/data``) and ``{unpacked}`` (where archives
such as ``camels_us_ungauged.tar.xz`` were unpacked), so one recipe runs on any machine.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import tempfile
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from ..configuration_stefaland import StefaLandConfig
from ..data import load_site_dataset
from ..data.corpus import CorpusSource, PretrainingCorpus
from ..training.pretrain import PretrainArguments, config_with_variables, pretrain_corpus
from ..zoo import model_zoo_dir

RECIPE_FILE = "recipe.json"
# with --recipe: what the recipe leaves to the command line; the recipe itself names architecture, data and split
RECIPE_OPTIONS = frozenset({"recipe", "data_root", "unpacked", "output_dir", "resume", "overwrite", "cache_dir"})
ZERO_SHOT_FILE = "zero_shot_sites.json"  # sites kept out of the pretraining, per source
_PATH_OPTIONS = ("data_dir", "extra_data_dirs", "ungauged")


class RecipeError(ValueError):
    """A recipe file that cannot be run as written."""


def _fill(value, where: str, roots: dict[str, str]):
    if isinstance(value, list):
        return [_fill(v, where, roots) for v in value]
    try:
        return value.format(**roots)
    except KeyError as err:
        raise RecipeError(f"{where}: unknown placeholder {{{err.args[0]}}} in {value!r}; known: {sorted('{' + k + '}' for k in roots)}") from None


def load_recipe(path: str | Path) -> dict:
    """The recipe as a dict, checked for the keys a release pretraining needs."""
    path = Path(path)
    if path.is_dir():
        path = path / RECIPE_FILE
    if not path.is_file():
        raise RecipeError(f"recipe: {path} does not exist")
    recipe = json.loads(path.read_text())
    missing = [k for k in ("architecture", "sources", "pretrain") if k not in recipe]
    if missing:
        raise RecipeError(f"{path}: missing keys {missing}")
    known = {f.name for f in fields(PretrainArguments)} - {"output_dir"}
    unknown = sorted(set(recipe["pretrain"]) - known)
    if unknown:
        raise RecipeError(f"{path}: pretrain has unknown fields {unknown}; known: {sorted(known)}")
    for i, source in enumerate(recipe["sources"]):
        for key in ("name", "dataset"):
            if key not in source:
                raise RecipeError(f"{path}: sources[{i}] lacks {key!r}")
    recipe["_path"] = str(path)
    return recipe


def build_corpus(recipe: dict, data_root: str, unpacked_root: str | None, cache_dir: str | None = None) -> PretrainingCorpus:
    """Build (cached) every source of the recipe and read them as one corpus."""
    roots = {"data": str(data_root), "unpacked": str(unpacked_root) if unpacked_root else "{unpacked}"}
    sources = []
    for spec in recipe["sources"]:
        options = dict(spec.get("options", {}))
        where = f"{recipe['_path']} source {spec['name']!r}"
        for key in _PATH_OPTIONS:
            if key in options:
                options[key] = _fill(options[key], where, roots)
                if "{unpacked}" in json.dumps(options[key]):
                    raise RecipeError(f"{where}: {key} needs the unpacked-archives folder (--unpacked DIR)")
        dataset = load_site_dataset(spec["dataset"], cache_dir=cache_dir, **options)
        period = tuple(spec["period"]) if spec.get("period") else None
        held_out = zero_shot_holdout(dataset, spec.get("zero_shot_holdout"), where)
        sites = np.setdiff1d(np.arange(len(dataset)), held_out)
        try:
            source = CorpusSource(spec["name"], dataset, sites=sites, period=period, units=spec.get("units", {}))
        except ValueError as error:  # e.g. a period off the record: name the recipe and the source, not only the source
            raise RecipeError(f"{where}: {error}") from None
        source.held_out_site_ids = [dataset[int(i)]["site_id"] for i in held_out]
        sources.append(source)
    return PretrainingCorpus(sources)


def zero_shot_holdout(dataset, spec: dict | None, where: str) -> np.ndarray:
    """Rows kept out of pretraining to judge reconstruction zero-shot: every ``every``-th site by id.

    ``{"every": 10, "ungauged_only": true}`` holds out a tenth of the ungauged basins, so the gauged
    ones (finetuning's sites) stay in the corpus.
    """
    if not spec:
        return np.zeros(0, dtype=np.int64)
    unknown = sorted(set(spec) - {"every", "ungauged_only"})
    if unknown or not isinstance(spec.get("every"), int) or spec["every"] < 2:
        raise RecipeError(f"{where}: zero_shot_holdout must be {{'every': N >= 2, 'ungauged_only': bool}}, got {spec}")
    rows = np.arange(len(dataset))
    if spec.get("ungauged_only", False):
        rows = rows[~np.asarray(dataset["gauged"], dtype=bool)]
    ids = np.asarray(dataset["site_id"], dtype=object)[rows]
    return np.sort(rows[np.argsort(ids, kind="stable")][:: spec["every"]])


def release_config(recipe: dict, corpus: PretrainingCorpus) -> StefaLandConfig:
    """The zoo architecture with the corpus's union vocabulary."""
    base = StefaLandConfig.from_pretrained(model_zoo_dir() / recipe["architecture"])
    return config_with_variables(base, corpus.dynamic_variables, corpus.static_variables)


def run_release_pretraining(recipe_path, output_dir, data_root, unpacked_root=None, cache_dir=None, **overrides):
    """Pretrain as the recipe says into ``output_dir`` (resumable); ``overrides`` replace pretrain fields."""
    recipe = load_recipe(recipe_path)
    corpus = build_corpus(recipe, data_root, unpacked_root, cache_dir)
    config = release_config(recipe, corpus)
    args = replace(PretrainArguments(output_dir=str(output_dir), **recipe["pretrain"]), **overrides)
    for name, info in corpus.describe().items():
        print(f"corpus source {name}: {info['n_sites']} sites, {info['period'][0]} to {info['period'][1]}")
    print(f"vocabulary: {len(config.dynamic_variables)} forcings, {len(config.static_variables)} attributes")
    model = pretrain_corpus(config, corpus, args)
    held_out = {s.name: s.held_out_site_ids for s in corpus.sources if getattr(s, "held_out_site_ids", None)}
    (Path(output_dir) / "model" / ZERO_SHOT_FILE).write_text(json.dumps(held_out, indent=1))
    return model


def passed_options(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The dests that ``argv`` sets, not their defaults (a ``--recipe`` run must not drop them silently)."""
    parser = copy.deepcopy(parser)
    parser._defaults.clear()  # what set_defaults() gave
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_known_args(argv)[0]))


def run_recipe_command(parser: argparse.ArgumentParser, argv: list[str], training: PretrainArguments, recipe: str,
                       data_root: str, unpacked: str | None, cache_dir: str | None):
    """``examples/pretrain.py --recipe``: :func:`run_release_pretraining` with the pretraining options the command
    line sets (``--max-steps``, ``--seed``, ...) on top of the recipe's; a data, split or model option is refused,
    since the recipe names those."""
    passed = passed_options(parser, argv)
    pretraining = {f.name for f in fields(training)} - RECIPE_OPTIONS
    refused = sorted(passed - RECIPE_OPTIONS - pretraining)
    if refused:
        raise RecipeError(f"--recipe {recipe}: the recipe names the architecture, data and split; drop {refused}")
    return run_release_pretraining(recipe, training.output_dir, data_root, unpacked, cache_dir, resume=training.resume,
                                   overwrite=training.overwrite, **{name: getattr(training, name) for name in passed & pretraining})


def release_checkpoint(recipe_path, checkpoint, data_root, unpacked_root=None, cache_dir=None, out=None, compute: str = "") -> Path:
    """Ship a checkpoint of a recipe's pretraining run (one still going, or whose folder will not survive) as the zoo
    model: weights and configuration (:func:`~stefaland_hf.training.pretrain.export_checkpoint`), ``normalization.json``,
    ``zero_shot_sites.json``, the loss curve up to the checkpoint and a card. The recipe's corpus is rebuilt and must
    give exactly the checkpoint's normalization statistics (else it is another corpus, and that is refused).
    ``compute`` describes the hardware and time (host features, precision, threads, wall hours) for the card.
    """
    from ..hub.cards import render_model_card
    from ..training.logging_utils import write_loss_curve
    from ..training.pretrain import STATE_FILE, card_facts, export_checkpoint

    recipe = load_recipe(recipe_path)
    checkpoint = Path(checkpoint)
    out = Path(out) if out is not None else Path(recipe["_path"]).parent
    corpus = build_corpus(recipe, data_root, unpacked_root, cache_dir)
    config = release_config(recipe, corpus)
    normalization = corpus.fit_normalization(config.dynamic_variables, config.static_variables)
    recorded = StefaLandConfig.from_pretrained(checkpoint.parent)
    fitted = config.replace(**normalization.input_statistics())
    differ = [k for k in ("dynamic_variables", "static_variables", "dynamic_mean", "dynamic_std", "static_mean", "static_std")
              if getattr(recorded, k) != getattr(fitted, k)]
    if differ:
        raise RecipeError(f"{checkpoint}: its run's {differ} differ from the recipe's corpus {recipe['_path']}: another corpus or code")
    with tempfile.TemporaryDirectory() as exported:  # the zoo holds weights and config, not save_pretrained's code copies
        export_checkpoint(checkpoint, exported)
        for name in ("config.json", "model.safetensors"):
            shutil.copyfile(Path(exported) / name, out / name)
    (out / "normalization.json").write_text(json.dumps(normalization.to_dict(), indent=1))
    held_out = {s.name: s.held_out_site_ids for s in corpus.sources if getattr(s, "held_out_site_ids", None)}
    (out / ZERO_SHOT_FILE).write_text(json.dumps(held_out, indent=1))
    state = json.loads((checkpoint / STATE_FILE).read_text())
    write_loss_curve(state["history"], out / "loss_curve")
    args = PretrainArguments(output_dir=str(checkpoint.parent.parent), **recipe["pretrain"])
    steps = f"{state['global_step']} optimizer steps (checkpoint {checkpoint.name} of recipe.json's {args.max_steps}); {compute}".rstrip("; ")
    render_model_card(out, training=card_facts(corpus, args, steps)).save(out / "README.md")
    return out
