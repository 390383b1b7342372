"""Tiny pretraining and finetuning on SynthLand "tiny" for tests/test_distributed.py.

Runs under plain ``python`` (one process) and under ``accelerate launch`` (one per process); pass the
per-process batch size, so N processes with ``--batch-size b`` see the global batch of one process
with ``--batch-size N*b``:

    python tests/distributed_script.py OUT CACHE --batch-size 16
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 --num_machines 1 \\
        --mixed_precision no --dynamo_backend no tests/distributed_script.py OUT CACHE --batch-size 8

Writes ``OUT/pretrain/model``, ``OUT/finetune/model`` and ``OUT/windows_rank{r}.json``: the
(site_index, start) of every window served to process r, per phase and batch. Dropout is 0 so no
per-process random stream enters the results.
"""

import argparse
import json
import os
from pathlib import Path
from unittest import mock

from stefaland_hf import StefaLandConfig
from stefaland_hf.data import load_site_dataset
from stefaland_hf.data.splits import pub_folds
from stefaland_hf.data.synthland import DYNAMIC_VARIABLES, STATIC_VARIABLES
from stefaland_hf.training import finetune as finetune_module
from stefaland_hf.training import pretrain as pretrain_module
from stefaland_hf.training.arguments import FinetuneArguments
from stefaland_hf.training.finetune import finetune
from stefaland_hf.training.pretrain import PretrainArguments, pretrain

PERIOD = ("2000-01-01", "2001-12-31")
SAMPLES_PER_EPOCH = 32  # a multiple of the global batch: accelerate pads an incomplete last step per process
FINETUNE_STEPS = 3


def tiny_config() -> StefaLandConfig:
    return StefaLandConfig(
        dynamic_variables=list(DYNAMIC_VARIABLES),
        static_variables=list(STATIC_VARIABLES),
        dynamic_groups={"temperature": ["temperature_max", "temperature_min"]},
        static_groups={"soil": ["sand_fraction", "silt_fraction", "clay_fraction"]},
        never_mask_variables=["area"],
        d_model=16,
        num_attention_heads=2,
        num_hidden_layers=1,
        ffn_dim=32,
        variable_mlp_dim=8,
        max_position_embeddings=64,
        mask_window_min=3,
        mask_window_max=8,
        dropout=0.0,
    )


def recording(collate, windows: list):
    """``collate`` that first appends the (site_index, start) of the batch's windows to ``windows``."""

    def collate_and_record(items):
        windows.append([[int(item["site_index"]), int(item["start"])] for item in items])
        return collate(items)

    return collate_and_record


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("cache_dir")
    parser.add_argument("--batch-size", type=int, required=True, help="per process")
    args = parser.parse_args()

    dataset = load_site_dataset("synthland", config_name="tiny", cache_dir=args.cache_dir)
    periods = {"train_period": PERIOD, "val_period": PERIOD, "test_period": ("2002-01-01", "2002-03-31")}
    split = pub_folds(list(dataset["site_id"]), k=4, seed=0, val_fraction=0.2, **periods)[0]
    seen = {"pretrain": [], "finetune": []}

    pretrain_args = PretrainArguments(
        output_dir=str(args.out / "pretrain"), num_train_epochs=2, samples_per_epoch=SAMPLES_PER_EPOCH, per_device_train_batch_size=args.batch_size,
        seq_len=40, learning_rate=1e-3, mixed_precision="no", seed=7,
    )
    with mock.patch.object(pretrain_module, "_model_batch", recording(pretrain_module._model_batch, seen["pretrain"])):
        pretrain(tiny_config(), dataset, split.sites("train"), split.period("train"), pretrain_args)

    finetune_args = FinetuneArguments(
        output_dir=str(args.out / "finetune"), head_mode="direct", target_variables=["soil_moisture"], seq_len=40, warmup=10,
        per_device_train_batch_size=args.batch_size, learning_rate=1e-2, max_steps=FINETUNE_STEPS, eval_steps=FINETUNE_STEPS,
        logging_steps=1, head_hidden_size=8, head_dropout=0.0, per_device_eval_batch_size=16, disable_tqdm=True, seed=7,
    )
    with mock.patch.object(finetune_module, "collate_model_batch", recording(finetune_module.collate_model_batch, seen["finetune"])):
        finetune(tiny_config(), dataset, split, finetune_args)
    # The collator also served evaluation batches (and the loader prefetched one): keep the training steps.
    seen["finetune"] = seen["finetune"][:FINETUNE_STEPS]
    (args.out / f"windows_rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(seen))


if __name__ == "__main__":
    main()
