"""Kaggle credentials never leave the places the user put them.

A whole session — download, train, submit (dry run, then for real with --wait), list runs
— runs against the loopback Kaggle stand-in with distinctive test credentials, signed in
each of the three ways (KAGGLE_USERNAME/KAGGLE_KEY, kaggle.json, KAGGLE_API_TOKEN). Then
every file the job wrote (run folder with TensorBoard events and saved models, manifest,
config snapshot, submissions.json, the data folder and its cache, the home folder but
the credential file itself) and every command's stdout and stderr is searched for them.
The Docker build context is checked too: credential files put anywhere in a copy of the
checkout stay out of what `docker build` would send.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from job.data.sample import ensure_sample
from helpers.docker_context import build_context
from helpers.kaggle_standin import KaggleStandin

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "configs" / "smoke.yaml"
USERNAME = "leakcheck-user"
KEY = "5ec7e7k3y0f7e57c4fd1e9a2b3c4d5e6"   # 32 hex-like characters, as Kaggle's keys are
TOKEN = "KGAT_t0k3n-0f-7h3-l3akch3ck-s3ss10n"
SECRETS = {
    "key": KEY.encode(),
    "token": TOKEN.encode(),
    "username:key": f"{USERNAME}:{KEY}".encode(),
    "basic auth": base64.b64encode(f"{USERNAME}:{KEY}".encode()),
    "key in base64": base64.b64encode(KEY.encode()).rstrip(b"="),
    "key in UTF-16": KEY.encode("utf-16-le"),
}
# No back-off waits or poll intervals: the stand-in answers at once.
FAST = "import sys, time; time.sleep = lambda s: None; from job.cli import main; sys.exit(main())"
FILES = ("train.csv", "test.csv", "sample_submission.csv")


def leaks(blob: bytes) -> list[str]:
    """Which of the secrets (in any of their forms) `blob` holds."""
    return [name for name, secret in SECRETS.items() if secret in blob]


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """One user's session in its own folder: (root, home, {command: result})."""
    root = tmp_path_factory.mktemp("secrets")
    sample = ensure_sample(root / "competition")
    files = {name: (sample / name).read_bytes() for name in FILES}
    shutil.rmtree(sample)
    home = root / "home"
    results = {}
    with KaggleStandin(files, username=USERNAME, key=KEY, token=TOKEN) as server:
        server.score_after_polls = 1

        def job(name: str, auth: str, *args: str) -> None:
            env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
            for var, value in server.client_env(home, auth).items():
                if value is None:
                    env.pop(var, None)
                else:
                    env[var] = value
            env["PYTHONPATH"] = str(REPO)
            results[name] = subprocess.run([sys.executable, "-c", FAST, *args], cwd=root,
                                           env=env, capture_output=True, text=True, timeout=600)
            assert results[name].returncode == 0, (name, results[name].stderr[-3000:])

        data = ["--set", "data.dir=comp", "--set", "kaggle.backoff_seconds=0.01"]
        job("download", "env", "download", "--config", str(SMOKE), *data)
        job("train", "key", "train", "--config", str(SMOKE), "--set", "data.source=auto",
            "--set", "models=[ffn-tf, ffn-torch]",   # a run to submit, in two frameworks
            "--set", "output.runs_dir=runs", *data)
        job("submit --dry-run", "key", "submit", "--dry-run")
        job("submit --wait", "token", "submit", "--wait")
        job("runs", "key", "runs")
        assert len(server.submissions) == 1
    return root, home, results


def written_files(root: Path, home: Path) -> list[Path]:
    """Every file of the session but the credential file the user put in place."""
    credential = home / ".kaggle" / "kaggle.json"
    return [p for p in sorted(root.rglob("*")) if p.is_file() and p != credential]


