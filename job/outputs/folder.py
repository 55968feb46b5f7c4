"""Run folders: one per training run, never reused, every file written atomically, and
`read_run`, the one reader that checks a run folder before anything relies on it."""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from job.config.values import printable as one_line
from job.errors import RunError
from job.system.files import replace_link, write_atomic

LATEST = "latest"
MANIFEST = "manifest.json"
METRICS = "metrics.json"
STATUSES = ("running", "complete", "failed", "interrupted", "pruned")
# A sweep's trials are runs at <runs_dir>/sweeps/<study>/trials/<number>.
TRIALS = "trials"
DAMAGED = "the run folder is damaged or not the job's: train a new run"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True)
class Run:
    """A run folder `runs/<UTC-timestamp>-<config-name>[-k]`."""

    path: Path

    @property
    def id(self) -> str:
        """The folder's name; a sweep trial's says which study: `cnn-lr/trial-3`. It keys the
        run's HParams sessions, which must be unique across all TensorBoard shows."""
        if self.path.parent.name == TRIALS:
            return f"{self.path.parent.parent.name}/trial-{self.path.name}"
        return self.path.name

    def write_text(self, name: str, text: str) -> Path:
        write_atomic(self.path / name, text)
        return self.path / name

    def write_json(self, name: str, data: Any) -> Path:
        return self.write_text(name, json.dumps(data, indent=2, sort_keys=False) + "\n")

    def read_json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text(encoding="utf-8"))


def create_run(runs_dir: Path, config_name: str, now: dt.datetime | None = None,
               name: str | None = None) -> Run:
    """Make a new, empty run folder `<UTC time>-<config name>` (or `name`); a clash gets a
    -2, -3 suffix, so a run never writes into another's folder."""
    runs_dir = Path(runs_dir)
    stamp = name or f"{(now or utc_now()).strftime('%Y%m%dT%H%M%SZ')}-{config_name}"
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
        path = runs_dir / f"{stamp}{suffix}"
        try:
            path.mkdir()
            return Run(path)
        except FileExistsError:
            continue
    raise RunError(f"{runs_dir}: too many runs named {stamp}")


def mark_latest(run: Run) -> bool:
    """Point runs/latest at `run`, replacing the old link in one rename; False where the
    runs folder's file system has no links."""
    return replace_link(run.path.parent / LATEST, run.path.name)


def find_runs(runs_dir: Path) -> list[Run]:
    """Every run folder (those with a manifest), oldest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    return [Run(p) for p in sorted(runs_dir.iterdir())
            if p.is_dir() and not p.is_symlink() and (p / MANIFEST).is_file()]


@dataclass(frozen=True)
class RunRecord:
    """A run folder with its checked manifest and, once it has them, its metrics."""

    run: Run
    manifest: dict
    metrics: dict | None

    @property
    def status(self) -> str:
        return self.manifest["status"]

    @property
    def best(self) -> dict:
        """The best model's row of metrics.json (read_run checked that it is there)."""
        return next(m for m in self.finished()["models"] if m["name"] == self.metrics["best"])

    def finished(self) -> dict:
        """metrics.json, which a complete run must have: its absence is damage."""
        if self.metrics is None:
            raise RunError(f"{self.run.path / METRICS}: file not found; {DAMAGED}")
        return self.metrics

    def field(self, dotted: str, kind: type | tuple, expected: str) -> Any:
        """A manifest value that a reader relies on, e.g. data.test_rows; damage is a RunError."""
        value: Any = self.manifest
        for part in dotted.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, bool) or not isinstance(value, kind) or value in ("", 0):
            found = "nothing" if value is None else printable(value)
            raise RunError(f"{self.run.path / MANIFEST}: {dotted}: expected {expected}, "
                           f"found {found}; {DAMAGED}")
        return value


