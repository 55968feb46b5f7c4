"""The job's configuration: typed, frozen dataclasses loaded from YAML and validated.

Every field carries its constraint in `metadata`; `load_config` walks the dataclass
tree, so adding a key means adding one field here and one commented line in each
YAML file. Unknown keys, wrong types and out-of-range values raise `ConfigError`
naming the file, the dotted key, what was expected and what was found.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from job.errors import ConfigError

MODEL_NAMES = ("ffn-tf", "ffn-keras", "cnn-tf", "cnn-keras", "lstm-tf", "lstm-keras")
ACTIVATIONS = ("relu", "elu", "gelu", "tanh", "sigmoid")


def _f(default: Any, *, lo: float | None = None, hi: float | None = None,
       lo_open: bool = False, hi_open: bool = False, choices: tuple | None = None,
       min_len: int = 0) -> Any:
    """A field with its validation rule; list defaults are stored as tuples."""
    meta = dict(lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, choices=choices,
                min_len=min_len)
    if dataclasses.is_dataclass(default) and isinstance(default, type):
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class DataConfig:
    source: Literal["auto", "kaggle", "local", "sample"] = "auto"
    dir: str = "data/digit-recognizer"
    sample_dir: str = "data/sample"
    val_fraction: float = _f(0.1, lo=0.0, hi=0.5, lo_open=True)
    seed: int = _f(42, lo=0)


@dataclass(frozen=True)
class FFNSpec:
    hidden: tuple[int, ...] = _f((512, 256), lo=1, min_len=1)
    activation: str = _f("relu", choices=ACTIVATIONS)
    dropout: float = _f(0.2, lo=0.0, hi=1.0, hi_open=True)
    batch_norm: bool = False
    batch_norm_momentum: float = _f(0.9, lo=0.0, hi=1.0, hi_open=True)


@dataclass(frozen=True)
class CNNSpec:
    filters: tuple[int, ...] = _f((32, 64), lo=1, min_len=1)
    convs_per_block: int = _f(2, lo=1)
    kernel_size: int = _f(3, lo=1, hi=28)
    pooling: Literal["max", "avg", "none"] = "max"
    batch_norm: bool = True
    batch_norm_momentum: float = _f(0.9, lo=0.0, hi=1.0, hi_open=True)
    dropout: float = _f(0.25, lo=0.0, hi=1.0, hi_open=True)
    dense: tuple[int, ...] = _f((256,), lo=1)
    dense_dropout: float = _f(0.4, lo=0.0, hi=1.0, hi_open=True)
    activation: str = _f("relu", choices=ACTIVATIONS)


@dataclass(frozen=True)
class LSTMSpec:
    units: tuple[int, ...] = _f((128,), lo=1, min_len=1)
    dropout: float = _f(0.2, lo=0.0, hi=1.0, hi_open=True)
    dense: tuple[int, ...] = _f((), lo=1)


@dataclass(frozen=True)
class ArchConfig:
    ffn: FFNSpec = _f(FFNSpec)
    cnn: CNNSpec = _f(CNNSpec)
    lstm: LSTMSpec = _f(LSTMSpec)


@dataclass(frozen=True)
class EarlyStoppingConfig:
    monitor: Literal["val_loss", "val_accuracy", "loss", "accuracy"] = "val_loss"
    mode: Literal["auto", "min", "max"] = "auto"
    patience: int = _f(5, lo=0)
    min_delta: float = _f(0.0, lo=0.0)
    restore_best_weights: bool = True

    @property
    def resolved_mode(self) -> str:
        """`auto` means min for a loss and max for an accuracy, as in Keras."""
        if self.mode != "auto":
            return self.mode
        return "min" if self.monitor.endswith("loss") else "max"


@dataclass(frozen=True)
class AugmentConfig:
    rotation_degrees: float = _f(0.0, lo=0.0, hi=180.0)
    zoom: float = _f(0.0, lo=0.0, hi=1.0, hi_open=True)
    shift: float = _f(0.0, lo=0.0, hi=0.5)

    @property
    def active(self) -> bool:
        return bool(self.rotation_degrees or self.zoom or self.shift)


@dataclass(frozen=True)
class ScheduleConfig:
    kind: Literal["constant", "exponential", "plateau"] = "constant"
    decay: float = _f(0.95, lo=0.0, hi=1.0, lo_open=True)
    factor: float = _f(0.5, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    patience: int = _f(3, lo=0)
    min_learning_rate: float = _f(1e-5, lo=0.0)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = _f(30, lo=1)
    batch_size: int = _f(128, lo=1)
    learning_rate: float = _f(1e-3, lo=0.0, lo_open=True)
    log_every: int = _f(1, lo=1)
    steps_per_execution: int = _f(1, lo=1)
    seed: int = _f(0, lo=0)
    early_stopping: EarlyStoppingConfig = _f(EarlyStoppingConfig)
    augment: AugmentConfig = _f(AugmentConfig)
    lr_schedule: ScheduleConfig = _f(ScheduleConfig)


@dataclass(frozen=True)
class OutputConfig:
    runs_dir: str = "runs"


@dataclass(frozen=True)
class RuntimeConfig:
    require_gpu: bool = False
    mixed_precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = "float32"
    jit_compile: bool = False
    distribute: Literal["auto", "none", "mirrored", "multi_worker"] = "auto"


@dataclass(frozen=True)
class EnsembleConfig:
    members: tuple[str, ...] = _f((), choices=MODEL_NAMES)
    bag_model: str = _f("none", choices=("none",) + MODEL_NAMES)
    bag_copies: int = _f(0, lo=0, hi=50)
    bag_holdout: float = _f(0.1, lo=0.0, hi=0.5, lo_open=True)


@dataclass(frozen=True)
class KaggleConfig:
    retries: int = _f(4, lo=0, hi=20)
    backoff_seconds: float = _f(2.0, lo=0.0)
    poll_seconds: float = _f(15.0, lo=0.0)
    wait_minutes: float = _f(30.0, lo=0.0)
    message: str = "{run_id}: {best} (val accuracy {val_accuracy:.4f})"


MESSAGE_FIELDS = {"run_id": "20261128T210000Z-default", "best": "cnn-keras",
                  "val_accuracy": 0.99, "epochs": 12, "config": "default"}


@dataclass(frozen=True)
class Config:
    competition: str = "digit-recognizer"
    data: DataConfig = _f(DataConfig)
    # The LSTMs are opt-in (name them in `models`): they train several times slower.
    models: tuple[str, ...] = _f(("ffn-tf", "ffn-keras", "cnn-tf", "cnn-keras"),
                                 choices=MODEL_NAMES, min_len=1)
    arch: ArchConfig = _f(ArchConfig)
    train: TrainConfig = _f(TrainConfig)
    output: OutputConfig = _f(OutputConfig)
    ensemble: EnsembleConfig = _f(EnsembleConfig)
    runtime: RuntimeConfig = _f(RuntimeConfig)
    kaggle: KaggleConfig = _f(KaggleConfig)
    # Not a YAML key: the config file's stem, used to name run folders.
    name: str = field(default="config", metadata={"internal": True})


def load_config(path: str | Path, overrides: list[str] = ()) -> Config:
    """Read a YAML config, apply `dotted.key=value` overrides, validate, return it."""
    path = Path(path)
    origin = Origin(str(path))
    raw = read_with_bases(path, origin, ())
    for item in overrides:
        origin.overridden.add(apply_override(raw, item))
    config = build(Config, raw, origin, "")
    check_message(config.kaggle.message, origin)
    check_ensemble(config.ensemble, config.models, origin)
    return replace_name(config, path.stem)


def check_ensemble(ensemble: EnsembleConfig, models: tuple[str, ...], origin: Origin) -> None:
    """Ensemble members must be trained models; a bag needs a model and 2+ copies."""
    missing = [m for m in ensemble.members if m not in models]
    if missing:
        raise ConfigError(f"{origin.where('ensemble.members')}: {', '.join(missing)} not in "
                          "`models`; an ensemble averages models the run trains")
    if len(ensemble.members) == 1:
        raise ConfigError(f"{origin.where('ensemble.members')}: expected 2 or more models "
                          "(or none), got 1")
    if (ensemble.bag_model == "none") != (ensemble.bag_copies == 0):
        raise ConfigError(f"{origin.where('ensemble.bag_copies')}: set both ensemble.bag_model "
                          "and ensemble.bag_copies (2 or more), or neither")
    if ensemble.bag_copies == 1:
        raise ConfigError(f"{origin.where('ensemble.bag_copies')}: expected 0 or at least 2 "
                          "copies, got 1")


def check_message(template: str, origin: Origin) -> None:
    """The submission message template may only use the placeholders we fill in."""
    try:
        template.format(**MESSAGE_FIELDS)
    except (KeyError, IndexError, ValueError, TypeError, AttributeError) as e:
        raise ConfigError(
            f"{origin.where('kaggle.message')}: invalid template ({type(e).__name__}: "
            f"{printable(str(e))}); "
            f"placeholders: {', '.join('{' + k + '}' for k in MESSAGE_FIELDS)}") from None


@dataclass
class Origin:
    """Where a value came from, so a message names the file or the --set flag."""
    file: str
    overridden: set = field(default_factory=set)
    inherited: dict = field(default_factory=dict)   # dotted key -> base file it came from

    def of(self, key: str) -> str:
        """`--set` for a key given on the command line, else the file that set it."""
        top = key.split("[")[0]
        if top in self.overridden:
            return "--set"
        return next((f for k, f in self.inherited.items()
                     if top == k or top.startswith(k + ".")), self.file)

    def where(self, key: str) -> str:
        """`configs/x.yaml: train.epochs` or `--set train.epochs`."""
        return f"{self.of(key)}{' ' if self.of(key) == '--set' else ': '}{key}"



def read_with_bases(path: Path, origin: Origin, seen: tuple) -> dict:
    """The file's mapping laid over the one it `extends` (a path relative to it)."""
    if path.resolve() in seen:
        raise ConfigError(f"{path}: extends itself through {' -> '.join(map(str, seen))}")
    raw = read_yaml(path)
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw
    if not isinstance(base_name, str) or not base_name:
        raise ConfigError(f"{path}: extends: expected a config file name, got {describe(base_name)}")
    base_path = path.parent / base_name
    if not base_path.is_file():
        raise ConfigError(f"{path}: extends: {base_path} not found")
    base = read_with_bases(base_path, origin, seen + (path.resolve(),))
    for key in leaf_keys(base):
        origin.inherited.setdefault(key, str(base_path))
    merged = merge(base, raw)
    for key in leaf_keys(raw):
        origin.inherited.pop(key, None)
    return merged


