"""Does a comparison of heads depend on how the heads are initialized? `stefaland benchmark` with every task head
initialized one way.

A resConn adapter head is built by PEFT outside ``post_init`` and keeps PyTorch's default initialization, while the
heads of ``scratch`` and ``direct`` (and the encoder) get ``StefaLandPreTrainedModel._init_weights`` (transformers'
Linear N(0, 0.02) and LSTM Xavier with zero biases). ``--head-init model`` copies the latter into every new resConn
head (from a model built with the adapter's head config); ``--head-init pytorch`` resets the heads of ``direct`` and
``scratch`` to PyTorch's defaults. The rest of the command line is ``stefaland``'s, e.g.

    python benchmarks/head_init_check.py --head-init model benchmark pub --dataset camels_us \\
        --data-dir ../shared/data/camels_us --folds 5 --seed 111 --preset cpu-quick --models resconn \\
        --set finetune.max_steps=2000 --training-seed 111 --out runs/head_init_resconn_111
"""

from __future__ import annotations

import sys

from torch import nn

from stefaland_cli import main
from stefaland_hf import StefaLandForTimeSeriesRegression, peft_adapters
from stefaland_hf.training import finetune

build_adapter_head = peft_adapters.ResConnLayer.update_layer
build_model = finetune.build_finetune_model


def adapter_head_with_model_init(self, adapter_name: str, config) -> None:
    build_adapter_head(self, adapter_name, config)
    donor = StefaLandForTimeSeriesRegression(config.head_config(self.model_config))  # post_init's initialization
    # the adapter head also carries its settings' binding (peft_adapters.BINDING_BUFFER), which the donor has not
    missing, unexpected = self.resconn_heads[adapter_name].load_state_dict(donor.head.state_dict(), strict=False)
    if missing != [peft_adapters.BINDING_BUFFER] or unexpected:
        raise RuntimeError(f"the donor head does not match the adapter head: missing {missing}, unexpected {unexpected}")


def model_with_pytorch_head_init(*args, **kwargs):
    model = build_model(*args, **kwargs)
    if not hasattr(model, "peft_config"):  # direct / scratch: their own head, initialized by post_init
        for module in model.head.modules():
            if isinstance(module, (nn.Linear, nn.LSTM, nn.LayerNorm)):
                module.reset_parameters()
    return model


if __name__ == "__main__":
    if sys.argv[1:3] == ["--head-init", "model"]:
        peft_adapters.ResConnLayer.update_layer = adapter_head_with_model_init
    elif sys.argv[1:3] == ["--head-init", "pytorch"]:
        finetune.build_finetune_model = model_with_pytorch_head_init
    else:
        sys.exit("usage: head_init_check.py --head-init model|pytorch STEFALAND-ARGUMENTS ...")
    sys.exit(main(sys.argv[3:]))
