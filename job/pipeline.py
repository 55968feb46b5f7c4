"""The training job end to end: data → both styles of each net → best → submission.

Kaggle, the file system and the clock are reached from here; the stages it calls
take arrays and return arrays and numbers.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import yaml

from job import config as config_mod
from job import (data, ensemble, interrupt, manifest, preflight, report, runtime, sources,
                 submission)
from job.config import Config
from job.errors import RunError
from job.files import write_atomic
from job.run import Run, create_run, mark_latest, utc_now
from job.selection import select_best
from job.train import common
from job.train.common import Split, Task, Trained

Log = Callable[[str], None]


@dataclass(frozen=True)
class Prepared:
    """Validated data, ready before a run folder exists (bad input writes nothing)."""

    source: sources.Source
    dir: Path
    arrays: data.Arrays
    split: Split


def train(config: Config, log: Log, warn: Log) -> Run | None:
    """Set up the devices, load the data, then create a run folder, train into it and
    mark it latest. A non-chief worker returns None: the chief writes the outputs."""
    rt = runtime.setup(config.runtime)
    runtime.check_models(rt, config.models)
    if rt.is_chief:   # before the data: a run that cannot be saved must not start
        preflight.check_runs_dir(Path(config.output.runs_dir))
    prepared = prepare_data(config, log, warn)
    if not rt.is_chief:
        train_as_worker(config, prepared, rt, log)
        return None
    run = create_run(Path(config.output.runs_dir), config.name)
    run.write_text("config.yaml", yaml.safe_dump(config_mod.to_dict(config), sort_keys=False))
    record = manifest.start(config)
    record["data"] = manifest.describe_data(prepared)
    record["runtime"] = rt.describe()
    run.write_json("manifest.json", record)
    return complete(config, prepared, run, record, log, rt)


def resume(run_dir: Path, log: Log, warn: Log) -> Run:
    """Continue an interrupted run in its own folder: finished models are kept, the
    interrupted one continues from its last epoch-end checkpoint."""
    run = Run(Path(run_dir))
    if not (run.path / "manifest.json").is_file():
        raise RunError(f"{run.path}: not a run folder; name one under runs/")
    record = run.read_json("manifest.json")
    if record.get("status") == "complete":
        raise RunError(f"{run.path}: run is complete; there is nothing to resume")
    config = config_mod.replace_name(config_mod.load_config(run.path / "config.yaml"),
                                     record["config"])
    rt = runtime.setup(config.runtime)
    runtime.check_models(rt, config.models)
    preflight.check_runs_dir(run.path)
    prepared = prepare_data(config, log, warn)
    if prepared.arrays.hashes != record["data"]["sha256"]:
        raise RunError(f"{run.path}: the data changed since this run started (the CSVs' "
                       "sha256 differ); restore that data or start a new run")
    log(f"resuming {run.id} ({record.get('error', record.get('status'))})")
    record.setdefault("resumed", []).append(utc_now().isoformat(timespec="seconds"))
    record.update(status="running", finished=None)
    record.pop("error", None)
    run.write_json("manifest.json", record)
    return complete(config, prepared, run, record, log, rt)


def complete(config: Config, prepared: Prepared, run: Run, record: dict, log: Log,
             rt: runtime.Runtime) -> Run:
    """Train into `run` and stamp its manifest with how that ended."""
    try:
        with interrupt.catching():
            train_and_evaluate(config, prepared, run, record, log, rt)
    except BaseException as e:
        stopped = isinstance(e, (interrupt.Interrupted, KeyboardInterrupt))
        manifest.finish(record, "interrupted" if stopped else "failed",
                        error=str(e).splitlines()[0] if str(e) else type(e).__name__)
        run.write_json("manifest.json", record)
        if stopped:
            raise interrupt.Interrupted(
                f"{e or 'stopped'}; the run keeps its last epoch-end checkpoint: resume with "
                f"`python -m job train --resume {run.path}`") from None
        raise
    manifest.finish(record, "complete")
    run.write_json("manifest.json", record)
    mark_latest(run)
    return run


def train_as_worker(config: Config, prepared: Prepared, rt: runtime.Runtime, log: Log) -> None:
    """Every worker must run the same collective steps, saving included; a non-chief
    does so into a scratch folder that it deletes, as tf.distribute recommends."""
    with tempfile.TemporaryDirectory(prefix="job-worker-") as scratch:
        train_and_evaluate(config, prepared, Run(Path(scratch)), {}, log, rt)
    log("worker done; the chief wrote the run's outputs")


def prepare_data(config: Config, log: Log, warn: Log) -> Prepared:
    """Choose the source, make its CSVs exist, parse (or reload) and split them."""
    source = sources.choose_source(config)
    if source.kind == "sample":
        warn(f"WARNING: training on the embedded SAMPLE ({source.reason}), not the "
             f"competition data: its submission is not for Kaggle; see README 'Kaggle setup'")
    else:
        log(f"data: {source.kind} from {source.dir} ({source.reason})")
    data_dir = sources.prepare(source, config, log, warn)
    arrays = data.load_arrays(data_dir)
    split = Split(*data.split_validation(arrays.train_images, arrays.train_labels,
                                         config.data.val_fraction, config.data.seed))
    return Prepared(source, data_dir, arrays, split)


def train_and_evaluate(config: Config, prepared: Prepared, run: Run, record: dict,
                       log: Log, rt: runtime.Runtime | None = None) -> dict:
    """Train every configured model, pick the best, write every output."""
    (run.path / "models").mkdir(exist_ok=True)
    predictors, models = {}, []
    for task in make_tasks(config, run):
        predictors[task.name], row = reuse_finished(task, run, log) or train_one(
            task, prepared.split, run, log, rt)
        models.append(row)
    add_ensembles(config, prepared.split, run, log, rt, predictors, models)
    score_held_out(prepared, predictors, models, log)
    save_validation_predictions(run, prepared.split, predictors)
    best = select_best(models)
    log(f"best: {best['name']} (val accuracy {best['val_accuracy']:.4f})")
    labels = predictors[best["name"]](prepared.arrays.test_images).argmax(axis=1)
    submission.write_submission(run.path / "submission.csv", labels,
                                prepared.dir / "sample_submission.csv")
    metrics = {"best": best["name"], "models": models}
    run.write_json("metrics.json", metrics)
    shutil.rmtree(run.path / "checkpoints", ignore_errors=True)   # every model is saved
    report.write_report(run, record, metrics)
    return metrics


def add_ensembles(config: Config, split: Split, run: Run, log: Log, rt, predictors: dict,
                  models: list[dict]) -> None:
    """Train the bag's copies (each on its own split of the training rows), then add the
    averaged candidates, scored on the outer validation split."""
    settings = config.ensemble
    groups = {}
    if settings.members:
        groups["ensemble"] = list(settings.members)
    if settings.bag_copies:
        [base] = [t for t in make_tasks(replace(config, models=(settings.bag_model,)), run)]
        for i, task in enumerate(ensemble.bag_tasks(base, settings.bag_copies), start=1):
            own = ensemble.bag_split(split, i, settings.bag_holdout, config.data.seed)
            predictors[task.name], row = reuse_finished(task, run, log) or train_one(
                task, own, run, log, rt, judge=split)
            models.append({**row, "role": f"member of bag-{settings.bag_model}"})
        groups[f"bag-{settings.bag_model}"] = [t.name for t in
                                               ensemble.bag_tasks(base, settings.bag_copies)]
    rows = {m["name"]: m for m in models}
    for name, members in groups.items():
        predictors[name] = ensemble.averaging([predictors[m] for m in members])
        scores = common.score(predictors[name](split.val_x), split.val_y)
        models.append(ensemble.ensemble_row(name, [rows[m] for m in members], scores))
        log(f"{name:<10} averages {', '.join(members)}: val accuracy "
            f"{scores['val_accuracy']:.4f}")


def score_held_out(prepared: Prepared, predictors: dict, models: list[dict], log: Log) -> None:
    """The embedded sample keeps its test labels (test_labels.csv): score every model on
    those unseen rows too. Competition data has none, and gets no such column."""
    path = prepared.dir / "test_labels.csv"
    if not path.is_file():
        return
    labels = data.read_test_labels(path)
    for row in models:
        predicted = predictors[row["name"]](prepared.arrays.test_images).argmax(axis=1)
        row["test_accuracy"] = float((predicted == labels).mean())
    best = max(models, key=lambda m: m["test_accuracy"])
    log(f"held-out test labels: best {best['name']} {best['test_accuracy']:.4f}")


def save_validation_predictions(run: Run, split: Split, predictors: dict) -> None:
    """Every model's validation logits beside the images and labels, so a report (and
    an ensemble) can be made again from the run folder alone."""
    import numpy as np
    arrays = {"val_images": split.val_x, "val_labels": split.val_y,
              **{f"logits/{name}": predict(split.val_x) for name, predict in predictors.items()}}
    write_atomic(run.path / "validation.npz", lambda f: np.savez_compressed(f, **arrays))


def make_tasks(config: Config, run: Run) -> list[Task]:
    """One task per configured model name, e.g. cnn-keras → (cnn, keras)."""
    tasks = []
    for name in config.models:
        arch, style = name.split("-")
        tasks.append(Task(name=name, arch=arch, style=style,
                          spec=getattr(config.arch, arch), train=config.train,
                          order_seed=config.data.seed,
                          logdir=run.path / "tensorboard" / name,
                          checkpoint_dir=run.path / "checkpoints" / name))
    return tasks


def reuse_finished(task: Task, run: Run, log: Log) -> tuple | None:
    """A model a resumed run already finished: its saved predictor and results row."""
    row_file = run.path / "models" / f"{task.name}.json"
    if not row_file.is_file():
        return None
    from job.train import keras_fit, tf_loop
    load = {"tf": tf_loop.load_predictor, "keras": keras_fit.load_predictor}[task.style]
    log(f"{task.name:<10} already trained in this run; reusing it")
    return load(run.path / "models", task), run.read_json(f"models/{task.name}.json")


def train_one(task: Task, split: Split, run: Run, log: Log,
              rt: runtime.Runtime | None = None, judge: Split | None = None) -> tuple:
    """Train one model in its style, score it, save it, log its hyperparameters; then
    its results row marks it finished and its checkpoints can go."""
    from job.train import keras_fit, tf_loop  # TensorFlow loads only when training starts
    fit = {"tf": tf_loop.fit, "keras": keras_fit.fit}[task.style]
    log(f"{task.name:<10} training ({'plain TensorFlow loop' if task.style == 'tf' else 'Keras fit'})")
    trained = fit(task, split, log, rt)
    judge = judge or split   # a bag copy is judged on the outer split, not its own
    scores = common.score(trained.predict_logits(judge.val_x), judge.val_y)
    trained.save(run.path / "models")
    common.write_hparams(task.logdir, common.hparams_of(trained, task.spec, task.train))
    log(f"{task.name:<10} done: val accuracy {scores['val_accuracy']:.4f}, "
        f"{trained.epochs_run} epochs, {trained.seconds_per_epoch:.2f}s/epoch")
    row = {"name": trained.name, "arch": trained.arch, "style": trained.style,
           "params": trained.params, "epochs_run": trained.epochs_run,
           "best_epoch": trained.best_epoch, **scores,
           "train_seconds": round(trained.train_seconds, 3),
           "seconds_per_epoch": round(trained.seconds_per_epoch, 4),
           "history": trained.history}
    run.write_json(f"models/{task.name}.json", row)
    shutil.rmtree(task.checkpoint_dir, ignore_errors=True)
    runtime.return_freed_memory()
    return trained.predict_logits, row


def print_line(line: str) -> None:
    print(line, flush=True)


def print_warning(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
