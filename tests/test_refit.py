"""A final fit on every labelled row: exactly train + validation rows, for the epochs the
split run chose, at its learning rates, in every style; resumable like any training."""

import dataclasses
import json
import signal

import numpy as np
import pytest

from job.config import Config, EarlyStoppingConfig, FFNSpec, ScheduleConfig, TrainConfig
from job.system import interrupt
from job.train import early_stopping, models
from job.styles.keras import loop as keras_fit
from job.styles.tf import loop as tf_loop
from job.styles.torch import loop as torch_loop
from job.train.task import Split, Task
from job.styles import ModelId

FIT = {"tf": tf_loop.fit, "keras": keras_fit.fit, "torch": torch_loop.fit}
# torch_loop.fit called directly (not through choose_device) lets torch say it found no CUDA.
pytestmark = pytest.mark.filterwarnings("ignore:CUDA initialization")


def split_of(images, labels, n_train, n_val):
    return Split(images[:n_train], labels[:n_train],
                 images[n_train:n_train + n_val], labels[n_train:n_train + n_val])


def task(tmp_path, style, **train) -> Task:
    settings = dict(epochs=6, batch_size=16, learning_rate=0.003,
                    lr_schedule=ScheduleConfig(kind="plateau", patience=0, factor=0.5),
                    early_stopping=EarlyStoppingConfig(patience=1))
    settings.update(train)
    return Task(model=ModelId("ffn", style),
                spec=FFNSpec(hidden=(16,), dropout=0.1), train=TrainConfig(**settings),
                order_seed=5, logdir=tmp_path / "tb" / f"ffn-{style}",
                checkpoint_dir=tmp_path / "ckpt" / f"ffn-{style}")


def refit_task(base: Task, split_row: dict) -> Task:
    """The refit the worker builds for `base`'s model (job.train.models.task_for), in a run
    whose config holds `base`'s settings."""
    config = Config()
    config = dataclasses.replace(
        config, train=base.train, arch=dataclasses.replace(config.arch, ffn=base.spec),
        data=dataclasses.replace(config.data, seed=base.order_seed))
    return models.task_for(base.model.refitted(), config, base.logdir.parent, split_row,
                           report=lambda record: None)


def row(name, best_epoch, rates):
    """A split run's results row, as metrics.json holds it."""
    return {"name": name, "best_epoch": best_epoch, "epochs_run": len(rates),
            "history": [{"epoch": i + 1, "learning_rate": r} for i, r in enumerate(rates)]}


def test_full_split_is_every_labelled_row_once_and_validates_nothing(digits):
    images, labels = digits
    split = split_of(images, labels, 70, 30)
    full = models.full_split(split)
    assert len(full.train_x) == 100 and not full.validates and split.validates
    np.testing.assert_array_equal(full.train_x, images[:100])   # train rows, then validation
    np.testing.assert_array_equal(full.train_y, labels[:100])
    assert full.val_x.shape == (0, 784)


def test_refit_task_replays_the_chosen_epochs_at_their_rates(tmp_path):
    base = task(tmp_path, "tf")
    again = refit_task(base, row("ffn-tf", 3, [0.003, 0.0015, 0.0015, 0.00075, 0.0004]))
    assert again.name == "ffn-tf-full" and again.train.epochs == 3
    assert again.train.lr_schedule.rates == (0.003, 0.0015, 0.0015)
    assert again.logdir.name == again.checkpoint_dir.name == "ffn-tf-full"
    assert again.train.seed == base.train.seed            # the same initial weights
    assert again.spec == base.spec and again.report is None
    # Early stopping keeps the last weights and never ends it sooner, however the loss goes.
    stopper = early_stopping.EarlyStopping(again.train.early_stopping)
    assert not any(stopper.update(e, {"loss": 1.0 + e}, lambda: None) for e in range(3))
    assert not again.train.early_stopping.restore_best_weights


def test_refit_epochs_follow_the_kept_epoch_not_the_last_run():
    assert models.chosen_epochs(row("m", 4, [1e-3] * 7)) == 4
    assert models.chosen_epochs({**row("m", None, [1e-3] * 7)}) == 7


