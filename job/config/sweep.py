"""A sweep file: a normal config plus a `sweep:` section, checked whole before any trial.

Every value the space can hand a trial is built and validated here like a `--set`
(every grid point; every choice and both ends of every range), so a sweep cannot
discover a bad value hours in, on some VM, in its 17th trial.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from job.config.checks import check_config
from job.config.loading import read_raw, replace_name
from job.config.schema import Config, _f
from job.config.values import Origin, build, describe, known_keys, printable
from job.errors import ConfigError
from job.styles import AverageId, ModelId

# Keys a trial may not change: every trial must train on the same data (or the
# objective compares different things) and land in the sweep's own folder.
# A sweep's workers each train alone (one per GPU): none may join a multi-worker cluster.
FIXED_KEYS = ("data.source", "data.dir", "data.sample_dir", "data.val_fraction", "data.seed",
              "output.runs_dir", "competition", "runtime.distribute")
# Beyond this many combinations of choices and range ends, each value is checked on its own.
MAX_COMBINATIONS = 4096
RANGE_KEYS = {"low", "high", "log", "step"}


@dataclass(frozen=True)
class SweepSettings:
    study: str = "sweep"
    storage: str = "auto"
    sampler: Literal["grid", "random", "tpe"] = "tpe"
    seed: int = _f(0, lo=0)
    trials: int = _f(20, lo=1)
    objective: Literal["val_accuracy", "val_loss"] = "val_accuracy"
    model: str = "best"
    pruner: Literal["none", "median", "hyperband"] = "none"
    heartbeat_seconds: int = _f(60, lo=1)
    grace_seconds: int = _f(180, lo=1)
    max_retries: int = _f(2, lo=0)

    @property
    def direction(self) -> str:
        return "minimize" if self.objective.endswith("loss") else "maximize"


@dataclass(frozen=True)
class Dimension:
    """One swept key: a list of choices, or a numeric range (int when both ends are)."""

    key: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    @property
    def is_int(self) -> bool:
        return self.choices is None and all(
            isinstance(v, int) and not isinstance(v, bool)
            for v in (self.low, self.high, self.step) if v is not None)

    def grid_values(self) -> tuple:
        """The values a grid visits: the choices, or a stepped range's every step."""
        if self.choices is not None:
            return self.choices
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        values = [self.low + i * self.step for i in range(count)]
        return tuple(int(v) if self.is_int else round(v, 12) for v in values)

    def edge_values(self) -> tuple:
        """What checking must cover: every choice, or both ends of the range."""
        return self.choices if self.choices is not None else (self.low, self.high)


@dataclass(frozen=True)
class Sweep:
    """A checked sweep file: its settings, its space, and the base config's raw mapping."""

    path: Path
    settings: SweepSettings
    space: tuple[Dimension, ...]
    base: Config
    raw: dict
    origin: Origin

    def trial_config(self, values: dict[str, Any], name: str) -> Config:
        """The base config with one trial's values set, validated like `--set`."""
        return build_with(self.raw, values, self.origin, name)


def load_sweep(path: str | Path, overrides: list[str] = ()) -> Sweep:
    """Read a sweep file (and what it extends), apply `--set`, check all of it."""
    path = Path(path)
    raw, origin = read_raw(path, overrides)
    section = raw.pop("sweep", None)
    if section is None:
        raise ConfigError(f"{path}: no sweep: section; a sweep file extends a config and adds "
                          "one (see configs/sweep.yaml)")
    if not isinstance(section, dict):
        raise ConfigError(f"{origin.where('sweep')}: expected a mapping, got {describe(section)}")
    section = dict(section)
    space_raw = section.pop("space", None)
    settings = build(SweepSettings, section, origin, "sweep.")
    check_settings(settings, origin)
    base = build(Config, copy.deepcopy(raw), origin, "")
    check_config(base, origin)
    space = parse_space(space_raw, origin)
    sweep = Sweep(path, settings, space, replace_name(base, path.stem), raw, origin)
    check_objective_model(settings, sweep.base, origin)
    check_grid_size(sweep)
    check_every_point(sweep)
    return sweep


