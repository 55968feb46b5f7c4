"""Checks made before any work starts: the run folder can be written, and there is room.

A run that finds out at its last epoch that it cannot save has wasted the hours before;
these checks cost a millisecond and run before the data is loaded.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from job.errors import RunError

# A default run writes ~22 MB (four models, TensorBoard logs); epoch checkpoints with the
# optimizer state and the best weights add a few times the models' size. 256 MB leaves
# room for that and for the logs of a long run.
MIN_FREE_BYTES = 256 * 2**20


def check_runs_dir(path: Path, min_free_bytes: int = MIN_FREE_BYTES) -> None:
    """Raise RunError unless a run folder can be written under `path` now, with room to spare.

    Nothing is left behind: a missing runs folder is checked in its nearest existing
    parent, where create_run would make it. Writability is tried with a probe file rather
    than read off the permission bits, which root ignores and a read-only mount overrides.
    """
    path = Path(path)
    folder = nearest_existing(path)
    if not folder.is_dir():
        where = "is a file" if folder == path.absolute() else f"is inside a file, {folder}"
        raise RunError(f"{path}: runs folder {where}; set output.runs_dir to a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe-"):
            pass
    except OSError as e:
        raise RunError(f"{path}: runs folder is not writable ({e.strerror or e}); "
                       "set output.runs_dir to a writable folder") from None
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return   # a file system that cannot say how full it is; writing worked
    if free < min_free_bytes:
        raise RunError(f"{path}: only {megabytes(free)} free on its disk, a run needs "
                       f"{megabytes(min_free_bytes)}; free some space or set output.runs_dir "
                       "to another disk")


def nearest_existing(path: Path) -> Path:
    """`path` itself if it exists, else its closest ancestor that does."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def megabytes(n: int) -> str:
    """Bytes as whole megabytes for a message."""
    return f"{n // 2**20} MB"
