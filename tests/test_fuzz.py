"""Property-based fuzzing of what users feed the job: the CSVs and the config.

Whatever the input, the readers either return what a plain reading says they should
(right shape, uint8) or raise the job's own one-line error; never anything else.
tests/test_csv_reader.py already fuzzes one changed byte of a train.csv and valid tables
cut into chunks; this file adds edits that move bytes (insertions, deletions, cuts),
CSV-like text built from tricky cells, raw bytes, test.csv, load_arrays with its cache,
and the config loader on arbitrary text, YAML documents and --set overrides.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
import tempfile
import typing
from pathlib import Path
from unittest import mock

import numpy as np
import yaml
from helpers.csv_files import TEST_HEADER, TRAIN_HEADER, csv_text, make_images
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from job import config as config_mod
from job.data import arrays as data
from job.data import csv_reader
from job.config import Config, known_keys, load_config, to_dict
from job.errors import ConfigError, DataError

FUZZ = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
SMOKE = Path(__file__).resolve().parent.parent / "configs" / "smoke.yaml"


# --- the CSV reader -------------------------------------------------------------------------

def reference(raw: bytes, header: str, labelled: bool):
    """(images, labels or None) as a plain reading of the CSV gives them; None if invalid."""
    raw = raw.replace(b"\r\n", b"\n")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    first, *lines = [line.rstrip("\r") for line in text.rstrip(" \t\r\n").split("\n")]
    rows = [line.split(",") for line in lines]
    ncols = 784 + labelled
    if first != header or not rows or any(len(row) != ncols for row in rows) or any(
            not re.fullmatch(r"[+-]?[0-9]+", cell) for row in rows for cell in row):
        return None
    table = np.array([[int(cell) for cell in row] for row in rows])
    if table.min() < 0 or table.max() > 255 or (labelled and table[:, 0].max() > 9):
        return None
    return (table[:, 1:], table[:, 0]) if labelled else (table, None)


def check_read(path: Path, raw: bytes, labelled: bool) -> None:
    """Read `raw` as train.csv or test.csv: the reference's arrays, or a one-line DataError."""
    path.write_bytes(raw)
    expected = reference(raw, TRAIN_HEADER if labelled else TEST_HEADER, labelled)
    try:
        if labelled:
            images, labels = data.read_train_csv(path)
        else:
            images, labels = data.read_test_csv(path), None
    except DataError as error:
        assert expected is None, f"rejected a valid file: {error}"
        assert str(error).startswith(str(path)) and "\n" not in str(error), str(error)
        return
    assert expected is not None, "accepted an invalid file"
    assert images.dtype == np.uint8 and images.shape == (len(expected[0]), 784)
    np.testing.assert_array_equal(images, expected[0])
    if labelled:
        assert labels.dtype == np.uint8 and labels.shape == (len(images),)
        np.testing.assert_array_equal(labels, expected[1])


def valid_csv(labelled: bool, rows: int = 3, seed: int = 0) -> bytes:
    images = make_images(rows, seed)
    if labelled:
        table = np.column_stack([np.arange(rows) % 10, images])
        return csv_text(TRAIN_HEADER, table.tolist()).encode()
    return csv_text(TEST_HEADER, images.tolist()).encode()


def edited(raw: bytes, draw) -> bytes:
    """`raw` after a few insertions, deletions, replacements or a cut, drawn by `draw`."""
    raw = bytearray(raw)
    separators = [b",", b"\n", b"\r\n", b"\r", b"", b" ", b"-", b"+", b"\xef\xbb\xbf", b"\xff"]
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(raw)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "cut"]))
        piece = draw(st.sampled_from(separators) | st.binary(max_size=4) |
                     st.integers(0, 999).map(lambda n: str(n).encode()))
        if kind == "insert":
            raw[at:at] = piece
        elif kind == "delete":
            del raw[at:at + draw(st.integers(1, 8))]
        elif kind == "replace":
            raw[at:at + len(piece)] = piece
        else:
            del raw[at:]
    return bytes(raw)


