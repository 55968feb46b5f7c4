"""Which CUDA stack a mapped library file belongs to: TensorFlow's CUDA 12 wheels
(`nvidia-*-cu12`, in the image's dist-packages) or torch's CUDA 13 ones (`nvidia-*` and
`nvidia-*-cu13`, in /opt/torch; docker/Dockerfile). Four names are shipped by both
(libcusparse.so.12, libcurand.so.10, libcudnn*.so.9, libnccl.so.2) and a process binds
each once, so only the file's folder tells them apart. Everything but `places` and
`mapped` is a pure function of paths, so a test can hand it any /proc/self/maps."""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import re
import sys
from pathlib import Path

from job.doctor.report import Library

TF, TORCH = "tensorflow", "torch"
SHARED = "shared"    # a folder both stacks' wheels wrote: one overwrote the other's files
OTHER = "other"      # neither stack's: the system's, or a folder no wheel installed

# The CUDA libraries the frameworks open (libcuda.so, the driver's, is neither stack's).
CUDA_LIBRARY = re.compile(
    r"^lib(cudart|cublas|cublasLt|cudnn(_\w+)?|cusparse|cusparseLt|curand|nccl|cufft|cufftw|"
    r"cusolver|cusolverMg|nvrtc|nvrtc-builtins|nvrtc\.alt|nvJitLink|cupti|cufile|"
    r"cufile_rdma|nvshmem\w*|nvToolsExt|nvtx3interop|nvblas)\.so(\.|$)")

# SONAMEs only one release ships: the name alone says whose it is, wherever it lies.
CUDA_12 = {"libcudart.so.12", "libcublas.so.12", "libcublasLt.so.12", "libcufft.so.11",
           "libcufftw.so.11", "libcusolver.so.11", "libcusolverMg.so.11", "libnvrtc.so.12",
           "libnvrtc-builtins.so.12", "libnvJitLink.so.12", "libcupti.so.12"}
CUDA_13 = {"libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcufft.so.12",
           "libcufftw.so.12", "libcusolver.so.12", "libcusolverMg.so.12", "libnvrtc.so.13",
           "libnvrtc-builtins.so.13", "libnvJitLink.so.13", "libcupti.so.13", "libnvblas.so.13"}
BY_NAME = {**{n: TF for n in CUDA_12}, **{n: TORCH for n in CUDA_13}}


def soname(path: str) -> str:
    """/x/libcudnn.so.9.1.0 → libcudnn.so.9: the name the loader binds."""
    name = Path(path).name
    found = re.match(r"(.+?\.so(\.\d+)?)(\.|$)", name)
    return found.group(1) if found else name


def parse_maps(text: str) -> list[str]:
    """The CUDA library files in /proc/<pid>/maps text, each once, in order of address."""
    paths: list[str] = []
    for line in text.splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) < 6 or not parts[5].startswith("/"):
            continue   # anonymous memory, [heap], [stack], ...
        path = parts[5].removesuffix(" (deleted)")
        if CUDA_LIBRARY.match(Path(path).name) and path not in paths:
            paths.append(path)
    return paths


def classify(path: str, places: dict[str, str]) -> str:
    """The stack `path` belongs to, given `places` (folder → stack)."""
    # A release's own SONAME decides wherever the file lies; a shared one, its deepest
    # known folder; a folder no wheel record names, torch's CUDA 13 layout (nvidia/cu13).
    by_name = BY_NAME.get(soname(path))
    if by_name:
        return by_name
    folders = [f for f in places if path.startswith(f.rstrip("/") + "/")]
    if folders:
        return places[max(folders, key=len)]
    return TORCH if "/nvidia/cu13/" in path else OTHER


def classify_all(paths: list[str], places: dict[str, str]) -> list[Library]:
    return [Library(p, soname(p), classify(p, places)) for p in paths]


def both_stacks(process: str, paths: list[str],
                places: dict[str, str]) -> list[tuple[str, str, str]]:
    """(SONAME, other stack's path, own stack's path) per library, if `process` mapped both."""
    libs = classify_all(paths, places)
    own = [lib for lib in libs if lib.stack == process]
    foreign = [lib for lib in libs if lib.stack in (TF, TORCH) and lib.stack != process]
    if not own or not foreign:
        return []
    found = []
    for lib in foreign:
        # Its own copy of the same SONAME when both are mapped, else any of its own.
        twin = next((o for o in own if o.soname == lib.soname), own[0])
        found.append((lib.soname, lib.path, twin.path))
    return found


def wheel_stack(name: str) -> str | None:
    """A distribution's stack by its name (docker/cuda-constraints.txt), or None."""
    # nvidia-*-cu12 are tensorflow[and-cuda]'s; torch's are suffix-less or -cu13.
    name = name.lower().replace("_", "-")
    if not name.startswith("nvidia-") or name == "nvidia-ml-py":   # NVML: the driver's
        return None
    suffix = re.search(r"-cu(\d+)$", name)
    if suffix is None or suffix.group(1) == "13":
        return TORCH
    return TF if suffix.group(1) == "12" else None


def places(path: list[str] | None = None) -> dict[str, str]:
    """Folder → stack of the NVIDIA wheels' library folders and the frameworks on `path`."""
    # Read from the wheels' RECORDs and found by PathFinder: nothing is imported.
    path = sys.path if path is None else path
    found: dict[str, str] = {}
    # Resolved, as /proc/self/maps names files (a venv's lib64 or the venv may be a link).
    for framework in (TF, TORCH):
        spec = importlib.machinery.PathFinder.find_spec(framework, path)
        if spec and spec.origin:
            found[str(Path(spec.origin).resolve().parent)] = framework
    for dist in importlib.metadata.distributions(path=path):
        stack = wheel_stack(dist.metadata["Name"] or "")
        if stack is None:
            continue
        for file in dist.files or ():
            if file.parts[:1] == ("nvidia",) and ".so" in file.name:
                folder = str(Path(dist.locate_file(file)).resolve().parent)
                found[folder] = stack if found.get(folder, stack) == stack else SHARED
    return found


def mapped(maps: Path = Path("/proc/self/maps")) -> list[str]:
    """The CUDA library files mapped into this process (none where there is no /proc)."""
    try:
        return parse_maps(maps.read_text())
    except OSError:
        return []