def is_sweep_file(path: str | Path) -> bool:
    """A file (or one it extends) with a sweep: section."""
    return "sweep" in read_raw(Path(path))[0]


def check_settings(settings: SweepSettings, origin: Origin) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", settings.study):
        raise ConfigError(f"{origin.where('sweep.study')}: expected a name of letters, digits, "
                          f". _ - (it names the study and its folder), got "
                          f"{describe(settings.study)}")
    if settings.grace_seconds <= settings.heartbeat_seconds:
        raise ConfigError(f"{origin.where('sweep.grace_seconds')}: must be longer than "
                          f"sweep.heartbeat_seconds ({settings.heartbeat_seconds}), or a "
                          "healthy worker's trial is retried between two beats")


def parse_space(space: Any, origin: Origin) -> tuple[Dimension, ...]:
    """`space:` entries → dimensions; each key a config value a trial may set."""
    if not isinstance(space, dict) or not space:
        found = "nothing" if space is None else describe(space)
        raise ConfigError(f"{origin.where('sweep.space')}: expected at least one key to sweep, "
                          f"e.g. train.learning_rate: {{low: 1.0e-4, high: 3.0e-3, log: true}}; "
                          f"got {found}")
    leaves = leaf_config_keys()
    return tuple(parse_dimension(str(key), spec, origin, leaves) for key, spec in space.items())


def leaf_config_keys() -> list[str]:
    """Dotted names of the config's values (not its sections)."""
    keys = known_keys(Config)
    return [k for k in keys if not any(other.startswith(k + ".") for other in keys)]


def parse_dimension(key: str, spec: Any, origin: Origin, leaves: list[str]) -> Dimension:
    where = origin.where(f"sweep.space.{key}")
    if key not in leaves:
        close = difflib.get_close_matches(key, leaves, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else " (any config value's dotted key)"
        raise ConfigError(f"{where}: unknown config key {printable(key)}{hint}")
    if key in FIXED_KEYS or key.startswith("output."):
        raise ConfigError(f"{where}: a sweep may not vary {key}: every trial trains alone, on "
                          "the same data, into the sweep's folder")
    if not isinstance(spec, dict) or not spec:
        raise ConfigError(f"{where}: expected {{choices: [...]}} or {{low: ..., high: ...}}, "
                          f"got {describe(spec)}")
    if "choices" in spec:
        return parse_choices(key, spec, where)
    return parse_range(key, spec, where)


def parse_choices(key: str, spec: dict, where: str) -> Dimension:
    extra = set(spec) - {"choices"}
    if extra:
        raise ConfigError(f"{where}: choices take no {', '.join(sorted(map(str, extra)))}")
    choices = spec["choices"]
    if not isinstance(choices, list) or not choices:
        raise ConfigError(f"{where}.choices: expected a non-empty list, got {describe(choices)}")
    shown = [encode(c) for c in choices]
    if len(set(map(repr, shown))) != len(shown):
        raise ConfigError(f"{where}.choices: a choice is listed twice")
    return Dimension(key, choices=tuple(choices))


def parse_range(key: str, spec: dict, where: str) -> Dimension:
    extra = set(spec) - RANGE_KEYS
    if extra:
        raise ConfigError(f"{where}: unknown {', '.join(sorted(map(str, extra)))}; a range has "
                          "low, high and optionally log or step (or give choices)")
    for end in ("low", "high"):
        value = spec.get(end)
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise ConfigError(f"{where}.{end}: expected a number, got {describe(value)}")
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    if not low < high:
        raise ConfigError(f"{where}: low ({low}) must be below high ({high})")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.log: expected true or false, got {describe(log)}")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0, got {low}")
    if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float))
                             or step <= 0):
        raise ConfigError(f"{where}.step: expected a positive number, got {describe(step)}")
    if log and step is not None:
        raise ConfigError(f"{where}: log and step do not go together (Optuna's rule)")
    return Dimension(key, low=low, high=high, log=log, step=step)


