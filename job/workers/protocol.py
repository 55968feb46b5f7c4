"""What a parent and a worker say to each other: one JSON line each way at a time.

The parent writes the Request on the worker's stdin and keeps it open for replies. The
worker writes Events on a pipe of their own (its stdout and stderr go to its log file):
`log` lines to print, `progress` within an epoch (at most a few a second, for a live
display; no answer), an `epoch` record (to which, when the request asked for reports,
the parent answers go on or prune before the next epoch starts), then how it ended.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import IO, Any

EVENTS_FD_ENV = "JOB_WORKER_EVENTS_FD"   # the worker's end of the events pipe

# How a worker ends, besides dying.
DONE, ERROR, INTERRUPTED, PRUNED = "done", "error", "interrupted", "pruned"


@dataclass(frozen=True)
class Request:
    """The models one worker trains into a run folder, one after another: one model, or
    for `multi_worker` every model of the run (the cluster forms once per process)."""

    models: tuple[str, ...]    # ModelId names, e.g. (cnn-keras-bag2,)
    config: str                # the run's resolved config.yaml
    data_dir: str              # the CSVs' folder, loaded and split as the parent did
    folder: str                # the run folder (models/, checkpoints/, tensorboard/)
    session: str               # the HParams session prefix (the run's id)
    reports: bool = False      # send each epoch and wait for the parent's go / prune
    hparams: dict[str, Any] = field(default_factory=dict)   # a sweep's swept keys

    def line(self) -> str:
        return json.dumps(dataclasses.asdict(self)) + "\n"

    @classmethod
    def read(cls, text: str) -> "Request":
        fields = json.loads(text)
        return cls(**{**fields, "models": tuple(fields["models"])})

    @property
    def name(self) -> str:
        """How the log and its file name the worker: its model, or its models joined."""
        return "+".join(self.models)


@dataclass(frozen=True)
class Event:
    """One message from a worker."""

    kind: str                  # log | progress | epoch | done | error | interrupted | pruned
    text: str = ""             # the log line, or the message of how it ended
    model: str = ""            # with kind progress or epoch: whose
    record: dict | None = None     # an epoch's record, or progress within one
    error: str = ""            # with kind error: the JobError subclass's name

    def line(self) -> str:
        return json.dumps(dataclasses.asdict(self)) + "\n"

    @classmethod
    def read(cls, text: str) -> "Event":
        return cls(**json.loads(text))


def send(stream: IO[str], message: str) -> None:
    """One line, at once: the other side is waiting for it."""
    stream.write(message)
    stream.flush()
