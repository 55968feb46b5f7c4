"""Run folders never collide, writes are atomic, runs/latest follows completed runs, and
read_run turns a damaged folder into one error naming the file."""

import datetime as dt
import json
import os

import pytest

from job.errors import RunError
from job.outputs.folder import (create_run, find_runs, mark_latest, newest_unfinished,
                                read_run, summarize_run)
from job.system.files import write_atomic

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
        {"id": broken.id, "status": "damaged", "source": "?", "best": "-",
         "val_accuracy": None, "submission": "-",
         "problem": f"{broken.path}/manifest.json: not valid JSON (Expecting property name "
                    "enclosed in double quotes: line 1 column 2 (char 1)); the run folder is "
                    "damaged or not the job's: train a new run"}]
    assert json.loads((run.path / "metrics.json").read_text())["best"] == "cnn-tf"


DAMAGED = "the run folder is damaged or not the job's: train a new run"


@pytest.mark.parametrize("manifest, metrics, message", [
    ('{"status": "runn', None, "{run}/manifest.json: not valid JSON (Unterminated string "
     "starting at: line 1 column 12 (char 11)); " + DAMAGED),
    ("", None, "{run}/manifest.json: not valid JSON (Expecting value: line 1 column 1 "
     "(char 0)); " + DAMAGED),
    ('["running"]', None, "{run}/manifest.json: expected a JSON object, found list; " + DAMAGED),
    ('{"status": "done"}', None, '{run}/manifest.json: status: expected one of running | '
     'complete | failed | interrupted | pruned, found done; ' + DAMAGED),
    ('{"status": "complete"}', None, "{run}/metrics.json: file not found; " + DAMAGED),
    ('{"status": "complete"}', '{"best": "cnn-tf", "models": [{"name": "cnn-tf"}]}',
     "{run}/metrics.json: no scores for the best model cnn-tf; " + DAMAGED),
    ('{"status": "complete"}', '{"best": "cnn-tf", "models": "cnn-tf"}',
     "{run}/metrics.json: no scores for the best model cnn-tf; " + DAMAGED),
], ids=["cut short", "empty", "a list", "unknown status", "complete without metrics",
        "best without scores", "models not a list"])
def test_read_run_names_the_damaged_file(tmp_path, manifest, metrics, message):
    run = create_run(tmp_path, "x", NOW)
    (run.path / "manifest.json").write_text(manifest)
    if metrics is not None:
        (run.path / "metrics.json").write_text(metrics)
    with pytest.raises(RunError) as caught:
        read_run(run.path).finished()   # what submit and report need of a complete run
    assert str(caught.value) == message.format(run=run.path)


def test_a_manifest_field_a_reader_relies_on_is_checked(tmp_path):
    run = create_run(tmp_path, "x", NOW)
    run.write_json("manifest.json", {"status": "running", "data": {"sha256": "abc"}})
    record = read_run(run.path)
    assert record.metrics is None and record.status == "running"
    with pytest.raises(RunError) as caught:
        record.field("data.sha256", dict, "the CSVs' sha256")
    assert str(caught.value) == (f"{run.path}/manifest.json: data.sha256: expected the CSVs' "
                                 f"sha256, found abc; {DAMAGED}")
    with pytest.raises(RunError, match="config: expected the config's name, found nothing"):
        record.field("config", str, "the config's name")


def test_bare_resume_passes_over_damaged_and_complete_runs(tmp_path):
    older = create_run(tmp_path, "a", NOW)
    older.write_json("manifest.json", {"status": "interrupted"})
    done = create_run(tmp_path, "b", NOW)
    done.write_json("manifest.json", {"status": "complete"})
    done.write_json("metrics.json", {"best": "cnn-tf", "models": [
        {"name": "cnn-tf", "val_accuracy": 0.9}]})
    newest = create_run(tmp_path, "c", NOW)
    (newest.path / "manifest.json").write_text('{"status": "interr')
    assert newest_unfinished(tmp_path) == older.path
    (older.path / "manifest.json").write_text("[]")
    with pytest.raises(RunError, match="no unfinished run to resume"):
        newest_unfinished(tmp_path)


def test_every_kind_of_damage_is_listed_not_raised(tmp_path):
    """What `python -m job runs` shows: before read_run a list or a non-dict metrics row
    raised AttributeError/TypeError and ended the listing in a traceback."""
    for name, manifest, metrics in [("a", "[]", None),
                                    ("b", '{"status": "complete"}', '{"best": 1, "models": [1]}'),
                                    ("c", '{"status": "complete", "data": []}',
                                     '{"best": "x", "models": [{"name": "x", "val_accuracy": 1}]}')]:
        run = create_run(tmp_path, name, NOW)
        (run.path / "manifest.json").write_text(manifest)
        if metrics:
            (run.path / "metrics.json").write_text(metrics)
    rows = [summarize_run(r) for r in find_runs(tmp_path)]
    assert [r["status"] for r in rows] == ["damaged", "damaged", "complete"]
    assert rows[2]["source"] == "?" and rows[2]["val_accuracy"] == 1
