"""Run folders never collide, writes are atomic, runs/latest follows completed runs."""

import datetime as dt
import json
import os

import pytest

from job.errors import RunError
from job.run import Run, create_run, find_runs, mark_latest, summarize_run, write_atomic

NOW = dt.datetime(2026, 11, 28, 21, 5, 0, tzinfo=dt.timezone.utc)


def test_runs_in_the_same_second_get_their_own_folders(tmp_path):
    paths = [create_run(tmp_path, "smoke", NOW).path for _ in range(3)]
    assert [p.name for p in paths] == ["20261128T210500Z-smoke", "20261128T210500Z-smoke-2",
                                       "20261128T210500Z-smoke-3"]


def test_write_atomic_leaves_no_temp_files_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "submission.csv"
    write_atomic(target, "old\n")

    def broken_replace(*args):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_atomic(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["submission.csv"]


def test_latest_points_at_the_newest_marked_run(tmp_path):
    first, second = create_run(tmp_path, "a", NOW), create_run(tmp_path, "b", NOW)
    mark_latest(first)
    mark_latest(second)
    assert (tmp_path / "latest").resolve() == second.path.resolve()
    assert os.readlink(tmp_path / "latest") == second.path.name  # relative: survives moves


def test_unwritable_runs_folder_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(RunError, match="cannot create the runs folder"):
        create_run(blocker / "runs", "x", NOW)


def test_summaries_list_runs_with_their_best_model(tmp_path):
    run = create_run(tmp_path, "x", NOW)
    run.write_json("manifest.json", {"status": "complete", "data": {"source": "sample"}})
    run.write_json("metrics.json", {"best": "cnn-tf", "models": [
        {"name": "ffn-tf", "val_accuracy": 0.9}, {"name": "cnn-tf", "val_accuracy": 0.95}]})
    broken = create_run(tmp_path, "y", NOW)
    (broken.path / "manifest.json").write_text("{not json")
    (tmp_path / "stray").mkdir()
    rows = [summarize_run(r) for r in find_runs(tmp_path)]
    assert rows == [
        {"id": run.id, "status": "complete", "source": "sample", "best": "cnn-tf",
         "val_accuracy": 0.95, "submission": "-"},
        {"id": broken.id, "status": "unreadable", "source": "?", "best": "-",
         "val_accuracy": None, "submission": "-"}]
    assert json.loads((run.path / "metrics.json").read_text())["best"] == "cnn-tf"
