"""scripts/cloud_vm.sh without Google Cloud: --dry-run prints every step and runs none, and
against stand-ins of gcloud and git it brings the runs back and deletes the VM (also when
training fails), or keeps it when asked."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.project import SECRET, clean_env

ROOT = Path(__file__).resolve().parents[1]


# --- scripts/cloud_vm.sh --------------------------------------------------------------------

def write_tool(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!{sys.executable}\nimport os, sys, tarfile, io, pathlib\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


LOUD = """
pathlib.Path(os.environ["CALLED"]).write_text(" ".join(sys.argv))
sys.exit("called in a dry run: " + " ".join(sys.argv))
"""


@pytest.fixture
def host(tmp_path):
    """A HOME with kaggle.json, and a bin folder for stand-ins of gcloud and git."""
    home = tmp_path / "home"
    (home / ".kaggle").mkdir(parents=True)
    (home / ".kaggle" / "kaggle.json").write_text(f'{{"username": "u", "key": "{SECRET}"}}\n')
    (home / ".kaggle" / "kaggle.json").chmod(0o600)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    return home, fake_bin


def test_cloud_vm_dry_run_prints_every_step_and_runs_none(host, tmp_path):
    home, fake_bin = host
    write_tool(fake_bin, "gcloud", LOUD)
    write_tool(fake_bin, "git", LOUD)
    called = tmp_path / "called"
    result = subprocess.run(
        [ROOT / "scripts" / "cloud_vm.sh", "--dry-run", "--gpu", "nvidia-tesla-t4",
         "--zone", "us-central1-a", "--spot", "--config", "configs/gpu.yaml", "--submit",
         "--name", "digit-test"],
        env=clean_env(HOME=str(home), PATH=f"{fake_bin}:{os.environ['PATH']}", CALLED=str(called)),
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert not called.exists(), called.read_text()
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith("[dry-run] ") for line in lines)
    steps = [line.removeprefix("[dry-run] ") for line in lines]
    create = next(s for s in steps if s.startswith("gcloud compute instances create digit-test"))
    for flag in ("--zone us-central1-a", "--accelerator type=nvidia-tesla-t4,count=1",
                 "--image-project deeplearning-platform-release",
                 "--metadata install-nvidia-driver=True", "--provisioning-model SPOT"):
        assert flag in create
    assert any(s.startswith("git archive") and s.endswith("HEAD") for s in steps)
    assert any(s.startswith("gcloud compute scp") and "repo.tar.gz digit-test:" in s for s in steps)
    assert any(s.startswith("gcloud compute scp") and s.endswith("digit-test:.kaggle/kaggle.json")
               for s in steps)
    assert any("chmod 600 .kaggle/" in s for s in steps)
    remote = [s.split("--command ", 1)[1] for s in steps if "--command " in s]
    assert all(" --quiet " in s for s in steps if s.startswith("gcloud compute ssh"))  # no prompt
    assert any("command -v make" in s and "apt-get install -y -qq make" in s for s in remote)
    assert any("nvidia-ctk runtime configure --runtime=docker" in s for s in remote)
    order = [next(i for i, s in enumerate(remote) if what in s)
             for what in ("make docker-build", "make docker-doctor CONFIG=configs/gpu.yaml",
                          "make docker-train CONFIG=configs/gpu.yaml")]
    assert order == sorted(order)   # the doctor runs in the new image before any training
    assert any("make docker-submit" in s for s in steps)
    assert any(s.startswith("gcloud compute scp") and "digit-test:runs.tar.gz" in s for s in steps)
    assert steps[-1] == "gcloud compute instances delete digit-test --zone us-central1-a --quiet"
    assert SECRET not in result.stdout + result.stderr


GCLOUD_STANDIN = """
log = pathlib.Path(os.environ["GCLOUD_LOG"])
with log.open("a") as f:
    f.write(" ".join(sys.argv[1:]) + "\\n")
args = sys.argv[1:]
fail_on = os.environ.get("FAIL_ON")
if fail_on and "--command" in args and fail_on in args[args.index("--command") + 1]:
    sys.exit(1)
if args[:2] == ["compute", "scp"] and args[-2].endswith("/doctor.txt"):
    pathlib.Path(args[-1]).write_text("PROBLEM  GPU: none visible to TensorFlow\\n")
if args[:2] == ["compute", "scp"] and args[-2].endswith(":runs.tar.gz"):
    with tarfile.open(args[-1], "w:gz") as tar:      # the VM's runs/, as tar -C repo runs makes it
        data = b"ImageId,Label\\n"
        info = tarfile.TarInfo("runs/20260101T000000Z-gpu/submission.csv")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("runs/latest")
        link.type, link.linkname = tarfile.SYMTYPE, "20260101T000000Z-gpu"
        tar.addfile(link)
