"""A trained model's results row: one type, written by its worker as models/<name>.json,
read back by the parent, scored further there, and listed in metrics.json.

`ModelRow` is a candidate for best: a model trained on the validation split (a bag copy
too), or an average of such (`members`). `RefitRow` is a final fit on every labelled row,
which has nothing to be judged on. `to_json` keeps the keys metrics.json has always had;
the optional extras appear once they are known.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# Extras a row holds only where they apply (left out of its JSON while unknown).
OPTIONAL = ("role", "members", "test_accuracy", "tta_val_loss", "tta_val_accuracy",
            "tta_test_accuracy", "runtime", "process")


@dataclass
class ModelRow:
    """A candidate: how it trained and how it scored."""

    name: str
    arch: str                        # ffn | cnn | lstm, or "ensemble" for an average
    style: str                       # tf | keras | torch, or "ensemble"
    params: int
    epochs_run: int
    best_epoch: int | None           # 1-based; None for an average
    val_loss: float
    val_accuracy: float
    train_seconds: float
    seconds_per_epoch: float | None  # None for an average
    history: list[dict] = field(default_factory=list)
    role: str | None = None          # "member of bag-<model>" for a bag copy
    members: list[str] | None = None     # an average's models
    test_accuracy: float | None = None   # on held-out labelled test rows (the sample)
    tta_val_loss: float | None = None
    tta_val_accuracy: float | None = None
    tta_test_accuracy: float | None = None
    runtime: dict | None = None      # the worker's devices (Runtime.describe)
    process: dict | None = None      # the worker's pid and the frameworks it loaded

    def to_json(self) -> dict[str, Any]:
        return to_json(self)

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> "ModelRow":
        return from_json(cls, values)


@dataclass
class RefitRow:
    """A final fit on every labelled row: no validation figures, training ones only."""

    name: str
    refit_of: str                    # the split run it repeats
    epochs_run: int
    fit_rows: int
    loss: float
    accuracy: float
    train_seconds: float
    seconds_per_epoch: float
    history: list[dict] = field(default_factory=list)
    runtime: dict | None = None
    process: dict | None = None

    def to_json(self) -> dict[str, Any]:
        return to_json(self)

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> "RefitRow":
        return from_json(cls, values)


def to_json(row: ModelRow | RefitRow) -> dict[str, Any]:
    """The row as metrics.json and models/<name>.json hold it."""
    return {k: v for k, v in dataclasses.asdict(row).items()
            if v is not None or k not in OPTIONAL}


def from_json(kind: type, values: dict[str, Any]):
    """A row read back; a file written by another version of the job is refused."""
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{values.get('name', '?')}: unknown result fields {unknown}")
    return kind(**values)
