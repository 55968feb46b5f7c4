"""The initial kernels every style starts from: one seed per layer, drawn in NumPy alone.

A torch worker process builds its net without TensorFlow installed, so the draws cannot
be TensorFlow's; drawing them here in NumPy lets the TF, Keras and torch nets all start
from the same arrays (each moves them into its own layouts). Each draw is a pure
function of (shape, seed): a fresh `np.random.default_rng(seed)` per layer, no global state.
"""

from __future__ import annotations

import math

import numpy as np


def layer_seed(seed: int, index: int) -> int:
    """The seed of the index-th seeded layer of a net built with `seed`."""
    # Below 2**31 - 2, so the same numbers also serve as Keras' int seeds (its Dropout
    # layers) and the draws of every existing build seed stay put.
    return (seed * 1000 + index) % (2**31 - 2)


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras' fans: a conv kernel (..., in, out) counts its receptive field in both."""
    if len(shape) < 2:
        raise ValueError(f"a kernel has at least two axes, not shape {shape}")
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def glorot_uniform(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """U(±limit) with limit = sqrt(6 / (fan_in + fan_out)), float32, as Keras' GlorotUniform."""
    fan_in, fan_out = fans(shape)
    # Keras' form of the same limit, max(1, ·) guarding an empty kernel.
    limit = math.sqrt(3.0 / max(1.0, (fan_in + fan_out) / 2.0))
    draw = np.random.default_rng(seed).uniform(-limit, limit, size=shape)
    return draw.astype(np.float32)


def orthogonal(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Keras' Orthogonal: QR of a normal draw, signs fixed by diag(R), transposed when the
    kernel is wide, so the columns (or, if fewer, the rows) are orthonormal; float32."""
    rows, cols = math.prod(shape[:-1]), shape[-1]
    normal = np.random.default_rng(seed).standard_normal((max(rows, cols), min(rows, cols)))
    # QR in float64 and cast last, so Q^T Q = I holds to float32 precision.
    q, r = np.linalg.qr(normal)
    # Without the sign fix Q would depend on the LAPACK's sign convention, not only the draw.
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return q.reshape(shape).astype(np.float32)
