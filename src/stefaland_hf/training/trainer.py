"""``transformers.Trainer`` whose loss normalization counts observed labels (NaN marks a gap, not -100).

For models that accept ``num_items_in_batch``, Trainer counts the label entries of an optimizer step
(every gradient-accumulation micro-batch), sums that count over processes
(``average_tokens_across_devices``, on by default), passes it to the model as the loss denominator and
multiplies the loss by the number of processes before DDP averages the gradients: one data-parallel
step then equals one step on the whole global batch. Trainer counts ``labels != -100``, which would
count our NaN (unobserved) labels as items; :class:`ObservedLabelTrainer` counts finite labels instead.

Evaluation has the same problem the other way round: Trainer averages per-batch mean losses weighted by batch
size, so a batch with few observed labels (sparse soil moisture, the short last batch) weighs as much as a full
one. ``eval_loss``, which picks the best checkpoint and stops training early, is recomputed here as the loss summed
over every observed label of the evaluation set (squared error; a distributional head's negative log-likelihood or
pinball loss) divided by their count.
"""

from __future__ import annotations

import inspect

import torch
from transformers import Trainer
from transformers.trainer_utils import unwrap_peft_model


class ObservedLabelTrainer(Trainer):
    """``Trainer`` for the StefaLand task models: loss = squared error over observed labels / their global count.

    A run on N processes then takes the same steps as a 1-process run with the same global batch.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        model = unwrap_peft_model(self.accelerator.unwrap_model(self.model))
        if "num_items_in_batch" not in inspect.signature(model.forward).parameters:
            raise TypeError(
                f"model: {type(model).__name__}.forward takes no num_items_in_batch, the global count of observed "
                "labels that ObservedLabelTrainer normalizes the loss by"
            )
        self.model_accepts_loss_kwargs = True  # Trainer only infers this from a **kwargs forward

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device) -> torch.Tensor | int | None:
        """Trainer's count (``labels != -100``, summed over processes) of labels with NaN replaced by -100."""
        if batch_samples and "labels" in batch_samples[0]:
            batch_samples = [{"labels": torch.where(torch.isfinite(b["labels"]), 0, -100)} for b in batch_samples]
        return super()._get_num_items_in_batch(batch_samples, device)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Trainer's step, also adding the batch's loss sum and observed-label count to the evaluation's sums; only the
        ``prediction`` is gathered (a distributional head's parameters would multiply what evaluation keeps)."""
        ignore_keys = [*(ignore_keys or ()), "distribution_parameters", "quantiles"]
        loss, logits, labels = super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        if loss is not None and "labels" in inputs:
            observed = torch.isfinite(inputs["labels"]).sum()
            self._eval_sums += torch.stack([loss.detach().float() * observed, observed.float()]).to(self._eval_sums.device)
        return loss, logits, labels

    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"):
        """Trainer's loop with ``<prefix>_loss`` = squared error over all observed labels / their count (all processes)."""
        self._eval_sums = torch.zeros(2, device=self.args.device)
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        squared_error, observed = self.accelerator.reduce(self._eval_sums, "sum").tolist()
        if f"{metric_key_prefix}_loss" in output.metrics and observed > 0:
            output.metrics[f"{metric_key_prefix}_loss"] = squared_error / observed
        return output

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Trainer's save (by the main process), returning on every process only once the files exist.

        Callers then may write beside the saved model on any process; call it on every process.
        """
        super().save_model(output_dir, _internal_call)
        self.accelerator.wait_for_everyone()
