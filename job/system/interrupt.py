"""SIGTERM and SIGINT (a preemption, Ctrl-C) become a clean, resumable stop.

The first signal only sets a flag; the training loops check it after every step,
abandon the epoch in progress and raise `Interrupted`, so the last epoch-end
checkpoint stays the state to resume from. A second signal stops at once.
"""

from __future__ import annotations

import contextlib
import signal
from typing import Iterator


# EX_TEMPFAIL: "try again later" — what a scheduler should read from a preempted run.
EXIT_CODE = 75
_requested: list[int] = []
_active: list[bool] = []


class Interrupted(Exception):
    """Training stopped on a signal; the run folder holds a checkpoint to resume from."""


@contextlib.contextmanager
def catching() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into a stop request while training; restore afterwards.
    Inside another `catching` (a sweep worker around its trials' runs) it changes nothing:
    a signal that came between two runs must still stop the next one."""
    if _active:
        yield
        return
    _active.append(True)
    _requested.clear()
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        _active.clear()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _on_signal(signum: int, frame) -> None:
    _requested.append(signum)
    # A second signal gets the default behaviour: stop now.
    signal.signal(signum, signal.SIG_DFL if signum == signal.SIGTERM else signal.default_int_handler)


def request(signum: int = signal.SIGTERM) -> None:
    """Ask for a stop as a signal would (a worker whose parent went away)."""
    _requested.append(signum)


def requested() -> bool:
    """True once a stop signal has arrived."""
    return bool(_requested)


def check(where: str) -> None:
    """Raise Interrupted if a stop was requested."""
    if _requested:
        name = signal.Signals(_requested[0]).name
        raise Interrupted(f"{name} received during {where}")
