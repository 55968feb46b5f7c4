"""Plain PyTorch training: an autograd step per batch, run epoch by epoch.

The batches follow the shared plan (`job.data.plan`: order and augmentation), gathered
and warped on the device by `job.styles.torch.feeding`; early stopping, the learning-rate
schedule, the checkpoint format, log lines and TensorBoard tags are the ones the TF
loop uses. What is torch's own: autograd, torch.autocast for mixed precision (Keras'
loss scaling under float16), torch.compile for `runtime.jit_compile`, one device.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from job.errors import DeviceError, RunError
from job.styles.torch import board, feeding
from job.styles.torch import nets as nets
from job.styles.torch.feeding import warp_images  # noqa: F401
from job.styles.torch.nets import set_weights, to_numpy, weights
from job.styles.torch.optim import Adam, LossScale
from job.styles.torch.runtime import local_runtime, setup  # noqa: F401
from job.system import interrupt
from job.system.runtime import Runtime
from job.train import checkpoint, epochs, progress, schedule
from job.train.task import Predictor, Split, Task, Trained

# The style's face to its worker (job.styles): setup and warp_images, imported above, and
# fit and load_predictor below.

BUILDERS = {"ffn": nets.build_ffn, "cnn": nets.build_cnn, "lstm": nets.build_lstm}
AUTOCAST = {"mixed_float16": torch.float16, "mixed_bfloat16": torch.bfloat16}


def fit(task: Task, split: Split, log: Callable[[str], None],
        runtime: Runtime | None = None) -> Trained:
    """Train `task` on `split` (from its last checkpoint, if any) and return the model."""
    runtime = runtime or local_runtime()
    device = choose_device(task.name, runtime)
    share_threads()
    torch.manual_seed(task.train.seed)
    model = BUILDERS[task.arch](task.spec, task.train.seed, str(device))
    optimizer = Adam(nets.trained_parameters(model), task.train.learning_rate)
    scaler = LossScale() if runtime.scales_loss else None
    state = State(model, optimizer, scaler,
                  schedule.run_rates(task.train, len(split.train_x), task.train.batch_size))
    begun = epochs.start(task, state, log)
    forward = torch.compile(model) if runtime.jit_compile else model
    run_epochs(state, Steps(forward, state, runtime, device, task.train.label_smoothing),
               task, split, begun, log)
    stopper = begun.stopper
    if stopper.restore_best_weights and stopper.best_weights is not None:
        set_weights(model, stopper.best_weights)
    return progress.finish(task, nets.count_params(model), begun.history, stopper, begun.started,
                           batched_predictor(model, task.train.batch_size, device),
                           lambda folder: save_model(model, task, folder), log)


def choose_device(name: str, runtime: Runtime) -> torch.device:
    """The one device torch trains on: CUDA when its setup found a GPU, else the CPU.
    Refuses more than one replica: data parallelism is not built for this style (the
    config check refuses it earlier)."""
    if runtime.replicas > 1 or runtime.kind != "none":
        raise DeviceError(f"{name}: the torch style trains on one device; set "
                          f"runtime.distribute: none (it resolved to {runtime.kind} with "
                          f"{runtime.replicas} replicas)")
    if any(":GPU" in d for d in runtime.devices):
        if not torch.cuda.is_available():
            raise DeviceError(f"{name}: the runtime names a GPU but torch {torch.__version__} "
                              "sees none; run `python -m job doctor` and check the driver "
                              "runs torch's CUDA release")
        return torch.device("cuda")
    # A CUDA build of torch on a machine without a driver warns at its first backward
    # pass that it cannot load CUDA; here that is known and decided already.
    warnings.filterwarnings("ignore", message="CUDA initialization", category=UserWarning)
    return torch.device("cpu")


def share_threads() -> None:
    """Use as many CPU threads as a TF worker would: TF_NUM_INTRAOP_THREADS (how a sweep
    shares the cores between workers); unset, torch's default (one per core), which is
    TensorFlow's default too. Read from the environment: a torch worker loads no TF."""
    threads = int(os.environ.get("TF_NUM_INTRAOP_THREADS") or 0)
    if threads:
        torch.set_num_threads(threads)


