"""Reading a config: YAML files, `extends:` bases, `--set` overrides, then validation."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from job.config.checks import check_config
from job.config.schema import Config
from job.config.values import Origin, build, describe, printable
from job.errors import ConfigError


def load_config(path: str | Path, overrides: list[str] = ()) -> Config:
    """Read a YAML config, apply `dotted.key=value` overrides, validate, return it."""
    path = Path(path)
    raw, origin = read_raw(path, overrides)
    if "sweep" in raw:
        raise ConfigError(f"{path}: sweep: this is a sweep file; run it with "
                          f"`python -m job sweep --config {path}` (or make sweep CONFIG={path})")
    config = build(Config, raw, origin, "")
    check_config(config, origin)
    return replace_name(config, path.stem)


def read_raw(path: Path, overrides: list[str] = ()) -> tuple[dict, Origin]:
    """The file over its bases with `--set` applied, unchecked, and where each key came from."""
    origin = Origin(str(path))
    raw = read_with_bases(path, origin, ())
    for item in overrides:
        origin.overridden.add(apply_override(raw, item))
    return raw, origin


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


def replace_name(config: Config, name: str) -> Config:
    """Record the config file's stem, which names the run folder."""
    return dataclasses.replace(config, name=name)


def to_dict(config: Config) -> dict:
    """The resolved config as plain YAML-able data (tuples become lists); the internal
    fields (the name, a replayed schedule's rates) are no YAML keys and stay out."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                    if not f.metadata.get("internal")}
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return value
    return plain(config)
