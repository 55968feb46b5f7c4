"""The worker's side: `python -m job.workers.child`, one model in its own process.

It reads its Request from stdin, imports its style's framework (and no other), loads and
splits the data as the parent did, trains, then leaves in the run folder the model, its
logits for every image set the parent scores (validation, test, each TTA view) and last
its results row, which marks it finished. A stop signal checkpoints as in any loop.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np

from job.config import Config, load_config
from job.data import arrays, plan
from job.errors import JobError, Pruned
from job.outputs import events
from job.styles import STYLES, AverageId, ModelId
from job.system import interrupt
from job.system.files import write_atomic
from job.train import models, progress, scoring
from job.train.results import ModelRow, RefitRow
from job.train.task import Split, Trained
from job.workers.protocol import (DONE, ERROR, EVENTS_FD_ENV, INTERRUPTED, PRUNED, Event,
                                  Request, send)


FRAMEWORKS = ("tensorflow", "keras", "torch")


class Channel:
    """The worker's end of the conversation: events out, the parent's replies in."""

    def __init__(self, events_out, replies_in):
        self.out, self.replies = events_out, replies_in

    def send(self, event: Event) -> bool:
        """False once the parent is gone: the worker then stops at its next step, after
        the epoch in progress has its checkpoint, as on SIGTERM."""
        try:
            send(self.out, event.line())
            return True
        except BrokenPipeError:
            interrupt.request()
            return False

    def log(self, line: str) -> None:
        print(line, flush=True)          # the model's log file keeps every line
        self.send(Event("log", line))

    def reporter(self, model: ModelId):
        """What a task calls with each epoch's record: sends it to the parent, whose pruner
        may end the run there."""
        return lambda record: self.report(model, record)

    def progress(self, model: ModelId):
        """What a task's per-batch reports call: sent on, no answer awaited."""
        return lambda record: self.send(Event("progress", model=model.name, record=record))

    def report(self, model: ModelId, record: dict) -> None:
        sent = self.send(Event("epoch", model=model.name, record=record))
        reply = json.loads(sent and self.replies.readline() or '{"prune": null}')
        if reply["prune"] is None:
            raise interrupt.Interrupted("the parent process went away")
        if reply["prune"]:
            raise Pruned(reply["prune"])

    def end(self, kind: str, text: str = "", error: str = "") -> None:
        print(f"{kind}: {text}" if text else kind, flush=True)   # the log says how it ended
        self.send(Event(kind, text, error=error))


