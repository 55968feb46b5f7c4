"""Parse the competition's CSVs into uint8 arrays, naming the line and column of any problem.

Parsing is the slow part of a run's start, so the fast path turns each megabyte of
a file into integers with a dozen numpy calls; only when it sees something it does
not expect does a line-by-line scan run, to name the exact line and column.
"""

from __future__ import annotations

import functools
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np

from job.competition import PIXELS, SUBMISSION_HEADER
from job.errors import DataError

_COMMA, _NEWLINE, _ZERO, _NINE = 44, 10, 48, 57
_BOM = b"\xef\xbb\xbf"
_CHUNK_BYTES = 1 << 20  # per parse task: amortizes numpy's per-call cost, feeds all threads
_INTEGER = re.compile(r"[+-]?[0-9]+")


class _Column(NamedTuple):
    name: str
    lo: int
    hi: int
    expected: str


class _Span(NamedTuple):
    first: int  # byte offset of the first line
    last: int  # byte offset of the last line's end (its newline, if any)
    row: int  # index of the first line among the data rows
    rows: int


def read_bytes(path: Path) -> bytes:
    """The file's bytes, or a DataError that says how to get the file."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise unreadable(path, error) from None


def unreadable(path: Path, error: OSError) -> DataError:
    """The error for a data file that cannot be read: missing, or for `error`'s reason."""
    if isinstance(error, FileNotFoundError):
        return DataError(f"{path}: file not found; put the competition's {path.name} there "
                         "or use data.source: sample")
    return DataError(f"{path}: cannot read the file ({error.strerror})")


def parse_train(path: Path, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 784) and labels (N,), both uint8, from the bytes of a train.csv."""
    columns = [_Column("label", 0, 9, "a digit 0..9"), *_pixel_columns()]
    labels, images = _parse_table(path, data, columns, "label,pixel0..pixel783")
    return images, labels


def parse_test(path: Path, data: bytes) -> np.ndarray:
    """Images (N, 784) uint8 from the bytes of a test.csv."""
    return _parse_table(path, data, _pixel_columns(), "pixel0..pixel783")[1]


def parse_sample_submission(path: Path, data: bytes) -> np.ndarray:
    """The ImageId column (int64) from the bytes of a sample_submission.csv."""
    data, start, end = _locate_rows(path, data, SUBMISSION_HEADER, SUBMISSION_HEADER)
    columns = [_Column("ImageId", 1, 10**12, "an integer >= 1"),
               _Column("Label", 0, 9, "a digit 0..9")]
    return _scan_lines(path, data[start:end], 2, columns)[:, 0]


def _pixel_columns() -> list[_Column]:
    """The 784 pixel columns of both CSVs."""
    return [_Column(f"pixel{i}", 0, 255, "an integer 0..255") for i in range(PIXELS)]


def _locate_rows(path: Path, data: bytes, header: str, shown: str) -> tuple[bytes, int, int]:
    """Check the header; return the data (CRLF made LF) and the byte range of its rows."""
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    start = len(_BOM) if data.startswith(_BOM) else 0
    end = len(data)
    while end > start and data[end - 1] in b" \t\r\n":  # blank trailing lines are harmless
        end -= 1
    if end == start:
        raise DataError(f"{path}: file is empty; re-download the competition data")
    header_end = data.find(b"\n", start, end)
    header_end = end if header_end < 0 else header_end
    found = _decode(path, 1, data[start:header_end])
    if found != header:
        raise DataError(f"{path} line 1: expected header {shown}, found {_quote(found)}")
    if header_end == end:
        raise DataError(f"{path}: the file has no data rows, only a header; "
                        "re-download the competition data")
    return data, header_end + 1, end


def _parse_table(path: Path, data: bytes, columns: list[_Column],
                 shown: str) -> tuple[np.ndarray | None, np.ndarray]:
    """The label column (when the first column is one) and the pixels, both uint8."""
    header = ",".join(column.name for column in columns)
    data, start, end = _locate_rows(path, data, header, shown)
    spans = _spans(data, start, end)
    n = spans[-1].row + spans[-1].rows
    labelled = columns[0].name == "label"
    labels = np.empty(n, np.uint8) if labelled else None
    images = np.empty((n, len(columns) - labelled), np.uint8)
    narrow = [(j, column.hi) for j, column in enumerate(columns) if column.hi < 255]

    def store(span: _Span, table: np.ndarray) -> None:
        images[span.row:span.row + span.rows] = table[:, int(labelled):]
        if labelled:
            labels[span.row:span.row + span.rows] = table[:, 0]

    def parse(span: _Span) -> bool:
        table = _parse_chunk(np.frombuffer(data, np.uint8, span.last - span.first, span.first),
                             span.rows, len(columns), narrow)
        if table is not None:
            store(span, table)
        return table is not None

    # glibc hands freed blocks over 128 KB back to the OS, so each chunk's temporaries
    # would be page-faulted in afresh; freeing one 16 MB block raises that threshold.
    np.empty(16 << 20, np.uint8)
    if _workers() == 1:  # one CPU: a pool would only add thread switches
        parsed = [parse(span) for span in spans]
    else:
        with ThreadPoolExecutor(_workers()) as pool:
            parsed = list(pool.map(parse, spans))
    for span, ok in zip(spans, parsed):
        if not ok:  # in file order, so the first problem in the file is the one reported
            store(span, _scan_lines(path, data[span.first:span.last], 2 + span.row, columns))
    return labels, images


def _spans(data: bytes, start: int, end: int) -> list[_Span]:
    """Cut data[start:end] into chunks of whole lines."""
    spans, row = [], 0
    while start < end:
        last = data.find(b"\n", min(start + _CHUNK_BYTES, end), end)
        last = end if last < 0 else last
        rows = data.count(b"\n", start, last) + 1
        spans.append(_Span(start, last, row, rows))
        start, row = last + 1, row + rows
    return spans


def _workers() -> int:
    """Threads for parsing: numpy releases the GIL inside each call."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cpus or 1))