def read_run(path: Path, *, scores: tuple[str, ...] = ("val_accuracy",),
             hint: str = "") -> RunRecord:
    """The run folder at `path`, checked: manifest.json is a JSON object with a known
    status, and metrics.json, where there is one, names a best model that has the numbers
    in `scores` (RunRecord.finished insists on it). Damage becomes one RunError naming
    the file; `hint` is added to the "not a run folder" message."""
    run = Run(Path(path))
    if not (run.path / MANIFEST).is_file():
        raise RunError(f"{run.path}: not a run folder{hint}")
    manifest = read_object(run.path / MANIFEST)
    if manifest.get("status") not in STATUSES:
        raise RunError(f"{run.path / MANIFEST}: status: expected one of {' | '.join(STATUSES)}, "
                       f"found {printable(manifest.get('status'))}; {DAMAGED}")
    found = None
    if (run.path / METRICS).exists():
        found = read_object(run.path / METRICS)
        check_best(run.path / METRICS, found, scores)
    return RunRecord(run, manifest, found)


def read_object(path: Path) -> dict:
    """A JSON object the run wrote, or a RunError saying the folder is not usable."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path}: file not found; {DAMAGED}") from None
    except OSError as e:
        raise RunError(f"{path}: cannot read it ({e.strerror}); {DAMAGED}") from None
    except ValueError as e:   # not JSON, or not UTF-8
        raise RunError(f"{path}: not valid JSON ({e}); {DAMAGED}") from None
    if not isinstance(record, dict):
        raise RunError(f"{path}: expected a JSON object, found {type(record).__name__}; "
                       f"{DAMAGED}")
    return record


def check_best(path: Path, metrics: dict, scores: tuple[str, ...]) -> None:
    """metrics.json must list its best model with that model's scores."""
    models = metrics.get("models") if isinstance(metrics.get("models"), list) else []
    best = next((m for m in models if isinstance(m, dict) and "name" in m
                 and m["name"] == metrics.get("best")), None)
    if best is None or not all(is_number(best.get(key)) for key in scores):
        raise RunError(f"{path}: no scores for the best model "
                       f"{printable(metrics.get('best'))}; {DAMAGED}")


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def printable(value: Any) -> str:
    """A found value for a one-line message: JSON for what is not text, escaped, cut short."""
    return one_line(value if isinstance(value, str) else json.dumps(value), limit=40)


def newest_unfinished(runs_dir: Path) -> Path:
    """The most recent readable run that did not complete, for a bare --resume. A
    damaged run is passed over: it cannot be resumed, and naming it says why."""
    for run in reversed(find_runs(runs_dir)):
        try:
            if read_run(run.path).status != "complete":
                return run.path
        except RunError:
            continue
    raise RunError(f"{runs_dir}: no unfinished run to resume")


def summarize_run(run: Run) -> dict:
    """id, status, data source, best model and its val accuracy, for `job runs`; a damaged
    run is listed with status `damaged` and what is wrong with it."""
    row = {"id": run.id, "status": "?", "source": "?", "best": "-", "val_accuracy": None,
           "submission": "-"}
    try:
        record = read_run(run.path)
        if record.status == "complete":
            row.update(best=record.best["name"], val_accuracy=record.best["val_accuracy"])
    except RunError as e:
        return {**row, "status": "damaged", "problem": str(e)}
    data = record.manifest.get("data")
    row.update(status=record.status,
               source=str(data.get("source", "?")) if isinstance(data, dict) else "?")
    row["submission"] = last_submission(run)
    return row


def runs_table(rows: list[dict]) -> list[str]:
    """`job runs`' lines: a row per run, then a `damaged: <why>` line per damaged one."""
    lines = [f"{'run':<36} {'status':<11} {'data':<7} {'best':<10} {'val_acc':<8} submission"]
    for row in rows:
        acc = f"{row['val_accuracy']:.4f}" if row["val_accuracy"] is not None else "-"
        lines.append(f"{row['id']:<36} {row['status']:<11} {row['source']:<7} "
                     f"{row['best']:<10} {acc:<8} {row['submission']}")
    return lines + [f"damaged: {row['problem']}" for row in rows if "problem" in row]


def last_submission(run: Run) -> str:
    """The newest entry of submissions.json as `status score`, `-` when there is none."""
    try:
        last = json.loads((run.path / "submissions.json").read_text(encoding="utf-8"))[-1]
        score = last.get("public_score")
        return f"{last['status']} {score}" if score else str(last["status"])
    except FileNotFoundError:
        return "-"
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
        return "unreadable"
