"""Epoch-end checkpoints of one model, the same format for both styles.

A checkpoint is everything needed to continue as if never stopped: the model's
variables, the optimizer's (step count and moments; the learning rate lives there
too), the dropout generators' state, early stopping's state and best weights, and
the history so far. Arrays go to an .npz named after the epoch and the small state
to state.json, written last and atomically: it names the .npz to read, so a crash at
any moment leaves the previous checkpoint whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from job.files import write_atomic

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
