"""The competition's data as arrays: read the CSVs once, then from the cache; split off validation.

Parsing lives in csv_reader and the cache in cache; this module ties them together
and is what the rest of the job imports.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from job.competition import TEST_CSV, TRAIN_CSV
from job.data import cache, csv_reader
from job.errors import DataError


@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays field by field is ambiguous
class Arrays:
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    hashes: dict[str, str]


def read_train_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 784) and labels (N,), both uint8, from a Kaggle train.csv."""
    return csv_reader.parse_train(path, csv_reader.read_bytes(path))


def read_test_csv(path: Path) -> np.ndarray:
    """Images (N, 784) uint8 from a Kaggle test.csv."""
    return csv_reader.parse_test(path, csv_reader.read_bytes(path))


def read_sample_submission(path: Path) -> np.ndarray:
    """The ImageId column (int64) of a Kaggle sample_submission.csv."""
    return csv_reader.parse_sample_submission(path, csv_reader.read_bytes(path))


def load_arrays(data_dir: Path) -> Arrays:
    """train.csv and test.csv from `data_dir`, parsed once and then read from its cache.

    The cache (see job.data.cache) is keyed by both files' sha256, so a changed CSV is
    parsed again; each hash is remembered while the file's size, times and inode hold.
    """
    paths = {name: data_dir / name for name in (TRAIN_CSV, TEST_CSV)}
    cache_dir = data_dir / ".cache"
    stats = {name: cache.fingerprint(path) for name, path in paths.items()}
    hashes = cache.recall_hashes(cache_dir, stats)
    arrays = _read_cached(cache_dir, hashes) if len(hashes) == len(paths) else None
    if arrays is None:
        cache.wait_to_remember(stats)
        read_at = time.time_ns()
        blobs = {name: csv_reader.read_bytes(path) for name, path in paths.items()}
        arrays = _parse_or_reuse(paths, blobs, cache_dir)
        cache.remember_hashes(cache_dir, stats, arrays.hashes, read_at)
    return arrays


def _parse_or_reuse(paths: dict[str, Path], blobs: dict[str, bytes], cache_dir: Path) -> Arrays:
    """The arrays cached for these bytes, or else parsed from them and cached."""
    hashes = None
    if cache.has_cached(cache_dir):  # one of them may hold these very files
        hashes = cache.hash_all(blobs)
        arrays = _read_cached(cache_dir, hashes)
        if arrays is not None:
            return arrays
    with ThreadPoolExecutor(1) as pool:
        # Nothing to look up: hash alongside the parsing, which mostly waits on numpy.
        hashing = pool.submit(lambda: hashes or cache.hash_all(blobs))
        images, labels = csv_reader.parse_train(paths[TRAIN_CSV], blobs[TRAIN_CSV])
        test_images = csv_reader.parse_test(paths[TEST_CSV], blobs[TEST_CSV])
        arrays = Arrays(images, labels, test_images, hashing.result())
    cache.write_cached(cache_dir, arrays.hashes, {"train_images": images, "train_labels": labels,
                                                  "test_images": test_images})
    return arrays


def _read_cached(cache_dir: Path, hashes: dict[str, str]) -> Arrays | None:
    """The arrays cached for files with these hashes, or None."""
    members = cache.read_cached(cache_dir, hashes)
    return None if members is None else Arrays(**members, hashes=dict(hashes))


def split_validation(images: np.ndarray, labels: np.ndarray, val_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out a stratified `val_fraction` of the examples, the same ones for a given seed."""
    from sklearn.model_selection import train_test_split  # slow import; only runs need it

    n = len(labels)
    digits, counts = np.unique(labels, return_counts=True)
    n_val = int(np.ceil(val_fraction * n))  # how train_test_split sizes the held-out part
    if not 0 < val_fraction < 1:
        raise DataError(f"data.val_fraction: expected a fraction between 0 and 1, "
                        f"got {val_fraction}")
    if n == 0 or counts.min() < 2:
        lacking = f"digit {digits[counts.argmin()]} has only 1 example" if n else "no examples"
        raise DataError(f"data.val_fraction: cannot stratify the validation split: {lacking}; "
                        "each digit needs at least 2")
    if min(n_val, n - n_val) < len(digits):
        raise DataError(f"data.val_fraction: {val_fraction} of {n} examples leaves {n_val} for "
                        f"validation and {n - n_val} for training; each needs one of each of "
                        f"the {len(digits)} digits, so change data.val_fraction or use more data")
    train_x, val_x, train_y, val_y = train_test_split(
        images, labels, test_size=val_fraction, stratify=labels, random_state=seed)
    return train_x, train_y, val_x, val_y


def read_test_labels(path: Path) -> np.ndarray:
    """The Label column of the embedded sample's test_labels.csv (ImageId,Label)."""
    ids = read_sample_submission(path)   # same layout; validates header, ids and digits
    labels = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)[:, 1]
    if len(labels) != len(ids):
        raise DataError(f"{path}: expected one label per ImageId")
    return labels.astype(np.uint8)
