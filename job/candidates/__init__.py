"""Every candidate for the submission, and the logits that make it.

The configured models and the bag's copies train in worker processes (a finished one
is reused from the run folder), each leaving its logits for the validation rows, the
test rows and each TTA view; the ensembles and bags average those. Everything here is
NumPy: no framework loads in this process. Once the best is chosen, `final_logits`
gives the test set's logits: the best's own, or with `train.refit_full` those of the
same model(s) fit again on every labelled row, averaged over the TTA views when asked.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from job.candidates import ensemble, tta
from job.config import Config
from job.data import arrays, sample
from job.errors import RunError
from job.outputs.folder import Run
from job.styles import STYLES, AverageId, ModelId
from job.train import scoring
from job.train.results import ModelRow, RefitRow
from job.train.task import Split
from job.workers.parent import Workers
from job.workers.protocol import Request

Log = Callable[[str], None]
Logits = dict[str, np.ndarray]   # image set (val, test, val@view1, …) → (N, 10) logits


@dataclass
class Candidates:
    """What the run trained, by name: metrics.json rows, each candidate's logits, and each
    average's member models."""

    rows: list[ModelRow] = field(default_factory=list)
    logits: dict[str, Logits] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)

    def row(self, name: str) -> ModelRow:
        return next(r for r in self.rows if r.name == name)


@dataclass(frozen=True)
class Trainer:
    """How this run's models get trained: its folder, data, workers, sweep hooks."""

    config: Config
    run: Run
    data_dir: Path
    workers: Workers
    log: Log
    hparams: dict = field(default_factory=dict)    # a sweep's swept keys, for HParams
    reports: bool = False                          # a pruner listens to each epoch
    one_worker: bool = False    # multi_worker: the cluster forms once, in one process

    def request(self, models: list[ModelId]) -> Request:
        return Request(tuple(m.name for m in models), str(self.run.path / "config.yaml"),
                       str(self.data_dir), str(self.run.path), self.run.id,
                       self.reports and not any(m.refit for m in models), self.hparams)

    def train(self, models: list[ModelId]) -> list[tuple[ModelRow | RefitRow, Logits]]:
        """Each model's row and logits: trained in workers, or reused if finished."""
        todo = [m for m in models if not self.finished(m)]
        for model in models:
            if model not in todo:
                self.log(f"{model.name:<10} already trained in this run; reusing it")
        batches = [todo] if self.one_worker and todo else [[m] for m in todo]
        self.workers.run_all([self.request(b) for b in batches],
                             lambda r: STYLES[ModelId.parse(r.models[0]).style].description)
        return [self.read(m) for m in models]

    def finished(self, model: ModelId) -> bool:
        """A results row marks a model finished (the worker writes it last)."""
        return (self.run.path / "models" / f"{model.name}.json").is_file()

    def read(self, model: ModelId) -> tuple[ModelRow | RefitRow, Logits]:
        """A finished model's row and logits; a damaged one is one line saying so."""
        folder = self.run.path / "models"
        try:
            with np.load(folder / f"{model.name}.logits.npz") as saved:
                logits = {key: saved[key] for key in saved.files}
            kind = RefitRow if model.refit else ModelRow
            return kind.from_json(json.loads((folder / f"{model.name}.json").read_text())), logits
        except (OSError, ValueError, TypeError, zipfile.BadZipFile) as e:
            raise RunError(f"{folder / model.name}.json: unreadable or damaged ({e}); delete "
                           f"it to train {model.name} again, then resume") from None


def planned(config: Config) -> list[ModelId]:
    """The configured models, then the bag's copies."""
    models = [ModelId.of(name) for name in config.models]
    if config.ensemble.bag_copies:
        bagged = ModelId.of(config.ensemble.bag_model)
        models += [bagged.bag_copy(i) for i in range(1, config.ensemble.bag_copies + 1)]
    return models


def train_candidates(trainer: Trainer, split: Split) -> Candidates:
    """Train every configured model and the bag's copies; add the averages."""
    found = Candidates()
    for row, logits in trainer.train(planned(trainer.config)):
        found.rows.append(row)
        found.logits[row.name] = logits
    add_averages(trainer.config, split, found, trainer.log)
    return found


def add_averages(config: Config, split: Split, found: Candidates, log: Log) -> None:
    """The ensemble and the bag, scored on the outer validation split."""
    settings = config.ensemble
    if settings.members:
        found.members[AverageId().name] = list(settings.members)
    if settings.bag_copies:
        bagged = ModelId.of(settings.bag_model)
        found.members[AverageId(bagged.name).name] = [
            bagged.bag_copy(i).name for i in range(1, settings.bag_copies + 1)]
    for name, members in found.members.items():
        found.logits[name] = ensemble.averaging([found.logits[m] for m in members])
        scores = scoring.score(found.logits[name]["val"], split.val_y)
        found.rows.append(ensemble.ensemble_row(name, [found.row(m) for m in members], scores))
        log(f"{name:<10} averages {', '.join(members)}: val accuracy "
            f"{scores['val_accuracy']:.4f}")


def score_with_tta(copies: int, split: Split, found: Candidates, log: Log) -> None:
    """Every candidate's validation loss and accuracy under TTA, beside its plain ones."""
    for row in found.rows:
        scores = scoring.score(tta.averaged(found.logits[row.name], "val", copies),
                               split.val_y)
        row.tta_val_loss, row.tta_val_accuracy = scores["val_loss"], scores["val_accuracy"]
        log(f"{row.name:<10} with TTA ({copies} views + the original): val "
            f"accuracy {row.tta_val_accuracy:.4f} (without: {row.val_accuracy:.4f})")


def held_out_labels(data_dir: Path) -> np.ndarray | None:
    """The embedded sample's test labels (test_labels.csv); competition data has none."""
    path = data_dir / sample.TEST_LABELS_CSV
    return arrays.read_test_labels(path) if path.is_file() else None


def score_held_out(labels: np.ndarray, found: Candidates, copies: int, log: Log) -> None:
    """Every candidate's accuracy on the labelled test rows (with TTA too, if on)."""
    for row in found.rows:
        logits = found.logits[row.name]
        row.test_accuracy = accuracy(logits["test"], labels)
        if copies:
            row.tta_test_accuracy = accuracy(tta.averaged(logits, "test", copies), labels)
    best = max(found.rows, key=lambda r: r.test_accuracy)
    log(f"held-out test labels: best {best.name} {best.test_accuracy:.4f}")


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(axis=1) == labels).mean())


def final_logits(trainer: Trainer, found: Candidates, best: str
                 ) -> tuple[np.ndarray, np.ndarray, dict]:
    """The test set's logits for the submission, the same without TTA, and how they were
    made (metrics.json's `submission`)."""
    config = trainer.config
    made = {"model": best, "weights": "split", "tta": config.predict.tta, "refit": []}
    logits = found.logits[best]
    if config.train.refit_full:
        chosen = [ModelId.parse(name).refitted() for name in found.members.get(best, [best])]
        refits = trainer.train(chosen)
        logits = ensemble.averaging([refit for _, refit in refits])
        made.update(weights="refit", fit_rows=refits[0][0].fit_rows,
                    refit=[{k: v for k, v in row.to_json().items()
                            if k not in ("history", "runtime", "process")}
                           for row, _ in refits])
    plain = logits["test"]
    final = tta.averaged(logits, "test", config.predict.tta) if config.predict.tta else plain
    return final, plain, made
