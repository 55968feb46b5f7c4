"""manifest.json: what produced a run, so it can be trusted and reproduced."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import job
from job.config import Config
from job.config.values import hide_passwords
from job.outputs.folder import utc_now
from job.system.devices import visible_gpus


def versions() -> dict:
    """Versions of the libraries whose behaviour decides the results."""
    import numpy
    # Read from the installed packages' metadata: the process that plans a run imports
    # no framework (each model's worker imports its own).
    return {"job": job.__version__, "python": platform.python_version(),
            "tensorflow": installed("tensorflow"), "keras": installed("keras"),
            "torch": installed("torch"), "numpy": numpy.__version__,
            "scikit-learn": installed("scikit-learn")}


def installed(distribution: str) -> str | None:
    """A package's installed version, read without importing it, or None where it is not
    installed (a torch-only machine has no TensorFlow)."""
    from importlib import metadata
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def devices() -> list[str]:
    """The devices the run's workers are given: the GPUs NVML shows, and the CPU."""
    return ["CPU:0"] + [f"GPU:{index}" for index in visible_gpus()]


def git_commit() -> str | None:
    """The job's source commit (with `-dirty` for local edits), when run from a checkout."""
    root = Path(__file__).resolve().parents[2]   # job/outputs/manifest.py → the checkout
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "job"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def masked(args: list[str]) -> list[str]:
    """The command line with any URL's password replaced by *** (`sweep --storage
    postgresql://...`): a run folder never holds one."""
    return [hide_passwords(a) for a in args]


def start(config: Config) -> dict:
    """The manifest as written when a run begins."""
    return {"status": "running", "config": config.name, "command": masked(sys.argv[1:]),
            "started": utc_now().isoformat(timespec="seconds"), "finished": None,
            "versions": versions(), "git_commit": git_commit(), "devices": devices(),
            "seeds": {"data": config.data.seed, "train": config.train.seed}}


def describe_data(prepared) -> dict:
    """Which data, where, and the hashes that identify it."""
    arrays, split = prepared.arrays, prepared.split
    return {"source": prepared.source.kind, "reason": prepared.source.reason,
            "dir": str(prepared.dir), "sha256": arrays.hashes,
            "train_rows": len(arrays.train_images), "fit_rows": len(split.train_x),
            "val_rows": len(split.val_x), "test_rows": len(arrays.test_images)}


def finish(record: dict, status: str, error: str | None = None) -> None:
    """Stamp the end of a run."""
    record.update(status=status, finished=utc_now().isoformat(timespec="seconds"))
    if error:
        record["error"] = error
