"""`make lint` and the GPU plumbing that cannot run here: hadolint on docker/Dockerfile,
shellcheck on the scripts, the base image tag against the TensorFlow pin, the docker targets as
`make -n` shows them, and scripts/cloud_vm.sh in --dry-run and against a stand-in gcloud."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent     # .venv/bin: requirements-dev.txt installs both linters
SECRET = "0123456789abcdef-not-a-real-key"


def linter(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} missing: `make venv` installs it from requirements-dev.txt")
    return path


def tensorflow_pin() -> str:
    found = re.search(r"^tensorflow==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert found, "requirements.txt pins tensorflow==<version>"
    return found.group(1)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without Kaggle credentials or make's own settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KAGGLE_", "MAKE")) and k not in ("MFLAGS", "CONFIG")}
    return {**env, **extra}


def make_dry(*args: str, **env: str) -> str:
    result = subprocess.run(["make", "--no-print-directory", "-n", *args], cwd=ROOT,
                            env=clean_env(**env), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


# --- linters --------------------------------------------------------------------------------

def test_hadolint_finds_nothing_in_the_dockerfile():
    result = subprocess.run([linter("hadolint"), "--no-color", "docker/Dockerfile"], cwd=ROOT,
                            capture_output=True, text=True)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_shellcheck_finds_nothing_in_the_scripts():
    scripts = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "scripts").glob("*.sh"))
    assert "scripts/cloud_vm.sh" in scripts
    result = subprocess.run([linter("shellcheck"), *scripts, ".ci/run"], cwd=ROOT,
                            capture_output=True, text=True)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_base_image_is_the_pinned_tensorflow():
    text = (ROOT / "docker" / "Dockerfile").read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))
    image = re.search(r"^FROM (\S+)", text, re.M).group(1)
    image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
    pin = tensorflow_pin()
    assert image == f"tensorflow/tensorflow:{pin}-gpu"
    # the cuDNN 9 fix installs the same TensorFlow with its CUDA wheels
    assert '"tensorflow[and-cuda]==${TF_VERSION}"' in text and args["TF_VERSION"] == pin


# --- Makefile -------------------------------------------------------------------------------

def test_help_lists_the_docker_and_lint_targets():
    out = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, env=clean_env(),
                         capture_output=True, text=True, check=True).stdout
    for target in ("docker-build", "docker-train", "docker-submit", "lint"):
        assert re.search(rf"^  make {target} +\S", out, re.M), target


def test_docker_build_tags_the_tensorflow_version_and_latest():
    pin = tensorflow_pin()
    out = make_dry("docker-build")
    assert f"-f docker/Dockerfile --build-arg TF_VERSION={pin}" in out
    assert f"-t digit-job:{pin} -t digit-job:latest ." in out


def test_docker_train_uses_all_gpus_the_host_user_and_mounts(tmp_path):
    kaggle_dir = tmp_path / "kaggle"
    kaggle_dir.mkdir()
    out = make_dry("docker-train", KAGGLE_CONFIG_DIR=str(kaggle_dir), KAGGLE_KEY=SECRET,
                   KAGGLE_USERNAME="someone")
    command = " ".join(out.replace("\\\n", " ").split())
    assert "docker run --rm " in command and " --gpus all " in command
    assert '--user "$(id -u):$(id -g)"' in command
    assert f'-v "{ROOT}/runs:/app/runs"' in command
    assert f'-v "{ROOT}/data:/app/data"' in command
    assert f'-v "{kaggle_dir}:/home/app/.kaggle:ro"' in command
    assert command.endswith(f"digit-job:{tensorflow_pin()} train --config configs/gpu.yaml")
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        assert re.search(rf"-e {name}(\s|$)", command), name     # the name only, no =value
    assert SECRET not in out and "someone" not in out


def test_docker_train_takes_config_and_mounts_no_missing_credentials(tmp_path):
    out = make_dry("docker-train", "CONFIG=configs/smoke.yaml", HOME=str(tmp_path))
    assert "train --config configs/smoke.yaml" in out
    assert "/home/app/.kaggle" not in out        # no ~/.kaggle on this "host"
    assert "-e KAGGLE_KEY" in out
    # `make train` keeps its own default
    assert "--config configs/default.yaml" in make_dry("train")


def test_docker_submit_mounts_runs_and_passes_the_run():
    out = make_dry("docker-submit", "RUN=runs/20260101T000000Z-gpu", "ARGS=--wait")
    assert f'-v "{ROOT}/runs:/app/runs"' in out and "--gpus" not in out
    assert "submit --runs-dir runs --run runs/20260101T000000Z-gpu --wait" in out


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
    assert any("make docker-build docker-train CONFIG=configs/gpu.yaml" in s for s in steps)
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
    shutil.copy2(ROOT / "scripts" / "cloud_vm.sh", repo / "scripts")
    shutil.copytree(ROOT / "configs", repo / "configs")
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
