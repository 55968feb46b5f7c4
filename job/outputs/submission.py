"""submission.csv: the model whose predictions go in, and the competition's format,
checked before the file is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from job.competition import NUM_CLASSES, SUBMISSION_HEADER as HEADER
from job.data.arrays import read_sample_submission
from job.errors import DataError
from job.system.files import write_atomic


def select_best(models: list[dict]) -> dict:
    """Highest val_accuracy; ties go to the lower val_loss, then to config order."""
    if not models:
        raise ValueError("no trained models to choose from")
    return max(enumerate(models),
               key=lambda im: (im[1]["val_accuracy"], -im[1]["val_loss"], -im[0]))[1]


def format_submission(labels: np.ndarray) -> str:
    """`ImageId,Label` then one row per test image, ImageId counting from 1."""
    rows = [HEADER] + [f"{i},{int(label)}" for i, label in enumerate(labels, start=1)]
    return "\n".join(rows) + "\n"


def check_against_sample(labels: np.ndarray, sample_path: Path) -> None:
    """The submission must list exactly the ImageIds of sample_submission.csv."""
    if not sample_path.is_file():
        return
    ids = read_sample_submission(sample_path)
    expected = np.arange(1, len(labels) + 1)
    if len(ids) != len(labels) or not np.array_equal(ids, expected):
        raise DataError(
            f"{sample_path}: lists {len(ids)} ImageIds but test.csv has {len(labels)} images "
            "(ImageIds 1..N expected); the data folder mixes files from different downloads")


def write_submission(path: Path, labels: np.ndarray, sample_path: Path) -> None:
    """Validate predicted labels and write them atomically."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0 or labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise DataError(f"{path}: predictions must be one digit 0..9 per test image")
    check_against_sample(labels, sample_path)
    write_atomic(path, format_submission(labels))
