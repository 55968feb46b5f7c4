"""One sweep worker: takes the study's trials until its budget is spent.

Each trial trains a normal run folder, `<sweep>/trials/<n>`, through the pipeline, so it
has everything a single run has. The budget counts points: a trial handed back on SIGTERM
or retried after its worker went silent keeps its point (and its run folder, resumed
from the last epoch-end checkpoint where it is reachable), so nothing is done twice and
nothing is lost. Trials run inside `study.optimize`, where Optuna's heartbeat runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from job import pipeline
from job.config.sweep import Sweep
from job.errors import Pruned, RunError, TrainingError
from job.outputs.folder import TRIALS, RunRecord, read_run
from job.sweep import quiet, space, storage, summary
from job.system import interrupt

Log = Callable[[str], None]
SWEEPS_DIR = "sweeps"


class Surplus(Exception):
    """Asked for a trial when the budget was already taken by trials asked at the same time."""


@dataclass
class Worker:
    sweep: Sweep
    study: Any            # optuna.Study
    folder: Path          # <runs_dir>/sweeps/<study>
    log: Log
    warn: Log
    index: int = 0        # this machine's worker number, for the sampler's seed

    @property
    def budget(self) -> int:
        return self.sweep.settings.trials


def sweep_folder(sweep: Sweep) -> Path:
    return Path(sweep.base.output.runs_dir) / SWEEPS_DIR / sweep.settings.study


def connect(sweep: Sweep, url: str, warn: Log):
    """The study in its storage: checked, opened, created if new."""
    quiet.quiet_optuna()
    storage.check_url(url, warn)
    settings = sweep.settings
    opened = storage.open_storage(url, settings.heartbeat_seconds, settings.grace_seconds,
                                  settings.max_retries)
    return storage.open_study(opened, settings.study, settings.direction,
                              space.make_sampler(sweep, settings.seed), space.make_pruner(sweep),
                              {"objective": settings.objective,
                               "model": None if settings.model == "best" else settings.model,
                               "space": space.space_record(sweep.space)})


def work(worker: Worker) -> None:
    """Take trials until every point of the budget has ended; SIGTERM between trials ends
    the worker at once, inside one hands the trial back (see run_trial)."""
    with interrupt.catching():
        while not interrupt.requested():
            action = next_action(worker.study, worker.budget)
            if action == "done":
                break
            if action == "wait":   # others' trials may still be handed back or go stale
                wait_for_others(worker)
                continue
            worker.study.sampler = space.make_sampler(worker.sweep, space.trial_seed(
                worker.sweep, len(worker.study.get_trials(deepcopy=False)), worker.index))
            with quiet.experimental():   # a Surplus trial did nothing: the loop then waits
                worker.study.optimize(lambda trial: run_trial(worker, trial),
                                      n_trials=1, catch=(TrainingError, Surplus),
                                      callbacks=[lambda study, _: write_summary(worker)])
            free_memory()
        interrupt.check("the sweep, between trials")
    worker.log(f"sweep {worker.sweep.settings.study}: nothing left for this worker")


def next_action(study, budget: int) -> str:
    """take | wait | done. A waiting trial (handed back, retried) is always taken; new
    points until the budget; then wait while others' trials run, as they may come back."""
    from optuna.trial import TrialState
    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")]
    if any(t.state == TrialState.WAITING for t in trials):
        return "take"
    if len({point_of(t) for t in trials}) < budget:
        return "take"
    return "wait" if any(t.state == TrialState.RUNNING for t in trials) else "done"


def point_of(trial) -> int:
    """The budget place a trial fills: its own number, or the one it retries."""
    return trial.user_attrs.get("point", trial.system_attrs.get("failed_trial", trial.number))


def wait_for_others(worker: Worker) -> None:
    """A stale trial becomes a waiting copy here too, not only when someone asks."""
    import optuna
    time.sleep(min(10, worker.sweep.settings.heartbeat_seconds))
    with quiet.experimental():
        optuna.storages.fail_stale_trials(worker.study)


def claim(worker: Worker, trial) -> None:
    """A new trial takes the next point, unless trials asked at the same moment by other
    workers already took the budget (it then does nothing: Surplus)."""
    frozen = frozen_of(worker.study, trial)
    if "point" in frozen.user_attrs or "failed_trial" in frozen.system_attrs:
        return   # a retry or a hand-back: it keeps the point it had
    trial.set_user_attr("point", trial.number)
    others = [t for t in worker.study.get_trials(deepcopy=False)
              if t.number != trial.number and not t.user_attrs.get("surplus")]
    if len({point_of(t) for t in others if point_of(t) < trial.number}) >= worker.budget:
        trial.set_user_attr("surplus", True)
        raise Surplus(f"trial {trial.number}: the budget of {worker.budget} is taken")


def frozen_of(study, trial):
    """A running trial as the storage has it (system attributes included: Optuna 5's Trial
    no longer shows them)."""
    from optuna.trial import TrialState
    return next(t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                if t.number == trial.number)


