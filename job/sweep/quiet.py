"""Optuna's own chatter, turned down: the worker says what matters in the job's lines."""

from __future__ import annotations

import contextlib
import warnings
from typing import Iterator


@contextlib.contextmanager
def experimental() -> Iterator[None]:
    """Heartbeats, the retry callback and the matplotlib pictures are "experimental" in
    Optuna 5 and warn on every use; the job pins Optuna, so the warning tells it nothing."""
    import optuna
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO and each failure with a traceback at WARNING; the
    worker logs one line per trial itself."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.ERROR)
