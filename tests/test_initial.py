"""job.train.initial: the NumPy draws every style starts from, pinned by what they must be
(limits worked out by hand, orthonormality, purity), and no TensorFlow to draw them."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from job.train.initial import glorot_uniform, layer_seed, orthogonal

REPO = Path(__file__).resolve().parents[1]

# Glorot limits by hand, sqrt(6 / (fan_in + fan_out)):
#   Dense (784, 512): 6 / 1_296 = 1/216 → 0.068041...
#   Conv 3x3 from 4 to 8 channels: fans 9*4 = 36 and 9*8 = 72, 6 / 108 = 1/18 → 0.235702...
#   LSTM kernel (28, 4*8): 6 / 60 = 1/10 → 0.316227...
LIMITS = [((784, 512), 0.0680414), ((3, 3, 4, 8), 0.2357023), ((28, 32), 0.3162278)]


@pytest.mark.parametrize("shape, limit", LIMITS)
def test_glorot_uniform_fills_plus_minus_the_hand_worked_limit(shape, limit):
    w = glorot_uniform(shape, layer_seed(7, 0))
    assert w.shape == shape and w.dtype == np.float32
    assert np.abs(w).max() <= np.float32(limit * (1 + 1e-6))
    # Hundreds of uniform values or more: the largest lies within 2% of the limit, and
    # both signs are about equally common (mean ~0, std limit / sqrt(3)).
    assert np.abs(w).max() > 0.98 * limit
    assert abs(w.mean()) < 0.1 * limit
    assert w.std() == pytest.approx(limit / math.sqrt(3), rel=0.1)


@pytest.mark.parametrize("shape", [(32, 8), (8, 32), (16, 16), (3, 4, 20)])
def test_orthogonal_has_orthonormal_columns_or_rows(shape):
    w = orthogonal(shape, layer_seed(7, 1))
    assert w.shape == shape and w.dtype == np.float32
    # Keras' Orthogonal views a kernel as (prod(shape[:-1]), shape[-1]); the shorter side
    # is orthonormal: columns when tall, rows when wide (the LSTM's (u, 4u) recurrent one).
    rows, cols = math.prod(shape[:-1]), shape[-1]
    m = w.reshape(rows, cols).astype(np.float64)
    gram = m.T @ m if rows >= cols else m @ m.T
    np.testing.assert_allclose(gram, np.eye(min(rows, cols)), atol=1e-5)


@pytest.mark.parametrize("draw, shape", [(glorot_uniform, (5, 3, 2, 4)), (orthogonal, (6, 24))])
def test_a_draw_is_a_pure_function_of_shape_and_seed(draw, shape):
    first = draw(shape, layer_seed(3, 2))
    # No global random state takes part: reseeding or drawing from NumPy's global
    # generator in between changes nothing.
    np.random.seed(12345)
    np.random.random(100)
    np.testing.assert_array_equal(draw(shape, layer_seed(3, 2)), first)
    assert not np.array_equal(draw(shape, layer_seed(3, 3)), first)   # next layer
    assert not np.array_equal(draw(shape, layer_seed(4, 2)), first)   # next build seed


def test_layer_seeds_are_distinct_per_layer_and_stay_below_the_int32_bound():
    assert [layer_seed(7, i) for i in range(3)] == [7000, 7001, 7002]
    assert len({layer_seed(s, i) for s in range(5) for i in range(600)}) == 5 * 600
    assert 0 <= layer_seed(2**40, 9) < 2**31 - 2


def test_drawing_the_initial_weights_imports_no_tensorflow():
    """A torch worker imports this module without TensorFlow installed."""
    out = subprocess.run(
        [sys.executable, "-c",
         "import job.train.initial, sys; print('tensorflow' in sys.modules)"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.strip() == "False"
