"""Ensembles: candidates for "best" built from trained models, judged like any model.

`ensemble` averages the softmax outputs of chosen models. `bag-<model>` averages
copies of one model, each fit on its own random split of the training rows and
early-stopped on the rest of them (Deotte's recipe). The outer validation split stays
out of every copy's fitting and early stopping, so the bag is judged on data none of
its members saw; a plain ensemble's members were early-stopped on that split, which
flatters it slightly (report.md says so).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np

from job.data.arrays import split_validation
from job.train.task import Predictor, Split, Task


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def fingerprint(images: np.ndarray) -> str:
    """The sha256 of an image set's pixels: the same images, wherever they come from."""
    return hashlib.sha256(np.ascontiguousarray(images).data).hexdigest()


def remembering(predict: Predictor) -> Predictor:
    """`predict` computing each image set's logits once: validation scoring, the saved
    logits, TTA, the ensembles over it and the submission ask for the same sets again."""
    seen: dict[str, np.ndarray] = {}

    def predict_logits(images: np.ndarray) -> np.ndarray:
        key = fingerprint(images)
        if key not in seen:
            seen[key] = predict(images)
        return seen[key]
    return predict_logits


def mean_probabilities(logits: list[np.ndarray]) -> np.ndarray:
    """Logits whose softmax is the mean of the given logits' softmaxes."""
    mean = np.mean([softmax(values) for values in logits], axis=0)
    return np.log(mean + 1e-30).astype(np.float32)


def averaging(members: list[Predictor]) -> Predictor:
    """A predictor whose logits are the log of the members' mean probabilities."""
    def predict_logits(images: np.ndarray) -> np.ndarray:
        return mean_probabilities([predict(images) for predict in members])
    return predict_logits


def bag_name(model: str, copy: int) -> str:
    return f"{model}-bag{copy}"


def bag_tasks(task: Task, copies: int) -> list[Task]:
    """Copies of a model's task, each with its own name, folders and initial weights."""
    return [replace(task, name=bag_name(task.name, i),
                    train=replace(task.train, seed=task.train.seed + i),
                    logdir=task.logdir.with_name(bag_name(task.name, i)),
                    checkpoint_dir=task.checkpoint_dir.with_name(bag_name(task.name, i))
                    if task.checkpoint_dir else None)
            for i in range(1, copies + 1)]


def bag_split(split: Split, copy: int, holdout: float, seed: int) -> Split:
    """Copy `copy`'s own fit/early-stopping split of the training rows (stratified)."""
    fit_x, fit_y, stop_x, stop_y = split_validation(split.train_x, split.train_y, holdout,
                                                    seed + 7919 * copy)
    return Split(fit_x, fit_y, stop_x, stop_y)


def ensemble_row(name: str, members: list[dict], scores: dict) -> dict:
    """A metrics.json row for an ensemble: summed cost, its own scores, its members."""
    return {"name": name, "arch": "ensemble", "style": "ensemble",
            "params": sum(m["params"] for m in members),
            "epochs_run": sum(m["epochs_run"] for m in members), "best_epoch": None,
            **scores, "train_seconds": round(sum(m["train_seconds"] for m in members), 3),
            "seconds_per_epoch": None, "history": [], "members": [m["name"] for m in members]}
