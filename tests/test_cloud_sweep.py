"""scripts/cloud_sweep.sh without Google Cloud: --dry-run prints every step for each VM and runs
none, every bad option is one line and exit 2 before any gcloud command, the database URL never
shows, and against a stand-in gcloud whose VMs are folders here (their commands run in bash, with
stand-ins of make, sudo, docker and nvidia-smi) the sweeps run at once, every trial folder comes
back without replacing one already here, and the VMs are deleted, also when a step fails."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.project import SECRET, clean_env

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ("cloud_sweep.sh", "cloud_common.sh")
PASSWORD = "hunter2-db-password-not-real"
SWEEP_YAML = """\
# A sweep for these tests: the learning rate on configs/gpu.yaml.
extends: gpu.yaml
sweep:
  study: digits-lr   # the study the VMs share
  trials: 4
  space:
    train.learning_rate: {low: 1.0e-4, high: 3.0e-3, log: true}
"""


def write_tool(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!{sys.executable}\nimport os, sys, json, pathlib, shlex, subprocess, time\n"
                    f"{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


LOUD = """
pathlib.Path(os.environ["CALLED"]).write_text(" ".join(sys.argv))
sys.exit("called in a dry run: " + " ".join(sys.argv))
"""


def storage_url(port: int = 5432) -> str:
    return f"postgresql://optuna:{PASSWORD}@127.0.0.1:{port}/optuna"


@pytest.fixture
def repo(tmp_path):
    """A copy of the repository's scripts, configs and GPU stack file, with a sweep file, a HOME
    with kaggle.json, a mode-600 storage env file outside the repository, and a bin folder."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    for name in SCRIPTS:
        shutil.copy2(ROOT / "scripts" / name, repo / "scripts")
    shutil.copytree(ROOT / "configs", repo / "configs")
    (repo / "configs" / "sweep.yaml").write_text(SWEEP_YAML)
    (repo / "docker").mkdir()
    shutil.copy2(ROOT / "docker" / "cuda-constraints.txt", repo / "docker")
    home = tmp_path / "home"
    (home / ".kaggle").mkdir(parents=True)
    (home / ".kaggle" / "kaggle.json").write_text(f'{{"username": "u", "key": "{SECRET}"}}\n')
    (home / ".kaggle" / "kaggle.json").chmod(0o600)
    (tmp_path / "secrets").mkdir()
    write_env(tmp_path / "secrets" / "optuna.env", f"OPTUNA_STORAGE={storage_url()}\n")
    (tmp_path / "bin").mkdir()
    return repo


