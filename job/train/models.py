"""From a model's identity to what its worker trains: its task (settings, folders) and its
split. The parent plans with these and the worker builds with them, so both agree on
what, say, cnn-keras-bag3-full is without passing anything but its name.

A bag copy (`ensemble.bag_copies`, Deotte's recipe) starts from its own initial weights
and fits its own random split of the training rows, early-stopped on the rest; the outer
validation split judges it. A refit (`train.refit_full`) trains the same model again from
the same weights on every labelled row, for the epochs whose weights the split run kept,
at the learning rates those epochs ran at (a plateau schedule is replayed, not re-decided
without a val_loss), and ends at its last epoch: nothing is left to validate on.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from job.config import Config, TrainConfig
from job.data.arrays import split_validation
from job.styles import ModelId
from job.train.task import Split, Task, make_task

# Each bag copy draws its split from the data seed and its copy number, this far apart.
BAG_SEED_STRIDE = 7919


def task_for(model: ModelId, config: Config, folder: Path, base_row: dict | None = None,
             report: Callable[[dict], None] | None = None) -> Task:
    """The task of `model` in a run folder: TensorBoard and checkpoints under its name; a
    bag copy's own seed; a refit's epochs and rates from its split run's `base_row`."""
    train = config.train
    if model.copy:
        train = replace(train, seed=train.seed + model.copy)
    if model.refit:
        if base_row is None:
            raise ValueError(f"{model}: a refit needs its split run's results row")
        train = refit_train(train, base_row)
    return make_task(model, config.arch, train, config.data.seed,
                     logdir=folder / "tensorboard" / model.name,
                     checkpoint_dir=folder / "checkpoints" / model.name,
                     report=None if model.refit else report)


def split_for(model: ModelId, split: Split, config: Config) -> Split:
    """The rows `model` fits and early-stops on: its bag copy's own, or every labelled row
    for a refit, else the run's validation split."""
    if model.refit:
        return full_split(split)
    if model.copy:
        return bag_split(split, model.copy, config.ensemble.bag_holdout, config.data.seed)
    return split


def bag_split(split: Split, copy: int, holdout: float, seed: int) -> Split:
    """Copy `copy`'s own fit/early-stopping split of the training rows (stratified)."""
    fit_x, fit_y, stop_x, stop_y = split_validation(split.train_x, split.train_y, holdout,
                                                    seed + BAG_SEED_STRIDE * copy)
    return Split(fit_x, fit_y, stop_x, stop_y)


def full_split(split: Split) -> Split:
    """Every labelled row to fit on, training rows first; nothing left to validate on."""
    return Split(np.concatenate([split.train_x, split.val_x]),
                 np.concatenate([split.train_y, split.val_y]),
                 split.val_x[:0], split.val_y[:0])


def chosen_epochs(row: dict) -> int:
    """The epoch count the split run chose: the epoch whose weights it kept."""
    return int(row["best_epoch"] or row["epochs_run"])


def refit_train(train: TrainConfig, row: dict) -> TrainConfig:
    """`train` for a refit: the split run's chosen epochs at that run's learning rates,
    ending with its last epoch's weights. A one-cycle schedule is not replayed: the refit
    runs a whole cycle of its own over its own epochs and (more) steps, so it too warms up
    and ends annealed; replaying the split run's per-epoch rates would cut it short."""
    epochs = chosen_epochs(row)
    rates = tuple(float(h["learning_rate"]) for h in row["history"][:epochs])
    if len(rates) != epochs:
        raise ValueError(f"{row['name']}: history holds {len(rates)} epochs, not {epochs}")
    return replace(
        train, epochs=epochs,
        # Training loss is the only metric left; a patience of `epochs` never stops early
        # (Keras' rule stops once `patience` epochs in a row fail to improve).
        early_stopping=replace(train.early_stopping, monitor="loss", mode="min",
                               patience=epochs, min_delta=0.0, restore_best_weights=False),
        lr_schedule=train.lr_schedule if train.lr_schedule.kind == "one_cycle"
        else replace(train.lr_schedule, kind="constant", rates=rates))
