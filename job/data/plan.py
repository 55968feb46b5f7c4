"""What every style trains on, framework-free: each epoch's order and each image's distortion."""

# NumPy only, so a torch worker and a TensorFlow worker compute the same plan without
# importing each other's framework. Stateless: a pure function of the seed and (epoch,
# batch) or (copy), so a resumed run replays it and another process agrees.

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from job.competition import IMAGE_SIDE as SIDE
from job.config import AugmentConfig

CENTRE = (SIDE - 1) / 2   # 13.5: rotation and zoom are about the middle of the pixel grid

# One distinct first word per use, so no two uses share a random stream: SeedSequence
# pads a short key with zeros, so [seed, epoch] and [seed, epoch, 0] would be the same.
_ORDER, _AUGMENT, _VIEW = 1, 2, 3


@dataclass(frozen=True)
class EpochPlan:
    """One epoch: the image index at each position, and (if augmenting) its transform."""
    order: np.ndarray                 # (n,) int64, a permutation of range(n)
    transforms: np.ndarray | None     # (n, 8) float32, or None without augmentation


@dataclass(frozen=True)
class Distortions:
    """Per-image parameters: rotation (radians), zoom factor, shift (x, y) in pixels."""
    angle: np.ndarray    # (n,)
    scale: np.ndarray    # (n,)
    shift: np.ndarray    # (n, 2)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches in one epoch; the last, smaller batch is kept so no image is skipped."""
    return -(-n // batch_size)


def steps_per_call(steps_per_epoch: int, wanted: int) -> int:
    """The largest number of steps per compiled call, at most `wanted`, dividing an epoch."""
    # Keras always runs whole executions: with a remainder it would train on the next
    # epoch's first batches, and the styles would no longer see the same data.
    return max(k for k in range(1, min(wanted, steps_per_epoch) + 1) if steps_per_epoch % k == 0)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The permutation of range(n) for one epoch, a pure function of (seed, epoch)."""
    return np.random.default_rng([_ORDER, seed, epoch]).permutation(n)


def draw(n: int, augment: AugmentConfig, key: list[int]) -> Distortions:
    """n images' parameters, uniform within the augmentation's ranges, from `key` alone."""
    rng = np.random.default_rng(key)
    angle = rng.uniform(-1.0, 1.0, n) * np.deg2rad(augment.rotation_degrees)
    scale = 1.0 + rng.uniform(-1.0, 1.0, n) * augment.zoom
    shift = rng.uniform(-1.0, 1.0, (n, 2)) * (augment.shift * SIDE)
    return Distortions(angle, scale, shift)


def batch_distortions(n: int, augment: AugmentConfig, seed: int, epoch: int,
                      batch: int) -> Distortions:
    """The parameters of one training batch of n images, fixed by (seed, epoch, batch)."""
    return draw(n, augment, [_AUGMENT, seed, epoch, batch])


def transforms_of(d: Distortions) -> np.ndarray:
    """(n, 8) float32 inverse maps (output pixel → input point) for ImageProjectiveTransformV3."""
    # p = R(-angle) (p' - c - shift) / scale + c, x the column and y the row: rotate by
    # angle, zoom by scale about the centre c, then move by shift.
    cos, sin = np.cos(d.angle) / d.scale, np.sin(d.angle) / d.scale
    px, py = CENTRE + d.shift[:, 0], CENTRE + d.shift[:, 1]
    zeros = np.zeros_like(cos)
    return np.stack([cos, sin, CENTRE - cos * px - sin * py,
                     -sin, cos, CENTRE + sin * px - cos * py,
                     zeros, zeros], axis=1).astype(np.float32)


def epoch_plan(n: int, batch_size: int, seed: int, epoch: int,
               augment: AugmentConfig | None = None) -> EpochPlan:
    """Epoch `epoch`'s order and, if `augment` is active, every position's transform."""
    # Each batch draws from (seed, epoch, batch) alone, independent of the other batches.
    order = epoch_order(n, seed, epoch)
    if augment is None or not augment.active:
        return EpochPlan(order, None)
    sizes = [min(batch_size, n - start) for start in range(0, n, batch_size)]
    transforms = [transforms_of(batch_distortions(size, augment, seed, epoch, batch))
                  for batch, size in enumerate(sizes)]
    return EpochPlan(order, np.concatenate(transforms) if transforms
                     else np.zeros((0, 8), np.float32))


def view_transforms(n: int, augment: AugmentConfig, seed: int, copy: int) -> np.ndarray:
    """(n, 8) transforms of TTA copy `copy` (1-based) of n images, fixed by (seed, copy)."""
    if copy < 1:
        raise ValueError(f"copy counts from 1 (0 is the originals), not {copy}")
    return transforms_of(draw(n, augment, [_VIEW, seed, copy]))
