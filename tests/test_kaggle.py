"""The job's Kaggle edges — download, train on it, submit — against the loopback stand-in.

Every command runs as a user runs it (`python -m job ...` in a subprocess) with the
real `kaggle` client; the only thing replaced is `time.sleep`, so that back-offs
(ours and the client's own, up to minutes) do not slow the suite.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from job.data.sample import ensure_sample
from helpers.kaggle_standin import KaggleStandin

REPO = Path(__file__).resolve().parent.parent
COMPETITION = "digit-recognizer"
KEY = "k3y-7f9a2c-not-a-real-key"
FAST = "import sys, time; time.sleep = lambda s: None; from job.cli import main; sys.exit(main())"
FILES = ("train.csv", "test.csv", "sample_submission.csv")


@pytest.fixture(scope="module")
def competition_files(tmp_path_factory):
    """The embedded sample's bytes stand in for the competition's CSVs."""
    folder = ensure_sample(tmp_path_factory.mktemp("competition") / "sample")
    return {name: (folder / name).read_bytes() for name in FILES}


@pytest.fixture
def server(competition_files):
    with KaggleStandin(competition_files, competition=COMPETITION, key=KEY) as standin:
        standin.retry_after = "0"
        yield standin


def job(server, home: Path, *args: str, auth: str | None = "key", cwd: Path) -> subprocess.CompletedProcess:
    """`python -m job ARGS` with the client routed to the stand-in and signed in via `auth`."""
    env = dict(os.environ)
    for name, value in server.client_env(home, auth, key=KEY if auth else None).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-c", FAST, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def download(server, tmp_path, *extra, auth="key"):
    return job(server, tmp_path / "home", "download", "--config", str(REPO / "configs/smoke.yaml"),
               "--set", f"data.dir={tmp_path / 'comp'}", "--set", "kaggle.backoff_seconds=0.01",
               *extra, auth=auth, cwd=tmp_path)


def api_calls(server, method: str) -> int:
    return sum(path.endswith("/" + method) for _, path in server.requests)


def leftovers(folder: Path) -> list[str]:
    """Anything in the data folder besides complete CSVs and the parse cache."""
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name not in FILES + (".cache",))


def test_download_installs_checked_files_once(server, tmp_path, competition_files):
    first = download(server, tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().splitlines()[-1] == str(tmp_path / "comp")
    assert {n: (tmp_path / "comp" / n).read_bytes() for n in FILES} == competition_files
    assert leftovers(tmp_path / "comp") == []
    again = download(server, tmp_path)
    assert again.returncode == 0 and "already in" in again.stdout
    assert api_calls(server, "DownloadDataFiles") == 1
    forced = download(server, tmp_path, "--force")
    assert forced.returncode == 0 and api_calls(server, "DownloadDataFiles") == 2


def test_damaged_local_copy_is_downloaded_again(server, tmp_path):
    assert download(server, tmp_path).returncode == 0
    (tmp_path / "comp" / "test.csv").write_text("pixel0\n1\n")
    again = download(server, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "downloading again" in again.stdout and api_calls(server, "DownloadDataFiles") == 2


@pytest.mark.parametrize("fault", ["429", "500", "reset"])
def test_transient_failures_are_retried(server, tmp_path, fault):
    server.fail(fault, times=2, on="DownloadDataFiles")
    result = download(server, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("retry") == 2
    assert (tmp_path / "comp" / "train.csv").is_file()


def test_a_truncated_download_is_resumed_by_the_client(server, tmp_path, competition_files):
    server.fail("truncate", times=1, on="blob")
    result = download(server, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "comp" / "train.csv").read_bytes() == competition_files["train.csv"]


ERRORS = [
    ("401", "DownloadDataFiles",
     "error: Kaggle rejected the credentials (401) while downloading the competition data: "
     "check ~/.kaggle/kaggle.json or KAGGLE_USERNAME/KAGGLE_KEY (or KAGGLE_API_TOKEN)"),
    ("403", "DownloadDataFiles",
     "error: Kaggle refused downloading the competition data (403): accept the competition "
     "rules at https://www.kaggle.com/competitions/digit-recognizer/rules, then rerun"),
    ("404", "DownloadDataFiles",
     "error: Kaggle has no competition 'digit-recognizer' (404): check `competition` in the config"),
    ("429", "DownloadDataFiles",
     "error: Kaggle is rate-limiting requests (429) after 5 attempts while downloading the "
     "competition data; nothing was changed: wait a few minutes and rerun"),
    ("500", "DownloadDataFiles",
     "error: Kaggle's servers failed (HTTP 500) after 5 attempts while downloading the "
     "competition data; nothing was changed: try again later"),
    ("reset", "DownloadDataFiles",
     "error: cannot reach Kaggle (ProxyError) after 5 attempts while downloading the "
     "competition data; nothing was changed: check the network and rerun"),
    ("truncate", "blob",
     "error: transfers from Kaggle kept breaking off after 5 attempts while downloading "
     "the competition data; nothing was changed: check the network and rerun"),
]


@pytest.mark.parametrize("fault, on, message", ERRORS, ids=[e[0] for e in ERRORS])
def test_download_failures_are_one_line_and_leave_nothing(server, tmp_path, fault, on, message):
    server.fail(fault, times=1000, on=on)
    result = download(server, tmp_path)
    assert result.returncode == 2
    assert result.stderr == message + "\n"
    assert leftovers(tmp_path / "comp") == []
    assert not any((tmp_path / "comp" / n).exists() for n in FILES)


def test_unknown_competition_is_a_404(server, tmp_path):
    result = download(server, tmp_path, "--set", "competition=digit-recogniser")
    assert result.returncode == 2
    assert "no competition 'digit-recogniser' (404)" in result.stderr


def test_no_credentials_says_where_to_put_them(server, tmp_path):
    result = download(server, tmp_path, auth=None)
    assert result.returncode == 2
    assert result.stderr.startswith("error: no Kaggle credentials: save kaggle.json")
    assert "data.source: sample trains without them" in result.stderr
    assert server.requests == []


@pytest.mark.parametrize("auth", ["env", "token"])
def test_every_credential_form_works(server, tmp_path, auth):
    assert download(server, tmp_path, auth=auth).returncode == 0


def test_readable_kaggle_json_is_warned_about(server, tmp_path):
    credentials = tmp_path / "home" / ".kaggle" / "kaggle.json"
    credentials.parent.mkdir(parents=True)
    credentials.write_text(json.dumps({"username": server.username, "key": KEY}))
    credentials.chmod(0o644)
    result = download(server, tmp_path, auth=None)
    assert result.returncode == 0, result.stderr
    assert "kaggle.json is readable by other users; run: chmod 600" in result.stderr


# --- train on the downloaded data, then submit -------------------------------------------

@pytest.fixture(scope="module")
def kaggle_run(competition_files, tmp_path_factory):
    """One smoke run trained on data downloaded through the stand-in."""
    root = tmp_path_factory.mktemp("kaggle-run")
    with KaggleStandin(competition_files, competition=COMPETITION, key=KEY) as standin:
        result = job(standin, root / "home", "train", "--config", str(REPO / "configs/smoke.yaml"),
                     "--set", "data.source=auto", "--set", f"data.dir={root / 'comp'}",
                     # two styles are enough to have a best model to submit
                     "--set", "models=[ffn-tf, cnn-keras]",
                     "--set", "output.runs_dir=runs", cwd=root)
    assert result.returncode == 0, result.stderr[-2000:]
    return root, Path(result.stdout.strip().splitlines()[-1])


def submit(server, root: Path, *args: str, auth="key"):
    return job(server, root / "home", "submit", "--runs-dir", "runs", *args, auth=auth, cwd=root)


@pytest.fixture
def fresh_run(kaggle_run, tmp_path):
    """A private copy of the trained run (with runs/latest), so tests can't see each other."""
    import shutil
    root, run = kaggle_run
    shutil.copytree(root / run, tmp_path / "runs" / run.name, symlinks=True)
    (tmp_path / "runs" / "latest").symlink_to(run.name)
    return tmp_path, tmp_path / "runs" / run.name


