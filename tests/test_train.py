"""The three training styles: same input order, same logging, same numbers."""


import keras
import numpy as np
import pytest
import tensorflow as tf

from job.config import (CNNSpec, EarlyStoppingConfig, FFNSpec, LSTMSpec, ScheduleConfig,
                        TrainConfig)
from job.errors import TrainingError
from job.styles.tf import feeding
from job.styles.keras import loop as keras_fit
from job.styles.tf import loop as tf_loop
from job.styles.torch import loop as torch_loop
from job.train.task import Split, Task
from job.styles import ModelId

FIT = {"tf": tf_loop.fit, "keras": keras_fit.fit, "torch": torch_loop.fit}
STYLES = list(FIT)


@pytest.fixture(scope="module")
def split(digits):
    images, labels = digits
    return Split(images[:600], labels[:600], images[600:800], labels[600:800])


def task(tmp_path, arch="ffn", style="tf", **train) -> Task:
    spec = {"ffn": FFNSpec(hidden=(32,), dropout=0.0),
            "cnn": CNNSpec(filters=(4,), convs_per_block=1, dense=(16,), dropout=0.0,
                           dense_dropout=0.0),
            "lstm": LSTMSpec(units=(16,), dropout=0.0)}[arch]
    settings = dict(epochs=3, batch_size=64, learning_rate=0.003, log_every=1,
                    early_stopping=EarlyStoppingConfig(patience=5))
    settings.update(train)
    return Task(model=ModelId(arch, style), spec=spec,
                train=TrainConfig(**settings), order_seed=7,
                logdir=tmp_path / f"{arch}-{style}")


def test_each_epoch_is_a_fresh_permutation_fixed_by_seed_and_epoch():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1)
    labels = np.arange(10, dtype=np.uint8)

    def epochs(first, last):
        batches = feeding.training_batches(images, labels, 4, seed=3, first_epoch=first,
                                          last_epoch=last)
        flat = np.concatenate([y.numpy() for _, y in batches])
        return flat.reshape(last - first, 10)

    all_three = epochs(0, 3)
    assert all(sorted(row) == list(range(10)) for row in all_three)
    assert not np.array_equal(all_three[0], all_three[1])
    assert np.array_equal(epochs(2, 3)[0], all_three[2])   # a resumed epoch replays its order
    assert np.array_equal(epochs(0, 3), all_three)


def test_last_partial_batch_is_kept():
    batches = list(feeding.training_batches(np.zeros((10, 784), np.uint8),
                                           np.zeros(10, np.uint8), 4, 0, 0, 1))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    assert feeding.steps_per_epoch(10, 4) == 3


# A per-step one-cycle schedule (several steps per compiled call in the TF styles) and
# smoothed labels: the same rates and the same smoothed loss in every style.
ONE_CYCLE_SMOOTHED = dict(lr_schedule=ScheduleConfig(kind="one_cycle", warmup_fraction=0.3),
                          label_smoothing=0.1, steps_per_execution=5)


@pytest.mark.parametrize("arch, extra", [
    ("ffn", {}), ("cnn", {}), ("lstm", {}),
    ("ffn", ONE_CYCLE_SMOOTHED), ("cnn", ONE_CYCLE_SMOOTHED)],
    ids=["ffn", "cnn", "lstm", "ffn-one-cycle-smoothed", "cnn-one-cycle-smoothed"])
def test_styles_compute_the_same_training(tmp_path, split, arch, extra):
    """Identical init, order and Adam: without dropout the histories agree closely, in
    all three frameworks (float32 sums in another order drift apart a little per step)."""
    histories = {}
    for style in STYLES:
        trained = FIT[style](task(tmp_path, arch, style, epochs=2, **extra), split,
                             lambda line: None)
        histories[style] = trained.history
        assert trained.epochs_run == 2
    for other in ("keras", "torch"):
        for tf_row, row in zip(histories["tf"], histories[other]):
            for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
                assert row[key] == pytest.approx(tf_row[key], rel=2e-3, abs=2e-3), (other, key)


@pytest.mark.parametrize("style", STYLES)
def test_log_every_n_epochs_in_every_style(tmp_path, split, style):
    lines = []
    FIT[style](task(tmp_path, style=style, epochs=5, log_every=2), split, lines.append)
    epochs = [line.split("epoch")[1].split()[0] for line in lines if " epoch " in line]
    assert epochs == ["2/5", "4/5", "5/5"]
    assert all(line.startswith(f"ffn-{style}") for line in lines)


@pytest.mark.parametrize("style", STYLES)
def test_early_stopping_ends_training_and_restores_best(tmp_path, split, style):
    lines = []
    stopping = EarlyStoppingConfig(monitor="loss", mode="max", patience=1)
    trained = FIT[style](task(tmp_path, style=style, epochs=6, early_stopping=stopping),
                         split, lines.append)
    # Training loss falls, so "max" sees no improvement after epoch 1: stop after 2.
    assert trained.epochs_run == 2
    assert trained.best_epoch == 1
    assert any("early stop after epoch 2" in line for line in lines)


@pytest.mark.parametrize("style", STYLES)
def test_disabled_early_stopping_trains_every_epoch_and_keeps_the_last(tmp_path, split, style):
    lines = []
    # The rule that stops after epoch 2 above, switched off.
    stopping = EarlyStoppingConfig(enabled=False, monitor="loss", mode="max", patience=1)
    trained = FIT[style](task(tmp_path, style=style, epochs=4, early_stopping=stopping),
                         split, lines.append)
    assert trained.epochs_run == 4 and trained.best_epoch == 4
    assert not any("early stop" in line for line in lines)
    # The last epoch's weights: what the model predicts scores the last val_loss.
    from job.train.scoring import cross_entropy
    logits = trained.predict_logits(split.val_x)
    assert cross_entropy(logits, split.val_y) == pytest.approx(
        trained.history[-1]["val_loss"], rel=1e-4)


