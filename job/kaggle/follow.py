"""Following a pushed kernel to its end and bringing its output home: the run folder into
runs/<id> in one rename, or what an unsuccessful kernel left into runs/kaggle-failed/."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Protocol

from job.config import Config
from job.errors import JobError, KaggleError, RunError
from job.kaggle import client as kaggle_client
from job.kaggle import kernel as kernels
from job.kaggle import runner
from job.kaggle.kernel import Ended, Target
from job.kaggle.session import Session
from job.outputs.folder import MANIFEST, Run, create_run, mark_latest, read_run, utc_now
from job.system import interrupt
from job.system.interrupt import Interrupted

Log = Callable[[str], None]
KAGGLE_FOLDER = "kaggle"          # inside a run brought home: the kernel's log, doctor, session
FAILED_DIR = "kaggle-failed"      # runs/kaggle-failed/<slug>-<time>: what an errored kernel left
TAIL_LINES = 15
SLICE_SECONDS = 0.5             # how soon a stop between polls takes effect


class Status(Protocol):
    """The one status line the command line draws (job.outputs.live.StatusLine): redrawn in
    place on a terminal, a new line per change elsewhere."""

    def show(self, text: str, changed: bool) -> None: ...

    def done(self) -> None: ...


def follow(target: Target, config: Config, runs_dir: Path, log: Log, status: Status,
           session: Session | None = None,
           sleep: Callable[[float], None] = time.sleep) -> Path:
    """Poll the kernel's session to its end, then bring its output home."""
    session = session or Session(config, log, log)
    started, shown, failure = time.monotonic(), None, ""
    stopped = Interrupted(f"stopped following {target.ref}; the kernel runs on: pick it up "
                          f"with python -m job kaggle-run --follow {target.ref}")
    # Ctrl-C and SIGTERM only set a flag, checked between polls: a KeyboardInterrupt that
    # lands inside a finalizer of the HTTP stack is printed and lost, and the loop polled on
    # (seen once under load in CI); a second signal still raises at once.
    try:
        with interrupt.catching():
            while True:
                answer = poll(session, target)
                name = getattr(getattr(answer, "status", None), "name", "QUEUED")
                failure = getattr(answer, "failure_message", "") or ""
                status.show(f"{target.ref}: {name.lower().replace('_', ' ')}, "
                            f"{elapsed(time.monotonic() - started)} followed",
                            changed=name != shown)
                shown = name
                if name in kernels.ENDINGS:
                    break
                if pause(config.kaggle.poll_seconds, sleep):
                    raise stopped
    except KeyboardInterrupt:
        raise stopped from None
    finally:
        status.done()
    return bring_home(session, target, kernels.ENDINGS[name], failure, Path(runs_dir), log)


def poll(session: Session, target: Target) -> Any:
    """The session's status; a lost connection says how to pick the kernel up again."""
    try:
        return session.call(f"following {target.ref}", lambda: ask_status(session.api, target))
    except NoSuchKernel:
        raise
    except KaggleError as e:
        raise KaggleError(f"lost contact with Kaggle while following {target.ref} "
                          f"({str(e).rstrip('.')}); the kernel runs on: pick it up with "
                          f"python -m job kaggle-run --follow {target.ref}") from None


def pause(seconds: float, sleep: Callable[[float], None]) -> bool:
    """Wait between polls in half-second slices; True as soon as a stop was asked for
    (time.sleep is not cut short by a signal whose handler only sets a flag)."""
    slices = max(1, math.ceil(seconds / SLICE_SECONDS))
    for _ in range(slices):
        if interrupt.requested():
            return True
        sleep(seconds / slices)
    return interrupt.requested()


def elapsed(seconds: float) -> str:
    """h:mm:ss, the way a session's time reads on Kaggle's page."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def bring_home(session: Session, target: Target, ended: Ended, failure: str, runs_dir: Path,
               log: Log) -> Path:
    """The kernel's output into a staging folder beside the runs, then its run folder into
    runs/<id> in one rename; what an unsuccessful kernel left is kept in runs/kaggle-failed/."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".kaggle-{target.slug}-", dir=runs_dir))
    try:
        fetch_output(session, target, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)   # a broken download: nothing to keep
        raise
    session_file = read_session(staging)
    if ended is Ended.COMPLETE and session_file.get("status") == "complete":
        try:
            home = install_run(target, staging, session_file, runs_dir, log)
        except JobError as e:
            raise KaggleError(f"{e}; the kernel's output is kept in "
                              f"{keep_failed(target, staging, runs_dir)}") from None
        shutil.rmtree(staging, ignore_errors=True)
        return home
    kept = keep_failed(target, staging, runs_dir)
    show_tail(kept, target, log)
    raise KaggleError(failure_line(target, ended, failure, session_file, kept))


