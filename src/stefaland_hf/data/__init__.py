"""Land-surface datasets as ``datasets`` builders, plus windows, splits and normalization.

Builders are ``datasets`` builder classes instantiated directly (datasets 5 rejects loading
scripts); :func:`load_site_dataset` is the one-line way to build and open one by name.
"""

from __future__ import annotations

import importlib

BUILDERS = {
    "synthland": ("stefaland_hf.data.synthland", "SynthLand"),
    "camels_us": ("stefaland_hf.data.camels_us", "CamelsUS"),
    "hydrodl_smap": ("stefaland_hf.data.hydrodl_smap", "HydroDLSmap"),
    "caravan": ("stefaland_hf.data.caravan", "Caravan"),
}
#: how tables and cards name each builder's data
DATASET_TITLES = {"synthland": "SynthLand", "camels_us": "CAMELS-US", "hydrodl_smap": "hydroDL SMAP", "caravan": "Caravan"}


def get_builder_class(name: str):
    """The builder class registered under ``name`` (``synthland``, ``camels_us``, ``hydrodl_smap``, ``caravan``)."""
    if name not in BUILDERS:
        raise ValueError(f"dataset: unknown dataset {name!r}; expected one of {sorted(BUILDERS)}")
    module, cls = BUILDERS[name]
    return getattr(importlib.import_module(module), cls)


def load_site_dataset(name: str, config_name: str | None = None, data_dir: str | None = None, cache_dir: str | None = None, **config_kwargs):
    """Build (cached) and open a site dataset: one example per site, all sites in one ``Dataset``.

    The cache lives in ``cache_dir`` (default ``$HF_DATASETS_CACHE``, i.e.
    ``~/.cache/huggingface/datasets``) under ``<name>/``; the raw-file builders key it by the size
    and modification time of every file they read, so edited data is rebuilt. Delete that folder
    to clear it.
    """
    builder_class = get_builder_class(name)
    if name != "synthland" and data_dir is None:
        raise ValueError(f"dataset {name!r} reads raw files: pass data_dir (the folder of the raw release)")
    if name == "synthland" and data_dir is not None:
        raise ValueError(f"data_dir={data_dir!r}: SynthLand generates its sites and reads no files (pick its size with config_name)")
    builder = builder_class(config_name=config_name, data_dir=data_dir, cache_dir=cache_dir, **config_kwargs)
    builder.download_and_prepare()
    return open_prepared(builder)


def open_prepared(builder, split: str = "all"):
    """``builder.as_dataset(split)``; a truncated or corrupt Arrow cache is an error naming its folder and the fix
    (pyarrow's own names neither)."""
    import pyarrow

    try:
        return builder.as_dataset(split=split)
    except (OSError, pyarrow.ArrowException) as error:
        raise OSError(
            f"dataset cache {builder.cache_dir}: unreadable ({type(error).__name__}: {error}); its Arrow files are "
            f"truncated or corrupt (an interrupted build or copy): delete the folder {builder.cache_dir} to rebuild it"
        ) from error


__all__ = ["BUILDERS", "DATASET_TITLES", "get_builder_class", "load_site_dataset"]
