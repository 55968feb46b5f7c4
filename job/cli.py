"""Command line: parses arguments, calls the job, turns JobError into one line + exit 2."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from job.errors import JobError

EXIT_JOB_ERROR = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m job", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks and TF logs")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train the configured models into a new run")
    train.add_argument("--config", required=True, type=Path, help="YAML config file")
    train.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY=VALUE", help="override a config key, e.g. train.epochs=3")
    train.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)

    runs = commands.add_parser("runs", help="list runs: id, status, data, best model")
    runs.add_argument("--runs-dir", type=Path, default=Path("runs"))
    runs.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "train":
            if not args.debug:
                import_tensorflow_quietly()
            return run_train(args)
        return run_runs(args)
    except JobError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return EXIT_JOB_ERROR


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up lines (CUDA probing, oneDNN notes) hidden.

    They are written to fd 2 before absl logging starts, so TF_CPP_MIN_LOG_LEVEL cannot
    silence them; they bury the job's own lines. --debug shows them. If the import
    fails, what it printed is shown after all.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def run_train(args: argparse.Namespace) -> int:
    from job import pipeline
    from job.config import load_config

    config = load_config(args.config, args.overrides)
    run = pipeline.train(config, pipeline.print_line, pipeline.print_warning)
    print(run.path)
    return 0


def run_runs(args: argparse.Namespace) -> int:
    from job.run import find_runs, summarize_run

    rows = [summarize_run(r) for r in find_runs(args.runs_dir)]
    if not rows:
        print(f"no runs in {args.runs_dir}")
        return 0
    print(f"{'run':<36} {'status':<11} {'data':<7} {'best':<10} val_acc")
    for row in rows:
        acc = f"{row['val_accuracy']:.4f}" if row["val_accuracy"] is not None else "-"
        print(f"{row['id']:<36} {row['status']:<11} {row['source']:<7} {row['best']:<10} {acc}")
    return 0
