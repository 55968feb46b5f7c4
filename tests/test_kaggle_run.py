"""`python -m job kaggle-run` against the loopback Kaggle stand-in, with the real client.

One run goes all the way: the job uploads itself, pushes the kernel, and the stand-in
"runs" the pushed script for real in a temporary folder laid out like /kaggle (the
competition's files and the uploaded dataset under input/, output in working/), so the
run folder that comes home was trained by the uploaded code. The failure cases replay
that kernel's output (or a broken one) and check what the user sees.
"""

import json
import shlex
import shutil
import signal
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from helpers.kaggle_standin import KaggleStandin, KernelResult
from helpers.project import clean_env

from job.data.sample import ensure_sample
from job.kaggle import bundle, runner

REPO = Path(__file__).resolve().parent.parent
COMPETITION = "digit-recognizer"
KEY = "k3y-5e1d-never-uploaded"
KERNEL = "tester/digit-job-smoke"
DATASET = "tester/digit-job-smoke-code"
FAST = "import sys, time; time.sleep = lambda s: None; from job.cli import main; sys.exit(main())"
FILES = ("train.csv", "test.csv", "sample_submission.csv")
SMOKE = ("--config", str(REPO / "configs/smoke.yaml"), "--set", "models=[ffn-tf,ffn-torch]",
         "--set", "train.epochs=1")


def competition_bytes(folder: Path) -> dict[str, bytes]:
    sample = ensure_sample(folder / "sample")
    return {name: (sample / name).read_bytes() for name in FILES}