def test_auto_with_credentials_trains_on_kaggle_data(kaggle_run):
    root, run = kaggle_run
    manifest = json.loads((root / run / "manifest.json").read_text())
    assert manifest["data"]["source"] == "kaggle"
    assert manifest["data"]["reason"].startswith("Kaggle credentials found")


def test_dry_run_checks_everything_and_uploads_nothing(server, fresh_run):
    root, run = fresh_run
    result = submit(server, root, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "dry run: would submit" in result.stdout and "nothing was uploaded" in result.stdout
    assert server.requests == [] and not (run / "submissions.json").exists()


def test_submit_records_refuses_duplicates_and_waits_for_the_score(server, fresh_run):
    root, run = fresh_run
    metrics = json.loads((run / "metrics.json").read_text())
    first = submit(server, root)
    assert first.returncode == 0, first.stderr
    [sent] = server.submissions
    assert sent["bytes"] == (run / "submission.csv").read_bytes()
    assert sent["description"] == (f"{run.name}: {metrics['best']} (val accuracy "
                                   f"{next(m for m in metrics['models'] if m['name'] == metrics['best'])['val_accuracy']:.4f})")
    [record] = json.loads((run / "submissions.json").read_text())
    assert record["sha256"] == sent["sha256"] and record["status"] == "pending"

    again = submit(server, root)
    assert again.returncode == 2 and len(server.submissions) == 1
    assert "already submitted" in again.stderr and "use --force" in again.stderr

    server.score_after_polls, server.public_score = 1, "0.97500"
    forced = submit(server, root, "--force", "--wait", "--message", "second try")
    assert forced.returncode == 0, forced.stderr
    assert "public score 0.97500" in forced.stdout
    assert [s["description"] for s in server.submissions][-1] == "second try"
    records = json.loads((run / "submissions.json").read_text())
    assert [r["status"] for r in records] == ["pending", "complete"]
    listing = job(server, root / "home", "runs", "--runs-dir", "runs", cwd=root)
    assert "complete 0.97500" in listing.stdout


def set_line(index: int, text: str):
    def edit(lines: list[str]) -> None:
        lines[index] = text
    return edit


@pytest.mark.parametrize("edit, message", [
    (set_line(0, "Id,Label"), 'line 1: expected header ImageId,Label, found "Id,Label"'),
    (set_line(2, "3,1"), 'line 3: expected ImageId 2, found "3"'),
    (lambda lines: lines.append("361,0"), "expected 360 prediction rows (one per test image), found 361"),
    (lambda lines: lines.pop(), "expected 360 prediction rows (one per test image), found 359"),
    (set_line(5, "5,x"), 'line 6: expected a label 0..9, found "x"'),
    (set_line(5, "5,10"), 'line 6: expected a label 0..9, found "10"'),
], ids=["header", "image-id", "extra-row", "missing-row", "text-label", "label-10"])
def test_bad_submission_files_are_refused_before_upload(server, fresh_run, edit, message):
    root, run = fresh_run
    path = run / "submission.csv"
    lines = path.read_text().splitlines()
    edit(lines)
    path.write_text("\n".join(lines) + "\n")
    result = submit(server, root)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert server.requests == []


def test_sample_runs_are_refused(server, fresh_run):
    root, run = fresh_run
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["data"]["source"] = "sample"
    (run / "manifest.json").write_text(json.dumps(manifest))
    result = submit(server, root)
    assert result.returncode == 2
    assert "trained on sample data, not the competition's" in result.stderr
    assert server.requests == []


@pytest.mark.parametrize("fault, on, message", [
    ("403", "StartSubmissionUpload",
     "Kaggle refused submitting (403): accept the competition rules at "
     "https://www.kaggle.com/competitions/digit-recognizer/rules, then rerun"),
    ("401", "StartSubmissionUpload", "Kaggle rejected the credentials (401) while submitting"),
    ("500", "blob upload", "Kaggle did not accept the upload of"),
    ("500", "CreateSubmission", "Kaggle's servers failed (HTTP 500) after 5 attempts while submitting"),
])
def test_submit_failures_record_nothing(server, fresh_run, fault, on, message):
    root, run = fresh_run
    server.fail(fault, times=1000, on=on)
    result = submit(server, root)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert server.submissions == [] and not (run / "submissions.json").exists()


def test_the_key_is_never_written_or_printed(server, fresh_run, kaggle_run):
    root, run = fresh_run
    outputs = [submit(server, root, "--dry-run"), submit(server, root, "--wait")]
    assert all(KEY not in r.stdout + r.stderr for r in outputs)
    trained_root, _ = kaggle_run
    for folder in (trained_root / "runs", trained_root / "comp", root / "runs"):
        for path in folder.rglob("*"):
            if path.is_file():
                assert KEY.encode() not in path.read_bytes(), path


class Recorded:
    """A status line that keeps what it was asked to show."""

    def __init__(self):
        self.shown, self.ended = [], 0

    def show(self, text, changed):
        self.shown.append((text, changed))

    def done(self):
        self.ended += 1


def test_a_terminal_sees_the_bytes_arrive_and_nothing_is_added_elsewhere(tmp_path,
                                                                         monkeypatch):
    """The client's own progress bar is silenced; on a terminal a line counts the bytes
    in the download folder (a part file included) and the rate, redrawn, never logged."""
    import threading
    import time
    from job.kaggle import download
    monkeypatch.setattr(download, "EVERY_SECONDS", 0.02)
    status, folder = Recorded(), tmp_path / "bundle"
    folder.mkdir()
    grown = threading.Event()

    def client_writes():
        (folder / "digit-recognizer.zip.part").write_bytes(b"x" * 2_500_000)
        grown.set()

    with download.watching(folder, status, "data: downloading digit-recognizer"):
        threading.Thread(target=client_writes).start()
        grown.wait(5)
        time.sleep(0.2)
    assert status.ended == 1 and status.shown
    assert all(changed is False for _, changed in status.shown)   # redrawn, not printed
    last = status.shown[-1][0]
    assert last.startswith("data: downloading digit-recognizer: 2.5 MB, ") and "MB/s" in last
    with download.watching(folder, None, "x"):   # not a terminal: no thread, no line
        pass
    assert download.progress_text("d", 3_000_000, 2.0) == "d: 3.0 MB, 1.5 MB/s"
