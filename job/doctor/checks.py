"""The doctor's checks, in order. Each takes what it judges as arguments (a probe's report,
the driver, the libraries that loaded), so a test can hand it a failure this machine lacks."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from job.config import Config
from job.doctor import libraries, nvidia, stacks
from job.doctor.findings import NOTE, OK, PROBLEM, Finding, needed
from job.doctor.report import EPOCH_IMAGES, Report, Timing, Torch
from job.styles import MODEL_NAMES, ModelId
from job.system.runtime import COMPUTE_DTYPES

NO_GPU_FIX = ("on a GPU machine install the NVIDIA driver (nvidia-smi must list the GPU) and "
              "run the image with --gpus all; to train on the CPU use a config with "
              "runtime.require_gpu: false")
CONSTRAINTS = "docker/cuda-constraints.txt"
NAMES = {stacks.TF: "TensorFlow", stacks.TORCH: "torch"}
# The framework each style's worker imports: Keras runs on TensorFlow.
STACKS = {stacks.TF: "TensorFlow's CUDA 12 stack", stacks.TORCH: "torch's CUDA 13 stack",
          stacks.SHARED: "a folder both stacks' wheels wrote", stacks.OTHER: "neither stack's"}
MIXED_FIX = ("one stack per process: take the other stack's folders out of LD_LIBRARY_PATH and "
             "LD_PRELOAD, and keep /opt/torch first on PYTHONPATH (torch preloads its libraries "
             "from the first sys.path entry that has them); docker/README.md")


def see(framework: str) -> str:
    """How to see a framework's own messages, which its probe process keeps from the doctor."""
    return f"run `python -m job.doctor.probe {framework}` to see {NAMES[framework]}'s messages"


def models_of(framework: str, models=MODEL_NAMES) -> list[str]:
    """The models of `models` whose style trains in `framework`."""
    return [m for m in models if ModelId.of(m).framework == framework]


def check_framework(report: Report, config: Config) -> Finding | None:
    """Which models cannot train here when a framework is missing or its probe failed."""
    # A PROBLEM when the config trains one of them; None when the probe reported.
    wanted = models_of(report.framework, config.trained_models)
    if report.installed and not report.error:
        return None
    if not report.installed:
        text = f"not installed: {', '.join(models_of(report.framework))} cannot train here"
        fix = "pip install -r requirements.txt"
    else:
        text = f"{report.error}; {', '.join(models_of(report.framework))} cannot train here"
        fix = see(report.framework)
    text += f" (the config trains {', '.join(wanted)})" if wanted else " (the config trains none)"
    return needed(bool(wanted), report.framework, text, fix)


def check_versions(report: Report, require_gpu: bool) -> Finding:
    """Python, TensorFlow, Keras, and the CUDA and cuDNN this TensorFlow was built for."""
    build = report.build
    text = (f"Python {platform.python_version()}, TensorFlow {report.version}, "
            f"Keras {report.versions.get('keras')}")
    if not build.get("is_cuda_build"):
        return needed(require_gpu, "versions", text + "; this TensorFlow has no CUDA support",
                      "pip install 'tensorflow[and-cuda]' (the image does)")
    return Finding(OK, "versions", f"{text}; TensorFlow built for CUDA "
                                   f"{build.get('cuda_version')}, "
                                   f"cuDNN {build.get('cudnn_version')}")