@pytest.mark.parametrize("style", STYLES)
def test_non_finite_loss_is_a_clear_error(tmp_path, split, style):
    with pytest.raises(TrainingError, match=rf"ffn-{style}: training loss became (nan|inf) "
                                            r"at epoch 1; lower train.learning_rate"):
        FIT[style](task(tmp_path, style=style, learning_rate=1e30), split, lambda line: None)


@pytest.mark.parametrize("style", STYLES)
def test_predictions_and_saved_model(tmp_path, split, style):
    """Predictions come in file order, as float32, the last smaller batch included (200
    rows in batches of 64), and agree with the saved model applied to all rows at once."""
    trained_task = task(tmp_path, style=style, epochs=1, steps_per_execution=4)
    trained = FIT[style](trained_task, split, lambda line: None)
    logits = trained.predict_logits(split.val_x)
    assert logits.shape == (len(split.val_x), 10) and logits.dtype == np.float32
    folder = tmp_path / "models"
    folder.mkdir()
    trained.save(folder)
    saved = folder / {"tf": "ffn-tf", "keras": "ffn-keras.keras", "torch": "ffn-torch.pt"}[style]
    assert [p.name for p in folder.iterdir()] == [saved.name]   # no temp files left
    if style == "torch":   # rebuilt from the spec, its state dict loaded, on the CPU
        probabilities = tf.nn.softmax(torch_loop.load_predictor(folder, trained_task)(
            split.val_x)).numpy()
    elif style == "tf":
        probabilities = tf.saved_model.load(str(saved)).signatures["serving_default"](
            pixels=tf.constant(split.val_x))["probabilities"].numpy()
    else:
        model = keras.models.load_model(saved, compile=False)
        probabilities = tf.nn.softmax(model(feeding.to_model_input(split.val_x))).numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(probabilities, tf.nn.softmax(logits).numpy(), atol=1e-5)


@pytest.fixture(scope="module")
def sample_split(tmp_path_factory):
    """The embedded sample, split as the job splits it."""
    from job.data.arrays import load_arrays, split_validation
    from job.data.sample import ensure_sample
    arrays = load_arrays(ensure_sample(tmp_path_factory.mktemp("sample") / "sample"))
    return Split(*split_validation(arrays.train_images, arrays.train_labels, 0.1, 42))


@pytest.mark.parametrize("arch", ["ffn", "cnn"])
@pytest.mark.parametrize("style", ["tf", "keras"])
def test_training_learns_on_the_sample(tmp_path, sample_split, arch, style):
    trained = FIT[style](task(tmp_path, arch, style, epochs=4), sample_split, lambda line: None)
    first, last = trained.history[0], trained.history[-1]
    assert last["loss"] <= first["loss"] / 2
    assert last["val_accuracy"] >= 0.8


@pytest.mark.parametrize("per_call", [4, 16])
def test_steps_per_execution_changes_speed_not_results(tmp_path, split, per_call):
    """Several steps per compiled call (a divisor of the epoch's steps, so Keras never
    runs into the next epoch's batches) train exactly as one step per call does."""
    assert feeding.steps_per_call(10, per_call) == {4: 2, 16: 10}[per_call]
    for style in ("tf", "keras"):
        one = FIT[style](task(tmp_path / "one", style=style, epochs=2), split, lambda l: None)
        many = FIT[style](task(tmp_path / "many", style=style, epochs=2,
                               steps_per_execution=per_call), split, lambda l: None)
        for a, b in zip(one.history, many.history):
            assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
            assert a["val_accuracy"] == b["val_accuracy"]


def test_augmentation_is_fixed_by_seed_epoch_and_batch():
    from job.config import AugmentConfig
    images = np.tile(np.arange(784, dtype=np.uint8) % 200, (8, 1))
    labels = np.arange(8, dtype=np.uint8)
    aug = AugmentConfig(rotation_degrees=10, zoom=0.1, shift=0.1)

    def first_batches(first_epoch: int) -> list[np.ndarray]:
        batches = feeding.training_batches(images, labels, 4, 5, first_epoch, 3, aug)
        return [x.numpy() for x, _ in batches]

    run = first_batches(0)
    assert len(run) == 6 and not np.allclose(run[0], run[2])   # epochs differ
    np.testing.assert_array_equal(first_batches(2)[0], run[4])  # a resume replays them
    plain = [x.numpy() for x, _ in feeding.training_batches(images, labels, 4, 5, 0, 1)]
    assert not np.allclose(plain[0], run[0])
    assert float(np.abs(plain[0] - run[0]).mean()) < 0.3        # distorted, not destroyed


def test_every_style_sees_the_same_augmented_batches(tmp_path, split):
    from job.config import AugmentConfig
    aug = AugmentConfig(rotation_degrees=10, zoom=0.1, shift=0.1)
    histories = {style: FIT[style](task(tmp_path / style, style=style, epochs=2, augment=aug),
                                   split, lambda l: None).history for style in STYLES}
    for other in ("keras", "torch"):
        for a, b in zip(histories["tf"], histories[other]):
            assert b["loss"] == pytest.approx(a["loss"], rel=2e-3), other
