"""Reading the competition CSVs: values, every bad input's message, the cache, the split."""

import hashlib
import re
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from job import data
from job.errors import DataError

PIXELS = [f"pixel{i}" for i in range(784)]
TRAIN_HEADER = ",".join(["label", *PIXELS])
TEST_HEADER = ",".join(PIXELS)


def make_images(n, seed=0):
    """Random pixels with the 0 and 255 edges included."""
    images = np.random.default_rng(seed).integers(0, 256, (n, 784), dtype=np.uint8)
    images[0, :3] = [0, 255, 7]
    return images


def csv_text(header, rows, newline="\n"):
    """A CSV with a header and integer rows, each line ended by `newline`."""
    lines = [header, *(",".join(map(str, row)) for row in rows)]
    return newline.join(lines) + newline


def write_train(path, images, labels, **kwargs):
    """Write a Kaggle train.csv; returns the path."""
    rows = np.column_stack([labels, images]).tolist()
    path.write_text(csv_text(TRAIN_HEADER, rows, **kwargs), newline="")
    return path


def write_test(path, images):
    """Write a Kaggle test.csv; returns the path."""
    path.write_text(csv_text(TEST_HEADER, images.tolist()), newline="")
    return path


@pytest.fixture
def competition(tmp_path):
    """A data folder with a 20-row train.csv and a 6-row test.csv."""
    labels = np.arange(20, dtype=np.uint8) % 10
    write_train(tmp_path / "train.csv", make_images(20), labels)
    write_test(tmp_path / "test.csv", make_images(6, seed=1))
    return tmp_path


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


def train_lines(n=10):
    """The lines of a valid train.csv with `n` rows of zeros (labels 0..9)."""
    return [TRAIN_HEADER, *(",".join([str(i % 10)] + ["0"] * 784) for i in range(n))]


def with_cell(lines, line, column, value):
    """`lines` with the cell of 1-based `line` and 0-based `column` set to `value`."""
    lines = list(lines)
    cells = lines[line - 1].split(",")
    cells[column] = value
    lines[line - 1] = ",".join(cells)
    return lines


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


def test_problems_are_found_across_chunk_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_CHUNK_BYTES", 3000)  # about two rows a chunk
    images, labels = make_images(30), np.arange(30, dtype=np.uint8) % 10
    path = write_train(tmp_path / "train.csv", images, labels)
    got_images, got_labels = data.read_train_csv(path)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    lines = path.read_text().split("\n")
    path.write_text("\n".join(with_cell(lines, 25, 0, "12")))
    with pytest.raises(DataError, match=r"train.csv line 25: column label: .* found 12$"):
        data.read_train_csv(path)
    path.write_text("\n".join(with_cell(with_cell(lines, 25, 0, "12"), 6, 9, "")))
    with pytest.raises(DataError, match=r"train.csv line 6: column pixel8: .* empty cell$"):
        data.read_train_csv(path)


FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(table=arrays(np.uint8, st.tuples(st.integers(1, 5), st.just(785))),
       chunk=st.integers(1, 9000), newline=st.sampled_from(["\n", "\r\n"]))
def test_any_table_is_read_back_exactly_however_it_is_chunked(tmp_path, table, chunk, newline):
    table[:, 0] %= 10
    path = write_train(tmp_path / "train.csv", table[:, 1:], table[:, 0], newline=newline)
    with mock.patch.object(data, "_CHUNK_BYTES", chunk):
        images, labels = data.read_train_csv(path)
    np.testing.assert_array_equal(images, table[:, 1:])
    np.testing.assert_array_equal(labels, table[:, 0])


def reference_read(raw):
    """What read_train_csv should return for these bytes, in plain Python; None if invalid."""
    try:
        text = raw.replace(b"\r\n", b"\n").decode("utf-8-sig" if raw[:3] == b"\xef\xbb\xbf"
                                                    else "utf-8")
    except UnicodeDecodeError:
        return None
    header, *lines = [line.rstrip("\r") for line in text.rstrip(" \t\r\n").split("\n")]
    rows = [line.split(",") for line in lines]
    if header != TRAIN_HEADER or not rows or any(len(row) != 785 for row in rows) or any(
            not re.fullmatch(r"[+-]?[0-9]+", cell) for row in rows for cell in row):
        return None
    table = np.array([[int(cell) for cell in row] for row in rows])
    if table.min() < 0 or table.max() > 255 or table[:, 0].max() > 9:
        return None
    return table[:, 1:], table[:, 0]


VALID = csv_text(
    TRAIN_HEADER, np.column_stack([[3, 9, 0], make_images(3)]).tolist()).encode()


@FUZZ
@given(position=st.integers(0, len(VALID) - 1), byte=st.integers(0, 255))
def test_a_changed_byte_gives_the_right_arrays_or_a_data_error(tmp_path, position, byte):
    raw = bytearray(VALID)
    raw[position] = byte
    path = tmp_path / "train.csv"
    path.write_bytes(raw)
    expected = reference_read(bytes(raw))
    try:
        images, labels = data.read_train_csv(path)
    except DataError as error:
        assert expected is None, error
        assert str(error).startswith(f"{path}") and "\n" not in str(error)
    else:
        assert expected is not None
        np.testing.assert_array_equal(images, expected[0])
        np.testing.assert_array_equal(labels, expected[1])


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


def forbid_parsing(monkeypatch):
    """Make any parse of a CSV fail the test."""
    def fail(*args):
        raise AssertionError("parsed a CSV although the cache holds it")
    monkeypatch.setattr(data, "_parse_train", fail)
    monkeypatch.setattr(data, "_parse_test", fail)


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
    monkeypatch.setattr(data, "_read_bytes", lambda path: pytest.fail(f"read {path}"))
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
    real_fingerprint = data._fingerprint

    def coarse(path):  # as on file systems that keep whole seconds
        size, mtime, ctime, inode = real_fingerprint(path)
        return [size, mtime - mtime % 10**9, ctime - ctime % 10**9, inode]

    monkeypatch.setattr(data, "_fingerprint", coarse)
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
