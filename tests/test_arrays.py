"""The public data API: reading each CSV, every bad input's message, load_arrays, the split."""

import hashlib

import numpy as np
import pytest
from helpers.csv_files import PIXELS, TEST_HEADER, TRAIN_HEADER, csv_text, make_images, train_lines, \
    with_cell, write_test, write_train

from job.data import arrays as data
from job.errors import DataError


def test_read_train_csv_returns_uint8_images_and_labels(tmp_path):
    images, labels = make_images(12), np.arange(12, dtype=np.uint8) % 10
    path = write_train(tmp_path / "train.csv", images, labels)
    got_images, got_labels = data.read_train_csv(path)
    assert got_images.shape == (12, 784) and got_images.dtype == np.uint8
    assert got_labels.shape == (12,) and got_labels.dtype == np.uint8
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert got_images.flags.c_contiguous


def test_read_test_csv_returns_uint8_images(tmp_path):
    images = make_images(5)
    got = data.read_test_csv(write_test(tmp_path / "test.csv", images))
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, images)


def test_read_sample_submission_returns_the_ids(tmp_path):
    path = tmp_path / "sample_submission.csv"
    path.write_text("ImageId,Label\n1,0\n2,0\n3,0\n")
    ids = data.read_sample_submission(path)
    assert ids.dtype == np.int64
    assert ids.tolist() == [1, 2, 3]


@pytest.mark.parametrize("variant", ["bom", "crlf", "no final newline", "blank trailing lines",
                                     "leading zeros"])
def test_harmless_variations_are_read_the_same(tmp_path, variant):
    images, labels = make_images(4), np.array([1, 2, 3, 4], np.uint8)
    text = csv_text(TRAIN_HEADER, np.column_stack([labels, images]).tolist())
    raw = {
        "bom": b"\xef\xbb\xbf" + text.encode(),
        "crlf": text.replace("\n", "\r\n").encode(),
        "no final newline": text.rstrip("\n").encode(),
        "blank trailing lines": (text + "\n\r\n  \n").encode(),
        # four digits are past the fast path's reach; the line scan still takes them
        "leading zeros": text.replace(",7,", ",007,").replace(",255,", ",0255,").encode(),
    }[variant]
    path = tmp_path / "train.csv"
    path.write_bytes(raw)
    got_images, got_labels = data.read_train_csv(path)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)



LONG_HEADER = "Label," + ",".join(PIXELS)
BAD_TRAIN = [  # (what is wrong, file bytes or None for no file, the message after "<path>")
    ("missing", None,
     ": file not found; put the competition's train.csv there or use data.source: sample"),
    ("empty", b"", ": file is empty; re-download the competition data"),
    ("only whitespace", b"\n\n", ": file is empty; re-download the competition data"),
    ("header only", (TRAIN_HEADER + "\n").encode(),
     ": the file has no data rows, only a header; re-download the competition data"),
    ("wrong header", b"label,pixel0,pixel1\n1,2,3\n",
     ' line 1: expected header label,pixel0..pixel783, found "label,pixel0,pixel1"'),
    ("long wrong header", (LONG_HEADER + "\n").encode(),
     f' line 1: expected header label,pixel0..pixel783, found "{LONG_HEADER[:57]}..."'),
    ("a value short", "\n".join(train_lines()[:4] + [train_lines()[4][:-2]]).encode(),
     " line 5: expected 785 values, found 784"),
    ("a value extra", "\n".join(train_lines()[:3] + [train_lines()[3] + ",0"]).encode(),
     " line 4: expected 785 values, found 786"),
    ("blank line inside", "\n".join(train_lines()[:3] + [""] + train_lines()[3:]).encode(),
     " line 4: expected 785 values, found an empty line"),
    ("not a number", "\n".join(with_cell(train_lines(), 7, 13, "abc")).encode(),
     ' line 7: column pixel12: expected an integer 0..255, found "abc"'),
    ("NaN", "\n".join(with_cell(train_lines(), 3, 1, "NaN")).encode(),
     ' line 3: column pixel0: expected an integer 0..255, found "NaN"'),
    ("a decimal", "\n".join(with_cell(train_lines(), 3, 784, "1.0")).encode(),
     ' line 3: column pixel783: expected an integer 0..255, found "1.0"'),
    ("a space", "\n".join(with_cell(train_lines(), 2, 5, " 1")).encode(),
     ' line 2: column pixel4: expected an integer 0..255, found " 1"'),
    ("empty cell", "\n".join(with_cell(train_lines(), 7, 13, "")).encode(),
     " line 7: column pixel12: expected an integer 0..255, found an empty cell"),
    ("pixel too big", "\n".join(with_cell(train_lines(), 7, 4, "300")).encode(),
     " line 7: column pixel3: expected an integer 0..255, found 300"),
    ("pixel negative", "\n".join(with_cell(train_lines(), 7, 4, "-1")).encode(),
     " line 7: column pixel3: expected an integer 0..255, found -1"),
    ("label too big", "\n".join(with_cell(train_lines(), 9, 0, "10")).encode(),
     " line 9: column label: expected a digit 0..9, found 10"),
    ("label not a number", "\n".join(with_cell(train_lines(), 9, 0, "seven")).encode(),
     ' line 9: column label: expected a digit 0..9, found "seven"'),
    ("first of two problems", "\n".join(with_cell(with_cell(train_lines(), 9, 0, "10"),
                                                  4, 2, "x")).encode(),
     ' line 4: column pixel1: expected an integer 0..255, found "x"'),
    ("not UTF-8", "\n".join(train_lines()[:5]).encode() + b"\n0,\xff" + b",0" * 783,
     " line 6: expected UTF-8 text, found byte 0xff at byte 3"),
    ("a lone CR", "\n".join(with_cell(train_lines(), 3, 8, "1\r2")).encode(),
     ' line 3: column pixel7: expected an integer 0..255, found "1\\r2"'),
]


