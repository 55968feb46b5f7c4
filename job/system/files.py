"""Atomic file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def write_atomic(path: Path, content: str | bytes | Callable[[BinaryIO], None], *,
                 fsync: bool = True) -> None:
    """Write text (as UTF-8), bytes, or whatever `content(f)` writes, to `path` atomically.

    The data goes to a temporary file beside `path`, is flushed to disk (unless
    `fsync` is False), and then renamed over `path`; on any failure the temporary
    file is removed and the error raised, leaving `path` as it was.
    """
    path = Path(path)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content.encode("utf-8") if isinstance(content, str) else content)
            f.flush()
            if fsync:  # else a crash soon after the rename can leave an empty file
                os.fsync(f.fileno())
        os.chmod(temp, 0o644)  # not mkstemp's 0600: nothing written here is secret
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# What symlink() answers on a file system without links (rclone's and gcsfuse's mounts).
NO_LINKS = frozenset({errno.EPERM, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP})


def replace_link(link: Path, target: str) -> bool:
    """Point the symlink `link` at `target` (relative to it) in one rename: a reader sees
    the old target or the new one. The temporary link is named per process, since several
    workers may replace the same link at once. False, with nothing changed, where the file
    system has no symbolic links (a cloud bucket mounted as a folder): a link is a
    convenience, and a finished run must not fail over one."""
    link = Path(link)
    tmp = link.parent / f".{link.name}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        tmp.symlink_to(target, target_is_directory=True)
    except OSError as e:
        if e.errno in NO_LINKS:
            return False
        raise
    os.replace(tmp, link)
    return True
