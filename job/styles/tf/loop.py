"""Plain TensorFlow training: a GradientTape step under tf.function, run epoch by epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from job.competition import PIXELS
from job.styles.tf import feeding
from job.styles.tf import nets as nets
from job.styles.tf.adam import Adam
from job.styles.tf.feeding import warp_images  # noqa: F401
from job.styles.tf.loss_scale import LossScale
from job.styles.tf.runtime import local_runtime, setup  # noqa: F401
from job.system import interrupt
from job.system.runtime import Runtime
from job.train import checkpoint, epochs, progress, schedule
from job.train.task import Predictor, Split, Task, Trained

# The style's face to its worker (job.styles): setup and warp_images, imported above, and
# fit and load_predictor below.

BUILDERS = {"ffn": nets.build_ffn, "cnn": nets.build_cnn, "lstm": nets.build_lstm}


def fit(task: Task, split: Split, log: Callable[[str], None],
        runtime: Runtime | None = None) -> Trained:
    """Train `task` on `split` (from its last checkpoint, if any) and return the model."""
    runtime = runtime or local_runtime()
    tf.random.set_seed(task.train.seed)
    rates = schedule.run_rates(task.train, len(split.train_x),
                               task.train.batch_size * runtime.replicas)
    with runtime.strategy.scope():
        model = BUILDERS[task.arch](task.spec, task.train.seed, runtime.compute_dtype)
        optimizer = Adam(task.train.learning_rate, rates=rates)
        optimizer.build(model.trainable_variables)  # slots created eagerly: one trace, not two
        loss_scale = LossScale() if runtime.scales_loss else None
    state = State(model, optimizer, loss_scale, rates)
    begun = epochs.start(task, state, log)
    steps = make_steps(model, optimizer, loss_scale, runtime, task.train.label_smoothing)
    run_epochs(state, steps, task, split, begun, log, runtime)
    stopper = begun.stopper
    if stopper.restore_best_weights and stopper.best_weights is not None:
        set_weights(model, stopper.best_weights)
    return progress.finish(task, nets.count_params(model), begun.history, stopper, begun.started,
                           feeding.batched_predictor(model, task.train.batch_size),
                           lambda folder: save_module(model, folder / task.name), log)


class State:
    """What a checkpoint holds for the TF loop: model, optimizer, loss scale, dropout RNG
    (the `job.train.epochs.Loop` of this style)."""

    def __init__(self, model: tf.Module, optimizer: Adam, loss_scale: LossScale | None,
                 rates: np.ndarray | None = None):
        self.model, self.optimizer, self.loss_scale = model, optimizer, loss_scale
        self.rates = rates   # a per-step schedule, which the optimizer applies itself

    def optimizer_variables(self) -> list:
        return list(self.optimizer.variables) + list(
            self.loss_scale.variables if self.loss_scale else [])

    def learning_rate(self) -> float:
        if self.rates is not None:   # the next step's, as Keras reads a schedule
            return schedule.rate_after(self.rates, int(self.optimizer.iterations.numpy()))
        return float(self.optimizer.learning_rate.numpy())

    def set_learning_rate(self, rate: float) -> None:
        self.optimizer.learning_rate.assign(rate)

    def weights(self) -> list[np.ndarray]:
        return [v.numpy() for v in self.model.variables]

    def arrays(self) -> dict[str, list]:
        return {"model": self.weights(),
                "optimizer": [v.numpy() for v in self.optimizer_variables()],
                "rng": [self.model.rng.state.numpy()]}

    def restore(self, resumed: checkpoint.Resumed) -> None:
        """Put a checkpoint back into the model, the optimizer and the dropout RNG."""
        checkpoint.assign(self.model.variables, resumed.arrays["model"], "model")
        checkpoint.assign(self.optimizer_variables(), resumed.arrays["optimizer"], "optimizer")
        self.model.rng.state.assign(resumed.arrays["rng"][0])


def run_epochs(state: State, steps: tuple, task: Task, split: Split, begun: epochs.Start,
               log: Callable[[str], None], runtime: Runtime) -> None:
    """The shared epoch loop (`job.train.epochs`) over this style's compiled steps."""
    train_cfg = task.train
    train_steps, evaluate = steps
    batch = train_cfg.batch_size * runtime.replicas   # batch_size is per replica
    strategy = runtime.strategy
    n_steps = feeding.steps_per_epoch(len(split.train_x), batch)
    per_call = feeding.steps_per_call(n_steps, train_cfg.steps_per_execution)
    if task.on_batch:   # told after each compiled call; its loss read only when due
        train_steps = progress.counted(train_steps, task.on_batch, n_steps, begun.first_epoch,
                                       count=lambda iterator, n: int(n))
    batches = iter(strategy.experimental_distribute_dataset(feeding.training_batches(
        split.train_x, split.train_y, batch, task.order_seed, begun.first_epoch,
        train_cfg.epochs, train_cfg.augment)))
    validation = strategy.experimental_distribute_dataset(
        feeding.evaluation_batches(split.val_x, split.val_y, batch)) if split.validates else None
    writers = {kind: tf.summary.create_file_writer(str(task.logdir / kind))
               for kind in ("train", "validation")[:2 if validation is not None else 1]}

    def one_epoch(epoch: int) -> tuple[np.ndarray, np.ndarray]:
        sums = train_epoch(train_steps, batches, n_steps, per_call,
                           f"{task.name} epoch {epoch + 1}")
        validated = evaluate(validation).numpy() if validation is not None else progress.NOTHING
        return sums.numpy(), validated
    epochs.run(task, begun, state, one_epoch, writers, write_scalars, log)


