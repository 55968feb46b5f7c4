"""The initial draws every style starts from: one seed per layer, Keras' stateless draws.

Keras' initializers with an int seed draw statelessly, so a net written in another
style makes the same values by repeating the same draws here (and moving them into
its own layouts).
"""

from __future__ import annotations

import math

import tensorflow as tf


def layer_seed(seed: int, index: int) -> int:
    """The seed of the index-th seeded layer of a net built with `seed`."""
    # Keras draws from an int seed s with the stateless seed [s, 0] taken mod 2**31 - 2;
    # staying below that bound lets the TF nets draw bit-identical kernels.
    return (seed * 1000 + index) % (2**31 - 2)


def glorot_uniform(shape: tuple[int, ...], seed: int) -> tf.Tensor:
    """Keras' GlorotUniform(seed) draw: U(±limit) with limit = sqrt(6 / (fan_in + fan_out))."""
    receptive_field = math.prod(shape[:-2])
    fan_in, fan_out = shape[-2] * receptive_field, shape[-1] * receptive_field
    limit = math.sqrt(3.0 / max(1.0, (fan_in + fan_out) / 2.0))
    return tf.random.stateless_uniform(shape, seed=[seed, 0], minval=-limit, maxval=limit)


def orthogonal(shape: tuple[int, int], seed: int) -> tf.Tensor:
    """Keras' Orthogonal(seed) draw: QR of a stateless normal matrix, signs fixed by R."""
    rows, cols = shape
    q, r = tf.linalg.qr(tf.random.stateless_normal((max(rows, cols), min(rows, cols)),
                                                   seed=[seed, 0]))
    q *= tf.sign(tf.linalg.diag_part(r))
    return tf.transpose(q) if rows < cols else q
