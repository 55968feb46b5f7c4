"""The script a `kaggle-run` kernel runs on Kaggle's machine: unpack the job from the code
dataset, install its pinned requirements, run the doctor, then train the uploaded config
on the competition's mounted files, leaving one run folder under /kaggle/working.

It is pushed as the kernel's only source file, so it stands alone: the standard library
only, and nothing of `job` imported (the job is not installed yet when it starts).
`kaggle-run` fills in SETTINGS when it writes the kernel; JOB_KAGGLE_ROOT moves /kaggle
for a test that lays out the same folders in a temporary directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

SETTINGS: dict = {}  # filled in by kaggle-run: see job/kaggle/kernel.py

# What the local side reads back from the kernel's output, beside the run folder.
SESSION = "kaggle-session.json"
DOCTOR = "doctor.txt"
COMPETITION_FILES = ("train.csv", "test.csv", "sample_submission.csv")
# Searched this deep under /kaggle/input: Kaggle has mounted sources both at
# input/<slug> and at input/<kind>/<owner>/<slug>, and may unpack an uploaded zip.
SEARCH_DEPTH = 5


def say(line: str) -> None:
    """One line in the kernel's log, at once (the log is all the local side sees live)."""
    print(f"kaggle-run: {line}", flush=True)


class Failed(Exception):
    """A step that cannot go on: its message is the kernel log's last line."""


def walk(root: Path, depth: int = SEARCH_DEPTH):
    """Every folder under root, shallowest first, not following links out of it."""
    level = [root]
    for _ in range(depth + 1):
        following = []
        for folder in level:
            yield folder
            try:
                following += sorted(p for p in folder.iterdir()
                                    if p.is_dir() and not p.is_symlink())
            except OSError:
                continue
        level = following


def find_bundle(input_dir: Path, settings: dict) -> Path:
    """The job's source from the code dataset: the zip as uploaded, or the folder Kaggle
    unpacked it into; either way the one whose marker names this very upload."""
    wanted, marker = settings["bundle"], settings["marker"]
    seen = []
    for folder in walk(input_dir):
        candidates = []
        if (folder / wanted).is_file():
            candidates.append(folder / wanted)
        if (folder / marker).is_file():
            candidates.append(folder)
        for found in candidates:
            stamp = read_marker(found, marker)
            if stamp.get("bundle_id") == settings["bundle_id"]:
                return found
            seen.append(f"{found} ({stamp.get('bundle_id', 'no id')})")
    if seen:
        raise Failed(f"the code dataset mounted is another upload than this kernel's "
                     f"({settings['bundle_id']}): found {', '.join(seen)}; rerun kaggle-run")
    raise Failed(f"no {wanted} under {input_dir}: the kernel lacks the dataset "
                 f"{settings['dataset']}; rerun kaggle-run")


def read_marker(found: Path, marker: str) -> dict:
    try:
        if found.is_dir():
            return json.loads((found / marker).read_text(encoding="utf-8"))
        with zipfile.ZipFile(found) as archive:
            return json.loads(archive.read(marker))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return {}


def unpack(found: Path, into: Path) -> Path:
    """The job's source tree in a scratch folder (the input mount is read-only, and
    /kaggle/working is the kernel's output: source there would come home with the run)."""
    if found.is_dir():
        shutil.copytree(found, into, dirs_exist_ok=True)
    else:
        with zipfile.ZipFile(found) as archive:
            archive.extractall(into)
    return into


def find_competition(input_dir: Path, competition: str) -> Path:
    """The mounted competition folder: the one named after it, else any holding its files."""
    holding = [f for f in walk(input_dir)
               if all((f / name).is_file() for name in COMPETITION_FILES)]
    for folder in holding:
        if folder.name == competition:
            return folder
    if holding:
        return holding[0]
    raise Failed(f"no {competition} files ({', '.join(COMPETITION_FILES)}) under {input_dir}: "
                 f"the kernel needs competition_sources [{competition}] and the rules accepted")


