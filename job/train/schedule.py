"""The learning rate per epoch, one rule for every style.

`exponential`: lr × decay^epoch, set at each epoch's start (Keras: LearningRateScheduler).
`plateau`: lr × factor after `patience` epochs without val_loss improvement, as
keras.callbacks.ReduceLROnPlateau decides it at each epoch's end; the TF loop's
`Plateau` mirrors that callback line for line, and a test feeds both one sequence.
A replayed schedule (`rates`, set by a refit) wins over `kind`: epoch e runs at rates[e].
"""

from __future__ import annotations

import numpy as np

from job.config import ScheduleConfig

MIN_DELTA = 1e-4   # ReduceLROnPlateau's default: smaller changes are not improvements
MONITOR = "val_loss"


def rate_at(config: ScheduleConfig, base: float, epoch: int) -> float | None:
    """The rate to set at the start of `epoch` (0-based), or None to leave it."""
    if config.rates:
        return config.rates[epoch]
    if config.kind == "exponential":
        return base * config.decay ** epoch
    return None


class Plateau:
    """ReduceLROnPlateau's rule (mode min, cooldown 0) for the TF loop."""

    def __init__(self, config: ScheduleConfig):
        self.factor, self.patience = config.factor, config.patience
        self.min_lr = config.min_learning_rate
        self.best: float | None = None
        self.wait = 0
        self.cooldown_counter = 0

    def update(self, logs: dict, rate: float) -> float:
        """The rate for the next epoch after seeing this epoch's logs."""
        current = logs.get(MONITOR)
        if current is None:
            return rate
        if self.best is None or current - (-MIN_DELTA) < self.best:
            self.best = current
            self.wait = 0
            return rate
        self.wait += 1
        if self.wait >= self.patience and rate > np.float32(self.min_lr):
            self.wait = 0
            return max(rate * self.factor, self.min_lr)
        return rate


STATE_FIELDS = ("best", "wait", "cooldown_counter")


def state_of(tracker) -> dict:
    """What a checkpoint keeps of a plateau tracker (Keras callback or `Plateau`)."""
    return {name: getattr(tracker, name) for name in STATE_FIELDS}
