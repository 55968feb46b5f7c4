"""Keras training: compile/fit with the built-in EarlyStopping and TensorBoard callbacks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import keras

from job.styles.keras import nets as nets
from job.styles.keras import schedule as keras_schedule
from job.styles.tf import feeding
from job.styles.tf.feeding import warp_images  # noqa: F401
from job.styles.tf.runtime import local_runtime, setup  # noqa: F401
from job.system import interrupt
from job.system.runtime import Runtime
from job.train import checkpoint, progress
from job.train.task import Predictor, Split, Task, Trained

# The style's face to its worker (job.styles): setup and warp_images, imported above, and
# fit and load_predictor below.

BUILDERS = {"ffn": nets.build_ffn, "cnn": nets.build_cnn, "lstm": nets.build_lstm}


class EpochLog(keras.callbacks.Callback):
    """Records, checks and prints epochs exactly as the TF loop does (fit's own
    progress bar cannot print every N epochs, which the original notebook wanted)."""

    def __init__(self, task: Task, history: list[dict], log: Callable[[str], None]):
        super().__init__()
        self.task, self.history, self.log = task, history, log
        self.started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        # A stop signal abandons the epoch, as in the TF loop: raising here skips the
        # epoch-end callbacks, so no half epoch reaches TensorBoard or a checkpoint.
        interrupt.check(f"{self.task.name} epoch {len(self.history) + 1}")
        if self.task.on_batch:   # logs' loss is read (a device sync) only when a report is due
            self.task.on_batch(len(self.history), batch + 1, self.params["steps"],
                               lambda: float(logs["loss"]))

    def on_epoch_end(self, epoch, logs=None):
        learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        progress.end_epoch(self.task, self.history, epoch, logs or {},
                           time.perf_counter() - self.started, learning_rate, self.log)


class Report(keras.callbacks.Callback):
    """Hands each epoch's record to task.report once TensorBoard has it, as the TF loop
    does, so a pruned trial's last epoch is in its curves in every style."""

    def __init__(self, task: Task, history: list[dict]):
        super().__init__()
        self.task, self.history = task, history

    def on_epoch_end(self, epoch, logs=None):
        self.task.report(self.history[-1])


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """The built-in callback, which can pick up a checkpoint's state (on_train_begin
    would otherwise reset it)."""

    def __init__(self, resumed: checkpoint.Resumed | None = None, **kwargs):
        super().__init__(**kwargs)
        self.resumed = resumed

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.resumed:
            checkpoint.restore_stopping(self, self.resumed.stopping, self.resumed.arrays["best"])


class LastEpoch(keras.callbacks.Callback):
    """No early stopping (train.early_stopping.enabled: false): every epoch runs, the last
    one's weights stay; the fields EarlyStopping's readers expect (the checkpoint, the end
    of training) say so, as the shared tracker does when disabled."""

    def __init__(self, resumed: checkpoint.Resumed | None = None):
        super().__init__()
        self.resumed, self.monitor, self.restore_best_weights = resumed, "loss", False
        self.wait, self.best, self.best_epoch, self.stopped_epoch = 0, None, 0, 0
        self.best_weights = None

    def on_train_begin(self, logs=None):
        if self.resumed:
            checkpoint.restore_stopping(self, self.resumed.stopping, None)

    def on_epoch_end(self, epoch, logs=None):
        self.best_epoch = epoch


