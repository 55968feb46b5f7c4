"""The torch style's feeding: the shared plan's batches gathered and warped on the device."""

# No TensorFlow here (a torch worker loads none) and no host copy per batch: the images
# cross to the device once, each epoch's plan (`job.data.plan`) once, batches are gathers.

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from job.competition import IMAGE_SIDE as SIDE
from job.competition import NUM_CLASSES
from job.config import AugmentConfig
from job.data import plan
from job.train.task import Predictor

CENTRE = (SIDE - 1) / 2


def on_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A NumPy array as a tensor on `device`, in one copy (uint8 images stay uint8)."""
    return torch.from_numpy(np.ascontiguousarray(array)).to(device)


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to float32 in [0, 1], as TensorFlow's feeding scales them."""
    return images.float() / 255.0


class TrainingSet:
    """The training set, moved to the device once; each epoch gathered there in plan order."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                 augment: AugmentConfig | None, device: torch.device):
        self.images, self.labels = on_device(images, device), on_device(labels, device).long()
        self.batch_size, self.seed, self.augment, self.device = batch_size, seed, augment, device

    def __len__(self) -> int:
        return len(self.images)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Epoch `epoch`'s (x float32 (batch, 784), y int64) batches, already on the device."""
        drawn = plan.epoch_plan(len(self), self.batch_size, self.seed, epoch, self.augment)
        # The plan crosses to the device once per epoch; batches are slices of it.
        order = on_device(drawn.order, self.device)
        transforms = None if drawn.transforms is None else on_device(drawn.transforms,
                                                                    self.device)
        for start in range(0, len(self), self.batch_size):
            index = order[start:start + self.batch_size]
            x = to_model_input(self.images[index])
            if transforms is not None:
                x = warp(x, transforms[start:start + self.batch_size])
            yield x, self.labels[index]


def evaluation_batches(images: torch.Tensor, labels: torch.Tensor | None,
                       batch_size: int) -> Iterator:
    """Slices of on-device uint8 images (and labels) in file order, scaled to [0, 1]."""
    for start in range(0, len(images), batch_size):
        x = to_model_input(images[start:start + batch_size])
        yield x if labels is None else (x, labels[start:start + batch_size])


def grid_theta(transforms: torch.Tensor) -> torch.Tensor:
    """(batch, 2, 3) affine_grid matrices for (batch, 8) inverse pixel transforms."""
    # With align_corners=True a normalised u is the pixel x = c (u + 1), c = 13.5 (so ±1
    # are the centres of pixels 0 and 27): x_in = a0 x + a1 y + a2 becomes
    # u_in = a0 u + a1 v + (a0 + a1 + a2 / c - 1), and likewise for y.
    a = transforms.float()
    row_x = torch.stack([a[:, 0], a[:, 1], a[:, 0] + a[:, 1] + a[:, 2] / CENTRE - 1], dim=1)
    row_y = torch.stack([a[:, 3], a[:, 4], a[:, 3] + a[:, 4] + a[:, 5] / CENTRE - 1], dim=1)
    return torch.stack([row_x, row_y], dim=1)


def warp(x: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    """(batch, 784) float images resampled through (batch, 8) affine inverse transforms."""
    # Bilinear with zeros padding: TF's CONSTANT fill also reads each out-of-range
    # neighbour as 0, so both styles warp alike. The plan's last two values are always 0
    # (no perspective), which is what lets an affine grid stand for them.
    images = x.reshape(-1, 1, SIDE, SIDE)
    grid = F.affine_grid(grid_theta(transforms), list(images.shape), align_corners=True)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                        align_corners=True)
    return out.reshape(-1, SIDE * SIDE)


@torch.no_grad()
def warp_images(images: np.ndarray, transforms: np.ndarray,
                device: torch.device = torch.device("cpu")) -> np.ndarray:
    """uint8 (N, 784) images warped and rounded back to uint8, as TF's `warp_images`."""
    if np.any(transforms[:, 6:]):
        raise ValueError("only affine transforms (last two values 0) map to a sampling grid")
    out = warp(to_model_input(on_device(images, device)), on_device(transforms, device))
    return np.clip(np.rint(out.cpu().numpy() * 255.0), 0, 255).astype(np.uint8)


def batched_predictor(model: torch.nn.Module, batch_size: int,
                      device: torch.device) -> Predictor:
    """Logits (float32) for uint8 images in file order, eval mode, from on-device slices."""
    def predict_logits(images: np.ndarray) -> np.ndarray:
        model.eval()
        with torch.inference_mode():
            pixels = on_device(images, device)
            out = [model(x).float().cpu() for x in evaluation_batches(pixels, None, batch_size)]
        return torch.cat(out).numpy() if out else np.zeros((0, NUM_CLASSES), np.float32)
    return predict_logits
