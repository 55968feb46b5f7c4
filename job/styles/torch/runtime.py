"""Where torch computes, in a torch worker: one device, CUDA when torch sees a GPU.

The worker sees the GPUs its parent gave it (CUDA_VISIBLE_DEVICES): one, where several
models train side by side on a machine with several GPUs.
"""

from __future__ import annotations

import torch

from job.config import RuntimeConfig
from job.errors import DeviceError
from job.system.runtime import Runtime, choose_strategy, cluster_spec


def setup(config: RuntimeConfig) -> Runtime:
    """The device torch trains on, checked against runtime.require_gpu."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
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
    devices = ("GPU:cuda:0",) if gpus else ("CPU:cpu",)
    return Runtime(None, kind, 1, True, config.mixed_precision, config.jit_compile, devices)


def local_runtime(mixed_precision: str = "float32", jit_compile: bool = False) -> Runtime:
    """One device, no strategy: what tests and a plain CPU run use."""
    return Runtime(None, "none", 1, True, mixed_precision, jit_compile, ())
