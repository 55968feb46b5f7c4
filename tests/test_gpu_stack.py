"""The GPU image and the cloud VM agree: docker/cuda-constraints.txt pins every CUDA wheel
tensorflow[and-cuda] needs and every CUDA wheel torch needs, each stack to a CUDA release the
driver of the VM image family named there runs (SkyPilot's default GPU image has the same 580
driver: sky/train.yaml). The two stacks live in separate prefixes of the image, because their
cuDNN and NCCL wheels write the same files."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.version import Version

from job.doctor.nvidia import MIN_DRIVER
from helpers.dockerfile import read_instructions

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "docker" / "cuda-constraints.txt"
REQUIREMENTS = ROOT / "requirements.txt"
# The header that starts torch's section of the constraints file; it runs to the end.
TORCH_SECTION = re.compile(r"^# torch-cuda:", re.M)
# A wheel whose version counts CUDA releases (12.8.90 for CUDA 12.8); cuFFT, cuRAND,
# cuSOLVER, cuSPARSE, cuDNN and NCCL number their own releases.
CUDA_NUMBERED = ("nvidia-cuda-runtime-cu12", "nvidia-cuda-cupti-cu12", "nvidia-cuda-nvcc-cu12",
                 "nvidia-cuda-nvrtc-cu12", "nvidia-nvjitlink-cu12", "nvidia-cublas-cu12")
# The same for CUDA 13's wheels (cuBLAS 13.1 is CUDA 13.0's: it numbers its own from 13 on).
TORCH_CUDA_NUMBERED = ("cuda-toolkit", "cuda-bindings", "nvidia-cuda-runtime",
                       "nvidia-cuda-cupti", "nvidia-cuda-nvrtc", "nvidia-nvjitlink", "nvidia-nvtx")
# The libraries both stacks ship under the same path and SONAME: one release in both.
SAME_FILES = {"nvidia-cudnn-cu12": "nvidia-cudnn-cu13", "nvidia-nccl-cu12": "nvidia-nccl-cu13"}
LINUX = {**default_environment(), "platform_system": "Linux", "sys_platform": "linux",
         "platform_machine": "x86_64", "python_version": "3.11"}


def header(key: str) -> str:
    found = re.search(rf"^# {key}: *(\S+)$", CONSTRAINTS.read_text(), re.M)
    assert found, f"{CONSTRAINTS} has no `# {key}:` line"
    return found.group(1)


def parse_pins(text: str) -> dict[str, str]:
    lines = [ln.strip() for ln in text.splitlines()]
    return dict(ln.split("==") for ln in lines if ln and not ln.startswith("#"))


def section_texts() -> tuple[str, str]:
    """(tensorflow's section, torch's section) of the constraints file."""
    text = CONSTRAINTS.read_text()
    found = TORCH_SECTION.search(text)
    assert found, f"{CONSTRAINTS} has no `# torch-cuda:` line"
    return text[:found.start()], text[found.start():]


def pins() -> dict[str, str]:
    """tensorflow[and-cuda]'s pins: the file up to torch's section."""
    return parse_pins(section_texts()[0])


def torch_pins() -> dict[str, str]:
    """torch's pins: from the `# torch-cuda:` line to the end."""
    return parse_pins(section_texts()[1])


def requirement_pin(name: str) -> str:
    found = re.findall(rf"^{re.escape(name)}==(\S+)$", REQUIREMENTS.read_text(), re.M)
    assert len(found) == 1, f"requirements.txt pins {name}==<version> once"
    return found[0]


def disagreements(family: str, cuda: str, pinned: dict[str, str],
                  numbered: tuple[str, ...] = CUDA_NUMBERED, host_toolkit: bool = True) -> list[str]:
    """Why an image family, a CUDA release and the pins do not fit together. The family's
    own CUDA (common-cu129: the VM's toolkit, which the image never uses) is checked only
    with host_toolkit; what runs the image's CUDA wheels is the family's driver."""
    problems = []
    found = re.fullmatch(r"common-cu(\d{2})(\d)-.*-nvidia-(\d+)", family)
    if not found:
        return [f"{family}: expected common-cu<XY>-...-nvidia-<driver>"]
    family_cuda, driver = (int(found.group(1)), int(found.group(2))), int(found.group(3))
    wanted = tuple(int(x) for x in cuda.split("."))
    if wanted not in MIN_DRIVER:
        problems.append(f"cuda {cuda}: no known minimum driver")
    elif driver < int(MIN_DRIVER[wanted].split(".")[0]):
        problems.append(f"{family}: driver {driver} cannot run CUDA {cuda} (needs "
                        f"{MIN_DRIVER[wanted]})")
    if host_toolkit and family_cuda < wanted:
        problems.append(f"{family}: a CUDA {family_cuda[0]}.{family_cuda[1]} image for CUDA {cuda} wheels")
    for name in numbered:
        if not pinned.get(name, "").startswith(cuda + "."):
            problems.append(f"{name}=={pinned.get(name)}: not a CUDA {cuda} release")
    return problems