def write_env(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def sweep_script(repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    tmp = repo.parent
    return subprocess.run(
        [repo / "scripts" / "cloud_sweep.sh", *args], check=False, cwd=tmp,
        env=clean_env(HOME=str(tmp / "home"), PATH=f"{tmp / 'bin'}:{os.environ['PATH']}", **env),
        capture_output=True, text=True, timeout=120)


def dry_run(repo: Path, *args: str) -> subprocess.CompletedProcess:
    """The script with --dry-run against gcloud and git stand-ins that fail if called."""
    for tool in ("gcloud", "git", "make"):
        write_tool(repo.parent / "bin", tool, LOUD)
    result = sweep_script(repo, *args, "--dry-run", CALLED=str(repo.parent / "called"))
    assert not (repo.parent / "called").exists(), (repo.parent / "called").read_text()
    return result


# --- --dry-run ------------------------------------------------------------------------------

def test_dry_run_prints_every_step_for_each_vm_in_order(repo):
    env_file = repo.parent / "secrets" / "optuna.env"
    result = dry_run(repo, "--storage-env", "secrets/optuna.env", "--vms", "2", "--name", "sw",
                     "--spot", "--gpu", "nvidia-l4", "--machine-type", "g2-standard-8")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith("[dry-run] ") for line in lines)
    steps = [line.removeprefix("[dry-run] ") for line in lines]

    def at(what: str, vm: str = "") -> int:
        found = [i for i, s in enumerate(steps) if what in s and (not vm or f" {vm}" in s)]
        assert len(found) == 1, (what, vm, found)
        return found[0]

    assert steps[0].startswith("git archive") and steps[0].endswith("HEAD")
    creates = [s for s in steps if s.startswith("gcloud compute instances create")]
    assert [s.split()[4] for s in creates] == ["sw-1", "sw-2"]
    for create in creates:
        for flag in ("--zone us-central1-a", "--machine-type g2-standard-8",
                     "--accelerator type=nvidia-l4,count=1", "--tags digit-sweep",
                     "--image-project deeplearning-platform-release",
                     "--metadata install-nvidia-driver=True", "--provisioning-model SPOT"):
            assert flag in create
    sweeps = []
    for vm in ("sw-1", "sw-2"):
        ssh = f"gcloud compute ssh {vm} --zone us-central1-a --quiet "
        remote = [s.split("--command ", 1)[1] for s in steps if s.startswith(ssh)]
        assert any("command -v make" in s and "apt-get install -y -qq make" in s for s in remote)
        assert any("nvidia-ctk runtime configure --runtime=docker" in s for s in remote)
        order = [at("nvidia-smi >/dev/null", vm),
                 at(f"repo.tar.gz {vm}:repo.tar.gz"),
                 at(f"kaggle.json {vm}:.kaggle/kaggle.json"),
                 at(f"{env_file} {vm}:optuna.env"),
                 at("chmod 600 .kaggle/* optuna.env", vm),
                 at("make docker-build", vm),
                 at("make docker-doctor CONFIG=configs/gpu.yaml", vm),   # what sweep.yaml extends
                 at("cannot reach the database", vm),
                 at("make docker-sweep CONFIG=configs/sweep.yaml STUDY=digits-lr", vm),
                 at("tar -C digit-job/runs/sweeps/digits-lr -czf trials.tar.gz", vm),
                 at(f"{vm}:trials.tar.gz"),
                 at(f"{vm}-trials.tar.gz -C /tmp/cloud_sweep.XXXXXX/{vm}"),
                 at(f"# mv each folder of /tmp/cloud_sweep.XXXXXX/{vm}/trials that "
                    "runs/sweeps/digits-lr/trials lacks into it")]
        assert order == sorted(order), vm
        sweeps.append(order[-5])
    doctors = [at("make docker-doctor", vm) for vm in ("sw-1", "sw-2")]
    assert max(doctors) < min(sweeps)            # every VM passed its doctor before any trial
    assert "sudo --preserve-env=OPTUNA_STORAGE docker" in steps[sweeps[0]]
    assert steps[-2] == "gcloud compute instances delete sw-1 sw-2 --zone us-central1-a --quiet"
    assert steps[-1] == (f"OPTUNA_STORAGE=$(sed -n 's/^OPTUNA_STORAGE=//p' {env_file}) "
                         "make sweep-summary STUDY=digits-lr")
    assert all(" --quiet " in s for s in steps if s.startswith("gcloud compute ssh"))
    assert PASSWORD not in result.stdout + result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert result.stderr.splitlines()[-1] == "cloud_sweep.sh: dry run: nothing was run"


def test_dry_run_takes_study_project_and_doctor_config_from_the_options(repo):
    result = dry_run(repo, "--storage-env", "secrets/optuna.env", "--vms", "3", "--name", "x",
                     "--study", "other", "--project", "my-proj", "--gpu-count", "2",
                     "--doctor-config", "configs/default.yaml", "--tag", "workers", "--keep")
    assert result.returncode == 0, result.stderr
    steps = [line.removeprefix("[dry-run] ") for line in result.stdout.splitlines()]
    creates = [s for s in steps
               if s.startswith("gcloud --project my-proj compute instances create")]
    assert [s.split()[6] for s in creates] == ["x-1", "x-2", "x-3"]
    assert all("count=2" in s and "--tags workers" in s and "SPOT" not in s for s in creates)
    assert sum("make docker-doctor CONFIG=configs/default.yaml" in s for s in steps) == 3
    assert sum("make docker-sweep CONFIG=configs/sweep.yaml STUDY=other" in s for s in steps) == 3
    assert not any("instances delete" in s for s in steps)                  # --keep
    assert ("cloud_sweep.sh: kept x-1 x-2 x-3; delete them with: gcloud compute instances delete "
            "x-1 x-2 x-3 --zone us-central1-a") in result.stderr
    assert steps[-1].endswith("make sweep-summary STUDY=other")


# --- validation -----------------------------------------------------------------------------

ENV = "secrets/optuna.env"


@pytest.mark.parametrize("args, env_text, mode, message", [
    (["--vms", "2"], None, None,
     ("--storage-env FILE is required: a mode-600 file holding "
      "OPTUNA_STORAGE=postgresql://user:password@host:5432/db (see --help)")),
    (["--storage-env", "secrets/missing.env", "--vms", "2"], None, None,
     "--storage-env secrets/missing.env: not found"),
    (["--storage-env", "secrets", "--vms", "2"], None, None,
     "--storage-env secrets: not a readable file"),
    (["--storage-env", ENV, "--vms", "2"], None, 0o644,
     f"--storage-env {ENV}: other users may read it (-rw-r--r--): chmod 600 {ENV}"),
    (["--storage-env", ENV, "--vms", "2"], None, 0o640,
     f"--storage-env {ENV}: other users may read it (-rw-r-----): chmod 600 {ENV}"),
    (["--storage-env", ENV, "--vms", "2"], f"STORAGE={storage_url()}\n", 0o600,
     (f"--storage-env {ENV}: no OPTUNA_STORAGE= line; expected "
      "OPTUNA_STORAGE=postgresql://user:password@host:5432/db")),
    (["--storage-env", ENV, "--vms", "2"], f"OPTUNA_STORAGE='{storage_url()}'\n", 0o600,
     (f"--storage-env {ENV}: OPTUNA_STORAGE is not a postgresql:// URL (unquoted); VMs share a "
      "study only in a database server, SQLite is for one machine (docs/sweeps-cloud.md)")),
    (["--storage-env", ENV, "--vms", "2"], "OPTUNA_STORAGE=sqlite:///optuna.db\n", 0o600,
     (f"--storage-env {ENV}: OPTUNA_STORAGE is not a postgresql:// URL (unquoted); VMs share a "
      "study only in a database server, SQLite is for one machine (docs/sweeps-cloud.md)")),
    (["--storage-env", ENV], None, None, "--vms N is required: how many VMs share the sweep"),
    (["--storage-env", ENV, "--vms", "0"], None, None, "--vms 0: expected a positive integer"),
    (["--storage-env", ENV, "--vms", "two"], None, None, "--vms two: expected a positive integer"),
    (["--storage-env", ENV, "--vms", "1.5"], None, None, "--vms 1.5: expected a positive integer"),
    (["--storage-env", ENV, "--vms", "-1"], None, None, "--vms -1: expected a positive integer"),
    (["--storage-env", ENV, "--vms", "2", "--config", "configs/missing.yaml"], None, None,
     "--config configs/missing.yaml: expected a file under configs/"),
    (["--storage-env", ENV, "--vms", "2", "--config", "configs/default.yaml"], None, None,
     ("--config configs/default.yaml: no sweep: section; a sweep file extends a config and adds "
      "one")),
    (["--storage-env", ENV, "--vms", "2", "--study", "a b"], None, None,
     "study 'a b': expected letters, digits, . _ - (set sweep.study or --study)"),
])
def test_each_bad_option_is_one_line_and_exit_2_before_any_gcloud_command(
        repo, args, env_text, mode, message):
    env_file = repo.parent / ENV
    if env_text is not None:
        env_file.write_text(env_text)
    if mode is not None:
        env_file.chmod(mode)
    for real in (False, True):          # with --dry-run, and for real against loud stand-ins
        for tool in ("gcloud", "git"):
            write_tool(repo.parent / "bin", tool, LOUD)
        result = sweep_script(repo, *args, *([] if real else ["--dry-run"]),
                              CALLED=str(repo.parent / "called"))
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == f"cloud_sweep.sh: {message}\n"
        assert not (repo.parent / "called").exists()
        assert PASSWORD not in result.stderr


def test_help_names_every_option_and_says_preemption_is_retried(repo):
    result = sweep_script(repo, "--help")
    assert result.returncode == 0 and result.stderr == ""
    text = result.stdout
    # the options it takes: the OPTION=VARIABLE words of VALUE_OPTIONS and FLAG_OPTIONS, those
    # of cloud_common.sh and those cloud_sweep.sh adds
    source = "".join((repo / "scripts" / name).read_text() for name in SCRIPTS)
    tables = re.findall(r"^(?:VALUE|FLAG)_OPTIONS\+?=\(([^)]*)\)", source, re.MULTILINE)
    options = re.findall(r"(--[a-z-]+)=[A-Z_]+", " ".join(tables))
    assert len(options) >= 18 and "--storage-env" in options and "--dry-run" in options
    for option in options:
        assert re.search(rf"^  {option}\b", text, re.MULTILINE), option
    assert "OPTUNA_STORAGE=postgresql://user:password@host:5432/db" in text
    assert "never goes on a command line" in text
    assert "preempted worker" in text and "retried on another worker" in text


@pytest.mark.parametrize("name", SCRIPTS)
def test_shellcheck_finds_nothing_in_each_script_alone(name):
    shellcheck = Path(sys.executable).parent / "shellcheck"
    result = subprocess.run([shellcheck, f"scripts/{name}"], check=False, cwd=ROOT,
                            capture_output=True, text=True)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


# --- for real, against stand-ins ------------------------------------------------------------

# gcloud: a VM is a folder under VMS_DIR; ssh runs the command there in bash, with the VM's
# tools first on PATH; scp copies between here and VM:path.
GCLOUD_STANDIN = r"""
import shutil
root = pathlib.Path(os.environ["VMS_DIR"])
with open(os.environ["GCLOUD_LOG"], "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\n")
args = sys.argv[1:]
if args[:3] == ["compute", "instances", "create"]:
    if args[3] == os.environ.get("CREATE_FAILS"):
        sys.exit("ERROR: quota exceeded")
    (root / args[3]).mkdir()
elif args[:2] == ["compute", "ssh"]:
    vm = args[2]
    env = dict(os.environ, HOME=str(root / vm), VM=vm,
               PATH=os.environ["VM_BIN"] + ":" + os.environ["PATH"])
    command = args[args.index("--command") + 1]
    sys.exit(subprocess.run(["bash", "-c", command], cwd=root / vm, env=env).returncode)
elif args[:2] == ["compute", "scp"]:
    def where(arg):
        vm, sep, path = arg.partition(":")
        return root / vm / path if sep else pathlib.Path(arg)
    shutil.copyfile(where(args[-2]), where(args[-1]))
"""

GIT_STANDIN = r"""
import tarfile, io
if sys.argv[1] == "archive":
    with tarfile.open(sys.argv[sys.argv.index("-o") + 1], "w:gz") as tar:
        data = b"# the repository\n"
        info = tarfile.TarInfo("Makefile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
"""

# make: on a VM as the Makefile's targets would behave; here, sweep-summary records its call.
MAKE_STANDIN = r"""
args = sys.argv[1:]
target = next(a for a in args if "=" not in a)
var = dict(a.split("=", 1) for a in args if "=" in a)
vm = os.environ.get("VM", "")
root = pathlib.Path(os.environ["VMS_DIR"])
if target == "docker-doctor":
    if vm == os.environ.get("DOCTOR_FAILS"):
        print("PROBLEM  GPU: none visible to TensorFlow")
        sys.exit(1)
    print("ok       GPU: Tesla T4")
elif target == "docker-sweep":
    # as the Makefile does: $(DOCKER) run --env OPTUNA_STORAGE ... (the URL passed by name)
    docker = shlex.split(var["DOCKER"]) + ["run", "--env", "OPTUNA_STORAGE", "digit-job", "sweep"]
    if subprocess.run(docker).returncode:
        sys.exit(1)
    (root / f"started-{vm}").touch()
    for _ in range(200):                 # each VM's sweep waits for all: they run at once
        if len(list(root.glob("started-*"))) == int(os.environ["N_VMS"]):
            break
        time.sleep(0.05)
    else:
        sys.exit("make stand-in: the other VMs' sweeps never started")
    for trial in json.loads(os.environ["VM_TRIALS"])[vm]:     # "7" or "7:running"
        name, _, status = trial.partition(":")
        folder = pathlib.Path("runs/sweeps", var["STUDY"], "trials", name)
        folder.mkdir(parents=True)
        (folder / "trial.txt").write_text(vm)
        (folder / "manifest.json").write_text(json.dumps({"status": status or "complete"}))
    if os.environ.get("SWEEP_HANGS"):    # until the test says stop, after interrupting the script
        (root / f"hanging-{vm}").touch()
        for _ in range(600):
            if (root / "stop").exists():
                break
            time.sleep(0.05)
    sys.exit(1 if vm == os.environ.get("SWEEP_FAILS") else 0)
elif target == "sweep-summary":
    pathlib.Path("summary-call.json").write_text(
        json.dumps({"argv": args, "storage": os.environ.get("OPTUNA_STORAGE")}))
"""

# sudo resets the environment but for what --preserve-env names, as sudo's env_reset does.
SUDO_STANDIN = r"""
args, keep = sys.argv[1:], {"PATH", "HOME"}
while args[0].startswith("-"):
    option = args.pop(0)
    if option.startswith("--preserve-env="):
        keep |= set(option.split("=", 1)[1].split(","))
os.execvpe(args[0], args, {k: v for k, v in os.environ.items() if k in keep})
"""

DOCKER_STANDIN = r"""
if sys.argv[1] == "info":
    print('{"nvidia":{"path":"nvidia-container-runtime"},"runc":{"path":"runc"}}')
elif sys.argv[1] == "run":
    if "OPTUNA_STORAGE" not in os.environ:
        sys.exit("docker stand-in: OPTUNA_STORAGE is not in docker's environment")
    pathlib.Path("storage-seen.txt").write_text(os.environ["OPTUNA_STORAGE"])
"""


@pytest.fixture
def database():
    """Something listening where the URL points, as far as a TCP check can tell."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as server:
        return server.getsockname()[1]


# Trial 4 was handed back by sw-1 and restarted on sw-2 under its name; 5 the other way round.
TRIALS = {"sw-1": ["0", "2", "4:interrupted", "5"], "sw-2": ["1", "3", "4", "5:running"]}


def sweep_command(repo: Path, port: int, *args: str, **env: str) -> dict:
    """Popen arguments of cloud_sweep.sh over VMs sw-1 and sw-2 against the stand-ins."""
    tmp = repo.parent
    write_env(tmp / "secrets" / "optuna.env", f"OPTUNA_STORAGE={storage_url(port)}\n")
    for tool, body in (("gcloud", GCLOUD_STANDIN), ("git", GIT_STANDIN), ("make", MAKE_STANDIN)):
        write_tool(tmp / "bin", tool, body)
    vm_bin, vms = tmp / "vm-bin", tmp / "vms"
    vm_bin.mkdir(exist_ok=True)
    vms.mkdir(exist_ok=True)
    for tool, body in (("sudo", SUDO_STANDIN), ("docker", DOCKER_STANDIN),
                       ("nvidia-smi", "print('Tesla T4')\n")):
        write_tool(vm_bin, tool, body)
    return dict(
        args=[repo / "scripts" / "cloud_sweep.sh", "--storage-env",
              str(tmp / "secrets" / "optuna.env"), "--vms", "2", "--name", "sw", *args],
        cwd=repo, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=clean_env(HOME=str(tmp / "home"), PATH=f"{tmp / 'bin'}:{os.environ['PATH']}",
                      GCLOUD_LOG=str(tmp / "gcloud.log"), VMS_DIR=str(vms), VM_BIN=str(vm_bin),
                      N_VMS="2", VM_TRIALS=json.dumps(TRIALS), **env))


def gcloud_calls(repo: Path, result) -> list[str]:
    """What gcloud was asked, after checking no output and no call carried a secret."""
    log = repo.parent / "gcloud.log"
    calls = log.read_text().splitlines() if log.exists() else []
    assert PASSWORD not in result.stdout + result.stderr + "\n".join(calls)
    assert SECRET not in result.stdout + result.stderr
    return calls


def run_sweep(repo: Path, port: int, *args: str, **env: str):
    """cloud_sweep.sh for real against the stand-ins: (result, gcloud calls, VMs folder)."""
    result = subprocess.run(**sweep_command(repo, port, *args, **env), check=False, timeout=120)
    return result, gcloud_calls(repo, result), repo.parent / "vms"


DELETE = "compute instances delete sw-1 sw-2 --zone us-central1-a --quiet"


def trial_owners(repo: Path) -> dict[str, str]:
    trials = repo / "runs" / "sweeps" / "digits-lr" / "trials"
    return {p.name: (p / "trial.txt").read_text() for p in sorted(trials.iterdir())}


def test_sweep_runs_on_every_vm_at_once_brings_all_trials_back_and_deletes_the_vms(repo, database):
    kept = repo / "runs" / "sweeps" / "digits-lr" / "trials" / "2"
    kept.mkdir(parents=True)
    (kept / "trial.txt").write_text("here before")          # unfinished, and still kept
    result, calls, vms = run_sweep(repo, database)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [c.split()[3] for c in calls[:2]] == ["sw-1", "sw-2"]
    assert calls[0].startswith("compute instances create sw-1")
    for vm in ("sw-1", "sw-2"):
        assert (vms / vm / "digit-job" / "storage-seen.txt").read_text() == storage_url(database)
        assert stat.S_IMODE((vms / vm / "optuna.env").stat().st_mode) == 0o600
        assert stat.S_IMODE((vms / vm / ".kaggle" / "kaggle.json").stat().st_mode) == 0o600
    # every trial came back, a finished copy over an unfinished one; the folder already here
    # was not replaced
    assert trial_owners(repo) == {"0": "sw-1", "1": "sw-2", "2": "here before", "3": "sw-2",
                                  "4": "sw-2", "5": "sw-1"}
    assert ("cloud_sweep.sh: runs/sweeps/digits-lr/trials/4: sw-2's finished copy replaces an "
            "unfinished one") in result.stderr
    assert calls[-1] == DELETE
    summary = json.loads((repo / "summary-call.json").read_text())
    assert summary == {"argv": ["sweep-summary", "STUDY=digits-lr"],
                       "storage": storage_url(database)}
    assert "[sw-2] ok       GPU: Tesla T4" in result.stdout.splitlines()   # each VM's output
    assert result.stderr.splitlines()[-1] == (
        "cloud_sweep.sh: done; runs/sweeps/digits-lr/summary.md, best run: "
        "runs/sweeps/digits-lr/best")


def test_a_failed_sweep_on_one_vm_still_brings_every_trial_back(repo, database):
    result, calls, _ = run_sweep(repo, database, SWEEP_FAILS="sw-2")
    assert result.returncode == 1
    assert "cloud_sweep.sh: the sweep failed on sw-2 (exit 1); fetching every VM's trial " \
           "folders" in result.stderr
    assert trial_owners(repo) == {"0": "sw-1", "1": "sw-2", "2": "sw-1", "3": "sw-2",
                                  "4": "sw-2", "5": "sw-1"}
    assert calls[-1] == DELETE
    assert (repo / "summary-call.json").is_file()           # the summary is still rebuilt


def test_a_failed_doctor_stops_every_vm_before_any_trial(repo, database):
    result, calls, _ = run_sweep(repo, database, DOCTOR_FAILS="sw-2")
    assert result.returncode == 2
    assert not any("docker-sweep" in c for c in calls)
    assert (repo / "doctor-sw-2.txt").read_text() == "PROBLEM  GPU: none visible to TensorFlow\n"
    assert result.stderr.splitlines()[-1] == (
        "cloud_sweep.sh: the doctor found problems on sw-2 (doctor-sw-2.txt); nothing was swept")
    assert calls[-1] == DELETE


def test_a_database_the_vms_cannot_reach_stops_them_before_any_trial(repo):
    port = free_port()
    result, calls, _ = run_sweep(repo, port)
    assert result.returncode == 1
    assert f"[sw-1] cannot reach the database at 127.0.0.1:{port}" in result.stdout
    assert not any("docker-sweep" in c for c in calls)
    assert result.stderr.splitlines()[-1] == (
        "cloud_sweep.sh: setup failed on sw-1 (cannot reach the database) sw-2 (cannot reach "
        "the database); nothing was swept")
    assert calls[-1] == DELETE


def test_a_vm_that_cannot_be_created_deletes_the_ones_that_were(repo, database):
    result, calls, _ = run_sweep(repo, database, CREATE_FAILS="sw-2")
    assert result.returncode != 0
    assert not any(c.startswith("compute ssh") for c in calls)
    assert calls[-1] == DELETE                                # the half-created one too


def test_keep_leaves_the_vms_and_says_how_to_delete_them(repo, database):
    result, calls, _ = run_sweep(repo, database, "--keep", SWEEP_FAILS="sw-1")
    assert result.returncode == 1
    assert not any("instances delete" in c for c in calls)
    assert ("cloud_sweep.sh: kept sw-1 sw-2; delete them with: gcloud compute instances delete "
            "sw-1 sw-2 --zone us-central1-a") in result.stderr


def test_an_interrupted_sweep_fetches_what_the_vms_hold_and_deletes_them(repo, database):
    vms = repo.parent / "vms"
    with subprocess.Popen(**sweep_command(repo, database, SWEEP_HANGS="1")) as script:
        try:
            deadline = time.monotonic() + 60
            while len(list(vms.glob("hanging-*"))) < 2:        # both VMs in their sweeps
                assert script.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
            script.send_signal(signal.SIGTERM)
            status = script.wait(timeout=60)
        finally:
            (vms / "stop").touch()          # the stand-in sweeps end; their output pipes close
        result = subprocess.CompletedProcess(script.args, status, *script.communicate(timeout=60))
    calls = gcloud_calls(repo, result)
    assert status == 130
    assert "cloud_sweep.sh: ending early; fetching the trial folders the VMs hold" in result.stderr
    assert set(trial_owners(repo)) == {"0", "1", "2", "3", "4", "5"}
    assert calls[-1] == DELETE
