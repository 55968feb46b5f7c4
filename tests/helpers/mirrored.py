"""Train both styles on two logical CPUs with MirroredStrategy and on one device; print
both loss histories as JSON (run in a subprocess: devices are fixed at TF start-up)."""

import json
import sys
from pathlib import Path

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

from sklearn.datasets import load_digits  # noqa: E402
import numpy as np  # noqa: E402

from job.config import (EarlyStoppingConfig, FFNSpec, RuntimeConfig,  # noqa: E402
                        ScheduleConfig, TrainConfig)
from job.styles.tf.runtime import local_runtime, setup  # noqa: E402
from job.styles.keras import loop as keras_fit
from job.styles.tf import loop as tf_loop  # noqa: E402
from job.train.task import Split, Task  # noqa: E402
from job.styles import ModelId

digits = load_digits()
images = (np.kron(digits.images, np.ones((3, 3)))[:, :, :] * 255 / 16).astype(np.uint8)
images = np.pad(images, ((0, 0), (2, 2), (2, 2))).reshape(len(images), 784)
labels = digits.target.astype(np.uint8)
split = Split(images[:512], labels[:512], images[512:640], labels[512:640])
root = Path(sys.argv[1])
mirrored = setup(RuntimeConfig(distribute="mirrored"))
report = {}
for style, fit in (("tf", tf_loop.fit), ("keras", keras_fit.fit)):
    histories = {}
    for name, runtime, batch in (("mirrored", mirrored, 32), ("single", local_runtime(), 64)):
        task = Task(model=ModelId("ffn", style),
                    spec=FFNSpec(hidden=(32,), dropout=0.0),
                    # A per-step schedule and smoothed labels: the rate is set in the
                    # optimizer's cross-replica step, the loss averaged over the global batch.
                    train=TrainConfig(epochs=3, batch_size=batch, learning_rate=0.003,
                                      lr_schedule=ScheduleConfig(kind="one_cycle"),
                                      label_smoothing=0.1,
                                      early_stopping=EarlyStoppingConfig(patience=5)),
                    order_seed=7, logdir=root / name / style)
        trained = fit(task, split, lambda line: None, runtime)
        histories[name] = [row["loss"] for row in trained.history]
        histories[f"{name}_rates"] = [row["learning_rate"] for row in trained.history]
    report[style] = {"replicas": mirrored.replicas, **histories}
print(json.dumps(report))
