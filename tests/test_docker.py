"""The container contract, checked without a Docker engine.

docker/Dockerfile is parsed (ENTRYPOINT, CMD, WORKDIR, ENV, USER, VOLUME, COPY); the build
context is the one the Docker SDK (requirements-dev.txt: docker) would send for
`docker build -f docker/Dockerfile .`, its own implementation of the .dockerignore rules, so
the tests check the real context and not a copy of the rules; and the image's exact
entrypoint and default command are run in a fresh virtual environment holding only
requirements.txt, in a folder laid out as the image's file system with the image's
environment variables: the mounts are folders there.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.docker_context import build_context
from helpers.dockerfile import read_instructions

ROOT = Path(__file__).resolve().parents[1]


# --- reading the Dockerfile -----------------------------------------------------------------

def arguments(keyword: str) -> list[str]:
    """The arguments of every `keyword` instruction, in order."""
    return [args for kw, args in read_instructions() if kw == keyword]


def env_values() -> dict[str, str]:
    """ENV key=value pairs of the final image (later ones win)."""
    values = {}
    for args in arguments("ENV"):
        for pair in shlex.split(args):
            key, sep, value = pair.partition("=")
            assert sep, f"ENV {args}: use the key=value form"
            values[key] = value
    return values


def copy_pairs() -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY; ADD is not used."""
    pairs = []
    for args in arguments("COPY"):
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        pairs.append((words[:-1], words[-1]))
    return pairs


def exec_form(keyword: str) -> list[str]:
    """The JSON (exec) form of the last ENTRYPOINT/CMD/VOLUME instruction."""
    return json.loads(arguments(keyword)[-1])


# --- the build context, as the Docker SDK works it out --------------------------------------

def tracked_files(folder: Path, *globs: str) -> set[str]:
    """The files git tracks matching `globs` (`**/` = any folders, or none); outside a git
    checkout (an unpacked `git archive`), the files there that match them."""
    listed = subprocess.run(["git", "-C", folder, "ls-files", "-z", "--",
                             *(f":(glob){g}" for g in globs)], capture_output=True, text=True)
    if listed.returncode == 0:
        return {p for p in listed.stdout.split("\0") if p and (folder / p).is_file()}
    return {p.relative_to(folder).as_posix() for g in globs for p in folder.glob(g)
            if p.is_file()}


# --- the image's definition -----------------------------------------------------------------

def test_entrypoint_runs_the_job_and_the_default_command_trains_on_the_gpu_config():
    assert exec_form("ENTRYPOINT") == ["python", "-m", "job"]
    assert exec_form("CMD") == ["train", "--config", "configs/gpu.yaml"]
    assert arguments("WORKDIR")[-1] == "/app"
    assert (ROOT / "configs" / "gpu.yaml").is_file()


def test_the_job_runs_as_a_fixed_non_root_user():
    user = arguments("USER")[-1]
    assert re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", user), f"USER {user}: a numeric non-root uid"
    # and that uid is created with a home folder
    assert any(f"--uid {user.split(':')[0]}" in run for run in arguments("RUN"))


def test_environment_and_mount_points():
    env = env_values()
    assert env["PYTHONUNBUFFERED"] == "1"        # log lines reach `docker logs` as they happen
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"  # the code folders are read-only
    assert env["HOME"].startswith("/")
    assert env["KAGGLE_CONFIG_DIR"].startswith(env["HOME"] + "/")  # the job also looks in ~/.kaggle
    volumes = exec_form("VOLUME")
    workdir = arguments("WORKDIR")[-1]
    assert f"{workdir}/data" in volumes and f"{workdir}/runs" in volumes


def test_no_credential_is_put_into_the_image():
    for keyword in ("ENV", "ARG", "LABEL"):
        for args in arguments(keyword):
            assert not re.search(r"KAGGLE_(KEY|USERNAME|API_TOKEN)|kaggle\.json", args), args
    assert not arguments("ADD")
    sources = [s for srcs, _ in copy_pairs() for s in srcs]
    assert not [s for s in sources if "kaggle" in s or "secret" in s or s.endswith(".env")]


