"""The model zoo: architectures (and released weights) by short name, in a checkout or an installed package.

In a source checkout it is the top-level ``modeling/`` folder; a wheel installs the same files as
``stefaland_hf/model_zoo`` (see ``pyproject.toml``).
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS_FILE = "model.safetensors"
# the released pretrained encoder: the default base of the streamflow examples and the CAMELS benchmark
RELEASE_MODEL = "stefaland-conus"


def model_zoo_dir() -> Path:
    """The top-level ``modeling/`` of a source checkout, or its copy ``stefaland_hf/model_zoo`` in a wheel."""
    checkout = Path(__file__).resolve().parents[2] / "modeling"
    return checkout if checkout.is_dir() else Path(__file__).resolve().parent / "model_zoo"


def shipped_weights(name: str) -> Path | None:
    """The zoo folder of ``name`` when it ships pretrained weights (not only a config), else None."""
    folder = model_zoo_dir() / name
    return folder if (folder / WEIGHTS_FILE).is_file() else None


def zoo_names() -> list[str]:
    """Short names in the zoo (each a folder with a config.json)."""
    return sorted(p.parent.name for p in model_zoo_dir().glob("*/config.json"))
