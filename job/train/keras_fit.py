"""Keras training: compile/fit with the built-in EarlyStopping and TensorBoard callbacks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from job.nets import keras as nets
from job.runtime import Runtime, local_runtime
from job.train import common, inputs

BUILDERS = {"ffn": nets.build_ffn, "cnn": nets.build_cnn}


class EpochLog(keras.callbacks.Callback):
    """Records, checks and prints epochs exactly as the TF loop does (fit's own
    progress bar cannot print every N epochs, which the original notebook wanted)."""

    def __init__(self, task: common.Task, trained: common.Trained,
                 log: Callable[[str], None]):
        super().__init__()
        self.task, self.trained, self.log = task, trained, log
        self.started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        record = common.epoch_record(epoch, logs or {}, time.perf_counter() - self.started,
                                     learning_rate)
        self.trained.history.append(record)
        common.check_finite(self.task.name, record)
        epochs = self.task.train.epochs
        if common.should_log(epoch, self.task.train.log_every, epochs):
            self.log(common.format_epoch(self.task.name, record, epochs))


def fit(task: common.Task, split: common.Split, log: Callable[[str], None],
        runtime: Runtime | None = None) -> common.Trained:
    """Train `task` on `split` and return the model with its history."""
    runtime = runtime or local_runtime()
    train_cfg = task.train
    keras.utils.set_random_seed(train_cfg.seed)
    # Keras' precision policy is global: set it for every model, so none inherits another's.
    keras.mixed_precision.set_global_policy(runtime.mixed_precision)
    with runtime.strategy.scope():
        model = BUILDERS[task.arch](task.spec, train_cfg.seed)
        # compile wraps Adam in a LossScaleOptimizer under mixed_float16, as the TF loop
        # scales its loss itself.
        model.compile(optimizer=keras.optimizers.Adam(train_cfg.learning_rate),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"], jit_compile=runtime.jit_compile)
    trained = common.Trained(task.name, task.arch, task.style, model.count_params())
    stopper = early_stopping(train_cfg.early_stopping)
    callbacks = [EpochLog(task, trained, log),
                 keras.callbacks.TensorBoard(log_dir=str(task.logdir), write_graph=False),
                 stopper]
    batch = train_cfg.batch_size * runtime.replicas   # batch_size is per replica
    batches = inputs.training_batches(split.train_x, split.train_y, batch, task.order_seed, 0,
                                      train_cfg.epochs)
    started = time.perf_counter()
    model.fit(batches,
              epochs=train_cfg.epochs,
              steps_per_epoch=inputs.steps_per_epoch(len(split.train_x), batch),
              validation_data=inputs.evaluation_batches(split.val_x, split.val_y, batch),
              shuffle=False,  # the dataset is already shuffled, per epoch, by seed
              callbacks=callbacks, verbose=0)
    trained.train_seconds = time.perf_counter() - started
    trained.best_epoch = stopper.best_epoch + 1
    if stopper.stopped_epoch:
        log(common.format_stop(task.name, stopper.stopped_epoch + 1, trained.best_epoch,
                               stopper.monitor))
    trained.predict_logits = make_predictor(model, train_cfg.batch_size)
    trained.save = lambda folder: save_model(model, folder / f"{task.name}.keras")
    return trained


def early_stopping(config) -> keras.callbacks.EarlyStopping:
    """The built-in callback, configured from the same section as the TF tracker."""
    return keras.callbacks.EarlyStopping(
        monitor=config.monitor, mode=config.resolved_mode, patience=config.patience,
        min_delta=config.min_delta, restore_best_weights=config.restore_best_weights)


def make_predictor(model: keras.Model, batch_size: int) -> Callable[[np.ndarray], np.ndarray]:
    """Logits for uint8 images, batched, in inference mode."""
    def predict_logits(images: np.ndarray) -> np.ndarray:
        return model.predict(inputs.evaluation_batches(images, None, batch_size), verbose=0)
    return predict_logits


def save_model(model: keras.Model, path: Path) -> None:
    """A .keras archive, written under a temporary name and renamed when complete."""
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    tmp.rename(path)