def job(server, home: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m job ARGS` as a user runs it, the client routed to the stand-in."""
    env = clean_env(PYTHONPATH=str(REPO))
    for name, value in server.client_env(home, "key", key=KEY).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run([sys.executable, "-c", FAST, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def kaggle_log(text: str) -> str:
    """A log the way Kaggle serves it: a JSON list of stream entries."""
    return json.dumps([{"stream_name": "stdout", "time": i * 0.1, "data": line + "\n"}
                       for i, line in enumerate(text.splitlines())])


def real_kernel(server, root: Path, competition: dict[str, bytes]):
    """A kernel_runner that runs the pushed script itself in root/v<N> laid out like /kaggle."""
    def run(request: dict) -> KernelResult:
        kaggle = root / f"v{len(server.kernel_pushes)}"
        comp = kaggle / "input" / COMPETITION
        comp.mkdir(parents=True)
        for name, data in competition.items():
            (comp / name).write_bytes(data)
        for ref in request["datasetDataSources"]:
            mounted = kaggle / "input" / ref.split("/")[1]
            mounted.mkdir(parents=True)
            for name, data in server.dataset_files(ref).items():
                (mounted / name).write_bytes(data)
        (kaggle / "working").mkdir()
        script = kaggle / "script.py"
        script.write_text(request["text"])
        env = {k: v for k, v in clean_env(JOB_KAGGLE_ROOT=str(kaggle)).items()
               if k != "PYTHONPATH"}   # the uploaded job, not this checkout's, must train
        done = subprocess.run([sys.executable, str(script)], cwd=kaggle / "working", env=env,
                              capture_output=True, text=True, timeout=600)
        working = kaggle / "working"
        files = {p.relative_to(working).as_posix(): p.read_bytes()
                 for p in sorted(working.rglob("*")) if p.is_file() and not p.is_symlink()}
        return KernelResult(files, kaggle_log(done.stdout + done.stderr),
                            "COMPLETE" if done.returncode == 0 else "ERROR")
    return run


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    """One kaggle-run of the smoke config, end to end, kept for several tests to read."""
    tmp = tmp_path_factory.mktemp("kaggle-run")
    competition = competition_bytes(tmp)
    with KaggleStandin(competition, competition=COMPETITION, key=KEY) as server:
        server.retry_after = "0"
        server.kernel_runner = real_kernel(server, tmp / "kaggle", competition)
        done = job(server, tmp / "home", "kaggle-run", *SMOKE, "--runs-dir", str(tmp / "runs"),
                   cwd=tmp)
        assert done.returncode == 0, done.stdout + done.stderr
        listed = job(server, tmp / "home", "runs", "--runs-dir", str(tmp / "runs"), cwd=tmp)
        submitted_before = len(server.submissions)
        submit = job(server, tmp / "home", "submit", "--runs-dir", str(tmp / "runs"), cwd=tmp)
        yield SimpleNamespace(server=server, done=done, runs=tmp / "runs", kaggle=tmp / "kaggle",
                              listed=listed, submit=submit, submitted_before=submitted_before,
                              result=server.kernels[KERNEL]["versions"][0]["result"],
                              home=tmp / "home", tmp=tmp)


def run_folder(runs: Path) -> Path:
    found = [p for p in runs.iterdir() if p.is_dir() and not p.is_symlink()
             and (p / "manifest.json").is_file()]
    assert len(found) == 1, found
    return found[0]


def test_the_run_comes_home_and_runs_lists_it_and_submit_accepts_it(e2e):
    home = run_folder(e2e.runs)
    assert e2e.done.stdout.strip().splitlines()[-1] == str(home)
    assert (e2e.runs / "latest").resolve() == home.resolve()
    manifest = json.loads((home / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["data"]["source"] == "kaggle"
    where = manifest["where"]
    assert (where["place"], where["kernel"], where["version"], where["accelerator"]) == (
        "kaggle", KERNEL, 1, "t4x2")
    assert where["url"] == f"https://www.kaggle.com/code/{KERNEL}"
    assert where["gpu"].startswith("NVIDIA driver: not found")   # this CPU machine, as it ran
    kept = home / "kaggle"
    assert (kept / "doctor.txt").read_text().startswith(("ok", "note", "PROBLEM"))
    assert json.loads((kept / "kaggle-session.json").read_text())["status"] == "complete"
    assert "python -m job train" in (kept / "digit-job-smoke.log").read_text()
    # Trained by the kernel, from the uploaded config: the --set values came along.
    config = yaml.safe_load((home / "config.yaml").read_text())
    assert config["models"] == ["ffn-tf", "ffn-torch"] and config["train"]["epochs"] == 1
    assert home.name in e2e.listed.stdout and " kaggle " in e2e.listed.stdout
    # Nothing was submitted until `submit`; then exactly the run's submission.csv.
    assert e2e.submitted_before == 0
    assert e2e.submit.returncode == 0, e2e.submit.stderr
    assert [s["bytes"] for s in e2e.server.submissions] == [(home / "submission.csv").read_bytes()]
    assert not [p for p in e2e.runs.iterdir() if p.name.startswith(".kaggle-")]


def test_every_metadata_field_sent_with_the_push(e2e):
    [push] = e2e.server.kernel_pushes
    assert push["slug"] == KERNEL and push["newTitle"] == "Digit Job Smoke"
    assert (push["language"], push["kernelType"]) == ("python", "script")
    assert push["isPrivate"] is True and push["enableInternet"] is True
    assert push["machineShape"] == "NvidiaTeslaT4"
    assert push["competitionDataSources"] == [COMPETITION]
    assert push["datasetDataSources"] == [DATASET]
    assert "SETTINGS: dict = {" in push["text"] and "SETTINGS: dict = {}" not in push["text"]


def test_the_title_is_the_slug_as_the_client_slugifies_it(e2e):
    from kaggle.api.kaggle_api_extended import slugify
    [push] = e2e.server.kernel_pushes
    assert slugify(push["newTitle"]) == push["slug"].split("/")[1]


def test_the_upload_is_the_job_and_no_credential(e2e):
    dataset = e2e.server.datasets[DATASET]
    assert dataset["private"] is True and len(dataset["versions"]) == 1
    files = e2e.server.dataset_files(DATASET)
    assert set(files) == {bundle.ARCHIVE}
    with zipfile.ZipFile(__import__("io").BytesIO(files[bundle.ARCHIVE])) as archive:
        names = set(archive.namelist())
        contents = b"".join(archive.read(n) for n in names)
    assert {"job/__init__.py", "job/kaggle/runner.py", "configs/smoke.yaml", "requirements.txt",
            "kaggle-run/smoke.yaml", bundle.MARKER} <= names
    assert all(n.endswith((".py", ".yaml", ".txt", ".json")) for n in names)
    assert not [n for n in names if Path(n).name in ("kaggle.json", "access_token")]
    assert KEY.encode() not in contents and KEY not in e2e.server.kernel_pushes[0]["text"]
    assert KEY not in e2e.done.stdout + e2e.done.stderr


def test_the_kernel_is_pushed_only_once_the_new_version_is_ready(e2e):
    calls = [path.rsplit("/", 1)[1] for _, path in e2e.server.requests if "/api/v1/" in path]
    created, pushed = calls.index("CreateDataset"), calls.index("SaveKernel")
    polls = [c for c in calls[created:pushed] if c == "GetDatasetStatus"]
    assert len(polls) == e2e.server.dataset_ready_after_polls + 1   # until it said READY
    assert calls.index("GetAcceleratorQuotaStatistics") < created
    assert calls.index("ListDataFiles") < created     # the rules, before anything is sent


def test_the_quota_and_each_step_are_shown(e2e):
    out = e2e.done.stdout
    assert "Kaggle GPU quota: 27.5 h of 30.0 h left this week" in out
    for step in ("uploading the job", f"{DATASET}: ready", f"pushing the kernel {KERNEL}",
                 f"{KERNEL}/1: queued", f"{KERNEL}/1: running", f"{KERNEL}/1: complete",
                 "brought " + KERNEL):
        assert step in out, step
    assert "\x1b" not in out and "\r" not in out   # not a terminal: plain lines, once each
    assert out.count(f"{KERNEL}/1: running") == 1


def test_the_kernel_left_one_complete_run_in_working_and_no_source(e2e):
    working = e2e.kaggle / "v1" / "working"
    runs = [p for p in (working / "runs").iterdir()]
    assert len(runs) == 1 and (runs[0] / "submission.csv").is_file()   # no `latest` link
    assert json.loads((runs[0] / "manifest.json").read_text())["status"] == "complete"
    assert sorted(p.name for p in working.iterdir()) == sorted(
        ["runs", runner.DOCTOR, runner.SESSION])
    assert not list(working.rglob("requirements.txt"))


# --- the failure cases: the same kernel output replayed, or a broken one ---------------------


@pytest.fixture
def server(e2e):
    """A fresh stand-in whose kernel replays the end-to-end run's output."""
    with KaggleStandin(e2e.server.files, competition=COMPETITION, key=KEY) as standin:
        standin.retry_after = "0"
        standin.kernel_runner = lambda request: e2e.result
        yield standin


def kaggle_run(server, tmp_path, *extra: str) -> subprocess.CompletedProcess:
    return job(server, tmp_path / "home", "kaggle-run", *SMOKE, "--runs-dir",
               str(tmp_path / "runs"), *extra, cwd=tmp_path)


def follow(server, tmp_path, kernel: str = KERNEL) -> subprocess.CompletedProcess:
    return job(server, tmp_path / "home", "kaggle-run", "--follow", kernel, "--runs-dir",
               str(tmp_path / "runs"), cwd=tmp_path)


def nothing_local(tmp_path: Path) -> bool:
    runs = tmp_path / "runs"
    return not runs.exists() or not [p for p in runs.iterdir()]


def one_error_line(done: subprocess.CompletedProcess) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (
        done.stdout + done.stderr)
    return lines[0]


def test_a_bad_config_key_fails_before_any_request(server, tmp_path):
    line = one_error_line(kaggle_run(server, tmp_path, "--set", "train.epochz=3"))
    assert "train.epochz" in line and server.requests == [] and nothing_local(tmp_path)


def test_cpus_for_a_config_that_requires_a_gpu_fail_before_any_request(server, tmp_path):
    line = one_error_line(kaggle_run(server, tmp_path, "--accelerator", "none", "--set",
                                     "runtime.require_gpu=true"))
    assert "require_gpu" in line and server.requests == []


def test_used_up_quota_stops_a_gpu_run_before_the_upload(server, tmp_path):
    server.gpu_quota_used_hours = 30.0
    line = one_error_line(kaggle_run(server, tmp_path))
    assert "quota is used up (30.0 h of 30.0 h" in line and "--accelerator none" in line
    assert server.datasets == {} and server.kernel_pushes == [] and nothing_local(tmp_path)


def test_kaggles_cpus_need_no_gpu_quota(server, tmp_path):
    server.gpu_quota_used_hours = 30.0
    done = kaggle_run(server, tmp_path, "--accelerator", "none")
    assert done.returncode == 0, done.stderr
    [push] = server.kernel_pushes
    assert "machineShape" not in push and not push.get("enableGpu")


def test_rules_not_accepted_stop_before_the_upload(server, tmp_path):
    server.fail("403", on="ListDataFiles")
    line = one_error_line(kaggle_run(server, tmp_path))
    assert "accept the competition rules at https://www.kaggle.com/competitions/" in line
    assert server.datasets == {} and nothing_local(tmp_path)


def test_a_competition_source_refused_at_the_push_names_the_rules(server, tmp_path):
    server.rules_accepted = False
    line = one_error_line(kaggle_run(server, tmp_path))
    assert "accept the competition rules" in line and nothing_local(tmp_path)


def test_an_account_without_phone_verification_is_told_so(server, tmp_path):
    server.phone_verified = False
    line = one_error_line(kaggle_run(server, tmp_path))
    assert "phone-verified account" in line and nothing_local(tmp_path)


def test_a_second_run_is_a_new_version_of_the_dataset_and_the_kernel(server, tmp_path):
    assert kaggle_run(server, tmp_path, "--no-wait").returncode == 0
    assert kaggle_run(server, tmp_path, "--no-wait").returncode == 0
    assert len(server.datasets[DATASET]["versions"]) == 2
    assert len(server.kernels[KERNEL]["versions"]) == 2
    markers = [json.loads(zipfile.ZipFile(__import__("io").BytesIO(
        server.dataset_files(DATASET, v)[bundle.ARCHIVE])).read(bundle.MARKER))["bundle_id"]
        for v in (1, 2)]
    pushed = [p["text"] for p in server.kernel_pushes]
    assert markers[0] != markers[1] and all(m in t for m, t in zip(markers, pushed))
    # The first version is still there to follow, by its number.
    assert follow(server, tmp_path, f"{KERNEL}/1").returncode == 0
    home = run_folder(tmp_path / "runs")
    assert json.loads((home / "manifest.json").read_text())["where"]["version"] == 1
    assert server.kernels[KERNEL]["versions"][0]["polls"] > 0
    assert server.kernels[KERNEL]["versions"][1]["polls"] == 0


def test_no_wait_returns_after_the_push_and_follow_brings_it_home(server, tmp_path):
    pushed = kaggle_run(server, tmp_path, "--no-wait")
    assert pushed.returncode == 0, pushed.stderr
    assert f"python -m job kaggle-run --follow {KERNEL}/1\n" in pushed.stdout
    assert nothing_local(tmp_path) and not any("GetKernelSessionStatus" in p
                                               for _, p in server.requests)
    followed = follow(server, tmp_path, f"{KERNEL}/1")
    assert followed.returncode == 0, followed.stderr
    home = run_folder(tmp_path / "runs")
    assert followed.stdout.strip().splitlines()[-1] == str(home)
    assert json.loads((home / "manifest.json").read_text())["where"]["kernel"] == KERNEL


def test_a_run_brought_home_twice_never_overwrites_the_first(server, tmp_path):
    assert kaggle_run(server, tmp_path).returncode == 0
    assert follow(server, tmp_path).returncode == 0
    homes = sorted(p for p in (tmp_path / "runs").iterdir()
                   if p.is_dir() and not p.is_symlink())
    assert [p.name for p in homes] == [homes[0].name, homes[0].name + "-2"]


def test_a_network_error_mid_follow_can_be_resumed(server, tmp_path):
    assert kaggle_run(server, tmp_path, "--no-wait").returncode == 0
    server.fail("reset", times=5, on="GetKernelSessionStatus")   # every retry of one poll
    line = one_error_line(follow(server, tmp_path))
    assert "lost contact with Kaggle while following" in line
    assert f"--follow {KERNEL}" in line and nothing_local(tmp_path)
    again = follow(server, tmp_path)
    assert again.returncode == 0, again.stderr
    run_folder(tmp_path / "runs")


def test_follow_names_a_kernel_kaggle_does_not_have(server, tmp_path):
    line = one_error_line(follow(server, tmp_path, "tester/no-such-kernel"))
    assert "no kernel tester/no-such-kernel" in line
    line = one_error_line(follow(server, tmp_path, "not a kernel"))
    assert "OWNER/KERNEL-SLUG" in line and nothing_local(tmp_path)


def broken_output(e2e, error: str) -> KernelResult:
    """What a kernel whose training failed leaves: the doctor, a session saying why, a log."""
    doctor = ("ok       NVIDIA driver: 550.54.15, runs CUDA up to 12.4; 2 GPUs\n"
              "PROBLEM  torch: torch 2.14.1+cu130, built for CUDA 13.0, newer than driver "
              "550.54.15 runs (CUDA up to 12.4) -> update the driver to 580.65.06\n")
    session = {"status": "failed", "error": error, "run": None}
    log = "\n".join([f"line {i}" for i in range(30)] + [f"kaggle-run: error: {error}"])
    return KernelResult({runner.DOCTOR: doctor.encode(),
                         runner.SESSION: json.dumps(session).encode()},
                        kaggle_log(log), "ERROR", "")


def test_a_kernel_that_ends_in_error_shows_its_last_lines_and_keeps_its_log(e2e, server,
                                                                         tmp_path):
    error = "python -m job train ended with exit status 2; its last lines above say why"
    server.kernel_runner = lambda request: broken_output(e2e, error)
    done = kaggle_run(server, tmp_path)
    line = one_error_line(done)
    assert f"{KERNEL}/1 ended in error: {error}" in line
    kept = Path(line.rsplit("kept in ", 1)[1])
    assert kept.parent == tmp_path / "runs" / "kaggle-failed" and kept.is_dir()
    assert kept.name.startswith("digit-job-smoke-v1-")
    assert (kept / "digit-job-smoke.log").is_file() and (kept / runner.DOCTOR).is_file()
    assert "  | line 29" in done.stdout and "  | line 14" not in done.stdout   # the last 15
    assert "doctor: PROBLEM  torch:" in done.stdout
    listed = job(server, tmp_path / "home", "runs", "--runs-dir", str(tmp_path / "runs"),
                 cwd=tmp_path)
    assert "no runs in" in listed.stdout and not (tmp_path / "runs" / "latest").exists()


def test_a_session_past_kaggles_time_limit_is_named(e2e, server, tmp_path):
    server.kernel_runner = lambda request: replace(
        broken_output(e2e, "x"), files={}, failure_message="Your notebook tried to run "
        "longer than the maximum run time of 12 hours")
    line = one_error_line(kaggle_run(server, tmp_path))
    assert "session time limit" in line and "kept in" in line


def test_a_completed_kernel_without_a_run_keeps_what_it_left(e2e, server, tmp_path):
    server.kernel_runner = lambda request: replace(e2e.result, files={
        runner.SESSION: json.dumps({"status": "complete", "run": "gone"}).encode()})
    line = one_error_line(kaggle_run(server, tmp_path))
    assert "holds no run folder" in line and "kaggle-failed" in line
    assert not (tmp_path / "runs" / "latest").exists()


def test_a_credential_anywhere_in_the_project_is_never_bundled(tmp_path, monkeypatch):
    from job.config import load_config
    from job.errors import ConfigError
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    project = tmp_path / "project"
    shutil.copytree(REPO / "job", project / "job",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "configs", project / "configs")
    shutil.copy(REPO / "requirements.txt", project)
    secret = json.dumps({"username": "tester", "key": KEY})
    for folder in (project, project / "configs", project / "job", project / "job" / "kaggle"):
        for name in ("kaggle.json", "access_token", ".env", "credentials.json"):
            (folder / name).write_text(secret)
    (project / "job" / "kaggle" / "access_token").write_text(secret)
    config = load_config(REPO / "configs/smoke.yaml")
    made = bundle.write_bundle(project, config, tmp_path)
    with zipfile.ZipFile(made.archive) as archive:
        names = archive.namelist()
        assert not [n for n in names if KEY.encode() in archive.read(n)]
    assert not [n for n in names if Path(n).name in bundle.CREDENTIAL_NAMES + (".env",)]
    assert "job/kaggle/runner.py" in names
    # The allow-list's one way in, a key pasted into a .yaml, stops the upload instead.
    (project / "configs" / "mine.yaml").write_text(f"kaggle:\n  key: {KEY}\n")
    with pytest.raises(ConfigError) as refused:
        bundle.write_bundle(project, config, tmp_path / "again")
    assert "configs/mine.yaml holds your Kaggle key" in str(refused.value)
    assert KEY not in str(refused.value) and not (tmp_path / "again").exists()


def follow_env(server, tmp_path) -> dict[str, str]:
    env = clean_env(PYTHONPATH=str(REPO))
    for name, value in server.client_env(tmp_path / "home", "key", key=KEY).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def test_on_a_terminal_the_status_is_one_line_redrawn_in_place(server, tmp_path):
    assert kaggle_run(server, tmp_path, "--no-wait").returncode == 0
    server.kernel_statuses = ["QUEUED", "RUNNING", "RUNNING", "RUNNING"]
    command = shlex.join([sys.executable, "-c", FAST, "kaggle-run", "--follow", f"{KERNEL}/1",
                          "--runs-dir", str(tmp_path / "runs")])
    done = subprocess.run(["script", "-qefc", f"stty cols 120; {command}", "/dev/null"],
                          cwd=tmp_path, env=follow_env(server, tmp_path), capture_output=True,
                          timeout=300)
    shown = done.stdout.decode().replace("\r\n", "\n")   # bytes: text mode would eat the \r
    assert done.returncode == 0, shown
    # rich redraws the line in place: back to its start, the line erased, the new status
    assert shown.count(f"\r\x1b[2K{KERNEL}/1: running") == 3     # each poll redraws the line
    assert f"\r\x1b[2K{KERNEL}/1: complete" in shown
    assert shown.strip().splitlines()[-1] == str(run_folder(tmp_path / "runs"))


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_while_following_says_how_to_pick_it_up_again(server, tmp_path, stop):
    assert kaggle_run(server, tmp_path, "--no-wait").returncode == 0
    server.kernel_statuses = ["RUNNING"] * 10**6
    following = subprocess.Popen(
        [sys.executable, "-c", FAST, "kaggle-run", "--follow", f"{KERNEL}/1", "--runs-dir",
         str(tmp_path / "runs")], cwd=tmp_path, env=follow_env(server, tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert following.stdout.readline().startswith(f"{KERNEL}/1: running")
    following.send_signal(stop)
    out, err = following.communicate(timeout=60)
    assert following.returncode == 75, err
    assert err.strip() == (f"interrupted: stopped following {KERNEL}/1; the kernel runs on: "
                           f"pick it up with python -m job kaggle-run --follow {KERNEL}/1")
    assert nothing_local(tmp_path)
