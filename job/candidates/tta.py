"""Test-time augmentation (`predict.tta: N`): a model's softmax averaged over each image
and N distorted copies of it.

The copies come from the training augmentation's own `distort`, inside its ranges
(`train.augment`), drawn statelessly from (`predict.seed`, copy number): the same images
for every model, style and run. They are rounded back to uint8 pixels, so any predictor
(every style, an ensemble, a bag) takes them as it takes the originals.
"""

from __future__ import annotations

import numpy as np

from job.config import AugmentConfig
from job.candidates.ensemble import fingerprint, mean_probabilities
from job.train.task import Predictor


def distorted_copy(images: np.ndarray, augment: AugmentConfig, seed: int,
                   copy: int) -> np.ndarray:
    """Copy `copy` (1-based) of uint8 (N, 784) images: each image rotated, zoomed and
    shifted by its own draw from the augmentation's ranges."""
    import tensorflow as tf

    from job.styles.tf import feeding

    x = feeding.to_model_input(tf.constant(images))
    seed_pair = tf.constant([seed, copy], tf.int64)
    out = feeding.distort(x, augment, seed_pair).numpy()
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


class Views:
    """The distorted copies of each image set asked for, drawn once and shared by every
    model the run scores (validation, test, held-out labels)."""

    def __init__(self, augment: AugmentConfig, copies: int, seed: int):
        if not augment.active:
            raise ValueError("test-time augmentation needs train.augment ranges")
        self.augment, self.copies, self.seed = augment, copies, seed
        self._drawn: dict[str, list[np.ndarray]] = {}

    def of(self, images: np.ndarray) -> list[np.ndarray]:
        """`images` and its distorted copies, the originals first."""
        key = fingerprint(images)
        if key not in self._drawn:
            self._drawn[key] = [images] + [
                distorted_copy(images, self.augment, self.seed, copy)
                for copy in range(1, self.copies + 1)]
        return self._drawn[key]


def augmenting(predict: Predictor, views: Views) -> Predictor:
    """A predictor whose logits are the log of `predict`'s mean softmax over the views."""
    def predict_logits(images: np.ndarray) -> np.ndarray:
        return mean_probabilities([predict(view) for view in views.of(images)])
    return predict_logits
