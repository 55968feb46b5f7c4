"""Where TensorFlow computes: GPU check, precision, XLA and the distribution strategy.

Set up once per process, before any other TensorFlow work: a multi-worker strategy
must exist before the first op runs, and Keras' precision policy is global.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any

from job.config import RuntimeConfig
from job.config.checks import keras_across_workers, torch_across_devices
from job.errors import DeviceError

COMPUTE_DTYPES = {"float32": "float32", "mixed_float16": "float16",
                  "mixed_bfloat16": "bfloat16"}


@dataclass(frozen=True)
class Runtime:
    """What both training styles need to know about the devices they run on."""

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


def check_models(runtime: Runtime, models: tuple[str, ...]) -> None:
    """Refuse what cannot train under the strategy `auto` resolved to: Keras across
    workers (TF_CONFIG), torch on more than one device (an explicit runtime.distribute
    is refused by the config check already)."""
    problem = keras_across_workers(models) if runtime.kind == "multi_worker" else None
    # runtime.distribute: auto becomes mirrored on a machine with several GPUs.
    problem = problem or torch_across_devices(models, runtime.kind)
    if problem:
        raise DeviceError(f"models: {problem}")


def load_triton_first() -> None:
    """Load triton (torch.compile's and torch.optim's kernel compiler) before TensorFlow.

    Both bundle LLVM; triton's library loaded after TensorFlow's crashes the process with
    a segmentation fault (TF 2.21, triton 3.8, torch 2.14), loaded before it both work.
    So the process that may train a torch model loads it first; once TensorFlow is in,
    loading it would be the crash, so then this leaves it."""
    if "tensorflow" in sys.modules:
        return
    try:
        import triton  # noqa: F401
    except ImportError:   # no torch installed, or a platform without triton
        pass


def setup(config: RuntimeConfig) -> Runtime:
    """Check the devices, create the strategy and set the precision policy."""
    load_triton_first()
    import tensorflow as tf

    spec = cluster_spec()
    kind = choose_strategy(config, 0, spec)
    # The multi-worker strategy must be created before anything lists or touches devices.
    strategy = tf.distribute.MultiWorkerMirroredStrategy() if kind == "multi_worker" else None
    gpus = tf.config.list_physical_devices("GPU")
    # Memory on demand, not all of it at the first op: a torch model of the same run
    # allocates from the same GPU (and a doctor or second process can share it).
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:   # already initialised by the multi-worker strategy
            pass
    if config.require_gpu and not gpus:
        raise DeviceError(
            "runtime.require_gpu is true but TensorFlow sees no GPU: on a GPU machine check "
            "`nvidia-smi` and that the container runs with --gpus all; to train on the CPU "
            "anyway use a config with runtime.require_gpu: false")
    if strategy is None:
        kind = choose_strategy(config, len(gpus), spec)
        strategy = (mirrored_strategy() if kind == "mirrored" else tf.distribute.get_strategy())
    devices = tuple(f"{d.device_type}:{d.name}" for d in tf.config.list_logical_devices())
    return Runtime(strategy, kind, strategy.num_replicas_in_sync, is_chief(spec),
                   config.mixed_precision, config.jit_compile, devices)


def mirrored_strategy():
    """Every GPU; on a host without one, every logical CPU (how tests get two replicas)."""
    import tensorflow as tf
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices])


def local_runtime(mixed_precision: str = "float32", jit_compile: bool = False) -> Runtime:
    """One device, no strategy: what tests and a plain CPU run use."""
    import tensorflow as tf
    return Runtime(tf.distribute.get_strategy(), "none", 1, True, mixed_precision, jit_compile,
                   ())


def return_freed_memory() -> None:
    """Hand memory freed by a finished model back to the OS.

    glibc keeps freed blocks in its heaps for reuse, so without this each model's
    leftovers (its graphs, its copy of the training images, the CNN's activation
    buffers) raised the floor the next model starts from; a Kaggle-sized run peaked
    ~60 MB higher. A no-op where the C library has no malloc_trim (musl, macOS).
    """
    import ctypes
    import gc

    gc.collect()
    # torch's allocator keeps freed GPU blocks cached; a TF model after a torch one
    # needs them back (torch is loaded only if a torch model trained).
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    try:
        # CDLL(None): the process's own symbols, the C library's among them; no
        # find_library, which runs ldconfig in a subprocess.
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
