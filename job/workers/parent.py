"""The parent's side: start a worker per model task and follow it until it ends.

Workers run one at a time, or side by side where the run has the devices for it: one
per GPU (each sees only its own through CUDA_VISIBLE_DEVICES), or `runtime.parallel`
at once on a CPU with the cores split between them. Each worker is its own process
session, so a terminal's Ctrl-C reaches the parent alone, which passes one stop signal
on to every worker; each checkpoints and ends, and the run can be resumed. A worker that
dies is named with its log file; the models that finished stay finished.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from job import errors
from job.errors import Pruned, RunError
from job.system import interrupt
from job.system.devices import share_of
from job.workers.protocol import (DONE, ERROR, EVENTS_FD_ENV, INTERRUPTED, PRUNED, Event,
                                  Request, send)

Log = Callable[[str], None]
OnEpoch = Callable[[str, dict], None]


class Board(Protocol):
    """What follows the workers for a live display (job.outputs.board.Board)."""

    def queue(self, models: list[str], slots: int) -> None: ...
    def progress(self, model: str, record: dict) -> None: ...
    def epoch(self, model: str, record: dict) -> None: ...
    def end(self, models: tuple[str, ...]) -> None: ...


class WorkerDied(RunError):
    """A worker ended without saying how: killed, crashed, out of memory."""


@dataclass(frozen=True)
class Slot:
    """Where one worker runs: the environment that gives it its GPU or its CPU cores."""

    env: dict[str, str]
    label: str        # for the log: "GPU 1", "CPU"


class Workers:
    """Runs worker processes in a fixed set of slots and follows them to their end."""

    def __init__(self, slots: list[Slot], log: Log, logs_dir: Path,
                 on_epoch: OnEpoch | None = None, board: Board | None = None):
        self.slots, self.log, self.logs_dir, self.on_epoch = slots, log, logs_dir, on_epoch
        self.board = board
        self.free: queue.Queue[Slot] = queue.Queue()
        for slot in slots:
            self.free.put(slot)
        self.running: dict[int, subprocess.Popen] = {}
        self.lock = threading.Lock()
        self.stopping = False

    def run_all(self, requests: list[Request], describe: Callable[[Request], str]) -> None:
        """Every request to its end. The first failure stops the others (each checkpoints)
        and is raised once all have ended; a stop signal likewise, as Interrupted."""
        if not requests:
            return
        if self.board is not None:
            self.board.queue([m for r in requests for m in r.models], len(self.slots))
        with ThreadPoolExecutor(max_workers=len(self.slots)) as pool:
            futures = [pool.submit(self.run_one, r, describe(r)) for r in requests]
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
                if interrupt.requested() or any(f.exception() for f in done):
                    self.stop_all()
            failures = [f.exception() for f in futures if f.exception() is not None]
        if failures:
            raise first_cause(failures)

    def stop_all(self) -> None:
        """No new workers; one SIGTERM to each running one (a second would kill it)."""
        with self.lock:
            if self.stopping:
                return
            self.stopping = True
            for process in self.running.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)

    def run_one(self, request: Request, describe: str) -> None:
        """One worker in the next free slot, from its start to its last event."""
        slot = self.free.get()
        try:
            if self.stopping:
                raise interrupt.Interrupted("stopped before it started")
            self.log(f"{request.name:<10} training ({describe}; {slot.label})")
            follow(self.start(request, slot), request, self)
        finally:
            self.free.put(slot)

    def start(self, request: Request, slot: Slot) -> tuple[subprocess.Popen, int, Path]:
        read_end, write_end = os.pipe()
        log_path = self.logs_dir / f"{request.name}.log"
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log_file:
            env = {**os.environ, **slot.env, EVENTS_FD_ENV: str(write_end),
                   "PYTHONUNBUFFERED": "1"}
            process = subprocess.Popen(
                [sys.executable, "-m", "job.workers.child"], stdin=subprocess.PIPE,
                stdout=log_file, stderr=subprocess.STDOUT, pass_fds=(write_end,), env=env,
                text=True, start_new_session=True)
        os.close(write_end)
        with self.lock:
            self.running[process.pid] = process
            if self.stopping:
                process.send_signal(signal.SIGTERM)
        return process, read_end, log_path


def follow(started: tuple[subprocess.Popen, int, Path], request: Request,
           workers: Workers) -> None:
    """Send the request, pass log lines and epochs on, and turn the ending into nothing
    (done) or the exception that says what happened."""
    process, read_end, log_path = started
    ending, pruned = None, None
    try:
        send(process.stdin, request.line())
        with os.fdopen(read_end, "r") as events:
            for line in events:
                event = Event.read(line)
                if event.kind == "log":
                    workers.log(event.text)
                elif event.kind == "progress":
                    if workers.board is not None:
                        workers.board.progress(event.model, event.record)
                elif event.kind == "epoch":
                    if workers.board is not None:
                        workers.board.epoch(event.model, event.record)
                    pruned = judge(workers.on_epoch, event.model, event.record, pruned)
                    if request.reports:
                        send(process.stdin, f'{{"prune": {json_text(pruned)}}}\n')
                else:
                    ending = event
    except BrokenPipeError:   # it died; its exit status says how
        pass
    finally:
        # Closed first: a worker still waiting for a reply (the pruner raised) reads the
        # end of its input and stops; then its exit status is known.
        try:
            process.stdin.close()
        except BrokenPipeError:
            pass
        code = process.wait()
        with workers.lock:
            workers.running.pop(process.pid, None)
        if workers.board is not None:
            workers.board.end(request.models)
    raise_ending(request, ending, code, log_path, pruned)


def judge(on_epoch: OnEpoch | None, model: str, record: dict,
          pruned: str | None) -> str | None:
    """The pruner's verdict on an epoch: None to go on, else why it prunes."""
    if on_epoch is None or pruned:
        return pruned
    try:
        on_epoch(model, record)
    except Pruned as e:
        return str(e)
    return None


