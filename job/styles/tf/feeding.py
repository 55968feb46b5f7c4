"""The input pipeline every style consumes: same batches, same order, same scaling."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import tensorflow as tf

from job.competition import IMAGE_SIDE as SIDE
from job.config import AugmentConfig


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches in one epoch; the last, smaller batch is kept so no image is skipped."""
    return -(-n // batch_size)


def steps_per_call(steps_per_epoch: int, wanted: int) -> int:
    """The largest number of steps per compiled call, at most `wanted`, that divides an
    epoch. Keras always runs whole executions: with a remainder it would train on the
    next epoch's first batches, and the two styles would no longer see the same data."""
    return max(k for k in range(1, min(wanted, steps_per_epoch) + 1) if steps_per_epoch % k == 0)


def to_model_input(images: tf.Tensor) -> tf.Tensor:
    """uint8 pixels stay uint8 until the batch is cast, which keeps memory small."""
    return tf.cast(images, tf.float32) / 255.0


def epoch_order(n: int, seed: int, epoch: int) -> tf.Tensor:
    """The permutation for one epoch, a pure function of (seed, epoch).

    Stateless, so both styles see the same order and a resumed run replays it.
    """
    return tf.random.experimental.stateless_shuffle(
        tf.range(n), seed=tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64)]))


def training_batches(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                     first_epoch: int, last_epoch: int,
                     augment: AugmentConfig | None = None) -> tf.data.Dataset:
    """Shuffled (and, if asked, augmented) batches for epochs [first_epoch, last_epoch)."""
    n = len(images)
    images_t, labels_t = tf.constant(images), tf.constant(labels)

    def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
        batches = tf.data.Dataset.from_tensor_slices(epoch_order(n, seed, epoch)).batch(batch_size)
        return batches.enumerate().map(lambda step, index: (epoch, step, index))

    def gather(epoch: tf.Tensor, step: tf.Tensor, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = to_model_input(tf.gather(images_t, index))
        if augment is not None and augment.active:
            # Stateless: the same (seed, epoch, batch) always gets the same distortions.
            x = distort(x, augment, tf.stack([tf.cast(seed, tf.int64), epoch * 1_000_003 + step]))
        return x, tf.cast(tf.gather(labels_t, index), tf.int32)

    return (tf.data.Dataset.range(first_epoch, last_epoch)
            .flat_map(one_epoch)
            .map(gather, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def distort(x: tf.Tensor, config: AugmentConfig, seed: tf.Tensor) -> tf.Tensor:
    """A random rotation, zoom and shift of each (batch, 784) image, about its centre."""
    n = tf.shape(x)[0]
    seeds = tf.random.experimental.stateless_split(seed, 3)
    angle = tf.random.stateless_uniform([n], seeds[0], -1.0, 1.0) * (
        config.rotation_degrees * math.pi / 180)
    scale = 1.0 + tf.random.stateless_uniform([n], seeds[1], -1.0, 1.0) * config.zoom
    shift = tf.random.stateless_uniform([n, 2], seeds[2], -1.0, 1.0) * (config.shift * SIDE)
    # The transform maps each output pixel back to where it samples the input:
    # p = R(-angle) (p' - c - shift) / scale + c.
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    cx = cy = (SIDE - 1) / 2
    px, py = cx + shift[:, 0], cy + shift[:, 1]
    transforms = tf.stack([cos, sin, cx - cos * px - sin * py,
                           -sin, cos, cy + sin * px - cos * py,
                           tf.zeros([n]), tf.zeros([n])], axis=1)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.reshape(x, [-1, SIDE, SIDE, 1]), transforms=transforms,
        output_shape=[SIDE, SIDE], fill_value=0.0, interpolation="BILINEAR",
        fill_mode="CONSTANT")
    return tf.reshape(out, [-1, SIDE * SIDE])


def evaluation_batches(images: np.ndarray, labels: np.ndarray | None,
                       batch_size: int) -> tf.data.Dataset:
    """Batches in file order, for validation and prediction."""
    images_ds = tf.data.Dataset.from_tensor_slices(images).batch(batch_size).map(to_model_input)
    if labels is None:
        return images_ds.prefetch(tf.data.AUTOTUNE)
    labels_ds = tf.data.Dataset.from_tensor_slices(labels.astype(np.int32)).batch(batch_size)
    return tf.data.Dataset.zip((images_ds, labels_ds)).prefetch(tf.data.AUTOTUNE)


def batched_predictor(model: Callable, batch_size: int) -> Callable[[np.ndarray], np.ndarray]:
    """Logits (float32) for uint8 images: batches in file order through
    `model(x, training=False)`, traced once for every batch size (the last is smaller)."""
    infer = tf.function(lambda x: model(x, training=False),
                        input_signature=[tf.TensorSpec([None, SIDE * SIDE])])

    def predict_logits(images: np.ndarray) -> np.ndarray:
        batches = evaluation_batches(images, None, batch_size)
        return np.concatenate([infer(x).numpy().astype(np.float32) for x in batches])
    return predict_logits