class State:
    """What a checkpoint holds for the torch loop: model, optimizer, loss scale, dropout RNG
    (the `job.train.epochs.Loop` of this style)."""

    def __init__(self, model: nets.Net, optimizer: Adam, scaler: LossScale | None,
                 rates: np.ndarray | None = None):
        self.model, self.optimizer, self.scaler = model, optimizer, scaler
        self.rates = rates   # a per-step schedule (job.train.schedule.step_rates)

    def learning_rate(self) -> float:
        if self.rates is not None:   # the next step's, as Keras reads a schedule
            return schedule.rate_after(self.rates, self.optimizer.iterations)
        return float(np.float32(self.optimizer.learning_rate))   # as a float32 variable reads

    def set_learning_rate(self, rate: float) -> None:
        self.optimizer.learning_rate = rate

    def weights(self) -> list[np.ndarray]:
        return weights(self.model)

    def arrays(self) -> dict[str, list]:
        optimizer = self.optimizer.state() + (self.scaler.state() if self.scaler else [])
        return {"model": self.weights(), "optimizer": [to_numpy(v) for v in optimizer],
                "rng": [to_numpy(self.model.generator.get_state())]}

    def restore(self, resumed: checkpoint.Resumed) -> None:
        """Put a checkpoint back into the model, the optimizer and the dropout RNG."""
        set_weights(self.model, resumed.arrays["model"])
        values = list(resumed.arrays["optimizer"])
        if self.scaler is not None:
            values, scale = values[:-2], values[-2:]
            self.scaler.load_state(scale)
        self.optimizer.load_state(values)
        self.model.generator.set_state(torch.from_numpy(resumed.arrays["rng"][0]))


