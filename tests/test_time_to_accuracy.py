"""scripts/time_to_accuracy.py, `make bench`'s time-to-accuracy table: its data in the
competition's layout, its FLOP arithmetic, its scoring, and (slow-marked) a real run of
the keras-io example and a config on a few hundred rows. Nothing asserts on a speed."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.project import script_module

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tta():
    """scripts/time_to_accuracy.py as a module."""
    return script_module("time_to_accuracy")


def write_idx(path: Path, array: np.ndarray) -> None:
    """MNIST's idx format by its definition: 0, 0, type 0x08 (uint8), the number of
    dimensions, each dimension big-endian, then the bytes; gzipped as Debian ships it."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_fashion_mnist_files_are_read_and_cut_to_the_rows_asked(tta, tmp_path):
    rng = np.random.default_rng(0)
    images = {n: rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) for n in (50, 20)}
    labels = {n: rng.integers(0, 10, n, dtype=np.uint8) for n in (50, 20)}
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images[50])
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels[50])
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images[20])
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels[20])
    train, train_labels, test, test_labels = tta.fashion(tmp_path, 30, 12)
    assert train.shape == (30, 784) and (train == images[50][:30].reshape(30, 784)).all()
    assert (train_labels == labels[50][:30]).all() and (test_labels == labels[20][:12]).all()
    assert (test == images[20][:12].reshape(12, 784)).all()
    with pytest.raises(SystemExit, match="apt-get install dataset-fashion-mnist"):
        tta.fashion(tmp_path / "missing", 30, 12)


def test_the_csvs_are_what_the_job_reads_and_the_submission_is_scored(tta, tmp_path):
    from job.data.arrays import load_arrays
    rng = np.random.default_rng(1)
    train, labels = rng.integers(0, 256, (40, 784), dtype=np.uint8), np.arange(40) % 10
    test = rng.integers(0, 256, (8, 784), dtype=np.uint8)
    tta.write_competition(tmp_path / "data", train, labels, test)
    loaded = load_arrays(tmp_path / "data")
    assert (loaded.train_labels == labels).all() and (loaded.test_images.reshape(8, 784)
                                                      == test).all()
    held_out = np.array([1, 2, 3, 4, 5, 6, 7, 8])
    (tmp_path / "s.csv").write_text("ImageId,Label\n" + "".join(
        f"{i},{label}\n" for i, label in enumerate([1, 2, 3, 0, 5, 6, 0, 8], 1)))
    assert tta.scored(tmp_path / "s.csv", held_out) == 6 / 8


def test_flops_per_image_of_the_keras_io_example_by_hand(tta):
    from job.config import CNNSpec
    # 3x3 valid convs: 26x26x9x1x32, pool to 13, 11x11x9x32x64, pool to 5, 5x5x64 -> 10.
    macs = 26 * 26 * 9 * 32 + 11 * 11 * 9 * 32 * 64 + 5 * 5 * 64 * 10
    spec = CNNSpec(filters=(32, 64), convs_per_block=1, padding="valid", dense=())
    assert tta.cnn_macs(spec) == macs == 2_440_960
    assert tta.mflop_of(tta.RECIPES["keras-io"], []) == pytest.approx(6 * macs / 1e6)


def test_the_table_divides_each_time_by_the_keras_io_examples(tta):
    Result = tta.Result
    baseline = Result("keras-io", 14.6, 20.0, 0.88)
    rows = tta.table([baseline, Result("fast", 25.4, 30.0, 0.90),
                      Result("default", error="exit 2: boom")], baseline)
    assert rows[1].split() == ["keras-io", "14.6", "20.0", "0.8800", "1.00x"]
    assert rows[2].split() == ["fast", "25.4", "30.0", "0.9000", "1.50x"]
    assert rows[3].split()[:2] == ["default", "failed:"]


@pytest.mark.slow   # ~1 min: the keras-io example's 15 epochs and the fast config's
def test_a_run_times_each_recipe_to_its_scored_submission(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "time_to_accuracy.py"), "--data", "digits",
         "--rows", "400", "200", "--recipes", "keras-io,fast", "--workdir", "work",
         "--out", "tta.json"], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = json.loads((tmp_path / "tta.json").read_text())
    assert [r["recipe"] for r in found["results"]] == ["keras-io", "fast"]
    for r in found["results"]:
        assert not r["error"] and r["seconds"] > 0 and 0.1 < r["accuracy"] <= 1
        assert r["curves"] and all(len(points) >= 1 for points in r["curves"].values())
    assert (tmp_path / "tta.png").stat().st_size > 1000
    assert list((tmp_path / "work" / "tensorboard").rglob("events.out.tfevents.*"))
    assert "time vs keras-io" in done.stdout
