"""Picking the model whose predictions are submitted."""

from __future__ import annotations


def select_best(models: list[dict]) -> dict:
    """Highest val_accuracy; ties go to the lower val_loss, then to config order."""
    if not models:
        raise ValueError("no trained models to choose from")
    return max(enumerate(models),
               key=lambda im: (im[1]["val_accuracy"], -im[1]["val_loss"], -im[0]))[1]