@functools.cache
def _digit_tables() -> tuple[np.ndarray, np.ndarray]:
    """Tables from two bytes `earlier << 8 | later` to a value + 1024 * digits counted.

    `last_two` reads a field's last one or two digits (1023, too big to pass, when
    the field is empty); `third` adds its hundreds, counted only if the tens byte is a
    digit too, which is why it is looked up with the (hundreds, tens) pair.
    """
    earlier, later = np.arange(256)[:, None], np.arange(256)[None, :]
    earlier_digit = (earlier >= _ZERO) & (earlier <= _NINE)
    later_digit = (later >= _ZERO) & (later <= _NINE)
    two = 10 * (earlier - _ZERO) + later - _ZERO + 2 * 1024
    last_two = np.where(later_digit, np.where(earlier_digit, two, later - _ZERO + 1024), 1023)
    third = np.where(earlier_digit & later_digit, 100 * (earlier - _ZERO) + 1024, 0)
    return last_two.astype(np.uint16).ravel(), third.astype(np.uint16).ravel()


def _parse_chunk(chunk: np.ndarray, rows: int, ncols: int,
                 narrow: list[tuple[int, int]]) -> np.ndarray | None:
    """Whole CSV lines as a (rows, ncols) uint8 table, or None if anything is unexpected."""
    # Newlines around the text: three before, so the first field has bytes behind it to
    # read, and one after, so the last field ends in a separator like all the others.
    buf = np.empty(chunk.size + 4, np.uint8)
    buf[:3], buf[3:-1], buf[-1] = _NEWLINE, chunk, _NEWLINE
    text = buf[3:]
    if text.max() > _NINE:
        return None
    seps = np.flatnonzero(text < _ZERO)
    # The text has `rows` newlines; if each row's last separator is one and all the
    # other separators are commas, every other byte is a digit.
    if seps.size != rows * ncols or np.count_nonzero(text == _COMMA) != seps.size - rows \
            or (text.take(seps[ncols - 1::ncols]) != _NEWLINE).any():
        return None
    ones, tens, hundreds = buf[2:].take(seps), buf[1:].take(seps), buf.take(seps)
    tens = tens.astype(np.uint16)
    last_two, third = _digit_tables()
    value = last_two.take((tens << 8) | ones)
    value += third.take(np.left_shift(hundreds, 8, dtype=np.uint16) | tens)
    # The digits counted fall short of the digits present only if a field has four or more.
    if int((value >> 10).sum(dtype=np.int64)) != text.size - seps.size:
        return None
    value &= 1023
    if value.max() > 255:
        return None
    table = value.astype(np.uint8).reshape(rows, ncols)
    return None if any(table[:, j].max() > hi for j, hi in narrow) else table


def _scan_lines(path: Path, text: bytes, first_line: int, columns: list[_Column]) -> np.ndarray:
    """Check lines one by one; raise a DataError at the first problem, else return them."""
    lines = text.split(b"\n")
    out = np.empty((len(lines), len(columns)), np.int64)
    for i, raw in enumerate(lines):
        where = f"{path} line {first_line + i}"
        cells = _decode(path, first_line + i, raw).split(",")
        if cells == [""]:
            raise DataError(f"{where}: expected {len(columns)} values, found an empty line")
        if len(cells) != len(columns):
            raise DataError(f"{where}: expected {len(columns)} values, found {len(cells)}")
        out[i] = [_cell_value(where, column, cell) for column, cell in zip(columns, cells)]
    return out


def _cell_value(where: str, column: _Column, cell: str) -> int:
    """The cell's integer, or a DataError saying what the column expects."""
    prefix = f"{where}: column {column.name}: expected {column.expected}, found"
    if not _INTEGER.fullmatch(cell):
        raise DataError(f"{prefix} {_quote(cell) if cell else 'an empty cell'}")
    if not column.lo <= int(cell) <= column.hi:
        raise DataError(f"{prefix} {cell}")
    return int(cell)


def _decode(path: Path, number: int, raw: bytes) -> str:
    """One line as text without its CR, or a DataError for bytes that are not UTF-8."""
    try:
        return raw.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError as error:
        raise DataError(f"{path} line {number}: expected UTF-8 text, found byte "
                        f"0x{raw[error.start]:02x} at byte {error.start + 1}") from None


def _quote(text: str, limit: int = 60) -> str:
    """Text for a one-line message: escaped, quoted and cut to about `limit` characters."""
    text = repr(text)[1:-1]
    return f'"{text[:limit - 3]}..."' if len(text) > limit else f'"{text}"'
