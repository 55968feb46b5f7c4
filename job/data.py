"""Read the competition's CSVs into uint8 arrays, cache them, and split off validation.

Parsing is the slow part of a run's start, so the fast path turns each megabyte of
a file into integers with a dozen numpy calls; only when it sees something it does
not expect does a line-by-line scan run, to name the exact line and column.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from job.errors import DataError

log = logging.getLogger(__name__)

PIXELS = 784
_COMMA, _NEWLINE, _ZERO, _NINE = 44, 10, 48, 57
_BOM = b"\xef\xbb\xbf"
_CHUNK_BYTES = 1 << 20  # per parse task: amortizes numpy's per-call cost, feeds all threads
_CACHE_VERSION = 1  # bump when the cached layout changes, so old caches are not reused
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


@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays field by field is ambiguous
class Arrays:
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    hashes: dict[str, str]


def read_train_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 784) and labels (N,), both uint8, from a Kaggle train.csv."""
    return _parse_train(path, _read_bytes(path))


def read_test_csv(path: Path) -> np.ndarray:
    """Images (N, 784) uint8 from a Kaggle test.csv."""
    return _parse_test(path, _read_bytes(path))


def read_sample_submission(path: Path) -> np.ndarray:
    """The ImageId column (int64) of a Kaggle sample_submission.csv."""
    data, start, end = _locate_rows(path, _read_bytes(path), "ImageId,Label", "ImageId,Label")
    columns = [_Column("ImageId", 1, 10**12, "an integer >= 1"),
               _Column("Label", 0, 9, "a digit 0..9")]
    return _scan_lines(path, data[start:end], 2, columns)[:, 0]


