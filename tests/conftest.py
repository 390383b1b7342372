"""Shared fixtures: tiny configs and inputs, offline HF settings."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import atexit
import shutil
import tempfile

# Embedding caches of the tests go to a throwaway folder (removed at exit), never into the user's ~/.cache.
if "STEFALAND_CACHE_DIR" not in os.environ:
    os.environ["STEFALAND_CACHE_DIR"] = tempfile.mkdtemp(prefix="stefaland-test-cache-")
    atexit.register(shutil.rmtree, os.environ["STEFALAND_CACHE_DIR"], ignore_errors=True)

# The shipped models the import writes into the HF cache (hub/zoo_cache.py) go to a throwaway cache as well.
if "HF_HUB_CACHE" not in os.environ:
    os.environ["HF_HUB_CACHE"] = tempfile.mkdtemp(prefix="stefaland-test-hf-cache-")
    atexit.register(shutil.rmtree, os.environ["HF_HUB_CACHE"], ignore_errors=True)

from pathlib import Path

import pytest
import torch

from stefaland_hf import StefaLandConfig

# Real observed data (read in place, never copied): ../shared/data beside the repository, or $STEFALAND_SHARED_DATA.
SHARED_DATA = Path(os.environ.get("STEFALAND_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
CAMELS_US = SHARED_DATA / "camels_us"
SMAP_CONUS = SHARED_DATA / "hydrodl_smap_conus"
needs_camels = pytest.mark.skipif(
    not CAMELS_US.exists(), reason=f"real CAMELS-US data not found at {CAMELS_US} (set STEFALAND_SHARED_DATA to the shared data folder)"
)

# Prepended to a subprocess's code: importing stefaland_hf fails there, so a saved folder must load by its remote code.
WITHOUT_PACKAGE = """import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "stefaland_hf":
            raise ImportError("stefaland_hf is blocked in this process")
sys.meta_path.insert(0, Block())
"""

TINY_DYNAMIC = ["precipitation", "temperature_max", "temperature_min", "shortwave_radiation"]
TINY_STATIC = ["latitude", "longitude", "elevation", "slope", "sand_fraction", "silt_fraction", "clay_fraction", "area"]


def tiny_config(**overrides) -> StefaLandConfig:
    kwargs = dict(
        dynamic_variables=TINY_DYNAMIC,
        static_variables=TINY_STATIC,
        dynamic_groups={"temperature": ["temperature_max", "temperature_min"]},
        static_groups={"soil": ["sand_fraction", "silt_fraction", "clay_fraction"], "location": ["latitude", "longitude"]},
        never_mask_variables=["area"],
        d_model=16,
        num_attention_heads=2,
        num_hidden_layers=2,
        ffn_dim=32,
        variable_mlp_dim=8,
        max_position_embeddings=64,
        mask_window_min=3,
        mask_window_max=8,
        head_hidden_size=12,
        dynamic_mean=[2.0, 15.0, 5.0, 150.0],
        dynamic_std=[4.0, 10.0, 10.0, 80.0],
        static_mean=[40.0, -100.0, 800.0, 20.0, 0.4, 0.35, 0.25, 500.0],
        static_std=[5.0, 15.0, 600.0, 15.0, 0.15, 0.1, 0.1, 400.0],
        target_variables=["streamflow"],
        target_mean=[1.0],
        target_std=[1.5],
    )
    kwargs.update(overrides)
    return StefaLandConfig(**kwargs)


def tiny_inputs(batch: int = 3, length: int = 40, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x_dynamic = torch.stack(
        [
            torch.rand(batch, length, generator=g) * 8,
            20 + 5 * torch.randn(batch, length, generator=g),
            8 + 5 * torch.randn(batch, length, generator=g),
            150 + 50 * torch.randn(batch, length, generator=g),
        ],
        dim=-1,
    )
    x_static = torch.tensor([[40.0, -100.0, 800.0, 20.0, 0.4, 0.35, 0.25, 500.0]]).repeat(batch, 1)
    x_static = x_static * (1 + 0.1 * torch.randn(batch, x_static.shape[1], generator=g))
    return x_dynamic, x_static


@pytest.fixture
def config():
    return tiny_config()
