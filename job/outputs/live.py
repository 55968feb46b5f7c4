"""What a terminal shows while work goes on, drawn with rich on a console the command line
passes in: a table of the running models under the log lines while a run trains, and
kaggle-run's one status line. Anywhere but a terminal the command line prints plain lines
instead and none of this is used.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Callable

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from job.outputs.board import Board, Estimate

Log = Callable[[str], None]
BOUND_NOTE = "≤: early stopping may end it sooner"


def duration(seconds: float | None) -> str:
    """`42s`, `3m05s`, `1h02m`; `?` when not known."""
    if seconds is None:
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def eta(seconds: float | None, bounded: bool) -> str:
    return ("≤ " if bounded and seconds is not None else "") + duration(seconds)


def run_line(estimate: Estimate, queued: list[str]) -> str:
    """The footer: what is queued and when the round should end."""
    parts = [f"queued: {' '.join(queued)}"] if queued else []
    left = eta(estimate.seconds, estimate.bounded)
    if estimate.unmeasured:
        count = estimate.unmeasured
        left += f" + {count} model{'s' if count > 1 else ''} not measured yet"
    parts.append(f"run ETA {left}")
    if estimate.bounded:
        parts.append(BOUND_NOTE)
    return "  ·  ".join(parts)


def render(board: Board) -> Group | Text:
    """The live area: a row per running model, then the run's line; nothing before any
    model has reported."""
    running = board.running()
    if not running:
        return Text("")
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("model", "epoch", "batch", "images/s", "loss", "ETA"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, latest, left, bounded in running:
        rate = latest.get("images_per_second")
        table.add_row(name, f"{latest['epoch']}/{latest['epochs']}",
                      f"{latest['batch']}/{latest['batches']}",
                      f"{rate:,.0f}" if rate else "-", f"{latest['loss']:.4f}",
                      eta(left, bounded))
    return Group(table, Text(run_line(board.estimate(), board.queued()), style="dim"))


def training_view(console: Console | None, epochs: int,
                  may_stop_early: bool) -> contextlib.AbstractContextManager:
    """A run's live display on `console` (None: the plain lines alone, and no view)."""
    if console is None:
        return contextlib.nullcontext(None)
    return TrainingView(console, Board(epochs, may_stop_early))


class TrainingView:
    """A run's live display on a terminal: log lines print above it, warnings too when
    stderr is the same terminal; the area goes once the run ends (the run path follows)."""

    def __init__(self, console: Console, board: Board):
        self.console, self.board = console, board
        self.live = Live(console=console, get_renderable=lambda: render(board),
                         refresh_per_second=4, transient=True, redirect_stderr=False)

    def __enter__(self) -> "TrainingView":
        self.live.start()
        return self

    def __exit__(self, *exc) -> None:
        self.live.stop()

    def log(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def warn(self, line: str) -> None:
        if sys.stderr.isatty():
            self.log(line)
        else:
            print(line, file=sys.stderr, flush=True)


class StatusLine:
    """One status line (kaggle-run's): redrawn in place on a terminal, a plain line per
    change elsewhere (a log or a pipe keeps each said once)."""

    def __init__(self, console: Console | None, log: Log):
        self.console, self.plain, self.live = console, log, None   # no console: plain lines

    def show(self, text: str, changed: bool) -> None:
        if self.console is None:
            if changed:
                self.plain(text)
            return
        if self.live is None:
            self.live = Live(console=self.console, auto_refresh=False, redirect_stderr=False)
            self.live.start()
        self.live.update(Text(text), refresh=True)

    def done(self) -> None:
        if self.live is not None:
            self.live.stop()   # the last status stays, on its own line
            self.live = None