def _parse_train(path: Path, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels from the bytes of a train.csv."""
    columns = [_Column("label", 0, 9, "a digit 0..9"), *_pixel_columns()]
    labels, images = _parse_table(path, data, columns, "label,pixel0..pixel783")
    return images, labels


def _parse_test(path: Path, data: bytes) -> np.ndarray:
    """Images from the bytes of a test.csv."""
    return _parse_table(path, data, _pixel_columns(), "pixel0..pixel783")[1]


def _pixel_columns() -> list[_Column]:
    """The 784 pixel columns of both CSVs."""
    return [_Column(f"pixel{i}", 0, 255, "an integer 0..255") for i in range(PIXELS)]


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, or a DataError that says how to get the file."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise _missing(path) from None
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror})") from None


def _missing(path: Path) -> DataError:
    """The error for a data file that is not there."""
    return DataError(f"{path}: file not found; put the competition's {path.name} there "
                     "or use data.source: sample")


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


def load_arrays(data_dir: Path) -> Arrays:
    """train.csv and test.csv from `data_dir`, parsed once and then read from its cache.

    The cache file is named after both files' sha256, so a changed CSV is parsed
    again. Hashing 120 MB would take longer than reading the cache, so each file's
    hash is remembered with its size, times and inode, and reused while they hold.
    """
    paths = {name: data_dir / name for name in ("train.csv", "test.csv")}
    cache = data_dir / ".cache"
    stats = {name: _fingerprint(path) for name, path in paths.items()}
    hashes = _recall_hashes(cache, stats)
    arrays = _read_cache(cache, hashes) if len(hashes) == len(paths) else None
    if arrays is None:
        # A file written moments ago: wait out its timestamp's resolution, so that its
        # hash can be remembered (on whole-second file systems, only at the next run).
        wait = max(stat[2] + _resolution(stat) - time.time_ns() for stat in stats.values())
        if 0 < wait < 10**8:
            time.sleep((wait + 10**6) / 10**9)
        read_at = time.time_ns()
        blobs = {name: _read_bytes(path) for name, path in paths.items()}
        arrays = _parse_or_reuse(paths, blobs, cache)
        _remember_hashes(cache, stats, arrays.hashes, read_at)
    return arrays


def _parse_or_reuse(paths: dict[str, Path], blobs: dict[str, bytes], cache: Path) -> Arrays:
    """The arrays cached for these bytes, or else parsed from them and cached."""
    hashes = None
    if any(cache.glob("arrays-*.npz")):  # one of them may hold these very files
        hashes = _hash_all(blobs)
        arrays = _read_cache(cache, hashes)
        if arrays is not None:
            return arrays
    with ThreadPoolExecutor(1) as pool:
        # Nothing to look up: hash alongside the parsing, which mostly waits on numpy.
        hashing = pool.submit(lambda: hashes or _hash_all(blobs))
        images, labels = _parse_train(paths["train.csv"], blobs["train.csv"])
        test_images = _parse_test(paths["test.csv"], blobs["test.csv"])
        arrays = Arrays(images, labels, test_images, hashing.result())
    _write_cache(cache, arrays)
    return arrays


def _hash_all(blobs: dict[str, bytes]) -> dict[str, str]:
    """The hex sha256 of each file's bytes, hashed side by side."""
    with ThreadPoolExecutor(len(blobs)) as pool:
        return dict(zip(blobs, pool.map(lambda blob: hashlib.sha256(blob).hexdigest(),
                                        blobs.values())))


def _fingerprint(path: Path) -> list[int]:
    """What changes whenever the file's content does: size, mtime, ctime and inode."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise _missing(path) from None
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror})") from None
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def _resolution(stat: list[int]) -> int:
    """How long after its change a write could still leave a file's fingerprint as it was.

    Timestamps advance in clock ticks (up to 10 ms), or whole seconds on some file
    systems; within one, a same-size rewrite would keep the file's fingerprint.
    """
    return 2 * 10**9 if stat[2] % 10**9 == 0 else 20 * 10**6


def _recall_hashes(cache: Path, stats: dict[str, list[int]]) -> dict[str, str]:
    """The remembered sha256 of each file whose fingerprint is unchanged."""
    try:
        known = json.loads((cache / "hashes.json").read_text())
        return {name: known[name]["sha256"] for name, stat in stats.items()
                if name in known and known[name]["stat"] == stat}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _remember_hashes(cache: Path, stats: dict[str, list[int]], hashes: dict[str, str],
                     read_at: int) -> None:
    """Store each file's hash with its fingerprint, if no later write could keep that."""
    known = {name: {"stat": stat, "sha256": hashes[name]} for name, stat in stats.items()
             if read_at - stat[2] > _resolution(stat)}
    if known:
        _write_atomically(cache / "hashes.json", lambda f: f.write(json.dumps(known).encode()))


def _cache_file(cache: Path, hashes: dict[str, str]) -> Path:
    """Where the arrays parsed from files with these hashes are kept."""
    key = hashlib.sha256(f"{_CACHE_VERSION}:{hashes['train.csv']}:{hashes['test.csv']}".encode())
    return cache / f"arrays-{key.hexdigest()[:16]}.npz"


def _read_cache(cache: Path, hashes: dict[str, str]) -> Arrays | None:
    """The cached arrays for these hashes, or None when absent or unreadable."""
    try:
        members = _map_npz(_cache_file(cache, hashes))
        arrays = Arrays(members["train_images"], members["train_labels"],
                        members["test_images"], dict(hashes))
        n, m = len(arrays.train_labels), len(arrays.test_images)
    except Exception:  # noqa: BLE001 - any damage to a cache file just means parsing again
        return None
    shapes = (arrays.train_images.shape, arrays.train_labels.shape, arrays.test_images.shape)
    dtypes = {arrays.train_images.dtype, arrays.train_labels.dtype, arrays.test_images.dtype}
    ok = shapes == ((n, PIXELS), (n,), (m, PIXELS)) and dtypes == {np.dtype(np.uint8)}
    return arrays if ok else None


def _map_npz(path: Path) -> dict[str, np.ndarray]:
    """Memory-map the arrays stored uncompressed in an .npz (np.load would copy them).

    The maps are copy-on-write, so callers may change the arrays but never the file.
    """
    arrays = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as f:
        for info in archive.infolist():
            if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith(".npy"):
                raise ValueError(f"{info.filename}: not an uncompressed array")
            f.seek(info.header_offset)
            local = f.read(30)  # the zip's local header; the name and extra field follow
            if local[:4] != b"PK\x03\x04":
                raise ValueError(f"{info.filename}: bad local header")
            start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") \
                + int.from_bytes(local[28:30], "little")
            f.seek(start)
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}[version]
            shape, fortran, dtype = read_header(f)
            if dtype.hasobject or f.tell() - start + dtype.itemsize * int(np.prod(shape)) \
                    != info.file_size:
                raise ValueError(f"{info.filename}: size does not match its header")
            array = np.memmap(path, dtype, "c", f.tell(), shape, "F" if fortran else "C")
            arrays[info.filename[:-4]] = array.view(np.ndarray)
    return arrays


def _write_cache(cache: Path, arrays: Arrays) -> None:
    """Save the parsed arrays for next time and drop the caches of older files."""
    path = _cache_file(cache, arrays.hashes)
    members = {"train_images": arrays.train_images, "train_labels": arrays.train_labels,
               "test_images": arrays.test_images}
    if _write_atomically(path, lambda f: _save_npz(f, members)):
        for old in cache.glob("arrays-*.npz"):
            if old != path:
                old.unlink(missing_ok=True)


def _save_npz(f, arrays: dict[str, np.ndarray]) -> None:
    """An uncompressed .npz, as np.savez writes but without its copies of each array."""
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            # A fixed date, so the same arrays always make the same bytes.
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(info, "w", force_zip64=True) as member:
                header = np.lib.format.header_data_from_array_1_0(array)
                np.lib.format.write_array_header_1_0(member, header)
                member.write(memoryview(np.ascontiguousarray(array)).cast("B"))


def _write_atomically(path: Path, write) -> bool:
    """Write via a temporary file and a rename, so no reader ever sees half a file."""
    temp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp", delete=False) as f:
            temp = Path(f.name)
            write(f)
        os.chmod(temp, 0o644)  # not the temporary file's 0600: the cache is not secret
        os.replace(temp, path)
        return True
    except OSError as error:  # a read-only data folder still works, just without a cache
        log.info("not caching %s: %s", path, error)
        if temp is not None:
            temp.unlink(missing_ok=True)
        return False


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
