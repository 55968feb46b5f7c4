"""Shared fixtures: small real digits as uint8 arrays, a competition data folder, a quiet TF."""

import os

import numpy as np
import pytest
from helpers.csv_files import make_images, write_test, write_train

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits blown up to 28x28 uint8, flattened like train.csv rows."""
    from sklearn.datasets import load_digits
    bunch = load_digits()
    big = np.kron(bunch.images, np.ones((3, 3)))            # 24x24
    framed = np.pad(big, ((0, 0), (2, 2), (2, 2)))          # 28x28
    images = (framed * (255 / 16)).round().astype(np.uint8).reshape(len(framed), 784)
    return images, bunch.target.astype(np.uint8)


@pytest.fixture
def competition(tmp_path):
    """A data folder with a 20-row train.csv and a 6-row test.csv."""
    labels = np.arange(20, dtype=np.uint8) % 10
    write_train(tmp_path / "train.csv", make_images(20), labels)
    write_test(tmp_path / "test.csv", make_images(6, seed=1))
    return tmp_path