@pytest.mark.parametrize("style", list(FIT))
def test_refit_trains_on_train_plus_validation_rows_for_the_chosen_epochs(
        tmp_path, digits, style):
    images, labels = digits
    split = split_of(images, labels, 40, 10)
    # Batches of one: the optimizer's step count is then the number of rows fit on.
    again = refit_task(task(tmp_path, style, batch_size=1, steps_per_execution=1),
                             row(f"ffn-{style}", 2, [0.003, 0.001, 0.0005]))
    trained = FIT[style](again, models.full_split(split), lambda line: None)
    assert [h["epoch"] for h in trained.history] == [1, 2]
    assert all(set(h) == {"epoch", "loss", "accuracy", "seconds", "learning_rate"}
               for h in trained.history)                    # nothing left to validate on
    np.testing.assert_allclose([h["learning_rate"] for h in trained.history], [0.003, 0.001],
                               rtol=1e-6)
    state = json.loads((again.checkpoint_dir / "state.json").read_text())
    with np.load(again.checkpoint_dir / state["arrays"]) as saved:
        assert int(saved["optimizer/00000"]) == 2 * 50      # 2 epochs of 40 + 10 rows


@pytest.mark.parametrize("style", list(FIT))
def test_interrupted_refit_resumes_to_the_same_model(tmp_path, digits, style):
    images, labels = digits
    full = models.full_split(split_of(images, labels, 300, 100))
    chosen = row(f"ffn-{style}", 3, [0.003, 0.003, 0.0015])
    whole = FIT[style](refit_task(task(tmp_path / "a", style), chosen), full,
                       lambda line: None)
    again = refit_task(task(tmp_path / "b", style), chosen)

    def stop_after_first(line: str) -> None:
        if " epoch 1/3" in line:
            interrupt._requested.append(signal.SIGTERM)
    try:
        with pytest.raises(interrupt.Interrupted):
            FIT[style](again, full, stop_after_first)
    finally:
        interrupt._requested.clear()
    resumed = FIT[style](again, full, lambda line: None)
    np.testing.assert_allclose([h["loss"] for h in resumed.history],
                               [h["loss"] for h in whole.history], rtol=1e-5)
    np.testing.assert_allclose(resumed.predict_logits(images[:50]),
                               whole.predict_logits(images[:50]), rtol=1e-4, atol=1e-5)


def test_a_one_cycle_refit_runs_a_cycle_of_its_own_over_its_epochs(tmp_path, digits):
    """Not the split run's per-epoch rates: a whole cycle over the refit's own epochs and
    its own (more) steps, so it warms up and ends annealed as well."""
    from job.train import schedule
    one_cycle = ScheduleConfig(kind="one_cycle")
    base = task(tmp_path, "tf", lr_schedule=one_cycle, batch_size=50)
    again = refit_task(base, row("ffn-tf", 2, [0.003, 0.002, 0.001]))
    assert again.train.epochs == 2
    assert again.train.lr_schedule == one_cycle and not again.train.lr_schedule.rates
    images, labels = digits
    full = models.full_split(split_of(images, labels, 150, 50))   # 4 steps an epoch
    trained = FIT["tf"](again, full, lambda line: None)
    expected = [schedule.one_cycle_rate(one_cycle, 0.003, min(s, 7), 8) for s in (4, 8)]
    np.testing.assert_allclose([h["learning_rate"] for h in trained.history], expected,
                               rtol=1e-6)


def test_without_early_stopping_the_refit_trains_every_epoch(tmp_path, digits):
    """enabled: false keeps the last epoch, so the split run's row names it and the
    refit trains all `epochs` too, and never stops early itself."""
    images, labels = digits
    split = split_of(images, labels, 100, 50)
    off = EarlyStoppingConfig(enabled=False, monitor="loss", mode="max", patience=0)
    base = task(tmp_path, "torch", epochs=4, early_stopping=off)
    trained = FIT["torch"](base, split, lambda line: None)
    assert trained.epochs_run == 4 and trained.best_epoch == 4
    again = refit_task(base, row("ffn-torch", trained.best_epoch,
                                 [h["learning_rate"] for h in trained.history]))
    assert again.train.epochs == base.train.epochs == 4
    assert not again.train.early_stopping.enabled
    refit = FIT["torch"](again, models.full_split(split), lambda line: None)
    assert refit.epochs_run == 4
