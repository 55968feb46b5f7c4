"""Every candidate for the submission, and the predictor that makes it.

The configured models train on the validation split (resuming a finished one from the
run folder), then the bag's copies and the ensembles join them; with `predict.tta`
every candidate is scored with and without test-time augmentation. Once the best is
chosen, `final_predictor` builds what predicts the test set: the best's own weights,
or with `train.refit_full` the same model(s) fit again on every labelled row, averaged
over the TTA views when asked.
"""

from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from job import train as training
from job.config import Config
from job.data import arrays, sample
from job.outputs.folder import Run
from job.styles import STYLES
from job.system import runtime
from job.train import progress
from job.candidates import ensemble
from job.candidates import refit
from job.candidates import scoring
from job.candidates import tta
from job.train.task import Predictor, Split, Task, make_task

Log = Callable[[str], None]


@dataclass
class Candidates:
    """What the run trained, by name: tasks (bag copies included), predictors (on the
    split's weights), metrics.json rows, and each average's member models."""

    tasks: dict[str, Task] = field(default_factory=dict)
    predictors: dict[str, Predictor] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)
    members: dict[str, list[str]] = field(default_factory=dict)

    def row(self, name: str) -> dict:
        return next(r for r in self.rows if r["name"] == name)

    def add(self, name: str, predict: Predictor) -> None:
        """Keep `name`'s predictor, each image set's logits computed once."""
        self.predictors[name] = ensemble.remembering(predict)


def train_candidates(config: Config, split: Split, run: Run, log: Log, rt=None,
                     on_epoch: Callable[[str, dict], None] | None = None,
                     hparams: dict | None = None) -> Candidates:
    """Train every configured model, then the bag's copies; add the averages."""
    found = Candidates()
    for task in make_tasks(config, config.models, run, on_epoch):
        found.tasks[task.name] = task
        predict, row = reuse_finished(task, run, log) or train_one(
            task, split, run, log, rt, hparams=hparams)
        found.add(task.name, predict)
        found.rows.append(row)
    add_ensembles(config, split, run, log, rt, found)
    return found


def add_ensembles(config: Config, split: Split, run: Run, log: Log, rt,
                  found: Candidates) -> None:
    """Train the bag's copies (each on its own split of the training rows), then add the
    averaged candidates, scored on the outer validation split."""
    settings = config.ensemble
    if settings.members:
        found.members["ensemble"] = list(settings.members)
    if settings.bag_copies:
        [base] = make_tasks(config, (settings.bag_model,), run)
        copies = ensemble.bag_tasks(base, settings.bag_copies)
        for i, task in enumerate(copies, start=1):
            own = ensemble.bag_split(split, i, settings.bag_holdout, config.data.seed)
            found.tasks[task.name] = task
            predict, row = reuse_finished(task, run, log) or train_one(
                task, own, run, log, rt, judge=split)
            found.add(task.name, predict)
            found.rows.append({**row, "role": f"member of bag-{settings.bag_model}"})
        found.members[f"bag-{settings.bag_model}"] = [t.name for t in copies]
    for name, members in found.members.items():
        found.add(name, ensemble.averaging([found.predictors[m] for m in members]))
        scores = scoring.score(found.predictors[name](split.val_x), split.val_y)
        found.rows.append(ensemble.ensemble_row(name, [found.row(m) for m in members], scores))
        log(f"{name:<10} averages {', '.join(members)}: val accuracy "
            f"{scores['val_accuracy']:.4f}")


def augmented_views(config: Config) -> tta.Views | None:
    """The TTA views `predict.tta` asks for, or None when it is off."""
    if not config.predict.tta:
        return None
    return tta.Views(config.train.augment, config.predict.tta, config.predict.seed)


def score_with_tta(views: tta.Views, split: Split, found: Candidates, log: Log) -> None:
    """Every candidate's validation loss and accuracy under TTA, beside its plain ones."""
    for row in found.rows:
        augmented = tta.augmenting(found.predictors[row["name"]], views)
        scores = scoring.score(augmented(split.val_x), split.val_y)
        row.update({f"tta_{k}": v for k, v in scores.items()})
        log(f"{row['name']:<10} with TTA ({views.copies} views + the original): val "
            f"accuracy {scores['val_accuracy']:.4f} (without: {row['val_accuracy']:.4f})")


def held_out_labels(data_dir: Path) -> np.ndarray | None:
    """The embedded sample's test labels (test_labels.csv); competition data has none."""
    path = data_dir / sample.TEST_LABELS_CSV
    return arrays.read_test_labels(path) if path.is_file() else None


def score_held_out(images: np.ndarray, labels: np.ndarray, found: Candidates,
                   views: tta.Views | None, log: Log) -> None:
    """Every candidate's accuracy on the labelled test rows (with TTA too, if on)."""
    best = scoring.add_test_accuracy(found.rows, found.predictors, images, labels)
    log(f"held-out test labels: best {best['name']} {best['test_accuracy']:.4f}")
    if views is not None:
        for row in found.rows:
            predicted = tta.augmenting(found.predictors[row["name"]], views)(images)
            row["tta_test_accuracy"] = float((predicted.argmax(axis=1) == labels).mean())


