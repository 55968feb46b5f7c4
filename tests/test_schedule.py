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


def torch_one_cycle(base: float, total: int, config: ScheduleConfig) -> list[float]:
    """The rate of each step from torch's own OneCycleLR (cos, two phases): the reference."""
    import torch
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=base)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=base, total_steps=total, pct_start=config.warmup_fraction,
        anneal_strategy="cos", three_phase=False, cycle_momentum=False,
        div_factor=1 / config.start_factor,
        final_div_factor=config.start_factor / config.end_factor)   # of the start rate
    rates = []
    for step in range(total):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if step < total - 1:
            scheduler.step()
    return rates


@pytest.mark.parametrize("config, total", [
    (ScheduleConfig(kind="one_cycle"), 300),
    (ScheduleConfig(kind="one_cycle", warmup_fraction=0.3, start_factor=0.1, end_factor=1e-3), 257),
    (ScheduleConfig(kind="one_cycle", warmup_fraction=0.9), 401),
])
def test_one_cycle_matches_torch_one_cycle_lr(config, total):
    expected = torch_one_cycle(0.01, total, config)
    rates = [schedule.one_cycle_rate(config, 0.01, s, total) for s in range(total)]
    np.testing.assert_allclose(rates, expected, rtol=1e-12)
    np.testing.assert_allclose(schedule.step_rates(config, 0.01, total), expected, rtol=1e-6)
    peak = int(np.argmax(rates))
    assert rates[peak] == pytest.approx(0.01, rel=1e-4) and rates[0] < rates[peak] > rates[-1]


def test_one_cycle_defaults_are_one_cycle_lrs_factors():
    config = ScheduleConfig(kind="one_cycle")
    assert schedule.one_cycle_rate(config, 1.0, 0, 100) == pytest.approx(1 / 25)
    assert schedule.one_cycle_rate(config, 1.0, 99, 100) == pytest.approx(1 / 25 / 1e4)
    assert schedule.one_cycle_rate(config, 1.0, 500, 100) == pytest.approx(1 / 25 / 1e4)
    assert schedule.one_cycle_rate(config, 1.0, 0, 1) == pytest.approx(1 / 25 / 1e4)  # no error
    assert schedule.step_rates(ScheduleConfig(kind="plateau"), 1.0, 10) is None
    assert schedule.rate_at(config, 0.01, 3) is None      # nothing set per epoch


def test_keras_schedule_reads_the_shared_table():
    from job.styles.keras.schedule import learning_rate
    train = TrainConfig(epochs=3, batch_size=64, learning_rate=0.01,
                        lr_schedule=ScheduleConfig(kind="one_cycle"))
    rates = learning_rate(train, 384, 64)   # 6 steps an epoch, 18 in all
    expected = [schedule.one_cycle_rate(train.lr_schedule, 0.01, s, 18) for s in range(18)]
    got = [float(keras.ops.convert_to_numpy(rates(s))) for s in range(20)]
    np.testing.assert_allclose(got, expected + [expected[-1]] * 2, rtol=1e-6)
    assert learning_rate(TrainConfig(), 384, 64) == TrainConfig().learning_rate


def one_cycle_task(style: str, folder, **train) -> Task:
    settings = dict(epochs=3, batch_size=64, learning_rate=0.01, steps_per_execution=3,
                    lr_schedule=ScheduleConfig(kind="one_cycle"),
                    early_stopping=EarlyStoppingConfig(patience=10))
    settings.update(train)
    return Task(ModelId("ffn", style), FFNSpec(hidden=(16,), dropout=0.0),
                TrainConfig(**settings), 3, folder / style)


@pytest.mark.parametrize("style", ["tf", "keras", "torch"])
def test_one_cycle_rate_at_each_epochs_end_in_every_style(tmp_path, split, style):
    """The logged rate is the next step's (as Keras' optimizer reads a schedule), from the
    step count: 6 steps an epoch (3 per compiled call in the TF styles), 18 in all."""
    from job.styles.torch import loop as torch_loop
    fit = {**FIT, "torch": torch_loop.fit}[style]
    task = one_cycle_task(style, tmp_path)
    history = fit(task, split, lambda l: None).history
    config = task.train.lr_schedule
    expected = [schedule.one_cycle_rate(config, 0.01, min(s, 17), 18) for s in (6, 12, 18)]
    np.testing.assert_allclose([h["learning_rate"] for h in history], expected, rtol=1e-6)


def test_torch_sets_the_one_cycle_rate_before_every_step(tmp_path, split, monkeypatch):
    """Read the rate each optimizer step runs at: step s at one_cycle_rate(s)."""
    from job.styles.torch import loop as torch_loop
    from job.styles.torch.optim import Adam
    seen, step = [], Adam.step

    def recording(self):
        seen.append(self.learning_rate)
        step(self)
    monkeypatch.setattr(Adam, "step", recording)
    task = one_cycle_task("torch", tmp_path)
    torch_loop.fit(task, split, lambda l: None)
    expected = schedule.step_rates(task.train.lr_schedule, 0.01, 18)
    np.testing.assert_array_equal(np.float32(seen), expected)
