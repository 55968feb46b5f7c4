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


def test_blocks_override_gives_the_published_cnn(tmp_path):
    config = load_config(write(tmp_path, "train: {}\n"), [
        "arch.cnn.blocks=[32C3-32C3-32C5S2, 64C3-64C3-64C5S2, 128C4]", "arch.cnn.padding=valid",
        "arch.cnn.dense=[]", "arch.cnn.dropout=0.4"])
    cnn = config.arch.cnn
    assert cnn.blocks == ("32C3-32C3-32C5S2", "64C3-64C3-64C5S2", "128C4")
    assert (cnn.padding, cnn.dense, cnn.dropout) == ("valid", (), 0.4)


def test_resolved_config_round_trips(tmp_path):
    config = load_config(Path("configs/default.yaml"))
    again = load_config(write(tmp_path, yaml.safe_dump(to_dict(config))))
    assert to_dict(again) == to_dict(config)


CNN_BAD = "is not a layer like 32C3, 32C5S2, P2 or AP2"
CNN_CASES = [
    ("arch: {cnn: {blocks: [32C3, 64C3-64X3]}}\n", [],
     f'c.yaml: arch.cnn.blocks[1]: "64X3" {CNN_BAD}'),
    ("train: {}\n", ["arch.cnn.blocks=[32C3-P3]"], f'--set arch.cnn.blocks[0]: "P3" {CNN_BAD}'),
    ("arch: {cnn: {blocks: [32C0]}}\n", [],
     ('c.yaml: arch.cnn.blocks[0]: "32C0" holds a 0; filters, kernel and stride are each at '
      "least 1")),
    ("arch: {cnn: {blocks: [32C3, P2]}}\n", [],
     'c.yaml: arch.cnn.blocks[1]: "P2" has no convolution; every block needs one (e.g. 32C3-P2)'),
    ("arch: {cnn: {blocks: [32]}}\n", [],
     "c.yaml: arch.cnn.blocks[0]: expected a non-empty string, got 32"),
    ("arch: {cnn: {padding: full}}\n", [],
     'c.yaml: arch.cnn.padding: expected one of same | valid, got "full"'),
    ("arch: {cnn: {filters: [8]}}\n", ["arch.cnn.blocks=[8C3]"],
     ("c.yaml: arch.cnn.filters: has no effect while arch.cnn.blocks is set; drop it or set "
      "arch.cnn.blocks: []")),
    ("arch: {cnn: {blocks: [8C3], pooling: avg}}\n", [],
     "c.yaml: arch.cnn.pooling: has no effect while arch.cnn.blocks is set"),
    # valid 5x5 after three strided ones: 28 → 14 → 7 → 4, too small for it.
    ("arch: {cnn: {blocks: [8C5S2-8C5S2-8C5S2, 8C5], padding: valid}}\n", [],
     ("c.yaml: arch.cnn.blocks[1]: layer 1 (8C5) meets 4x4 feature maps, smaller than its "
      "5x5 kernel under arch.cnn.padding: valid; use a smaller kernel, fewer layers or "
      "padding: same")),
    # 28 → 14 → 7 → 3 | 3 → 1 → nothing.
    ("arch: {cnn: {blocks: [8C3-P2-P2-P2, 8C3-P2-P2]}}\n", [],
     ("c.yaml: arch.cnn.blocks[1]: layer 3 (P2) meets 1x1 feature maps and shrinks them to "
      "nothing; use fewer layers")),
    # Two valid 5x5 convs per block: 28 → 24 → 20 → 10 | 6 → 2 → 1 | then a 5x5 meets 1x1.
    ("arch: {cnn: {filters: [8, 8, 8], kernel_size: 5, padding: valid}}\n", [],
     ("c.yaml: arch.cnn.kernel_size: conv 1 of block 3 meets 1x1 feature maps, smaller than "
      "its 5x5 kernel under arch.cnn.padding: valid; use a smaller kernel, fewer blocks or "
      "padding: same")),
    # Valid 2x2 convs: 28 → 27 → 13 → 12 → 6 → 5 → 2 → 1, then the 4th pool meets 1x1.
    ("arch: {cnn: {filters: [4, 4, 4, 4], convs_per_block: 1, kernel_size: 2, padding: valid}}",
     [], ("c.yaml: arch.cnn.filters: the pool of block 4 meets 1x1 feature maps and shrinks "
          "them to nothing; use fewer blocks, smaller kernels or padding: same")),
    ("arch: {cnn: {filters: [4, 4, 4, 4, 4]}}\n", [],
     ("c.yaml: arch.cnn.filters: 5 pooled blocks shrink the 28x28 image to nothing; use at "
      "most 4 blocks or set arch.cnn.pooling: none")),
]


@pytest.mark.parametrize("text, overrides, message", [
    ("train:\n  epoch: 3\n", [], "c.yaml: unknown key train.epoch (did you mean train.epochs?)"),
    ("train:\n  patience: 3\n", [],
     "c.yaml: unknown key train.patience (did you mean train.early_stopping.patience?)"),
    ("trian: {}\n", [], "c.yaml: unknown key trian (did you mean train?)"),
    ("train:\n  early_stopping: {patience: five}\n", [],
     'c.yaml: train.early_stopping.patience: expected an integer >= 0, got "five"'),
    ("train: {epochs: 0}\n", [], "c.yaml: train.epochs: expected an integer >= 1, got 0"),
    ("train: {label_smoothing: 1.0}\n", [],
     "c.yaml: train.label_smoothing: expected a number in [0, 1), got 1.0"),
    ("train: {label_smoothing: -0.1}\n", [],
     "c.yaml: train.label_smoothing: expected a number in [0, 1), got -0.1"),
    ("train: {early_stopping: {enabled: no way}}\n", [],
     'c.yaml: train.early_stopping.enabled: expected true or false, got "no way"'),
    ("train: {lr_schedule: {kind: onecycle}}\n", [],
     'c.yaml: train.lr_schedule.kind: expected one of constant | exponential | plateau | '
     'one_cycle, got "onecycle" (did you mean one_cycle?)'),
    ("train: {lr_schedule: {warmup_fraction: 1}}\n", [],
     "c.yaml: train.lr_schedule.warmup_fraction: expected a number in (0, 1), got 1"),
    ("train: {lr_schedule: {start_factor: 0}}\n", [],
     "c.yaml: train.lr_schedule.start_factor: expected a number in (0, 1], got 0"),
    ("train: {}\n", ["train.lr_schedule.end_factor=2"],
     "--set train.lr_schedule.end_factor: expected a number in (0, 1], got 2"),
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
    *CNN_CASES,
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


def test_leaderboard_config_trains_the_published_45_epochs_without_early_stopping():
    config = load_config(Path("configs/leaderboard.yaml"))
    assert config.train.epochs == 45 and not config.train.early_stopping.enabled
    assert config.train.refit_full
    assert (config.train.lr_schedule.kind, config.train.lr_schedule.decay) == ("exponential", 0.95)
