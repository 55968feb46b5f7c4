"""TensorFlow's probe: what it is, the GPUs it registered, the config's CNN step timed
(plain, under XLA, under mixed_float16, as configured) and the input pipeline, and the CUDA
libraries its process mapped. Run only inside `python -m job.doctor.probe tensorflow`, a
process that imports no other framework; the doctor's own process never imports this."""

from __future__ import annotations

import time

from job.config import CNNSpec, Config
from job.doctor import libraries, stacks
from job.doctor.report import Timing, error_text

BUILD_KEYS = ("cuda_version", "cudnn_version", "is_cuda_build", "cuda_compute_capabilities")


def probe(config: Config, request: dict) -> dict:
    """The report's fields, from this process (see job.doctor.report.Report)."""
    import tensorflow as tf   # first: without it, Keras' ImportError would name no framework
    import keras

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:   # memory on demand: the doctor's other probe may use the GPU next
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass
    info = dict(tf.sysconfig.get_build_info())
    found = {"version": tf.__version__, "versions": {"keras": keras.__version__},
             "build": {k: info.get(k) for k in BUILD_KEYS},
             "gpus": [tf.config.experimental.get_device_details(g).get("device_name", g.name)
                      for g in gpus]}
    device = "/GPU:0" if gpus else "/CPU:0"
    if gpus:
        touch(tf, device)
    if request.get("timing", True):
        steps = request.get("steps") or (10 if gpus else 3)   # a CPU step takes ~0.4 s
        batch = config.train.batch_size
        found["timings"] = [time_step(config.arch.cnn, batch, device, name, jit, dtype,
                                             steps) for name, jit, dtype in request["variants"]]
        found["pipeline_images_per_s"] = time_pipeline(config)
    # Read before the loads below, which would add what TensorFlow itself did not map.
    found["mapped"] = stacks.mapped()
    if request.get("driver_gpus", 0) > len(gpus):
        dirs = libraries.search_dirs()
        found["search_dirs"] = [str(d) for d in dirs]
        found["loaded"] = libraries.probe(dirs=dirs)
    return found


def touch(tf, device: str) -> None:
    """A matmul and a convolution on the GPU, so cuBLAS and cuDNN load as training loads them."""
    with tf.device(device):
        a = tf.random.stateless_uniform([64, 64], seed=[1, 2])
        tf.matmul(a, a).numpy()
        images = tf.random.stateless_uniform([2, 28, 28, 1], seed=[3, 4])
        kernel = tf.random.stateless_uniform([3, 3, 1, 4], seed=[5, 6])
        tf.nn.conv2d(images, kernel, 1, "SAME").numpy()


def time_step(spec: CNNSpec, batch: int, device: str, variant: str, jit: bool,
              compute_dtype: str, steps: int = 10) -> Timing:
    """The CNN's training step on one batch, timed over `steps`; a failure is returned."""
    # Traced (and under XLA compiled) by a first step that is not timed.
    import tensorflow as tf

    from job.styles.tf import nets
    try:
        with tf.device(device):
            net = nets.build_cnn(spec, seed=0, compute_dtype=compute_dtype)
            x = tf.random.stateless_uniform([batch, 784], seed=[1, 2])
            y = tf.random.stateless_uniform([batch], seed=[3, 4], maxval=10, dtype=tf.int32)

            @tf.function(jit_compile=jit)
            def step(x, y):
                with tf.GradientTape() as tape:
                    logits = net(x, training=True)
                    loss = tf.reduce_mean(
                        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
                grads = tape.gradient(loss, net.trainable_variables)
                for variable, grad in zip(net.trainable_variables, grads):
                    variable.assign_sub(0.01 * tf.cast(grad, variable.dtype))
                return loss

            step(x, y).numpy()   # trace, and under XLA compile
            start = time.perf_counter()
            for _ in range(steps):
                loss = step(x, y)
            loss.numpy()
            seconds = (time.perf_counter() - start) / steps
        return Timing(variant, short_device(loss.device), seconds, batch / seconds)
    except Exception as e:  # noqa: BLE001 - any failure is the finding
        return Timing(variant, device, 0.0, 0.0, error_text(e))


def time_pipeline(config: Config, images: int = 8192) -> float:
    """Images per second tf.data's input pipeline yields with the config's augmentation."""
    # Drained as fast as it can be; random pixels, as the work does not depend on them.
    import numpy as np
    from job.styles.tf import feeding

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (images, 784), dtype=np.uint8)
    labels = rng.integers(0, 10, images).astype(np.uint8)
    batch = config.train.batch_size
    batches = iter(feeding.training_batches(pixels, labels, batch, config.data.seed, 0, 2,
                                           config.train.augment))
    steps = feeding.steps_per_epoch(images, batch)
    for _ in range(steps):   # the first epoch warms tf.data up
        next(batches)
    start = time.perf_counter()
    for _ in range(steps):
        next(batches)
    return images / (time.perf_counter() - start)


def short_device(name: str) -> str:
    """/job:localhost/replica:0/task:0/device:GPU:0 → GPU:0."""
    return name.rsplit("device:", 1)[-1] if name else "?"
