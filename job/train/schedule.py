"""The learning rate per epoch (or, for one_cycle, per step), one rule for every style.

`exponential`: lr × decay^epoch, set at each epoch's start (Keras: LearningRateScheduler).
`plateau`: lr × factor after `patience` epochs without val_loss improvement, as
keras.callbacks.ReduceLROnPlateau decides it at each epoch's end; the TF loop's
`Plateau` mirrors that callback line for line, and a test feeds both one sequence.
`one_cycle`: per step, not per epoch: `one_cycle_rate` below, which every style reads from
one float32 table (`step_rates`) indexed by its optimizer's step count, so all of them run
the same rates bit for bit and a resumed run continues the cycle from its saved count.
A replayed schedule (`rates`, set by a refit) wins over `kind`: epoch e runs at rates[e].
"""

from __future__ import annotations

import math

import numpy as np

from job.config import ScheduleConfig, TrainConfig
from job.data.plan import steps_per_epoch

MIN_DELTA = 1e-4   # ReduceLROnPlateau's default: smaller changes are not improvements
MONITOR = "val_loss"


def rate_at(config: ScheduleConfig, base: float, epoch: int) -> float | None:
    """The rate to set at the start of `epoch` (0-based), or None to leave it."""
    if config.rates:
        return config.rates[epoch]
    if config.kind == "exponential":
        return base * config.decay ** epoch
    return None


def one_cycle_rate(config: ScheduleConfig, base: float, step: int, total: int) -> float:
    """The rate of 0-based optimizer step `step` of `total`, as OneCycleLR (anneal_strategy
    cos, three_phase False) computes it: cosine from base x start_factor up to base by step
    warmup_fraction x total - 1, then cosine down to base x end_factor at step total - 1.
    Steps past the end keep the end rate (OneCycleLR would raise)."""
    start, peak, end = base * config.start_factor, base, base * config.end_factor
    warm_end = config.warmup_fraction * total - 1
    step = min(step, total - 1)
    if step <= warm_end:
        low, high, pct = start, peak, step / warm_end if warm_end > 0 else 1.0
    else:
        span = (total - 1) - warm_end
        low, high, pct = peak, end, (step - warm_end) / span if span > 0 else 1.0
    return high + (low - high) / 2 * (math.cos(math.pi * pct) + 1)


def step_rates(config: ScheduleConfig, base: float, total: int) -> np.ndarray | None:
    """One float32 rate per step of a run of `total` steps, or None when the schedule is
    not per step. A style indexes it with min(its step count, total - 1)."""
    if config.rates or config.kind != "one_cycle":
        return None
    return np.array([one_cycle_rate(config, base, s, total) for s in range(total)], np.float32)


def run_rates(train: TrainConfig, examples: int, batch: int) -> np.ndarray | None:
    """`step_rates` of a whole run: `examples` rows in global batches of `batch`, every
    epoch (a refit's own count of rows and epochs makes its own cycle)."""
    total = train.epochs * steps_per_epoch(examples, batch)
    return step_rates(train.lr_schedule, train.learning_rate, total)


def rate_after(rates: np.ndarray, steps_done: int) -> float:
    """The rate the next step takes after `steps_done` steps (the end rate once the run is
    over): what each style reports as an epoch's learning rate, as Keras' optimizer does."""
    return float(rates[min(steps_done, len(rates) - 1)])


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