@st.composite
def edited_csv(draw, labelled: bool) -> bytes:
    return edited(valid_csv(labelled, draw(st.integers(1, 4)), draw(st.integers(0, 3))), draw)


CELLS = ["0", "7", "9", "10", "99", "255", "256", "300", "999", "1000", "-1", "+5", "-0",
         "007", "0255", "", " 1", "1 ", "abc", "NaN", "nan", "inf", "1.0", "1e2", "0x1f",
         "\u0663", "\uff11", "\r", "1\r2", '"3"', "\t4"]


@st.composite
def csv_like(draw, labelled: bool) -> bytes:
    """A header (usually the right one) and rows of cells that are mostly, not always, fine."""
    ncols = 784 + labelled
    header = draw(st.sampled_from([TRAIN_HEADER if labelled else TEST_HEADER] * 8 +
                                  [TEST_HEADER if labelled else TRAIN_HEADER, ""]))
    rows = []
    for _ in range(draw(st.integers(0, 3))):
        width = draw(st.sampled_from([ncols] * 12 + [ncols - 1, ncols + 1, 1]))
        row = [str(v) for v in draw(st.lists(st.integers(0, 9 if labelled else 255),
                                             min_size=width, max_size=width))]
        for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):   # a few tricky cells
            row[draw(st.integers(0, width - 1))] = draw(st.sampled_from(CELLS))
        rows.append(",".join(row))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    end = draw(st.sampled_from(["", newline, newline * 3, " \n"]))
    bom = draw(st.sampled_from(["", "", "\ufeff"]))
    return (bom + newline.join([header, *rows]) + end).encode()


@FUZZ
@given(raw=edited_csv(labelled=True), chunk=st.sampled_from([64, 3000, 1 << 20]))
def test_train_csv_with_bytes_moved_gives_right_arrays_or_data_error(tmp_path, raw, chunk):
    with mock.patch.object(csv_reader, "_CHUNK_BYTES", chunk):
        check_read(tmp_path / "train.csv", raw, labelled=True)


@FUZZ
@given(raw=edited_csv(labelled=False))
def test_test_csv_with_bytes_moved_gives_right_arrays_or_data_error(tmp_path, raw):
    check_read(tmp_path / "test.csv", raw, labelled=False)


@FUZZ
@given(raw=csv_like(labelled=True), chunk=st.sampled_from([200, 1 << 20]))
def test_train_csv_like_text_gives_right_arrays_or_data_error(tmp_path, raw, chunk):
    with mock.patch.object(csv_reader, "_CHUNK_BYTES", chunk):
        check_read(tmp_path / "train.csv", raw, labelled=True)


@FUZZ
@given(raw=csv_like(labelled=False))
def test_test_csv_like_text_gives_right_arrays_or_data_error(tmp_path, raw):
    check_read(tmp_path / "test.csv", raw, labelled=False)


@FUZZ
@given(raw=st.binary(max_size=300), header=st.sampled_from([b"", TRAIN_HEADER.encode() + b"\n"]))
def test_any_bytes_give_arrays_or_data_error(tmp_path, raw, header):
    check_read(tmp_path / "train.csv", header + raw, labelled=True)


@settings(FUZZ, max_examples=25)
@given(train=st.one_of(st.just(valid_csv(True, 4)), edited_csv(labelled=True)),
       test=st.one_of(st.just(valid_csv(False, 2)), edited_csv(labelled=False)),
       damage=st.sampled_from(["none", "truncate cache", "junk hashes", "empty cache"]))
