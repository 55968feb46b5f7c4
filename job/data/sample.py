"""The embedded sample: scikit-learn's 1,797 real 8x8 digits in the Kaggle layout.

No download works in here, so runs that cannot reach Kaggle train on these. They
are upscaled and framed like MNIST digits (a 20x20 digit centred in 28x28), split
80/20 with a fixed seed, and written as train.csv, test.csv, sample_submission.csv
plus test_labels.csv, which holds the true test labels so predictions can be scored.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from job import competition
from job.errors import DataError

# The sample keeps its true test labels, so its predictions can be scored.
TEST_LABELS_CSV = "test_labels.csv"
FILES = (*competition.FILES, TEST_LABELS_CSV)
TEST_FRACTION = 0.2
SEED = 0  # fixed: the sample must be the same bytes on every machine
HEADER = competition.SUBMISSION_HEADER.split(",")
_PIXELS = [f"pixel{i}" for i in range(competition.PIXELS)]


def ensure_sample(folder: Path) -> Path:
    """Return `folder` holding the sample, generating it there if it is not complete."""
    if _is_complete(folder):
        return folder
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the target and renamed into place, so an interrupted run
        # never leaves a half-written sample that a later run would take as complete.
        temp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        try:
            _write_sample(temp)
            temp.chmod(0o755)  # mkdtemp makes it private; the sample is not
            _move_into_place(temp, folder)
        finally:
            shutil.rmtree(temp, ignore_errors=True)
    except OSError as error:
        raise DataError(f"{folder}: cannot write the embedded sample ({error})") from None
    return folder


def _write_sample(folder: Path) -> None:
    """Write the four sample CSVs into an existing `folder`."""
    images, labels = framed_digits()
    train, test = _split(labels)
    ids = np.arange(1, len(test) + 1)
    write_csv(folder / competition.TRAIN_CSV, ["label", *_PIXELS],
               np.column_stack([labels[train], images[train]]))
    write_csv(folder / competition.TEST_CSV, _PIXELS, images[test])
    write_csv(folder / competition.SAMPLE_SUBMISSION_CSV, HEADER,
               np.column_stack([ids, np.zeros_like(ids)]))
    write_csv(folder / TEST_LABELS_CSV, HEADER,
               np.column_stack([ids, labels[test]]))


def framed_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as uint8 (N, 784) images framed like MNIST, and their labels."""
    from scipy.ndimage import zoom  # imported here: nothing heavy at import time
    from sklearn.datasets import load_digits

    digits = load_digits()
    # 8x8 -> 20x20 with linear interpolation; values stay within the 0..16 of the source.
    big = zoom(digits.images, (1, 20 / 8, 20 / 8), order=1)
    big = np.clip(np.rint(big * (255 / 16)), 0, 255).astype(np.uint8)
    side = competition.IMAGE_SIDE
    framed = np.zeros((len(big), side, side), np.uint8)
    framed[:, 4:24, 4:24] = big  # MNIST centres a 20x20 digit in a 28x28 frame
    return framed.reshape(len(big), competition.PIXELS), digits.target.astype(np.uint8)


def _split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the train and test rows: stratified, the same on every run."""
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(len(labels)), test_size=TEST_FRACTION,
                            stratify=labels, random_state=SEED)


def write_csv(path: Path, header: list[str], rows: np.ndarray) -> None:
    """Write integers under a header, comma-separated, one row a line."""
    lines = [",".join(header), *(",".join(map(str, row)) for row in rows.tolist())]
    path.write_text("\n".join(lines) + "\n", newline="\n")


def _is_complete(folder: Path) -> bool:
    """True when all the sample's files are there (they only ever appear together)."""
    return all((folder / name).is_file() for name in FILES)


def _move_into_place(temp: Path, folder: Path) -> None:
    """Rename the finished sample to `folder`, replacing an incomplete one."""
    if _is_complete(folder):  # another run finished first; its sample is the same bytes
        return
    if folder.exists():
        others = {path.name for path in folder.iterdir()} - {*FILES, ".cache"}
        if others:  # not only what a sample and load_arrays' cache would leave behind
            raise DataError(f"{folder}: holds an incomplete sample and other files "
                            f"({', '.join(sorted(others))}); move them away or pick "
                            "another data.sample_dir")
        shutil.rmtree(folder)
    try:
        os.replace(temp, folder)
    except OSError:
        if not _is_complete(folder):  # another run may have just put its sample there
            raise