def cross_entropy(logits: torch.Tensor, y: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Per-example cross-entropy; torch's label_smoothing is Keras' y*(1-e) + e/classes."""
    return F.cross_entropy(logits.float(), y, reduction="none", label_smoothing=smoothing)


class Steps:
    """One training step and a whole evaluation, each adding [summed loss, correct,
    examples] into a tensor on the device, read once per epoch (no sync per batch)."""

    def __init__(self, forward: Callable, state: State, runtime: Runtime, device: torch.device,
                 smoothing: float = 0.0):
        self.forward, self.state, self.device = forward, state, device
        self.smoothing = smoothing
        self.autocast = dict(device_type=device.type, dtype=AUTOCAST.get(runtime.mixed_precision),
                             enabled=runtime.mixed_precision in AUTOCAST)

    def sums(self, logits: torch.Tensor, y: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        correct = (logits.argmax(dim=1) == y).sum()
        return torch.stack([losses.sum(), correct.float(), torch.tensor(float(len(y)),
                                                                        device=y.device)])

    def train(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Forward, mean loss over the (on-device) batch, backward, one Adam step."""
        model, optimizer, scaler = self.state.model, self.state.optimizer, self.state.scaler
        model.train()
        with torch.autocast(**self.autocast):
            logits = self.forward(x)
        losses = cross_entropy(logits, y, self.smoothing)
        loss = losses.mean()
        optimizer.zero_grad()
        if self.state.rates is not None:   # the step count continues across a resume
            optimizer.learning_rate = schedule.rate_after(self.state.rates, optimizer.iterations)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale_loss(loss).backward()
            if scaler.unscale(optimizer.params):   # an overflow skips the step
                optimizer.step()
        return self.sums(logits.detach(), y, losses.detach())

    @torch.no_grad()
    def evaluate(self, batches) -> torch.Tensor:
        """The summed validation loss, correct count and size over on-device `batches`."""
        self.state.model.eval()
        total = torch.zeros(3, device=self.device)
        for x, y in batches:
            with torch.autocast(**self.autocast):
                logits = self.forward(x)
            # val_loss smoothed too, as Keras reports its compiled loss.
            total += self.sums(logits, y, cross_entropy(logits, y, self.smoothing))
        return total


def run_epochs(state: State, steps: Steps, task: Task, split: Split, begun: epochs.Start,
               log: Callable[[str], None]) -> None:
    """The shared epoch loop (`job.train.epochs`) over this style's steps; a stop signal
    is honoured after every batch."""
    train_cfg = task.train
    training = feeding.TrainingSet(split.train_x, split.train_y, train_cfg.batch_size,
                                   task.order_seed, train_cfg.augment, steps.device)
    if task.on_batch:   # told after each batch; its loss read (a device sync) only when due
        steps.train = progress.counted(steps.train, task.on_batch, -(-len(training) //
                                       train_cfg.batch_size), begun.first_epoch)
    # The validation set, too, crosses to the device once; each evaluation slices it.
    validation = ((feeding.on_device(split.val_x, steps.device),
                   feeding.on_device(split.val_y, steps.device).long())
                  if split.validates else None)
    writers = {kind: board.summary_writer(str(task.logdir / kind))
               for kind in ("train", "validation")[:2 if validation is not None else 1]}

    def one_epoch(epoch: int) -> tuple[list[float], list[float]]:
        total = torch.zeros(3, device=steps.device)
        for x, y in training.epoch(epoch):
            total += steps.train(x, y)
            interrupt.check(f"{task.name} epoch {epoch + 1}")
        if validation is None:
            return total.tolist(), progress.NOTHING
        batches = feeding.evaluation_batches(*validation, train_cfg.batch_size)
        return total.tolist(), steps.evaluate(batches).tolist()
    epochs.run(task, begun, state, one_epoch, writers, write_scalars, log)


def write_scalars(writers: dict, epoch: int, logs: dict, learning_rate: float) -> None:
    """The tags and 0-based steps keras.callbacks.TensorBoard writes, via torch's writer."""
    writers["train"].add_scalar("epoch_loss", logs["loss"], epoch)
    writers["train"].add_scalar("epoch_accuracy", logs["accuracy"], epoch)
    writers["train"].add_scalar("epoch_learning_rate", learning_rate, epoch)
    if "val_loss" in logs:
        writers["validation"].add_scalar("epoch_loss", logs["val_loss"], epoch)
        writers["validation"].add_scalar("epoch_accuracy", logs["val_accuracy"], epoch)
    for writer in writers.values():
        writer.flush()


# Logits for uint8 images from on-device slices (fit's and load_predictor's predictor).
batched_predictor = feeding.batched_predictor


def save_model(model: torch.nn.Module, task: Task, folder: Path) -> None:
    """The state dict and the spec it was built from, under a temporary name, renamed
    when complete."""
    path = folder / f"{task.name}.pt"
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"arch": task.arch, "spec": plain_spec(task.spec),
                "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}, tmp)
    tmp.rename(path)


def load_predictor(folder: Path, task: Task) -> Predictor:
    """Logits from a file written by `save_model`: the net rebuilt from the spec and its
    state dict loaded (the spec must be the task's, or the file is another model's)."""
    path = folder / f"{task.name}.pt"
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if saved.get("arch") != task.arch or saved.get("spec") != plain_spec(task.spec):
        raise RunError(f"{path}: saved for another {task.arch} spec than this run's "
                       f"config; retrain it or restore the config it was trained with")
    model = BUILDERS[task.arch](task.spec, task.train.seed)
    model.load_state_dict(saved["state_dict"])
    return batched_predictor(model, task.train.batch_size, torch.device("cpu"))


def plain_spec(spec) -> dict:
    """The spec as plain values (tuples as lists), as the saved file holds it."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(spec).items()}
