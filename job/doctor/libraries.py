"""The CUDA libraries TensorFlow loads, looked for where it looks: its own CUDA 12 wheels'
nvidia/*/lib folders first (never torch's CUDA 13 ones, e.g. /opt/torch, which come first
on sys.path in the image), then the system's library path. Loading them is done only in
TensorFlow's probe process (job.doctor.probe); the doctor's own process reads files."""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
import sys
from pathlib import Path

from job.doctor import stacks
from job.doctor.report import Loaded

# The shared objects TensorFlow 2.21 opens for a GPU, and the wheel that ships each
# (tensorflow[and-cuda] installs them; docker/cuda-constraints.txt pins them).
LIBRARIES = {
    "libcudart.so.12": "nvidia-cuda-runtime-cu12",
    "libcublas.so.12": "nvidia-cublas-cu12",
    "libcublasLt.so.12": "nvidia-cublas-cu12",
    "libcufft.so.11": "nvidia-cufft-cu12",
    "libcusolver.so.11": "nvidia-cusolver-cu12",
    "libcusparse.so.12": "nvidia-cusparse-cu12",
    "libcudnn.so.9": "nvidia-cudnn-cu12",
    "libnccl.so.2": "nvidia-nccl-cu12",
}
RUNTIME_WHEEL = "nvidia-cuda-runtime-cu12"
NVCC_WHEEL = "nvidia-cuda-nvcc-cu12"


def wheel_dirs(places: dict[str, str] | None = None) -> list[Path]:
    """site-packages/nvidia/<package>/lib of TensorFlow's NVIDIA wheels, never torch's."""
    # In the image /opt/torch comes first on sys.path: its folders would pass for TF's.
    places = stacks.places() if places is None else places
    dirs = []
    for entry in sys.path:
        root = Path(entry) / "nvidia"
        if root.is_dir():
            dirs += sorted(p for p in root.glob("*/lib") if p.is_dir()
                           and stacks.classify(str(p.resolve() / "-"), places) != stacks.TORCH)
    return dirs


def search_dirs(places: dict[str, str] | None = None) -> list[Path]:
    """Where a library is looked for, in order, before the system loader's own path."""
    extra = [Path(p) for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
    return wheel_dirs(places) + extra


def load(name: str, dirs: list[Path]) -> Loaded:
    """Open `name` from the first of `dirs` that has it, else through the system loader."""
    for folder in dirs:
        candidate = folder / name
        if candidate.exists():
            try:
                ctypes.CDLL(str(candidate))
                return Loaded(name, str(candidate))
            except OSError as e:
                return Loaded(name, None, str(e))
    try:
        ctypes.CDLL(name)
        return Loaded(name, "the system library path")
    except OSError as e:
        return Loaded(name, None, str(e))


def probe(names=tuple(LIBRARIES), dirs: list[Path] | None = None) -> list[Loaded]:
    dirs = search_dirs() if dirs is None else dirs
    return [load(name, dirs) for name in names]


def installed_version(wheel: str) -> str | None:
    """The version of an installed wheel, e.g. "12.8.90", or None."""
    try:
        return importlib.metadata.version(wheel)
    except importlib.metadata.PackageNotFoundError:
        return None


def nvcc_dir() -> Path | None:
    """site-packages/nvidia/cuda_nvcc, where the nvcc wheel puts ptxas and libdevice."""
    for entry in sys.path:
        folder = Path(entry) / "nvidia" / "cuda_nvcc"
        if folder.is_dir():
            return folder
    return None


def xla_data_dir(env=os.environ) -> Path | None:
    """The folder XLA_FLAGS' --xla_gpu_cuda_data_dir names, if it names one."""
    for flag in env.get("XLA_FLAGS", "").split():
        if flag.startswith("--xla_gpu_cuda_data_dir="):
            return Path(flag.split("=", 1)[1])
    return None


def missing_xla_files(folder: Path) -> list[str]:
    """What XLA needs on a GPU and `folder` lacks: ptxas, and libdevice."""
    wanted = {"bin/ptxas": folder / "bin" / "ptxas",
              "nvvm/libdevice/libdevice.10.bc": folder / "nvvm" / "libdevice" / "libdevice.10.bc"}
    return [name for name, path in wanted.items() if not path.is_file()]