def test_the_default_family_runs_the_pinned_cuda_release():
    assert disagreements(header("vm-image-family"), header("cuda"), pins()) == []


def test_the_default_familys_driver_also_runs_torchs_cuda_release():
    assert header("torch-cuda") == "13.0"     # torch 2.14's PyPI wheel: CUDA 13.0, driver 580
    assert disagreements(header("vm-image-family"), header("torch-cuda"), torch_pins(),
                         TORCH_CUDA_NUMBERED, host_toolkit=False) == []


def test_a_family_whose_driver_is_too_old_is_caught():
    assert disagreements("common-cu124-ubuntu-2204-nvidia-550", "12.8", pins()) == [
        "common-cu124-ubuntu-2204-nvidia-550: driver 550 cannot run CUDA 12.8 (needs 570.26)",
        "common-cu124-ubuntu-2204-nvidia-550: a CUDA 12.4 image for CUDA 12.8 wheels"]
    newer = {**pins(), "nvidia-cuda-nvcc-cu12": "12.9.86"}
    assert disagreements(header("vm-image-family"), "12.8", newer) == [
        "nvidia-cuda-nvcc-cu12==12.9.86: not a CUDA 12.8 release"]
    # the previous default family: enough for tensorflow's CUDA 12.8, not for torch's 13.0
    old = "common-cu128-ubuntu-2204-nvidia-570"
    assert disagreements(old, header("cuda"), pins()) == []
    assert disagreements(old, "13.0", torch_pins(), TORCH_CUDA_NUMBERED, host_toolkit=False) == [
        "common-cu128-ubuntu-2204-nvidia-570: driver 570 cannot run CUDA 13.0 (needs 580.65.06)"]
    unpinned = {**torch_pins(), "nvidia-nvjitlink": "13.5.37"}   # what pip takes unpinned
    assert disagreements(header("vm-image-family"), "13.0", unpinned, TORCH_CUDA_NUMBERED,
                         host_toolkit=False) == [
        "nvidia-nvjitlink==13.5.37: not a CUDA 13.0 release"]


def test_every_cuda_wheel_tensorflow_needs_is_pinned_within_its_range():
    """tensorflow's own metadata: the wheels its and-cuda extra asks for, and their ranges."""
    needs = [Requirement(r) for r in importlib.metadata.requires("tensorflow") or []]
    cuda = {r.name: r.specifier for r in needs
            if r.marker and r.marker.evaluate({"extra": "and-cuda"})}
    assert cuda, "tensorflow lists no and-cuda wheels"
    pinned = pins()
    assert set(pinned) == set(cuda)
    assert {name: v for name, v in pinned.items() if v not in cuda[name]} == {}


def linux_requirements(dist: str, extras: set[str] = frozenset()) -> list[Requirement]:
    """What `dist`'s installed metadata asks for on Linux x86_64 (Python 3.11), with extras."""
    needs = [Requirement(r) for r in importlib.metadata.requires(dist) or []]
    return [r for r in needs if not r.marker
            or any(r.marker.evaluate({**LINUX, "extra": e}) for e in {"", *extras})]


def platform_wheel(dist: str) -> bool:
    """True when `dist` was installed from a wheel for one platform (not *-none-any)."""
    wheel = importlib.metadata.distribution(dist).read_text("WHEEL") or ""
    return any(ln.startswith("Tag:") and not ln.endswith("-none-any") for ln in wheel.splitlines())


def torch_cuda_wheels() -> dict[str, list]:
    """Every wheel of torch's CUDA stack with the specifiers that ask for it: torch's
    Linux-only requirements (markers true on Linux, false on Windows and macOS), the wheels
    of the cuda-toolkit extras it names, and, below those, every platform wheel they need.
    Read from the installed metadata (torch and cuda-toolkit at their pins; the others may be
    newer here than pinned: this venv is not installed with the constraints)."""
    found: dict[str, list] = {}
    elsewhere = [{**LINUX, "platform_system": s, "sys_platform": p}
                 for s, p in (("Windows", "win32"), ("Darwin", "darwin"))]
    todo = [r for r in linux_requirements("torch")
            if r.marker and not any(r.marker.evaluate(env) for env in elsewhere)]
    while todo:
        need = todo.pop()
        found.setdefault(need.name, []).append(need.specifier)
        if len(found[need.name]) == 1:
            todo += [r for r in linux_requirements(need.name, set(need.extras))
                     if platform_wheel(r.name)]
    return found


