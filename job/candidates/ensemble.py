"""Ensembles: candidates for "best" built from trained models, judged like any model.

`ensemble` averages the softmax outputs of chosen models. `bag-<model>` averages
copies of one model, each fit on its own random split of the training rows and
early-stopped on the rest of them (Deotte's recipe; job.train.models). The outer
validation split stays out of every copy's fitting and early stopping, so the bag is
judged on data none of its members saw; a plain ensemble's members were early-stopped
on that split, which flatters it slightly (report.md says so).
"""

from __future__ import annotations

import numpy as np

from job.train.results import ModelRow


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def mean_probabilities(logits: list[np.ndarray]) -> np.ndarray:
    """Logits whose softmax is the mean of the given logits' softmaxes."""
    mean = np.mean([softmax(values) for values in logits], axis=0)
    return np.log(mean + 1e-30).astype(np.float32)


def averaging(members: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The members' logits averaged set by set (validation, test, each TTA view)."""
    return {key: mean_probabilities([m[key] for m in members]) for key in members[0]}


def ensemble_row(name: str, members: list[ModelRow], scores: dict) -> ModelRow:
    """An average's row: summed cost, its own scores, its members."""
    return ModelRow(name, "ensemble", "ensemble", params=sum(m.params for m in members),
                    epochs_run=sum(m.epochs_run for m in members), best_epoch=None,
                    val_loss=scores["val_loss"], val_accuracy=scores["val_accuracy"],
                    train_seconds=round(sum(m.train_seconds for m in members), 3),
                    seconds_per_epoch=None, members=[m.name for m in members])
