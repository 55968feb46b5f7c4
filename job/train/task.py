"""What goes into training and what comes out, whatever the style: Task + Split → Trained."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from job.config import TrainConfig
from job.styles import ModelId

Predictor = Callable[[np.ndarray], np.ndarray]   # uint8 (N, 784) images → (N, 10) logits


@dataclass(frozen=True)
class Split:
    """The validation split every style trains and evaluates on (uint8 images)."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray

    @property
    def validates(self) -> bool:
        """False for a final fit on every labelled row: no rows are left to judge it on,
        so the loops skip validation and log training metrics only."""
        return len(self.val_x) > 0


@dataclass(frozen=True)
class Task:
    """One model to train: everything the loop needs besides the data."""

    model: ModelId     # which model: family, style, bag copy, refit
    spec: Any          # FFNSpec | CNNSpec | LSTMSpec
    train: TrainConfig
    order_seed: int    # data.seed: fixes the per-epoch shuffling
    logdir: Path       # runs/<run>/tensorboard/<name>
    checkpoint_dir: Path | None = None   # epoch-end checkpoints; resumed from when present
    # Called with each epoch's record after it is checked, in every style (a sweep's
    # pruner listens here and may raise job.errors.Pruned).
    report: Callable[[dict], None] | None = None
    # Called after every training batch (or compiled call of several) with the 0-based
    # epoch, the batches done in it, the batches per epoch and a reader of the running loss
    # (job.train.progress.BatchHook): the worker's live progress.
    on_batch: Callable[[int, int, int, Callable[[], float]], None] | None = None

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def arch(self) -> str:
        return self.model.arch

    @property
    def style(self) -> str:
        return self.model.style


def make_task(model: ModelId | str, arch_specs: Any, train: TrainConfig, order_seed: int,
              logdir: Path, checkpoint_dir: Path | None = None,
              report: Callable[[dict], None] | None = None) -> Task:
    """The task for a model (cnn-keras, or a bag copy's or refit's identity), with its
    family's spec."""
    model = ModelId.of(model) if isinstance(model, str) else model
    return Task(model=model, spec=getattr(arch_specs, model.arch), train=train,
                order_seed=order_seed, logdir=logdir, checkpoint_dir=checkpoint_dir,
                report=report)


@dataclass(frozen=True)
class Trained:
    """A trained model and how its training went, whatever the style."""

    name: str
    arch: str
    style: str
    params: int
    history: list[dict]          # one epoch_record per epoch run
    best_epoch: int              # 1-based: the epoch whose weights were kept
    train_seconds: float
    predict_logits: Predictor
    save: Callable[[Path], None]  # writes the model into a folder; load_predictor reads it

    @property
    def epochs_run(self) -> int:
        return len(self.history)

    @property
    def seconds_per_epoch(self) -> float:
        """Median epoch time after the first, which also pays for tracing."""
        times = [h["seconds"] for h in self.history]
        return statistics.median(times[1:] if len(times) > 1 else times) if times else 0.0