class NoSuchKernel(KaggleError):
    """--follow named a kernel Kaggle does not show this account."""


def ask_status(api: Any, target: Target) -> Any:
    """The session's status; an unknown or foreign kernel is said plainly."""
    import requests
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return api.kernels_status(target.ref)
    except requests.HTTPError as e:
        if kaggle_client.status_of(e) == 404:
            raise NoSuchKernel(f"Kaggle has no kernel {target.ref}: check the name "
                               "kaggle-run printed") from None
        raise
    except ValueError:   # the client's word for a 401/403 on a kernel
        raise NoSuchKernel(f"Kaggle will not show {target.ref} to this account: follow a "
                           "kernel of your own, signed in as its owner") from None


def fetch_output(session: Session, target: Target, into: Path) -> None:
    """Every output file and the log; a retry starts from an empty folder."""
    def fetch() -> None:
        for child in into.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        session.api.kernels_output(target.ref, str(into), force=True, quiet=True)
    session.call(f"downloading the output of {target.ref}", fetch)


def read_session(staging: Path) -> dict:
    """What the runner wrote about itself; {} when the kernel died before it could."""
    try:
        found = json.loads((staging / runner.SESSION).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def install_run(target: Target, staging: Path, session_file: dict, runs_dir: Path,
                log: Log) -> Path:
    """Check the run folder that came back, say where it ran, and move it into runs/."""
    name = str(session_file.get("run") or "")
    source = staging / "runs" / name
    if not name or "/" in name or not (source / MANIFEST).is_file():
        raise RunError(f"the output of {target.ref} holds no run folder (runs/{name}): "
                       f"see {target.url}")
    record = read_run(source)
    if record.status != "complete":
        raise RunError(f"the run {name} from {target.ref} is {record.status}: "
                       f"see {target.url}")
    extras = source / KAGGLE_FOLDER
    extras.mkdir(exist_ok=True)
    for item in [staging / runner.DOCTOR, staging / runner.SESSION, *staging.glob("*.log")]:
        if item.is_file():
            os.replace(item, extras / item.name)
    doctor = session_file.get("doctor") if isinstance(session_file.get("doctor"), dict) else {}
    manifest = dict(record.manifest)
    manifest["where"] = {"place": "kaggle", "kernel": target.kernel,
                         "version": target.version, "url": target.url,
                         "accelerator": session_file.get("accelerator"),
                         "gpu": doctor.get("gpu"), "fetched": utc_now().isoformat(
                             timespec="seconds")}
    Run(source).write_json(MANIFEST, manifest)
    home = create_run(runs_dir, "", name=name)   # an empty folder of its own, never another's
    os.replace(source, home.path)
    mark_latest(Run(home.path))
    log(f"brought {target.ref}'s run home: {home.path} (submit it with "
        f"make submit RUN={home.path})")
    return home.path


def keep_failed(target: Target, staging: Path, runs_dir: Path) -> Path:
    """What an errored kernel left (its log, the doctor, any partial run), kept aside."""
    version = f"-v{target.version}" if target.version else ""
    kept = runs_dir / FAILED_DIR / f"{target.slug}{version}-{utc_now():%Y%m%dT%H%M%SZ}"
    kept.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, kept)
    return kept


def show_tail(kept: Path, target: Target, log: Log) -> None:
    """The log's last lines and the doctor's problems, the first place to look."""
    logs = sorted(kept.glob("*.log"))
    text = kernels.log_text(logs[0].read_text(encoding="utf-8", errors="replace")) if logs else ""
    (kept / "kernel.txt").write_text(text, encoding="utf-8")
    tail = [line for line in text.splitlines() if line.strip()][-TAIL_LINES:]
    if tail:
        log(f"the last lines of {target.ref}'s log:")
        for line in tail:
            log(f"  | {line}")
    doctor = kept / runner.DOCTOR
    problems = [line for line in (doctor.read_text(encoding="utf-8").splitlines()
                                  if doctor.is_file() else []) if line.startswith("PROBLEM")]
    for line in problems:
        log(f"  doctor: {line}")


def failure_line(target: Target, ended: Ended, failure: str, session_file: dict,
                 kept: Path) -> str:
    """The one line an unsuccessful kernel ends kaggle-run with."""
    where = f"its log and output are kept in {kept}"
    if kernels.timed_out(failure):
        return (f"Kaggle stopped {target.ref} at its session time limit ({failure.strip()}):"
                f" train fewer epochs or models per run; {where}")
    if ended is Ended.CANCELLED:
        return f"{target.ref} was cancelled on Kaggle; {where}"
    why = session_file.get("error") or failure.strip() or "no reason given"
    return f"{target.ref} ended in error: {why}; {where}"
