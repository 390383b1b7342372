"""The Hugging Face Hub side of StefaLand, one job per module.

``cards``   every card (model, adapter, dataset, converted checkpoint) rendered from the ``hub_cards/`` templates
``push``    one-commit pushes of models, adapters and datasets (``HubPushError`` says what the Hub holds after a failure)
``names``   short model names and :func:`from_pretrained` (folder, ``$STEFALAND_WEIGHTS``, model zoo, Hub)
``cli``     the work of ``stefaland push``

The names below are imported from their module on first use, so that rendering a card (pretraining,
finetuning) or resolving a name (``import stefaland_hf``) does not load the push machinery.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "render_model_card": "cards",
    "render_adapter_card": "cards",
    "render_dataset_card": "cards",
    "render_converted_card": "cards",
    "push_model": "push",
    "push_adapter": "push",
    "push_dataset": "push",
    "HubPushError": "push",
    "from_pretrained": "names",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
