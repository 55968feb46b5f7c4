"""The Keras side of the learning-rate schedule (job.train.schedule): Keras' own callbacks,
ReduceLROnPlateau able to continue from a checkpoint's state."""

from __future__ import annotations

import keras

from job.config import ScheduleConfig
from job.train.schedule import MIN_DELTA, MONITOR, rate_at


def keras_callbacks(config: ScheduleConfig, base: float, resume: dict | None) -> list:
    """The Keras callbacks of the schedule."""
    if config.rates or config.kind == "exponential":
        return [keras.callbacks.LearningRateScheduler(
            lambda epoch, lr: rate_at(config, base, epoch))]
    if config.kind != "plateau":
        return []

    class ResumableReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
        """The built-in callback, able to continue from a checkpoint's state."""

        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            for name, value in (resume or {}).items():
                setattr(self, name, value)

    return [ResumableReduceLROnPlateau(monitor=MONITOR, mode="min", factor=config.factor,
                                       patience=config.patience, min_lr=config.min_learning_rate,
                                       min_delta=MIN_DELTA)]
