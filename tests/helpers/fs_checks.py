"""File-system facts tests need to know before they can run."""

from pathlib import Path


def nobody_can_write(folder: Path) -> bool:
    """True where even root's writes fail, as in sysfs."""
    try:
        (folder / ".job-write-test").touch()
    except OSError:
        return True
    (folder / ".job-write-test").unlink()
    return False