def check_torch(torch: Torch | None, driver: nvidia.Driver | None, tf_gpus: int,
                wanted: bool) -> Finding:
    """torch next to TensorFlow: installed, its CUDA release run by the driver, and it sees
    the GPUs TensorFlow sees. A PROBLEM only when the config trains a -torch model."""
    if torch is None:
        return needed(wanted, "torch", "not installed", "pip install -r requirements.txt")
    text = f"torch {torch.version}, " + (f"built for CUDA {torch.cuda}" if torch.cuda
                                         else "a CPU build")
    if driver is not None and torch.cuda:
        release = nvidia.parse_version(torch.cuda)
        if not nvidia.supports(driver.cuda, release):
            return needed(wanted, "torch", f"{text}, newer than driver {driver.version} runs "
                          f"(CUDA up to {driver.cuda[0]}.{driver.cuda[1]})",
                          f"update the driver to {nvidia.MIN_DRIVER.get(release, 'a newer one')}"
                          f" or newer (the image's vm-image-family in {CONSTRAINTS} has one)")
    if tf_gpus and torch.gpus < tf_gpus:
        return needed(wanted, "torch", f"{text}; sees {torch.gpus} of the {tf_gpus} GPUs "
                      "TensorFlow sees", f"{see(stacks.TORCH)}; check the image's torch prefix "
                      "(docker/README.md)")
    return Finding(OK, "torch", text + (f"; sees {torch.gpus} GPU(s)" if torch.gpus else ""))


def check_libraries(report: Report) -> Finding:
    """The CUDA library files a framework's process mapped; a PROBLEM if from both stacks."""
    # Both stacks in one process: a SONAME they share serves one framework the other's build.
    check = f"{report.framework} libraries"
    clashes = stacks.both_stacks(report.framework, [lib.path for lib in report.libraries],
                                 report.places)
    if clashes:
        other = stacks.TORCH if report.framework == stacks.TF else stacks.TF
        named = "; ".join(f"{name} from {path} ({STACKS[other]}) "
                          f"{'and' if stacks.soname(own) == name else 'beside'} {own} "
                          f"({STACKS[report.framework]})" for name, path, own in clashes)
        return Finding(PROBLEM, check, f"the {report.framework} process (pid {report.pid}) "
                                       f"mapped both CUDA stacks: {named}", MIXED_FIX)
    if not report.libraries:
        return Finding(OK, check, f"no CUDA library mapped by its process (pid {report.pid}"
                                  f"{'' if report.gpus else '; no GPU'})")
    where = f"by its process (pid {report.pid})"
    folders: dict[tuple[str, str], list[str]] = {}
    for lib in report.libraries:
        folders.setdefault((str(Path(lib.path).parent), lib.stack), []).append(
            Path(lib.path).name)
    kinds = {stack for _, stack in folders}
    # Folders relative to the one holding them all (site-packages/nvidia), named once.
    common = os.path.commonpath([f for f, _ in folders]) if len(folders) > 1 else ""
    common = "" if common == os.sep else common
    listed = ", ".join(f"{os.path.relpath(folder, common) if common else folder}/"
                       f"{{{', '.join(sorted(names))}}}"
                       + ("" if len(kinds) == 1 else f" ({STACKS[stack]})")
                       for (folder, stack), names in folders.items())
    whose = f"all {STACKS[kinds.pop()]}" if len(kinds) == 1 else "by stack"
    return Finding(OK, check, f"{len(report.libraries)} CUDA library files mapped {where}, "
                              f"{whose}: {f'in {common}: ' if common else ''}{listed}")


def check_driver(driver: nvidia.Driver | None, why: str, require_gpu: bool) -> Finding:
    if driver is None:
        return needed(require_gpu, "NVIDIA driver", why, NO_GPU_FIX if require_gpu else "")
    count = f"{len(driver.gpus)} GPU{'s' if len(driver.gpus) != 1 else ''}"
    return Finding(OK, "NVIDIA driver", f"{driver.version}, runs CUDA up to "
                                        f"{driver.cuda[0]}.{driver.cuda[1]}; {count}")


