"""What a framework's probe process reports to the doctor, as JSON on its stdout: the
shape both ends agree on, so the doctor's checks judge plain data, never a framework."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

# A Kaggle epoch: 42,000 training rows less the default 10% validation.
EPOCH_IMAGES = 37_800
FRAMEWORKS = ("tensorflow", "torch")


@dataclass(frozen=True)
class Timing:
    """One timed training step, or why it failed."""

    variant: str          # "float32", "XLA", "mixed_float16", "torch", ...
    device: str           # where the step ran, e.g. "GPU:0"
    seconds: float        # per step
    images_per_s: float
    error: str = ""


def error_text(error: BaseException) -> str:
    """`ValueError: its first line`, at most 300 characters: how a report names a failure."""
    first = str(error).strip().splitlines()
    return f"{type(error).__name__}: {first[0] if first else ''}"[:300]


@dataclass(frozen=True)
class Library:
    """One CUDA library file mapped into the probe's process, and whose stack it is."""

    path: str
    soname: str           # the name the loader binds once per process, e.g. libcudnn.so.9
    stack: str            # stacks.TF | stacks.TORCH | stacks.SHARED | stacks.OTHER


@dataclass(frozen=True)
class Loaded:
    """A CUDA library opened by name as TensorFlow would, when it registered too few GPUs."""

    name: str
    path: str | None      # where it loaded from; None when it did not load
    error: str = ""


@dataclass(frozen=True)
class Report:
    """Everything one framework's process found about itself."""

    framework: str                       # "tensorflow" | "torch"
    pid: int = 0                         # the probe's process, never the doctor's
    installed: bool = True
    version: str = ""
    versions: dict = field(default_factory=dict)   # what else decides results (Keras)
    build: dict = field(default_factory=dict)      # cuda_version, cudnn_version, is_cuda_build
    gpus: list = field(default_factory=list)       # the GPUs the framework sees, by name
    libraries: list = field(default_factory=list)  # Library, read from /proc/self/maps
    places: dict = field(default_factory=dict)     # folder → stack, how they were classified
    timings: list = field(default_factory=list)    # Timing per step variant
    pipeline_images_per_s: float | None = None     # the tf.data input pipeline (TF only)
    search_dirs: list = field(default_factory=list)  # where `loaded` looked (TF only)
    loaded: list = field(default_factory=list)     # Loaded, only when GPUs went unregistered
    error: str = ""                      # the probe itself failed: why

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Report":
        raw = json.loads(text)
        known = {f.name for f in fields(cls)}
        raw = {k: v for k, v in raw.items() if k in known}   # an older or newer probe
        raw["libraries"] = [Library(**x) for x in raw.get("libraries", [])]
        raw["timings"] = [Timing(**x) for x in raw.get("timings", [])]
        raw["loaded"] = [Loaded(**x) for x in raw.get("loaded", [])]
        return cls(**raw)


@dataclass(frozen=True)
class Torch:
    """torch as its probe saw it, for the check against the driver and TensorFlow's GPUs."""

    version: str
    cuda: str | None      # the CUDA release this torch was built for ("13.0"); None: CPU build
    gpus: int             # CUDA devices torch can use here

    @classmethod
    def of(cls, report: Report) -> "Torch":
        return cls(report.version, report.build.get("cuda_version"), len(report.gpus))
