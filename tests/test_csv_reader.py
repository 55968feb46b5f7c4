"""The CSV parser's internals: chunking, and the fast path agreeing with a plain reading."""

import re
from unittest import mock

import numpy as np
import pytest
from helpers.csv_files import TRAIN_HEADER, csv_text, make_images, with_cell, write_train
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from job.data import csv_reader
from job.errors import DataError


def read_train(path):
    """Images and labels of the train.csv at `path`, as job.data.read_train_csv reads them."""
    return csv_reader.parse_train(path, csv_reader.read_bytes(path))


def test_problems_are_found_across_chunk_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_reader, "_CHUNK_BYTES", 3000)  # about two rows a chunk
    images, labels = make_images(30), np.arange(30, dtype=np.uint8) % 10
    path = write_train(tmp_path / "train.csv", images, labels)
    got_images, got_labels = read_train(path)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    lines = path.read_text().split("\n")
    path.write_text("\n".join(with_cell(lines, 25, 0, "12")))
    with pytest.raises(DataError, match=r"train.csv line 25: column label: .* found 12$"):
        read_train(path)
    path.write_text("\n".join(with_cell(with_cell(lines, 25, 0, "12"), 6, 9, "")))
    with pytest.raises(DataError, match=r"train.csv line 6: column pixel8: .* empty cell$"):
        read_train(path)


FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(table=arrays(np.uint8, st.tuples(st.integers(1, 5), st.just(785))),
       chunk=st.integers(1, 9000), newline=st.sampled_from(["\n", "\r\n"]))
def test_any_table_is_read_back_exactly_however_it_is_chunked(tmp_path, table, chunk, newline):
    table[:, 0] %= 10
    path = write_train(tmp_path / "train.csv", table[:, 1:], table[:, 0], newline=newline)
    with mock.patch.object(csv_reader, "_CHUNK_BYTES", chunk):
        images, labels = read_train(path)
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
        images, labels = read_train(path)
    except DataError as error:
        assert expected is None, error
        assert str(error).startswith(f"{path}") and "\n" not in str(error)
    else:
        assert expected is not None
        np.testing.assert_array_equal(images, expected[0])
        np.testing.assert_array_equal(labels, expected[1])
