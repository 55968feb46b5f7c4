"""sky/train.yaml and sky/sweep.yaml: each loads in SkyPilot's own parser (.sky-venv) with the
envs `make sky-train`/`make sky-sweep` pass, and their setup and run blocks, as SkyPilot read
them, run under bash here with stand-ins of docker, sudo and nvidia-smi and the variables
SkyPilot sets on a VM: the real Makefile and sky/remote.sh decide what reaches docker."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers.project import SECRET, clean_env, tensorflow_pin
from helpers.skypilot import load_task

from job.outputs.folder import Run

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("train", "sweep")
TASK_ID = "sky-managed-2026-12-02-19-30-00-123456_digit-job-gpu_7-0"
PASSWORD = "pw-3f9a0c1b7e5d"     # the database password: never printed, passed or written
TF = tensorflow_pin()


def task_file(name: str) -> Path:
    return ROOT / "sky" / f"{name}.yaml"


# --- the task files in SkyPilot ----------------------------------------------------------

@pytest.mark.parametrize("name", TASKS)
def test_each_task_loads_in_skypilot_with_the_bucket_it_is_given(name):
    secrets = {"OPTUNA_STORAGE": "postgresql://u:p@db:5432/optuna"} if name == "sweep" else {}
    task = load_task(task_file(name), {"RUNS_BUCKET": "my-digit-runs"}, secrets)
    assert "error" not in task, task
    assert task["mounts"] == {"/digit-job-bucket": {"name": "my-digit-runs",
                                                   "mode": "MOUNT_CACHED"}}
    assert task["workdir"] == "."
    assert {"KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"} <= set(task["secrets"])
    resources = task["resources"]
    assert sorted(gpu for r in resources for gpu in r["accelerators"]) == [
        "A100", "A10G", "L4", "T4"]    # Turing or newer: the 580 driver of SkyPilot's image
    for r in resources:
        # nothing that ties the task to one cloud or fetches a catalog to check it
        assert (r["zone"], r["region"], r["instance_type"], r["image_id"]) == (None,) * 4
        assert r["use_spot"] is True
        assert r["job_recovery"] == {"strategy": "EAGER_NEXT_REGION",
                                     "max_restarts_on_errors": 0}


@pytest.mark.parametrize("name", TASKS)
def test_a_task_without_its_bucket_is_refused_naming_it(name):
    assert "'RUNS_BUCKET' is None" in load_task(task_file(name))["error"]


@pytest.mark.parametrize("name", TASKS)
def test_a_misspelt_key_is_refused(name, tmp_path):
    bad = tmp_path / "task.yaml"
    bad.write_text(task_file(name).read_text().replace("\nresources:", "\nresource:"))
    error = load_task(bad, {"RUNS_BUCKET": "b"})["error"]
    assert "Invalid task YAML" in error and "'resource'" in error
    bad.write_text(task_file(name).read_text().replace("use_spot:", "use_spots:"))
    assert "use_spots" in load_task(bad, {"RUNS_BUCKET": "b"})["error"]


def test_the_sweep_needs_its_database_url_as_a_secret_not_an_env():
    raw = yaml.safe_load(task_file("sweep").read_text())
    assert "OPTUNA_STORAGE" in raw["secrets"] and raw["secrets"]["OPTUNA_STORAGE"] is None
    assert "OPTUNA_STORAGE" not in raw["envs"]
    for name in TASKS:
        text = task_file(name).read_text()
        assert "postgresql://" not in re.sub(r"#.*", "", text)   # only in comments
        assert "KAGGLE_KEY: \"\"" in text                      # empty: filled by --secret


@pytest.mark.parametrize("name", TASKS)
def test_every_key_of_a_task_file_has_a_comment(name):
    """The house rule for YAML: a comment on each key, on its line or the line above (the
    shell of the setup and run blocks is not YAML)."""
    lines = task_file(name).read_text().splitlines()
    in_block = False
    for i, line in enumerate(lines):
        if in_block and (line.startswith(" ") or not line):
            continue
        in_block = bool(re.match(r"^\w+: \|$", line))
        if re.match(r"^\s*[\w/${}-]+:", line):
            assert "#" in line or lines[i - 1].lstrip().startswith("#"), f"{name}.yaml: {line}"


def test_the_bucket_is_mounted_where_remote_sh_looks_for_it():
    remote = (ROOT / "sky" / "remote.sh").read_text()
    default = re.search(r"^BUCKET_DIR=\$\{BUCKET_DIR:-(\S+)\}$", remote, re.M).group(1)
    for name in TASKS:
        assert list(yaml.safe_load(task_file(name).read_text())["file_mounts"]) == [default]


# --- the blocks on a stand-in VM ---------------------------------------------------------

STUB_DOCKER = r'''
import json, os, pathlib, sys
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps({"argv": args, "env": sorted(
        k for k in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "OPTUNA_STORAGE")
        if k in os.environ)}) + "\n")
if args[:1] == ["info"]:
    sys.exit(int(os.environ.get("STUB_DOCKER_INFO", "0")))
if args[:1] != ["run"]:
    sys.exit(0)
volumes = dict(reversed(args[i + 1].split(":")[:2]) for i, a in enumerate(args) if a == "-v")
image = next(i for i, a in enumerate(args) if a.startswith("digit-job:"))
command = args[image + 1:]
if command[0] == "doctor":
    print("GPU 0: NVIDIA T4 (driver 580.95.05)")
    if os.environ.get("STUB_DOCTOR_FAILS"):
        print("PROBLEM torch: built for CUDA 13.0, newer than driver 535 runs")
        sys.exit(1)
elif command[0] == "train":
    runs = pathlib.Path(volumes["/app/runs"])
    run = runs / (command[2].split("/", 1)[1] if command[1] == "--resume" else
                  "20261202T193000Z-gpu")
    run.mkdir(parents=True, exist_ok=True)
    (run / "manifest.json").write_text(json.dumps({"status": "complete"}, indent=2))
'''

STUB_SUDO = r'''
import os, sys
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as log:
    log.write('{"sudo": %d}\n' % len(args))
kept = [a.split("=", 1)[1].split(",") for a in args if a.startswith("--preserve-env=")]
args = [a for a in args if not a.startswith("--preserve-env=")]
# sudo's own reset: only what --preserve-env names goes through
env = {k: v for k, v in os.environ.items() if k.startswith(("PATH", "STUB_", "HOME"))
       or k in (kept[0] if kept else [])}
os.execvpe(args[0], args, env)
'''


def write_stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


class VM:
    """A stand-in VM: SkyPilot's copy of the repository (its workdir), the mounted bucket,
    and stand-ins that log each docker call."""

    def __init__(self, root: Path):
        self.work, self.bucket, self.bin = root / "sky_workdir", root / "bucket", root / "bin"
        self.log, self.home = root / "docker.log", root / "home"
        self.home.mkdir()
        for name in ("Makefile", "requirements.txt"):
            (self.work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, self.work / name)
        for folder in ("sky", "configs", "docker"):
            shutil.copytree(ROOT / folder, self.work / folder)
        self.bucket.mkdir()
        self.bin.mkdir()
        write_stub(self.bin, "docker", STUB_DOCKER)
        write_stub(self.bin, "sudo", STUB_SUDO)
        write_stub(self.bin, "nvidia-smi", 'print("GPU 0: T4\\nGPU 1: T4")')

    def run(self, task: str, block: str, envs: dict = {}, secrets: dict = {},
            **extra: str) -> subprocess.CompletedProcess:
        """A block of the task as SkyPilot reads it, with the task's envs and secrets
        (overridden as --env and --secret do) and the variables SkyPilot sets."""
        loaded = load_task(task_file(task), {"RUNS_BUCKET": "b", **envs}, secrets)
        env = {k: v for k, v in clean_env().items() if not k.startswith("OPTUNA")}
        env.update(loaded["envs"])
        declared = yaml.safe_load(task_file(task).read_text())["secrets"]
        env.update({k: v for k, v in declared.items() if v is not None})
        env.update(secrets)
        env.update({"PATH": f"{self.bin}:{os.environ['PATH']}", "STUB_LOG": str(self.log),
                    "BUCKET_DIR": str(self.bucket), "SKYPILOT_TASK_ID": TASK_ID,
                    "SKYPILOT_NUM_GPUS_PER_NODE": "1", "SKYPILOT_NODE_RANK": "0",
                    "SKYPILOT_JOB_RANK": "0", "SKYPILOT_NUM_JOBS": "1", "HOME": str(self.home),
                    **extra})
        return subprocess.run(["bash", "-c", loaded[block]], cwd=self.work, env=env,
                              capture_output=True, text=True, timeout=120)

    def calls(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def docker_runs(self) -> list[list[str]]:
        """What each `docker run` ran in the image: its command after the image name."""
        runs = []
        for call in self.calls():
            argv = call.get("argv", [])
            if argv[:1] == ["run"]:
                at = next(i for i, a in enumerate(argv) if a.startswith("digit-job:"))
                runs.append(argv[at + 1:])
        return runs

    def mounts_of(self, command: str) -> dict[str, str]:
        argv = next(c["argv"] for c in self.calls() if command in c.get("argv", []))
        return dict(reversed(argv[i + 1].split(":")[:2]) for i, a in enumerate(argv) if a == "-v")


@pytest.fixture
def vm(tmp_path):
    return VM(tmp_path)


def job_dir(vm: VM) -> Path:
    return vm.bucket / "train" / TASK_ID


def left_run(folder: Path, status: str) -> None:
    """A run folder as a preempted VM leaves it: its manifest written by the job's own
    writer, whose layout sky/remote.sh reads the status from."""
    folder.mkdir(parents=True)
    Run(folder).write_json("manifest.json", {"status": status, "config": "gpu"})


@pytest.mark.parametrize("name", TASKS)
def test_setup_builds_the_jobs_image_from_the_workdir(vm, name):
    result = vm.run(name, "setup")
    assert result.returncode == 0, result.stderr
    builds = [c["argv"] for c in vm.calls() if c.get("argv", [""])[0] == "build"]
    assert builds == [["build", "-f", "docker/Dockerfile", "--build-arg", f"TF_VERSION={TF}",
                       "-t", f"digit-job:{TF}", "-t", "digit-job:latest", "."]]


def test_setup_goes_through_sudo_where_the_user_cannot_reach_docker(vm):
    result = vm.run("train", "setup", STUB_DOCKER_INFO="1")
    assert result.returncode == 0, result.stderr
    assert any("sudo" in c for c in vm.calls())
    assert any(c.get("argv", [""])[0] == "build" for c in vm.calls())


def test_a_new_job_runs_the_doctor_then_trains_into_its_own_folder_of_the_bucket(vm):
    result = vm.run("train", "run", secrets={"KAGGLE_USERNAME": "u", "KAGGLE_KEY": SECRET})
    assert result.returncode == 0, result.stderr
    assert vm.docker_runs() == [["doctor", "--config", "configs/gpu.yaml"],
                                ["train", "--config", "configs/gpu.yaml"]]
    assert vm.mounts_of("train")["/app/runs"] == str(job_dir(vm))
    assert (job_dir(vm) / "20261202T193000Z-gpu" / "manifest.json").is_file()
    report = (vm.bucket / "doctor" / f"{TASK_ID}.txt").read_text()
    assert "GPU 0: NVIDIA T4" in report and "GPU 0: NVIDIA T4" in result.stdout
    # the key reached docker by name, from the environment; its value is in no argument,
    # no line printed and no file of the bucket
    train = next(c for c in vm.calls() if "train" in c.get("argv", []))
    assert {"KAGGLE_USERNAME", "KAGGLE_KEY"} <= set(train["env"])
    assert "KAGGLE_API_TOKEN" not in train["env"]     # left empty: unset, not passed as ""
    assert SECRET not in vm.log.read_text() + result.stdout + result.stderr
    assert not [p for p in vm.bucket.rglob("*") if p.is_file() and SECRET in p.read_text()]


def test_nothing_is_trained_when_the_doctor_finds_problems(vm):
    result = vm.run("train", "run", STUB_DOCTOR_FAILS="1")
    assert result.returncode == 3
    assert vm.docker_runs() == [["doctor", "--config", "configs/gpu.yaml"]]
    assert "nothing was trained" in result.stderr
    assert "PROBLEM torch" in (vm.bucket / "doctor" / f"{TASK_ID}.txt").read_text()
    assert not job_dir(vm).exists() or not any(job_dir(vm).iterdir())


def test_a_recovered_job_resumes_its_unfinished_run_from_the_bucket(vm):
    left_run(job_dir(vm) / "20261202T190000Z-gpu", "running")
    result = vm.run("train", "run")
    assert result.returncode == 0, result.stderr
    assert vm.docker_runs() == [["doctor", "--config", "configs/gpu.yaml"],
                                ["train", "--resume", "runs/20261202T190000Z-gpu"]]
    assert "resuming" in result.stderr
    assert vm.mounts_of("train")["/app/runs"] == str(job_dir(vm))


def test_a_job_whose_run_completed_before_the_vm_went_away_trains_nothing(vm):
    left_run(job_dir(vm) / "20261202T190000Z-gpu", "complete")
    result = vm.run("train", "run")
    assert result.returncode == 0, result.stderr
    assert vm.docker_runs() == [["doctor", "--config", "configs/gpu.yaml"]]
    assert "nothing to train" in result.stderr


def test_another_jobs_runs_in_the_bucket_are_left_alone(vm):
    left_run(vm.bucket / "train" / "sky-managed-other_digit-job-gpu_3-0" /
             "20261201T000000Z-gpu", "running")
    result = vm.run("train", "run")
    assert result.returncode == 0, result.stderr
    assert vm.docker_runs()[-1] == ["train", "--config", "configs/gpu.yaml"]


def test_submit_sends_the_jobs_complete_run_from_the_image(vm):
    result = vm.run("train", "run", {"SUBMIT": "true"})
    assert result.returncode == 0, result.stderr
    assert vm.docker_runs()[-1] == ["submit", "--runs-dir", "runs", "--run",
                                    "runs/20261202T193000Z-gpu"]


def test_a_recovery_after_the_submit_does_not_submit_again(vm):
    run = job_dir(vm) / "20261202T190000Z-gpu"
    left_run(run, "complete")
    (run / "submissions.json").write_text("[]\n")
    result = vm.run("train", "run", {"SUBMIT": "true"})
    assert result.returncode == 0, result.stderr
    assert vm.docker_runs() == [["doctor", "--config", "configs/gpu.yaml"]]
    assert "submitted before" in result.stderr


def test_a_run_block_outside_a_managed_job_stops_at_once(vm):
    result = vm.run("train", "run", SKYPILOT_TASK_ID="")
    assert result.returncode == 2
    assert "SKYPILOT_TASK_ID is not set" in result.stderr
    assert vm.docker_runs() == []


@pytest.fixture
def database():
    """A listening loopback port standing in for the database server."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield f"postgresql://optuna:{PASSWORD}@127.0.0.1:{server.getsockname()[1]}/optuna"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_sweep_job_checks_the_database_then_the_doctor_then_works_the_study(vm, database):
    result = vm.run("sweep", "run", {"STUDY": "cnn"}, {"OPTUNA_STORAGE": database})
    assert result.returncode == 0, result.stderr
    assert vm.docker_runs() == [
        ["doctor", "--config", "configs/gpu.yaml"],
        ["sweep", "--config", "configs/sweep.yaml", "--workers", "2", "--study", "cnn"]]
    sweep = next(c for c in vm.calls() if "sweep" in c.get("argv", []))
    assert "OPTUNA_STORAGE" in sweep["env"]                 # by name, from the environment
    assert vm.mounts_of("sweep")["/app/runs"] == str(vm.bucket)   # one folder for every job
    shown = vm.log.read_text() + result.stdout + result.stderr
    assert PASSWORD not in shown
    assert not [p for p in vm.bucket.rglob("*") if p.is_file() and PASSWORD in p.read_text()]


