"""What both training styles share besides the data: results, logging, checks, metrics."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from job.errors import TrainingError

# The metric names every style reports, in Keras' spelling, so logs, TensorBoard
# tags (epoch_<name>) and early stopping mean the same thing in both.
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


@dataclass
class Trained:
    """A trained model and how its training went, whatever the style."""

    name: str
    arch: str
    style: str
    params: int
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0          # 1-based; 0 until known
    train_seconds: float = 0.0
    predict_logits: Callable[[np.ndarray], np.ndarray] | None = None
    save: Callable[[Path], None] | None = None

    @property
    def epochs_run(self) -> int:
        return len(self.history)

    @property
    def seconds_per_epoch(self) -> float:
        """Median epoch time after the first, which also pays for tracing."""
        times = [h["seconds"] for h in self.history]
        return statistics.median(times[1:] if len(times) > 1 else times) if times else 0.0


def epoch_record(epoch: int, logs: dict, seconds: float, learning_rate: float) -> dict:
    """One history row: 1-based epoch, the shared metrics, time and learning rate."""
    record = {"epoch": epoch + 1}
    record.update({k: float(logs[k]) for k in METRICS if k in logs})
    record.update(seconds=seconds, learning_rate=float(learning_rate))
    return record


def check_finite(name: str, record: dict) -> None:
    """Fail loudly on a NaN/inf loss: every later epoch would be wasted time."""
    loss = record.get("loss")
    if loss is not None and not math.isfinite(loss):
        raise TrainingError(
            f"{name}: training loss became {loss} at epoch {record['epoch']}; "
            "lower train.learning_rate (or enable batch_norm) and rerun")


def should_log(epoch: int, log_every: int, epochs: int) -> bool:
    """Print every N-th epoch (1-based) and always the last planned one."""
    return (epoch + 1) % log_every == 0 or epoch + 1 == epochs


def format_epoch(name: str, record: dict, epochs: int) -> str:
    """The one progress line both styles print."""
    width = len(str(epochs))
    metrics = "  ".join(f"{k} {record[k]:.4f}" for k in METRICS if k in record)
    return (f"{name:<10} epoch {record['epoch']:>{width}}/{epochs}  {metrics}  "
            f"{record['seconds']:.1f}s")


def format_stop(name: str, stopped_epoch: int, best_epoch: int, monitor: str) -> str:
    """Said when early stopping ends a model's training."""
    return (f"{name:<10} early stop after epoch {stopped_epoch}: no {monitor} improvement; "
            f"best epoch {best_epoch}")


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean sparse categorical cross-entropy from logits, computed stably."""
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def score(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Validation loss and accuracy of final predictions, the same code for both styles."""
    return {"val_loss": cross_entropy(logits, labels),
            "val_accuracy": float((logits.argmax(axis=1) == labels).mean())}


def hparams_of(trained: Trained, spec: Any, train: Any) -> dict[str, Any]:
    """Flat hyperparameters for TensorBoard's HParams dashboard."""
    values = {"model": trained.name, "arch": trained.arch, "style": trained.style,
              "params": trained.params, "batch_size": train.batch_size,
              "learning_rate": train.learning_rate, "seed": train.seed}
    for key, value in vars(spec).items():
        values[f"{trained.arch}.{key}"] = (",".join(map(str, value))
                                           if isinstance(value, tuple) else value)
    return values


def write_hparams(logdir: Path, hparams: dict[str, Any]) -> None:
    """One HParams session per model, at the folder above its train/validation runs."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    writer = tf.summary.create_file_writer(str(logdir))
    with writer.as_default():
        hp.hparams(hparams, trial_id=str(hparams["model"]))
    writer.close()


@dataclass(frozen=True)
class Split:
    """The validation split both styles train and evaluate on (uint8 images)."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray


@dataclass(frozen=True)
class Task:
    """One model to train: everything the loop needs besides the data."""

    name: str          # e.g. "cnn-keras"
    arch: str          # "ffn" | "cnn" | "lstm"
    style: str         # "tf" | "keras"
    spec: Any          # FFNSpec | CNNSpec
    train: Any         # TrainConfig
    order_seed: int    # data.seed: fixes the per-epoch shuffling
    logdir: Path       # runs/<run>/tensorboard/<name>
    checkpoint_dir: Path | None = None   # epoch-end checkpoints; resumed from when present


STOPPING_FIELDS = ("wait", "best", "best_epoch", "stopped_epoch")


def stopping_state(stopper: Any) -> dict:
    """Early stopping's progress; keras' callback and the TF tracker share field names."""
    return {name: getattr(stopper, name) for name in STOPPING_FIELDS}


def restore_stopping(stopper: Any, state: dict, best_weights: list | None) -> None:
    """Continue early stopping where a checkpoint left it."""
    for name in STOPPING_FIELDS:
        setattr(stopper, name, state[name])
    stopper.best_weights = best_weights


def checkpoint_state(trained: Trained, stopper: Any, seconds: float,
                     plateau: Any = None) -> dict:
    """The small part of a checkpoint: history, early stopping, the plateau schedule's
    progress, time spent so far."""
    from job.train.schedule import state_of
    return {"history": trained.history, "early_stopping": stopping_state(stopper),
            "plateau": state_of(plateau) if plateau is not None else None,
            "train_seconds": seconds}
