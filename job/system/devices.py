"""Which GPUs this machine shows, and how processes that run side by side share them:
one GPU each, or their share of the CPU cores. Read without any framework (NVML, the
environment), so the process that plans a run or a sweep never loads one."""

from __future__ import annotations

import os


def visible_gpus() -> list[str]:
    """The GPUs this process may use, by index, read from NVML (no TensorFlow needed)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g.strip() for g in listed.split(",") if g.strip() and g.strip() != "-1"]
    try:
        import pynvml
        pynvml.nvmlInit()
        try:
            return [str(i) for i in range(pynvml.nvmlDeviceGetCount())]
        finally:
            pynvml.nvmlShutdown()
    except Exception:   # no driver, no library: a CPU machine
        return []


def driver_version() -> str | None:
    """The NVIDIA driver's version as NVML reports it, or None without a driver."""
    try:
        import pynvml
        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
            return version.decode() if isinstance(version, bytes) else str(version)
        finally:
            pynvml.nvmlShutdown()
    except Exception:   # no driver, no library
        return None


def share_of(index: int, count: int, gpus: list[str]) -> dict[str, str]:
    """Environment for the index-th of `count` processes running at once: its own GPU
    (round robin when there are fewer GPUs), or an equal share of the CPU cores, which
    both frameworks read (TensorFlow's intra-op pool, torch's and OpenMP's threads)."""
    if gpus:
        return {"CUDA_VISIBLE_DEVICES": gpus[index % len(gpus)]}
    if count <= 1:
        return {}
    threads = str(max(1, (os.cpu_count() or 1) // count))
    # OpenMP threads (torch's) spin while they wait for each other by default; beside
    # another busy process that collapsed a torch epoch here (its feed alone: 0.4-2.4 s
    # spinning, 0.07-0.09 s passive, on a 2-core machine under load).
    return {"TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1",
            "OMP_NUM_THREADS": threads, "OMP_WAIT_POLICY": "PASSIVE"}
