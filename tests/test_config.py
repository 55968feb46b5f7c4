"""Config loading: every shipped file is valid, every mistake names file, key and fix."""

from pathlib import Path

import pytest
import yaml

from job.config import (MODEL_NAMES, Config, ConfigError, known_keys, load_config,
                        to_dict)

CONFIGS = sorted(Path("configs").glob("*.yaml"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def is_sweep(path: Path) -> bool:
    return "sweep" in yaml.safe_load(path.read_text())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load(path):
    if is_sweep(path):
        from job.config.sweep import load_sweep
        assert load_sweep(path).base.name == path.stem
        with pytest.raises(ConfigError, match=f"this is a sweep file; run it with "
                                              f"`python -m job sweep --config {path}`"):
            load_config(path)
        return
    config = load_config(path)
    assert config.name == path.stem


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_set_and_comment_every_key(path):
    """Every key is spelled out with a comment, so the file documents itself."""
    lines = path.read_text().splitlines()
    keyed = [ln for ln in lines if ":" in ln.split("#")[0] and not ln.lstrip().startswith("#")]
    uncommented = [ln for ln in keyed if "#" not in ln and not ln.rstrip().endswith(":")]
    assert not uncommented, uncommented
    raw = yaml.safe_load(path.read_text())
    if "extends" in raw:
        return   # a derived config sets only what differs; its keys are validated on load
    flat = set()

    def walk(node, prefix=""):
        for k, v in node.items():
            flat.add(prefix + k)
            if isinstance(v, dict):
                walk(v, prefix + k + ".")
    walk(raw)
    assert flat == set(known_keys(Config))


def test_defaults_train_the_ffn_and_cnn_but_not_the_slower_lstm(tmp_path):
    models = load_config(write(tmp_path, "competition: digit-recognizer\n")).models
    assert models == ("ffn-tf", "ffn-keras", "cnn-tf", "cnn-keras")
    assert {"lstm-tf", "lstm-keras"} <= set(MODEL_NAMES)


def test_overrides_are_typed_and_validated(tmp_path):
    config = load_config(write(tmp_path, "train: {epochs: 5}\n"),
                         ["train.epochs=3", "arch.ffn.hidden=[8, 4]", "data.source=sample"])
    assert config.train.epochs == 3
    assert config.arch.ffn.hidden == (8, 4)
    assert config.data.source == "sample"


def test_resolved_config_round_trips(tmp_path):
    config = load_config(Path("configs/default.yaml"))
    again = load_config(write(tmp_path, yaml.safe_dump(to_dict(config))))
    assert to_dict(again) == to_dict(config)


@pytest.mark.parametrize("text, overrides, message", [
    ("train:\n  epoch: 3\n", [], "c.yaml: unknown key train.epoch (did you mean train.epochs?)"),
    ("train:\n  patience: 3\n", [],
     "c.yaml: unknown key train.patience (did you mean train.early_stopping.patience?)"),
    ("trian: {}\n", [], "c.yaml: unknown key trian (did you mean train?)"),
    ("train:\n  early_stopping: {patience: five}\n", [],
     'c.yaml: train.early_stopping.patience: expected an integer >= 0, got "five"'),
    ("train: {epochs: 0}\n", [], "c.yaml: train.epochs: expected an integer >= 1, got 0"),
    ("train: {epochs: 2.5}\n", [], "c.yaml: train.epochs: expected an integer >= 1, got 2.5"),
    ("train: {epochs: true}\n", [], "c.yaml: train.epochs: expected an integer >= 1, got true"),
    ("data: {val_fraction: 0.9}\n", [],
     "c.yaml: data.val_fraction: expected a number in (0, 0.5], got 0.9"),
    ("data: {source: kagle}\n", [],
     'c.yaml: data.source: expected one of auto | kaggle | local | sample, got "kagle" '
     "(did you mean kaggle?)"),
    ("models: [ffn-tf, cnn_keras]\n", [],
     'c.yaml: models[1]: expected one of ffn-tf | ffn-keras | ffn-torch | cnn-tf | '
     'cnn-keras | cnn-torch | lstm-tf | lstm-keras | lstm-torch, '
     'got "cnn_keras" (did you mean cnn-keras?)'),
    ("models: []\n", [], "c.yaml: models: expected a list with at least 1 item(s), got list []"),
    ("models: [ffn-tf, ffn-tf]\n", [], "c.yaml: models: expected a list without repeats"),
    ("arch: {cnn: {batch_norm: maybe}}\n", [],
     'c.yaml: arch.cnn.batch_norm: expected true or false, got "maybe"'),
    ("train: 3\n", [], "c.yaml: train: expected a mapping, got 3"),
    ("train: {epochs: [3}\n", [], "c.yaml line 1: invalid YAML"),
    ("", [], "c.yaml: config file is empty"),
    ("- a\n- b\n", [], "c.yaml: expected a mapping of keys at the top level, got list"),
    ("train: {}\n", ["train.learning_rate=abc"],
     '--set train.learning_rate: expected a number > 0, got "abc"'),
    ("train: {}\n", ["train.epoch=3"], "--set: unknown key train.epoch (did you mean train.epochs?)"),
    ("train: {}\n", ["epochs"], "--set epochs: expected dotted.key=value"),
])
def test_bad_config_message(tmp_path, text, overrides, message):
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text), overrides)
    text = str(error.value)
    assert message in text
    assert "\n" not in text


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_early_stopping_auto_mode_follows_metric(tmp_path):
    acc = load_config(write(tmp_path, "train: {early_stopping: {monitor: val_accuracy}}\n"))
    loss = load_config(write(tmp_path, "train: {early_stopping: {monitor: val_loss}}\n"))
    assert acc.train.early_stopping.resolved_mode == "max"
    assert loss.train.early_stopping.resolved_mode == "min"


def test_a_config_extends_another(tmp_path):
    (tmp_path / "base.yaml").write_text("train: {epochs: 7, batch_size: 32}\nmodels: [ffn-tf]\n")
    config = load_config(write(tmp_path, "extends: base.yaml\ntrain: {epochs: 2}\n"))
    assert (config.train.epochs, config.train.batch_size, config.models) == (2, 32, ("ffn-tf",))


def test_gpu_config_is_default_plus_gpu_settings():
    gpu, default = load_config(Path("configs/gpu.yaml")), load_config(Path("configs/default.yaml"))
    assert gpu.runtime.require_gpu and not default.runtime.require_gpu
    assert gpu.arch == default.arch and gpu.models == default.models


def test_errors_in_a_base_name_the_base_file(tmp_path):
    (tmp_path / "base.yaml").write_text("train: {epochs: zero}\n")
    with pytest.raises(ConfigError, match=r"base.yaml: train.epochs: expected an integer"):
        load_config(write(tmp_path, "extends: base.yaml\n"))
    with pytest.raises(ConfigError, match=r"c.yaml: train.epochs: expected an integer >= 1, got -1"):
        load_config(write(tmp_path, "extends: base.yaml\ntrain: {epochs: -1}\n"))


@pytest.mark.parametrize("text, message", [
    ("extends: nope.yaml\n", "c.yaml: extends:"),
    ("extends: c.yaml\n", "c.yaml: extends itself"),
])
def test_bad_extends(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))
