"""How training reports itself, the same in every style: epoch records, log lines,
the NaN check, the end of training, and TensorBoard's HParams."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

from job.errors import TrainingError
from job.train.task import Predictor, Task, Trained

# The metric names every style reports, in Keras' spelling, so logs, TensorBoard
# tags (epoch_<name>) and early stopping mean the same thing in all of them.
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


# An epoch's validation sums when there is no validation: no examples.
NOTHING = (0.0, 0.0, 0.0)


def epoch_logs(trained, validated) -> dict[str, float]:
    """The shared metrics of an epoch from its training and validation sums; no val_*
    entries when nothing was validated (a final fit on every labelled row)."""
    values = average(trained) + (average(validated) if float(validated[2]) else ())
    return dict(zip(METRICS, values))


def average(sums) -> tuple[float, float]:
    """Sample-weighted mean loss and accuracy from an epoch's [summed loss, correct count,
    examples], as Keras computes them: every style's loop sums, this divides."""
    loss, correct, count = (float(v) for v in sums)
    return loss / count, correct / count


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
    """The one progress line every style prints."""
    width = len(str(epochs))
    metrics = "  ".join(f"{k} {record[k]:.4f}" for k in METRICS if k in record)
    return (f"{name:<10} epoch {record['epoch']:>{width}}/{epochs}  {metrics}  "
            f"{record['seconds']:.1f}s")


def end_epoch(task: Task, history: list[dict], epoch: int, logs: dict, seconds: float,
              learning_rate: float, log: Callable[[str], None]) -> dict:
    """What every loop does with a finished epoch before TensorBoard sees it: record it,
    fail on a NaN loss, print it every `log_every` epochs."""
    record = epoch_record(epoch, logs, seconds, learning_rate)
    history.append(record)
    check_finite(task.name, record)
    if should_log(epoch, task.train.log_every, task.train.epochs):
        log(format_epoch(task.name, record, task.train.epochs))
    return record


def format_stop(name: str, stopped_epoch: int, best_epoch: int, monitor: str) -> str:
    """Said when early stopping ends a model's training."""
    return (f"{name:<10} early stop after epoch {stopped_epoch}: no {monitor} improvement; "
            f"best epoch {best_epoch}")


def finish(task: Task, params: int, history: list[dict], stopper: Any, started: float,
           predict_logits: Predictor, save: Callable[[Path], None],
           log: Callable[[str], None]) -> Trained:
    """The end every loop shares, once the best weights are back in the model: say why
    training stopped and return the whole result. `stopper` is either early-stopping
    tracker (Keras' callback or the TF one: the same fields)."""
    best_epoch = stopper.best_epoch + 1
    if stopper.stopped_epoch:
        log(format_stop(task.name, stopper.stopped_epoch + 1, best_epoch, stopper.monitor))
    return Trained(task.name, task.arch, task.style, params, history, best_epoch,
                   time.perf_counter() - started, predict_logits, save)


def hparams_of(trained: Trained, spec: Any, train: Any) -> dict[str, Any]:
    """Flat hyperparameters for TensorBoard's HParams dashboard."""
    values = {"model": trained.name, "arch": trained.arch, "style": trained.style,
              "params": trained.params, "batch_size": train.batch_size,
              "learning_rate": train.learning_rate, "seed": train.seed}
    for key, value in vars(spec).items():
        values[f"{trained.arch}.{key}"] = (",".join(map(str, value))
                                           if isinstance(value, tuple) else value)
    return values
