"""The Makefile's docker targets without a Docker engine: `make help` lists them, and
`make -n` shows the docker build and docker run commands they would run."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from helpers.project import SECRET, clean_env, tensorflow_pin

ROOT = Path(__file__).resolve().parents[1]


def make_dry(*args: str, **env: str) -> str:
    result = subprocess.run(["make", "--no-print-directory", "-n", *args], cwd=ROOT,
                            env=clean_env(**env), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


# --- Makefile -------------------------------------------------------------------------------

def test_help_lists_the_docker_and_lint_targets():
    out = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, env=clean_env(),
                         capture_output=True, text=True, check=True).stdout
    for target in ("docker-build", "docker-train", "docker-submit", "docker-doctor", "doctor",
                   "gpu-acceptance", "lint"):
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


def test_docker_doctor_checks_the_gpu_config_in_the_image_with_no_credentials(tmp_path):
    out = make_dry("docker-doctor", KAGGLE_CONFIG_DIR=str(tmp_path), KAGGLE_KEY=SECRET)
    command = " ".join(out.replace("\\\n", " ").split())
    assert "docker run --rm --gpus all " in command
    assert command.endswith(f"digit-job:{tensorflow_pin()} doctor --config configs/gpu.yaml")
    assert "KAGGLE" not in command and ".kaggle" not in command   # the doctor needs none
    assert "doctor --config configs/smoke.yaml" in make_dry("docker-doctor",
                                                            "CONFIG=configs/smoke.yaml")


def test_doctor_checks_the_config_this_machine_would_train():
    assert make_dry("doctor").strip().endswith("-m job doctor --config configs/default.yaml")


def test_kaggle_run_passes_config_accelerator_and_runs_or_follows_a_kernel():
    out = make_dry("kaggle-run", "CONFIG=configs/smoke.yaml", "ACCELERATOR=none")
    assert out.strip().endswith("-m job kaggle-run --config configs/smoke.yaml --accelerator "
                                "none --runs-dir runs")
    out = make_dry("kaggle-run", "FOLLOW=alice/digit-job-smoke", "RUNS=elsewhere")
    assert out.strip().endswith("-m job kaggle-run --follow alice/digit-job-smoke --runs-dir "
                                "elsewhere")
