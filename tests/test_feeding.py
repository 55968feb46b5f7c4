"""TF's and torch's feeding of one NumPy plan: the same batches in the same order, and
warps that agree with each other and with a bilinear sampler written out here.

Measured on the CPU (all 1797 digits, 3 seeds, float32 [0, 1] pixels, augmentation up to
30°, zoom 0.3, shift 0.2): TF's ImageProjectiveTransformV3 and torch's grid_sample differ
by at most 5.7e-6; against the float64 reference below TF is within 4.4e-6, torch within
3.9e-6. What differs is float32 rounding of the sample coordinates (TF computes them in
pixels, grid_sample from normalised ±1), not the method: TF's CONSTANT fill reads each
out-of-range neighbour as 0, as zeros padding does. So the tolerance is 1e-5 on [0, 1]
pixels, and 1 grey level after rounding to uint8.
"""

import warnings

import numpy as np
import pytest
import tensorflow as tf
import torch
from helpers.project import loaded_after

from job.config import AugmentConfig
from job.data import plan
from job.styles.tf import feeding as tf_feeding
from job.styles.torch import feeding as torch_feeding

AUGMENT = AugmentConfig(rotation_degrees=10.0, zoom=0.1, shift=0.1)
STRONG = AugmentConfig(rotation_degrees=30.0, zoom=0.3, shift=0.2)
TOLERANCE = 1e-5
with warnings.catch_warnings():   # a CUDA build of torch without a driver says so
    warnings.simplefilter("ignore", UserWarning)
    DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def bilinear(images: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """A float64 reference: each output pixel (x = column, y = row) samples the input at
    the transform's point, bilinearly between its four neighbours, 0 outside 28x28."""
    grid = images.reshape(-1, 28, 28).astype(np.float64)
    padded = np.pad(grid, ((0, 0), (1, 1), (1, 1)))        # a ring of zeros, index + 1
    ys, xs = np.mgrid[0:28, 0:28].astype(np.float64)
    out = np.empty_like(grid)
    for i, t in enumerate(transforms.astype(np.float64)):
        sx, sy = t[0] * xs + t[1] * ys + t[2], t[3] * xs + t[4] * ys + t[5]
        x0, y0 = np.floor(sx), np.floor(sy)
        fx, fy = sx - x0, sy - y0

        def at(yy, xx):
            inside = (yy >= 0) & (yy < 28) & (xx >= 0) & (xx < 28)
            yi, xi = np.clip(yy + 1, 0, 29).astype(int), np.clip(xx + 1, 0, 29).astype(int)
            return np.where(inside, padded[i][yi, xi], 0.0)
        out[i] = ((1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1))
                  + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1)))
    return out.reshape(-1, 784)


