"""Both styles stop, and restore, at the same epoch for the same metric sequence."""

import keras
import numpy as np
import pytest

from job.config import EarlyStoppingConfig
from job.train.early_stopping import EarlyStopping
from job.styles.keras.loop import early_stopping as keras_early_stopping


class Marker:
    """Stands in for a model whose weights are the epoch they were taken at."""

    def __init__(self):
        self.epoch = -1
        self.stop_training = False
        self.restored = None
        self.metrics = []

    def get_weights(self):
        return [np.array(self.epoch)]

    def set_weights(self, weights):
        self.restored = int(weights[0])


def run_keras(config: EarlyStoppingConfig, values: list[float]) -> tuple[int, int, int | None]:
    """(epochs run, best epoch, restored epoch) from keras.callbacks.EarlyStopping."""
    callback = keras_early_stopping(config)
    # Disabled, Keras gets no EarlyStopping callback at all.
    assert isinstance(callback, keras.callbacks.EarlyStopping) == config.enabled
    model = Marker()
    callback.set_model(model)
    callback.on_train_begin()
    epochs = 0
    for epoch, value in enumerate(values):
        model.epoch = epoch
        epochs += 1
        callback.on_epoch_end(epoch, {config.monitor: value})
        if model.stop_training:
            break
    callback.on_train_end()
    return epochs, callback.best_epoch, model.restored


def run_tracker(config: EarlyStoppingConfig, values: list[float]) -> tuple[int, int, int | None]:
    """The same, from the TF loop's tracker, driven the way tf_loop drives it."""
    tracker = EarlyStopping(config)
    epochs = 0
    for epoch, value in enumerate(values):
        epochs += 1
        if tracker.update(epoch, {config.monitor: value}, lambda e=epoch: [np.array(e)]):
            break
    restored = (int(tracker.best_weights[0])
                if tracker.restore_best_weights and tracker.best_weights is not None else None)
    return epochs, tracker.best_epoch, restored


LOSSES = [1.0, 0.8, 0.7, 0.71, 0.69, 0.695, 0.70, 0.72, 0.75, 0.80, 0.9, 1.0]
ACCURACIES = [0.5, 0.7, 0.8, 0.8, 0.79, 0.81, 0.805, 0.80, 0.79, 0.78, 0.77, 0.76]

CASES = [
    (EarlyStoppingConfig(monitor="val_loss", patience=2), LOSSES, (7, 4, 4)),
    (EarlyStoppingConfig(monitor="val_loss", patience=0), LOSSES, (4, 2, 2)),
    (EarlyStoppingConfig(monitor="val_loss", patience=2, min_delta=0.05), LOSSES, (5, 2, 2)),
    (EarlyStoppingConfig(monitor="val_accuracy", patience=3), ACCURACIES, (9, 5, 5)),
    (EarlyStoppingConfig(monitor="val_accuracy", patience=1, restore_best_weights=False),
     ACCURACIES, (4, 2, None)),
    (EarlyStoppingConfig(monitor="val_loss", mode="max", patience=1), LOSSES, (2, 0, 0)),
    (EarlyStoppingConfig(monitor="val_loss", patience=20), LOSSES, (12, 4, 4)),
]


@pytest.mark.parametrize("config, values, expected", CASES)
def test_both_styles_stop_and_restore_at_the_same_epoch(config, values, expected):
    assert run_keras(config, values) == expected
    assert run_tracker(config, values) == expected


def test_never_stops_at_the_first_epoch():
    config = EarlyStoppingConfig(monitor="val_loss", patience=0)
    assert run_tracker(config, [1.0, 2.0, 3.0])[0] == 2
    assert run_keras(config, [1.0, 2.0, 3.0])[0] == 2


def test_nan_is_never_an_improvement():
    config = EarlyStoppingConfig(monitor="val_loss", patience=1)
    values = [1.0, float("nan"), float("nan"), 0.5]
    assert run_tracker(config, values) == run_keras(config, values) == (2, 0, 0)


@pytest.mark.parametrize("config", [
    EarlyStoppingConfig(enabled=False, monitor="val_loss", patience=0),
    EarlyStoppingConfig(enabled=False, monitor="val_loss", mode="max", patience=1)])
def test_disabled_runs_every_epoch_and_keeps_the_last_in_both_styles(config):
    """Rules that stop after 2 or 4 epochs above (patience 0, mode max), switched off: all
    12 epochs run, the last is the "best", and no weights are restored."""
    assert run_tracker(config, LOSSES) == (12, 11, None)
    assert run_keras(config, LOSSES) == (12, 11, None)
