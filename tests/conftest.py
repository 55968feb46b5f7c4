"""Shared fixtures: small real digits as uint8 arrays, a competition data folder, a quiet TF,
a throwaway PostgreSQL server."""

import os
from uuid import uuid4

import numpy as np
import pytest
from helpers.csv_files import make_images, write_test, write_train
from helpers.postgres import find_bin_dir, throwaway_server

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# The job's processes never hold both frameworks (each model's worker imports one), but a
# test process does: triton (torch.compile's and torch.optim's kernel compiler) must load
# before TensorFlow there, or torch.compile in a test crashes the interpreter (both bundle
# LLVM; TF 2.21, triton 3.8, torch 2.14).
try:
    import triton  # noqa: F401
except ImportError:
    pass


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


@pytest.fixture(scope="session")
def postgres():
    """One throwaway PostgreSQL server on 127.0.0.1 for the whole session (a start costs ~1 s)."""
    if find_bin_dir() is None:
        missing = ("PostgreSQL server binaries not installed"
                   " (no initdb and pg_ctl in PG_BIN_DIR or /usr/lib/postgresql/*/bin)")
        # CI sets this after installing the server, so a broken install fails instead of skipping in silence.
        if os.environ.get("JOB_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{missing}, but JOB_REQUIRE_POSTGRES=1: install them with apt-get install -y postgresql",
                        pytrace=False)
        pytest.skip(f"{missing}: apt-get install -y postgresql to run the PostgreSQL tests")
    with throwaway_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres):
    """The URL of a fresh empty database on the session's server, so tests never see each other's tables."""
    return postgres.new_database(f"t{uuid4().hex[:12]}")
