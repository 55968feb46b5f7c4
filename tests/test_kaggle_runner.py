"""The kernel's script on its own: finding this upload's code among Kaggle's mounts, the
competition's files, the doctor's GPU line, and a failed training that leaves its reason.

tests/test_kaggle_run.py runs the whole script through the stand-in; these pin the parts
whose inputs Kaggle decides (where it mounts things, whether it unpacks a zip)."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers.project import clean_env

from job.config import load_config
from job.data.sample import ensure_sample
from job.kaggle import bundle, kernel, runner

REPO = Path(__file__).resolve().parent.parent
SETTINGS = {"bundle": bundle.ARCHIVE, "marker": bundle.MARKER, "dataset": "tester/x-code"}


def archive(folder: Path, bundle_id: str) -> Path:
    """A zip like the upload's, holding only its marker."""
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / bundle.ARCHIVE, "w") as out:
        out.writestr(bundle.MARKER, json.dumps({"bundle_id": bundle_id}))
    return folder / bundle.ARCHIVE


def test_the_bundle_of_this_upload_is_found_zipped_or_unpacked_anywhere_under_input(tmp_path):
    inputs = tmp_path / "input"
    archive(inputs / "old-code", "old")
    mine = archive(inputs / "datasets" / "tester" / "x-code", "mine")
    assert runner.find_bundle(inputs, {**SETTINGS, "bundle_id": "mine"}) == mine
    unpacked = inputs / "datasets" / "tester" / "y-code" / "digit-job-code"
    unpacked.mkdir(parents=True)
    (unpacked / bundle.MARKER).write_text(json.dumps({"bundle_id": "unpacked"}))
    assert runner.find_bundle(inputs, {**SETTINGS, "bundle_id": "unpacked"}) == unpacked


def test_an_older_upload_mounted_instead_of_this_one_is_an_error(tmp_path):
    archive(tmp_path / "input" / "x-code", "old")
    with pytest.raises(runner.Failed, match="another upload than this kernel's"):
        runner.find_bundle(tmp_path / "input", {**SETTINGS, "bundle_id": "new"})
    with pytest.raises(runner.Failed, match="lacks the dataset tester/x-code"):
        runner.find_bundle(tmp_path / "elsewhere", {**SETTINGS, "bundle_id": "new"})


def test_the_competition_folder_is_found_by_name_wherever_kaggle_mounts_it(tmp_path):
    inputs = tmp_path / "input"
    for folder in (inputs / "a-copy", inputs / "competitions" / "digit-recognizer"):
        folder.mkdir(parents=True)
        for name in runner.COMPETITION_FILES:
            (folder / name).write_text("x")
    assert runner.find_competition(inputs, "digit-recognizer") == (
        inputs / "competitions" / "digit-recognizer")
    with pytest.raises(runner.Failed, match="competition_sources"):
        runner.find_competition(tmp_path / "none", "digit-recognizer")


@pytest.mark.parametrize("report, line", [
    ("ok       NVIDIA driver: 550.54.15, runs CUDA up to 12.4; 2 GPUs\n"
     "ok       GPU 0: Tesla T4, 14.7 GiB, compute capability 7.5\n",
     "GPU 0: Tesla T4, 14.7 GiB, compute capability 7.5"),
    ("note     NVIDIA driver: not found (no libnvidia-ml.so.1 on this machine)\n",
     "NVIDIA driver: not found (no libnvidia-ml.so.1 on this machine)"),
    ("", "no NVIDIA driver found"),
])
def test_the_doctors_gpu_line(report, line):
    assert runner.gpu_line(report) == line


def test_the_script_runs_without_the_job_installed_and_reads_its_settings(tmp_path):
    """Kaggle runs the pushed text alone: it must compile with the standard library only and
    carry its settings as a Python literal."""
    settings = {"kernel": "tester/k", "install": True, "bundle_id": "b"}
    text = kernel.script(settings)
    script = tmp_path / "script.py"
    script.write_text(text)
    probe = (f"import runpy, sys; ns = runpy.run_path({str(script)!r}, run_name='kernel'); "
             "print(ns['SETTINGS']); print(sorted(m for m in sys.modules if m.startswith('job')))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=clean_env(),
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert eval(out[0]) == settings and out[1] == "[]"


def test_a_training_that_fails_ends_the_kernel_in_error_with_its_reason(tmp_path):
    """A config that needs a GPU, on this CPU machine: train exits 2, the script exits 1,
    and what it leaves in working/ says why (the local side shows that)."""
    kaggle = tmp_path / "kaggle"
    comp = ensure_sample(kaggle / "input" / "digit-recognizer")
    config = load_config(REPO / "configs/smoke.yaml", ["runtime.require_gpu=true"])
    made = bundle.write_bundle(REPO, config, (kaggle / "input" / "x-code").mkdir(parents=True)
                               or kaggle / "input" / "x-code")
    settings = {**SETTINGS, "kernel": "tester/x", "competition": "digit-recognizer",
                "accelerator": "t4x2", "bundle_id": made.bundle_id, "config": made.config_path,
                "install": False}
    (kaggle / "script.py").write_text(kernel.script(settings))
    env = {k: v for k, v in clean_env(JOB_KAGGLE_ROOT=str(kaggle)).items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(kaggle / "script.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "runtime.require_gpu is true" in done.stdout + done.stderr
    session = json.loads((kaggle / "working" / runner.SESSION).read_text())
    assert session["status"] == "failed" and "exit status 2" in session["error"]
    assert session["doctor"]["exit"] == 1   # the doctor found the missing GPU a problem
    assert (kaggle / "working" / runner.DOCTOR).read_text().count("PROBLEM") >= 1
    assert done.stdout.strip().splitlines()[-1].startswith("kaggle-run: error: ")
    assert comp.is_dir() and not os.access(comp / ".cache", os.F_OK)   # input left untouched
