"""Run folders: one per training run, never reused, every file written atomically."""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from job.errors import RunError
from job.files import write_atomic  # re-exported: submission and tests import it from here

LATEST = "latest"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True)
class Run:
    """A run folder `runs/<UTC-timestamp>-<config-name>[-k]`."""

    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    def write_text(self, name: str, text: str) -> Path:
        write_atomic(self.path / name, text)
        return self.path / name

    def write_json(self, name: str, data: Any) -> Path:
        return self.write_text(name, json.dumps(data, indent=2, sort_keys=False) + "\n")

    def read_json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text(encoding="utf-8"))


def create_run(runs_dir: Path, config_name: str, now: dt.datetime | None = None) -> Run:
    """Make a new, empty run folder; a clash in the same second gets a -2, -3 suffix."""
    runs_dir = Path(runs_dir)
    stamp = (now or utc_now()).strftime("%Y%m%dT%H%M%SZ")
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunError(f"{runs_dir}: cannot create the runs folder ({e.strerror}); "
                       "set output.runs_dir to a writable folder") from None
    if not os.access(runs_dir, os.W_OK):
        raise RunError(f"{runs_dir}: runs folder is not writable; "
                       "set output.runs_dir to a writable folder")
    for attempt in range(1, 1000):
        suffix = "" if attempt == 1 else f"-{attempt}"
        path = runs_dir / f"{stamp}-{config_name}{suffix}"
        try:
            path.mkdir()
            return Run(path)
        except FileExistsError:
            continue
    raise RunError(f"{runs_dir}: too many runs named {stamp}-{config_name}")


def mark_latest(run: Run) -> None:
    """Point runs/latest at `run`, replacing the old link in one rename."""
    link = run.path.parent / LATEST
    tmp = run.path.parent / f".{LATEST}.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run.path.name, target_is_directory=True)
    os.replace(tmp, link)


def find_runs(runs_dir: Path) -> list[Run]:
    """Every run folder (those with a manifest), oldest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    return [Run(p) for p in sorted(runs_dir.iterdir())
            if p.is_dir() and not p.is_symlink() and (p / "manifest.json").is_file()]


def summarize_run(run: Run) -> dict:
    """id, status, data source, best model and its val accuracy, for `job runs`."""
    row = {"id": run.id, "status": "?", "source": "?", "best": "-", "val_accuracy": None,
           "submission": "-"}
    try:
        manifest = run.read_json("manifest.json")
        row.update(status=manifest.get("status", "?"),
                   source=manifest.get("data", {}).get("source", "?"))
        if (run.path / "metrics.json").is_file():
            metrics = run.read_json("metrics.json")
            best = next(m for m in metrics["models"] if m["name"] == metrics["best"])
            row.update(best=best["name"], val_accuracy=best["val_accuracy"])
        if (run.path / "submissions.json").is_file():
            last = run.read_json("submissions.json")[-1]
            score = last.get("public_score")
            row["submission"] = f"{last['status']} {score}" if score else last["status"]
    except (OSError, ValueError, KeyError, IndexError, StopIteration):
        row["status"] = "unreadable"
    return row
