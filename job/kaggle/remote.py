"""`kaggle-run`: train a config on Kaggle's own machines, through the official client only.

The job ships itself as a new version of the user's private code dataset, pushes a script
kernel that mounts it beside the competition's files, follows the kernel's session, and
brings its run folder home under runs/ for `make submit`. Everything the input alone
decides (the config, the accelerator against runtime.require_gpu, the slug) is checked
before anything is uploaded; the quota and the competition rules are asked next.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import job
from job.competition import rules_url
from job.config import Config
from job.errors import ConfigError, KaggleError
from job.kaggle import bundle as code_bundle
from job.kaggle import client as kaggle_client
from job.kaggle import kernel as kernels
from job.kaggle.follow import Status, follow
from job.kaggle.kernel import Accelerator, Target
from job.kaggle.session import Session

Log = Callable[[str], None]
LICENSE = "other"                 # a private dataset of the user's own code
DATASET_READY_MINUTES = 15.0      # how long a new version may take to be processed


@dataclass(frozen=True)
class Plan:
    """One kaggle-run, decided before anything is sent."""

    config: Config
    accelerator: Accelerator
    slug: str | None              # None: digit-job-<config name>


def check_plan(plan: Plan) -> None:
    """What the input alone decides, before any request."""
    if plan.slug is not None:
        kernels.check_slug(plan.slug)
    if not plan.accelerator.uses_gpu and plan.config.runtime.require_gpu:
        raise ConfigError(
            f"--accelerator none runs on Kaggle's CPUs but {plan.config.name}'s "
            "runtime.require_gpu is true: add --set runtime.require_gpu=false, or ask for a "
            "GPU with --accelerator t4x2")


def kaggle_run(plan: Plan, wait: bool, runs_dir: Path, log: Log, warn: Log, status: Status,
               project: Path | None = None) -> Path | None:
    """Upload, push and (unless not `wait`) follow; the run folder brought home, or None."""
    check_plan(plan)
    config = plan.config
    with tempfile.TemporaryDirectory(prefix="kaggle-run-") as tmp:
        code, folder = Path(tmp) / "code", Path(tmp) / "kernel"
        code.mkdir()
        folder.mkdir()
        # Zipped first: a key pasted into a config stops it before any request.
        made = code_bundle.write_bundle(project or Path(job.__file__).parent.parent, config,
                                        code)
        session = Session(config, log, warn)
        target = Target(session.owner(), plan.slug or kernels.default_slug(config))
        if config.data.source != "kaggle":
            log(f"data: the competition's files as Kaggle mounts them (the config's "
                f"data.source {config.data.source} applies on this machine only)")
        check_quota(session, plan.accelerator, log)
        check_rules(session)
        upload_code(session, target, code, made, log)
        wait_until_ready(session, target, log)
        version, url = push(session, target, plan.accelerator, made, folder, log, warn)
    target = replace(target, version=version)   # followed as pushed, not a later version
    if not wait:
        log(f"pushed {url} (version {version}); bring it home later with: "
            f"python -m job kaggle-run --follow {target.ref}")
        return None
    return follow(target, config, runs_dir, log, status, session=session)


def check_quota(session: Session, accelerator: Accelerator, log: Log) -> None:
    """Show the GPU hours left; none left stops a GPU run before the upload."""
    quota = session.call("reading your accelerator quota", session.api.quota_view)
    gpu = getattr(quota, "gpu_quota", None)
    if gpu is None or gpu.total_time_allowed is None:
        log("Kaggle GPU quota: not reported")
        return
    used = gpu.time_used.total_seconds() / 3600 if gpu.time_used else 0.0
    total = gpu.total_time_allowed.total_seconds() / 3600
    refresh = getattr(quota, "quota_refresh_time", None)
    when = f" (refreshes {refresh:%Y-%m-%d %H:%M} UTC)" if refresh else ""
    left = max(0.0, total - used)
    log(f"Kaggle GPU quota: {left:.1f} h of {total:.1f} h left this week{when}")
    if accelerator.uses_gpu and left <= 0:
        raise KaggleError(f"your Kaggle GPU quota is used up ({used:.1f} h of {total:.1f} h "
                          f"this week){when}: wait for it, or run on Kaggle's CPUs with "
                          "--accelerator none --set runtime.require_gpu=false")


def check_rules(session: Session) -> None:
    """The competition's files are listed only for an account that accepted its rules
    (a 403 then becomes the message with the rules' address)."""
    competition = session.config.competition
    session.call("listing the competition's files",
                 lambda: session.api.competition_list_files(competition))


def upload_code(session: Session, target: Target, folder: Path, made: code_bundle.Bundle,
                log: Log) -> None:
    """The archive as the first version of the private dataset, or as its next version."""
    meta = {"id": target.dataset, "title": f"{target.title} Code"[:50],
            "licenses": [{"name": LICENSE}],
            "description": "The digit-recognizer job's source, uploaded by kaggle-run."}
    (folder / "dataset-metadata.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    size = made.archive.stat().st_size
    if exists(session, target.dataset):
        log(f"uploading the job ({len(made.files)} files, {size / 1024:.0f} KiB) as a new "
            f"version of {target.dataset}")
        response = session.call("uploading the job", lambda: session.api.dataset_create_version(
            str(folder), f"kaggle-run {made.bundle_id[:12]}", quiet=True, dir_mode="skip"))
    else:
        log(f"uploading the job ({len(made.files)} files, {size / 1024:.0f} KiB) as the new "
            f"private dataset {target.dataset}")
        response = session.call("uploading the job", lambda: session.api.dataset_create_new(
            str(folder), public=False, quiet=True, dir_mode="skip"))
    error = getattr(response, "error", None)
    if error or str(getattr(response, "status", "ok") or "ok").lower() != "ok":
        raise KaggleError(f"Kaggle refused the code dataset {target.dataset}: "
                          f"{error or getattr(response, 'status', '')}; nothing was pushed")


def exists(session: Session, dataset: str) -> bool:
    """Whether the code dataset is there already (a 404 says it is not)."""
    import requests
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            session.api.dataset_status(dataset)
        return True
    except requests.HTTPError as e:
        if kaggle_client.status_of(e) == 404:
            return False
        raise kaggle_client.translate(e, "looking for the code dataset",
                                      session.config.competition, 1) from None
    except Exception as e:  # noqa: BLE001 - the client's failures become one line
        raise kaggle_client.translate(e, "looking for the code dataset",
                                      session.config.competition, 1) from None


def wait_until_ready(session: Session, target: Target, log: Log,
                     sleep: Callable[[float], None] = time.sleep) -> None:
    """A kernel mounts the version that is ready when it starts: wait for the new one."""
    deadline = time.monotonic() + DATASET_READY_MINUTES * 60
    shown = None
    while True:
        status = session.call("waiting for the code dataset",
                              lambda: session.api.dataset_status(target.dataset))
        if status == "ready":
            log(f"{target.dataset}: ready")
            return
        if status == "failed":
            raise KaggleError(f"Kaggle failed to process the upload of {target.dataset}; "
                              "nothing was pushed: rerun kaggle-run")
        if status != shown:
            log(f"{target.dataset}: {status.replace('_', ' ')}; waiting until it is ready")
            shown = status
        if time.monotonic() >= deadline:
            raise KaggleError(f"{target.dataset} is still {status} after "
                              f"{DATASET_READY_MINUTES:g} minutes; nothing was pushed: rerun "
                              "kaggle-run later")
        sleep(min(session.config.kaggle.poll_seconds, 10.0))


def push(session: Session, target: Target, accelerator: Accelerator,
         made: code_bundle.Bundle, folder: Path, log: Log, warn: Log) -> tuple[int, str]:
    """Write the kernel and push it; a refusal in the answer becomes one line."""
    settings = {"kernel": target.kernel, "dataset": target.dataset,
                "competition": session.config.competition, "accelerator": accelerator.value,
                "bundle": code_bundle.ARCHIVE, "marker": code_bundle.MARKER,
                "bundle_id": made.bundle_id, "config": made.config_path, "install": True}
    meta = kernels.write_kernel(folder, target, accelerator, session.config.competition,
                                settings)
    if accelerator is Accelerator.P100:
        warn("WARNING: Kaggle retired the P100: a session that asks for it runs on a T4")
    log(f"pushing the kernel {target.kernel} ({accelerator.value}, "
        f"machine_shape {meta.get('machine_shape', 'none')})")
    response = session.call("pushing the kernel",
                            lambda: session.api.kernels_push(str(folder)))
    refused(response, target, session.config.competition)
    version = getattr(response, "version_number", None) or 0
    if not version:   # no error and no version: the client's silent refusal
        raise KaggleError(f"Kaggle did not save a version of {target.kernel} and said no "
                          f"more; nothing runs: see {target.url}, then rerun kaggle-run")
    url = getattr(response, "url", None) or target.url
    log(f"pushed {url} (version {version})")
    return version, url


def refused(response: Any, target: Target, competition: str) -> None:
    """SaveKernel answers refusals with 200 and says why in its body."""
    error = getattr(response, "error", None) or ""
    if error:
        if "phone" in error.lower() or "verif" in error.lower():
            raise KaggleError(f"Kaggle refused the kernel: {error.splitlines()[0][:200]} "
                              "(internet and GPUs need a phone-verified account: "
                              "https://www.kaggle.com/settings)")
        raise KaggleError(f"Kaggle refused the kernel {target.kernel}: "
                          f"{error.splitlines()[0][:200]}")
    if getattr(response, "invalid_competition_sources", None):
        raise KaggleError(f"Kaggle would not attach {competition} to the kernel: accept the "
                          f"competition rules at {rules_url(competition)}, then rerun")
    if getattr(response, "invalid_dataset_sources", None):
        raise KaggleError(f"Kaggle would not attach {target.dataset} to the kernel: "
                          "rerun kaggle-run (the upload may not have been processed)")


