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


# A loop's per-batch hook (Task.on_batch): the 0-based epoch, the batches done in it, the
# batches per epoch, and how to read the epoch's running mean loss. Reading the loss waits
# for the device, so a hook reads it only when it reports.
BatchHook = Callable[[int, int, int, Callable[[], float]], None]


def counted(call: Callable, hook: BatchHook, of: int, first_epoch: int,
            count: Callable[..., int] = lambda *args: 1) -> Callable:
    """A loop's training call (one batch, or a compiled call of `count(*args)` batches)
    that tells `hook` how far its epoch is after every call. Epochs are told apart by
    counting, as each runs `of` batches; the [summed loss, correct, examples] each call
    returns are added up on the device, and read only by the hook, when it reports."""
    where = {"epoch": first_epoch, "done": 0, "sums": None}

    def call_and_tell(*args):
        sums = call(*args)
        where["done"] += count(*args)
        where["sums"] = sums if where["sums"] is None else where["sums"] + sums
        totals = where["sums"]
        hook(where["epoch"], where["done"], of, lambda: float(totals[0]) / float(totals[2]))
        if where["done"] >= of:
            where.update(epoch=where["epoch"] + 1, done=0, sums=None)
        return sums
    return call_and_tell


class BatchReports:
    """The worker's per-batch hook: at most one progress record every `every` seconds, plus
    each epoch's last batch, so a live display moves without the loop waiting on it."""

    def __init__(self, send: Callable[[dict], None], epochs: int, batch_size: int,
                 may_stop_early: bool, every: float = 0.5,
                 clock: Callable[[], float] = time.monotonic):
        self.send, self.epochs, self.batch_size = send, epochs, batch_size
        self.may_stop_early, self.every, self.clock = may_stop_early, every, clock
        self.epoch, self.mark, self.sent = None, (0.0, 0), -math.inf
        self.seconds_per_batch: float | None = None

    def __call__(self, epoch: int, done: int, of: int, loss: Callable[[], float]) -> None:
        now = self.clock()
        if epoch != self.epoch:   # timed from the epoch's first call: no validation, no setup
            self.epoch, self.mark = epoch, (now, done)
        elif done > self.mark[1]:
            self.seconds_per_batch = max(now - self.mark[0], 1e-9) / (done - self.mark[1])
        if done < of and now - self.sent < self.every:
            return
        self.sent = now
        rate = self.seconds_per_batch
        self.send({"epoch": epoch + 1, "epochs": self.epochs, "batch": done, "batches": of,
                   "loss": loss(), "seconds_per_batch": rate,
                   "images_per_second": self.batch_size / rate if rate else None,
                   "may_stop_early": self.may_stop_early})