def tf_warp(x: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    return tf_feeding.warp(tf.constant(x), tf.constant(transforms)).numpy()


def torch_warp(x: np.ndarray, transforms: np.ndarray, device: str = "cpu") -> np.ndarray:
    out = torch_feeding.warp(torch.from_numpy(x).to(device),
                             torch.from_numpy(transforms).to(device))
    return out.cpu().numpy()


@pytest.mark.parametrize("augment", [AUGMENT, STRONG])
@pytest.mark.parametrize("device", DEVICES)
def test_tf_and_torch_warp_alike_and_as_the_reference(digits, augment, device):
    """Max abs diff <= 1e-5 on [0, 1] pixels (measured: 5.7e-6; see the module's note)."""
    x = digits[0][:300].astype(np.float32) / 255
    transforms = plan.view_transforms(len(x), augment, seed=0, copy=1)
    reference = bilinear(x, transforms)
    ours, theirs = torch_warp(x, transforms, device), tf_warp(x, transforms)
    assert np.abs(theirs - reference).max() <= TOLERANCE
    assert np.abs(ours - reference).max() <= TOLERANCE
    assert np.abs(ours - theirs).max() <= TOLERANCE
    assert np.abs(ours - x).mean() > 0.02                    # they really moved


@pytest.mark.parametrize("device", DEVICES)
def test_a_whole_pixel_shift_moves_the_image_and_fills_zeros(device):
    x = np.random.default_rng(0).random((1, 784), dtype=np.float32)
    # Output (x, y) samples input (x - 3, y + 1): right by 3, up by 1.
    shift = np.array([[1, 0, -3, 0, 1, 1, 0, 0]], np.float32)
    expected = np.zeros((28, 28), np.float32)
    expected[:27, 3:] = x.reshape(28, 28)[1:, :25]
    for warped in (tf_warp(x, shift), torch_warp(x, shift, device)):
        np.testing.assert_allclose(warped.reshape(28, 28), expected, atol=TOLERANCE)


@pytest.mark.parametrize("device", DEVICES)
def test_warp_images_agree_within_one_grey_level(digits, device):
    images = digits[0][:500]
    transforms = plan.view_transforms(len(images), STRONG, seed=2, copy=3)
    ours = torch_feeding.warp_images(images, transforms, torch.device(device))
    theirs = tf_feeding.warp_images(images, transforms)
    assert ours.dtype == theirs.dtype == np.uint8 and ours.shape == images.shape
    assert np.abs(ours.astype(int) - theirs).max() <= 1
    expected = np.clip(np.rint(bilinear(images / 255.0, transforms) * 255), 0, 255)
    assert np.abs(theirs - expected).max() <= 1


def index_images(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Image i holds the value i in every pixel, and label i: batches show their indices."""
    index = np.arange(n, dtype=np.uint8)
    return np.repeat(index[:, None], 784, axis=1), index


@pytest.mark.parametrize("device", DEVICES)
def test_tf_and_torch_feed_the_same_batches_epoch_after_epoch(device):
    images, labels = index_images(50)
    fed = torch_feeding.TrainingSet(images, labels, 8, 7, None, torch.device(device))
    tf_batches = iter(tf_feeding.training_batches(images, labels, 8, 7, 1, 4))
    for epoch in range(1, 4):
        expected = np.random.default_rng([1, 7, epoch]).permutation(50)   # the plan's stream
        positions = 0
        for x, y in fed.epoch(epoch):
            tf_x, tf_y = next(tf_batches)
            want = expected[positions:positions + len(y)]
            positions += len(y)
            np.testing.assert_array_equal(y.cpu().numpy(), want)
            np.testing.assert_array_equal(tf_y.numpy(), want)
            np.testing.assert_array_equal(x.cpu().numpy(), tf_x.numpy())   # same scaling
            np.testing.assert_array_equal(np.rint(x.cpu().numpy()[:, 0] * 255), want)
        assert positions == 50
    assert next(tf_batches, None) is None


@pytest.mark.parametrize("device", DEVICES)
def test_augmented_batches_agree_between_tf_and_torch(digits, device):
    images, labels = digits[0][:100], digits[1][:100]
    fed = torch_feeding.TrainingSet(images, labels, 32, 3, AUGMENT, torch.device(device))
    tf_batches = iter(tf_feeding.training_batches(images, labels, 32, 3, 0, 2, AUGMENT))
    for epoch in range(2):
        for x, y in fed.epoch(epoch):
            tf_x, tf_y = next(tf_batches)
            np.testing.assert_array_equal(y.cpu().numpy(), tf_y.numpy())
            assert np.abs(x.cpu().numpy() - tf_x.numpy()).max() <= TOLERANCE


@pytest.mark.parametrize("device", DEVICES)
def test_torch_moves_the_training_set_to_the_device_once(monkeypatch, device):
    """The images cross once; per epoch only the plan (order and transforms) does."""
    crossings = []
    real = torch_feeding.on_device
    monkeypatch.setattr(torch_feeding, "on_device",
                        lambda array, dev: crossings.append(array.shape) or real(array, dev))
    images, labels = index_images(40)
    fed = torch_feeding.TrainingSet(images, labels, 8, 0, AUGMENT, torch.device(device))
    stored = fed.images
    assert stored.device.type == device and stored.dtype == torch.uint8
    for epoch in range(3):
        for x, y in fed.epoch(epoch):
            assert x.device.type == y.device.type == device
    assert fed.images is stored
    assert crossings == [(40, 784), (40,)] + [(40,), (40, 8)] * 3


class FirstPixel(torch.nn.Module):
    """A stand-in net: ten logits, each the image's first pixel; it records batch sizes."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append((len(x), x.device.type))
        return torch.stack([x[:, 0]] * 10, dim=1)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_predictor_reads_on_device_slices_in_file_order(device):
    images, _ = index_images(10)
    model = FirstPixel()
    logits = torch_feeding.batched_predictor(model, 4, torch.device(device))(images)
    assert model.seen == [(4, device), (4, device), (2, device)] and not model.training
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits[:, 0], np.arange(10) / 255.0, rtol=1e-6)


def test_torch_feeding_loads_no_tensorflow():
    code = ("import numpy as np, torch\n"
            "from job.config import AugmentConfig\n"
            "from job.styles.torch import feeding\n"
            "x = np.zeros((10, 784), np.uint8)\n"
            "fed = feeding.TrainingSet(x, np.zeros(10, np.uint8), 4, 0,"
            " AugmentConfig(rotation_degrees=5.0), torch.device('cpu'))\n"
            "[b for b in fed.epoch(0)]")
    assert loaded_after(code, ("tensorflow", "keras")) == []
