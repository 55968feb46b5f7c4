"""Epoch-end checkpoints of one model, the same format for every style.

A checkpoint is everything needed to continue as if never stopped: the model's
variables, the optimizer's (step count and moments; the learning rate lives there
too), the dropout generators' state, early stopping's state and best weights, and
the history so far. Arrays go to an .npz named after the epoch and the small state
to state.json, written last and atomically: it names the .npz to read, so a crash at
any moment leaves the previous checkpoint whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from job.system.files import write_atomic
from job.train import schedule
from job.train.task import Task

STATE = "state.json"
GROUPS = ("model", "optimizer", "rng", "best")


def save(folder: Path, epochs_done: int, arrays: dict[str, list | None], state: dict) -> None:
    """Write the checkpoint taken after `epochs_done` epochs; drop the one before."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"epoch-{epochs_done:05d}.npz"
    flat = {f"{group}/{i:05d}": np.asarray(a) for group in GROUPS
            for i, a in enumerate(arrays.get(group) or [])}
    write_atomic(folder / name, lambda f: np.savez(f, **flat))
    has_best = arrays.get("best") is not None
    write_atomic(folder / STATE, json.dumps({**state, "epochs_done": epochs_done,
                                             "arrays": name, "has_best": has_best}))
    for old in folder.glob("epoch-*.npz"):
        if old.name != name:
            old.unlink(missing_ok=True)


def load(folder: Path) -> tuple[dict, dict[str, list[np.ndarray] | None]] | None:
    """(state, arrays) of the last checkpoint, or None when there is none."""
    if not (folder / STATE).is_file():
        return None
    state = json.loads((folder / STATE).read_text())
    with np.load(folder / state["arrays"]) as archive:
        arrays: dict[str, Any] = {group: [] for group in GROUPS}
        for key in sorted(archive.files):
            group, _ = key.split("/")
            arrays[group].append(archive[key])
    if not state["has_best"]:
        arrays["best"] = None
    return state, arrays


def assign(variables: list, values: list[np.ndarray], what: str) -> None:
    """Put saved values back into variables, checking that they still fit."""
    if len(variables) != len(values):
        raise ValueError(f"checkpoint holds {len(values)} {what} arrays, the model has "
                         f"{len(variables)}: the architecture changed since it was written")
    for variable, value in zip(variables, values):
        variable.assign(value)


STOPPING_FIELDS = ("wait", "best", "best_epoch", "stopped_epoch")


def stopping_state(stopper: Any) -> dict:
    """Early stopping's progress; Keras' callback and the TF tracker share field names."""
    return {name: getattr(stopper, name) for name in STOPPING_FIELDS}


def restore_stopping(stopper: Any, state: dict, best_weights: list | None) -> None:
    """Continue early stopping where a checkpoint left it."""
    for name in STOPPING_FIELDS:
        setattr(stopper, name, state[name])
    stopper.best_weights = best_weights


def small_state(history: list[dict], stopper: Any, seconds: float, plateau: Any = None) -> dict:
    """The small part of a checkpoint: history, early stopping, the plateau schedule's
    progress, time spent so far."""
    return {"history": history, "early_stopping": stopping_state(stopper),
            "plateau": schedule.state_of(plateau) if plateau is not None else None,
            "train_seconds": seconds}


@dataclass(frozen=True)
class Resumed:
    """Where a model's training left off: what every style restores before its loop."""

    epochs_done: int
    seconds: float                 # training time already spent
    history: list[dict]
    stopping: dict                 # early stopping's fields (STOPPING_FIELDS)
    plateau: dict | None           # the plateau schedule's fields, if it has one
    arrays: dict[str, list[np.ndarray] | None]   # GROUPS: model, optimizer, rng, best

    @property
    def stopped(self) -> bool:
        """Interrupted after the epoch whose checkpoint ended training."""
        return bool(self.stopping["stopped_epoch"])


def resume(task: Task, log: Callable[[str], None]) -> Resumed | None:
    """The task's last checkpoint, said in the log, or None to start from epoch 0."""
    found = load(task.checkpoint_dir) if task.checkpoint_dir else None
    if found is None:
        return None
    state, arrays = found
    log(f"{task.name:<10} resuming after epoch {state['epochs_done']}")
    return Resumed(state["epochs_done"], state["train_seconds"], state["history"],
                   state["early_stopping"], state.get("plateau"), arrays)

