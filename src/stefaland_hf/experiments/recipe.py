"""The training recipe shared by the demo and the benchmarks: one place maps it to script arguments."""

from __future__ import annotations

from dataclasses import dataclass

from ..training.finetune import FinetuneArguments
from ..training.pretrain import PretrainArguments


@dataclass
class Recipe:
    seq_len: int = 365
    warmup: int = 180
    pretrain_epochs: int = 4
    pretrain_samples_per_epoch: int = 4096
    pretrain_batch_size: int = 64
    pretrain_learning_rate: float = 1e-3
    finetune_steps: int = 400
    finetune_eval_steps: int = 50
    finetune_batch_size: int = 64
    finetune_learning_rate: float = 1e-3
    head_hidden_size: int = 64
    embedding_scale_init: float = 0.1  # the adapter's initial scale s on LayerNorm(E) (paper: 0.1)
    patience: int = 4
    seed: int = 111
    # frozen-encoder heads train on cached embeddings of windows starting every this many days (None: seq_len - warmup);
    # embedding_cache=False runs the encoder every step on windows starting every day instead
    embedding_cache: bool = True
    embedding_cache_stride: int | None = None

    def pretrain_arguments(self, output_dir) -> PretrainArguments:
        return PretrainArguments(
            output_dir=str(output_dir),
            epochs=self.pretrain_epochs,
            samples_per_epoch=self.pretrain_samples_per_epoch,
            batch_size=self.pretrain_batch_size,
            learning_rate=self.pretrain_learning_rate,
            seq_len=self.seq_len,
            seed=self.seed,
        )

    def finetune_arguments(
        self, output_dir, head_mode: str, disable_tqdm: bool | None = None, embedding_cache_dir=None
    ) -> FinetuneArguments:
        return FinetuneArguments(
            output_dir=str(output_dir),
            head_mode=head_mode,
            seq_len=self.seq_len,
            warmup=self.warmup,
            batch_size=self.finetune_batch_size,
            learning_rate=self.finetune_learning_rate,
            max_steps=self.finetune_steps,
            eval_steps=self.finetune_eval_steps,
            patience=self.patience,
            head_hidden_size=self.head_hidden_size,
            embedding_scale_init=self.embedding_scale_init,
            seed=self.seed,
            embedding_cache_dir=None if embedding_cache_dir is None else str(embedding_cache_dir),
            embedding_cache=self.embedding_cache,
            embedding_cache_stride=self.embedding_cache_stride,
            disable_tqdm=disable_tqdm,
        )