def test_load_arrays_gives_the_same_arrays_or_error_from_a_cache_in_any_state(train, test,
                                                                              damage):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "train.csv").write_bytes(train)
        (folder / "test.csv").write_bytes(test)
        expected_train = reference(train, TRAIN_HEADER, True)
        expected_test = reference(test, TEST_HEADER, False)
        outcomes = []
        for attempt in range(2):    # parsed, then from the cache (damaged in between)
            try:
                arrays = data.load_arrays(folder)
            except DataError as error:
                assert "\n" not in str(error) and str(error).startswith(str(folder)), str(error)
                outcomes.append(str(error))
            else:
                assert arrays.train_images.dtype == arrays.train_labels.dtype == np.uint8
                assert arrays.test_images.dtype == np.uint8
                assert arrays.train_images.shape == (len(arrays.train_labels), 784)
                assert arrays.test_images.shape[1:] == (784,)
                np.testing.assert_array_equal(arrays.train_images, expected_train[0])
                np.testing.assert_array_equal(arrays.train_labels, expected_train[1])
                np.testing.assert_array_equal(arrays.test_images, expected_test[0])
                assert set(arrays.hashes) == {"train.csv", "test.csv"}
                outcomes.append("arrays")
            damage_cache(folder / ".cache", damage)
        valid = expected_train is not None and expected_test is not None
        assert outcomes[0] == outcomes[1] and (outcomes[0] == "arrays") == valid


def damage_cache(cache: Path, damage: str) -> None:
    """What a crash or a full disk can do to the cache between two runs."""
    if not cache.exists() or damage == "none":
        return
    if damage == "truncate cache":
        for npz in cache.glob("arrays-*.npz"):
            npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    elif damage == "junk hashes":
        (cache / "hashes.json").write_text('{"train.csv": {"stat": [1], "sha256": 5}, "x"')
    else:
        shutil.rmtree(cache)
        cache.mkdir()


# --- the config loader ------------------------------------------------------------------------

def assert_valid(config: Config) -> None:
    """Every value has its field's type and lies within its field's bounds and choices."""
    def walk(obj, prefix: str) -> None:
        hints = typing.get_type_hints(type(obj))
        for f in dataclasses.fields(obj):
            if f.metadata.get("internal"):
                continue
            value, hint, meta = getattr(obj, f.name), hints[f.name], f.metadata
            key = prefix + f.name
            if dataclasses.is_dataclass(hint):
                walk(value, key + ".")
                continue
            items = value if typing.get_origin(hint) is tuple else (value,)
            if typing.get_origin(hint) is tuple:
                assert len(value) >= meta.get("min_len", 0), key
            for item in items:
                if isinstance(item, float):
                    assert math.isfinite(item), f"{key} = {item}"
                if isinstance(item, (int, float)) and not isinstance(item, bool):
                    lo, hi = meta.get("lo"), meta.get("hi")
                    assert lo is None or (item > lo if meta.get("lo_open") else item >= lo), key
                    assert hi is None or (item < hi if meta.get("hi_open") else item <= hi), key
                if meta.get("choices"):
                    assert item in meta["choices"], key
                if typing.get_origin(hint) is typing.Literal:
                    assert item in typing.get_args(hint), key
    assert isinstance(config, Config)
    walk(config, "")
    config.kaggle.message.format(**config_mod.MESSAGE_FIELDS)


def load(path: Path, overrides=()) -> Config | None:
    """load_config's Config (checked valid and round-tripped) or None after a ConfigError."""
    try:
        config = load_config(path, list(overrides))
    except ConfigError as error:
        text = str(error)
        assert "\n" not in text and "\r" not in text, text
        assert text.startswith((str(path.parent), "--set")), text   # the file, a base, --set
        return None
    assert_valid(config)
    again = path.parent / "resolved.yaml"
    again.write_text(yaml.safe_dump(to_dict(config)))
    assert to_dict(load_config(again)) == to_dict(config)
    return config