def check_cuda_runtime(driver: nvidia.Driver | None, runtime: str | None,
                       require_gpu: bool) -> Finding:
    """The installed CUDA runtime (the nvidia-cuda-runtime-cu12 wheel) against the driver."""
    if driver is None:
        return Finding(OK, "CUDA runtime", f"{runtime or 'none installed'}; no driver to run it")
    if runtime is None:
        return needed(require_gpu, "CUDA runtime", f"no {libraries.RUNTIME_WHEEL} installed",
                      f"pip install 'tensorflow[and-cuda]' -c {CONSTRAINTS}")
    wanted = nvidia.parse_version(runtime)
    if nvidia.supports(driver.cuda, wanted):
        return Finding(OK, "CUDA runtime", f"{runtime}, which driver {driver.version} supports")
    minimum = nvidia.MIN_DRIVER.get(wanted, "a newer one")
    return needed(require_gpu, "CUDA runtime",
                  f"{runtime} is newer than driver {driver.version} supports (CUDA up to "
                  f"{driver.cuda[0]}.{driver.cuda[1]})",
                  f"update the driver to {minimum} or newer, or install the CUDA wheels of "
                  f"{CONSTRAINTS} chosen for this driver (docker/README.md: choosing a driver)")


def check_gpus(driver: nvidia.Driver | None) -> list[Finding]:
    """Each GPU's name, memory and compute capability; TensorFlow 2.21 needs 6.0 or more."""
    findings = []
    for i, gpu in enumerate(driver.gpus if driver else ()):
        major, minor = gpu.capability
        text = (f"{gpu.name}, {gpu.memory_bytes / 2**30:.1f} GiB, compute capability "
                f"{major}.{minor}")
        if gpu.capability < (6, 0):
            findings.append(Finding(PROBLEM, f"GPU {i}", text + ", older than TensorFlow's 6.0",
                                    "use a newer GPU (T4, L4, A100, ...)"))
        else:
            findings.append(Finding(OK, f"GPU {i}", text))
    return findings


def check_registered(tf_gpus: int, driver: nvidia.Driver | None, loaded: list,
                     dirs: list, require_gpu: bool) -> Finding:
    """TensorFlow registered every GPU the driver sees; if not, which library failed."""
    seen = len(driver.gpus) if driver else 0
    if seen == 0 and tf_gpus == 0:
        where = "NVIDIA driver: not found" if driver is None else "the NVIDIA driver lists none"
        return needed(require_gpu, "GPU", f"none visible to TensorFlow; {where}",
                      NO_GPU_FIX if require_gpu else "training runs on the CPU")
    if tf_gpus >= seen:
        return Finding(OK, "GPU", f"TensorFlow registered {tf_gpus} of {seen} GPU(s)")
    failed = [lib for lib in loaded if lib.path is None]
    text = f"TensorFlow registered {tf_gpus} of the {seen} GPU(s) the driver sees"
    if not failed:
        return Finding(PROBLEM, "GPU", text + "; every CUDA library loads", see(stacks.TF))
    looked = ", ".join(str(d) for d in dirs) or "no wheel folders"
    names = ", ".join(lib.name for lib in failed)
    wheels = " ".join(sorted({libraries.LIBRARIES.get(lib.name, lib.name) for lib in failed}))
    return Finding(PROBLEM, "GPU", f"{text}: {names} did not load (looked in {looked} and the "
                                   "system library path)",
                   f"pip install {wheels} -c {CONSTRAINTS}")


def check_xla_files(has_gpu: bool, flagged: Path | None, nvcc: Path | None,
                    wanted: bool) -> Finding:
    """XLA on a GPU compiles with ptxas and links libdevice, from the nvcc wheel."""
    if not has_gpu:
        return Finding(OK, "XLA's CUDA files", "not needed without a GPU")
    folder = flagged or nvcc
    if folder is None:
        return needed(wanted, "XLA's CUDA files", "no nvidia-cuda-nvcc-cu12 wheel and no "
                      "XLA_FLAGS=--xla_gpu_cuda_data_dir", f"pip install nvidia-cuda-nvcc-cu12 "
                      f"-c {CONSTRAINTS}")
    missing = libraries.missing_xla_files(folder)
    if missing:
        return needed(wanted, "XLA's CUDA files", f"{folder} lacks {', '.join(missing)}",
                      f"export XLA_FLAGS=--xla_gpu_cuda_data_dir=<the nvcc wheel's "
                      f"nvidia/cuda_nvcc folder>{f' (found {nvcc})' if nvcc else ''}")
    if flagged is None:
        return Finding(NOTE, "XLA's CUDA files", f"ptxas and libdevice in {folder}, but "
                       "XLA_FLAGS does not name it", f"export XLA_FLAGS="
                       f"--xla_gpu_cuda_data_dir={folder} (the image sets it)")
    return Finding(OK, "XLA's CUDA files", f"ptxas and libdevice in {folder}")


