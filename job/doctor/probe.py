"""`python -m job.doctor.probe tensorflow|torch [REQUEST]`: one framework in a process of its
own, reporting as JSON on stdout (job.doctor.report.Report): its version and CUDA build, the
GPUs it sees, its timed steps, and the CUDA library files it mapped, each with its stack.

The image holds two CUDA stacks whose shared SONAMEs a process binds once, so every
framework is looked at alone, as it trains: the doctor's own process (`run`) imports
neither. REQUEST is JSON: {"config": the resolved config (job.config.to_dict), "variants":
[[name, jit, compute dtype], ...], "driver_gpus": N, "timing": true, "steps": null}; run by
hand without it, the probe uses the built-in config and shows the framework's own messages.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from job.doctor import stacks
from job.doctor.report import FRAMEWORKS, Report, error_text

MODULES = {"tensorflow": "job.doctor.probe_tf", "torch": "job.doctor.probe_torch"}
TIMEOUT_S = 900   # XLA compiles and ten steps per variant on a slow GPU take minutes at most
JOB_ROOT = str(Path(__file__).resolve().parents[2])


def run(framework: str, request: dict, timeout: float = TIMEOUT_S) -> Report:
    """Probe `framework` in a child process; a crash or a timeout is a report's error."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # Appended: in the image PYTHONPATH=/opt/torch must stay first (torch preloads its
    # CUDA libraries from the first sys.path entry that has them).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), JOB_ROOT) if p)
    command = [sys.executable, "-m", "job.doctor.probe", framework, json.dumps(request)]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Report(framework, error=f"its probe did not finish in {timeout:.0f} s")
    try:
        return Report.from_json(done.stdout)
    except (ValueError, TypeError):
        said = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        return Report(framework, error=f"its probe {ended(done.returncode)} without a report"
                                       + (f": {said[-1].strip()[:300]}" if said else ""))


def ended(code: int) -> str:
    """-11 → "crashed (SIGSEGV)"; 1 → "exited 1"."""
    if code < 0:
        try:
            return f"crashed ({signal.Signals(-code).name})"
        except ValueError:
            return f"crashed (signal {-code})"
    return f"exited {code}"


def probe(framework: str, request: dict) -> Report:
    """This process's report on `framework`: the one framework it imports."""
    pid = os.getpid()
    try:
        module = importlib.import_module(MODULES[framework])
        found = module.probe(config_of(request), with_variants(request))
    except ImportError as e:
        if e.name == framework:   # not a broken install's inner module: none at all
            return Report(framework, pid, installed=False)
        return failed(framework, e)
    except Exception as e:  # noqa: BLE001 - any failure is the report
        return failed(framework, e)
    places = stacks.places()
    libraries = stacks.classify_all(found.pop("mapped"), places)
    return Report(framework, pid, libraries=libraries, places=places, **found)


def failed(framework: str, error: BaseException) -> Report:
    """A report of what went wrong, with whatever CUDA libraries were mapped by then."""
    places = stacks.places()
    return Report(framework, os.getpid(), places=places,
                  libraries=stacks.classify_all(stacks.mapped(), places), error=error_text(error))


def config_of(request: dict):
    """The doctor's resolved config, rebuilt and checked field by field; else the built-in."""
    from job.config import Config
    from job.config.values import Origin, build
    raw = request.get("config")
    return Config() if raw is None else build(Config, raw, Origin("the doctor's request"), "")


def with_variants(request: dict) -> dict:
    """The request, with the built-in config's step variants when it names none."""
    if "variants" in request:
        return request
    from job.doctor.checks import step_variants
    return {**request, "variants": [v[:3] for v in step_variants(config_of(request))]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m job.doctor.probe",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("framework", choices=FRAMEWORKS)
    parser.add_argument("request", nargs="?", default="{}", help="JSON; see the module's doc")
    args = parser.parse_args(argv)
    request = json.loads(args.request)
    # stdout carries the report alone: whatever the framework prints goes to stderr.
    report_fd = os.dup(1)
    os.dup2(2, 1)
    report = probe(args.framework, request)
    sys.stdout.flush()
    with os.fdopen(report_fd, "w") as out:
        out.write(report.to_json() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
