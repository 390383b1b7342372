"""Presets state only what differs: each hyperparameter's default is defined once, in its arguments class."""

import dataclasses

import pytest

from stefaland_hf.experiments import benchmark, demo
from stefaland_hf.presets import load_preset, preset_names


@pytest.mark.parametrize("kind, sections", [("benchmark", benchmark.SECTIONS), ("demo", demo.SECTIONS)])
def test_presets_repeat_no_default(kind, sections):
    for name in preset_names(kind):
        preset = load_preset(kind, name)
        for section, values in preset.items():
            if section == "baseline":  # the LSTM's differences from the preset's own finetune section
                repeated = {k: v for k, v in values.items() if preset.get("finetune", {}).get(k) == v}
            else:
                defaults = {f.name: f.default for f in dataclasses.fields(sections[section])}
                repeated = {k: v for k, v in values.items() if k in defaults and defaults[k] == v}
            assert not repeated, f"presets/{kind}/{name}.yaml section {section!r} repeats defaults {repeated}"
