"""`python -m job doctor`: every line's wording on this GPU-less machine, each framework
probed in a process of its own, and the lines a GPU machine would print for failures this
one cannot have (a missing library, an old driver)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

from job.doctor import checks, libraries, probe, stacks
from job.doctor.nvidia import Driver, Gpu
from job.doctor.report import Report, Timing, Torch

REPO = Path(__file__).resolve().parent.parent
# The smoke config's tiny CNN keeps the timed steps to seconds on a CPU.
TINY = ["--set", "train.batch_size=32"]


def doctor(*args: str, code: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
    env["PYTHONPATH"] = str(REPO)
    start = ["-c", code] if code else ["-m", "job"]
    return subprocess.run([sys.executable, *start, "doctor", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


STEP = r"{status} +{name} step: \d+\.\d ms per batch of 32 on CPU:0, [\d,]+ images/s \(no GPU\)"
# The doctor as `python -m job doctor` runs it, then what its own process had imported
# (--debug: the CLI's quiet start, where it has one, imports nothing then either).
AND_MODULES = ("import os, sys\nfrom job.cli import main\ncode = main(sys.argv[1:])\n"
               "print('doctor process', os.getpid(), sorted(m for m in ('tensorflow', 'keras', "
               "'torch', 'job.doctor.probe_tf', 'job.doctor.probe_torch') "
               "if m in sys.modules))\nsys.exit(code)")


def test_on_a_machine_without_a_gpu_every_check_says_so_and_passes():
    result = doctor("--config", "configs/smoke.yaml", *TINY, "--debug", code=AND_MODULES)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        "note     NVIDIA driver: not found (no libnvidia-ml.so.1 on this machine)",
        "ok       CUDA runtime: none installed; no driver to run it"]
    # The build's CUDA and cuDNN as TensorFlow's probe read them (tf.sysconfig).
    assert re.fullmatch(re.escape(
        f"ok       versions: Python {platform.python_version()}, TensorFlow "
        f"{importlib.metadata.version('tensorflow')}, Keras {importlib.metadata.version('keras')}; "
        "TensorFlow built for CUDA ") + r"12\.[\d.]+, cuDNN 9", lines[2]), lines[2]
    assert lines[3:5] == [
        "note     GPU: none visible to TensorFlow; NVIDIA driver: not found -> training runs on "
        "the CPU",
        "ok       XLA's CUDA files: not needed without a GPU"]
    for line, name in zip(lines[5:8], ("float32", "XLA", "mixed_float16")):
        assert re.fullmatch(STEP.format(status="ok", name=name), line), line
    # Its CPU build maps no CUDA library; torch's maps its CUDA 13 wheels' at import.
    tf_pid = re.fullmatch(r"ok +tensorflow libraries: no CUDA library mapped by its process "
                          r"\(pid (\d+); no GPU\)", lines[8])
    assert tf_pid, lines[8]
    assert re.fullmatch(re.escape(f"ok       torch: torch {importlib.metadata.version('torch')}")
                        + r"(\+\w+)?, built for CUDA 13\.0", lines[9]), lines[9]
    assert re.fullmatch(STEP.format(status="ok", name="torch"), lines[10]), lines[10]
    torch_pid = re.fullmatch(r"ok +torch libraries: \d+ CUDA library files mapped by its process "
                             r"\(pid (\d+)\), all torch's CUDA 13 stack: in \S+/nvidia: .*"
                             r"cu13/lib/\{[^}]*libcudart\.so\.13.*", lines[11])
    assert torch_pid, lines[11]
    assert re.fullmatch(r"ok +epoch bound: input pipeline [\d,]+ images/s, float32 step [\d,]+ "
                        r"images/s: the step bounds an epoch \(~[\d.]+ s per 37,800-image "
                        r"epoch\)", lines[12]), lines[12]
    assert lines[13] == "doctor: this machine can run configs/smoke.yaml"
    # Three processes, and the doctor's own imported neither framework nor the probes' code.
    own = re.fullmatch(r"doctor process (\d+) \[\]", lines[14])
    assert own and len({own[1], tf_pid[1], torch_pid[1]}) == 3, lines[14:]
    assert lines[15:] == []


def test_a_config_that_requires_a_gpu_fails_here_with_one_line_per_problem():
    result = doctor("--config", "configs/gpu.yaml", *TINY, "--set", "arch.cnn.filters=[4]",
                    "--set", "arch.cnn.dense=[8]")
    assert result.returncode == 1, result.stdout + result.stderr
    problems = [ln for ln in result.stdout.splitlines() if ln.startswith("PROBLEM")]
    assert problems == [
        f"PROBLEM  NVIDIA driver: not found (no libnvidia-ml.so.1 on this machine) -> "
        f"{checks.NO_GPU_FIX}",
        f"PROBLEM  GPU: none visible to TensorFlow; NVIDIA driver: not found -> "
        f"{checks.NO_GPU_FIX}"]
    # gpu.yaml trains with mixed_float16 and XLA together: that step is timed too.
    assert re.search(STEP.format(status="ok", name=r"mixed_float16 \+ XLA"), result.stdout)
    assert result.stderr.strip().splitlines()[-1] == "doctor: 2 problem(s) for configs/gpu.yaml"


def test_a_bad_config_is_one_error_line():
    result = doctor("--config", "configs/smoke.yaml", "--set", "train.batch_size=0")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == ("error: --set train.batch_size: expected an integer >= 1, "
                             "got 0\n")


T4 = Gpu("Tesla T4", 15 * 2**30 + 360 * 2**20, (7, 5))


def test_each_gpu_is_listed_with_memory_and_compute_capability():
    driver = Driver("570.133.20", (12, 8), (T4, Gpu("Tesla K80", 12 * 2**30, (3, 7))))
    assert [f.line() for f in checks.check_gpus(driver)] == [
        "ok       GPU 0: Tesla T4, 15.4 GiB, compute capability 7.5",
        "PROBLEM  GPU 1: Tesla K80, 12.0 GiB, compute capability 3.7, older than TensorFlow's "
        "6.0 -> use a newer GPU (T4, L4, A100, ...)"]
    assert checks.check_driver(driver, "", True).line() == (
        "ok       NVIDIA driver: 570.133.20, runs CUDA up to 12.8; 2 GPUs")


def test_a_driver_older_than_the_cuda_runtime_says_which_driver_is_needed():
    old = Driver("535.104.05", (12, 2), (T4,))
    assert checks.check_cuda_runtime(old, "12.8.90", True).line() == (
        "PROBLEM  CUDA runtime: 12.8.90 is newer than driver 535.104.05 supports (CUDA up to "
        "12.2) -> update the driver to 570.26 or newer, or install the CUDA wheels of "
        "docker/cuda-constraints.txt chosen for this driver (docker/README.md: choosing a "
        "driver)")
    assert checks.check_cuda_runtime(Driver("570.133.20", (12, 8), (T4,)), "12.8.90",
                                     True).line() == (
        "ok       CUDA runtime: 12.8.90, which driver 570.133.20 supports")


def test_a_library_that_does_not_load_is_named_with_where_it_was_looked_for(tmp_path):
    # cuFFT 11: TensorFlow's, which torch (loaded by other tests in this process, with its
    # cuDNN, NCCL and cuSPARSE, whose names TensorFlow's share) never loads.
    missing = tmp_path / "nvidia" / "cufft" / "lib"       # an empty wheel folder
    missing.mkdir(parents=True)
    loaded = libraries.probe(["libcufft.so.11"], dirs=[missing])
    assert loaded[0].path is None
    finding = checks.check_registered(0, Driver("570.133.20", (12, 8), (T4,)), loaded,
                                      [missing], require_gpu=True)
    assert finding.line() == (
        f"PROBLEM  GPU: TensorFlow registered 0 of the 1 GPU(s) the driver sees: libcufft.so.11 "
        f"did not load (looked in {missing} and the system library path) -> pip install "
        "nvidia-cufft-cu12 -c docker/cuda-constraints.txt")


def test_a_library_in_a_searched_folder_loads_from_there(tmp_path):
    libc = next(Path(p) for p in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
                                  "/lib64", "/usr/lib64", "/lib/aarch64-linux-gnu")
                if (Path(p) / "libc.so.6").exists())
    [found] = libraries.probe(["libc.so.6"], dirs=[tmp_path, libc])
    assert found.path == str(libc / "libc.so.6")


def test_xla_needs_ptxas_and_libdevice_on_a_gpu(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "ptxas").write_text("")
    assert checks.check_xla_files(True, tmp_path, None, wanted=True).line() == (
        f"PROBLEM  XLA's CUDA files: {tmp_path} lacks nvvm/libdevice/libdevice.10.bc -> export "
        "XLA_FLAGS=--xla_gpu_cuda_data_dir=<the nvcc wheel's nvidia/cuda_nvcc folder>")
    (tmp_path / "nvvm" / "libdevice").mkdir(parents=True)
    (tmp_path / "nvvm" / "libdevice" / "libdevice.10.bc").write_text("")
    assert checks.check_xla_files(True, None, tmp_path, wanted=True).status == "note"
    assert checks.check_xla_files(True, tmp_path, tmp_path, wanted=True).line() == (
        f"ok       XLA's CUDA files: ptxas and libdevice in {tmp_path}")
    assert libraries.xla_data_dir({"XLA_FLAGS": f"--xla_gpu_cuda_data_dir={tmp_path}"}) == tmp_path


def test_a_step_is_a_problem_only_where_the_config_needs_it_or_it_missed_the_gpu():
    failed = Timing("XLA", "/GPU:0", 0.0, 0.0, "InternalError: libdevice not found")
    assert checks.check_step(failed, True, wanted=False, batch=256).line() == (
        "note     XLA step: failed: InternalError: libdevice not found -> the config does not "
        "use it")
    assert checks.check_step(failed, True, wanted=True, batch=256).status == "PROBLEM"
    on_cpu = Timing("float32", "CPU:0", 0.05, 5120.0)
    assert checks.check_step(on_cpu, True, wanted=True, batch=256).line() == (
        "PROBLEM  float32 step: 50.0 ms per batch of 256 on CPU:0, 5,120 images/s, not on the "
        "GPU -> run `python -m job.doctor.probe tensorflow` to see TensorFlow's messages")


def test_the_slower_of_pipeline_and_step_bounds_the_epoch():
    step = Timing("mixed_float16 + XLA", "GPU:0", 0.002, 128_000.0)
    # 37,800 images at the pipeline's 50,000 images/s: 0.756 s an epoch.
    assert checks.check_bound(50_000.0, step).line() == (
        "note     epoch bound: input pipeline 50,000 images/s, mixed_float16 + XLA step 128,000 "
        "images/s: the input pipeline bounds an epoch (~0.8 s per 37,800-image epoch) -> more "
        "CPU cores feed the GPU faster (augmentation runs on the host)")


@pytest.mark.parametrize("overrides, names", [
    ([], ["float32", "XLA", "mixed_float16"]),
    (["runtime.jit_compile=true", "runtime.mixed_precision=mixed_float16"],
     ["float32", "XLA", "mixed_float16", "mixed_float16 + XLA"]),
    (["runtime.mixed_precision=mixed_bfloat16"],
     ["float32", "XLA", "mixed_float16", "mixed_bfloat16"]),
])
def test_the_configured_step_is_always_timed(overrides, names):
    from job.config import load_config
    config = load_config(REPO / "configs/smoke.yaml", overrides)
    assert [v[0] for v in checks.step_variants(config)] == names


TORCH_13 = Torch("2.14.1+cu130", "13.0", 1)


def test_torch_on_a_driver_too_old_for_its_cuda_says_which_driver_it_needs():
    """TensorFlow's CUDA 12.8 runs on a 570 driver; torch's CUDA 13.0 needs 580.65.06."""
    driver = Driver("570.133.20", (12, 8), (T4,))
    finding = checks.check_torch(TORCH_13, driver, 1, wanted=True)
    assert finding.line() == (
        "PROBLEM  torch: torch 2.14.1+cu130, built for CUDA 13.0, newer than driver 570.133.20 "
        "runs (CUDA up to 12.8) -> update the driver to 580.65.06 or newer (the image's "
        "vm-image-family in docker/cuda-constraints.txt has one)")
    assert checks.check_torch(TORCH_13, driver, 1, wanted=False).status == "note"


def test_torch_must_see_the_gpus_tensorflow_sees():
    driver = Driver("580.95.05", (13, 0), (T4, T4))
    blind = Torch("2.14.1+cu130", "13.0", 0)
    assert checks.check_torch(blind, driver, 2, wanted=True).line().startswith(
        "PROBLEM  torch: torch 2.14.1+cu130, built for CUDA 13.0; sees 0 of the 2 GPUs "
        "TensorFlow sees")
    assert checks.check_torch(Torch("2.14.1+cu130", "13.0", 2), driver, 2,
                              wanted=True).line() == (
        "ok       torch: torch 2.14.1+cu130, built for CUDA 13.0; sees 2 GPU(s)")
    assert checks.check_torch(None, driver, 2, wanted=True).status == "PROBLEM"


def probe_alone(framework: str, *start: str) -> dict:
    """The probe's stdout, which holds its JSON report and nothing else."""
    done = subprocess.run([sys.executable, *(start or ("-m", "job.doctor.probe")), framework,
                           '{"timing": false}'], cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=True)
    return json.loads(done.stdout)


