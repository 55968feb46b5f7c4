"""Both styles change the learning rate at the same epochs to the same values."""

import keras
import numpy as np
import pytest

from job.config import EarlyStoppingConfig, FFNSpec, ScheduleConfig, TrainConfig
from job.train import schedule
from job.styles.keras import loop as keras_fit
from job.styles.keras import schedule as keras_schedule
from job.styles.tf import loop as tf_loop
from job.train.task import Split, Task
from job.styles import ModelId

FIT = {"tf": tf_loop.fit, "keras": keras_fit.fit}
LOSSES = [1.0, 0.8, 0.79995, 0.81, 0.7, 0.70005, 0.72, 0.73, 0.74, 0.6, 0.65, 0.66, 0.67]


def keras_rates(config: ScheduleConfig, values: list[float], base: float) -> list[float]:
    """Learning rate after each epoch from keras' ReduceLROnPlateau."""
    [callback] = keras_schedule.keras_callbacks(config, base, None)
    assert isinstance(callback, keras.callbacks.ReduceLROnPlateau)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(base), loss="mse")
    callback.set_model(model)
    callback.on_train_begin()
    rates = []
    for epoch, value in enumerate(values):
        callback.on_epoch_end(epoch, {"val_loss": value})
        rates.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
    return rates


def tracker_rates(config: ScheduleConfig, values: list[float], base: float) -> list[float]:
    plateau, rate, rates = schedule.Plateau(config), base, []
    for value in values:
        rate = plateau.update({"val_loss": value}, rate)
        rates.append(rate)
    return rates


@pytest.mark.parametrize("config", [
    ScheduleConfig(kind="plateau", factor=0.5, patience=2, min_learning_rate=1e-4),
    ScheduleConfig(kind="plateau", factor=0.1, patience=1, min_learning_rate=0.0),
    ScheduleConfig(kind="plateau", factor=0.5, patience=0, min_learning_rate=2e-4),
])
def test_plateau_matches_reduce_lr_on_plateau(config):
    expected = keras_rates(config, LOSSES, 1e-3)
    np.testing.assert_allclose(tracker_rates(config, LOSSES, 1e-3), expected, rtol=1e-6)
    assert len(set(expected)) > 1   # the sequence does trigger reductions


def test_exponential_rate():
    config = ScheduleConfig(kind="exponential", decay=0.9)
    assert [round(schedule.rate_at(config, 0.01, e), 8) for e in range(3)] == [0.01, 0.009, 0.0081]
    assert schedule.rate_at(ScheduleConfig(), 0.01, 5) is None


@pytest.fixture(scope="module")
def split(digits):
    images, labels = digits
    return Split(images[:384], labels[:384], images[384:512], labels[384:512])


@pytest.mark.parametrize("config", [ScheduleConfig(kind="exponential", decay=0.5),
                                    ScheduleConfig(kind="plateau", factor=0.5, patience=0)])
def test_both_styles_log_the_same_rates(tmp_path, split, config):
    rates = {}
    for style in ("tf", "keras"):
        task = Task(ModelId("ffn", style), FFNSpec(hidden=(16,), dropout=0.0),
                    TrainConfig(epochs=4, batch_size=64, learning_rate=0.01, lr_schedule=config,
                                early_stopping=EarlyStoppingConfig(patience=10)),
                    3, tmp_path / style)
        rates[style] = [h["learning_rate"] for h in FIT[style](task, split, lambda l: None).history]
    np.testing.assert_allclose(rates["tf"], rates["keras"], rtol=1e-6)
    if config.kind == "exponential":
        np.testing.assert_allclose(rates["tf"], [0.01, 0.005, 0.0025, 0.00125], rtol=1e-6)