class SmoothedCrossentropy(keras.losses.Loss):
    """Sparse categorical cross-entropy from logits against Keras' smoothed labels (Keras
    3.15's SparseCategoricalCrossentropy has no label_smoothing; CategoricalCrossentropy's
    needs one-hot labels, and the shared pipeline feeds integers)."""

    def __init__(self, label_smoothing: float, name: str = "smoothed_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        one_hot = keras.ops.one_hot(labels, y_pred.shape[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(one_hot, y_pred, from_logits=True,
                                                     label_smoothing=self.label_smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def cross_entropy(smoothing: float) -> keras.losses.Loss:
    """The compiled loss: Keras' own without smoothing, else `SmoothedCrossentropy`."""
    if not smoothing:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return SmoothedCrossentropy(smoothing)


class Checkpoint(keras.callbacks.Callback):
    """Saves the epoch-end checkpoint (after EarlyStopping has judged the epoch)."""

    def __init__(self, task: Task, history: list[dict],
                 stopper: keras.callbacks.EarlyStopping, plateau, started: float):
        super().__init__()
        self.task, self.history, self.stopper, self.started = task, history, stopper, started
        self.plateau = plateau

    def on_epoch_end(self, epoch, logs=None):
        arrays = {"model": self.model.get_weights(),
                  "optimizer": [v.numpy() for v in self.model.optimizer.variables],
                  "rng": [g.state.numpy() for g in seed_generators(self.model)],
                  "best": self.stopper.best_weights}
        state = checkpoint.small_state(self.history, self.stopper,
                                       time.perf_counter() - self.started, self.plateau)
        checkpoint.save(self.task.checkpoint_dir, len(self.history), arrays, state)


def seed_generators(model: keras.Model) -> list:
    """The dropout layers' random generators, whose state a resumed run continues."""
    return [layer.seed_generator for layer in model.layers
            if getattr(layer, "seed_generator", None) is not None]


def restore(model: keras.Model, resumed: checkpoint.Resumed) -> list[dict]:
    """Put a checkpoint back into the compiled model and its optimizer; its history.
    (Early stopping and the plateau schedule pick theirs up in on_train_begin.)"""
    model.optimizer.build(model.trainable_variables)
    model.set_weights(resumed.arrays["model"])
    checkpoint.assign(model.optimizer.variables, resumed.arrays["optimizer"], "optimizer")
    checkpoint.assign([g.state for g in seed_generators(model)], resumed.arrays["rng"],
                      "dropout RNG")
    return list(resumed.history)


def fit(task: Task, split: Split, log: Callable[[str], None],
        runtime: Runtime | None = None) -> Trained:
    """Train `task` on `split` (from its last checkpoint, if any) and return the model."""
    runtime = runtime or local_runtime()
    train_cfg = task.train
    keras.utils.set_random_seed(train_cfg.seed)
    # Keras' precision policy is global: set it for every model, so none inherits another's.
    keras.mixed_precision.set_global_policy(runtime.mixed_precision)
    batch = train_cfg.batch_size * runtime.replicas   # batch_size is per replica
    n_steps = feeding.steps_per_epoch(len(split.train_x), batch)
    resumed = checkpoint.resume(task, log)
    with runtime.strategy.scope():
        model = BUILDERS[task.arch](task.spec, train_cfg.seed)
        # compile wraps Adam in a LossScaleOptimizer under mixed_float16, as the TF loop
        # scales its loss itself.
        model.compile(optimizer=keras.optimizers.Adam(keras_schedule.learning_rate(
                          train_cfg, len(split.train_x), batch)),
                      loss=cross_entropy(train_cfg.label_smoothing),
                      metrics=["accuracy"], jit_compile=runtime.jit_compile,
                      steps_per_execution=feeding.steps_per_call(
                          n_steps, train_cfg.steps_per_execution))
        history = restore(model, resumed) if resumed else []
    started = time.perf_counter() - (resumed.seconds if resumed else 0.0)
    first_epoch = resumed.epochs_done if resumed else 0
    stopper = early_stopping(train_cfg.early_stopping, resumed)
    rates = keras_schedule.keras_callbacks(train_cfg.lr_schedule, train_cfg.learning_rate,
                                     resumed.plateau if resumed else None)
    plateau = next((c for c in rates if isinstance(c, keras.callbacks.ReduceLROnPlateau)), None)
    callbacks = [EpochLog(task, history, log),
                 keras.callbacks.TensorBoard(log_dir=str(task.logdir), write_graph=False),
                 *([Report(task, history)] if task.report else []), stopper, *rates]
    if task.checkpoint_dir:
        callbacks.append(Checkpoint(task, history, stopper, plateau, started))
    batches = feeding.training_batches(split.train_x, split.train_y, batch, task.order_seed,
                                      first_epoch, train_cfg.epochs, train_cfg.augment)
    if first_epoch >= train_cfg.epochs or (resumed and resumed.stopped):
        # Interrupted after its last epoch's checkpoint: only the ending is left.
        stopper.set_model(model)
        stopper.on_train_begin()
        stopper.on_train_end()   # restores the best weights, as at the end of fit
    else:
        model.fit(batches, initial_epoch=first_epoch, epochs=train_cfg.epochs,
                  steps_per_epoch=n_steps,
                  validation_data=feeding.evaluation_batches(split.val_x, split.val_y, batch)
                  if split.validates else None,
                  shuffle=False,  # the dataset is already shuffled, per epoch, by seed
                  callbacks=callbacks, verbose=0)
    # Not model.predict: with steps_per_execution it unrolls that many forward passes into
    # one graph and runs them side by side (100-480 MB more with the CNN's test set).
    return progress.finish(task, model.count_params(), history, stopper, started,
                           feeding.batched_predictor(model, train_cfg.batch_size),
                           lambda folder: save_model(model, folder / f"{task.name}.keras"), log)


def early_stopping(config, resumed: checkpoint.Resumed | None = None) -> keras.callbacks.Callback:
    """The built-in callback, configured from the same section as the TF tracker; when
    disabled, one that keeps the last epoch's weights and never stops."""
    if not config.enabled:
        return LastEpoch(resumed)
    return ResumableEarlyStopping(
        resumed, monitor=config.monitor, mode=config.resolved_mode, patience=config.patience,
        min_delta=config.min_delta, restore_best_weights=config.restore_best_weights)


def save_model(model: keras.Model, path: Path) -> None:
    """A .keras archive, written under a temporary name and renamed when complete."""
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    tmp.rename(path)


def load_predictor(folder: Path, task: Task) -> Predictor:
    """Logits from a .keras archive written by `save_model`."""
    model = keras.models.load_model(folder / f"{task.name}.keras", compile=False)
    return feeding.batched_predictor(model, task.train.batch_size)
