"""The NVIDIA driver and its GPUs, read through NVML (nvidia-ml-py), not nvidia-smi's text."""

from __future__ import annotations

from dataclasses import dataclass

# The oldest Linux driver of each CUDA release (NVIDIA's CUDA toolkit release notes,
# table 3): a driver runs the CUDA runtimes up to the version it reports.
MIN_DRIVER = {(12, 0): "525.60.13", (12, 1): "530.30.02", (12, 2): "535.54.03",
              (12, 3): "545.23.06", (12, 4): "550.54.14", (12, 5): "555.42.02",
              (12, 6): "560.28.03", (12, 8): "570.26", (12, 9): "575.51.03",
              (13, 0): "580.65.06"}


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_bytes: int
    capability: tuple[int, int]     # compute capability, e.g. (7, 5) for a T4


@dataclass(frozen=True)
class Driver:
    version: str                    # e.g. "570.133.20"
    cuda: tuple[int, int]           # the newest CUDA runtime it supports, e.g. (12, 8)
    gpus: tuple[Gpu, ...]


def read_driver() -> tuple[Driver | None, str]:
    """The driver and its GPUs, or None and why (no NVML library: no driver)."""
    try:
        import pynvml
    except ImportError:
        return None, "nvidia-ml-py is not installed (pip install -r requirements.txt)"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound:
        return None, "not found (no libnvidia-ml.so.1 on this machine)"
    except pynvml.NVMLError as e:
        return None, f"NVML failed to start ({e})"
    try:
        version = text(pynvml.nvmlSystemGetDriverVersion())
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()   # e.g. 12080
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            gpus.append(Gpu(text(pynvml.nvmlDeviceGetName(handle)),
                            int(pynvml.nvmlDeviceGetMemoryInfo(handle).total),
                            tuple(pynvml.nvmlDeviceGetCudaComputeCapability(handle))))
        return Driver(version, (cuda // 1000, cuda % 1000 // 10), tuple(gpus)), ""
    except pynvml.NVMLError as e:
        return None, f"NVML failed ({e})"
    finally:
        pynvml.nvmlShutdown()


def text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def supports(driver_cuda: tuple[int, int], runtime: tuple[int, int]) -> bool:
    """Whether a driver reporting CUDA `driver_cuda` runs the `runtime` release."""
    return driver_cuda >= runtime


def parse_version(version: str) -> tuple[int, int]:
    """"12.8.90" → (12, 8)."""
    major, minor = version.split(".")[:2]
    return int(major), int(minor)