def test_the_session_wrote_what_is_to_be_searched(session):
    root, home, _ = session
    run = (root / "runs" / "latest").resolve()
    names = {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()}
    assert {"manifest.json", "config.yaml", "metrics.json", "report.md", "submission.csv",
            "submissions.json"} <= names
    assert any("events.out.tfevents" in n for n in names)          # TensorBoard
    assert any(n.startswith("models/") for n in names)               # saved models
    assert {p.name for p in (root / "comp").iterdir()} >= {*FILES, ".cache"}
    assert any((root / "comp" / ".cache").glob("arrays-*.npz"))
    assert (home / ".kaggle" / "kaggle.json").is_file()


def test_no_file_the_job_wrote_holds_a_credential(session):
    root, home, _ = session
    found = {str(p.relative_to(root)): leaks(p.read_bytes()) for p in written_files(root, home)}
    assert {path: what for path, what in found.items() if what} == {}
    assert len(found) > 20   # the run folder, the data, the cache, the client's files


def test_no_command_printed_a_credential(session):
    _, _, results = session
    for name, result in results.items():
        assert leaks(result.stdout.encode()) == [], name
        assert leaks(result.stderr.encode()) == [], name


def test_the_manifest_says_where_the_credentials_were_found_not_what_they_are(session):
    root, home, _ = session
    manifest = ((root / "runs" / "latest") / "manifest.json").read_text()
    assert f"Kaggle credentials found ({home}/.kaggle/kaggle.json)" in manifest


# --- the Docker build context -------------------------------------------------------------

DOCKERIGNORE = REPO / ".dockerignore"
CREDENTIAL_NAME = re.compile(r"(^|/)(kaggle\.json|access_token(\.txt)?|credentials\.json|"
                             r"\.kaggle(/|$)|\.env$|[^/]*\.env$)")
DECOYS = ["kaggle.json", ".kaggle/kaggle.json", ".kaggle/access_token", ".env", "secrets.env",
          "configs/kaggle.json", "configs/.kaggle/kaggle.json", "configs/prod.env",
          "configs/access_token", "job/.env", "job/access_token.txt", "job/credentials.json",
          "job/nets/.kaggle/kaggle.json", "docker/kaggle.json", "home/.kaggle/kaggle.json",
          "data/kaggle.json", "runs/x/.env"]
needs_dockerignore = pytest.mark.skipif(not DOCKERIGNORE.is_file(),
                                        reason=".dockerignore does not exist yet: there is no "
                                               "build context to check")


@needs_dockerignore
def test_credentials_put_anywhere_in_the_checkout_stay_out_of_the_build_context(session,
                                                                                tmp_path):
    root, home, _ = session
    context = tmp_path / "context"
    shutil.copytree(REPO, context, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", ".git", ".hypothesis", ".pytest_cache", "__pycache__", "data", "runs"))
    shutil.copytree(root / "runs", context / "runs", symlinks=True)   # a real run, a real cache
    shutil.copytree(root / "comp", context / "data" / "digit-recognizer")
    credential = (home / ".kaggle" / "kaggle.json").read_bytes()
    for decoy in DECOYS:
        (context / decoy).parent.mkdir(parents=True, exist_ok=True)
        (context / decoy).write_bytes(credential if decoy.endswith(".json")
                                      else f"KAGGLE_KEY={KEY}\nKAGGLE_API_TOKEN={TOKEN}\n".encode())

    sent = sorted(build_context(context))
    assert "job/cli.py" in sent and "configs/smoke.yaml" in sent
    assert [p for p in sent if CREDENTIAL_NAME.search(p)] == []
    found = {p: leaks((context / p).read_bytes()) for p in sent}
    assert {p: what for p, what in found.items() if what} == {}


@needs_dockerignore
def test_the_real_build_context_holds_no_credential():
    sent = sorted(build_context(REPO))
    assert "job/cli.py" in sent
    assert [p for p in sent if CREDENTIAL_NAME.search(p)] == []
    kaggle_json = re.compile(rb'"key"\s*:\s*"[0-9a-f]{32}"')     # what a real kaggle.json holds
    assert [p for p in sent if kaggle_json.search((REPO / p).read_bytes())] == []
