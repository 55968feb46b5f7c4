"""The input pipeline both styles consume: same batches, same order, same scaling."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


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
                     first_epoch: int, last_epoch: int) -> tf.data.Dataset:
    """Shuffled batches for epochs [first_epoch, last_epoch), back to back."""
    n = len(images)
    images_t, labels_t = tf.constant(images), tf.constant(labels)

    def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices(epoch_order(n, seed, epoch)).batch(batch_size)

    def gather(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return (to_model_input(tf.gather(images_t, index)),
                tf.cast(tf.gather(labels_t, index), tf.int32))

    return (tf.data.Dataset.range(first_epoch, last_epoch)
            .flat_map(one_epoch)
            .map(gather, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def evaluation_batches(images: np.ndarray, labels: np.ndarray | None,
                       batch_size: int) -> tf.data.Dataset:
    """Batches in file order, for validation and prediction."""
    images_ds = tf.data.Dataset.from_tensor_slices(images).batch(batch_size).map(to_model_input)
    if labels is None:
        return images_ds.prefetch(tf.data.AUTOTUNE)
    labels_ds = tf.data.Dataset.from_tensor_slices(labels.astype(np.int32)).batch(batch_size)
    return tf.data.Dataset.zip((images_ds, labels_ds)).prefetch(tf.data.AUTOTUNE)
