"""The house's layout holds: imports point one way, data/ stays free of TensorFlow and
Kaggle, nothing heavy loads at import time, and no module outgrows a screenful or two.

The import graph is read from the source with `ast` (imports inside functions count),
so the test needs no TensorFlow and sees exactly what the code says.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from helpers.project import loaded_after

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "job"

# Rooms, lowest first: a module may import from a lower rank, or from its own room.
RANKS = {
    "job": 0, "errors": 0, "competition": 0, "styles": 0,   # leaves: facts and the registry
    "config": 1,
    "system": 2,
    "data": 3,
    "train": 4, "outputs": 4, "kaggle": 4,
    # A style's own folder: its framework, its net, loop, optimizer and feeding.
    "styles.tf": 5, "styles.keras": 5, "styles.torch": 5,
    # The worker process that trains one model in its style; the doctor's probes.
    "workers": 6, "doctor": 6,
    "candidates": 7,
    "pipeline": 8,
    "sweep": 9,
    "cli": 10,
    "__main__": 11,
}
# Sideways edges: submitting reads a run folder; Keras feeds from TensorFlow's tf.data.
SIDEWAYS = {("kaggle", "outputs"), ("styles.keras", "styles.tf")}
# Third-party packages data/ must not need: it turns CSVs into arrays and nothing more.
NOT_IN_DATA = ("tensorflow", "keras", "kaggle", "torch", "tensorboard")
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> str:
    """job.train.epochs → train; job.styles.tf.loop → styles.tf; job → job."""
    parts = module.split(".")
    if len(parts) > 2 and parts[1] == "styles":
        return f"styles.{parts[2]}"
    return parts[1] if len(parts) > 1 else "job"


def imports_of(source: str, module: str) -> set[str]:
    """Every module `source` imports, absolute names (job.x.y or a third-party top name)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:   # relative: resolve against the importing module's package
                base = module.split(".")[:len(module.split(".")) - node.level]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            found.add(name)
            # `from job.data import arrays` imports the module job.data.arrays too
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def job_sources() -> dict[str, str]:
    return {module_name(p): p.read_text() for p in sorted(PACKAGE.rglob("*.py"))}


def registry_edges() -> dict[str, set[str]]:
    """The imports the style registry makes at run time: the worker imports each style's
    loop module by the name job.styles.STYLES gives it."""
    from job.styles import STYLES
    return {"job.workers.child": {style.loop for style in STYLES.values()}}


def graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """module → the job modules it imports (names that are not modules are dropped),
    the registry's edges included."""
    modules, dynamic = set(sources), registry_edges()
    return {m: {i for i in imports_of(s, m) | dynamic.get(m, set()) if i in modules and i != m}
            for m, s in sources.items()}


def violations(sources: dict[str, str]) -> list[str]:
    """Every import against the direction, and every third-party import data/ must not make."""
    problems = []
    for module, targets in graph(sources).items():
        for target in sorted(targets):
            a, b = room(module), room(target)
            if a == b or (a, b) in SIDEWAYS:
                continue
            if RANKS[b] >= RANKS[a]:
                problems.append(f"{module} imports {target}: {a} may not import {b}")
        if room(module) == "data":
            for name in sorted(imports_of(sources[module], module)):
                if name.split(".")[0] in NOT_IN_DATA:
                    problems.append(f"{module} imports {name}: data/ stays free of it")
    return problems


def cycles(sources: dict[str, str]) -> list[list[str]]:
    """Import cycles among job modules (each found once, by depth-first search)."""
    edges, found, state = graph(sources), [], {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(edges[module]):
            if state.get(target) == "open":
                found.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    return found


# Where each framework may be imported: its styles' folders and the doctor's probe of it.
FRAMEWORK_HOMES = {"tensorflow": ("styles.tf", "styles.keras"), "keras": ("styles.keras",),
                   "torch": ("styles.torch",)}
DOCTOR_PROBES = {"job.doctor.probe_tf": "tensorflow", "job.doctor.probe_torch": "torch"}


def framework_imports(sources: dict[str, str]) -> list[str]:
    """Every import of a framework outside the folders allowed it, and every style that
    imports another style's framework."""
    problems = []
    for module, source in sources.items():
        for name in sorted(imports_of(source, module)):
            framework = name.split(".")[0]
            if framework not in FRAMEWORK_HOMES:
                continue
            if room(module) in FRAMEWORK_HOMES[framework]:
                continue
            if DOCTOR_PROBES.get(module) == framework or (
                    framework == "keras" and DOCTOR_PROBES.get(module) == "tensorflow"):
                continue
            problems.append(f"{module} imports {framework}")
    return problems


def test_only_a_styles_folder_imports_its_framework():
    assert framework_imports(job_sources()) == []


def test_a_framework_import_outside_its_folder_is_caught():
    sources = job_sources()
    sources["job.styles.torch.loop"] = "import tensorflow\n" + sources["job.styles.torch.loop"]
    sources["job.candidates.tta"] = "import torch\n" + sources["job.candidates.tta"]
    assert framework_imports(sources) == ["job.candidates.tta imports torch",
                                          "job.styles.torch.loop imports tensorflow"]


def test_the_worker_reaches_every_style_through_the_registry():
    edges = graph(job_sources())["job.workers.child"]
    assert {"job.styles.tf.loop", "job.styles.keras.loop", "job.styles.torch.loop"} <= edges


def test_every_room_has_a_rank():
    assert {room(m) for m in job_sources()} <= set(RANKS)


def test_imports_point_down():
    assert violations(job_sources()) == []


def test_there_is_no_import_cycle():
    assert cycles(job_sources()) == []


@pytest.mark.parametrize("module, added, expected", [
    ("job.data.arrays", "from job.pipeline import train\n",
     "job.data.arrays imports job.pipeline: data may not import pipeline"),
    ("job.data.sources", "from job.kaggle import client\n",
     "job.data.sources imports job.kaggle: data may not import kaggle"),
    ("job.config.schema", "import job.train.task\n",
     "job.config.schema imports job.train.task: config may not import train"),
    ("job.train.task", "from job.outputs.folder import Run\n",
     "job.train.task imports job.outputs.folder: train may not import outputs"),
    ("job.data.csv_reader", "import tensorflow as tf\n",
     "job.data.csv_reader imports tensorflow: data/ stays free of it"),
])
def test_an_upward_import_is_caught(module, added, expected):
    """The checker itself: one added line against the direction is reported."""
    sources = job_sources()
    sources[module] = added + sources[module]
    assert expected in violations(sources)


def test_a_cycle_is_caught():
    sources = job_sources()
    sources["job.data.sources"] += "\nfrom job.data import sample\n"
    sources["job.data.sample"] += "\nfrom job.data import sources\n"
    assert [set(c) for c in cycles(sources)] == [{"job.data.sample", "job.data.sources"}]


def test_nothing_heavy_loads_at_import_time():
    """The config is checked before TensorFlow or torch loads, so importing the job's
    modules (all but the styles' own folders, which are the frameworks) loads none of them."""
    light = [m for m in job_sources()
             if not room(m).startswith("styles.") and m != "job.__main__"]
    code = f"import importlib\nfor m in {light!r}: importlib.import_module(m)"
    assert loaded_after(code, ("tensorflow", "keras", "torch", "kaggle", "sklearn",
                               "matplotlib")) == []


def test_no_module_outgrows_three_hundred_lines():
    long = {m: len(s.splitlines()) for m, s in job_sources().items()
            if len(s.splitlines()) > MAX_LINES}
    assert long == {}
