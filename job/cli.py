"""Command line: parses arguments, calls the job, turns JobError into one line + exit 2.

The only module that prints: everything it calls reports through the `log` and
`warn` functions passed in, so it can be imported and tested without argv.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from job.errors import ConfigError, JobError, RunError
from job.system.interrupt import EXIT_CODE, Interrupted

EXIT_PROBLEMS = 1     # doctor: the machine cannot run the config; its lines say why
EXIT_JOB_ERROR = 2
EXIT_INTERRUPTED = EXIT_CODE   # 75, EX_TEMPFAIL: "try again later"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m job", description=__doc__)
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks (each worker's own output: runs/<id>/logs/)")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train the configured models into a new run")
    train.add_argument("--config", type=Path, help="YAML config file (not with --resume)")
    train.add_argument("--resume", nargs="?", const="", metavar="RUN",
                       help="continue an interrupted run (default: the newest unfinished one)")
    train.add_argument("--runs-dir", type=Path, default=Path("runs"),
                       help="where --resume looks for the newest unfinished run")
    add_overrides(train, "override a config key, e.g. train.epochs=3")

    download = commands.add_parser("download", help="download the competition data into data.dir")
    download.add_argument("--config", required=True, type=Path, help="YAML config file")
    add_overrides(download)
    download.add_argument("--force", action="store_true", help="download even if intact")

    submit = commands.add_parser("submit", help="submit a run's submission.csv to Kaggle")
    submit.add_argument("--run", type=Path, help="run folder (default: runs/latest)")
    submit.add_argument("--runs-dir", type=Path, default=Path("runs"))
    submit.add_argument("--message", help="submission description (default: kaggle.message)")
    submit.add_argument("--dry-run", action="store_true", help="check everything, upload nothing")
    submit.add_argument("--force", action="store_true",
                        help="submit even if these exact predictions were submitted before")
    submit.add_argument("--wait", action="store_true", help="wait for the public score")

    remote = commands.add_parser(
        "kaggle-run", help="train a config on Kaggle's own GPUs: upload the job as a private "
        "dataset, push a kernel, follow it, bring its run folder home under runs/")
    remote.add_argument("--config", type=Path, help="YAML config file (not with --follow)")
    add_overrides(remote)
    remote.add_argument("--accelerator", choices=("t4x2", "p100", "none"), default="t4x2",
                        help="two T4s (default), a P100 (retired: Kaggle gives a T4), or "
                        "Kaggle's CPUs")
    remote.add_argument("--slug", help="the kernel's slug (default digit-job-<config name>); "
                        "its code dataset is <slug>-code")
    remote.add_argument("--no-wait", action="store_true",
                        help="return once the kernel is pushed (bring it home with --follow)")
    remote.add_argument("--follow", metavar="KERNEL",
                        help="follow a pushed kernel (OWNER/SLUG[/VERSION], as kaggle-run "
                        "printed it) and bring its run home")
    remote.add_argument("--runs-dir", type=Path,
                        help="where its run folder goes (default: the config's output.runs_dir,"
                        " else runs)")

    report = commands.add_parser("report",
                                 help="make a finished run's report.md and pictures again")
    report.add_argument("run", type=Path, metavar="RUN", help="run folder, e.g. runs/latest")

    doctor = commands.add_parser("doctor", help="check that this machine can run a config: "
                                 "driver, GPUs, CUDA libraries, timed steps")
    doctor.add_argument("--config", type=Path,
                        help="YAML config whose runtime needs are checked (default: built-in)")
    add_overrides(doctor)

    sweep = commands.add_parser("sweep", help="work on a hyperparameter sweep (an Optuna study) "
                                "until its budget is spent; prints the sweep folder")
    sweep.add_argument("--config", required=True, type=Path, help="sweep file (a config with a "
                       "sweep: section), e.g. configs/sweep.yaml")
    sweep.add_argument("--storage", help="database URL (default: $OPTUNA_STORAGE, else "
                       "sweep.storage); prefer $OPTUNA_STORAGE for a password")
    sweep.add_argument("--study", help="study name (default: sweep.study)")
    sweep.add_argument("--workers", type=int, default=1,
                       help="worker processes on this machine, one per GPU where there are GPUs")
    add_overrides(sweep, "override a config or sweep key, e.g. sweep.trials=4")

    summary = commands.add_parser("sweep-summary", help="rewrite a sweep folder's summary and "
                                  "best link from the storage and the trial folders present")
    summary.add_argument("folder", type=Path, metavar="SWEEP", help="e.g. runs/sweeps/cnn-lr")
    summary.add_argument("--storage", help="database URL (default: $OPTUNA_STORAGE, else the "
                         "folder's study.db)")

    dashboard = commands.add_parser("dashboard", help="optuna-dashboard for a sweep's study, "
                                    "on 127.0.0.1")
    dashboard.add_argument("--study", required=True, help="the sweep's study name")
    dashboard.add_argument("--runs-dir", type=Path, default=Path("runs"))
    dashboard.add_argument("--storage", help="database URL (default: $OPTUNA_STORAGE, else "
                           "runs/sweeps/<study>/study.db)")
    dashboard.add_argument("--port", type=int, default=8080)

    runs = commands.add_parser("runs", help="list runs: id, status, data, best model")
    runs.add_argument("--runs-dir", type=Path, default=Path("runs"))
    for command in commands.choices.values():   # --debug after the command works as well
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    return parser.parse_args(argv)


def add_overrides(command: argparse.ArgumentParser, text: str = "override a config key") -> None:
    command.add_argument("--set", dest="overrides", action="append", default=[],
                         metavar="KEY=VALUE", help=text)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "train":
            return run_train(args)
        return {"download": run_download, "submit": run_submit, "runs": run_runs,
                "report": run_report, "doctor": run_doctor, "sweep": run_sweep,
                "sweep-summary": run_sweep_summary, "kaggle-run": run_kaggle_run,
                "dashboard": run_dashboard}[args.command](args)
    except Interrupted as e:
        print(f"interrupted: {e}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except JobError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return EXIT_JOB_ERROR


def print_line(line: str) -> None:
    print(line, flush=True)


def print_warning(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def terminal_console():
    """A rich console when stdout is a terminal; None keeps the plain lines (logs, pipes)."""
    from rich.console import Console
    return Console() if sys.stdout.isatty() else None


def run_train(args: argparse.Namespace) -> int:
    from job import pipeline
    from job.config import load_config
    from job.outputs.folder import newest_unfinished
    from job.outputs.live import training_view

    # The config is checked before any worker starts, so a typo fails at once.
    if args.resume is not None:
        if args.config or args.overrides:
            raise ConfigError("--resume continues a run with its own config.yaml; "
                              "drop --config/--set")
        run_dir = Path(args.resume) if args.resume else newest_unfinished(args.runs_dir)
        config, record = pipeline.read_resumable(run_dir)
    elif args.config is None:
        raise ConfigError("train needs --config FILE (or --resume [RUN])")
    else:
        config, record = load_config(args.config, args.overrides), None
    # On a terminal the running models are drawn live under the log lines.
    with training_view(terminal_console(), config.train.epochs,
                       config.train.early_stopping.enabled) as view:
        log, warn = (view.log, view.warn) if view else (print_line, print_warning)
        board = view.board if view else None
        run = (pipeline.resume(config, record, log, warn, board=board) if record is not None
               else pipeline.train(config, log, warn, board=board))
    if run is not None:   # a non-chief worker has no run folder of its own
        print(run.path)
    return 0


def run_download(args: argparse.Namespace) -> int:
    from job.config import load_config
    from job.kaggle import download
    from job.outputs.live import StatusLine
    config = load_config(args.config, args.overrides)
    # On a terminal the bytes arrived are redrawn in place; elsewhere the plain lines alone.
    console = terminal_console()
    folder = download.ensure_competition_data(config, print_line, print_warning, args.force,
                                               StatusLine(console, print_line) if console
                                               else None)
    print(folder)
    return 0


def run_submit(args: argparse.Namespace) -> int:
    from job.kaggle import submit

    submit.submit(args.run, args.runs_dir, args.message, args.dry_run, args.force, args.wait,
                  print_line, print_warning)
    return 0


def run_kaggle_run(args: argparse.Namespace) -> int:
    from job.config import Config, load_config
    from job.kaggle import follow, remote
    from job.kaggle.kernel import Accelerator, parse_ref
    from job.outputs.live import StatusLine

    if args.follow and (args.no_wait or args.slug or (args.overrides and not args.config)):
        raise ConfigError("--follow brings home a pushed kernel: drop --no-wait, --slug "
                          "and --set (--config only chooses the retry and poll settings)")
    if not args.follow and args.config is None:
        raise ConfigError("kaggle-run needs --config FILE (or --follow OWNER/SLUG)")
    target = parse_ref(args.follow) if args.follow else None
    # Checked before anything is sent (for --follow: its retry and poll settings).
    config = load_config(args.config, args.overrides) if args.config else Config()
    runs_dir = args.runs_dir or Path(config.output.runs_dir)
    status = StatusLine(terminal_console(), print_line)   # redrawn in place on a terminal
    if target is not None:
        home = follow.follow(target, config, runs_dir, print_line, status)
    else:
        plan = remote.Plan(config, Accelerator(args.accelerator), args.slug)
        home = remote.kaggle_run(plan, not args.no_wait, runs_dir, print_line, print_warning,
                                 status)
    if home is not None:
        print(home)
    return 0


def run_report(args: argparse.Namespace) -> int:
    from job.outputs import report
    from job.outputs.folder import read_run

    # Read and checked first, so a bad folder fails at once.
    record = read_run(args.run, hint=" (no manifest.json); name a finished run folder "
                                     "under runs/")
    if record.status != "complete":
        raise RunError(f"{record.run.path}: run is {record.status}; a report is made of a "
                       "finished run")
    print(report.write_report(record.run, record.manifest, record.finished()))
    return 0


def run_runs(args: argparse.Namespace) -> int:
    from job.outputs.folder import find_runs, runs_table, summarize_run

    rows = [summarize_run(r) for r in find_runs(args.runs_dir)]
    print("\n".join(runs_table(rows)) if rows else f"no runs in {args.runs_dir}")
    return 0


def run_doctor(args: argparse.Namespace) -> int:
    from job.config import Config, load_config
    from job.config.sweep import is_sweep_file, load_sweep
    from job.doctor import examine

    if args.config is None and args.overrides:
        raise ConfigError("doctor --set needs --config FILE")
    if args.config and is_sweep_file(args.config):   # a sweep's trials run its base config
        config = load_sweep(args.config, args.overrides).base
    else:
        config = load_config(args.config, args.overrides) if args.config else Config()
    found = examine.problems(examine.examine(config, print_line))
    if found:
        print(f"doctor: {len(found)} problem(s) for {args.config or 'the built-in config'}",
              file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"doctor: this machine can run {args.config or 'the built-in config'}")
    return 0


def run_sweep(args: argparse.Namespace) -> int:
    from job.config.sweep import load_sweep
    from job.sweep.launch import run_sweep as start

    if args.workers < 1:
        raise ConfigError(f"--workers: expected a positive number, got {args.workers}")
    overrides = args.overrides + ([f"sweep.study={args.study}"] if args.study else [])
    sweep = load_sweep(args.config, overrides)   # every point checked before any trial starts
    # What each worker process is started with: no --storage (the URL, which may hold a
    # password, reaches it through its environment).
    argv = ["sweep", "--config", str(args.config),
            *[part for o in overrides for part in ("--set", o)]]
    print(start(sweep, args.storage, args.workers, argv, print_line, print_warning))
    return 0


def run_sweep_summary(args: argparse.Namespace) -> int:
    from job.sweep.review import rebuild

    print(rebuild(args.folder, args.storage, print_warning))
    return 0


def run_dashboard(args: argparse.Namespace) -> int:
    from job.sweep.review import serve_dashboard

    serve_dashboard(args.runs_dir, args.study, args.storage, args.port, print_line)
    return 0
