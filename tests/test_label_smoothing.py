"""Label smoothing: every style's loss is Keras' smoothed cross-entropy, and the logged
val_loss includes it while the job's own scores do not."""

import numpy as np
import pytest
import tensorflow as tf
import torch

from job.config import EarlyStoppingConfig, FFNSpec, ScheduleConfig, TrainConfig
from job.styles import ModelId
from job.styles.keras import loop as keras_fit
from job.styles.tf import loop as tf_loop
from job.styles.torch import loop as torch_loop
from job.train import scoring
from job.train.task import Split, Task

FIT = {"tf": tf_loop.fit, "keras": keras_fit.fit, "torch": torch_loop.fit}
pytestmark = pytest.mark.filterwarnings("ignore:CUDA initialization")


def smoothed_cross_entropy(logits: np.ndarray, labels: np.ndarray, smoothing: float) -> np.ndarray:
    """Worked out independently in float64: targets y(1-e) + e/K against log-softmax."""
    logits = logits.astype(np.float64)
    log_probs = logits - logits.max(axis=1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(axis=1, keepdims=True))
    classes = logits.shape[1]
    targets = np.full(logits.shape, smoothing / classes)
    targets[np.arange(len(labels)), labels] += 1 - smoothing
    return -(targets * log_probs).sum(axis=1)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return (rng.normal(0, 3, (32, 10)).astype(np.float32),
            rng.integers(0, 10, 32).astype(np.int32))


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_every_style_computes_the_same_smoothed_loss(batch, smoothing):
    logits, labels = batch
    expected = smoothed_cross_entropy(logits, labels, smoothing)
    tf_losses = tf_loop.cross_entropy(tf.constant(labels), tf.constant(logits), smoothing)
    torch_losses = torch_loop.cross_entropy(torch.from_numpy(logits),
                                            torch.from_numpy(labels).long(), smoothing)
    keras_loss = keras_fit.cross_entropy(smoothing)(labels, logits)   # the batch mean
    np.testing.assert_allclose(tf_losses.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(torch_losses.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(float(keras_loss), expected.mean(), rtol=1e-5)
    if smoothing:
        assert expected.mean() > smoothed_cross_entropy(logits, labels, 0.0).mean()


@pytest.mark.parametrize("style", list(FIT))
def test_logged_val_loss_is_smoothed_and_the_scores_are_not(tmp_path, digits, style):
    images, labels = digits
    split = Split(images[:256], labels[:256], images[256:384], labels[256:384])
    task = Task(ModelId("ffn", style), FFNSpec(hidden=(16,), dropout=0.0),
                TrainConfig(epochs=1, batch_size=64, learning_rate=0.003, label_smoothing=0.2,
                            lr_schedule=ScheduleConfig(kind="one_cycle"),
                            early_stopping=EarlyStoppingConfig(patience=5)),
                3, tmp_path / style)
    trained = FIT[style](task, split, lambda line: None)
    logits = trained.predict_logits(split.val_x)
    logged = trained.history[-1]["val_loss"]
    assert logged == pytest.approx(
        smoothed_cross_entropy(logits, split.val_y, 0.2).mean(), rel=1e-4)
    assert scoring.score(logits, split.val_y)["val_loss"] == pytest.approx(
        smoothed_cross_entropy(logits, split.val_y, 0.0).mean(), rel=1e-6)
    assert scoring.score(logits, split.val_y)["val_loss"] < logged
    # The saved model (Keras: its smoothed loss and per-step schedule in the archive) loads.
    folder = tmp_path / "models"
    folder.mkdir()
    trained.save(folder)
    again = {"tf": tf_loop, "keras": keras_fit, "torch": torch_loop}[style].load_predictor(
        folder, task)(split.val_x)
    np.testing.assert_allclose(again.argmax(axis=1), logits.argmax(axis=1))
