"""A final fit on every labelled row (`train.refit_full`), Deotte's last step.

The validation split has done its job once early stopping has chosen a model's epoch
count: the refit trains the same model again from the same initial weights (the same
seed) on the training and the validation rows together, for exactly the epochs whose
weights the split run kept, at the learning rates those epochs ran at (so a plateau
schedule is replayed, not re-decided without a val_loss). Nothing is left to validate
on, so the loop validates nothing and stops only at its last epoch.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from job.train.task import Split, Task

SUFFIX = "-full"


def refit_name(model: str) -> str:
    """cnn-keras → cnn-keras-full: its own checkpoints, TensorBoard run and saved model."""
    return model + SUFFIX


def chosen_epochs(row: dict) -> int:
    """The epoch count the split run chose: the epoch whose weights it kept."""
    return int(row["best_epoch"] or row["epochs_run"])


def full_split(split: Split) -> Split:
    """Every labelled row to fit on, training rows first; nothing left to validate on."""
    return Split(np.concatenate([split.train_x, split.val_x]),
                 np.concatenate([split.train_y, split.val_y]),
                 split.val_x[:0], split.val_y[:0])


def refit_task(task: Task, row: dict) -> Task:
    """`task` again, for its split run's chosen epochs at that run's learning rates,
    ending with its last epoch's weights; no pruner listens (it judges split runs)."""
    epochs = chosen_epochs(row)
    rates = tuple(float(h["learning_rate"]) for h in row["history"][:epochs])
    if len(rates) != epochs:
        raise ValueError(f"{row['name']}: history holds {len(rates)} epochs, not {epochs}")
    train = replace(
        task.train, epochs=epochs,
        # Training loss is the only metric left; a patience of `epochs` never stops early
        # (Keras' rule stops once `patience` epochs in a row fail to improve).
        early_stopping=replace(task.train.early_stopping, monitor="loss", mode="min",
                               patience=epochs, min_delta=0.0, restore_best_weights=False),
        lr_schedule=replace(task.train.lr_schedule, kind="constant", rates=rates))
    name = refit_name(task.name)
    return replace(task, name=name, train=train, logdir=task.logdir.with_name(name),
                   checkpoint_dir=task.checkpoint_dir.with_name(name)
                   if task.checkpoint_dir else None, report=None)