def test_sudo_passes_the_database_url_to_docker(vm, database):
    result = vm.run("sweep", "run", {}, {"OPTUNA_STORAGE": database}, STUB_DOCKER_INFO="1")
    assert result.returncode == 0, result.stderr
    sweep = next(c for c in vm.calls() if "sweep" in c.get("argv", []))
    assert "OPTUNA_STORAGE" in sweep["env"]


@pytest.mark.parametrize("url, status, said", [
    ("", 2, "OPTUNA_STORAGE is not set"),
    ("sqlite:///runs/sweeps/cnn/study.db", 2, "not a postgresql:// URL"),
    (f"postgresql://optuna:{PASSWORD}@127.0.0.1:{{port}}/optuna", 4,
     "cannot reach the database at 127.0.0.1:{port}")])
def test_a_sweep_job_without_a_usable_database_trains_nothing(vm, url, status, said):
    port = closed_port()
    result = vm.run("sweep", "run", {}, {"OPTUNA_STORAGE": url.format(port=port)})
    assert result.returncode == status
    assert said.format(port=port) in result.stderr
    assert vm.docker_runs() == []
    assert PASSWORD not in result.stdout + result.stderr


def test_the_sweep_doctor_checks_the_config_it_is_given(vm, database):
    result = vm.run("sweep", "run", {"DOCTOR_CONFIG": "configs/default.yaml"},
                    {"OPTUNA_STORAGE": database}, STUB_DOCTOR_FAILS="1")
    assert result.returncode == 3
    assert vm.docker_runs() == [["doctor", "--config", "configs/default.yaml"]]
