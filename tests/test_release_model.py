"""The released stefaland-conus ships with the package: it loads by name offline, from a checkout and from an
installed (non-editable) wheel, and its vocabulary and card say what it was pretrained on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

import stefaland_hf
from stefaland_hf import zoo
from stefaland_hf.modeling_stefaland import StefaLandForPretraining
from stefaland_hf.variables import TARGET, get_variable

from conftest import CAMELS_US

ROOT = Path(__file__).resolve().parents[1]
RELEASE = ROOT / "modeling" / zoo.RELEASE_MODEL


def test_the_release_ships_small_safetensors_weights_with_its_card_and_recipe():
    assert zoo.shipped_weights(zoo.RELEASE_MODEL) == RELEASE
    assert (RELEASE / "model.safetensors").stat().st_size <= 10 * 2**20
    for name in ("config.json", "README.md", "recipe.json", "normalization.json", "zero_shot_sites.json", "loss_curve.csv"):
        assert (RELEASE / name).is_file(), name
    assert not list(RELEASE.glob("*.py")), "the package's own code loads it; no remote-code copies in the zoo"


def test_loads_by_name_offline_with_the_union_vocabulary_and_no_targets():
    model = stefaland_hf.from_pretrained(zoo.RELEASE_MODEL, StefaLandForPretraining)
    config = model.config
    for name in ("precipitation", "temperature_max", "daylength", "longwave_radiation", "wind_u"):  # CAMELS and SMAP forcings
        assert name in config.dynamic_variables
    for name in ("aridity", "field_capacity", "ndvi", "latitude"):
        assert name in config.static_variables
    assert not [n for n in config.dynamic_variables + config.static_variables if get_variable(n).kind == TARGET]
    assert config.dynamic_mean is not None and len(config.dynamic_mean) == len(config.dynamic_variables)
    # a CAMELS-like input: the SMAP-only forcings are NaN -> mask tokens; the reconstruction is finite
    x_dynamic = torch.full((2, 60, len(config.dynamic_variables)), float("nan"))
    for j, name in enumerate(config.dynamic_variables):
        if name in ("precipitation", "temperature_max", "temperature_min", "shortwave_radiation", "vapor_pressure"):
            x_dynamic[..., j] = torch.tensor(config.dynamic_mean[j])
    x_static = torch.tensor(config.static_mean).repeat(2, 1)
    with torch.no_grad():
        out = model(x_dynamic=x_dynamic, x_static=x_static)
    assert torch.isfinite(out.dynamic_reconstruction).all()


def test_zero_shot_sites_are_ungauged_basins():
    held_out = json.loads((RELEASE / "zero_shot_sites.json").read_text())["camels_us"]
    assert len(held_out) == 61
    if CAMELS_US.exists():
        gauged = set((CAMELS_US / "basin_list.txt").read_text().split())
        assert not gauged & set(held_out)


def test_an_installed_wheel_carries_the_weights(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "wheel"), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next((tmp_path / "wheel").glob("*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(tmp_path / "site"), str(wheel)],
                   check=True, capture_output=True)
    code = (
        "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()];"  # hide the checkout
        f"sys.path.insert(0, {str(tmp_path / 'site')!r});"
        "import stefaland_hf; from stefaland_hf import zoo;"
        "from stefaland_hf.modeling_stefaland import StefaLandForPretraining;"
        "m = stefaland_hf.from_pretrained('stefaland-conus', StefaLandForPretraining);"
        "from stefaland_hf.presets import load_preset, preset_names;"  # the presets ship too
        "assert preset_names('benchmark') == ['cpu-quick', 'paper', 'smoke'] and load_preset('demo', 'default')['finetune'], preset_names('benchmark');"
        "print(stefaland_hf.__file__); print(zoo.shipped_weights('stefaland-conus'))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    package_file, weights = done.stdout.split()
    assert package_file.startswith(str(tmp_path / "site")) and weights.startswith(str(tmp_path / "site"))