def watch_parent(parent: int, every: float = 1.0) -> None:
    """A parent that dies (SIGKILL, out of memory) cannot pass a stop on: its worker, in a
    process session of its own, then stops by itself at the next step, as on SIGTERM, so
    its last checkpoint is what `--resume` continues from."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        interrupt.request()
    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def main() -> int:
    request = Request.read(sys.stdin.readline())
    channel = Channel(os.fdopen(int(os.environ[EVENTS_FD_ENV]), "w"), sys.stdin)
    with interrupt.catching():
        watch_parent(os.getppid())
        try:
            train(request, channel)
        except interrupt.Interrupted as e:
            channel.end(INTERRUPTED, str(e))
            return interrupt.EXIT_CODE
        except Pruned as e:
            channel.end(PRUNED, str(e))
            return 0
        except JobError as e:
            channel.end(ERROR, str(e), type(e).__name__)
            return 2
    channel.end(DONE)
    return 0


def train(request: Request, channel: Channel) -> None:
    """Train the request's models in their style, one after another, and save everything
    the parent reads."""
    config = load_config(request.config)
    ids = [ModelId.parse(name) for name in request.models]
    if len({m.style for m in ids}) != 1:
        raise ValueError(f"one worker trains one style: {request.models}")
    style = loop_of(ids[0].style)   # its framework, and no other
    runtime = style.setup(config.runtime)
    loaded = arrays.load_arrays(Path(request.data_dir))
    split = Split(*arrays.split_validation(loaded.train_images, loaded.train_labels,
                                           config.data.val_fraction, config.data.seed))
    for model in ids:
        train_one(model, style, runtime, config, loaded.test_images, split, request, channel)


def train_one(model: ModelId, style, runtime, config: Config, test: np.ndarray, split: Split,
              request: Request, channel: Channel) -> None:
    """One model: fit, save the model, its logits, its HParams, last its results row."""
    folder = Path(request.folder)
    base = read_row(folder, split_run(model)) if model.refit else None
    task = models.task_for(model, config, folder, base,
                           channel.reporter(model) if request.reports else None)
    own = models.split_for(model, split, config)
    task = dataclasses.replace(task, on_batch=progress.BatchReports(
        channel.progress(model), task.train.epochs, task.train.batch_size * runtime.replicas,
        task.train.early_stopping.enabled and not model.refit))
    if model.refit:
        channel.log(f"{task.name:<10} final fit on all {len(own.train_x):,} labelled rows for "
                    f"{task.train.epochs} epochs")
    trained = style.fit(task, own, channel.log, runtime)
    trained.save(folder / "models")
    logits = predictions(style, trained, config, split, test, model.refit)
    write_atomic(folder / "models" / f"{model.name}.logits.npz",
                 lambda f: np.savez(f, **logits))
    row = (refit_row(trained, model, own) if model.refit
           else split_row(trained, model, logits, split))
    row.runtime = runtime.describe()
    # What this process loaded, for the record (and the test of one framework per process).
    row.process = {"pid": os.getpid(), "frameworks": sorted(
        name for name in FRAMEWORKS if name in sys.modules)}
    events.write_hparams(task.logdir, {**progress.hparams_of(trained, task.spec, task.train),
                                       **request.hparams},
                         session=f"{request.session}/{task.name}")
    write_atomic(folder / "models" / f"{model.name}.json",
                 json.dumps(row.to_json(), indent=2) + "\n")
    shutil.rmtree(task.checkpoint_dir, ignore_errors=True)
    done = (f"training accuracy {row.accuracy:.4f}" if model.refit
            else f"val accuracy {row.val_accuracy:.4f}, {trained.epochs_run} epochs")
    channel.log(f"{task.name:<10} done: {done}, {trained.seconds_per_epoch:.2f}s/epoch")


def loop_of(style: str):
    """The loop module registered for `style` (setup, fit, load_predictor, warp_images);
    importing it imports that style's framework."""
    return importlib.import_module(STYLES[style].loop)


def split_run(model: ModelId) -> ModelId:
    """The split run a refit repeats: the same model and copy, not refit."""
    return ModelId(model.arch, model.style, model.copy)


def read_row(folder: Path, model: ModelId) -> dict:
    """A finished model's results row, as saved (a refit reads its split run's)."""
    return json.loads((folder / "models" / f"{model.name}.json").read_text())


def predictions(style, trained: Trained, config: Config, split: Split, test: np.ndarray,
                refit: bool) -> dict[str, np.ndarray]:
    """Logits for every image set the parent scores: `val` (the run's validation rows;
    none for a refit, which fit them), `test`, and `<set>@view<k>` for each TTA copy,
    warped by this style's own op from the shared NumPy parameters."""
    sets = {"test": test} if refit else {"val": split.val_x, "test": test}
    out = {}
    for name, images in sets.items():
        out[name] = trained.predict_logits(images)
        for copy in range(1, config.predict.tta + 1):
            transforms = plan.view_transforms(len(images), config.train.augment,
                                              config.predict.seed, copy)
            out[f"{name}@view{copy}"] = trained.predict_logits(
                style.warp_images(images, transforms))
    return out


def split_row(trained: Trained, model: ModelId, logits: dict, split: Split) -> ModelRow:
    """A model's row, scored on the run's validation rows (a bag copy's too: it fit and
    early-stopped on its own split of the training rows)."""
    scores = scoring.score(logits["val"], split.val_y)
    return ModelRow(trained.name, trained.arch, trained.style, trained.params,
                    trained.epochs_run, trained.best_epoch, scores["val_loss"],
                    scores["val_accuracy"], round(trained.train_seconds, 3),
                    round(trained.seconds_per_epoch, 4), trained.history,
                    role=f"member of {AverageId(model.model).name}" if model.copy else None)


def refit_row(trained: Trained, model: ModelId, full: Split) -> RefitRow:
    """A refit's row: no validation figures, every labelled row was fit on."""
    return RefitRow(trained.name, split_run(model).name, trained.epochs_run,
                    len(full.train_x), trained.history[-1]["loss"],
                    trained.history[-1]["accuracy"], round(trained.train_seconds, 3),
                    round(trained.seconds_per_epoch, 4), trained.history)


if __name__ == "__main__":
    sys.exit(main())