def test_requirements_are_installed_before_the_code_is_copied():
    order = [(kw, args) for kw, args in read_instructions() if kw in ("COPY", "RUN")]
    assert order[0] == ("COPY", "requirements.txt docker/cuda-constraints.txt ./")
    install = next(i for i, (kw, args) in enumerate(order) if "-r requirements.txt" in args)
    assert "-c cuda-constraints.txt" in order[install][1]   # the CUDA wheels, pinned
    code = next(i for i, (kw, args) in enumerate(order) if kw == "COPY" and "job/" in args)
    assert install < code
    assert "--no-cache-dir" in order[install][1]
    assert {s for srcs, _ in copy_pairs() for s in srcs} == {
        "requirements.txt", "docker/cuda-constraints.txt", "job/", "configs/"}


# --- the build context ----------------------------------------------------------------------

DECOYS = [
    "kaggle.json", ".kaggle/kaggle.json", ".kaggle/access_token", "configs/kaggle.json",
    "job/.kaggle/access_token", ".env", "job/.env", "configs/prod.env", "secrets.env",
    "data/digit-recognizer/train.csv", "data/sample/train.csv", "runs/x/submission.csv",
    ".venv/bin/python", ".git/config", "tests/test_x.py", ".pytest_cache/v/cache",
    ".hypothesis/examples/x", "job/__pycache__/cli.cpython-311.pyc", "README.md", "Makefile",
]

# Paths where a naive reading of the patterns could go wrong either way: credentials and
# build leftovers deep inside the allowed folders; and job/ subpackages named like what is kept
# out (data/ is excluded at the top only, kaggle.json and .kaggle anywhere, but not kaggle/).
TRICKY_OUT = [
    "job/kaggle.json", "job/train/kaggle.json", "job/kaggle/kaggle.json", "configs/kaggle.json",
    "configs/.kaggle/kaggle.json", "job/data/.kaggle/access_token", "job/nets/credentials.json",
    "job/__pycache__/x.cpython-311.pyc", "job/train/__pycache__/x.cpython-311.pyc",
    "job/nets/stale.pyc", "data/train.csv", "data/digit-recognizer/test.csv",
    "runs/latest/submission.csv", ".git/HEAD", "tests/conftest.py", "tests/helpers/x.py",
]
TRICKY_IN = [
    "job/data/__init__.py", "job/data/x.py", "job/kaggle/__init__.py",
    "job/kaggle/client.py", "job/config/__init__.py", "job/outputs/x.py",
    "job/system/x.py", "configs/extra.yaml",
]


@pytest.fixture
def context(tmp_path):
    """A build context folder: this checkout's requirements.txt, .dockerignore, job/, configs/
    and docker/, without __pycache__."""
    folder = tmp_path / "context"
    folder.mkdir()
    for name in ("requirements.txt", ".dockerignore", "job", "configs", "docker"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, folder / name)
    return folder


def add_files(folder: Path, names: list[str]) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("decoy\n")


def test_tricky_paths_are_kept_out_or_let_in(context):
    add_files(context, TRICKY_OUT + TRICKY_IN)
    sent = build_context(context)
    assert not sent & set(TRICKY_OUT)
    assert set(TRICKY_IN) <= sent
    assert "requirements.txt" in sent
    assert {p.relative_to(context).as_posix() for p in context.glob("job/**/*.py")} <= sent
    assert {p.relative_to(context).as_posix() for p in context.glob("configs/*.yaml")} <= sent


def test_build_context_holds_the_code_and_no_data_runs_or_credentials(context):
    add_files(context, DECOYS)
    sent = build_context(context)
    assert not sent & set(DECOYS)
    assert {p.split("/")[0] for p in sent} == {"requirements.txt", "docker", "job", "configs"}
    assert {p for p in sent if p.startswith("docker/")} == {"docker/cuda-constraints.txt"}
    assert {p.relative_to(context).as_posix() for p in context.glob("job/**/*.py")} <= sent
    assert "configs/gpu.yaml" in sent and "configs/default.yaml" in sent
    for sources, _ in copy_pairs():               # every COPY finds its source
        for source in sources:
            assert any(p == source or p.startswith(source) for p in sent), source


def test_real_checkout_sends_only_the_code():
    sent = build_context(ROOT)
    assert {p.split("/")[0] for p in sent} == {"requirements.txt", "docker", "job", "configs"}
    assert {p for p in sent if p.startswith("docker/")} == {"docker/cuda-constraints.txt"}
    code = tracked_files(ROOT, "requirements.txt", "job/**/*.py", "configs/*.yaml")
    assert any(p.startswith("job/") for p in code) and any(p.startswith("configs/") for p in code)
    assert code <= sent


