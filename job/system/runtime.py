"""What a worker's style needs to know about its devices, and the framework-free rules
that decide them: TF_CONFIG, the strategy `auto` resolves to, which process is chief.

Each framework sets itself up in its own worker process (`setup` in the style's loop
module, e.g. job/styles/tf/runtime.py); nothing here imports one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from job.config import RuntimeConfig
from job.config.checks import keras_across_workers, torch_across_devices
from job.errors import DeviceError

COMPUTE_DTYPES = {"float32": "float32", "mixed_float16": "float16",
                  "mixed_bfloat16": "bfloat16"}


@dataclass(frozen=True)
class Runtime:
    """What every training style needs to know about the devices it runs on."""

    strategy: Any                # tf.distribute.Strategy (the default one when not distributed)
    kind: str                    # "none" | "mirrored" | "multi_worker"
    replicas: int
    is_chief: bool               # only the chief writes run outputs
    mixed_precision: str         # the config's policy name
    jit_compile: bool
    devices: tuple[str, ...]

    @property
    def compute_dtype(self) -> str:
        return COMPUTE_DTYPES[self.mixed_precision]

    @property
    def scales_loss(self) -> bool:
        """float16 underflows small gradients; bfloat16 has float32's range and needs no scaling."""
        return self.mixed_precision == "mixed_float16"

    def describe(self) -> dict:
        """For the manifest."""
        return {"strategy": self.kind, "replicas": self.replicas, "chief": self.is_chief,
                "mixed_precision": self.mixed_precision, "jit_compile": self.jit_compile,
                "devices": list(self.devices)}


def cluster_spec(env: dict = os.environ) -> dict | None:
    """TF_CONFIG, parsed, when this process is one worker of several."""
    raw = env.get("TF_CONFIG")
    if not raw:
        return None
    try:
        spec = json.loads(raw)
        spec["cluster"], spec["task"]["type"], int(spec["task"]["index"])
    except (ValueError, KeyError, TypeError):
        raise DeviceError("TF_CONFIG: expected JSON with cluster and task.type/task.index, "
                            "as tf.distribute documents; fix or unset it") from None
    return spec


def is_chief(spec: dict | None) -> bool:
    """The chief task, or worker 0 when the cluster has no chief."""
    if spec is None:
        return True
    task = spec["task"]
    if "chief" in spec["cluster"]:
        return task["type"] == "chief"
    return task["type"] == "worker" and int(task["index"]) == 0


def choose_strategy(config: RuntimeConfig, gpus: int, spec: dict | None) -> str:
    """none | mirrored | multi_worker, resolving `auto`."""
    if config.distribute != "auto":
        return config.distribute
    if spec is not None:
        return "multi_worker"
    return "mirrored" if gpus > 1 else "none"


def check_models(kind: str, models: tuple[str, ...]) -> None:
    """Refuse what cannot train under the strategy `auto` resolved to (`kind`): Keras
    across workers (TF_CONFIG), torch on more than one device (an explicit
    runtime.distribute is refused by the config check already)."""
    problem = keras_across_workers(models) if kind == "multi_worker" else None
    problem = problem or torch_across_devices(models, kind)
    if problem:
        raise DeviceError(f"models: {problem}")


def return_freed_memory() -> None:
    """Hand memory freed by a finished sweep trial back to the OS.

    glibc keeps freed blocks in its heaps for reuse, so without this each trial's leftovers
    (its logits, its data split) raise the floor the next one starts from in a sweep
    worker, which runs trial after trial. (A model's own memory goes with its worker
    process.) A no-op where the C library has no malloc_trim (musl, macOS).
    """
    import ctypes
    import gc

    gc.collect()
    try:
        # CDLL(None): the process's own symbols, the C library's among them; no
        # find_library, which runs ldconfig in a subprocess.
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
