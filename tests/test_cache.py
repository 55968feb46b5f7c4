"""The parsed-array cache: reused while the CSVs are unchanged, rebuilt when they or it change."""

import numpy as np
import pytest
from helpers.csv_files import make_images, write_train

from job.data import arrays as data

from job.data import cache, csv_reader


def forbid_parsing(monkeypatch):
    """Make any parse of a CSV fail the test."""
    def fail(*args):
        raise AssertionError("parsed a CSV although the cache holds it")
    monkeypatch.setattr(csv_reader, "parse_train", fail)
    monkeypatch.setattr(csv_reader, "parse_test", fail)


def test_second_load_reads_the_cache_instead_of_parsing(competition, monkeypatch):
    first = data.load_arrays(competition)
    forbid_parsing(monkeypatch)
    second = data.load_arrays(competition)
    np.testing.assert_array_equal(second.train_images, first.train_images)
    np.testing.assert_array_equal(second.train_labels, first.train_labels)
    np.testing.assert_array_equal(second.test_images, first.test_images)
    assert second.hashes == first.hashes


def test_files_written_just_before_are_not_even_read_the_next_time(competition, monkeypatch):
    if (competition / "test.csv").stat().st_ctime_ns % 10**9 == 0:
        pytest.skip("whole-second timestamps: hashes are remembered only at the next run")
    first = data.load_arrays(competition)
    forbid_parsing(monkeypatch)
    monkeypatch.setattr(csv_reader, "read_bytes", lambda path: pytest.fail(f"read {path}"))
    assert data.load_arrays(competition).hashes == first.hashes


def test_cached_arrays_can_be_changed_without_changing_the_cache(competition):
    data.load_arrays(competition)
    cached = data.load_arrays(competition)
    expected = cached.train_images.copy()
    cached.train_images[:] = 1
    np.testing.assert_array_equal(data.load_arrays(competition).train_images, expected)


def test_a_changed_csv_is_parsed_again(competition):
    data.load_arrays(competition)
    images = make_images(20, seed=5)  # same size, different pixels
    write_train(competition / "train.csv", images, np.arange(20, dtype=np.uint8) % 10)
    np.testing.assert_array_equal(data.load_arrays(competition).train_images, images)
    assert len(list((competition / ".cache").glob("arrays-*.npz"))) == 1  # the old one is gone


def test_a_same_size_rewrite_is_noticed_with_whole_second_timestamps(competition, monkeypatch):
    real_fingerprint = cache.fingerprint

    def coarse(path):  # as on file systems that keep whole seconds
        size, mtime, ctime, inode = real_fingerprint(path)
        return [size, mtime - mtime % 10**9, ctime - ctime % 10**9, inode]

    monkeypatch.setattr(cache, "fingerprint", coarse)
    assert data.load_arrays(competition).train_images[0, 1] == 255
    path = competition / "train.csv"
    path.write_text(path.read_text().replace(",0,255,7,", ",0,254,7,", 1), newline="")
    assert data.load_arrays(competition).train_images[0, 1] == 254


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_damaged_cache_file_is_parsed_again(competition, damage):
    first = data.load_arrays(competition)
    [cache_file] = (competition / ".cache").glob("arrays-*.npz")
    raw = cache_file.read_bytes()
    cache_file.write_bytes({"garbage": b"not a zip" * 100, "truncated": raw[:len(raw) // 2],
                            "empty": b""}[damage])
    again = data.load_arrays(competition)
    np.testing.assert_array_equal(again.train_images, first.train_images)
    assert cache_file.read_bytes() == raw  # and written anew


def test_the_cache_is_a_plain_npz(competition):
    arrays = data.load_arrays(competition)
    [cache_file] = (competition / ".cache").glob("arrays-*.npz")
    with np.load(cache_file) as saved:
        np.testing.assert_array_equal(saved["train_images"], arrays.train_images)
        np.testing.assert_array_equal(saved["test_images"], arrays.test_images)


def test_an_unwritable_cache_folder_only_costs_the_cache(competition):
    (competition / ".cache").write_text("a file where the cache folder would go")
    arrays = data.load_arrays(competition)
    assert arrays.train_images.shape == (20, 784)
    assert data.load_arrays(competition).test_images.shape == (6, 784)