def json_text(pruned: str | None) -> str:
    return json.dumps(pruned or False)


def raise_ending(request: Request, ending: Event | None, code: int, log_path: Path,
                 pruned: str | None) -> None:
    """Nothing when the worker finished; else the exception that its ending means."""
    if ending is not None and ending.kind == DONE and code == 0:
        return
    if ending is not None and ending.kind == PRUNED:
        raise Pruned(ending.text or pruned)
    if ending is not None and ending.kind == INTERRUPTED:
        raise interrupt.Interrupted(ending.text)
    if ending is not None and ending.kind == ERROR:
        kind = getattr(errors, ending.error, None)
        kind = kind if isinstance(kind, type) and issubclass(kind, errors.JobError) else RunError
        raise kind(ending.text)
    how = (f"killed by {signal.Signals(-code).name}" if code < 0
           else f"exit status {code}")
    raise WorkerDied(f"{request.name}: its worker process died ({how}); its output is in "
                     f"{log_path}. The models that finished are kept: resume with `python -m "
                     f"job train --resume {Path(request.folder)}` to train only the others")


def first_cause(failures: list[BaseException]) -> BaseException:
    """What a run that failed reports: a real failure before the stops it caused."""
    for kinds in ((WorkerDied, errors.JobError), (Pruned,), (interrupt.Interrupted,)):
        for failure in failures:
            if isinstance(failure, kinds):
                return failure
    return failures[0]


def slots_for(gpus: list[str], parallel: int, whole_machine: bool) -> list[Slot]:
    """One slot per GPU, all GPUs in one slot for a strategy that spans them, or
    `parallel` CPU slots sharing the cores."""
    if whole_machine:
        return [Slot({}, f"GPUs {','.join(gpus)}" if gpus else "CPU")]
    if gpus:
        count = min(parallel, len(gpus)) if parallel else len(gpus)
        return [Slot(share_of(i, count, gpus), f"GPU {gpus[i]}") for i in range(count)]
    count = max(1, parallel)
    return [Slot({"CUDA_VISIBLE_DEVICES": "", **share_of(i, count, [])},
                 "CPU" if count == 1 else f"CPU share {i + 1}/{count}") for i in range(count)]

