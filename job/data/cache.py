"""The parsed-array cache in `<data dir>/.cache`: files' hashes, and their arrays as an .npz.

The cache file is named after both CSVs' sha256, so a changed CSV is parsed again.
Hashing 120 MB would take longer than reading the cache, so each file's hash is
remembered in hashes.json with its size, times and inode, and reused while they hold.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from job.competition import PIXELS
from job.data.csv_reader import unreadable
from job.system.files import write_atomic

log = logging.getLogger(__name__)

_VERSION = 1  # bump when the cached layout changes, so old caches are not reused
_NAMES = ("train_images", "train_labels", "test_images")  # the arrays, in the .npz too


def fingerprint(path: Path) -> list[int]:
    """What changes whenever the file's content does: size, mtime, ctime and inode."""
    try:
        stat = path.stat()
    except OSError as error:
        raise unreadable(path, error) from None
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def _resolution(stat: list[int]) -> int:
    """How long after its change a write could still leave a file's fingerprint as it was.

    Timestamps advance in clock ticks (up to 10 ms), or whole seconds on some file
    systems; within one, a same-size rewrite would keep the file's fingerprint.
    """
    return 2 * 10**9 if stat[2] % 10**9 == 0 else 20 * 10**6


def wait_to_remember(stats: dict[str, list[int]]) -> None:
    """Wait out the timestamp resolution of files written moments ago, if that is brief.

    Then their hashes can be remembered now (on whole-second file systems, only at
    the next run).
    """
    wait = max(stat[2] + _resolution(stat) - time.time_ns() for stat in stats.values())
    if 0 < wait < 10**8:
        time.sleep((wait + 10**6) / 10**9)


def recall_hashes(cache: Path, stats: dict[str, list[int]]) -> dict[str, str]:
    """The remembered sha256 of each file whose fingerprint is unchanged."""
    try:
        known = json.loads((cache / "hashes.json").read_text())
        return {name: known[name]["sha256"] for name, stat in stats.items()
                if name in known and known[name]["stat"] == stat}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def remember_hashes(cache: Path, stats: dict[str, list[int]], hashes: dict[str, str],
                    read_at: int) -> None:
    """Store each file's hash with its fingerprint, if no later write could keep that."""
    known = {name: {"stat": stat, "sha256": hashes[name]} for name, stat in stats.items()
             if read_at - stat[2] > _resolution(stat)}
    if known:
        _write(cache / "hashes.json", json.dumps(known))


def hash_all(blobs: dict[str, bytes]) -> dict[str, str]:
    """The hex sha256 of each file's bytes, hashed side by side."""
    with ThreadPoolExecutor(len(blobs)) as pool:
        return dict(zip(blobs, pool.map(lambda blob: hashlib.sha256(blob).hexdigest(),
                                        blobs.values())))


def has_cached(cache: Path) -> bool:
    """Whether any arrays are cached, whatever files they came from."""
    return any(cache.glob("arrays-*.npz"))


def _cache_file(cache: Path, hashes: dict[str, str]) -> Path:
    """Where the arrays parsed from files with these hashes are kept."""
    key = hashlib.sha256(f"{_VERSION}:{hashes['train.csv']}:{hashes['test.csv']}".encode())
    return cache / f"arrays-{key.hexdigest()[:16]}.npz"


def read_cached(cache: Path, hashes: dict[str, str]) -> dict[str, np.ndarray] | None:
    """The arrays cached for these hashes by name, or None when absent or unreadable."""
    try:
        members = _map_npz(_cache_file(cache, hashes))
        arrays = {name: members[name] for name in _NAMES}
        n, m = len(arrays["train_labels"]), len(arrays["test_images"])
    except Exception:  # noqa: BLE001 - any damage to a cache file just means parsing again
        return None
    shapes = tuple(arrays[name].shape for name in _NAMES)
    dtypes = {arrays[name].dtype for name in _NAMES}
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


def write_cached(cache: Path, hashes: dict[str, str], arrays: dict[str, np.ndarray]) -> None:
    """Save the arrays parsed from files with these hashes; drop the caches of older files."""
    path = _cache_file(cache, hashes)
    if _write(path, lambda f: _save_npz(f, {name: arrays[name] for name in _NAMES})):
        for old in cache.glob("arrays-*.npz"):
            if old != path:
                old.unlink(missing_ok=True)


def _save_npz(f: BinaryIO, arrays: dict[str, np.ndarray]) -> None:
    """An uncompressed .npz, as np.savez writes but without its copies of each array."""
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            # A fixed date, so the same arrays always make the same bytes.
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(info, "w", force_zip64=True) as member:
                header = np.lib.format.header_data_from_array_1_0(array)
                np.lib.format.write_array_header_1_0(member, header)
                member.write(memoryview(np.ascontiguousarray(array)).cast("B"))


def _write(path: Path, content: str | Callable[[BinaryIO], None]) -> bool:
    """Write a cache file atomically; False if the folder will not take it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # No fsync: it would add ~5% to a first load, and a cache file that a crash
        # empties or cuts short fails the checks in read_cached and is parsed again.
        write_atomic(path, content, fsync=False)
        return True
    except OSError as error:  # a read-only data folder still works, just without a cache
        log.info("not caching %s: %s", path, error)
        return False
