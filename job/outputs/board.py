"""What a live display knows while workers train: each model's place in its epochs, and
how long the rest will take at the pace measured so far.

An ETA here is arithmetic on measured times, not a promise: a running model's is the rest
of its epoch at its batch pace, then each epoch left up to its planned last at its epoch
pace; a queued model's is its epochs at the epoch pace of a model of its family and style
already measured in this run (none yet: it is counted as not measured). Early stopping
can end a model sooner, never later: where it may, an ETA is an upper bound ("≤").
"""

from __future__ import annotations

import heapq
import statistics
import threading
from dataclasses import dataclass, field

from job.styles import ModelId


@dataclass
class Entry:
    """One model of the round: queued, running (it has reported) or ended."""

    model: ModelId
    epochs: int                       # the planned last epoch (an upper bound)
    may_stop_early: bool
    state: str = "queued"
    latest: dict | None = None        # its last progress record
    epoch_seconds: list[float] = field(default_factory=list)   # each finished epoch's


@dataclass(frozen=True)
class Estimate:
    """The round's remaining time: `seconds` for the models measured, `unmeasured` models
    left out of it (no pace known yet), `bounded` when early stopping may end it sooner."""

    seconds: float
    unmeasured: int
    bounded: bool


def epoch_pace(seconds: list[float]) -> float | None:
    """Seconds per epoch: the median after the first, which also pays for tracing."""
    if not seconds:
        return None
    return statistics.median(seconds[1:] if len(seconds) > 1 else seconds)


def entry_pace(entry: Entry) -> float | None:
    """An entry's seconds per epoch: from its finished epochs, else its batch pace times
    the batches of an epoch (training only: validation not yet seen)."""
    pace = epoch_pace(entry.epoch_seconds)
    latest = entry.latest
    if pace is None and latest and latest.get("seconds_per_batch"):
        pace = latest["seconds_per_batch"] * latest["batches"]
    return pace


def remaining(entry: Entry) -> float | None:
    """A running model's seconds left: the rest of this epoch, then every epoch up to its
    planned last; None until it has a pace."""
    latest, pace = entry.latest, entry_pace(entry)
    if latest is None or pace is None:
        return None
    per_batch = latest.get("seconds_per_batch") or pace / latest["batches"]
    return ((latest["batches"] - latest["batch"]) * per_batch
            + (latest["epochs"] - latest["epoch"]) * pace)


def finish_time(running: list[float], queued: list[float], slots: int) -> float:
    """When the last model ends, if each slot, once free, takes the next queued model in
    order (running models hold a slot each until their time is up)."""
    free = sorted(running) + [0.0] * max(0, slots - len(running))
    heapq.heapify(free)
    for seconds in queued:
        heapq.heappush(free, heapq.heappop(free) + seconds)
    return max(free, default=0.0)


class Board:
    """The models of the current round of workers and what they last reported; fed by
    job.workers.parent.Workers from its threads, read by the display's."""

    def __init__(self, epochs: int, may_stop_early: bool):
        self.epochs, self.may_stop_early = epochs, may_stop_early
        self.entries: dict[str, Entry] = {}
        self.slots = 1
        self.lock = threading.Lock()

    def queue(self, models: list[str], slots: int) -> None:
        """A new round: these models, `slots` at a time."""
        with self.lock:
            self.slots = slots
            self.entries = {name: Entry(ModelId.parse(name), self.epochs,
                                        self.may_stop_early and not ModelId.parse(name).refit)
                            for name in models}

    def progress(self, model: str, record: dict) -> None:
        with self.lock:
            entry = self.entries.get(model)
            if entry is not None:
                entry.state, entry.latest = "running", record
                entry.epochs, entry.may_stop_early = record["epochs"], record["may_stop_early"]

    def epoch(self, model: str, record: dict) -> None:
        with self.lock:
            if model in self.entries:
                self.entries[model].epoch_seconds.append(float(record["seconds"]))

    def end(self, models: tuple[str, ...]) -> None:
        with self.lock:
            for name in models:
                if name in self.entries:
                    self.entries[name].state = "ended"

    def running(self) -> list[tuple[str, dict, float | None, bool]]:
        """Each running model: its name, last progress record, seconds left, bounded."""
        with self.lock:
            return [(name, dict(e.latest), remaining(e), e.may_stop_early)
                    for name, e in self.entries.items() if e.state == "running"]

    def queued(self) -> list[str]:
        with self.lock:
            return [name for name, e in self.entries.items() if e.state == "queued"]

    def estimate(self) -> Estimate:
        """The round's remaining time, its queued models estimated from their family's
        measured epoch pace in this run."""
        with self.lock:
            entries = list(self.entries.values())
            paces: dict[tuple[str, str], list[float]] = {}
            for e in entries:
                pace = entry_pace(e)
                if e.state != "queued" and pace is not None:
                    paces.setdefault((e.model.arch, e.model.style), []).append(pace)
            running, queued, unmeasured = [], [], 0
            for e in entries:
                if e.state == "running":
                    left = remaining(e)
                    unmeasured += left is None
                    running.append(left or 0.0)
                elif e.state == "queued":
                    known = paces.get((e.model.arch, e.model.style))
                    unmeasured += not known
                    queued.append(statistics.mean(known) * e.epochs if known else 0.0)
            bounded = any(e.may_stop_early for e in entries if e.state != "ended")
        return Estimate(finish_time(running, queued, self.slots), unmeasured, bounded)
