"""Scores of final predictions, computed by the same numpy code for every style."""

from __future__ import annotations

import numpy as np


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean sparse categorical cross-entropy from logits, computed stably."""
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def score(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Validation loss and accuracy of final predictions, the same code for every style."""
    return {"val_loss": cross_entropy(logits, labels),
            "val_accuracy": float((logits.argmax(axis=1) == labels).mean())}



def add_test_accuracy(models: list[dict], predictors: dict, images: np.ndarray,
                      labels: np.ndarray) -> dict:
    """Each results row gets its model's accuracy on labelled test rows; the best row."""
    for row in models:
        predicted = predictors[row["name"]](images).argmax(axis=1)
        row["test_accuracy"] = float((predicted == labels).mean())
    return max(models, key=lambda m: m["test_accuracy"])
