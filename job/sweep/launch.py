"""`python -m job sweep`: check the sweep and its storage, then work on it here, in one
process or as N worker processes (one per GPU where there are GPUs).

Everything the sweep file and the storage decide is checked before the first trial; the
workers started here get the storage URL through their environment, never their command
line, which any user of the machine can read.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable

from job.config.sweep import Sweep
from job.errors import ConfigError
from job.system import devices, interrupt
from job.system.files import write_atomic

Log = Callable[[str], None]
WORKER_ENV = "JOB_SWEEP_WORKER"      # set on the processes started here: their index
EXIT_INTERRUPTED = interrupt.EXIT_CODE    # what a stopped worker exits with


def run_sweep(sweep: Sweep, cli_storage: str | None, workers: int, argv: list[str],
              log: Log, warn: Log) -> Path:
    """The sweep folder once this machine has nothing left to do for the study. Each
    trial's models train in worker processes of their own; this process loads no
    framework, so a storage that cannot be reached says so in a second."""
    from job.sweep import storage, worker

    if sweep.base.runtime.distribute == "multi_worker" or os.environ.get("TF_CONFIG"):
        raise ConfigError(f"{sweep.origin.where('runtime.distribute')}: a sweep's workers each "
                          "train alone; unset TF_CONFIG and use distribute: auto")
    folder = worker.sweep_folder(sweep)
    url = storage.choose_url(cli_storage, sweep.settings.storage, folder)
    if url.startswith("sqlite"):   # the embedded database lives in the folder
        folder.mkdir(parents=True, exist_ok=True)
    study = worker.connect(sweep, url, warn)      # unreachable: one line, before any trial
    folder.joinpath("trials").mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "sweep.json", json.dumps(worker.describe(sweep, url), indent=2) + "\n")
    log(f"sweep {sweep.settings.study}: {sweep.settings.sampler} over "
        f"{', '.join(d.key for d in sweep.space)}; budget {sweep.settings.trials} trials; "
        f"storage {storage.shown(url)}")
    if workers > 1:
        code = run_processes(workers, argv, url, log, warn)
        worker.write_summary(worker.Worker(sweep, study, folder, log, warn))
        if code == EXIT_INTERRUPTED:
            raise interrupt.Interrupted("a worker was stopped; run the same command again to "
                                        "go on with the sweep")
        if code:
            raise SystemExit(code)
        return folder
    index = int(os.environ.get(WORKER_ENV, "0"))
    one = worker.Worker(sweep, study, folder, log, warn, index)
    try:
        worker.work(one)
    finally:
        worker.write_summary(one)
    return folder


def run_processes(count: int, argv: list[str], url: str, log: Log, warn: Log) -> int:
    """`count` copies of this command as one-worker processes, each on its own GPU (or its
    share of the CPU cores); a stop signal is passed on to all. The worst exit code."""
    gpus = devices.visible_gpus()
    if gpus and count > len(gpus):
        warn(f"WARNING: {count} workers on {len(gpus)} GPU(s): some share a GPU")
    children = []
    for index in range(count):
        env = worker_env(index, count, gpus, url)
        # Its own session: a terminal's Ctrl-C reaches the workers once, through pass_on,
        # not twice (a second signal means "stop now" to them).
        children.append(subprocess.Popen([sys.executable, "-m", "job", *argv, "--workers", "1"],
                                         env=env, start_new_session=True))
        log(f"worker {index} started (pid {children[-1].pid}"
            f"{', GPU ' + env['CUDA_VISIBLE_DEVICES'] if gpus else ''})")

    def pass_on(signum, frame):
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)
    previous = {sig: signal.signal(sig, pass_on) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        codes = [child.wait() for child in children]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log(f"workers done: exit codes {codes}")
    return EXIT_INTERRUPTED if EXIT_INTERRUPTED in codes else max(codes, key=abs)


def worker_env(index: int, count: int, gpus: list[str], url: str) -> dict[str, str]:
    """A worker's environment: its index, the storage, and its GPU or CPU threads (N
    processes each using every core would fight over them)."""
    return {**os.environ, WORKER_ENV: str(index), "OPTUNA_STORAGE": url,
            **devices.share_of(index, count, gpus)}