def cross_entropy(labels: tf.Tensor, logits: tf.Tensor, smoothing: float) -> tf.Tensor:
    """Per-example cross-entropy against integer labels, smoothed as Keras smooths them
    (y * (1 - smoothing) + smoothing / classes) when `smoothing` is set."""
    if not smoothing:
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    classes = logits.shape[-1]
    targets = tf.one_hot(labels, classes, dtype=logits.dtype) * (1 - smoothing) + \
        smoothing / classes
    return tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits)


def make_steps(model: tf.Module, optimizer: Adam, loss_scale: LossScale | None,
               runtime: Runtime, smoothing: float = 0.0) -> tuple[Callable, Callable]:
    """Compiled training (n steps from an iterator) and evaluation (a whole dataset), each
    returning [summed loss, correct count, examples] over all replicas. XLA compiles each
    replica's computation, not the cross-replica parts (gradient all-reduce, optimizer),
    which XLA cannot span."""
    strategy = runtime.strategy
    variables = model.trainable_variables

    def batch_sums(logits: tf.Tensor, y: tf.Tensor, losses: tf.Tensor) -> tuple:
        correct = tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), y)
        return (tf.reduce_sum(losses), tf.reduce_sum(tf.cast(correct, tf.float32)),
                tf.cast(tf.shape(y)[0], tf.float32))

    @tf.function(jit_compile=runtime.jit_compile, reduce_retracing=True)
    def gradients(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            losses = cross_entropy(y, logits, smoothing)
            # Mean over the global batch, so gradients summed over replicas are the mean.
            loss = tf.nn.compute_average_loss(losses)
            if loss_scale is not None:
                loss = loss_scale.scale_loss(loss)
        return tape.gradient(loss, variables), batch_sums(logits, y, losses)

    def replica_train_step(x, y):
        grads, sums = gradients(x, y)
        if loss_scale is None:
            optimizer.apply_gradients(zip(grads, variables))
        else:
            grads = loss_scale.unscale(grads)
            optimizer.apply_gradients(zip(grads, variables), apply=loss_scale.update(grads))
        return sums

    @tf.function(jit_compile=runtime.jit_compile, reduce_retracing=True)
    def replica_eval_step(x, y):
        logits = model(x, training=False)
        losses = cross_entropy(y, logits, smoothing)   # val_loss as Keras reports it
        return batch_sums(logits, y, losses)

    def step_sums(step: Callable, x, y) -> tf.Tensor:
        sums = strategy.run(step, args=(x, y))
        return tf.stack([strategy.reduce(tf.distribute.ReduceOp.SUM, s, axis=None)
                         for s in sums])

    # Several steps per call, as Keras' steps_per_execution: one Python round trip (and
    # one read of the sums) per `n` batches instead of per batch.
    @tf.function
    def train_steps(iterator, n):
        sums = tf.zeros([3])
        for _ in tf.range(n):
            x, y = next(iterator)
            sums += step_sums(replica_train_step, x, y)
        return sums

    @tf.function
    def evaluate(dataset):
        sums = tf.zeros([3])
        for x, y in dataset:
            sums += step_sums(replica_eval_step, x, y)
        return sums

    return train_steps, evaluate


def train_epoch(train_steps: Callable, batches, n_steps: int, per_call: int,
                where: str) -> tf.Tensor:
    """One epoch's batches, `per_call` at a time; a stop signal is honoured between calls."""
    sums = tf.zeros([3])
    for done in range(0, n_steps, per_call):
        sums += train_steps(batches, tf.constant(min(per_call, n_steps - done)))
        interrupt.check(where)
    return sums


def write_scalars(writers: dict, epoch: int, logs: dict, learning_rate: float) -> None:
    """The tags keras.callbacks.TensorBoard writes, at the same 0-based epoch steps."""
    with writers["train"].as_default():
        tf.summary.scalar("epoch_loss", logs["loss"], step=epoch)
        tf.summary.scalar("epoch_accuracy", logs["accuracy"], step=epoch)
        tf.summary.scalar("epoch_learning_rate", learning_rate, step=epoch)
    if "val_loss" in logs:
        with writers["validation"].as_default():
            tf.summary.scalar("epoch_loss", logs["val_loss"], step=epoch)
            tf.summary.scalar("epoch_accuracy", logs["val_accuracy"], step=epoch)


def set_weights(model: tf.Module, values: list[np.ndarray]) -> None:
    """Restore variables saved by early stopping (same order as model.variables)."""
    for variable, value in zip(model.variables, values):
        variable.assign(value)


def save_module(model: tf.Module, path: Path) -> None:
    """A SavedModel whose signature takes uint8 pixels and returns probabilities."""
    @tf.function(input_signature=[tf.TensorSpec([None, PIXELS], tf.uint8, name="pixels")])
    def serve(pixels):
        return {"probabilities": tf.nn.softmax(model(feeding.to_model_input(pixels),
                                                     training=False))}
    tmp = path.with_name(f".{path.name}.tmp")
    tf.saved_model.save(model, str(tmp), signatures={"serving_default": serve})
    tmp.rename(path)


def load_predictor(folder: Path, task: Task) -> Predictor:
    """Logits from a SavedModel written by `save_module` (log-probabilities: same argmax)."""
    serve = tf.saved_model.load(str(folder / task.name)).signatures["serving_default"]

    def predict_logits(images: np.ndarray) -> np.ndarray:
        chunks = [serve(pixels=tf.constant(images[i:i + 4096]))["probabilities"].numpy()
                  for i in range(0, len(images), 4096)]
        return np.log(np.concatenate(chunks) + 1e-30)
    return predict_logits