def leaf_keys(raw: dict, prefix: str = "") -> list[str]:
    """Dotted names of the values (not sections) in a raw mapping."""
    keys = []
    for k, v in raw.items():
        keys += leaf_keys(v, f"{prefix}{k}.") if isinstance(v, dict) and v else [prefix + str(k)]
    return keys


def merge(base: dict, top: dict) -> dict:
    """`top` over `base`, section by section; lists and values are replaced whole."""
    merged = dict(base)
    for k, v in top.items():
        merged[k] = merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return merged


def read_yaml(path: Path) -> dict:
    """The file's top-level mapping; an empty or non-mapping file is an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read config file ({e})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        # An unclosed [ or quote is noticed lines later: name where it was opened too.
        start, context = getattr(e, "context_mark", None), getattr(e, "context", None)
        if start and context and mark and start.line != mark.line:
            problem += f" ({context} that starts on line {start.line + 1})"
        raise ConfigError(f"{path}{where}: invalid YAML: {problem}") from None
    if raw is None:
        raise ConfigError(f"{path}: config file is empty; copy configs/default.yaml to start")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, "
                          f"got {type(raw).__name__}")
    return raw


def apply_override(raw: dict, item: str) -> str:
    """Set one `a.b.c=value` (value parsed as YAML) into the raw mapping; return the key."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {printable(item)}: expected dotted.key=value, "
                          "e.g. train.epochs=3")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {printable(item)}: {printable(part)} is not a section")
        node = child
    node[parts[-1]] = value
    return key.strip()


