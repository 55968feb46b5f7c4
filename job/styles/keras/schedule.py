"""The Keras side of the learning-rate schedule (job.train.schedule): Keras' own callbacks,
ReduceLROnPlateau able to continue from a checkpoint's state, and a per-step schedule the
optimizer reads at every step."""

from __future__ import annotations

import dataclasses

import keras

from job.config import ScheduleConfig, TrainConfig
from job.train import schedule
from job.train.schedule import MIN_DELTA, MONITOR, rate_at


class StepRates(keras.optimizers.schedules.LearningRateSchedule):
    """The shared per-step table (job.train.schedule.run_rates) indexed by the optimizer's
    step count (restored from a checkpoint, so a resumed run continues its cycle)."""

    def __init__(self, train: dict, examples: int, batch: int):
        self.train, self.examples, self.batch = train, examples, batch
        config = TrainConfig(learning_rate=train["learning_rate"], epochs=train["epochs"],
                             lr_schedule=ScheduleConfig(**train["lr_schedule"]))
        self.rates = schedule.run_rates(config, examples, batch)

    def __call__(self, step):
        last = len(self.rates) - 1
        index = keras.ops.minimum(keras.ops.cast(step, "int32"), last)
        return keras.ops.take(keras.ops.convert_to_tensor(self.rates, "float32"), index)

    def get_config(self) -> dict:
        return {"train": self.train, "examples": self.examples, "batch": self.batch}


def learning_rate(train: TrainConfig, examples: int, batch: int) -> float | StepRates:
    """What Keras' Adam is given: the base rate, or a per-step schedule of the whole run."""
    if schedule.run_rates(train, examples, batch) is None:
        return train.learning_rate
    lr_schedule = {k: v for k, v in dataclasses.asdict(train.lr_schedule).items()
                   if k != "rates"}
    return StepRates({"learning_rate": train.learning_rate, "epochs": train.epochs,
                      "lr_schedule": lr_schedule}, examples, batch)


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