def test_every_cuda_wheel_torch_needs_is_pinned_within_its_range():
    """torch's own metadata, as for tensorflow: the image installs exactly torch's section
    (--no-deps), so a wheel missing here would be missing in /opt/torch."""
    assert importlib.metadata.version("torch") == requirement_pin("torch")   # the metadata read
    needs = torch_cuda_wheels()
    assert {"cuda-toolkit", "nvidia-cudnn-cu13", "nvidia-nccl-cu13", "triton",
            "nvidia-cublas", "nvidia-cuda-runtime"} <= set(needs)
    pinned = torch_pins()
    assert set(pinned) == set(needs)
    assert {name: v for name, v in pinned.items()
            if not all(v in spec for spec in needs[name])} == {}
    # the meta-package itself at the version torch names (its extras pull the others)
    [toolkit] = [Requirement(r) for r in importlib.metadata.requires("torch")
                 if r.startswith("cuda-toolkit")]
    assert {s.operator for s in toolkit.specifier} == {"=="}
    assert pinned["cuda-toolkit"] == str(next(iter(toolkit.specifier)).version)
    assert importlib.metadata.version("cuda-toolkit") in toolkit.specifier


def test_cudnn_and_nccl_are_one_release_in_both_stacks():
    """In one process libcudnn.so.9 and libnccl.so.2 are loaded once, by whichever framework
    comes first, and serve both: torch refuses a cuDNN of an older minor than its build."""
    tf, torch = pins(), torch_pins()
    assert {cu12: tf[cu12] for cu12 in SAME_FILES} == {
        cu12: torch[cu13] for cu12, cu13 in SAME_FILES.items()}


def test_torchs_cuda_wheels_write_where_tensorflows_do(tmp_path):
    """Why torch has a prefix of its own: its NCCL wheel and tensorflow's (the real wheels,
    the cu12 one from the package registry) hold the same files, so in one site-packages
    the one installed last overwrites the other's libnccl.so.2; cuDNN's wheels do the same
    with nvidia/cudnn/lib/libcudnn*.so.9."""
    version = torch_pins()["nvidia-nccl-cu13"]
    assert importlib.metadata.version("nvidia-nccl-cu13") == version
    cu13 = {str(f) for f in importlib.metadata.files("nvidia-nccl-cu13")
            if not str(f).split("/")[0].endswith(".dist-info")}
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary", ":all:", "-d", str(tmp_path),
                    f"nvidia-nccl-cu12=={pins()['nvidia-nccl-cu12']}"], check=True, timeout=600)
    [wheel] = tmp_path.glob("nvidia_nccl_cu12-*.whl")
    record = next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".dist-info/RECORD"))
    cu12 = {ln.split(",")[0] for ln in zipfile.ZipFile(wheel).read(record).decode().splitlines()
            if ln and not ln.split("/")[0].endswith(".dist-info")}
    assert "nvidia/nccl/lib/libnccl.so.2" in cu12 & cu13
    cudnn = {str(f) for f in importlib.metadata.files("nvidia-cudnn-cu13")}
    assert "nvidia/cudnn/lib/libcudnn.so.9" in cudnn   # where nvidia-cudnn-cu12 puts its own


def test_the_image_installs_the_torch_of_requirements_txt_with_its_section():
    """The Dockerfile reads torch's pin from requirements.txt and its CUDA wheels from the
    constraints file's torch section, with the same commands the build runs."""
    [run] = [args for kw, args in read_instructions() if kw == "RUN" and "--target" in args]
    assert "grep -x 'torch==[^ ]*' requirements.txt" in run
    found = subprocess.run(["grep", "-x", "torch==[^ ]*", "requirements.txt"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    assert found == [f"torch=={requirement_pin('torch')}"]
    extract = re.search(r"(sed -n '[^']*' cuda-constraints\.txt) > (\S+)", run)
    assert extract and f"-r {extract.group(2)}" in run and "--no-deps" in run
    section = subprocess.run(extract.group(1), shell=True, cwd=ROOT / "docker",
                             capture_output=True, text=True, check=True).stdout
    assert parse_pins(section) == torch_pins() and section == section_texts()[1]


# The image's platform for pip: cp311 wheels for Ubuntu 22.04's glibc 2.35 (pip takes each
# manylinux tag as given, so every older one is named, and the legacy aliases).
IMAGE_PLATFORM = [arg for tag in [*(f"manylinux_2_{v}_x86_64" for v in range(5, 36)),
                                  "manylinux2014_x86_64", "manylinux2010_x86_64",
                                  "manylinux1_x86_64"] for arg in ("--platform", tag)]


def resolve_for_the_image(tmp_path: Path, *args: str) -> dict[str, str]:
    """What `pip install` would install in the image, by name and version (a dry run: pip
    reads the wheels' metadata, the package registry's where it has it)."""
    report = tmp_path / "report.json"
    subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet",
                    "--ignore-installed", "--only-binary", ":all:", *IMAGE_PLATFORM,
                    "--python-version", "3.11", "--target", str(tmp_path / "target"),
                    "--report", str(report), *args], check=True, timeout=900)
    return {i["metadata"]["name"].lower(): i["metadata"]["version"]
            for i in json.loads(report.read_text())["install"]}


