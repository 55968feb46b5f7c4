"""Field-level validation: a raw YAML mapping checked against the schema's types and rules.

Unknown keys, wrong types and out-of-range values raise `ConfigError` naming the file
(or `--set`), the dotted key, what was expected and what was found.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from job.errors import ConfigError


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


# user:password@ in a URL (an unescaped @ in the password too: the match runs to the last @)
URL_PASSWORD = re.compile(r"([A-Za-z][\w+.-]*://[^/\s:@]*:)\S*@")


def hide_passwords(text: str) -> str:
    """Text with every URL's password replaced by ***, for anything written or printed."""
    return URL_PASSWORD.sub(r"\1***@", text)


def printable(text: str, limit: int = 60) -> str:
    """Text for a one-line message: line breaks and control characters escaped, cut short."""
    text = re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]",
                  lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
    return text if len(text) <= limit else text[:limit - 3] + "..."