"""

GIT_STANDIN = """
if sys.argv[1] == "archive":
    out = sys.argv[sys.argv.index("-o") + 1]
    tarfile.open(out, "w:gz").close()
"""


def run_cloud_vm(host, tmp_path, *args: str, fail_on: str = ""):
    """cloud_vm.sh for real, in a copy of the repository, against stand-ins of gcloud and git."""
    home, fake_bin = host
    write_tool(fake_bin, "gcloud", GCLOUD_STANDIN)
    write_tool(fake_bin, "git", GIT_STANDIN)
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    for name in ("cloud_vm.sh", "cloud_common.sh"):     # cloud_vm.sh sources cloud_common.sh
        shutil.copy2(ROOT / "scripts" / name, repo / "scripts")
    shutil.copytree(ROOT / "configs", repo / "configs")
    (repo / "docker").mkdir()
    shutil.copy2(ROOT / "docker" / "cuda-constraints.txt", repo / "docker")
    log = tmp_path / "gcloud.log"
    result = subprocess.run(
        [repo / "scripts" / "cloud_vm.sh", "--name", "digit-test", *args],
        env=clean_env(HOME=str(home), PATH=f"{fake_bin}:{os.environ['PATH']}",
                      GCLOUD_LOG=str(log), FAIL_ON=fail_on),
        capture_output=True, text=True, timeout=60)
    calls = log.read_text().splitlines() if log.exists() else []
    return result, calls, repo


def test_cloud_vm_brings_runs_back_and_deletes_the_vm(host, tmp_path):
    result, calls, repo = run_cloud_vm(host, tmp_path)
    assert result.returncode == 0, result.stderr
    assert calls[0].startswith("compute instances create digit-test")
    assert calls[-1] == "compute instances delete digit-test --zone us-central1-a --quiet"
    assert (repo / "runs" / "latest" / "submission.csv").is_file()
    assert (repo / "runs" / "latest").is_symlink()
    assert SECRET not in result.stdout + result.stderr


def test_cloud_vm_deletes_the_vm_when_training_fails(host, tmp_path):
    result, calls, repo = run_cloud_vm(host, tmp_path, fail_on="docker-train")
    assert result.returncode != 0
    assert any("docker-train" in c for c in calls)
    assert any(c.startswith("compute scp") and "digit-test:runs.tar.gz" in c for c in calls)
    assert calls[-1] == "compute instances delete digit-test --zone us-central1-a --quiet"
    assert (repo / "runs" / "latest" / "submission.csv").is_file()   # what there was came back


def test_cloud_vm_keeps_the_vm_when_asked(host, tmp_path):
    result, calls, _ = run_cloud_vm(host, tmp_path, "--keep", fail_on="docker-train")
    assert result.returncode != 0
    assert not any("instances delete" in c for c in calls)
    assert "gcloud compute instances delete digit-test" in result.stderr   # how to, later


def test_cloud_vm_stops_before_training_when_the_doctor_fails(host, tmp_path):
    result, calls, repo = run_cloud_vm(host, tmp_path, fail_on="docker-doctor")
    assert result.returncode == 2
    assert not any("docker-train" in c for c in calls)              # nothing was trained
    report = repo / "doctor-digit-test.txt"
    assert report.read_text() == "PROBLEM  GPU: none visible to TensorFlow\n"
    assert result.stderr.strip().splitlines()[-1] == (
        "cloud_vm.sh: the doctor found problems on digit-test (doctor-digit-test.txt); nothing "
        "was trained")
    assert calls[-1] == "compute instances delete digit-test --zone us-central1-a --quiet"


def test_cloud_vm_dry_run_needs_no_credentials_but_says_the_run_will(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    result = subprocess.run([ROOT / "scripts" / "cloud_vm.sh", "--dry-run", "--name", "x"],
                            env=clean_env(HOME=str(home)), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert ("cloud_vm.sh: WARNING: no Kaggle credentials found (~/.kaggle/kaggle.json, "
            "KAGGLE_USERNAME/KAGGLE_KEY or KAGGLE_API_TOKEN): the real run needs them"
            in result.stderr)
    real = subprocess.run([ROOT / "scripts" / "cloud_vm.sh", "--name", "x"],
                          env=clean_env(HOME=str(home), PATH=f"{tmp_path}:/usr/bin:/bin"),
                          capture_output=True, text=True)
    assert real.returncode == 2   # without --dry-run: refused before any VM exists