# --- the image's entrypoint and command, run in a clean virtual environment -----------------

class Container:
    """The image's file system under a temp folder; absolute image paths map into it."""

    def __init__(self, root: Path, python_bin: Path):
        self.root = root
        self.workdir = self.path(arguments("WORKDIR")[-1])
        env = {key: self.map_value(value) for key, value in env_values().items()}
        # the image's `python` is the venv's; nothing else of this machine's environment
        # leaks in but OpenBLAS' processor settings, which this machine's numpy needs
        env["PATH"] = f"{python_bin}:/usr/bin:/bin"
        for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            if key in os.environ:
                env[key] = os.environ[key]
        self.env = env

    def path(self, image_path: str) -> Path:
        return self.root / image_path.lstrip("/")

    def map_value(self, value: str) -> str:
        return str(self.path(value)) if value.startswith("/") else value

    def run(self, *command: str, timeout: int = 600) -> subprocess.CompletedProcess:
        """`docker run IMAGE [command]`: the ENTRYPOINT plus the command or the default CMD."""
        argv = exec_form("ENTRYPOINT") + (list(command) or exec_form("CMD"))
        return subprocess.run(argv, cwd=self.workdir, env=self.env, capture_output=True,
                              text=True, timeout=timeout)


@pytest.fixture(scope="module")
def container(tmp_path_factory):
    """A fresh venv with requirements.txt and the build context COPYed to the image's paths."""
    base = tmp_path_factory.mktemp("container")
    venv = base / "venv"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    # --no-compile: no .pyc for torch's thousands of modules (the image runs with
    # PYTHONDONTWRITEBYTECODE; what runs is the same either way).
    pip = subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "--no-input",
                          "--quiet", "--no-compile", "-r", ROOT / "requirements.txt"],
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    print(f"venv with requirements.txt in {time.monotonic() - started:.0f} s")

    box = Container(base / "root", venv / "bin")
    sent = build_context(ROOT)  # the real context: what the image's COPYs can see
    for sources, dest in copy_pairs():
        target = box.path(dest) if dest.startswith("/") else box.workdir / dest
        for source in sources:
            for rel in sorted(p for p in sent if p == source or p.startswith(source)):
                inner = rel[len(source.rstrip("/")) + 1:] if rel != source else Path(rel).name
                out = target / inner
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / rel, out)
    for volume in exec_form("VOLUME"):        # the mounts from the host
        box.path(volume).mkdir(parents=True)
    Path(box.env["HOME"]).mkdir(parents=True)  # useradd --create-home; no credential mounted
    yield box
    shutil.rmtree(base, ignore_errors=True)    # 2.5 GB: not kept with pytest's last temp dirs


def code_files(box: Container) -> dict[str, float]:
    """Every file in the image outside the mounts and HOME, with its modification time."""
    skip = [box.path(v) for v in exec_form("VOLUME")] + [Path(box.env["HOME"])]
    return {str(p): p.stat().st_mtime for p in box.root.rglob("*")
            if p.is_file() and not any(p.is_relative_to(s) for s in skip)}


def test_default_command_stops_at_once_without_a_gpu(container):
    runs = container.path("/app/runs")
    before = sorted(runs.iterdir())
    result = container.run()
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "runtime.require_gpu" in lines[0]
    assert sorted(runs.iterdir()) == before     # failed before any run folder was made


def test_smoke_run_writes_into_the_mounted_runs_and_data_only(container):
    before = code_files(container)
    result = container.run("train", "--config", "configs/smoke.yaml",
                           "--set", "output.runs_dir=runs")
    assert result.returncode == 0, result.stdout + result.stderr
    runs = container.path("/app/runs")
    assert (runs / "latest" / "submission.csv").is_file()
    assert result.stdout.strip().splitlines()[-1].startswith("runs/")
    assert (container.path("/app/data") / "sample" / "train.csv").is_file()
    assert code_files(container) == before   # no __pycache__, nothing written beside the code


def test_the_doctor_runs_in_the_image_and_reports_no_gpu(container):
    result = container.run("doctor", "--config", "configs/smoke.yaml",
                           "--set", "train.batch_size=32")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "note     NVIDIA driver: not found (no libnvidia-ml.so.1 on this machine)" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == (
        "doctor: this machine can run configs/smoke.yaml")