def final_predictor(config: Config, split: Split, run: Run, log: Log, rt, found: Candidates,
                    best: str, views: tta.Views | None) -> tuple[Predictor, Predictor, dict]:
    """What predicts the test set, the same without TTA, and how it was made
    (metrics.json's `submission`)."""
    made = {"model": best, "weights": "split", "tta": config.predict.tta, "refit": []}
    predict = found.predictors[best]
    if config.train.refit_full:
        full = refit.full_split(split)
        refits = [reuse_finished(task, run, log) or refit_one(task, full, run, log, rt)
                  for task in (refit.refit_task(found.tasks[name], found.row(name))
                               for name in found.members.get(best, [best]))]
        predict = ensemble.remembering(ensemble.averaging([p for p, _ in refits])
                                       if len(refits) > 1 else refits[0][0])
        made.update(weights="refit", fit_rows=len(full.train_x),
                    refit=[{k: v for k, v in row.items() if k != "history"}
                           for _, row in refits])
    return (tta.augmenting(predict, views) if views is not None else predict), predict, made


def make_tasks(config: Config, names: tuple[str, ...], run: Run,
               on_epoch: Callable[[str, dict], None] | None = None) -> list[Task]:
    """One task per model name, e.g. cnn-keras → (cnn, keras), its folders in `run`."""
    return [make_task(name, config.arch, config.train, config.data.seed,
                      logdir=run.path / "tensorboard" / name,
                      checkpoint_dir=run.path / "checkpoints" / name,
                      report=functools.partial(on_epoch, name) if on_epoch else None)
            for name in names]


def reuse_finished(task: Task, run: Run, log: Log) -> tuple[Predictor, dict] | None:
    """A model a resumed run already finished: its saved predictor and results row."""
    if not (run.path / "models" / f"{task.name}.json").is_file():
        return None
    log(f"{task.name:<10} already trained in this run; reusing it")
    return (training.load_predictor(run.path / "models", task),
            run.read_json(f"models/{task.name}.json"))


def train_one(task: Task, split: Split, run: Run, log: Log,
              rt: runtime.Runtime | None = None, judge: Split | None = None,
              hparams: dict | None = None) -> tuple:
    """Train one model in its style, score it, save it, log its hyperparameters; then
    its results row marks it finished and its checkpoints can go."""
    log(f"{task.name:<10} training ({STYLES[task.style].description})")
    trained = training.fit(task, split, log, rt)
    judge = judge or split   # a bag copy is judged on the outer split, not its own
    scores = scoring.score(trained.predict_logits(judge.val_x), judge.val_y)
    trained.save(run.path / "models")
    progress.write_hparams(task.logdir, {**progress.hparams_of(trained, task.spec, task.train),
                                         **(hparams or {})}, session=f"{run.id}/{task.name}")
    log(f"{task.name:<10} done: val accuracy {scores['val_accuracy']:.4f}, "
        f"{trained.epochs_run} epochs, {trained.seconds_per_epoch:.2f}s/epoch")
    return trained.predict_logits, finish_row(task, run, {
        "name": trained.name, "arch": trained.arch, "style": trained.style,
        "params": trained.params, "epochs_run": trained.epochs_run,
        "best_epoch": trained.best_epoch, **scores, **timings(trained),
        "history": trained.history})


def refit_one(task: Task, full: Split, run: Run, log: Log,
              rt: runtime.Runtime | None = None) -> tuple:
    """Fit a chosen model again on every labelled row, for its chosen epochs; save it.
    Its row has no validation figures: every labelled row was fit on."""
    log(f"{task.name:<10} final fit on all {len(full.train_x):,} labelled rows for "
        f"{task.train.epochs} epochs ({STYLES[task.style].description})")
    trained = training.fit(task, full, log, rt)
    trained.save(run.path / "models")
    log(f"{task.name:<10} done: training accuracy {trained.history[-1]['accuracy']:.4f}, "
        f"{trained.seconds_per_epoch:.2f}s/epoch")
    return trained.predict_logits, finish_row(task, run, {
        "name": trained.name, "refit_of": task.name.removesuffix(refit.SUFFIX),
        "epochs_run": trained.epochs_run, "fit_rows": len(full.train_x),
        "loss": trained.history[-1]["loss"], "accuracy": trained.history[-1]["accuracy"],
        **timings(trained), "history": trained.history})


def timings(trained: training.Trained) -> dict:
    return {"train_seconds": round(trained.train_seconds, 3),
            "seconds_per_epoch": round(trained.seconds_per_epoch, 4)}


def finish_row(task: Task, run: Run, row: dict) -> dict:
    """Write a model's row (which marks it finished), drop its checkpoints, free memory."""
    run.write_json(f"models/{task.name}.json", row)
    shutil.rmtree(task.checkpoint_dir, ignore_errors=True)
    runtime.return_freed_memory()
    return row
