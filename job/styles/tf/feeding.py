"""The TF and Keras styles' tf.data pipeline over the shared plan (`job.data.plan`)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf

from job.competition import IMAGE_SIDE as SIDE
from job.config import AugmentConfig
from job.data import plan

# Re-exported: the loops, the doctor and the bench count their steps through this module.
from job.data.plan import steps_per_call, steps_per_epoch  # noqa: F401


def to_model_input(images: tf.Tensor) -> tf.Tensor:
    """uint8 pixels stay uint8 until the batch is cast, which keeps memory small."""
    return tf.cast(images, tf.float32) / 255.0


def training_batches(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                     first_epoch: int, last_epoch: int,
                     augment: AugmentConfig | None = None) -> tf.data.Dataset:
    """Shuffled (and, if asked, augmented) batches for epochs [first_epoch, last_epoch)."""
    n = len(images)
    images_t, labels_t = tf.constant(images), tf.constant(labels)
    augmenting = augment is not None and augment.active

    # Every remaining epoch's plan, drawn by NumPy up front and held as tensors (the
    # orders, and the transforms when augmenting: 45 Kaggle epochs take 61 MB), so the
    # pipeline is TensorFlow ops only: a multi-worker strategy can rewrite it to split
    # each global batch between its replicas, which it cannot do for a Python generator.
    drawn = [plan.epoch_plan(n, batch_size, seed, epoch, augment)
             for epoch in range(first_epoch, last_epoch)]
    orders = np.stack([d.order for d in drawn]) if drawn else np.zeros((0, n), np.int64)
    epochs = tf.data.Dataset.from_tensor_slices(
        (orders, np.stack([d.transforms for d in drawn])) if augmenting and drawn else orders)

    def gather(index: tf.Tensor, transforms: tf.Tensor | None = None):
        x = to_model_input(tf.gather(images_t, index))
        if transforms is not None:
            x = warp(x, transforms)
        return x, tf.cast(tf.gather(labels_t, index), tf.int32)

    def one_epoch(*drawn) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices(drawn if augmenting else drawn[0]).batch(
            batch_size)

    return (epochs.flat_map(one_epoch)
            .map(gather, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def warp(x: tf.Tensor, transforms: tf.Tensor) -> tf.Tensor:
    """(batch, 784) float images resampled (bilinear, 0 outside) through (batch, 8) transforms."""
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.reshape(x, [-1, SIDE, SIDE, 1]), transforms=transforms,
        output_shape=[SIDE, SIDE], fill_value=0.0, interpolation="BILINEAR",
        fill_mode="CONSTANT")
    return tf.reshape(out, [-1, SIDE * SIDE])


def warp_images(images: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """uint8 (N, 784) images warped and rounded back to uint8 (test-time augmentation's views)."""
    out = warp(to_model_input(tf.constant(images)), tf.constant(transforms, tf.float32))
    return np.clip(np.rint(out.numpy() * 255.0), 0, 255).astype(np.uint8)


def evaluation_batches(images: np.ndarray, labels: np.ndarray | None,
                       batch_size: int) -> tf.data.Dataset:
    """Batches in file order, for validation and prediction."""
    images_ds = tf.data.Dataset.from_tensor_slices(images).batch(batch_size).map(to_model_input)
    if labels is None:
        return images_ds.prefetch(tf.data.AUTOTUNE)
    labels_ds = tf.data.Dataset.from_tensor_slices(labels.astype(np.int32)).batch(batch_size)
    return tf.data.Dataset.zip((images_ds, labels_ds)).prefetch(tf.data.AUTOTUNE)


def batched_predictor(model: Callable, batch_size: int) -> Callable[[np.ndarray], np.ndarray]:
    """Logits (float32) for uint8 images, in file order through `model(x, training=False)`."""
    # One trace for every batch size: the last batch is smaller.
    infer = tf.function(lambda x: model(x, training=False),
                        input_signature=[tf.TensorSpec([None, SIDE * SIDE])])

    def predict_logits(images: np.ndarray) -> np.ndarray:
        batches = evaluation_batches(images, None, batch_size)
        return np.concatenate([infer(x).numpy().astype(np.float32) for x in batches])
    return predict_logits