def link_data(competition_dir: Path, into: Path) -> Path:
    """A writable data folder whose CSVs are the mounted ones (the job caches its parsed
    arrays beside them, which the read-only mount would refuse)."""
    into.mkdir(parents=True, exist_ok=True)
    for name in COMPETITION_FILES:
        target = into / name
        if not target.exists():
            target.symlink_to(competition_dir / name)
    return into


def run(argv: list[str], cwd: Path, capture: bool = False) -> subprocess.CompletedProcess:
    """A step of the job, its output in the kernel log (or captured, to keep as well)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(argv, cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.STDOUT if capture else None)


def install(source: Path) -> None:
    """The pinned requirements; a failure ends the kernel with pip's own last lines."""
    say(f"installing {source / 'requirements.txt'}")
    done = run([sys.executable, "-m", "pip", "install", "--quiet", "--no-input",
                "--disable-pip-version-check", "-r", str(source / "requirements.txt")],
               source, capture=True)
    if done.returncode != 0:
        print(done.stdout[-4000:], flush=True)
        raise Failed(f"pip could not install the pinned requirements (exit {done.returncode});"
                     " the kernel needs internet (enable_internet) and a phone-verified account")


def doctor(source: Path, config: str, working: Path) -> dict:
    """The doctor's findings, in the log and kept (its exit only says whether it found
    problems: whether those stop the run is the config's call, made by `train`)."""
    say("python -m job doctor")
    done = run([sys.executable, "-m", "job", "doctor", "--config", config], source, capture=True)
    print(done.stdout, end="", flush=True)
    (working / DOCTOR).write_text(done.stdout, encoding="utf-8")
    return {"exit": done.returncode, "gpu": gpu_line(done.stdout)}


def gpu_line(report: str) -> str:
    """The doctor's GPU 0 line (name, memory, capability), else its driver line."""
    lines = [line.split(None, 1)[1] for line in report.splitlines() if len(line.split()) > 1]
    for prefix in ("GPU 0:", "NVIDIA driver:"):
        for line in lines:
            if line.startswith(prefix):
                return line
    return "no NVIDIA driver found"


def train(source: Path, config: str, data_dir: Path, runs_dir: Path) -> int:
    """`python -m job train` on the competition's files, its runs under /kaggle/working."""
    argv = [sys.executable, "-m", "job", "train", "--config", config,
            "--set", "data.source=kaggle", "--set", f"data.dir={data_dir}",
            "--set", f"output.runs_dir={runs_dir}"]
    say("python -m job train --config " + config)
    return run(argv, source).returncode


def the_run(runs_dir: Path) -> Path | None:
    """The run folder train made (the only one: this kernel starts with none)."""
    found = [p for p in sorted(runs_dir.glob("*"))
             if p.is_dir() and not p.is_symlink() and (p / "manifest.json").is_file()]
    return found[-1] if found else None


def main() -> int:
    settings = SETTINGS
    root = Path(os.environ.get("JOB_KAGGLE_ROOT", "/kaggle"))
    input_dir, working = root / "input", root / "working"
    working.mkdir(parents=True, exist_ok=True)
    session = {"kernel": settings.get("kernel"), "accelerator": settings.get("accelerator"),
               "bundle_id": settings.get("bundle_id"), "started": time.time(),
               "status": "failed", "run": None}
    try:
        found = find_bundle(input_dir, settings)
        scratch = Path(tempfile.mkdtemp(prefix="digit-job-"))
        source = unpack(found, scratch / "src")
        data_dir = link_data(find_competition(input_dir, settings["competition"]),
                             scratch / "data")
        if settings.get("install", True):
            install(source)
        session["doctor"] = doctor(source, settings["config"], working)
        code = train(source, settings["config"], data_dir, working / "runs")
        run_dir = the_run(working / "runs")
        session["run"] = run_dir.name if run_dir else None
        latest = working / "runs" / "latest"
        if latest.is_symlink():   # a link would come home as a second copy, or not at all
            latest.unlink()
        if code != 0:
            raise Failed(f"python -m job train ended with exit status {code}; its last "
                         "lines above say why")
        session["status"] = "complete"
        return 0
    except Failed as e:
        session["error"] = str(e)
        say(f"error: {e}")
        return 1
    finally:
        session["finished"] = time.time()
        (working / SESSION).write_text(json.dumps(session, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