def check_step(timing: Timing, has_gpu: bool, wanted: bool, batch: int) -> Finding:
    """One timed training step: it ran, and on the GPU when there is one."""
    check = f"{timing.variant} step"
    framework = stacks.TORCH if timing.variant == "torch" else stacks.TF
    if timing.error:
        return needed(wanted, check, f"failed: {timing.error}",
                      f"{see(framework)}; the config needs it" if wanted else
                      "the config does not use it")
    text = (f"{timing.seconds * 1000:.1f} ms per batch of {batch} on {timing.device}, "
            f"{timing.images_per_s:,.0f} images/s")
    if has_gpu and "GPU" not in timing.device:
        return Finding(PROBLEM, check, text + ", not on the GPU", see(framework))
    return Finding(OK, check, text + ("" if has_gpu else " (no GPU)"))


def check_bound(pipeline_images_per_s: float | None, step: Timing | None) -> Finding:
    """Which of the host's input pipeline and the device's step sets an epoch's pace."""
    if pipeline_images_per_s is None or step is None:
        return Finding(NOTE, "epoch bound", "not timed: TensorFlow's probe (tf.data's input "
                       "pipeline, the configured step) did not report")
    if step.error or not step.images_per_s:
        return Finding(NOTE, "epoch bound", f"input pipeline {pipeline_images_per_s:,.0f} "
                       "images/s; the configured step did not run")
    slower = min(pipeline_images_per_s, step.images_per_s)
    epoch = f"~{EPOCH_IMAGES / slower:.1f} s per {EPOCH_IMAGES:,}-image epoch"
    text = (f"input pipeline {pipeline_images_per_s:,.0f} images/s, {step.variant} step "
            f"{step.images_per_s:,.0f} images/s")
    if pipeline_images_per_s < step.images_per_s:
        return Finding(NOTE, "epoch bound", f"{text}: the input pipeline bounds an epoch ({epoch})",
                       "more CPU cores feed the GPU faster (augmentation runs on the host)")
    return Finding(OK, "epoch bound", f"{text}: the step bounds an epoch ({epoch})")


def step_variants(config: Config) -> list[tuple[str, bool, str, bool]]:
    """(name, jit, compute dtype, needed by the config) of each timed step; the config's
    own combination last, when it is none of the three."""
    rt = config.runtime
    dtype = COMPUTE_DTYPES[rt.mixed_precision]
    variants = [("float32", False, "float32", True),
                ("XLA", True, "float32", rt.jit_compile),
                ("mixed_float16", False, "float16", rt.mixed_precision == "mixed_float16")]
    configured = (rt.jit_compile, dtype)
    if configured not in {(jit, dt) for _, jit, dt, _ in variants}:
        name = f"{rt.mixed_precision}{' + XLA' if rt.jit_compile else ''}"
        variants.append((name, rt.jit_compile, dtype, True))
    return variants


def configured_variant(config: Config, timings: list[Timing]) -> Timing | None:
    """The timing of the step the config trains with; None when nothing was timed."""
    rt = config.runtime
    for (name, jit, dt, _), timing in zip(step_variants(config), timings):
        if (jit, dt) == (rt.jit_compile, COMPUTE_DTYPES[rt.mixed_precision]):
            return timing
    return None
