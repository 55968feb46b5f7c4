"""Test-time augmentation (`predict.tta: N`): a model's softmax averaged over each image
and N distorted copies of it.

The copies' rotation, zoom and shift are drawn in NumPy (`job.data.plan.view_transforms`,
stateless in `predict.seed` and the copy number, inside `train.augment`'s ranges) and
applied by each worker with its own style's warp, so every model sees the same views; the
worker saves each view's logits as `<set>@view<k>`, and the average is taken here.
"""

from __future__ import annotations

import numpy as np

from job.candidates.ensemble import mean_probabilities


def view_key(image_set: str, copy: int) -> str:
    """The logits key of TTA copy `copy` (1-based) of an image set: val@view2."""
    return f"{image_set}@view{copy}"


def averaged(logits: dict[str, np.ndarray], image_set: str, copies: int) -> np.ndarray:
    """Logits whose softmax is the mean over the set's plain and `copies` views' softmaxes."""
    return mean_probabilities([logits[image_set]] + [logits[view_key(image_set, k)]
                                                     for k in range(1, copies + 1)])
