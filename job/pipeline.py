"""The training job end to end: data → every configured model → best → submission.

`train` and `resume` share one start: the devices, the checks that must pass before
any work, the data, then the chief trains into the run folder while any other worker
trains alongside it in a scratch folder. Kaggle, the file system and the clock are
reached from here; the stages it calls take arrays and return arrays and numbers.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from job import train as training
from job.competition import SAMPLE_SUBMISSION_CSV
from job.config import Config, load_config, replace_name, to_dict
from job.data import arrays, sample, sources
from job.errors import Pruned, RunError
from job.outputs import manifest, preflight, report, submission
from job.outputs.folder import Run, RunRecord, create_run, mark_latest, read_run, utc_now
from job.styles import STYLES
from job.system import interrupt, runtime
from job.train import ensemble, progress, scoring
from job.train.task import Predictor, Split, Task, make_task

Log = Callable[[str], None]


@dataclass(frozen=True)
class Prepared:
    """Validated data, ready before a run folder exists (bad input writes nothing)."""

    source: sources.Source
    dir: Path
    arrays: arrays.Arrays
    split: Split


@dataclass(frozen=True)
class Within:
    """A run that is one part of something larger (a sweep's trial): it goes into the
    folder given, not a new timestamped one under runs/, and is not marked latest."""

    folder: Path                 # created here; its parent must exist
    hparams: dict                # added to every model's HParams session (the swept keys)
    on_epoch: Callable[[str, dict], None] | None = None   # (model, epoch record); may raise Pruned


def train(config: Config, log: Log, warn: Log, within: Within | None = None) -> Run | None:
    """Train `config` into a new run folder and mark it latest; None on a non-chief worker."""
    return start(config, None, log, warn, within)


def read_resumable(run_dir: Path) -> tuple[Config, RunRecord]:
    """An interrupted run's own config and checked record; before TensorFlow loads, so a
    run that cannot be resumed says so at once."""
    record = read_run(Path(run_dir), hint="; name one under runs/")
    if record.status == "complete":
        raise RunError(f"{record.run.path}: run is complete; there is nothing to resume")
    config = load_config(record.run.path / "config.yaml")
    return replace_name(config, record.field("config", str, "the config's name")), record


def resume(config: Config, record: RunRecord, log: Log, warn: Log,
           within: Within | None = None) -> Run | None:
    """Continue an interrupted run in its own folder: finished models are kept, the
    interrupted one continues from its last epoch-end checkpoint."""
    return start(config, record, log, warn, within)


def start(config: Config, resuming: RunRecord | None, log: Log, warn: Log,
          within: Within | None = None) -> Run | None:
    """Set up the devices, check what must hold before any work, load the data; then the
    chief trains into the run folder, any other worker into a scratch copy of it."""
    rt = runtime.setup(config.runtime)
    runtime.check_models(rt, config.trained_models)
    if rt.is_chief:   # before the data: a run that cannot be saved must not start
        preflight.check_runs_dir(resuming.run.path if resuming else within.folder.parent
                                 if within else Path(config.output.runs_dir))
    prepared = prepare_data(config, log, warn)
    if resuming:
        check_same_data(resuming, prepared)
    if not rt.is_chief:
        train_as_worker(config, prepared, resuming, rt, log)
        return None
    run, record = (reopen_run(resuming, log) if resuming
                   else open_run(config, prepared, rt, within))
    return complete(config, prepared, run, record, log, rt, within)


def open_run(config: Config, prepared: Prepared, rt: runtime.Runtime,
             within: Within | None = None) -> tuple[Run, dict]:
    """A new run folder holding the resolved config and a manifest saying it is running."""
    run = (create_run(within.folder.parent, config.name, name=within.folder.name) if within
           else create_run(Path(config.output.runs_dir), config.name))
    run.write_text("config.yaml", yaml.safe_dump(to_dict(config), sort_keys=False))
    record = manifest.start(config)
    record["data"] = manifest.describe_data(prepared)
    record["runtime"] = rt.describe()
    run.write_json("manifest.json", record)
    return run, record


def reopen_run(resuming: RunRecord, log: Log) -> tuple[Run, dict]:
    """The interrupted run's folder, its manifest saying it is running again."""
    run, record = resuming.run, dict(resuming.manifest)
    log(f"resuming {run.id} ({record.get('error', record.get('status'))})")
    record.setdefault("resumed", []).append(utc_now().isoformat(timespec="seconds"))
    record.update(status="running", finished=None)
    record.pop("error", None)
    run.write_json("manifest.json", record)
    return run, record


def check_same_data(resuming: RunRecord, prepared: Prepared) -> None:
    """A run continues on the data it started with, or not at all."""
    started_on = resuming.field("data.sha256", dict, "the CSVs' sha256")
    if prepared.arrays.hashes != started_on:
        raise RunError(f"{resuming.run.path}: the data changed since this run started (the "
                       "CSVs' sha256 differ); restore that data or start a new run")


def complete(config: Config, prepared: Prepared, run: Run, record: dict, log: Log,
             rt: runtime.Runtime, within: Within | None = None) -> Run:
    """Train into `run` and stamp its manifest with how that ended."""
    try:
        with interrupt.catching():
            train_and_evaluate(config, prepared, run, record, log, rt, within)
    except BaseException as e:
        stopped = isinstance(e, (interrupt.Interrupted, KeyboardInterrupt))
        status = "interrupted" if stopped else "pruned" if isinstance(e, Pruned) else "failed"
        manifest.finish(record, status,
                        error=str(e).splitlines()[0] if str(e) else type(e).__name__)
        run.write_json("manifest.json", record)
        if stopped:
            raise interrupt.Interrupted(
                f"{e or 'stopped'}; the run keeps its last epoch-end checkpoint: resume with "
                f"`python -m job train --resume {run.path}`") from None
        raise
    manifest.finish(record, "complete")
    run.write_json("manifest.json", record)
    if within is None:
        mark_latest(run)
    return run


def train_as_worker(config: Config, prepared: Prepared, resuming: RunRecord | None,
                    rt: runtime.Runtime, log: Log) -> None:
    """Every worker must run the same collective steps, saving included: a non-chief saves
    into a scratch folder it deletes (tf.distribute's advice), resuming from a copy of the
    run's finished models and checkpoints, so it continues from where the chief does."""
    with tempfile.TemporaryDirectory(prefix="job-worker-") as scratch:
        for part in ("models", "checkpoints"):
            if resuming and (resuming.run.path / part).is_dir():
                shutil.copytree(resuming.run.path / part, Path(scratch) / part)
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
    data_dir = fetch_source(source, config, log, warn)
    loaded = arrays.load_arrays(data_dir)
    split = Split(*arrays.split_validation(loaded.train_images, loaded.train_labels,
                                           config.data.val_fraction, config.data.seed))
    return Prepared(source, data_dir, loaded, split)


def fetch_source(source: sources.Source, config: Config, log: Log, warn: Log) -> Path:
    """Make the chosen source's CSVs exist on disk and return their folder."""
    if source.kind == "sample":
        return sample.ensure_sample(source.dir)
    if source.kind == "kaggle":
        from job.kaggle.download import ensure_competition_data  # imports the Kaggle client
        return ensure_competition_data(config, log, warn)
    return source.dir


def train_and_evaluate(config: Config, prepared: Prepared, run: Run, record: dict,
                       log: Log, rt: runtime.Runtime | None = None,
                       within: Within | None = None) -> dict:
    """Train every configured model, pick the best, write every output."""
    (run.path / "models").mkdir(exist_ok=True)
    predictors, models = {}, []
    on_epoch, hparams = (within.on_epoch, within.hparams) if within else (None, {})
    for task in make_tasks(config, config.models, run, on_epoch):
        predictors[task.name], row = reuse_finished(task, run, log) or train_one(
            task, prepared.split, run, log, rt, hparams=hparams)
        models.append(row)
    add_ensembles(config, prepared.split, run, log, rt, predictors, models)
    score_held_out(prepared, predictors, models, log)
    val_x = prepared.split.val_x
    report.save_validation(run, val_x, prepared.split.val_y,
                           {name: predict(val_x) for name, predict in predictors.items()})
    best = submission.select_best(models)
    log(f"best: {best['name']} (val accuracy {best['val_accuracy']:.4f})")
    labels = predictors[best["name"]](prepared.arrays.test_images).argmax(axis=1)
    submission.write_submission(run.path / "submission.csv", labels,
                                prepared.dir / SAMPLE_SUBMISSION_CSV)
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
        [base] = make_tasks(config, (settings.bag_model,), run)
        copies = ensemble.bag_tasks(base, settings.bag_copies)
        for i, task in enumerate(copies, start=1):
            own = ensemble.bag_split(split, i, settings.bag_holdout, config.data.seed)
            predictors[task.name], row = reuse_finished(task, run, log) or train_one(
                task, own, run, log, rt, judge=split)
            models.append({**row, "role": f"member of bag-{settings.bag_model}"})
        groups[f"bag-{settings.bag_model}"] = [t.name for t in copies]
    rows = {m["name"]: m for m in models}
    for name, members in groups.items():
        predictors[name] = ensemble.averaging([predictors[m] for m in members])
        scores = scoring.score(predictors[name](split.val_x), split.val_y)
        models.append(ensemble.ensemble_row(name, [rows[m] for m in members], scores))
        log(f"{name:<10} averages {', '.join(members)}: val accuracy "
            f"{scores['val_accuracy']:.4f}")


def score_held_out(prepared: Prepared, predictors: dict, models: list[dict], log: Log) -> None:
    """The embedded sample keeps its test labels (test_labels.csv): score every model on
    those unseen rows too. Competition data has none, and gets no such column."""
    path = prepared.dir / sample.TEST_LABELS_CSV
    if not path.is_file():
        return
    best = scoring.add_test_accuracy(models, predictors, prepared.arrays.test_images,
                                     arrays.read_test_labels(path))
    log(f"held-out test labels: best {best['name']} {best['test_accuracy']:.4f}")


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

