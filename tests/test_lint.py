"""`make lint` and the base image: hadolint on docker/Dockerfile, shellcheck on the scripts,
and the Dockerfile's base image tag against the TensorFlow pin in requirements.txt."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.project import tensorflow_pin

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent     # .venv/bin: requirements-dev.txt installs both linters


def linter(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} missing: `make venv` installs it from requirements-dev.txt")
    return path


# --- linters --------------------------------------------------------------------------------

def test_hadolint_finds_nothing_in_the_dockerfile():
    result = subprocess.run([linter("hadolint"), "--no-color", "docker/Dockerfile"], cwd=ROOT,
                            capture_output=True, text=True)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_shellcheck_finds_nothing_in_the_scripts():
    scripts = sorted(str(p.relative_to(ROOT)) for folder in ("scripts", "sky")
                     for p in (ROOT / folder).glob("*.sh"))
    assert {"scripts/gpu_acceptance.sh", "sky/remote.sh"} <= set(scripts)
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
