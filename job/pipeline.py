"""The training job end to end: data → every configured model → best → submission.

`train` and `resume` share one start: the devices, the checks that must pass before
any work, the data, then the chief trains into the run folder while any other
multi-worker member trains alongside it in a scratch folder. Each model trains in a
worker process of its own (job.workers); this process loads no framework. Kaggle, the
file system and the clock are reached from here; the stages it calls take arrays and
return arrays and numbers.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from job import candidates
from job.competition import SAMPLE_SUBMISSION_CSV
from job.config import Config, load_config, replace_name, to_dict
from job.data import arrays, sample, sources
from job.errors import DeviceError, Pruned, RunError
from job.outputs import manifest, preflight, report, submission
from job.outputs.folder import Run, RunRecord, create_run, mark_latest, read_run, utc_now
from job.system import devices, interrupt, runtime
from job.train.task import Split
from job.workers.parent import Board, Slot, Workers, slots_for

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


def train(config: Config, log: Log, warn: Log, within: Within | None = None,
          board: Board | None = None) -> Run | None:
    """Train `config` into a new run folder and mark it latest; None on a non-chief worker.
    A `board` (a live display's) follows each worker's progress."""
    return start(config, None, log, warn, within, board)


def read_resumable(run_dir: Path) -> tuple[Config, RunRecord]:
    """An interrupted run's own config and checked record; before TensorFlow loads, so a
    run that cannot be resumed says so at once."""
    record = read_run(Path(run_dir), hint="; name one under runs/")
    if record.status == "complete":
        raise RunError(f"{record.run.path}: run is complete; there is nothing to resume")
    config = load_config(record.run.path / "config.yaml")
    return replace_name(config, record.field("config", str, "the config's name")), record


def resume(config: Config, record: RunRecord, log: Log, warn: Log,
           within: Within | None = None, board: Board | None = None) -> Run | None:
    """Continue an interrupted run in its own folder: finished models are kept, the
    interrupted one continues from its last epoch-end checkpoint."""
    return start(config, record, log, warn, within, board)


def start(config: Config, resuming: RunRecord | None, log: Log, warn: Log,
          within: Within | None = None, board: Board | None = None) -> Run | None:
    """Check the devices and what must hold before any work, load the data; then the
    chief trains into the run folder, any other worker into a scratch copy of it."""
    slots = plan_devices(config)
    chief = runtime.is_chief(runtime.cluster_spec())
    if chief:   # before the data: a run that cannot be saved must not start
        preflight.check_runs_dir(resuming.run.path if resuming else within.folder.parent
                                 if within else Path(config.output.runs_dir))
    prepared = prepare_data(config, log, warn)
    if resuming:
        check_same_data(resuming, prepared)
    if not chief:
        train_as_worker(config, prepared, resuming, slots, log)
        return None
    run, record = (reopen_run(resuming, log) if resuming
                   else open_run(config, prepared, slots, within))
    return complete(config, prepared, run, record, log, slots, within, board)


def plan_devices(config: Config) -> list[Slot]:
    """Where the workers run, checked before any work: the GPUs NVML shows (each worker
    sees one, or all of them for a strategy that spans GPUs), else the CPU."""
    gpus = devices.visible_gpus()
    if config.runtime.require_gpu and not gpus:
        raise DeviceError(
            "runtime.require_gpu is true but no GPU is visible (NVML finds none): on a GPU "
            "machine check `nvidia-smi` and that the container runs with --gpus all; to "
            "train on the CPU anyway use a config with runtime.require_gpu: false")
    spec = runtime.cluster_spec()
    spans = runtime.choose_strategy(config.runtime, 1, spec) != "none"
    # Each worker sees one GPU unless its strategy spans several: `auto` stays `none`.
    runtime.check_models(runtime.choose_strategy(config.runtime, 1 if gpus else 0, spec),
                         config.trained_models)
    return slots_for(gpus, config.runtime.parallel, whole_machine=spans)


def open_run(config: Config, prepared: Prepared, slots: list[Slot],
             within: Within | None = None) -> tuple[Run, dict]:
    """A new run folder holding the resolved config and a manifest saying it is running."""
    run = (create_run(within.folder.parent, config.name, name=within.folder.name) if within
           else create_run(Path(config.output.runs_dir), config.name))
    run.write_text("config.yaml", yaml.safe_dump(to_dict(config), sort_keys=False))
    record = manifest.start(config)
    record["data"] = manifest.describe_data(prepared)
    record["runtime"] = {"distribute": config.runtime.distribute,
                         "mixed_precision": config.runtime.mixed_precision,
                         "jit_compile": config.runtime.jit_compile,
                         "workers_at_once": len(slots), "slots": [s.label for s in slots]}
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
             slots: list[Slot], within: Within | None = None,
             board: Board | None = None) -> Run:
    """Train into `run` and stamp its manifest with how that ended."""
    try:
        with interrupt.catching():
            train_and_evaluate(config, prepared, run, record, log, slots, within, board)
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
    # One framework per process: this one plans and combines, and should have loaded none.
    record["process"] = {"pid": os.getpid(), "frameworks": sorted(
        name for name in ("tensorflow", "keras", "torch") if name in sys.modules)}
    run.write_json("manifest.json", record)
    if within is None and not mark_latest(run):
        log(f"{run.path.parent / 'latest'} not updated: this file system has no "
             f"symbolic links (a mounted bucket?); the run is {run.path}")
    return run


def train_as_worker(config: Config, prepared: Prepared, resuming: RunRecord | None,
                    slots: list[Slot], log: Log) -> None:
    """Every worker must run the same collective steps, saving included: a non-chief saves
    into a scratch folder it deletes (tf.distribute's advice), resuming from a copy of the
    run's finished models and checkpoints, so it continues from where the chief does."""
    with tempfile.TemporaryDirectory(prefix="job-worker-") as scratch:
        for part in ("models", "checkpoints"):
            if resuming and (resuming.run.path / part).is_dir():
                shutil.copytree(resuming.run.path / part, Path(scratch) / part)
        run = Run(Path(scratch))
        run.write_text("config.yaml", yaml.safe_dump(to_dict(config), sort_keys=False))
        train_and_evaluate(config, prepared, run, {}, log, slots)
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
                       log: Log, slots: list[Slot], within: Within | None = None,
                       board: Board | None = None) -> dict:
    """Train every candidate in workers, pick the best, write every output."""
    (run.path / "models").mkdir(exist_ok=True)
    split, copies = prepared.split, config.predict.tta
    on_epoch, hparams = (within.on_epoch, within.hparams) if within else (None, {})
    trainer = candidates.Trainer(config, run, prepared.dir,
                                 Workers(slots, log, run.path / "logs", on_epoch, board), log,
                                 hparams, reports=on_epoch is not None,
                                 one_worker=runtime.cluster_spec() is not None)
    found = candidates.train_candidates(trainer, split)
    if copies:
        candidates.score_with_tta(copies, split, found, log)
    labels = candidates.held_out_labels(prepared.dir)
    if labels is not None:
        candidates.score_held_out(labels, found, copies, log)
    report.save_validation(run, split.val_x, split.val_y,
                           {name: logits["val"] for name, logits in found.logits.items()})
    rows = [row.to_json() for row in found.rows]
    best = submission.select_best(rows)
    log(f"best: {best['name']} (val accuracy {best['val_accuracy']:.4f})")
    final, plain, made = candidates.final_logits(trainer, found, best["name"])
    predicted = final.argmax(axis=1)
    if labels is not None:
        made["test_accuracy"] = candidates.accuracy(final, labels)
        if copies:
            made["test_accuracy_without_tta"] = candidates.accuracy(plain, labels)
        log(f"submission ({describe_submission(made)}): held-out test accuracy "
            f"{made['test_accuracy']:.4f}")
    submission.write_submission(run.path / "submission.csv", predicted,
                                prepared.dir / SAMPLE_SUBMISSION_CSV)
    metrics = {"best": best["name"], "models": rows, "submission": made}
    run.write_json("metrics.json", metrics)
    shutil.rmtree(run.path / "checkpoints", ignore_errors=True)   # every model is saved
    report.write_report(run, record, metrics)
    return metrics


def describe_submission(made: dict) -> str:
    """`cnn-keras refit on all rows, TTA 4`, for the log."""
    parts = [made["model"]]
    if made["weights"] == "refit":
        parts.append(f"refit on all {made['fit_rows']:,} labelled rows")
    if made["tta"]:
        parts.append(f"TTA {made['tta']}")
    return ", ".join(parts)
