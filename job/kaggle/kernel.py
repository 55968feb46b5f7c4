"""The kernel `kaggle-run` pushes: its names, its metadata, its script, and what its status
means. Pure: nothing here talks to Kaggle (job.kaggle.remote does)."""

from __future__ import annotations

import json
import pprint
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from job.config import Config
from job.errors import ConfigError

METADATA = "kernel-metadata.json"
SCRIPT = "digit-job-runner.py"
SETTINGS_LINE = "SETTINGS: dict = {}  # filled in by kaggle-run: see job/kaggle/kernel.py"
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{3,43}[a-z0-9]$")   # + "-code" stays within 50
REF = re.compile(r"^(?P<owner>[A-Za-z0-9_-]+)/(?P<slug>[a-z0-9][a-z0-9-]*[a-z0-9])"
                 r"(?:/(?P<version>[1-9][0-9]*))?$")


class Accelerator(Enum):
    """What `--accelerator` asks Kaggle for, as the `machine_shape` the API takes
    (`enable_gpu` alone is deprecated, and used to give a P100)."""

    T4X2 = "t4x2"
    P100 = "p100"
    NONE = "none"

    @property
    def machine_shape(self) -> str | None:
        return {"t4x2": "NvidiaTeslaT4", "p100": "NvidiaTeslaP100", "none": None}[self.value]

    @property
    def uses_gpu(self) -> bool:
        return self is not Accelerator.NONE


class Ended(Enum):
    """How a kernel session can end, from its KernelWorkerStatus name."""

    COMPLETE = "complete"
    ERROR = "error"
    CANCELLED = "cancelled"


ENDINGS = {"COMPLETE": Ended.COMPLETE, "ERROR": Ended.ERROR,
           "CANCEL_ACKNOWLEDGED": Ended.CANCELLED}


@dataclass(frozen=True)
class Target:
    """Where one config runs on Kaggle: the user's kernel (one version of it, once pushed)
    and its code dataset."""

    owner: str
    slug: str
    version: int | None = None    # None: the newest

    @property
    def ref(self) -> str:
        """OWNER/SLUG[/VERSION]: what the client's status and output calls take."""
        return self.kernel + (f"/{self.version}" if self.version else "")

    @property
    def kernel(self) -> str:
        return f"{self.owner}/{self.slug}"

    @property
    def dataset(self) -> str:
        return f"{self.owner}/{self.slug}-code"

    @property
    def title(self) -> str:
        """A title Kaggle turns back into the slug (else the client warns and Kaggle may
        name the kernel otherwise)."""
        return self.slug.replace("-", " ").title()

    @property
    def url(self) -> str:
        return f"https://www.kaggle.com/code/{self.kernel}"


def default_slug(config: Config) -> str:
    """digit-job-<config name>: one kernel (and its versions) per config."""
    return re.sub(r"[^a-z0-9]+", "-", f"digit-job-{config.name}".lower()).strip("-")[:45]


def check_slug(slug: str) -> str:
    if not SLUG.match(slug):
        raise ConfigError(f"--slug {slug!r}: expected 5 to 45 lowercase letters, digits and "
                          "dashes (Kaggle's kernel slug; the code dataset adds -code)")
    return slug


def parse_ref(text: str) -> Target:
    """`--follow OWNER/SLUG[/VERSION]`, as kaggle-run printed it."""
    found = REF.match(text.strip())
    if not found:
        raise ConfigError(f"--follow {text!r}: expected OWNER/KERNEL-SLUG[/VERSION], e.g. "
                          "alice/digit-job-smoke/3, as kaggle-run printed it")
    return Target(found["owner"], found["slug"],
                  int(found["version"]) if found["version"] else None)


def metadata(target: Target, accelerator: Accelerator, competition: str) -> dict:
    """kernel-metadata.json: a private script kernel beside the competition and the code."""
    meta = {"id": target.kernel, "title": target.title, "code_file": SCRIPT,
            "language": "python", "kernel_type": "script", "is_private": True,
            # pip needs the internet for the pinned installs.
            "enable_internet": True, "enable_gpu": accelerator.uses_gpu,
            "competition_sources": [competition], "dataset_sources": [target.dataset],
            "kernel_sources": [], "model_sources": []}
    if accelerator.machine_shape:
        meta["machine_shape"] = accelerator.machine_shape
    return meta


def script(settings: dict) -> str:
    """runner.py with its SETTINGS filled in: the kernel's one source file."""
    source = (Path(__file__).with_name("runner.py")).read_text(encoding="utf-8")
    if source.count(SETTINGS_LINE) != 1:
        raise AssertionError("job/kaggle/runner.py lost its SETTINGS line")
    # A Python literal (JSON's true/false would not parse as Python).
    filled = "SETTINGS: dict = " + pprint.pformat(settings, sort_dicts=True)
    return source.replace(SETTINGS_LINE, filled)


def write_kernel(folder: Path, target: Target, accelerator: Accelerator, competition: str,
                 settings: dict) -> dict:
    """The folder `kernels push` reads; returns the metadata written."""
    meta = metadata(target, accelerator, competition)
    (folder / METADATA).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    (folder / SCRIPT).write_text(script(settings), encoding="utf-8")
    return meta


def log_text(raw: str) -> str:
    """A kernel log as lines: Kaggle sends a JSON list of {stream_name, time, data}; a
    plain text log (or anything else) is kept as it is."""
    try:
        entries = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return raw
    return "".join(str(e.get("data", "")) for e in entries)


def timed_out(failure: str) -> bool:
    """Kaggle's word for a session stopped at its time limit."""
    return bool(re.search(r"time ?limit|timed? ?out|exceeded the maximum|maximum run time",
                          failure, re.IGNORECASE))
