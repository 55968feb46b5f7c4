"""The runs folder is checked before any work: writable (tried, not assumed) and not full."""

import os
import shutil
from pathlib import Path

import pytest
from helpers.fs_checks import nobody_can_write

from job.outputs import preflight
from job.errors import RunError

MB = 2**20


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_writable_folder_passes_and_keeps_no_probe(tmp_path):
    (tmp_path / "runs").mkdir()
    preflight.check_runs_dir(tmp_path / "runs", min_free_bytes=0)
    assert tree(tmp_path) == ["runs"]


def test_a_missing_runs_folder_is_checked_in_its_parent_and_not_created(tmp_path):
    preflight.check_runs_dir(tmp_path / "a" / "b" / "runs", min_free_bytes=0)
    assert tree(tmp_path) == []


def test_a_relative_path_is_checked_from_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    preflight.check_runs_dir(Path("runs"), min_free_bytes=0)
    assert tree(tmp_path) == []


def test_a_file_in_place_of_the_runs_folder_is_refused(tmp_path):
    (tmp_path / "runs").write_text("")
    with pytest.raises(RunError) as error:
        preflight.check_runs_dir(tmp_path / "runs", min_free_bytes=0)
    assert str(error.value) == (f"{tmp_path}/runs: runs folder is a file; "
                                "set output.runs_dir to a folder")


def test_a_runs_folder_below_a_file_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(RunError) as error:
        preflight.check_runs_dir(tmp_path / "notes.txt" / "runs", min_free_bytes=0)
    assert str(error.value) == (f"{tmp_path}/notes.txt/runs: runs folder is inside a file, "
                                f"{tmp_path}/notes.txt; set output.runs_dir to a folder")


def test_a_folder_that_refuses_writes_is_found_by_trying(tmp_path, monkeypatch):
    """What a read-only mount or a foreign folder does, whoever runs the job (root too)."""
    def refuse(**kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(preflight.tempfile, "NamedTemporaryFile", refuse)
    with pytest.raises(RunError) as error:
        preflight.check_runs_dir(tmp_path / "runs")
    assert str(error.value) == (f"{tmp_path}/runs: runs folder is not writable (Permission "
                                "denied); set output.runs_dir to a writable folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a chmod 0500 folder anyway")
def test_a_read_only_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(RunError, match="runs folder is not writable"):
            preflight.check_runs_dir(locked / "runs", min_free_bytes=0)
    finally:
        locked.chmod(0o700)


@pytest.mark.skipif(not Path("/sys").is_dir() or not nobody_can_write(Path("/sys")),
                    reason="needs a folder nobody can write into (/sys)")
def test_a_folder_nobody_can_write_into_is_refused():
    with pytest.raises(RunError, match=r"^/sys/job-runs: runs folder is not writable \("):
        preflight.check_runs_dir(Path("/sys/job-runs"), min_free_bytes=0)


def usage(free: int):
    return lambda path: shutil._ntuple_diskusage(100 * 2**30, 100 * 2**30 - free, free)


def test_a_full_disk_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(preflight.shutil, "disk_usage", usage(10 * MB + 5))
    with pytest.raises(RunError) as error:
        preflight.check_runs_dir(tmp_path / "runs", min_free_bytes=256 * MB)
    assert str(error.value) == (f"{tmp_path}/runs: only 10 MB free on its disk, a run needs "
                                "256 MB; free some space or set output.runs_dir to another disk")
    assert tree(tmp_path) == []


def test_the_free_space_limit_is_inclusive_and_defaults_to_256_mb(tmp_path, monkeypatch):
    monkeypatch.setattr(preflight.shutil, "disk_usage", usage(256 * MB))
    preflight.check_runs_dir(tmp_path)
    monkeypatch.setattr(preflight.shutil, "disk_usage", usage(256 * MB - 1))
    with pytest.raises(RunError, match="only 255 MB free on its disk, a run needs 256 MB"):
        preflight.check_runs_dir(tmp_path)


def test_a_disk_that_cannot_report_its_space_is_not_refused(tmp_path, monkeypatch):
    def fail(path):
        raise OSError(38, "Function not implemented")
    monkeypatch.setattr(preflight.shutil, "disk_usage", fail)
    preflight.check_runs_dir(tmp_path)
