"""Training: Accelerate pretraining, Trainer finetuning, experiments."""
