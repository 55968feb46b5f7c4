"""The epoch loop the hand-written styles share (plain TF, plain torch): where training
starts, and what happens around each epoch. Keras' fit runs its own loop, whose callbacks
(`job.styles.keras.loop`) keep the same order: record and log, TensorBoard, report, early
stopping, the plateau schedule, the checkpoint.

A style hands in its `State` (the model, optimizer and dropout RNG behind `Loop`'s
methods) and a function that trains and validates one epoch; everything else is here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from job.train import checkpoint, progress, schedule
from job.train.early_stopping import EarlyStopping
from job.train.task import Task


class Loop(Protocol):
    """What the epoch loop asks of a style's training state."""

    def learning_rate(self) -> float: ...
    def set_learning_rate(self, rate: float) -> None: ...
    def weights(self) -> list: ...                          # what early stopping keeps
    def arrays(self) -> dict[str, list]: ...                # model, optimizer, rng
    def restore(self, resumed: checkpoint.Resumed) -> None: ...


@dataclass
class Start:
    """Where training begins: fresh trackers, or a checkpoint's progress put back."""

    stopper: EarlyStopping
    plateau: schedule.Plateau | None
    history: list[dict]
    first_epoch: int
    started: float                 # perf_counter origin, less the time already spent


def start(task: Task, state: Loop, log: Callable[[str], None]) -> Start:
    """Fresh trackers for `task`; from its last checkpoint, if any, the state's arrays,
    early stopping, the plateau schedule and the history are put back."""
    stopper = EarlyStopping(task.train.early_stopping)
    plateau = (schedule.Plateau(task.train.lr_schedule)
               if task.train.lr_schedule.kind == "plateau" else None)
    resumed = checkpoint.resume(task, log)
    if resumed is None:
        return Start(stopper, plateau, [], 0, time.perf_counter())
    state.restore(resumed)
    checkpoint.restore_stopping(stopper, resumed.stopping, resumed.arrays["best"])
    for name, value in (resumed.plateau or {}).items():
        setattr(plateau, name, value)
    return Start(stopper, plateau, list(resumed.history), resumed.epochs_done,
                 time.perf_counter() - resumed.seconds)


def run(task: Task, begun: Start, state: Loop,
        train_epoch: Callable[[int], tuple[Sequence, Sequence]],
        writers: dict, write: Callable[[dict, int, dict, float], None],
        log: Callable[[str], None]) -> None:
    """Epochs from where `begun` left off: set the scheduled rate, `train_epoch` (the
    training and the validation [summed loss, correct, examples] of one epoch, averaged
    here for every style alike), record and log, `write` TensorBoard
    (train and validation `writers`, closed at the end), report, early stopping, the
    plateau schedule, the checkpoint; stop when early stopping says so. A stop signal
    raised inside `train_epoch` abandons that epoch: the last checkpoint is the one before."""
    try:
        run_epochs(task, begun, state, train_epoch, lambda *a: write(writers, *a), log)
    finally:
        for writer in writers.values():
            writer.close()


def run_epochs(task: Task, begun: Start, state: Loop, train_epoch: Callable,
               write: Callable[[int, dict, float], None], log: Callable[[str], None]) -> None:
    """`run`'s loop."""
    config = task.train
    stopper, plateau, history = begun.stopper, begun.plateau, begun.history
    for epoch in range(begun.first_epoch, config.epochs):
        if stopper.stopped_epoch:
            break   # resumed after the epoch that stopped training
        started = time.perf_counter()
        rate = schedule.rate_at(config.lr_schedule, config.learning_rate, epoch)
        if rate is not None:
            state.set_learning_rate(rate)
        trained, validated = train_epoch(epoch)
        logs = progress.epoch_logs(trained, validated)
        learning_rate = state.learning_rate()
        record = progress.end_epoch(task, history, epoch, logs,
                                    time.perf_counter() - started, learning_rate, log)
        write(epoch, logs, learning_rate)
        if task.report:
            task.report(record)
        stop = stopper.update(epoch, logs, state.weights)
        if plateau is not None:
            state.set_learning_rate(plateau.update(logs, learning_rate))
        if task.checkpoint_dir:
            checkpoint.save(task.checkpoint_dir, len(history),
                            {**state.arrays(), "best": stopper.best_weights},
                            checkpoint.small_state(history, stopper,
                                                   time.perf_counter() - begun.started, plateau))
        if stop:
            break
