"""Test-time augmentation: views inside the training augmentation's ranges, drawn in
NumPy from (predict.seed, copy) so every model, style and run sees the same ones, each
style warping with its own op, and the softmax averaged over them."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from job.candidates import tta
from job.config import AugmentConfig
from job.data import plan
from job.styles.tf import feeding as tf_feeding
from job.styles.torch import feeding as torch_feeding

REPO = Path(__file__).resolve().parent.parent
AUGMENT = AugmentConfig(rotation_degrees=10.0, zoom=0.1, shift=0.1)


def test_views_are_fixed_by_seed_and_copy_number():
    first = plan.view_transforms(64, AUGMENT, seed=3, copy=1)
    assert first.shape == (64, 8)
    np.testing.assert_array_equal(first, plan.view_transforms(64, AUGMENT, seed=3, copy=1))
    assert not np.array_equal(first, plan.view_transforms(64, AUGMENT, seed=3, copy=2))
    assert not np.array_equal(first, plan.view_transforms(64, AUGMENT, seed=4, copy=1))


def centre_of_mass(images: np.ndarray) -> np.ndarray:
    grid = images.reshape(-1, 28, 28).astype(np.float64)
    rows, cols = np.mgrid[0:28, 0:28]
    mass = grid.sum(axis=(1, 2))
    return np.stack([(grid * rows).sum(axis=(1, 2)) / mass,
                     (grid * cols).sum(axis=(1, 2)) / mass], axis=1)


@pytest.mark.parametrize("feeding", [tf_feeding, torch_feeding], ids=["tf", "torch"])
def test_a_shift_only_view_moves_each_digit_within_the_shift_range(digits, feeding):
    images = digits[0][:200]
    shift_only = AugmentConfig(shift=0.1)                      # up to 2.8 pixels each way
    view = feeding.warp_images(images, plan.view_transforms(200, shift_only, seed=0, copy=1))
    assert view.dtype == np.uint8 and view.shape == images.shape
    offsets = centre_of_mass(view) - centre_of_mass(images)
    assert np.abs(offsets).max() <= 0.1 * 28 + 0.5             # half a pixel of rounding
    assert np.abs(offsets).mean() > 0.5                         # and they do move
    # Every image draws its own shift: the offsets are spread, not one for all.
    assert offsets[:, 0].std() > 0.5


def test_every_style_warps_the_same_view(digits):
    """TF's projective transform and torch's sampling grid, from the same parameters: the
    same pixels within one grey level (rounding of values that differ by float error)."""
    images = digits[0][:64]
    transforms = plan.view_transforms(64, AUGMENT, seed=7, copy=2)
    tf_view = tf_feeding.warp_images(images, transforms).astype(int)
    torch_view = torch_feeding.warp_images(images, transforms).astype(int)
    assert np.abs(tf_view - torch_view).max() <= 1
    assert (tf_view != torch_view).mean() < 0.01


def test_the_views_are_the_same_in_another_process():
    here = plan.view_transforms(50, AUGMENT, seed=11, copy=2)
    code = ("import numpy as np\n"
            "from job.config import AugmentConfig\n"
            "from job.data import plan\n"
            "a = AugmentConfig(rotation_degrees=10.0, zoom=0.1, shift=0.1)\n"
            "print(plan.view_transforms(50, a, seed=11, copy=2).tobytes().hex())\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=120, env={"PYTHONPATH": str(REPO),
                                                      "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == here.tobytes().hex()


def test_averaged_is_the_mean_softmax_over_the_original_and_its_views():
    rng = np.random.default_rng(0)
    logits = {key: rng.normal(size=(8, 10)).astype(np.float32)
              for key in ("test", "test@view1", "test@view2", "val")}
    averaged = tta.averaged(logits, "test", 2)
    probabilities = [np.exp(logits[k]) / np.exp(logits[k]).sum(axis=1, keepdims=True)
                     for k in ("test", "test@view1", "test@view2")]
    np.testing.assert_allclose(np.exp(averaged), np.mean(probabilities, axis=0), rtol=1e-5)
    assert tta.view_key("val", 3) == "val@view3"
