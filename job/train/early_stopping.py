"""Early stopping for the TF loop, with the exact rule of keras.callbacks.EarlyStopping.

The Keras style uses the built-in callback; this tracker mirrors its code line for
line (including its quirks: waiting counts from the first epoch, no stop at epoch 0,
best weights captured before the first comparison), and a test feeds both the same
metric sequence to prove they stop and restore at the same epoch.
"""

from __future__ import annotations

from typing import Any, Callable

from job.config import EarlyStoppingConfig


class EarlyStopping:
    """Decides after each epoch whether to stop, and remembers the best weights."""

    def __init__(self, config: EarlyStoppingConfig):
        self.monitor = config.monitor
        self.mode = config.resolved_mode
        self.patience = config.patience
        self.min_delta = config.min_delta if self.mode == "max" else -config.min_delta
        # Disabled: every epoch runs and the last one's weights stay (and are the "best").
        self.enabled = config.enabled
        self.restore_best_weights = config.restore_best_weights and config.enabled
        self.wait = 0
        self.best: float | None = None
        self.best_epoch = 0
        self.best_weights: Any = None
        self.stopped_epoch = 0

    def is_improvement(self, value: float, reference: float | None) -> bool:
        """Keras' rule: beat the reference by more than min_delta."""
        if reference is None:
            return True
        if self.mode == "max":
            return value - self.min_delta > reference
        return value - self.min_delta < reference

    def update(self, epoch: int, logs: dict, get_weights: Callable[[], Any]) -> bool:
        """Record epoch `epoch` (0-based); True means stop training now."""
        if not self.enabled:
            self.best_epoch = epoch
            return False
        current = logs.get(self.monitor)
        if current is None:
            return False
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self.is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = get_weights()
            self.wait = 0
            return False
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            return True
        return False
