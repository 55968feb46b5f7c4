"""Launch sky/train.yaml or sky/sweep.yaml as SkyPilot managed jobs, once this machine has
checked what the input alone decides: the config loads, the bucket name is one, the Kaggle
credentials and the sweep's database URL are there, and no file SkyPilot would upload holds
a credential. A mistake is one `error:` line and exit 2, before SkyPilot is called.

Run by the job's own venv (`make sky-train`, `make sky-sweep`): it reads configs with the
job's loader, then replaces itself with the `sky` of SkyPilot's venv (make sky-venv), whose
pins do not fit the job's. Secret values reach `sky` through its environment only, named
with `--secret NAME`: never on a command line, in a file or in what is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
SKY = ROOT / ".sky-venv" / "bin" / "sky"
TASKS = {"train": "sky/train.yaml", "sweep": "sky/sweep.yaml"}
# GCS, S3, Azure and R2 all accept these: 3-63 lowercase letters, digits, dots and hyphens.
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
EXIT_BAD_INPUT = 2


class LaunchError(Exception):
    """What is wrong with the launch and what to do, in one line."""


@dataclass
class Launch:
    """The `sky jobs launch` to run: its arguments, and the secrets it passes by name."""

    argv: list[str]
    secrets: dict[str, str] = field(default_factory=dict)

    def shown(self) -> str:
        """The command as a user could type it; secrets appear by name only."""
        return " ".join(shlex.quote(a) for a in self.argv)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sky/launch.py", description=__doc__.split("\n\n")[0])
    tasks = parser.add_subparsers(dest="task", required=True)
    train = tasks.add_parser("train", help="one training run (sky/train.yaml)")
    train.add_argument("--config", type=Path, default=Path("configs/gpu.yaml"),
                       help="config under configs/ (default configs/gpu.yaml)")
    train.add_argument("--submit", action="store_true",
                       help="submit the run to Kaggle from the VM once it is complete")
    sweep = tasks.add_parser("sweep", help="N sweep workers on one study (sky/sweep.yaml)")
    sweep.add_argument("--config", type=Path, default=Path("configs/sweep.yaml"),
                       help="sweep file under configs/ (default configs/sweep.yaml)")
    sweep.add_argument("--jobs", type=int, default=1, help="managed jobs, one VM each")
    sweep.add_argument("--study", help="the study (default: the sweep file's sweep.study)")
    for each in (train, sweep):
        each.add_argument("--bucket", default=os.environ.get("SKY_BUCKET", ""),
                          help="bucket for the runs, created on first use (default: env "
                          "SKY_BUCKET)")
        each.add_argument("--gpus", help="one GPU type instead of the task's list, e.g. A100:1")
        each.add_argument("--on-demand", action="store_true",
                          help="on-demand VMs instead of Spot (never preempted, dearer)")
        each.add_argument("--name", help="the managed job's name (default from the config)")
        each.add_argument("--yes", action="store_true", help="skip SkyPilot's confirmation")
        each.add_argument("--detach", action="store_true",
                          help="return once launched instead of streaming the log")
        each.add_argument("--dry-run", action="store_true",
                          help="check everything and print the sky command; launch nothing")
        each.add_argument("--sky", type=Path, default=SKY, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def under_configs(path: Path) -> str:
    """The config as the VM sees it, relative to the repository: the VM gets this repository
    (SkyPilot's workdir) and the image mounts configs/, so the file must be in configs/."""
    full = (Path.cwd() / path).resolve()
    try:
        relative = full.relative_to(ROOT / "configs")
    except ValueError:
        raise LaunchError(f"--config {path}: expected a file under configs/ (the VM gets "
                          "this repository and the image mounts configs/)") from None
    if not full.is_file():
        raise LaunchError(f"--config {path}: file not found")
    return f"configs/{relative.as_posix()}"


def check_bucket(bucket: str) -> str:
    if not bucket:
        raise LaunchError("no bucket: set BUCKET=<name> (or env SKY_BUCKET), a bucket of your "
                          "cloud for the runs; SkyPilot creates it on first use")
    if not BUCKET.fullmatch(bucket) or ".." in bucket:
        raise LaunchError(f"bucket {bucket!r}: expected 3-63 lowercase letters, digits, dots "
                          "and hyphens, starting and ending with a letter or digit")
    return bucket


def job_name(text: str) -> str:
    """A SkyPilot job name: lowercase letters, digits and hyphens, starting with a letter."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return name if name[:1].isalpha() else f"job-{name}"


def kaggle_secrets(env: dict[str, str], home: Path, needed: bool) -> dict[str, str]:
    """The Kaggle credentials as SkyPilot secrets: from the environment, else read from the
    file the client would use. None where the config does not need them is fine."""
    from job.data.sources import find_credentials
    found = find_credentials(env, home)
    if found == "KAGGLE_API_TOKEN":
        return {"KAGGLE_API_TOKEN": env["KAGGLE_API_TOKEN"]}
    if found == "KAGGLE_USERNAME/KAGGLE_KEY":
        return {"KAGGLE_USERNAME": env["KAGGLE_USERNAME"], "KAGGLE_KEY": env["KAGGLE_KEY"]}
    if found is None:
        if needed:
            raise LaunchError("no Kaggle credentials (~/.kaggle/kaggle.json, KAGGLE_USERNAME "
                              "and KAGGLE_KEY, or KAGGLE_API_TOKEN): the VM downloads the "
                              "competition data with them")
        return {}
    path = Path(found)
    try:
        text = path.read_text(encoding="utf-8").strip()
        if path.name == "kaggle.json":
            data = json.loads(text)
            return {"KAGGLE_USERNAME": str(data["username"]), "KAGGLE_KEY": str(data["key"])}
    except (OSError, ValueError, KeyError, TypeError):
        raise LaunchError(f"{path}: not a readable kaggle.json with username and key; save "
                          "a new one from https://www.kaggle.com/settings") from None
    if path.name.startswith("access_token") and text:
        return {"KAGGLE_API_TOKEN": text}
    raise LaunchError(f"{path}: a VM cannot use these credentials; create an API token at "
                      "https://www.kaggle.com/settings and set KAGGLE_API_TOKEN")


def database_secret(env: dict[str, str]) -> dict[str, str]:
    """OPTUNA_STORAGE, from the environment only: the jobs of a sweep share one study only
    in a database server. Its value is never shown; a problem names the variable."""
    url = env.get("OPTUNA_STORAGE", "")
    if not url:
        raise LaunchError("OPTUNA_STORAGE is not set: export OPTUNA_STORAGE=postgresql://"
                          "user:password@host:5432/db, the study's database "
                          "(docs/sweeps-cloud.md)")
    parts = urlsplit(url)
    if not re.fullmatch(r"postgresql(\+[a-z0-9]+)?", parts.scheme) or not parts.hostname:
        raise LaunchError("OPTUNA_STORAGE is not a postgresql://user:password@host/db URL: "
                          "jobs on several VMs share a study only in a database server")
    if parts.hostname in ("localhost", "127.0.0.1", "::1"):
        raise LaunchError(f"OPTUNA_STORAGE names {parts.hostname}: the VMs need the "
                          "database's address as they reach it")
    return {"OPTUNA_STORAGE": url}


def uploaded_files() -> list[Path]:
    """What SkyPilot uploads as the workdir: the repository less what .gitignore names."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True, check=False)
    if listed.returncode != 0:
        return [p for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts]
    return [ROOT / n for n in listed.stdout.decode().split("\0") if n and (ROOT / n).is_file()]


def refuse_uploaded_secrets(values: list[str]) -> None:
    """Stop where a file SkyPilot would copy to the VM is a credential or holds one."""
    from job.kaggle.bundle import CREDENTIAL_NAMES
    needles = [v.encode() for v in values if len(v) >= 8]
    for path in uploaded_files():
        name = path.relative_to(ROOT).as_posix()
        if path.name in CREDENTIAL_NAMES or path.name == ".env" or path.suffix == ".env":
            raise LaunchError(f"{name}: a credential file inside the repository would be "
                              "uploaded with it: move it out (or add it to .gitignore)")
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if any(n in data for n in needles):
            raise LaunchError(f"{name} holds one of your credentials and would be uploaded "
                              "with the repository: remove it from the file")


def sweep_envs(config: Path, study: str | None) -> tuple[list[str], str]:
    """The sweep task's envs: the sweep file, its study and the plain config it extends
    (what the doctor checks), after the job's own loader has checked the sweep file."""
    from job.config.loading import read_yaml
    from job.config.sweep import load_sweep
    relative = under_configs(config)
    sweep = load_sweep(ROOT / relative)
    name = study or sweep.settings.study
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
        raise LaunchError(f"study {name!r}: expected letters, digits, . _ -")
    doctor, path = "configs/gpu.yaml", ROOT / relative
    while "sweep" in (raw := read_yaml(path)) and isinstance(raw.get("extends"), str):
        path = path.parent / raw["extends"]
    if "sweep" not in read_yaml(path) and path.resolve().is_relative_to(ROOT / "configs"):
        doctor = path.resolve().relative_to(ROOT).as_posix()
    return [f"CONFIG={relative}", f"STUDY={name}", f"DOCTOR_CONFIG={doctor}"], name


def plan(args: argparse.Namespace, env: dict[str, str], home: Path) -> Launch:
    """Every check, then the command; nothing is started."""
    from job.config import load_config
    bucket = check_bucket(args.bucket)
    if args.task == "train":
        relative = under_configs(args.config)
        config = load_config(ROOT / relative)
        envs = [f"CONFIG={relative}"] + (["SUBMIT=true"] if args.submit else [])
        secrets = kaggle_secrets(env, home, config.data.source != "sample" or args.submit)
        name = args.name or job_name(f"digit-job-{config.name}")
    else:
        if args.jobs < 1:
            raise LaunchError(f"--jobs {args.jobs}: expected a positive number of jobs")
        envs, study = sweep_envs(args.config, args.study)
        secrets = {**database_secret(env), **kaggle_secrets(env, home, True)}
        name = args.name or job_name(f"digit-job-sweep-{study}")
    # The user name is no secret, and may well be written in the repository (a config).
    refuse_uploaded_secrets([v for k, v in secrets.items() if k != "KAGGLE_USERNAME"])
    argv = [str(args.sky), "jobs", "launch", TASKS[args.task], "--name", name,
            "--env", f"RUNS_BUCKET={bucket}"]
    for item in envs:
        argv += ["--env", item]
    for secret in secrets:
        argv += ["--secret", secret]   # by name: sky reads the value from its environment
    if args.task == "sweep":
        argv += ["--num-jobs", str(args.jobs)]
    if args.gpus:
        argv += ["--gpus", args.gpus]
    flags = {"--no-use-spot": args.on_demand, "--detach-run": args.detach, "--yes": args.yes}
    argv += [flag for flag, wanted in flags.items() if wanted]
    return Launch(argv, secrets)


def main(argv: list[str] | None = None) -> int:
    from job.errors import JobError
    args = parse_args(argv)
    env = dict(os.environ)
    try:
        launch = plan(args, env, Path(env.get("HOME") or Path.home()))
        if not args.dry_run and not args.sky.is_file():
            raise LaunchError(f"{args.sky}: SkyPilot is not installed: run make sky-venv "
                              "(SKY_CLOUDS=gcp,aws,... for your clouds)")
    except (LaunchError, JobError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"sky/launch.py: {launch.shown()}", file=sys.stderr, flush=True)
    if args.dry_run:
        print("sky/launch.py: dry run: nothing was launched", file=sys.stderr)
        return 0
    os.chdir(ROOT)   # the task files' workdir `.` is this repository
    os.execve(str(args.sky), launch.argv, {**env, **launch.secrets})
    return 0   # not reached: exec replaced this process


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))   # the job's modules, when run as sky/launch.py
    sys.exit(main())
