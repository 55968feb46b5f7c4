"""Which CUDA stack a mapped library belongs to, and the doctor's line when one process
mapped both: pure functions of /proc/self/maps lines made up here in the image's layout
(docker/Dockerfile: TensorFlow's CUDA 12 wheels in dist-packages, torch's CUDA 13 ones in
/opt/torch), every expected line written out by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from job.config import Config
from job.doctor import checks, libraries, stacks
from job.doctor.report import Report
from job.doctor.stacks import OTHER, SHARED, TF, TORCH

TFN = "/usr/local/lib/python3.11/dist-packages/nvidia"
TON = "/opt/torch/nvidia"
# What stacks.places() finds in the image: each wheel's library folder, and the frameworks.
IMAGE = {f"{TFN}/{w}/lib": TF for w in ("cuda_runtime", "cublas", "cudnn", "cusparse",
                                         "curand", "nccl")}
IMAGE.update({f"{TON}/{w}/lib": TORCH for w in ("cu13", "cudnn", "nccl")})
IMAGE.update({"/usr/local/lib/python3.11/dist-packages/tensorflow": TF,
              "/opt/torch/torch": TORCH})


def maps(*paths: str) -> str:
    """/proc/self/maps lines mapping each file twice (code and data), as the loader does."""
    return "".join(f"7f3a{i:04x}0000-7f3a{i:04x}8000 {perms} 00000000 08:01 {1000 + i}"
                   f"                     {path}\n"
                   for i, path in enumerate(paths) for perms in ("r-xp", "rw-p"))


def test_the_maps_give_each_cuda_library_once_and_nothing_else():
    text = (maps(f"{TFN}/cudnn/lib/libcudnn.so.9", "/usr/lib/x86_64-linux-gnu/libc.so.6",
                 "/usr/lib/x86_64-linux-gnu/libcuda.so.570.133.20")   # the driver's own
            + "7f3b00000000-7f3b00021000 rw-p 00000000 00:00 0 \n"
            + "55d0c0000000-55d0c0021000 rw-p 00000000 00:00 0          [heap]\n"
            + maps(f"{TON}/cu13/lib/libcusparse.so.12 (deleted)",
                   "/usr/lib/x86_64-linux-gnu/libcudnn_ops.so.9.1.0",
                   f"{TFN}/cudnn/lib/libcudnn.so.9"))
    assert stacks.parse_maps(text) == [f"{TFN}/cudnn/lib/libcudnn.so.9",
                                       f"{TON}/cu13/lib/libcusparse.so.12",
                                       "/usr/lib/x86_64-linux-gnu/libcudnn_ops.so.9.1.0"]


@pytest.mark.parametrize("path, soname, stack", [
    (f"{TFN}/cudnn/lib/libcudnn.so.9", "libcudnn.so.9", TF),          # a shared name: folder
    (f"{TON}/cudnn/lib/libcudnn_cnn.so.9", "libcudnn_cnn.so.9", TORCH),
    (f"{TFN}/cusparse/lib/libcusparse.so.12", "libcusparse.so.12", TF),
    (f"{TON}/cu13/lib/libcusparse.so.12", "libcusparse.so.12", TORCH),
    (f"{TON}/nccl/lib/libnccl.so.2", "libnccl.so.2", TORCH),
    # A release's own SONAME says whose it is wherever it lies.
    ("/usr/local/cuda-12.8/lib64/libcudart.so.12.8.90", "libcudart.so.12", TF),
    ("/home/u/lib/libcublasLt.so.13", "libcublasLt.so.13", TORCH),
    ("/x/nvidia/cu13/lib/libnvrtc-builtins.so.13.0", "libnvrtc-builtins.so.13", TORCH),
    # torch's CUDA 13 wheel layout, in a folder no wheel record names.
    ("/elsewhere/nvidia/cu13/lib/libcurand.so.10", "libcurand.so.10", TORCH),
    # A shared name outside both stacks: the system's.
    ("/usr/lib/x86_64-linux-gnu/libcudnn.so.9.1.0", "libcudnn.so.9", OTHER),
    ("/usr/lib/x86_64-linux-gnu/libnccl.so.2", "libnccl.so.2", OTHER),
])
def test_each_library_is_classified_by_its_name_or_its_folder(path, soname, stack):
    assert stacks.soname(path) == soname
    assert stacks.classify(path, IMAGE) == stack


def test_a_folder_both_stacks_wrote_is_neither_ones():
    venv = "/v/lib/python3.11/site-packages/nvidia/cudnn/lib"
    assert stacks.classify(f"{venv}/libcudnn.so.9", {venv: SHARED}) == SHARED


TF_OWN = [f"{TFN}/cuda_runtime/lib/libcudart.so.12", f"{TFN}/cublas/lib/libcublas.so.12",
          f"{TFN}/cublas/lib/libcublasLt.so.12", f"{TFN}/cudnn/lib/libcudnn.so.9",
          f"{TFN}/cudnn/lib/libcudnn_cnn.so.9"]
TORCH_OWN = [f"{TON}/cu13/lib/libcudart.so.13", f"{TON}/cu13/lib/libcusparse.so.12",
             f"{TON}/cudnn/lib/libcudnn.so.9"]


def test_a_process_that_kept_to_its_stack_mapped_one():
    assert stacks.both_stacks(TF, stacks.parse_maps(maps(*TF_OWN)), IMAGE) == []
    assert stacks.both_stacks(TORCH, stacks.parse_maps(maps(*TORCH_OWN)), IMAGE) == []


def test_torch_s_cusparse_in_tensorflow_s_process_is_named_with_both_paths():
    mine = f"{TFN}/cusparse/lib/libcusparse.so.12"
    theirs = f"{TON}/cu13/lib/libcusparse.so.12"
    # Without TensorFlow's own copy, the line names one of its own libraries beside it.
    assert stacks.both_stacks(TF, stacks.parse_maps(maps(*TF_OWN, theirs)), IMAGE) == [
        ("libcusparse.so.12", theirs, f"{TFN}/cuda_runtime/lib/libcudart.so.12")]
    assert stacks.both_stacks(TF, stacks.parse_maps(maps(*TF_OWN, mine, theirs)), IMAGE) == [
        ("libcusparse.so.12", theirs, mine)]


def report(framework: str, paths: list[str], gpus=("NVIDIA H200",)) -> Report:
    return Report(framework, pid=4242, gpus=list(gpus), places=IMAGE,
                  libraries=stacks.classify_all(stacks.parse_maps(maps(*paths)), IMAGE))


def test_the_libraries_line_names_the_process_the_soname_and_both_paths():
    line = checks.check_libraries(report(TF, [*TF_OWN, f"{TON}/cu13/lib/libcusparse.so.12"]))
    assert line.line() == (
        "PROBLEM  tensorflow libraries: the tensorflow process (pid 4242) mapped both CUDA "
        "stacks: libcusparse.so.12 from /opt/torch/nvidia/cu13/lib/libcusparse.so.12 (torch's "
        "CUDA 13 stack) beside /usr/local/lib/python3.11/dist-packages/nvidia/cuda_runtime/lib/"
        "libcudart.so.12 (TensorFlow's CUDA 12 stack) -> " + checks.MIXED_FIX)
    # torch found TensorFlow's cuDNN first: dist-packages came before /opt/torch on sys.path.
    line = checks.check_libraries(report(TORCH, [TORCH_OWN[0], f"{TFN}/cudnn/lib/libcudnn.so.9",
                                                 f"{TON}/cudnn/lib/libcudnn.so.9"]))
    assert line.line() == (
        "PROBLEM  torch libraries: the torch process (pid 4242) mapped both CUDA stacks: "
        "libcudnn.so.9 from /usr/local/lib/python3.11/dist-packages/nvidia/cudnn/lib/"
        "libcudnn.so.9 (TensorFlow's CUDA 12 stack) and /opt/torch/nvidia/cudnn/lib/"
        "libcudnn.so.9 (torch's CUDA 13 stack) -> " + checks.MIXED_FIX)


def test_a_clean_process_gets_one_ok_line_naming_its_files_by_folder():
    assert checks.check_libraries(report(TF, TF_OWN)).line() == (
        "ok       tensorflow libraries: 5 CUDA library files mapped by its process (pid 4242), "
        "all TensorFlow's CUDA 12 stack: in /usr/local/lib/python3.11/dist-packages/nvidia: "
        "cuda_runtime/lib/{libcudart.so.12}, cublas/lib/{libcublas.so.12, libcublasLt.so.12}, "
        "cudnn/lib/{libcudnn.so.9, libcudnn_cnn.so.9}")
    assert checks.check_libraries(report(TORCH, [*TORCH_OWN, "/usr/lib/libnccl.so.2"])).line() == (
        "ok       torch libraries: 4 CUDA library files mapped by its process (pid 4242), by "
        "stack: /opt/torch/nvidia/cu13/lib/{libcudart.so.13, libcusparse.so.12} (torch's CUDA "
        "13 stack), /opt/torch/nvidia/cudnn/lib/{libcudnn.so.9} (torch's CUDA 13 stack), "
        "/usr/lib/{libnccl.so.2} (neither stack's)")
    assert checks.check_libraries(report(TF, [], gpus=())).line() == (
        "ok       tensorflow libraries: no CUDA library mapped by its process (pid 4242; no GPU)")


def test_a_framework_that_is_not_installed_says_which_models_cannot_train():
    torch_only = Config(models=("cnn-torch",))
    assert checks.check_framework(Report(TF, installed=False), torch_only).line() == (
        "note     tensorflow: not installed: ffn-tf, ffn-keras, cnn-tf, cnn-keras, lstm-tf, "
        "lstm-keras cannot train here (the config trains none) -> pip install -r "
        "requirements.txt")
    assert checks.check_framework(Report(TORCH, installed=False), torch_only).line() == (
        "PROBLEM  torch: not installed: ffn-torch, cnn-torch, lstm-torch cannot train here (the "
        "config trains cnn-torch) -> pip install -r requirements.txt")
    crashed = Report(TF, error="its probe crashed (SIGSEGV) without a report")
    assert checks.check_framework(crashed, Config()).line() == (
        "PROBLEM  tensorflow: its probe crashed (SIGSEGV) without a report; ffn-tf, ffn-keras, "
        "cnn-tf, cnn-keras, lstm-tf, lstm-keras cannot train here (the config trains ffn-tf, "
        "ffn-keras, cnn-tf, cnn-keras) -> run `python -m job.doctor.probe tensorflow` to see "
        "TensorFlow's messages")
    assert checks.check_framework(Report(TF), Config()) is None


@pytest.mark.parametrize("name, stack", [
    ("nvidia-cudnn-cu12", TF), ("nvidia_cusparse_cu12", TF), ("nvidia-cudnn-cu13", TORCH),
    ("nvidia-cublas", TORCH), ("nvidia-cudnn-cu11", None), ("nvidia-ml-py", None),
    ("numpy", None)])
def test_a_wheel_s_stack_is_in_its_name(name, stack):
    assert stacks.wheel_stack(name) == stack


def site(root: Path, framework: str, wheels: dict[str, list[str]]) -> Path:
    """A site-packages with `framework` and NVIDIA wheels, each with its RECORD of files."""
    (root / framework).mkdir(parents=True)
    (root / framework / "__init__.py").write_text("")
    for wheel, files in wheels.items():
        info = root / f"{wheel.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {wheel}\nVersion: 1.0\n")
        (info / "RECORD").write_text("".join(f"{f},,\n" for f in files))
        for f in files:
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            (root / f).write_text("")
    return root


def test_the_places_come_from_the_wheels_records_and_skip_torch_s_for_tensorflow(
        tmp_path, monkeypatch):
    tmp_path = tmp_path.resolve()   # as /proc/self/maps names files, and so places()
    torch_site = site(tmp_path / "opt-torch", "torch", {
        "nvidia-cudnn-cu13": ["nvidia/cudnn/lib/libcudnn.so.9"],
        "nvidia-cusparse": ["nvidia/cu13/lib/libcusparse.so.12"]})
    tf_site = site(tmp_path / "dist-packages", "tensorflow", {
        "nvidia-cudnn-cu12": ["nvidia/cudnn/lib/libcudnn.so.9"],
        "nvidia-cusparse-cu12": ["nvidia/cusparse/lib/libcusparse.so.12"]})
    path = [str(torch_site), str(tf_site)]   # the image's order: /opt/torch first
    places = stacks.places(path)
    assert places == {str(tf_site / "tensorflow"): TF, str(torch_site / "torch"): TORCH,
                      str(torch_site / "nvidia/cudnn/lib"): TORCH,
                      str(torch_site / "nvidia/cu13/lib"): TORCH,
                      str(tf_site / "nvidia/cudnn/lib"): TF,
                      str(tf_site / "nvidia/cusparse/lib"): TF}
    # TensorFlow's library search looks in its own wheels' folders only.
    monkeypatch.setattr(sys, "path", path)
    assert libraries.wheel_dirs(places) == [tf_site / "nvidia/cudnn/lib",
                                           tf_site / "nvidia/cusparse/lib"]


def test_one_folder_written_by_both_stacks_wheels_is_shared(tmp_path):
    both = site(tmp_path.resolve() / "venv", "torch", {"nvidia-nccl-cu12": ["nvidia/nccl/lib/libnccl.so.2"],
                                             "nvidia-nccl-cu13": ["nvidia/nccl/lib/libnccl.so.2"]})
    assert stacks.places([str(both)])[str(both / "nvidia/nccl/lib")] == SHARED


def test_a_machine_with_torch_alone_gets_clear_lines_for_tensorflow(monkeypatch):
    """examine's flow with TensorFlow's probe finding no TensorFlow (probes stood in for)."""
    from job.doctor import examine, nvidia, probe
    from job.doctor.report import Timing
    torch = Report(TORCH, pid=77, version="2.14.1+cu130", build={"cuda_version": "13.0"},
                   timings=[Timing("torch", "CPU:0", 0.1, 1280.0)])
    monkeypatch.setattr(probe, "run", lambda fw, request: torch if fw == TORCH
                        else Report(TF, pid=76, installed=False))
    monkeypatch.setattr(nvidia, "read_driver", lambda: (None, "not found"))
    lines: list[str] = []
    found = examine.examine(Config(models=("cnn-torch", "cnn-tf"), name="c"), lines.append)
    assert lines[2:] == [
        "PROBLEM  tensorflow: not installed: ffn-tf, ffn-keras, cnn-tf, cnn-keras, lstm-tf, "
        "lstm-keras cannot train here (the config trains cnn-tf) -> pip install -r "
        "requirements.txt",
        "ok       torch: torch 2.14.1+cu130, built for CUDA 13.0",
        "ok       torch step: 100.0 ms per batch of 128 on CPU:0, 1,280 images/s (no GPU)",
        "ok       torch libraries: no CUDA library mapped by its process (pid 77; no GPU)",
        "note     epoch bound: not timed: TensorFlow's probe (tf.data's input pipeline, the "
        "configured step) did not report"]
    assert [f.check for f in examine.problems(found)] == ["tensorflow"]
