"""sky/launch.py, behind make sky-train and make sky-sweep: it checks here what the input
alone decides, each mistake one `error:` line and exit 2 with nothing launched, and then
hands `sky jobs launch` (a stand-in here, which records what it was given) the task, its
envs and the secrets by name, their values in its environment only."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.project import SECRET, clean_env

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "pw-3f9a0c1b7e5d"
URL = f"postgresql://optuna:{PASSWORD}@10.128.0.5:5432/optuna"

STUB_SKY = r'''
import json, os, sys
with open(os.environ["STUB_LOG"], "w") as log:
    json.dump({"argv": sys.argv[1:], "cwd": os.getcwd(), "env": {
        k: os.environ.get(k) for k in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN",
                                       "OPTUNA_STORAGE")}}, log)
'''


class Project:
    """A copy of the repository's job, configs and sky/ (the launcher takes its root from
    where it lies), a git repository like a clone, a HOME and a stand-in sky."""

    def __init__(self, root: Path):
        self.root, self.home, self.log = root / "repo", root / "home", root / "sky.json"
        for folder in ("job", "configs", "sky"):
            shutil.copytree(ROOT / folder, self.root / folder,
                            ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / ".gitignore", self.root / ".gitignore")
        subprocess.run(["git", "init", "-q", str(self.root)], check=True)
        self.sky = root / "sky"
        self.sky.write_text(f"#!{sys.executable}\n{STUB_SKY}")
        self.sky.chmod(self.sky.stat().st_mode | stat.S_IXUSR)
        (self.home / ".kaggle").mkdir(parents=True)

    def kaggle_json(self, username="tester", key=SECRET) -> None:
        path = self.home / ".kaggle" / "kaggle.json"
        path.write_text(json.dumps({"username": username, "key": key}))
        path.chmod(0o600)

    def launch(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(self.root / "sky" / "launch.py"), *args, "--sky", str(self.sky)],
            cwd=self.root, capture_output=True, text=True, timeout=120,
            env=clean_env(HOME=str(self.home), STUB_LOG=str(self.log), **env))

    def launched(self) -> dict | None:
        return json.loads(self.log.read_text()) if self.log.exists() else None


@pytest.fixture
def project(tmp_path):
    return Project(tmp_path)


def refused(result, project, said: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and said in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert project.launched() is None


def test_train_launches_the_task_with_its_envs_and_the_key_by_name(project):
    project.kaggle_json()
    result = project.launch("train", "--config", "configs/gpu.yaml", "--bucket", "my-runs")
    assert result.returncode == 0, result.stderr
    launched = project.launched()
    assert launched["argv"] == [
        "jobs", "launch", "sky/train.yaml", "--name", "digit-job-gpu",
        "--env", "RUNS_BUCKET=my-runs", "--env", "CONFIG=configs/gpu.yaml",
        "--secret", "KAGGLE_USERNAME", "--secret", "KAGGLE_KEY"]
    assert launched["cwd"] == str(project.root)      # the task's workdir `.`
    assert launched["env"]["KAGGLE_USERNAME"] == "tester"
    assert launched["env"]["KAGGLE_KEY"] == SECRET   # from kaggle.json, in sky's environment
    assert SECRET not in result.stdout + result.stderr
    assert "jobs launch sky/train.yaml" in result.stderr    # the command, shown


def test_the_flags_reach_the_sky_command(project):
    result = project.launch("train", "--config", "configs/smoke.yaml", "--bucket", "my-runs",
                            "--submit", "--gpus", "A100:1", "--on-demand", "--detach", "--yes",
                            "--name", "try-1", KAGGLE_API_TOKEN=SECRET)
    assert result.returncode == 0, result.stderr
    argv = project.launched()["argv"]
    assert argv[3:5] == ["--name", "try-1"]
    assert argv[5:] == ["--env", "RUNS_BUCKET=my-runs", "--env", "CONFIG=configs/smoke.yaml",
                        "--env", "SUBMIT=true", "--secret", "KAGGLE_API_TOKEN",
                        "--gpus", "A100:1", "--no-use-spot", "--detach-run", "--yes"]


def test_a_dry_run_checks_and_prints_but_launches_nothing(project):
    project.kaggle_json()
    result = project.launch("train", "--bucket", "my-runs", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert project.launched() is None
    assert "--secret KAGGLE_KEY" in result.stderr and "nothing was launched" in result.stderr
    assert SECRET not in result.stderr


def test_a_bad_config_is_one_line_before_anything_launches(project):
    project.kaggle_json()
    bad = project.root / "configs" / "typo.yaml"
    bad.write_text("extends: gpu.yaml\ntrain:\n  epochz: 3\n")
    refused(project.launch("train", "--config", "configs/typo.yaml", "--bucket", "b-1"),
            project, "epochz")


@pytest.mark.parametrize("config, said", [
    ("elsewhere.yaml", "expected a file under configs/"),
    ("configs/missing.yaml", "file not found")])
def test_a_config_the_vm_would_not_have_is_refused(project, config, said):
    project.kaggle_json()
    (project.root / "elsewhere.yaml").write_text("extends: configs/gpu.yaml\n")
    refused(project.launch("train", "--config", config, "--bucket", "b-1"), project, said)


@pytest.mark.parametrize("bucket, said", [
    ("", "no bucket: set BUCKET="), ("My_Runs", "lowercase"), ("ab", "3-63"),
    ("runs..x", "lowercase")])
def test_the_bucket_must_be_a_bucket_name(project, bucket, said):
    project.kaggle_json()
    refused(project.launch("train", "--bucket", bucket), project, said)


def test_the_bucket_may_come_from_the_environment(project):
    project.kaggle_json()
    assert project.launch("train", SKY_BUCKET="from-env").returncode == 0
    assert "RUNS_BUCKET=from-env" in project.launched()["argv"]


def test_kaggle_data_needs_credentials_and_the_sample_does_not(project):
    refused(project.launch("train", "--bucket", "b-1"), project, "no Kaggle credentials")
    result = project.launch("train", "--config", "configs/smoke.yaml", "--bucket", "b-1")
    assert result.returncode == 0, result.stderr
    assert "--secret" not in project.launched()["argv"]


def test_a_credential_file_the_upload_would_carry_is_refused(project):
    project.kaggle_json()
    (project.root / "kaggle.json").write_text("{}")
    refused(project.launch("train", "--bucket", "b-1"), project, "kaggle.json: a credential")
    (project.root / "kaggle.json").unlink()
    (project.root / "configs" / "notes.txt").write_text(f"my key is {SECRET}\n")
    refused(project.launch("train", "--bucket", "b-1"), project,
            "configs/notes.txt holds one of your credentials")
    # what .gitignore names is not uploaded by SkyPilot: no reason to stop
    (project.root / "configs" / "notes.txt").unlink()
    (project.root / "runs").mkdir()
    (project.root / "runs" / "kaggle.json").write_text("{}")
    assert project.launch("train", "--bucket", "b-1").returncode == 0


def test_the_user_name_in_a_file_is_no_reason_to_stop(project):
    project.kaggle_json(username="kaggle-tester-name")
    (project.root / "configs" / "notes.txt").write_text("runs of kaggle-tester-name\n")
    assert project.launch("train", "--bucket", "b-1").returncode == 0


def test_a_sweep_launches_n_jobs_on_one_study_with_the_database_by_name(project):
    project.kaggle_json()
    result = project.launch("sweep", "--config", "configs/sweep.yaml", "--jobs", "4",
                            "--bucket", "my-runs", OPTUNA_STORAGE=URL)
    assert result.returncode == 0, result.stderr
    launched = project.launched()
    assert launched["argv"] == [
        "jobs", "launch", "sky/sweep.yaml", "--name", "digit-job-sweep-cnn",
        "--env", "RUNS_BUCKET=my-runs", "--env", "CONFIG=configs/sweep.yaml",
        "--env", "STUDY=cnn", "--env", "DOCTOR_CONFIG=configs/gpu.yaml",
        "--secret", "OPTUNA_STORAGE", "--secret", "KAGGLE_USERNAME", "--secret", "KAGGLE_KEY",
        "--num-jobs", "4"]
    assert launched["env"]["OPTUNA_STORAGE"] == URL
    assert PASSWORD not in result.stdout + result.stderr + " ".join(launched["argv"])


def test_a_sweep_takes_the_study_it_is_given(project):
    project.kaggle_json()
    assert project.launch("sweep", "--study", "cnn-2", "--bucket", "b-1",
                          OPTUNA_STORAGE=URL).returncode == 0
    argv = project.launched()["argv"]
    assert "STUDY=cnn-2" in argv and argv[4] == "digit-job-sweep-cnn-2"


@pytest.mark.parametrize("url, said", [
    (None, "OPTUNA_STORAGE is not set"),
    ("sqlite:///runs/sweeps/cnn/study.db", "not a postgresql://"),
    (f"postgresql://optuna:{PASSWORD}@localhost:5432/optuna", "names localhost")])
def test_a_sweep_needs_a_database_the_vms_can_share(project, url, said):
    project.kaggle_json()
    env = {"OPTUNA_STORAGE": url} if url else {}
    result = project.launch("sweep", "--bucket", "b-1", **env)
    refused(result, project, said)
    assert PASSWORD not in result.stderr


def test_a_plain_config_is_not_a_sweep(project):
    project.kaggle_json()
    refused(project.launch("sweep", "--config", "configs/gpu.yaml", "--bucket", "b-1",
                           OPTUNA_STORAGE=URL), project, "no sweep: section")


def test_a_sweep_needs_at_least_one_job(project):
    project.kaggle_json()
    refused(project.launch("sweep", "--jobs", "0", "--bucket", "b-1", OPTUNA_STORAGE=URL),
            project, "--jobs 0")


def test_without_skypilot_installed_it_says_how_to_install_it(project, tmp_path):
    project.kaggle_json()
    project.sky = tmp_path / "no-such-sky"
    refused(project.launch("train", "--bucket", "b-1"), project, "make sky-venv")


def test_make_sky_train_and_sky_sweep_run_the_launcher():
    def dry(*args: str) -> str:
        out = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True,
                             env=clean_env(), check=True).stdout
        return " ".join(out.split())
    assert ".venv/bin/python sky/launch.py train --config configs/gpu.yaml --bucket b-1" in dry(
        "sky-train", "BUCKET=b-1")
    out = dry("sky-sweep", "JOBS=4", "BUCKET=b-1", "STUDY=s", "ON_DEMAND=1")
    assert ("sky/launch.py sweep --config configs/sweep.yaml --jobs 4 --study s --bucket b-1 "
            "--on-demand") in out
