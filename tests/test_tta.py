"""Test-time augmentation: distortions inside the training augmentation's ranges, the
same images for every model, style and run, and the softmax averaged over them."""

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from job.config import AugmentConfig
from job.candidates import tta

REPO = Path(__file__).resolve().parent.parent
AUGMENT = AugmentConfig(rotation_degrees=10.0, zoom=0.1, shift=0.1)


def digest(arrays) -> str:
    return hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()


def test_copies_are_fixed_by_seed_and_copy_number(digits):
    images = digits[0][:64]
    first = tta.distorted_copy(images, AUGMENT, seed=3, copy=1)
    assert first.dtype == np.uint8 and first.shape == images.shape
    np.testing.assert_array_equal(first, tta.distorted_copy(images, AUGMENT, seed=3, copy=1))
    assert not np.array_equal(first, images)
    assert not np.array_equal(first, tta.distorted_copy(images, AUGMENT, seed=3, copy=2))
    assert not np.array_equal(first, tta.distorted_copy(images, AUGMENT, seed=4, copy=1))


def centre_of_mass(images: np.ndarray) -> np.ndarray:
    grid = images.reshape(-1, 28, 28).astype(np.float64)
    rows, cols = np.mgrid[0:28, 0:28]
    mass = grid.sum(axis=(1, 2))
    return np.stack([(grid * rows).sum(axis=(1, 2)) / mass,
                     (grid * cols).sum(axis=(1, 2)) / mass], axis=1)


def test_a_shift_only_copy_moves_each_digit_within_the_shift_range(digits):
    images = digits[0][:200]
    shift_only = AugmentConfig(shift=0.1)                      # up to 2.8 pixels each way
    moved = centre_of_mass(tta.distorted_copy(images, shift_only, seed=0, copy=1))
    offsets = moved - centre_of_mass(images)
    assert np.abs(offsets).max() <= 0.1 * 28 + 0.5             # half a pixel of rounding
    assert np.abs(offsets).mean() > 0.5                         # and they do move
    # Every image draws its own shift: the offsets are spread, not one for all.
    assert offsets[:, 0].std() > 0.5


def test_views_are_the_originals_then_the_copies_drawn_once(digits):
    images = digits[0][:32]
    views = tta.Views(AUGMENT, copies=3, seed=0)
    drawn = views.of(images)
    assert len(drawn) == 4 and drawn[0] is images
    assert views.of(images.copy()) is drawn                     # the same pixels: reused
    for copy, view in enumerate(drawn[1:], start=1):
        np.testing.assert_array_equal(view, tta.distorted_copy(images, AUGMENT, 0, copy))


def test_every_style_sees_the_same_images(digits):
    """Two predictors (think: TF and torch nets) wrapped with the same views get
    byte-identical inputs; so would any other."""
    images = digits[0][:40]
    seen = {"a": [], "b": []}

    def recording(name):
        def predict(batch):
            seen[name].append(batch.copy())
            return np.zeros((len(batch), 10), np.float32)
        return predict
    views = tta.Views(AUGMENT, copies=2, seed=7)
    tta.augmenting(recording("a"), views)(images)
    tta.augmenting(recording("b"), tta.Views(AUGMENT, copies=2, seed=7))(images)
    assert len(seen["a"]) == 3 and digest(seen["a"]) == digest(seen["b"])


def test_the_copies_are_the_same_in_another_process(digits):
    images = digits[0][:50]
    here = digest(tta.Views(AUGMENT, copies=2, seed=11).of(images))
    code = ("import hashlib, numpy as np, sys\n"
            "from sklearn.datasets import load_digits\n"
            "from job.config import AugmentConfig\n"
            "from job.train import tta\n"
            "b = load_digits()\n"
            "big = np.pad(np.kron(b.images, np.ones((3, 3))), ((0, 0), (2, 2), (2, 2)))\n"
            "x = (big * (255 / 16)).round().astype(np.uint8).reshape(len(big), 784)[:50]\n"
            "v = tta.Views(AugmentConfig(rotation_degrees=10.0, zoom=0.1, shift=0.1), 2, 11)\n"
            "print(hashlib.sha256(b''.join(np.ascontiguousarray(a).tobytes() "
            "for a in v.of(x))).hexdigest())\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=300, env={"PYTHONPATH": str(REPO),
                                                      "TF_CPP_MIN_LOG_LEVEL": "3",
                                                      "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == here


def test_augmenting_averages_the_softmax_over_the_views(digits):
    images = digits[0][:8]
    views = tta.Views(AUGMENT, copies=2, seed=0)
    rng = np.random.default_rng(0)
    logits = {digest([v]): rng.normal(size=(8, 10)).astype(np.float32) for v in views.of(images)}
    averaged = tta.augmenting(lambda batch: logits[digest([batch])], views)(images)
    probabilities = [np.exp(v) / np.exp(v).sum(axis=1, keepdims=True) for v in logits.values()]
    np.testing.assert_allclose(np.exp(averaged), np.mean(probabilities, axis=0), rtol=1e-5)


def test_views_refuse_an_augmentation_with_no_ranges():
    with pytest.raises(ValueError, match="train.augment"):
        tta.Views(AugmentConfig(), copies=2, seed=0)