def test_torchs_section_installs_for_the_images_platform(tmp_path):
    """The Dockerfile's first install, as it runs it: every wheel of the section exists for
    cp311 and glibc 2.35 at its pin."""
    section = tmp_path / "torch-cuda.txt"
    section.write_text(section_texts()[1])
    found = resolve_for_the_image(tmp_path, "--no-deps", "-r", str(section),
                                  f"torch=={requirement_pin('torch')}")
    expected = {**torch_pins(), "torch": requirement_pin("torch")}
    assert set(found) == set(expected)
    assert {n: v for n, v in found.items() if Version(v) != Version(expected[n])} == {}


@pytest.mark.slow
def test_both_stacks_resolve_together_with_the_requirements(tmp_path):
    """The main install sees torch installed and checks torch's requirements against the
    constraints too: all of it resolves as one, at the pins (about a minute)."""
    found = resolve_for_the_image(tmp_path, "-r", str(REQUIREMENTS), "-c", str(CONSTRAINTS),
                                  f"tensorflow[and-cuda]=={requirement_pin('tensorflow')}")
    expected = {**pins(), **torch_pins()}
    assert {n: (v, found.get(n)) for n, v in expected.items()
            if n not in found or Version(found[n]) != Version(v)} == {}


def test_the_image_keeps_torch_and_tensorflow_in_separate_prefixes():
    """The real danger: torch's cuDNN and NCCL in tensorflow's site-packages (see above)."""
    steps = read_instructions()
    [(at_torch, torch_run)] = [(i, a) for i, (kw, a) in enumerate(steps)
                               if kw == "RUN" and "--target" in a]
    prefix = re.search(r"--target (\S+)", torch_run).group(1)
    [(at_main, main_run)] = [(i, a) for i, (kw, a) in enumerate(steps)
                             if kw == "RUN" and "-r requirements.txt" in a]
    env = [(i, a) for i, (kw, a) in enumerate(steps) if kw == "ENV"]
    xla = next(a for _, a in env if "--xla_gpu_cuda_data_dir=" in a)
    site = re.search(r"--xla_gpu_cuda_data_dir=(\S+)/nvidia/cuda_nvcc", xla).group(1)
    assert site == "/usr/local/lib/python3.11/dist-packages"   # tensorflow's and-cuda wheels
    prefix_path, site_path = Path(prefix), Path(site)
    assert prefix_path.is_absolute() and prefix_path != site_path
    assert not prefix_path.is_relative_to(site_path) and not site_path.is_relative_to(prefix_path)
    # torch first; the main install runs with the prefix on sys.path, before dist-packages
    # (torch looks for its CUDA libraries along sys.path), so pip finds torch installed
    # there and does not put it, or its CUDA 13 wheels, into dist-packages
    [(at_path, path_env)] = [(i, a) for i, a in env if a.startswith("PYTHONPATH=")]
    assert path_env.split("=", 1)[1].split(":")[0] == prefix
    assert at_torch < at_path < at_main
    assert "--target" not in main_run
    assert not re.search(r"--(upgrade|force-reinstall|ignore-installed)\b|\s-U\s", main_run)
    assert f"torch.__file__.startswith('{prefix}/')" in main_run     # and the build checks it
    assert f"test ! -e {site}/torch" in main_run
    assert f"test ! -e {site}/nvidia/cu13" in main_run


def test_the_image_points_xla_at_the_pinned_nvcc_wheels_ptxas_and_libdevice(tmp_path):
    """The wheel itself, from the package registry: its layout is what XLA_FLAGS names."""
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    folder = re.search(r"--xla_gpu_cuda_data_dir=(\S+)", dockerfile).group(1)
    assert folder.endswith("/dist-packages/nvidia/cuda_nvcc")
    assert f"PATH={folder}/bin:$PATH" in dockerfile
    version = pins()["nvidia-cuda-nvcc-cu12"]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary", ":all:", "--platform", "manylinux2014_x86_64",
                    "-d", str(tmp_path), f"nvidia-cuda-nvcc-cu12=={version}"],
                   check=True, timeout=300)
    [wheel] = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"nvidia/cuda_nvcc/bin/ptxas", "nvidia/cuda_nvcc/nvvm/libdevice/libdevice.10.bc"} <= names
