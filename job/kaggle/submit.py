"""Send a run's submission.csv to the competition, once, and only if it is fit to score.

Everything that can be checked locally is checked before the upload: the run is
complete and trained on the competition's data, the file has the competition's
format, and the same bytes were not submitted before (Kaggle caps daily submissions).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from job.competition import SUBMISSION_HEADER
from job.config import Config, load_config
from job.errors import RunError, SubmissionError
from job.kaggle import client as kaggle_client
from job.outputs.folder import LATEST, Run, RunRecord, find_runs, read_run, utc_now

SUBMISSIONS = "submissions.json"
Log = Callable[[str], None]


def read_submittable(run_dir: Path | None, runs_dir: Path) -> RunRecord:
    """--run DIR (or runs/latest): a complete run trained on the competition's data."""
    path = Path(run_dir) if run_dir else Path(runs_dir) / LATEST
    record = read_run(path, scores=("val_accuracy", "epochs_run"),
                      hint="" if run_dir else " (train first: make train)")
    # runs/latest is a link: name the real folder from here on.
    record = replace(record, run=Run(record.run.path.resolve()))
    if record.status != "complete":
        raise SubmissionError(f"{record.run.path}: run is {record.status}, not complete; "
                              "submit a finished run")
    data = record.manifest.get("data") if isinstance(record.manifest.get("data"), dict) else {}
    if data.get("source") != "kaggle":
        raise SubmissionError(
            f"{record.run.path}: trained on {data.get('source')} data, not the competition's: "
            "its predictions are not for Kaggle's test set; train with data.source: kaggle "
            "(or auto with credentials) and submit that run")
    record.field("data.test_rows", int, "the number of test images")
    record.finished()
    return record


def check_file(path: Path, rows: int) -> None:
    """Header ImageId,Label; ImageIds 1..rows in order; one digit 0..9 per row."""
    if not path.is_file():
        raise SubmissionError(f"{path}: file not found")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines or lines[0].strip() != SUBMISSION_HEADER:
        found = f'"{lines[0][:40]}"' if lines else "an empty file"
        raise SubmissionError(f"{path} line 1: expected header {SUBMISSION_HEADER}, "
                              f"found {found}")
    if len(lines) - 1 != rows:
        raise SubmissionError(f"{path}: expected {rows} prediction rows (one per test image), "
                              f"found {len(lines) - 1}")
    for number, line in enumerate(lines[1:], start=2):
        image_id, _, label = line.partition(",")
        if image_id != str(number - 1):
            raise SubmissionError(f"{path} line {number}: expected ImageId {number - 1}, "
                                  f"found \"{image_id[:20]}\"")
        if label not in tuple("0123456789"):
            raise SubmissionError(f"{path} line {number}: expected a label 0..9, "
                                  f"found \"{label[:20]}\"")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_records(run: Run) -> list[dict]:
    """The submissions made from a run, oldest first."""
    path = run.path / SUBMISSIONS
    if not path.is_file():
        return []
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        records = e
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        why = f" ({records})" if isinstance(records, Exception) else ""
        # Not skipped: it may record the very predictions about to be submitted again.
        raise RunError(f"{path}: not a list of submissions{why}; repair or delete it "
                       "(Kaggle's submissions page lists what was sent)")
    return records


def find_previous(runs_dir: Path, digest: str) -> tuple[Run, dict] | None:
    """An earlier upload of the same bytes from any run in this runs folder."""
    for run in find_runs(runs_dir):
        for record in read_records(run):
            if record.get("sha256") == digest and record.get("ref"):
                return run, record
    return None


def format_message(config: Config, record: RunRecord) -> str:
    """The default description: kaggle.message filled in for this run."""
    best = record.best
    return config.kaggle.message.format(run_id=record.run.id, best=best["name"],
                                        val_accuracy=best["val_accuracy"],
                                        epochs=best["epochs_run"], config=config.name)


def submit(run_dir: Path | None, runs_dir: Path, message: str | None, dry_run: bool,
           force: bool, wait: bool, log: Log, warn: Log) -> dict:
    """Check, upload, record and (with wait) score a run's submission."""
    record = read_submittable(run_dir, runs_dir)
    run = record.run
    config = load_config(run.path / "config.yaml")
    path = run.path / "submission.csv"
    check_file(path, record.manifest["data"]["test_rows"])
    digest = sha256_of(path)
    previous = find_previous(run.path.parent, digest)
    if previous and not force:
        earlier_run, record = previous
        raise SubmissionError(
            f"{path}: these exact predictions were already submitted at {record['time']} "
            f"from run {earlier_run.id} (sha256 {digest[:12]}…); Kaggle caps daily "
            "submissions: use --force to submit them again")
    message = message or format_message(config, record)
    if dry_run:
        log(f"dry run: would submit {path} to {config.competition} as \"{message}\" "
            f"(sha256 {digest[:12]}…); nothing was uploaded")
        return {"dry_run": True, "message": message, "sha256": digest}
    record = upload(config, path, message, digest, log, warn)
    save_record(run, record)
    log(f"submitted {path} to {config.competition} as \"{message}\" (ref {record['ref']})")
    if wait:
        record = wait_for_score(config, run, record, log)
    return record


def upload(config: Config, path: Path, message: str, digest: str, log: Log,
           warn: Log) -> dict:
    """One upload through the client; its silent upload failure becomes an error."""
    kaggle_client.require_credentials(warn)
    api = kaggle_client.connect()
    retry = kaggle_client.Retry(config.kaggle.retries, config.kaggle.backoff_seconds)
    response = kaggle_client.call(
        "submitting", lambda: api.competition_submit(str(path), message, config.competition,
                                                     quiet=True),
        config.competition, retry, log=log)
    ref = getattr(response, "ref", 0)
    if not ref:
        raise SubmissionError(
            f"Kaggle did not accept the upload of {path} ({getattr(response, 'message', '')}); "
            "nothing was submitted: rerun make submit")
    return {"time": utc_now().isoformat(timespec="seconds"), "message": message,
            "sha256": digest, "ref": ref, "status": "pending", "public_score": None}


def save_record(run: Run, record: dict) -> None:
    """Add or update a submission in the run's submissions.json."""
    records = [r for r in read_records(run) if r.get("ref") != record["ref"]]
    run.write_json(SUBMISSIONS, records + [record])


def wait_for_score(config: Config, run: Run, record: dict, log: Log,
                   sleep: Callable[[float], None] = time.sleep) -> dict:
    """Poll Kaggle until the submission is scored (or failed, or we stop waiting)."""
    api = kaggle_client.connect()
    retry = kaggle_client.Retry(config.kaggle.retries, config.kaggle.backoff_seconds)
    deadline = time.monotonic() + config.kaggle.wait_minutes * 60
    while True:
        listed = kaggle_client.call(
            "checking the submission's score",
            lambda: api.competition_submissions(config.competition), config.competition, retry)
        mine = next((s for s in listed or [] if getattr(s, "ref", None) == record["ref"]), None)
        status = getattr(getattr(mine, "status", None), "name", "PENDING").lower()
        if status != "pending":
            record = {**record, "status": status,
                      "public_score": getattr(mine, "public_score", None) or None}
            save_record(run, record)
            log(f"scored: public score {record['public_score']} ({status})")
            return record
        if time.monotonic() >= deadline:
            log(f"still pending after {config.kaggle.wait_minutes:g} minutes; "
                "see `python -m job runs` later")
            return record
        sleep(config.kaggle.poll_seconds)