def check_objective_model(settings: SweepSettings, config: Config, origin: Origin) -> None:
    """The objective's model must be one the trial trains; pruning needs one model's epochs.
    Checked for the base config and again for every point (a space may vary `models`)."""
    candidates = candidate_names(config)
    if settings.model != "best" and settings.model not in candidates:
        raise ConfigError(f"{origin.where('sweep.model')}: {printable(settings.model)} is "
                          f"not trained by this config; use best or one of "
                          f"{', '.join(candidates)}")
    one_model = settings.model != "best" or len(config.trained_models) == 1
    if settings.pruner != "none" and not one_model:
        raise ConfigError(f"{origin.where('sweep.pruner')}: pruning compares one model's "
                          "epochs across trials; set sweep.model (e.g. cnn-keras) or train one "
                          "model")
    if settings.pruner != "none" and settings.model in averages(config):
        raise ConfigError(f"{origin.where('sweep.pruner')}: an ensemble has no epochs to "
                          "prune on; set sweep.model to a trained model")


def averages(config: Config) -> tuple[str, ...]:
    """The averaged candidates a run adds: the ensemble, the bag."""
    found = (AverageId().name,) if config.ensemble.members else ()
    if config.ensemble.bag_copies:
        found += (AverageId(ModelId.of(config.ensemble.bag_model).name).name,)
    return found


def candidate_names(config: Config) -> tuple[str, ...]:
    """Every row a run's metrics.json holds: trained models and averaged ensembles."""
    return config.models + averages(config)


def check_grid_size(sweep: Sweep) -> None:
    if sweep.settings.sampler != "grid":
        return
    for dim in sweep.space:
        if dim.choices is None and dim.step is None:
            raise ConfigError(f"{sweep.origin.where('sweep.space.' + dim.key)}: a grid needs "
                              "choices (or a range with step)")
    size = math.prod(len(d.grid_values()) for d in sweep.space)
    if sweep.settings.trials > size:
        raise ConfigError(f"{sweep.origin.where('sweep.trials')}: {sweep.settings.trials} trials "
                          f"but the grid has {size} points; set sweep.trials to {size} at most")


def check_every_point(sweep: Sweep) -> None:
    """Build the config of every grid point (grid) or of every combination of choices and
    range ends; where those are too many, of each value on its own."""
    values = [d.grid_values() if sweep.settings.sampler == "grid" else d.edge_values()
              for d in sweep.space]
    keys = [d.key for d in sweep.space]
    if math.prod(map(len, values)) <= MAX_COMBINATIONS:
        points = (dict(zip(keys, combo)) for combo in itertools.product(*values))
    else:
        points = ({k: v} for k, vs in zip(keys, values) for v in vs)
    for point in points:
        try:
            config = build_with(sweep.raw, point, sweep.origin, sweep.base.name)
            check_objective_model(sweep.settings, config, sweep.origin)
        except ConfigError as e:
            shown = ", ".join(f"{k}={encode(v)}" for k, v in point.items())
            raise ConfigError(f"{e} (in the sweep point {printable(shown, 160)})") from None


def build_with(raw: dict, values: dict[str, Any], origin: Origin, name: str) -> Config:
    """`raw` with `values` set at their dotted keys, built and checked."""
    raw = copy.deepcopy(raw)
    for key, value in values.items():
        node = raw
        *sections, last = key.split(".")
        for part in sections:
            node = node.setdefault(part, {})
        node[last] = copy.deepcopy(value)
    # A swept key's message names the sweep's space; an unswept one the file that set it.
    point = Origin(f"{origin.file}: sweep.space",
                   inherited={k: f for k, f in origin.inherited.items() if k not in values})
    config = build(Config, raw, point, "")
    check_config(config, point)
    return replace_name(config, name)


def encode(value: Any) -> Any:
    """A value as Optuna stores it: scalars as they are, lists and maps as YAML text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip()