def build(cls: type, raw: Any, source: Origin, prefix: str) -> Any:
    """Turn a raw mapping into dataclass `cls`, checking every key and value."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source.where(prefix.rstrip('.'))}: expected a mapping, "
                          f"got {describe(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    for key in raw:
        if key not in fields:
            raise ConfigError(unknown_key(source.of(prefix + str(key)), prefix, str(key), cls))
    hints = typing.get_type_hints(cls)
    values = {name: check(hints[name], raw[name], fields[name].metadata, source,
                          prefix + name)
              for name in fields if name in raw}
    return cls(**values)


def unknown_key(source: str, prefix: str, key: str, cls: type) -> str:
    """`unknown key train.epoch (did you mean train.epochs?)`."""
    candidates = [prefix + n for n in known_keys(cls)]
    close = difflib.get_close_matches(prefix + key, candidates, n=1, cutoff=0.75)
    nested = [c for c in candidates if c.endswith("." + key)]
    if close or nested:
        hint = f" (did you mean {(close or nested)[0]}?)"
    else:
        hint = f" (known keys here: {', '.join(known_keys(cls, nested=False))})"
    return f"{source}: unknown key {prefix}{printable(key)}{hint}"


def known_keys(cls: type, nested: bool = True) -> list[str]:
    """Dotted names of the YAML keys under `cls`, sections included."""
    names = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        names.append(f.name)
        if nested and dataclasses.is_dataclass(hints[f.name]):
            names += [f"{f.name}.{sub}" for sub in known_keys(hints[f.name])]
    return names


def check(hint: Any, value: Any, meta: Any, source: Origin, key: str) -> Any:
    """Validate one value against its type hint and field metadata."""
    def fail(expected: str, options: tuple = ()) -> ConfigError:
        close = difflib.get_close_matches(str(value), [str(o) for o in options], n=1)
        hint_ = f" (did you mean {close[0]}?)" if close else ""
        return ConfigError(f"{source.where(key)}: expected {expected}, "
                           f"got {describe(value)}{hint_}")

    if dataclasses.is_dataclass(hint):
        return build(hint, value, source, key + ".")
    origin = typing.get_origin(hint)
    if origin is Literal:
        options = typing.get_args(hint)
        if value not in options:
            raise fail("one of " + " | ".join(options), options)
        return value
    if origin is tuple:
        return check_list(typing.get_args(hint)[0], value, meta, fail, source, key)
    if hint is bool:
        if not isinstance(value, bool):
            raise fail("true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail("an integer" + range_text(meta))
        return check_range(value, meta, fail, "an integer")
    if hint is float:
        # NaN passes every range check by failing every comparison; inf is no setting either.
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise fail("a number" + range_text(meta))
        return check_range(float(value), meta, fail, "a number")
    if hint is str:
        if not isinstance(value, str) or not value:
            raise fail("a non-empty string")
        if meta.get("choices") and value not in meta["choices"]:
            raise fail("one of " + " | ".join(meta["choices"]), meta["choices"])
        return value
    raise TypeError(f"config field {key} has unsupported type {hint}")


def check_list(item_hint: Any, value: Any, meta: Any, fail, source: Origin, key: str) -> tuple:
    """A YAML list of items, each validated like a scalar field."""
    if not isinstance(value, list):
        raise fail(f"a list of {item_hint.__name__}s")
    if len(value) < meta.get("min_len", 0):
        raise fail(f"a list with at least {meta['min_len']} item(s)")
    items = tuple(check(item_hint, v, meta, source, f"{key}[{i}]") for i, v in enumerate(value))
    if meta.get("choices") and len(set(items)) != len(items):
        raise fail("a list without repeats")
    return items


def check_range(value: float, meta: Any, fail, what: str) -> float:
    """Apply the field's lo/hi bounds."""
    lo, hi = meta.get("lo"), meta.get("hi")
    too_low = lo is not None and (value <= lo if meta.get("lo_open") else value < lo)
    too_high = hi is not None and (value >= hi if meta.get("hi_open") else value > hi)
    if too_low or too_high:
        raise fail(what + range_text(meta))
    return value