def run_trial(worker: Worker, trial) -> float:
    """Optuna's objective: one trial's run, trained or resumed, and its objective value."""
    import optuna
    claim(worker, trial)
    values = space.suggest(trial, worker.sweep)
    shown = ", ".join(f"{k}={v}" for k, v in space.hparams(values).items())
    try:
        run = train_trial(worker, trial, values, shown)
    except Pruned as e:
        worker.log(f"trial {trial.number}: {e}")
        trial.set_user_attr("pruned", str(e))
        raise optuna.TrialPruned(str(e)) from None
    except TrainingError as e:
        worker.log(f"trial {trial.number} failed: {e}")
        trial.set_user_attr("error", str(e).splitlines()[0])
        raise
    except BaseException as e:
        # Not this point's fault (a signal, the data, the disk, a bug): hand it back.
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        hand_back(worker, trial, reason)
        raise
    value = objective_of(read_run(run.path, scores=()), worker.sweep.settings)
    worker.log(f"trial {trial.number} ({shown}): {worker.sweep.settings.objective} "
               f"{value:.4f}; run {run.path}")
    return value


def train_trial(worker: Worker, trial, values: dict, shown: str):
    """Resume the run this trial continues, or train a new one in its own folder."""
    folder, record = place(worker, trial)
    trial.set_user_attr("run", str(folder.relative_to(worker.folder)))
    if record is not None and record.status == "complete":
        worker.log(f"trial {trial.number}: its run {folder} completed before; reusing it")
        return record.run
    within = pipeline.Within(folder, {"trial": trial.number, **space.hparams(values)},
                             reporter(worker, trial))
    if record is not None:
        worker.log(f"trial {trial.number} ({shown}): resuming {folder}")
        config, record = pipeline.read_resumable(folder)
        return pipeline.resume(config, record, worker.log, worker.warn, within)
    worker.log(f"trial {trial.number} ({shown}): training into {folder}")
    config = worker.sweep.trial_config(values, worker.sweep.base.name)
    return pipeline.train(config, worker.log, worker.warn, within)


def place(worker: Worker, trial) -> tuple[Path, RunRecord | None]:
    """The folder a trial runs in: the run it continues, if readable here (or absent here:
    it ran on another machine, and starts over under the same name); else its own."""
    named = trial.user_attrs.get("run")
    if named:
        path = worker.folder / named
        if not path.exists():
            return path, None
        try:
            return path, read_run(path, scores=())
        except RunError as e:
            worker.warn(f"WARNING: trial {trial.number}: cannot resume {path} ({e}); "
                        "starting over in a folder of its own")
    path = worker.folder / TRIALS / str(trial.number)
    suffix = 1
    while path.exists():   # a folder left by an older study of this name: never overwrite
        suffix += 1
        path = worker.folder / TRIALS / f"{trial.number}-{suffix}"
    return path, None


def reporter(worker: Worker, trial) -> Callable[[str, dict], None] | None:
    """Each epoch's objective to the pruner (one model's epochs: the config check saw to it)."""
    settings = worker.sweep.settings
    if settings.pruner == "none":
        return None

    def on_epoch(model: str, record: dict) -> None:
        if settings.model not in ("best", model) or settings.objective not in record:
            return
        trial.report(record[settings.objective], step=record["epoch"])
        if trial.should_prune():
            raise Pruned(f"pruned after {model} epoch {record['epoch']}: "
                         f"{settings.objective} {record[settings.objective]:.4f} trails the "
                         "other trials at that epoch")
    return on_epoch


def objective_of(record: RunRecord, settings) -> float:
    """The objective from the run's metrics.json: the named model's row, or the best's."""
    metrics = record.finished()
    name = metrics["best"] if settings.model == "best" else settings.model
    row = next((m for m in metrics["models"] if m.get("name") == name), None)
    if row is None or not isinstance(row.get(settings.objective), (int, float)):
        raise RunError(f"{record.run.path / 'metrics.json'}: no {settings.objective} for {name}")
    return float(row[settings.objective])


def hand_back(worker: Worker, trial, reason: str) -> None:
    """Queue the same point again, with the same parameters, folder and grid place, for the
    next worker (this one, rerun, or any other); this trial then ends as FAIL. Unlike a
    heartbeat retry it does not use up one of max_retries: a preemption is not the point's
    fault."""
    import optuna
    from optuna.trial import TrialState
    frozen = frozen_of(worker.study, trial)
    attrs = {**frozen.user_attrs, "point": point_of(frozen)}
    worker.study.add_trial(optuna.trial.create_trial(
        state=TrialState.WAITING, params=frozen.params, distributions=frozen.distributions,
        user_attrs={k: v for k, v in attrs.items() if k not in ("error", "handed_back")},
        system_attrs=frozen.system_attrs))
    trial.set_user_attr("handed_back", f"{reason}; queued again to resume {attrs.get('run')}")
    worker.log(f"trial {trial.number}: {reason}; handed back: the next worker resumes "
               f"{attrs.get('run')}")


def write_summary(worker: Worker) -> None:
    """summary.json / summary.md / best, rewritten whenever a trial ends."""
    try:
        summary.write_summary(worker.study, worker.folder)
    except OSError as e:   # the next trial's end writes it again
        worker.warn(f"WARNING: could not write the sweep summary ({e})")


def free_memory() -> None:
    """Trials run one after another in one process: hand back what the last one freed
    (its models trained in worker processes, which gave their memory back as they ended)."""
    from job.system.runtime import return_freed_memory
    return_freed_memory()


def describe(sweep: Sweep, url: str) -> dict[str, Any]:
    """What the sweep folder records about the sweep; the storage with its password masked."""
    import dataclasses
    return {"sweep_file": str(sweep.path), "settings": dataclasses.asdict(sweep.settings),
            "space": space.space_record(sweep.space), "storage": storage.shown(url)}

