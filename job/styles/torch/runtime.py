"""Where torch computes, in a torch worker: one device, CUDA when torch sees a GPU.

The worker sees the GPUs its parent gave it (CUDA_VISIBLE_DEVICES): one, where several
models train side by side on a machine with several GPUs.
"""

from __future__ import annotations

import torch

from job.config import RuntimeConfig
from job.errors import DeviceError
from job.system import devices
from job.system.runtime import Runtime, choose_strategy, cluster_spec


def setup(config: RuntimeConfig, warn=print) -> Runtime:
    """The device torch trains on, checked against runtime.require_gpu."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    shown = devices.visible_gpus()
    driver = devices.driver_version() if shown and not gpus and torch.version.cuda else None
    if driver:
        # A driver and its GPUs are there, but torch's CUDA build is newer than the driver
        # runs (PyPI's torch needs CUDA 13, driver >= 580; Kaggle's may run an older one).
        line = (f"torch {torch.__version__} (built for CUDA {torch.version.cuda}) cannot use "
                f"the {len(shown)} GPU(s) this worker was given: NVIDIA driver {driver} is "
                f"older than CUDA {torch.version.cuda} needs (python -m job doctor says which "
                "driver); train the tf/keras models there, or use a machine with a newer driver")
        if config.require_gpu:
            raise DeviceError(line)
        warn(f"WARNING: {line}; training on the CPU")
    if config.require_gpu and not gpus:
        raise DeviceError(
            f"runtime.require_gpu is true but torch {torch.__version__} sees no GPU: check "
            "`nvidia-smi`, that the driver runs torch's CUDA release (python -m job doctor) "
            "and that the container runs with --gpus all; to train on the CPU anyway use a "
            "config with runtime.require_gpu: false")
    # Data parallelism is not built for this style: `auto` must resolve to one device
    # (the config check refuses an explicit strategy earlier; job.system.runtime.check_models
    # what `auto` becomes on several GPUs).
    kind = choose_strategy(config, min(gpus, 1), cluster_spec())
    placed = ("GPU:cuda:0",) if gpus else ("CPU:cpu",)
    return Runtime(None, kind, 1, True, config.mixed_precision, config.jit_compile, placed)


def local_runtime(mixed_precision: str = "float32", jit_compile: bool = False) -> Runtime:
    """One device, no strategy: what tests and a plain CPU run use."""
    return Runtime(None, "none", 1, True, mixed_precision, jit_compile, ())
