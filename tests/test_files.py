"""write_atomic: text, bytes or a writer, readable by all, and no trace left when it fails;
replace_link: one rename, and nothing changed where the file system has no links."""

import errno
import os
import stat
from pathlib import Path

import pytest

from job.system.files import replace_link, write_atomic


@pytest.mark.parametrize("content, expected", [
    ("ImageId,Label\n1,7\n", b"ImageId,Label\n1,7\n"),
    ("naïve\n", "naïve\n".encode("utf-8")),
    (b"\x00\xff raw", b"\x00\xff raw"),
    (lambda f: f.write(b"from a writer"), b"from a writer"),
])
def test_write_atomic_writes_text_bytes_or_what_a_writer_writes(tmp_path, content, expected):
    target = tmp_path / "out"
    write_atomic(target, content)
    assert target.read_bytes() == expected
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_written_files_are_readable_by_all(tmp_path):
    target = tmp_path / "out"
    write_atomic(target, "x")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_a_failing_writer_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "out"
    write_atomic(target, b"old")

    def broken(f):
        f.write(b"half")
        raise ValueError("writer failed")
    with pytest.raises(ValueError, match="writer failed"):
        write_atomic(target, broken)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_missing_folder_is_an_error_not_created(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "missing" / "out", "x")
    assert not (tmp_path / "missing").exists()


def test_a_failed_rename_leaves_no_temp_file(tmp_path, monkeypatch):
    def broken_replace(*args):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(tmp_path / "out", b"new")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs, syncs", [({}, 1), ({"fsync": False}, 0)])
def test_data_reaches_the_disk_unless_told_not_to(tmp_path, monkeypatch, kwargs, syncs):
    calls = []
    monkeypatch.setattr(os, "fsync", calls.append)
    write_atomic(tmp_path / "out", "x", **kwargs)
    assert len(calls) == syncs
    assert (tmp_path / "out").read_text() == "x"


def test_replace_link_points_the_link_at_the_new_target(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert replace_link(tmp_path / "latest", "a") is True
    assert replace_link(tmp_path / "latest", "b") is True
    assert os.readlink(tmp_path / "latest") == "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "latest"]


@pytest.mark.parametrize("code", [errno.ENOSYS, errno.EPERM, errno.EOPNOTSUPP])
def test_a_file_system_without_links_leaves_everything_as_it_was(tmp_path, monkeypatch, code):
    """A bucket mounted as a folder (rclone, gcsfuse) refuses symlink(): the run that
    finished there must not fail over its `latest` link."""
    (tmp_path / "a").mkdir()

    def refused(self, *args, **kwargs):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(Path, "symlink_to", refused)
    assert replace_link(tmp_path / "latest", "a") is False
    assert [p.name for p in tmp_path.iterdir()] == ["a"]


def test_other_link_failures_are_errors(tmp_path, monkeypatch):
    def refused(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "no space left")
    monkeypatch.setattr(Path, "symlink_to", refused)
    with pytest.raises(OSError, match="no space"):
        replace_link(tmp_path / "latest", "a")
