"""Training: Task + Split → Trained, in any style of job.styles, sharing all but the loop.

`fit` and `load_predictor` are the one place that picks a style's loop module. The
module is imported when a model trains, so TensorFlow loads only then, and knows no
run folder and no Kaggle: it takes arrays and folders and returns a Trained.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from job.styles import STYLES
from job.train.task import Predictor, Split, Task, Trained


def loop_of(style: str):
    """The loop module registered for `style` (fit, load_predictor)."""
    return importlib.import_module(STYLES[style].loop)


def fit(task: Task, split: Split, log: Callable[[str], None], runtime=None) -> Trained:
    """Train `task` in its style on `split`, from its last checkpoint if it has one."""
    return loop_of(task.style).fit(task, split, log, runtime)


def load_predictor(folder: Path, task: Task) -> Predictor:
    """The predictor of a model that `Trained.save` wrote into `folder`."""
    return loop_of(task.style).load_predictor(folder, task)