@pytest.mark.parametrize("framework", ["tensorflow", "torch"])
def test_each_framework_is_probed_in_a_process_of_its_own(framework):
    """No GPU here: the probe says so, and its process kept to one CUDA stack."""
    raw = probe_alone(framework)
    assert list(raw) == ["framework", "pid", "installed", "version", "versions", "build", "gpus",
                         "libraries", "places", "timings", "pipeline_images_per_s",
                         "search_dirs", "loaded", "error"]
    report = Report.from_json(json.dumps(raw))
    assert report.installed and report.error == "" and report.pid not in (0, os.getpid())
    assert report.version.split("+")[0] == importlib.metadata.version(framework)
    assert report.build["is_cuda_build"] and report.build["cudnn_version"].startswith("9")
    assert report.gpus == [] and report.timings == [] and report.loaded == []
    paths = [lib.path for lib in report.libraries]
    assert stacks.both_stacks(framework, paths, report.places) == []
    if framework == "tensorflow":
        assert paths == []   # its CPU wheel maps no CUDA library
    else:                    # torch's wheel maps its CUDA 13 libraries at import, GPU or not
        assert {tuple(lib) for lib in raw["libraries"]} == {("path", "soname", "stack")}
        assert paths and {lib.stack for lib in report.libraries} == {stacks.TORCH}
        assert report.build["cuda_version"] == "13.0"


# The probe with its framework missing, as on a machine that has only the other one.
HIDDEN = ("import runpy, sys\nsys.modules[sys.argv[1]] = None   # import it: ImportError\n"
          "sys.argv = ['probe', sys.argv[1], '{\"timing\": false}']\n"
          "runpy.run_module('job.doctor.probe', run_name='__main__')")


@pytest.mark.parametrize("framework", ["tensorflow", "torch"])
def test_a_framework_that_is_not_installed_is_a_report_not_a_crash(framework):
    report = Report.from_json(json.dumps(probe_alone(framework, "-c", HIDDEN)))
    assert (report.framework, report.installed, report.error) == (framework, False, "")


def test_a_probe_that_dies_is_named_by_its_signal():
    assert probe.ended(-11) == "crashed (SIGSEGV)" and probe.ended(1) == "exited 1"
