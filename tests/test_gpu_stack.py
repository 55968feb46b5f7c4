"""The GPU image and the cloud VM agree: docker/cuda-constraints.txt pins every CUDA wheel
tensorflow[and-cuda] needs, to the CUDA release the default VM image's driver runs, and
scripts/cloud_vm.sh takes its default image family from that same file."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from packaging.requirements import Requirement

from job.doctor.nvidia import MIN_DRIVER
from helpers.project import clean_env

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "docker" / "cuda-constraints.txt"
# A wheel whose version counts CUDA releases (12.8.90 for CUDA 12.8); cuFFT, cuRAND,
# cuSOLVER, cuSPARSE, cuDNN and NCCL number their own releases.
CUDA_NUMBERED = ("nvidia-cuda-runtime-cu12", "nvidia-cuda-cupti-cu12", "nvidia-cuda-nvcc-cu12",
                 "nvidia-cuda-nvrtc-cu12", "nvidia-nvjitlink-cu12", "nvidia-cublas-cu12")


def header(key: str) -> str:
    found = re.search(rf"^# {key}: *(\S+)$", CONSTRAINTS.read_text(), re.M)
    assert found, f"{CONSTRAINTS} has no `# {key}:` line"
    return found.group(1)


def pins() -> dict[str, str]:
    lines = [ln.strip() for ln in CONSTRAINTS.read_text().splitlines()]
    return dict(ln.split("==") for ln in lines if ln and not ln.startswith("#"))


def disagreements(family: str, cuda: str, pinned: dict[str, str]) -> list[str]:
    """Why an image family, a CUDA release and the pins do not fit together."""
    problems = []
    found = re.fullmatch(r"common-cu(\d{2})(\d)-.*-nvidia-(\d+)", family)
    if not found:
        return [f"{family}: expected common-cu<XY>-...-nvidia-<driver>"]
    family_cuda, driver = (int(found.group(1)), int(found.group(2))), int(found.group(3))
    wanted = tuple(int(x) for x in cuda.split("."))
    if wanted not in MIN_DRIVER:
        problems.append(f"cuda {cuda}: no known minimum driver")
    elif driver < int(MIN_DRIVER[wanted].split(".")[0]):
        problems.append(f"{family}: driver {driver} cannot run CUDA {cuda} (needs "
                        f"{MIN_DRIVER[wanted]})")
    if family_cuda < wanted:
        problems.append(f"{family}: a CUDA {family_cuda[0]}.{family_cuda[1]} image for CUDA {cuda} wheels")
    for name in CUDA_NUMBERED:
        if not pinned.get(name, "").startswith(cuda + "."):
            problems.append(f"{name}=={pinned.get(name)}: not a CUDA {cuda} release")
    return problems


def test_the_default_family_runs_the_pinned_cuda_release():
    assert disagreements(header("vm-image-family"), header("cuda"), pins()) == []


def test_a_family_whose_driver_is_too_old_is_caught():
    assert disagreements("common-cu124-ubuntu-2204-nvidia-550", "12.8", pins()) == [
        "common-cu124-ubuntu-2204-nvidia-550: driver 550 cannot run CUDA 12.8 (needs 570.26)",
        "common-cu124-ubuntu-2204-nvidia-550: a CUDA 12.4 image for CUDA 12.8 wheels"]
    newer = {**pins(), "nvidia-cuda-nvcc-cu12": "12.9.86"}
    assert disagreements(header("vm-image-family"), "12.8", newer) == [
        "nvidia-cuda-nvcc-cu12==12.9.86: not a CUDA 12.8 release"]


def test_every_cuda_wheel_tensorflow_needs_is_pinned_within_its_range():
    """tensorflow's own metadata: the wheels its and-cuda extra asks for, and their ranges."""
    needs = [Requirement(r) for r in importlib.metadata.requires("tensorflow") or []]
    cuda = {r.name: r.specifier for r in needs
            if r.marker and r.marker.evaluate({"extra": "and-cuda"})}
    assert cuda, "tensorflow lists no and-cuda wheels"
    pinned = pins()
    assert set(pinned) == set(cuda)
    assert {name: v for name, v in pinned.items() if v not in cuda[name]} == {}


def test_cloud_vm_defaults_to_the_family_of_the_constraints_file(tmp_path):
    result = subprocess.run([ROOT / "scripts" / "cloud_vm.sh", "--dry-run", "--name", "x"],
                            env=clean_env(HOME=str(tmp_path)), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    create = next(ln for ln in result.stdout.splitlines() if " instances create " in ln)
    assert f"--image-family {header('vm-image-family')} " in create
    assert header("vm-image-family") not in (ROOT / "scripts" / "cloud_vm.sh").read_text()


def test_the_image_points_xla_at_the_pinned_nvcc_wheels_ptxas_and_libdevice(tmp_path):
    """The wheel itself, from the package registry: its layout is what XLA_FLAGS names."""
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    folder = re.search(r"--xla_gpu_cuda_data_dir=(\S+)", dockerfile).group(1)
    assert folder.endswith("/dist-packages/nvidia/cuda_nvcc")
    assert f"PATH={folder}/bin:$PATH" in dockerfile
    version = pins()["nvidia-cuda-nvcc-cu12"]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary", ":all:", "--platform", "manylinux2014_x86_64",
                    "-d", str(tmp_path), f"nvidia-cuda-nvcc-cu12=={version}"],
                   check=True, timeout=300)
    [wheel] = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"nvidia/cuda_nvcc/bin/ptxas", "nvidia/cuda_nvcc/nvvm/libdevice/libdevice.10.bc"} <= names
