"""Presets of ``stefaland demo`` and ``stefaland benchmark``: YAML files here, one section per arguments class.

A preset file (``demo/<name>.yaml``, ``benchmark/<name>.yaml``) holds the experiment's own settings (section
``demo`` or ``benchmark``), ``pretrain`` (``PretrainArguments`` fields), ``finetune`` (``FinetuneArguments`` fields)
and ``baseline`` (``FinetuneArguments`` fields that differ for the LSTM baseline). Fields a section leaves out keep
their class defaults; the run adds what is not a setting (output folders, seeds). The finetuning examples default to
the ``default`` demo preset's ``finetune`` section and take the ``paper`` benchmark preset's with ``--paper-scale``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import yaml

PRESET_DIR = Path(__file__).parent
#: the training sections' fields the run sets itself (a ``--set`` of one would be replaced or would disagree with
#: what the run records): seeds come from ``--seed``/``--training-seed``, heads from ``--models``, folders from ``--out``,
#: MC dropout from a ``MODEL+mc_dropout`` model (its passes: ``benchmark.mc_dropout_passes``)
RUN_FIELDS = frozenset({
    "seed", "data_seed", "head_mode", "output_dir", "overwrite", "resume", "disable_tqdm", "embedding_cache_dir",
    "push_to_hub", "hub_model_id", "hub_private_repo", "mc_dropout_passes",
})
TRAINING_SECTIONS = ("pretrain", "finetune", "baseline")


def preset_names(kind: str) -> list[str]:
    """The presets of ``kind`` (``demo`` or ``benchmark``)."""
    return sorted(path.stem for path in (PRESET_DIR / kind).glob("*.yaml"))


def load_preset(kind: str, name: str) -> dict[str, dict]:
    """The sections of preset ``name`` of ``kind`` (a fresh copy)."""
    path = PRESET_DIR / kind / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"{kind} preset {name!r}: no {path}; presets: {preset_names(kind)}")
    return {section: dict(values or {}) for section, values in yaml.safe_load(path.read_text()).items()}


def apply_overrides(preset: dict[str, dict], assignments: Sequence[str], sections: dict[str, type]) -> dict[str, dict]:
    """``preset`` with ``SECTION.FIELD=VALUE`` assignments (``--set``) applied.

    Each value is read by the ``HfArgumentParser`` of the section's class (``sections``: section -> dataclass), as
    ``--FIELD VALUE`` on a command line: its types, choices and true/false words; a list takes comma-separated items.
    """
    from transformers import HfArgumentParser

    changed = {section: dict(values) for section, values in preset.items()}
    for assignment in assignments:
        key, equals, value = assignment.partition("=")
        section, dot, name = key.partition(".")
        if not equals or not dot or section not in sections:
            raise ValueError(f"--set {assignment!r}: expected SECTION.FIELD=VALUE with SECTION one of {sorted(sections)}")
        parser = HfArgumentParser(sections[section], allow_abbrev=False, exit_on_error=False)
        try:
            parsed, unknown = parser.parse_known_args([f"--{name}", *value.split(",")])
        except argparse.ArgumentError as error:
            raise ValueError(f"--set {assignment!r}: {error}") from None
        if unknown or name not in vars(parsed):
            raise ValueError(f"--set {assignment!r}: {name!r} is not a field of {sections[section].__name__} (section {section!r})")
        if section in TRAINING_SECTIONS and name in RUN_FIELDS:
            raise ValueError(f"--set {assignment!r}: the run sets {name} itself (seeds: --seed/--training-seed; heads: --models; "
                             "folders: --out; MC dropout: --models MODEL+mc_dropout with benchmark.mc_dropout_passes)")
        changed.setdefault(section, {})[name] = getattr(parsed, name)
    return changed
