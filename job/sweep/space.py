"""The sweep's space in Optuna's terms: samplers, pruners and each trial's values.

Optuna stores a categorical choice only as a scalar, so list choices ([32, 64]) travel
as their YAML text and are turned back into the exact value listed in the sweep file.
"""

from __future__ import annotations

import hashlib
from typing import Any

from job.config.sweep import Dimension, Sweep, encode


def suggest(trial, sweep: Sweep) -> dict[str, Any]:
    """The trial's config values, one per swept key (a retried trial gets its own again)."""
    grid = sweep.settings.sampler == "grid"
    values = {}
    for dim in sweep.space:
        if grid or dim.choices is not None:
            options = dim.grid_values() if grid else dim.choices
            picked = trial.suggest_categorical(dim.key, [encode(v) for v in options])
            values[dim.key] = decode(options, picked)
        elif dim.is_int:
            values[dim.key] = trial.suggest_int(dim.key, dim.low, dim.high,
                                                step=dim.step or 1, log=dim.log)
        else:
            values[dim.key] = trial.suggest_float(dim.key, dim.low, dim.high,
                                                  step=dim.step, log=dim.log)
    return values


def decode(options: tuple, picked: Any) -> Any:
    """The listed value whose stored form Optuna returned (by repr: True is not 1)."""
    return next(v for v in options if repr(encode(v)) == repr(picked))


def hparams(values: dict[str, Any]) -> dict[str, Any]:
    """The swept keys as TensorBoard HParams columns (scalars; lists as text)."""
    return {key: encode(value) for key, value in values.items()}


def grid_space(sweep: Sweep) -> dict[str, list]:
    return {dim.key: [encode(v) for v in dim.grid_values()] for dim in sweep.space}


def space_record(space: tuple[Dimension, ...]) -> dict[str, Any]:
    """The space as JSON, stored with the study so a worker of another sweep is refused."""
    record = {}
    for dim in space:
        record[dim.key] = ({"choices": [encode(v) for v in dim.choices]} if dim.choices is not None
                           else {"low": dim.low, "high": dim.high, "log": dim.log,
                                 "step": dim.step})
    return record


def trial_seed(sweep: Sweep, trials_so_far: int, worker: int) -> int:
    """The sampler's seed for the next trial. A grid's is sweep.seed itself: GridSampler
    shuffles the grid with it, and a grid place must mean the same point on every worker.
    Random and TPE workers starting from one seed would propose the same points in the same
    order; mixing in the study's progress and the worker's index keeps them apart, and a
    one-worker sweep repeats exactly."""
    seed = sweep.settings.seed
    if sweep.settings.sampler == "grid":
        return seed
    digest = hashlib.sha256(f"{seed}/{trials_so_far}/{worker}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def make_sampler(sweep: Sweep, seed: int):
    import optuna
    kind = sweep.settings.sampler
    if kind == "grid":
        return optuna.samplers.GridSampler(grid_space(sweep), seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # Few trials per sweep here: the default 10 random start-up trials would be most of them.
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(
        2, sweep.settings.trials // 3)))


def make_pruner(sweep: Sweep):
    """none | median | hyperband, stepping in epochs."""
    import optuna
    kind = sweep.settings.pruner
    if kind == "median":
        # Compare from the 2nd epoch (steps are 1-based epochs; steps below n_warmup_steps
        # are not judged), once 3 trials have finished: epoch 1 is mostly noise.
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1,
                                              max_resource=sweep.base.train.epochs)
    return optuna.pruners.NopPruner()