def range_text(meta: Any) -> str:
    """' >= 0', ' in (0, 0.5]' and the like, for messages."""
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and hi is not None:
        left = "(" if meta.get("lo_open") else "["
        right = ")" if meta.get("hi_open") else "]"
        return f" in {left}{lo:g}, {hi:g}{right}"
    if lo is not None:
        return f" {'>' if meta.get('lo_open') else '>='} {lo:g}"
    return ""


def describe(value: Any) -> str:
    """How a found value is shown in a message: strings quoted, others as YAML."""
    if isinstance(value, str):
        return f'"{printable(value)}"'
    if value is None:
        return "nothing (null)"
    if isinstance(value, (dict, list)):
        return type(value).__name__ if isinstance(value, dict) else f"list {printable(str(value))}"
    return str(value).lower() if isinstance(value, bool) else printable(str(value))


def printable(text: str, limit: int = 60) -> str:
    """Text for a one-line message: line breaks and control characters escaped, cut short."""
    text = re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]",
                  lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def replace_name(config: Config, name: str) -> Config:
    """Record the config file's stem, which names the run folder."""
    return dataclasses.replace(config, name=name)


def to_dict(config: Config) -> dict:
    """The resolved config as plain YAML-able data (tuples become lists)."""
    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value
    data = plain(dataclasses.asdict(config))
    data.pop("name")
    return data
