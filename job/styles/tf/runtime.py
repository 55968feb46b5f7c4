"""Where TensorFlow computes, in a TF or Keras worker: GPU check, precision, XLA and the
distribution strategy.

Set up once per worker process, before any other TensorFlow work: a multi-worker
strategy must exist before the first op runs, and Keras' precision policy is global.
"""

from __future__ import annotations

import tensorflow as tf

from job.config import RuntimeConfig
from job.errors import DeviceError
from job.system.runtime import Runtime, choose_strategy, cluster_spec, is_chief


def setup(config: RuntimeConfig) -> Runtime:
    """Check the devices, create the strategy and set the precision policy."""
    spec = cluster_spec()
    kind = choose_strategy(config, 0, spec)
    # The multi-worker strategy must be created before anything lists or touches devices.
    strategy = tf.distribute.MultiWorkerMirroredStrategy() if kind == "multi_worker" else None
    gpus = tf.config.list_physical_devices("GPU")
    # Memory on demand, not all of it at the first op: the doctor or a second process on
    # the same GPU (a sweep's workers) can share it.
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
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices])


def local_runtime(mixed_precision: str = "float32", jit_compile: bool = False) -> Runtime:
    """One device, no strategy: what tests and a plain CPU run use."""
    return Runtime(tf.distribute.get_strategy(), "none", 1, True, mixed_precision, jit_compile,
                   ())
