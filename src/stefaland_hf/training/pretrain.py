"""Masked-autoencoder pretraining as a plain Accelerate loop.

bf16 autocast (``mixed_precision="auto"``), gradient accumulation, clipping (paper: 5.0), AdamW, a tqdm bar with the loss,
a loss curve (CSV + PNG), periodic ``save_state`` and ``resume``. The data order is derived from
(seed, epoch) and the masks of micro-batch k from (seed, epoch, k), drawn in the loop (not in a
prefetching collator), so a run interrupted and resumed ends with the same weights as an
uninterrupted one.

Data parallel (``accelerate launch --num_processes N``): process r gets every N-th batch of the
1-process order, so one step's N per-process batches together are the 1-process batch of size
N x ``batch_size``. Masks are drawn for that global batch and sliced per process, and the loss is
divided by the global counts of reconstructed entries, so N processes take the same optimizer steps
as one process with the global batch (dropout aside, whose random streams differ per process).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from accelerate.utils.constants import RNG_STATE_NAME
from tqdm.auto import tqdm

from ..configuration_stefaland import StefaLandConfig
from ..data.corpus import CorpusSource, PretrainingCorpus
from ..data.normalization import INPUT_FIELDS
from ..data.samplers import collate_windows
from ..masking import CrossVariableGroupMasking
from ..modeling_stefaland import StefaLandForPretraining
from .acceleration import MIXED_PRECISION_CHOICES, autocast, compile_model, resolve_mixed_precision
from .argument_checks import require_at_least, require_positive
from .logging_utils import write_loss_curve
from .run_folder import (
    CHECKPOINT_COMPLETE_FILE,
    build_manifest,
    complete_checkpoint,
    dataset_fingerprint,
    file_sha256,
    latest_complete_checkpoint,
    partial_checkpoint_path,
    prepare_run_folder,
    RunFolderError,
    verify_checkpoint,
)

logger = logging.getLogger(__name__)

STATE_FILE = "trainer_state.json"


@dataclass
class PretrainArguments:
    """Arguments of the Accelerate pretraining loop; fields shared with ``TrainingArguments`` have its names.

    Not a ``TrainingArguments``: this loop is not Trainer, and most of Trainer's options (schedules, evaluation and
    save strategies, fp16/bf16 flags, integrations) would be accepted here and silently do nothing.
    """

    output_dir: str = field(default="runs/pretrain", metadata={"help": "run folder; the model goes to OUTPUT_DIR/model"})
    num_train_epochs: int = field(default=25, metadata={"help": "passes of --samples_per_epoch windows"})
    samples_per_epoch: int | None = field(default=None, metadata={"help": "windows drawn per epoch (default: every window once)"})
    per_device_train_batch_size: int = field(default=256, metadata={"help": "windows per step and process"})
    learning_rate: float = field(default=1e-4, metadata={"help": "AdamW learning rate, constant"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    max_grad_norm: float = field(default=5.0, metadata={"help": "gradient clipping (paper: 5.0)"})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "micro-batches per optimizer step"})
    mixed_precision: str = field(
        default="auto",
        metadata={"choices": MIXED_PRECISION_CHOICES, "help": "autocast dtype; auto = bf16 where the CPU/GPU has native bf16 arithmetic, else float32"},
    )
    torch_compile: bool = field(default=False, metadata={"help": "torch.compile the model (opt-in: measured slower than eager for stefaland-tiny on CPU)"})
    seq_len: int = field(default=365, metadata={"help": "days per window"})
    stride: int = field(default=1, metadata={"help": "days between window starts"})
    seed: int = field(default=111, metadata={"help": "draws the data order, the masks and the initial weights (and the examples' split)"})
    save_steps: int = field(default=0, metadata={"help": "checkpoint interval in optimizer steps (0: at the end of each epoch only)"})
    max_steps: int | None = field(
        default=None, metadata={"help": "train this many optimizer steps, as many epochs as that takes (as in Trainer; default: num_train_epochs)"}
    )
    resume: bool = field(default=False, metadata={"help": "continue the run in --output_dir from its newest complete checkpoint"})
    overwrite: bool = field(default=False, metadata={"help": "replace the run in --output_dir"})
    use_cpu: bool = field(default=False, metadata={"help": "train on the CPU even where a GPU is available"})
    dataloader_num_workers: int = field(default=0, metadata={"help": "data-loading worker processes"})
    init_from: str | None = field(
        default=None,
        metadata={"help": "folder of a pretrained model of this run's exact configuration and statistics whose weights start the run "
                          "(continues a pretraining whose run folder, with its optimizer state, is gone)"},
    )

    def __post_init__(self):
        require_at_least(self, 1, "num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps", "seq_len", "stride")
        require_at_least(self, 1, "samples_per_epoch", "max_steps", optional=True)
        require_at_least(self, 0, "save_steps", "weight_decay", "dataloader_num_workers")
        require_positive(self, "learning_rate", "max_grad_norm")


# may change when a run is resumed: how long it trains and how often it saves, not what it computes
RESUMABLE_FIELDS = ("num_train_epochs", "max_steps", "save_steps", "resume", "overwrite", "dataloader_num_workers", "output_dir")


class EpochSampler(torch.utils.data.Sampler):
    """A permutation that depends only on (seed, epoch): resumable without saving sampler state."""

    def __init__(self, num_items: int, num_samples: int | None, seed: int):
        self.num_items, self.seed, self.epoch = num_items, seed, 0
        self.num_samples = num_items if num_samples is None else min(num_samples, num_items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        return iter(rng.permutation(self.num_items)[: self.num_samples].tolist())

    def __len__(self) -> int:
        return self.num_samples


def config_for_dataset(config: StefaLandConfig, dataset) -> StefaLandConfig:
    """``config`` with the dataset's variable lists; masking groups keep only variables that exist.

    Use it to pretrain a model-zoo architecture on a dataset with other variables (e.g. CAMELS).
    """
    return config_with_variables(config, dataset[0]["dynamic_variables"], dataset[0]["static_variables"])


def config_with_variables(config: StefaLandConfig, dynamic, static) -> StefaLandConfig:
    """``config`` with these variable lists (e.g. a corpus's union); masking groups keep only listed variables."""
    dynamic, static = list(dynamic), list(static)

    def keep(groups: dict[str, list[str]], names: list[str]) -> dict[str, list[str]]:
        kept = {group: [n for n in members if n in names] for group, members in groups.items()}
        return {group: members for group, members in kept.items() if members}

    return config.replace(
        dynamic_variables=dynamic,
        static_variables=static,
        dynamic_groups=keep(config.dynamic_groups, dynamic),
        static_groups=keep(config.static_groups, static),
        never_mask_variables=[n for n in config.never_mask_variables if n in dynamic + static],
        **dict.fromkeys(INPUT_FIELDS),
    )


def _model_batch(batch: dict) -> dict:
    return collate_windows(batch, drop_keys=("labels", "site_index", "start"))


def _global_loss_denominators(accelerator: Accelerator, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked observed (dynamic, static) entries summed over processes: the 1-process loss denominators."""
    local = torch.stack(
        [
            (batch["dynamic_mask"] & torch.isfinite(batch["x_dynamic"])).sum(),
            (batch["static_mask"] & torch.isfinite(batch["x_static"])).sum(),
        ]
    )
    return tuple(accelerator.reduce(local, "sum"))


PRETRAINING_SITES_FILE = "pretraining_sites.json"  # beside the weights: the sites they have seen (not zero-shot)


def pretraining_sites(corpus: PretrainingCorpus) -> dict:
    """Per source: its dataset, the ids of the sites pretraining read and its period; ``stefaland reconstruct`` refuses
    to score those sites as zero-shot."""
    return {
        source.name: {
            "builder": getattr(getattr(source.dataset, "info", None), "builder_name", None),
            "site_ids": [str(source.arrays.site_ids[i]) for i in source.sites],
            "period": source.period,
        }
        for source in corpus.sources
    }


def pretrain(
    config: StefaLandConfig,
    dataset,
    train_sites,
    train_period,
    args: PretrainArguments,
) -> StefaLandForPretraining:
    """Fit normalization on the training split, pretrain, and save the model (``output_dir/model``).

    ``dataset`` is a site dataset (see ``stefaland_hf.data.schema``); only ``train_sites`` x
    ``train_period`` is ever read, so no held-out site or period leaks into pretraining.
    """
    name = dataset.info.builder_name or "site dataset"
    return pretrain_corpus(config, PretrainingCorpus([CorpusSource(name, dataset, train_sites, train_period)]), args)


def pretrain_corpus(config: StefaLandConfig, corpus: PretrainingCorpus, args: PretrainArguments) -> StefaLandForPretraining:
    """Pretrain on several site datasets at once (see :mod:`stefaland_hf.data.corpus`); saves ``output_dir/model``.

    The model's variable lists are its config's; what a source lacks is NaN (masked) in its windows.
    Normalization is pooled over all sources' training sites and periods.
    """
    corpus.check(config.dynamic_variables, config.static_variables)
    output_dir = Path(args.output_dir)
    accelerator = Accelerator(
        mixed_precision="no",  # bf16 autocast is applied in the loop (training/acceleration.py says why)
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        cpu=args.use_cpu,
    )
    data = {
        s.name: {**dataset_fingerprint(s.dataset), "train_sites": s.sites.tolist(), "train_period": s.period}
        for s in corpus.sources
    }
    manifest = build_manifest(
        "pretraining",
        asdict(args),
        data=next(iter(data.values())) if len(data) == 1 else data,
        architecture=config.to_dict(),
        base_model=None if args.init_from is None else {"init_from": args.init_from, "sha256": file_sha256(Path(args.init_from) / "model.safetensors")},
        num_processes=accelerator.num_processes,
    )
    decision = prepare_run_folder(output_dir, manifest, args.resume, args.overwrite, RESUMABLE_FIELDS, state=accelerator)
    set_seed(args.seed)
    mixed_precision = resolve_mixed_precision(args.mixed_precision, accelerator.device.type, log=accelerator.print)

    normalization = corpus.fit_normalization(config.dynamic_variables, config.static_variables)
    config = config.replace(**normalization.input_statistics())
    model = StefaLandForPretraining(config)
    if args.init_from:
        warm_start(model, args.init_from)

    windows = corpus.windows(args.seq_len, args.stride, config.dynamic_variables, config.static_variables)
    sampler = EpochSampler(len(windows), args.samples_per_epoch, args.seed)
    loader = torch.utils.data.DataLoader(
        windows,
        batch_size=args.per_device_train_batch_size,
        sampler=sampler,
        collate_fn=_model_batch,
        num_workers=args.dataloader_num_workers,
        generator=torch.Generator().manual_seed(args.seed),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    if args.torch_compile:
        model = compile_model(model, accelerator.device.type)
    masking = CrossVariableGroupMasking(config)
    shard = (accelerator.process_index, accelerator.num_processes)

    state = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "history": []}
    if decision == "resume":
        checkpoint = latest_complete_checkpoint(output_dir / "checkpoints", log=accelerator.print)
        if checkpoint is None:
            raise RunFolderError(f"--resume: no complete checkpoint under {output_dir / 'checkpoints'}")
        # accelerate skips a missing RNG state with an INFO log; the resumed run would then silently diverge
        rng_state = checkpoint / f"{RNG_STATE_NAME}_{accelerator.process_index}.pkl"
        if not rng_state.is_file():
            raise RunFolderError(f"--resume: {rng_state} is missing (was the run saved with another number of processes?)")
        accelerator.load_state(str(checkpoint))
        state = json.loads((checkpoint / STATE_FILE).read_text())
        accelerator.print(f"resumed from {checkpoint} (epoch {state['epoch']}, step {state['global_step']})")

    steps_per_epoch = math.ceil(len(loader) / args.gradient_accumulation_steps)
    num_epochs = args.num_train_epochs if args.max_steps is None else math.ceil(args.max_steps / steps_per_epoch)
    total_steps = steps_per_epoch * num_epochs if args.max_steps is None else args.max_steps
    finished = decision == "resume" and state["global_step"] >= total_steps
    if finished and (output_dir / "model" / "model.safetensors").is_file():
        # A finished run: training on would go past its length, append to its loss curve and rewrite model/.
        accelerator.print(
            f"--resume: the run in {output_dir} already trained {state['global_step']} optimizer steps, and these "
            f"arguments ask for {total_steps}; nothing to do (its model is {output_dir / 'model'}; a larger "
            "--max-steps or --num-train-epochs continues it)"
        )
        return accelerator.unwrap_model(model, keep_torch_compile=False)
    progress = tqdm(
        total=total_steps, initial=state["global_step"], desc="pretraining", disable=not accelerator.is_local_main_process
    )
    saved_step = state["global_step"] if decision == "resume" else None

    def save_checkpoint() -> None:
        """Write into a hidden folder, rename it when complete: a kill mid-write leaves no ``step_N``."""
        final = output_dir / "checkpoints" / f"step_{state['global_step']}"
        partial = partial_checkpoint_path(final)
        if accelerator.is_main_process and partial.exists():
            shutil.rmtree(partial)  # left by a run killed while saving
        accelerator.wait_for_everyone()
        accelerator.save_state(str(partial))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            # what every checkpoint's weights belong to (export_checkpoint); written with the first checkpoint, so
            # that a run failing before it leaves only its manifest (a folder reused without flags)
            config.to_json_file(output_dir / "checkpoints" / "config.json")
            (partial / STATE_FILE).write_text(json.dumps(state))
            complete_checkpoint(partial, final)
            write_loss_curve(state["history"], output_dir / "loss_curve")
        accelerator.wait_for_everyone()
        nonlocal saved_step
        saved_step = state["global_step"]

    stop = False
    if finished:  # the run ended, but was stopped before it wrote model/: write it, train nothing
        accelerator.print(f"--resume: the run already trained {state['global_step']} steps; writing {output_dir / 'model'}")
    for epoch in range(state["epoch"], num_epochs) if not finished else ():
        loader.set_epoch(epoch)
        skip = state["step_in_epoch"] * args.gradient_accumulation_steps if epoch == state["epoch"] else 0
        epoch_loader = accelerator.skip_first_batches(loader, skip) if skip else loader
        model.train()
        running = []
        for micro_batch, batch in enumerate(epoch_loader, start=skip):
            batch = masking(batch, rng=np.random.default_rng([args.seed, epoch, micro_batch]), shard=shard)
            with accelerator.accumulate(model):
                with autocast(accelerator.device.type, mixed_precision):
                    output = model(**batch, loss_denominators=_global_loss_denominators(accelerator, batch))
                # Each process's loss is its share of the global loss; DDP averages gradients, so scale by N.
                accelerator.backward(output.loss * accelerator.num_processes)
                if accelerator.sync_gradients:
                    grad_norm = accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)  # before clipping
                optimizer.step()
                optimizer.zero_grad()
            losses = torch.stack([output.loss, output.dynamic_loss, output.static_loss]).detach().float()
            running.append(accelerator.reduce(losses, "sum").tolist())  # the global batch's losses
            if not accelerator.sync_gradients:
                continue
            loss, dynamic_loss, static_loss = np.mean(running, axis=0)
            running = []
            state["global_step"] += 1
            state["step_in_epoch"] += 1
            state["history"].append(
                {"step": state["global_step"], "epoch": epoch, "loss": float(loss), "dynamic_loss": float(dynamic_loss), "static_loss": float(static_loss),
                 "grad_norm": float(grad_norm)}
            )
            progress.update(1)
            progress.set_postfix(loss=f"{loss:.4f}", epoch=epoch)
            if args.save_steps and state["global_step"] % args.save_steps == 0:
                save_checkpoint()
            if args.max_steps is not None and state["global_step"] >= args.max_steps:
                stop = True
                break
        if stop:
            break
        state["epoch"], state["step_in_epoch"] = epoch + 1, 0
        save_checkpoint()
    if saved_step != state["global_step"]:
        save_checkpoint()  # the end is a checkpoint too, so that a resume after it finds the run finished
    progress.close()

    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model, keep_torch_compile=False)
    if accelerator.is_main_process:
        from ..hub.cards import render_model_card

        unwrapped.save_pretrained(output_dir / "model")
        (output_dir / "model" / "normalization.json").write_text(json.dumps(normalization.to_dict(), indent=1))
        (output_dir / "model" / PRETRAINING_SITES_FILE).write_text(json.dumps(pretraining_sites(corpus), indent=1, default=str))
        training = card_facts(corpus, args, f"{state['global_step']} optimizer steps")
        render_model_card(output_dir / "model", training=training).save(output_dir / "model" / "README.md")
        write_loss_curve(state["history"], output_dir / "loss_curve")
    return unwrapped


def export_checkpoint(checkpoint: str | Path, out: str | Path) -> Path:
    """A complete pretraining checkpoint (``OUTPUT_DIR/checkpoints/step_N``) as a model folder that ``from_pretrained``
    loads: the run's configuration with its normalization statistics (``checkpoints/config.json``) and the step's weights.
    """
    from safetensors.torch import load_file

    checkpoint, out = Path(checkpoint), Path(out)
    if not (checkpoint / CHECKPOINT_COMPLETE_FILE).is_file():
        raise RunFolderError(f"{checkpoint}: not a complete checkpoint (no {CHECKPOINT_COMPLETE_FILE}; the run stopped while writing it, or it is no checkpoint)")
    verify_checkpoint(checkpoint)
    if not (checkpoint.parent / "config.json").is_file():
        raise RunFolderError(f"{checkpoint.parent / 'config.json'}: missing; the pretraining that wrote {checkpoint} did not record its configuration")
    model = StefaLandForPretraining(StefaLandConfig.from_pretrained(checkpoint.parent))
    weights = checkpoint / "model.safetensors"
    try:
        model.load_state_dict(load_file(weights), strict=True)
    except (RuntimeError, OSError) as error:
        raise RunFolderError(f"{weights}: does not fit the run's configuration {checkpoint.parent / 'config.json'}: {error}") from None
    model.save_pretrained(out)
    return out


def card_facts(corpus: PretrainingCorpus, args: PretrainArguments, compute: str) -> dict:
    """What a pretrained model's card states of its training (data, period, sites, objective, settings, compute)."""
    described = corpus.describe()
    return {
        "data": " + ".join(described),
        "period": "; ".join(f"{name} {d['period'][0]} to {d['period'][1]}" for name, d in described.items()),
        "sites": " + ".join(f"{d['n_sites']} {name} training site{'' if d['n_sites'] == 1 else 's'}" for name, d in described.items())
        + " (forcings and attributes only)",
        "objective": "cross-variable group masking; masked MSE on z-scores, 1.0 dynamic + 0.5 static",
        "hyperparameters": {k: getattr(args, k) for k in ("num_train_epochs", "samples_per_epoch", "per_device_train_batch_size", "learning_rate", "seq_len", "seed")},
        "compute": compute,
    }


# config.json fields that describe the file, not the model
_FILE_FIELDS = frozenset({"architectures", "transformers_version", "dtype", "auto_map", "_name_or_path"})


def warm_start(model: StefaLandForPretraining, source: str | Path) -> StefaLandForPretraining:
    """Load the weights of pretrained folder ``source`` into ``model``, refused unless ``source`` has exactly the model's
    configuration (variables, normalization statistics, architecture): a continuation, never a silent transfer. The
    weights load through ``from_pretrained``, so their binding is checked and an unreadable file is named."""
    source = Path(source)
    if not (source / "model.safetensors").is_file():
        raise FileNotFoundError(f"--init_from {source}: no model.safetensors there (a pretrained model folder is expected)")
    ours, theirs = model.config.to_dict(), StefaLandConfig.from_pretrained(source).to_dict()
    differ = sorted(k for k in set(ours) | set(theirs) if k not in _FILE_FIELDS and ours.get(k) != theirs.get(k))
    if differ:
        raise ValueError(f"--init_from {source}: its config.json differs from this run's configuration in {differ} "
                         "(a warm start continues the same model on the same corpus)")
    try:
        model.load_state_dict(StefaLandForPretraining.from_pretrained(source).state_dict(), strict=True)
    except RuntimeError as error:
        raise ValueError(f"--init_from {source / 'model.safetensors'}: does not fit the configuration: {error}") from None
    return model