KEYS = sorted(known_keys(Config))
SCALARS = (st.none() | st.booleans() | st.integers(-3, 300) | st.sampled_from([0.0, 0.5, 1e-3])
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
           | st.sampled_from(["relu", "max", "auto", "kaggle", "ffn-tf", "cnn-keras", "{best}",
                              "{run_id.x}", "{epochs[0]}", "{val_accuracy:d}", "a\nb"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(KEYS + ["x"]), inner, max_size=3),
                      max_leaves=6)


@st.composite
def documents(draw) -> dict:
    """A config mapping: known dotted keys (and some unknown), nested, with random values."""
    doc: dict = {}
    for key in draw(st.lists(st.sampled_from(KEYS + ["trian", "train.epoch", "extends"]),
                             max_size=5)):
        node, *parts = doc, *key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
        node[parts[-1]] = draw(VALUES)
    return doc


@FUZZ
@given(text=st.text(max_size=200))
def test_config_from_any_text_is_a_valid_config_or_config_error(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    load(path)


@FUZZ
@given(raw=st.binary(max_size=100))
def test_config_from_any_bytes_is_a_valid_config_or_config_error(tmp_path, raw):
    path = tmp_path / "c.yaml"
    path.write_bytes(raw)
    load(path)


@FUZZ
@given(doc=documents())
def test_config_documents_give_a_valid_config_or_config_error(tmp_path, doc):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc))
    load(path)


def field_of(key: str) -> tuple[typing.Any, dict] | None:
    """The type hint and metadata of a dotted config key; None for a section or no key."""
    cls, parts = Config, key.split(".")
    for i, part in enumerate(parts):
        hint = typing.get_type_hints(cls).get(part)
        if dataclasses.is_dataclass(hint):
            cls = hint
        elif hint is not None and i == len(parts) - 1:
            return hint, dict(next(f for f in dataclasses.fields(cls) if f.name == part).metadata)
        else:
            return None
    return None


def edge_values(key: str) -> list[str]:
    """YAML texts at and just past the edges of what `key` accepts."""
    found = field_of(key)
    if found is None:
        return ["{}", "3", "[]"]
    hint, meta = found
    values = [".nan", ".inf", "-.inf", "true", "''", "~", "'a\nb'", "[]"]
    for bound in (meta.get("lo"), meta.get("hi")):
        if bound is not None:
            values += [repr(bound), repr(bound - 1), repr(bound + 1), repr(bound - 1e-9),
                       repr(bound + 1e-9)]
    options = meta.get("choices") or (typing.get_args(hint)
                                     if typing.get_origin(hint) is typing.Literal else ())
    values += [str(o) for o in options] + [str(o).upper() for o in options]
    if typing.get_origin(hint) is tuple:
        values += ["[0]", "[1, 1]", "[1, .nan]", "[ffn-tf, ffn-tf]", "[ffn-tf, cnn-jax]"]
    if key == "kaggle.message":
        values += ["'{best}'", "'{epochs[0]}'", "'{run_id.x}'", "'{val_accuracy:d}'", "'{'",
                   "'{0}'", "'{best!z}'", "'{run_id:>{epochs}}'", "'{run_id[0]}'"]
    return values


OVERRIDE_KEYS = st.sampled_from(KEYS * 6 + ["train.epoch", "x.y", "models.0", "train.epochs.x",
                                             "", ".", "a..b"])
OVERRIDE_VALUES = (st.sampled_from(["3", "0", "-1", "1e3", "0.5", "true", "[]", "{a: 1}", "[",
                                    "'", "~"])
                   | st.text(max_size=12))
OVERRIDES = OVERRIDE_KEYS.flatmap(lambda key: st.tuples(
    st.just(key), st.sampled_from(["="] * 9 + [""]),
    st.sampled_from(edge_values(key)) | OVERRIDE_VALUES)).map("".join)


@settings(FUZZ, max_examples=150)
@given(overrides=st.lists(OVERRIDES, max_size=3))
def test_overrides_give_a_valid_config_or_config_error(tmp_path, overrides):
    assume(all("\x00" not in o for o in overrides))   # argv cannot carry a NUL
    path = tmp_path / "smoke.yaml"
    shutil.copy(SMOKE, path)
    load(path, overrides)
