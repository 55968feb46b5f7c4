"""The framework-free training plan: stateless epoch orders, augmentation parameters inside
their ranges, and the inverse transforms TF's ImageProjectiveTransformV3 takes."""

import math

import numpy as np
import pytest
from helpers.project import loaded_after

from job.config import AugmentConfig
from job.data import plan

AUGMENT = AugmentConfig(rotation_degrees=10.0, zoom=0.1, shift=0.1)


def test_each_epoch_order_is_a_permutation_fixed_by_seed_and_epoch():
    orders = [plan.epoch_order(100, seed=3, epoch=e) for e in range(4)]
    assert all(sorted(o.tolist()) == list(range(100)) for o in orders)
    np.testing.assert_array_equal(orders[2], plan.epoch_order(100, seed=3, epoch=2))
    assert all(not np.array_equal(a, b) for i, a in enumerate(orders) for b in orders[i + 1:])
    assert not np.array_equal(orders[0], plan.epoch_order(100, seed=4, epoch=0))
    np.testing.assert_array_equal(plan.epoch_plan(100, 32, 3, 2, AUGMENT).order, orders[2])


def test_no_augmentation_means_no_transforms():
    assert plan.epoch_plan(10, 4, 0, 0).transforms is None
    assert plan.epoch_plan(10, 4, 0, 0, AugmentConfig()).transforms is None


def test_parameters_stay_inside_the_configured_ranges():
    augment = AugmentConfig(rotation_degrees=20.0, zoom=0.2, shift=0.15)
    drawn = plan.batch_distortions(5000, augment, seed=1, epoch=2, batch=3)
    angle_range, shift_range = 20.0 * math.pi / 180, 0.15 * 28
    assert np.abs(drawn.angle).max() <= angle_range
    assert np.abs(drawn.scale - 1).max() <= 0.2
    assert drawn.shift.shape == (5000, 2) and np.abs(drawn.shift).max() <= shift_range
    # Spread over the whole range, each image its own draw (not one value for all).
    assert np.abs(drawn.angle).max() > 0.95 * angle_range
    assert np.abs(drawn.shift[:, 0]).max() > 0.95 * shift_range
    assert drawn.angle.std() > 0.5 * angle_range / math.sqrt(3)


def test_a_batch_transforms_depend_on_seed_epoch_and_batch_only():
    twelve = plan.epoch_plan(12, 4, seed=5, epoch=1, augment=AUGMENT).transforms
    eight = plan.epoch_plan(8, 4, seed=5, epoch=1, augment=AUGMENT).transforms
    assert twelve.shape == (12, 8) and twelve.dtype == np.float32
    np.testing.assert_array_equal(twelve[:8], eight)     # batches 0, 1: the same draws
    assert not np.allclose(twelve[:4], twelve[4:8])      # batch 1 is not batch 0
    other_epoch = plan.epoch_plan(12, 4, seed=5, epoch=2, augment=AUGMENT).transforms
    assert not np.allclose(twelve, other_epoch)
    assert np.all(twelve[:, 6:] == 0)                     # affine: no perspective


def apply(t: np.ndarray, x: float, y: float) -> tuple[float, float]:
    """Where ImageProjectiveTransformV3's documented formula samples output pixel (x, y)."""
    k = t[6] * x + t[7] * y + 1
    return (t[0] * x + t[1] * y + t[2]) / k, (t[3] * x + t[4] * y + t[5]) / k


def test_a_transform_worked_by_hand():
    """A quarter turn, 2x zoom, shift (+1, -2): output centre+shift samples the input
    centre; the output corner (0, 0) is 14.5 left of and 11.5 above it, which turned back
    a quarter (x, y) → (y, -x) and halved is (-5.75, +7.25) from the input centre."""
    d = plan.Distortions(angle=np.array([math.pi / 2]), scale=np.array([2.0]),
                         shift=np.array([[1.0, -2.0]]))
    t = plan.transforms_of(d)[0].astype(np.float64)
    assert apply(t, 14.5, 11.5) == pytest.approx((13.5, 13.5), abs=1e-5)
    assert apply(t, 0.0, 0.0) == pytest.approx((7.75, 20.75), abs=1e-5)


def test_identity_and_pure_shift_transforms():
    none = plan.Distortions(np.zeros(1), np.ones(1), np.zeros((1, 2)))
    np.testing.assert_allclose(plan.transforms_of(none)[0], [1, 0, 0, 0, 1, 0, 0, 0], atol=1e-6)
    shifted = plan.Distortions(np.zeros(1), np.ones(1), np.array([[3.0, -1.0]]))
    # Moving the picture right by 3 and up by 1: output (x, y) samples input (x - 3, y + 1).
    np.testing.assert_allclose(plan.transforms_of(shifted)[0], [1, 0, -3, 0, 1, 1, 0, 0],
                               atol=1e-6)


def test_view_transforms_are_fixed_by_seed_and_copy():
    first = plan.view_transforms(50, AUGMENT, seed=3, copy=1)
    assert first.shape == (50, 8) and first.dtype == np.float32
    np.testing.assert_array_equal(first, plan.view_transforms(50, AUGMENT, seed=3, copy=1))
    assert not np.allclose(first, plan.view_transforms(50, AUGMENT, seed=3, copy=2))
    assert not np.allclose(first, plan.view_transforms(50, AUGMENT, seed=4, copy=1))
    # Not the training draws of epoch 1: the streams are kept apart.
    assert not np.allclose(first, plan.epoch_plan(50, 50, 3, 1, AUGMENT).transforms)
    with pytest.raises(ValueError, match="copy counts from 1"):
        plan.view_transforms(50, AUGMENT, seed=3, copy=0)


def test_steps():
    assert plan.steps_per_epoch(10, 4) == 3 and plan.steps_per_epoch(8, 4) == 2
    assert plan.steps_per_call(10, 4) == 2 and plan.steps_per_call(10, 16) == 10


def test_importing_the_plan_loads_no_framework():
    code = ("from job.data import plan\n"
            "from job.config import AugmentConfig\n"
            "plan.epoch_plan(10, 4, 0, 0, AugmentConfig(rotation_degrees=5.0))")
    assert loaded_after(code) == []