@pytest.mark.parametrize("raw, message", [case[1:] for case in BAD_TRAIN],
                         ids=[case[0] for case in BAD_TRAIN])
def test_bad_train_csv_is_one_line_naming_path_line_and_column(tmp_path, raw, message):
    path = tmp_path / "data" / "train.csv"
    path.parent.mkdir()
    if raw is not None:
        path.write_bytes(raw)
    with pytest.raises(DataError) as error:
        data.read_train_csv(path)
    assert str(error.value) == f"{path}{message}"
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("text, message", [
    ("pixel0,pixel1\n0,0\n", ' line 1: expected header pixel0..pixel783, found "pixel0,pixel1"'),
    (TEST_HEADER + "\n" + ",".join(["0"] * 785) + "\n", " line 2: expected 784 values, found 785"),
    (TEST_HEADER + "\n" + ",".join(["0"] * 783 + ["256"]) + "\n",
     " line 2: column pixel783: expected an integer 0..255, found 256"),
])
def test_bad_test_csv_names_the_line(tmp_path, text, message):
    path = tmp_path / "test.csv"
    path.write_text(text)
    with pytest.raises(DataError) as error:
        data.read_test_csv(path)
    assert str(error.value) == f"{path}{message}"


@pytest.mark.parametrize("text, message", [
    ("id,label\n1,0\n", ' line 1: expected header ImageId,Label, found "id,label"'),
    ("ImageId,Label\n1,0\nx,0\n", ' line 3: column ImageId: expected an integer >= 1, found "x"'),
    ("ImageId,Label\n1\n", " line 2: expected 2 values, found 1"),
])
def test_bad_sample_submission_names_the_line(tmp_path, text, message):
    path = tmp_path / "sample_submission.csv"
    path.write_text(text)
    with pytest.raises(DataError) as error:
        data.read_sample_submission(path)
    assert str(error.value) == f"{path}{message}"


def test_load_arrays_reads_both_files_and_hashes_them(competition):
    arrays = data.load_arrays(competition)
    images, labels = data.read_train_csv(competition / "train.csv")
    np.testing.assert_array_equal(arrays.train_images, images)
    np.testing.assert_array_equal(arrays.train_labels, labels)
    np.testing.assert_array_equal(arrays.test_images, data.read_test_csv(competition / "test.csv"))
    for name in ("train.csv", "test.csv"):
        assert arrays.hashes[name] == hashlib.sha256((competition / name).read_bytes()).hexdigest()
    assert list((competition / ".cache").glob("arrays-*.npz"))


def test_load_arrays_reports_a_missing_file(tmp_path):
    write_test(tmp_path / "test.csv", make_images(2))
    with pytest.raises(DataError, match="train.csv: file not found; put the competition's "
                                        "train.csv there or use data.source: sample"):
        data.load_arrays(tmp_path)


def distinct_examples(n, n_classes=10):
    """Images whose first pixel numbers them (n < 256), with balanced labels."""
    images = np.zeros((n, 784), np.uint8)
    images[:, 0] = np.arange(n)
    return images, (np.arange(n) % n_classes).astype(np.uint8)


def test_split_is_stratified_disjoint_and_complete():
    images, labels = distinct_examples(200)
    train_x, train_y, val_x, val_y = data.split_validation(images, labels, 0.1, seed=3)
    assert len(val_y) == 20 and len(train_y) == 180
    assert np.bincount(val_y).tolist() == [2] * 10
    assert np.bincount(train_y).tolist() == [18] * 10
    assert set(train_x[:, 0]).isdisjoint(val_x[:, 0])
    assert sorted([*train_x[:, 0], *val_x[:, 0]]) == list(range(200))
    np.testing.assert_array_equal(labels[train_x[:, 0]], train_y)  # pairs stay together
    np.testing.assert_array_equal(labels[val_x[:, 0]], val_y)


def test_split_is_the_same_for_a_seed_and_differs_across_seeds():
    images, labels = distinct_examples(100)
    first = data.split_validation(images, labels, 0.2, seed=7)
    again = data.split_validation(images, labels, 0.2, seed=7)
    other = data.split_validation(images, labels, 0.2, seed=8)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert set(first[2][:, 0]) != set(other[2][:, 0])


@pytest.mark.parametrize("n, labels, fraction, message", [
    (40, None, 0.125, "data.val_fraction: 0.125 of 40 examples leaves 5 for validation and 35 "
                      "for training; each needs one of each of the 10 digits"),
    (40, None, 0.875, "data.val_fraction: 0.875 of 40 examples leaves 35 for validation and 5 "
                      "for training"),
    (11, [*range(10), 3], 0.5, "data.val_fraction: cannot stratify the validation split: "
                               "digit 0 has only 1 example; each digit needs at least 2"),
    (30, None, 1.0, "data.val_fraction: expected a fraction between 0 and 1, got 1.0"),
])
def test_split_that_cannot_be_stratified_names_the_setting(n, labels, fraction, message):
    images, default_labels = distinct_examples(n)
    labels = default_labels if labels is None else np.array(labels, np.uint8)
    with pytest.raises(DataError) as error:
        data.split_validation(images, labels, fraction, seed=0)
    assert str(error.value).startswith(message)
