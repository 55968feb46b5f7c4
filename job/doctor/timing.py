"""Timed work on the device: the config's CNN training step (as configured, under XLA,
under mixed_float16) and the input pipeline alone, each in images per second."""

from __future__ import annotations

import time
from dataclasses import dataclass

from job.config import CNNSpec, Config

# A Kaggle epoch: 42,000 training rows less the default 10% validation.
EPOCH_IMAGES = 37_800


@dataclass(frozen=True)
class Timing:
    variant: str          # "float32", "XLA", "mixed_float16", ...
    device: str           # where the step ran, e.g. "GPU:0"
    seconds: float        # per step
    images_per_s: float
    error: str = ""


def short_device(name: str) -> str:
    """/job:localhost/replica:0/task:0/device:GPU:0 → GPU:0."""
    return name.rsplit("device:", 1)[-1] if name else "?"


def time_step(spec: CNNSpec, batch: int, device: str, variant: str, jit: bool,
              compute_dtype: str, steps: int = 10) -> Timing:
    """The CNN's forward, backward and update on one batch, traced (and compiled) first,
    then timed over `steps` steps; a failure is returned, not raised."""
    import tensorflow as tf
    from job.styles.tf import nets as nets
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
        first = str(e).strip().splitlines()
        return Timing(variant, device, 0.0, 0.0, f"{type(e).__name__}: {first[0] if first else ''}"[:300])


def time_torch_step(spec: CNNSpec, batch: int, on_gpu: bool, steps: int = 10) -> Timing:
    """The torch CNN's forward, backward and Adam step on one batch, in the process that
    holds TensorFlow too (on a GPU both then share cuDNN: this proves it runs); a failure
    is returned, not raised."""
    try:
        import torch
        import torch.nn.functional as F
        from job.styles.torch import nets as nets
        from job.styles.torch.optim import Adam

        device = "cuda" if on_gpu else "cpu"
        net = nets.build_cnn(spec, 0, device)
        optimizer = Adam(nets.trained_parameters(net), 1e-3)
        generator = torch.Generator(device).manual_seed(1)
        x = torch.rand(batch, 784, device=device, generator=generator)
        y = torch.randint(0, 10, (batch,), device=device, generator=generator)

        def step() -> torch.Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            optimizer.step()
            return loss

        step().item()   # the first step also picks the convolution algorithms
        start = time.perf_counter()
        for _ in range(steps):
            loss = step()
        loss.item()
        seconds = (time.perf_counter() - start) / steps
        return Timing("torch", "GPU:0" if on_gpu else "CPU:0", seconds, batch / seconds)
    except Exception as e:  # noqa: BLE001 - any failure is the finding
        first = str(e).strip().splitlines()
        return Timing("torch", "cuda" if on_gpu else "cpu", 0.0, 0.0,
                      f"{type(e).__name__}: {first[0] if first else ''}"[:300])


def time_pipeline(config: Config, images: int = 8192) -> float:
    """Images per second the shared input pipeline yields with the config's augmentation,
    drained as fast as it can be (random pixels: the work does not depend on them)."""
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
