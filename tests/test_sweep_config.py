"""Sweep files: everything a sweep file decides is checked before the first trial.

Each bad sweep file fails `load_sweep` with one line naming the file and the key, and the
same files through `python -m job sweep` end with exit code 2 and that one `error:` line
in well under a second: before TensorFlow loads and before the sweep folder is made. The
good files load with the values a reader of the file expects.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.project import clean_env

from job.config import ConfigError, load_config
from job.config.sweep import load_sweep

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "configs" / "smoke.yaml"
RANGE = "{low: 0.001, high: 0.01}"      # a valid train.learning_rate range
# The smoke CNN's 28x28 input halves per pooled block: 28 // 2**4 = 1, 28 // 2**5 = 0.
POOLING = ("5 pooled blocks shrink the 28x28 image to nothing; use at most 4 blocks or set "
           "arch.cnn.pooling: none")


def sweep_file(tmp_path: Path, sweep: str, top: str = "models: [cnn-keras]\n",
               name: str = "s.yaml") -> Path:
    """A sweep file extending the smoke config: `top` (config keys), then `sweep:` lines."""
    path = tmp_path / name
    path.write_text(f"extends: {SMOKE}\n{top}sweep:\n{sweep}")
    return path


def load_error(path: Path, overrides: list[str] = ()) -> str:
    with pytest.raises(ConfigError) as error:
        load_sweep(path, overrides)
    text = str(error.value)
    assert "\n" not in text
    return text


# (id, the sweep: section, config keys above it, the message after "<file>: ")
BAD_SWEEPS = [
    ("unknown key, near miss", f"  space:\n    train.learning_rat: {RANGE}\n", None,
     ("sweep.space.train.learning_rat: unknown config key train.learning_rat "
      "(did you mean train.learning_rate?)")),
    ("unknown key, no near miss", f"  space:\n    zzz.qqq: {RANGE}\n", None,
     "sweep.space.zzz.qqq: unknown config key zzz.qqq (any config value's dotted key)"),
    ("a section, not a value", "  space:\n    arch.cnn: {choices: [1]}\n", None,
     "sweep.space.arch.cnn: unknown config key arch.cnn (did you mean arch.cnn.dense?)"),
    ("data.seed is fixed", "  space:\n    data.seed: {choices: [1, 2]}\n", None,
     ("sweep.space.data.seed: a sweep may not vary data.seed: every trial trains alone, on "
      "the same data, into the sweep's folder")),
    ("output.runs_dir is fixed", "  space:\n    output.runs_dir: {choices: [a, b]}\n", None,
     ("sweep.space.output.runs_dir: a sweep may not vary output.runs_dir: every trial trains "
      "alone, on the same data, into the sweep's folder")),
    ("runtime.distribute is fixed", "  space:\n    runtime.distribute: {choices: [auto, none]}\n",
     None, ("sweep.space.runtime.distribute: a sweep may not vary runtime.distribute: every "
            "trial trains alone, on the same data, into the sweep's folder")),
    ("a choice the config rejects", "  space:\n    arch.cnn.kernel_size: {choices: [3, 0]}\n",
     None, ("sweep.space: arch.cnn.kernel_size: expected an integer in [1, 28], got 0 "
            "(in the sweep point arch.cnn.kernel_size=0)")),
    ("a range end the config rejects",
     "  space:\n    train.learning_rate: {low: -1, high: 0.1}\n", None,
     ("sweep.space: train.learning_rate: expected a number > 0, got -1 "
      "(in the sweep point train.learning_rate=-1)")),
    # Each value alone is valid (5 blocks without pooling, max pooling with 2 blocks): only
    # the grid point that has both breaks the cross-key rule.
    ("a cross-key rule at one grid point",
     ("  sampler: grid\n  trials: 4\n  space:\n"
      "    arch.cnn.filters: {choices: [[8, 16], [4, 4, 4, 4, 4]]}\n"
      "    arch.cnn.pooling: {choices: [none, max]}\n"), None,
     (f"sweep.space: arch.cnn.filters: {POOLING} (in the sweep point "
      "arch.cnn.filters=[4, 4, 4, 4, 4], arch.cnn.pooling=max)")),
    ("empty space", "  space: {}\n", None,
     ("sweep.space: expected at least one key to sweep, e.g. train.learning_rate: "
      "{low: 1.0e-4, high: 3.0e-3, log: true}; got dict")),
    ("no space", "  trials: 3\n", None,
     ("sweep.space: expected at least one key to sweep, e.g. train.learning_rate: "
      "{low: 1.0e-4, high: 3.0e-3, log: true}; got nothing")),
    # 2 learning rates x 2 kernel sizes = 4 points.
    ("grid smaller than trials",
     ("  sampler: grid\n  trials: 5\n  space:\n"
      "    train.learning_rate: {choices: [0.001, 0.003]}\n"
      "    arch.cnn.kernel_size: {choices: [3, 5]}\n"), None,
     "sweep.trials: 5 trials but the grid has 4 points; set sweep.trials to 4 at most"),
    ("grid over a range without step",
     f"  sampler: grid\n  trials: 2\n  space:\n    train.learning_rate: {RANGE}\n", None,
     "sweep.space.train.learning_rate: a grid needs choices (or a range with step)"),
    ("low == high", "  space:\n    train.learning_rate: {low: 0.01, high: 0.01}\n", None,
     "sweep.space.train.learning_rate: low (0.01) must be below high (0.01)"),
    ("low > high", "  space:\n    arch.cnn.kernel_size: {low: 5, high: 3}\n", None,
     "sweep.space.arch.cnn.kernel_size: low (5) must be below high (3)"),
    ("log from 0", "  space:\n    train.learning_rate: {low: 0, high: 0.01, log: true}\n", None,
     "sweep.space.train.learning_rate: a log range needs low > 0, got 0"),
    ("unknown key in a range",
     "  space:\n    train.learning_rate: {low: 0.001, high: 0.01, lg: true}\n", None,
     ("sweep.space.train.learning_rate: unknown lg; a range has low, high and optionally log "
      "or step (or give choices)")),
    ("a range end that is no number", "  space:\n    train.learning_rate: {low: a, high: 0.1}\n",
     None, 'sweep.space.train.learning_rate.low: expected a number, got "a"'),
    ("a choice listed twice", "  space:\n    train.learning_rate: {choices: [0.1, 0.1]}\n",
     None, "sweep.space.train.learning_rate.choices: a choice is listed twice"),
    ("a bare value", "  space:\n    train.learning_rate: 0.1\n", None,
     ("sweep.space.train.learning_rate: expected {choices: [...]} or {low: ..., high: ...}, "
      "got 0.1")),
    ("bad sampler", f"  sampler: tpee\n  space:\n    train.learning_rate: {RANGE}\n", None,
     'sweep.sampler: expected one of grid | random | tpe, got "tpee" (did you mean tpe?)'),
    ("pruner over several models",
     f"  pruner: median\n  space:\n    train.learning_rate: {RANGE}\n",
     "models: [cnn-keras, cnn-tf]\n",
     ("sweep.pruner: pruning compares one model's epochs across trials; set sweep.model "
      "(e.g. cnn-keras) or train one model")),
    ("pruner on an ensemble",
     f"  model: bag-cnn-keras\n  pruner: median\n  space:\n    train.learning_rate: {RANGE}\n",
     "models: [cnn-keras]\nensemble: {bag_model: cnn-keras, bag_copies: 2}\n",
     "sweep.pruner: an ensemble has no epochs to prune on; set sweep.model to a trained model"),
    ("model not trained", f"  model: ffn-tf\n  space:\n    train.learning_rate: {RANGE}\n", None,
     "sweep.model: ffn-tf is not trained by this config; use best or one of cnn-keras"),
    ("grace not above heartbeat",
     f"  heartbeat_seconds: 60\n  grace_seconds: 60\n  space:\n    train.learning_rate: {RANGE}\n",
     None, ("sweep.grace_seconds: must be longer than sweep.heartbeat_seconds (60), or a "
            "healthy worker's trial is retried between two beats")),
    ("study name with a slash", f"  study: a/b\n  space:\n    train.learning_rate: {RANGE}\n",
     None, ("sweep.study: expected a name of letters, digits, . _ - (it names the study and its "
            'folder), got "a/b"')),
    ("unknown sweep setting", f"  trails: 3\n  space:\n    train.learning_rate: {RANGE}\n", None,
     "unknown key sweep.trails (did you mean sweep.trials?)"),
]


@pytest.mark.parametrize("sweep, top, message", [c[1:] for c in BAD_SWEEPS],
                         ids=[c[0] for c in BAD_SWEEPS])
def test_bad_sweep_file_names_the_file_and_key(tmp_path, sweep, top, message):
    path = sweep_file(tmp_path, sweep, *([top] if top else []))
    assert load_error(path) == f"{path}: {message}"


def test_a_config_without_a_sweep_section_is_not_a_sweep(tmp_path):
    path = tmp_path / "plain.yaml"
    path.write_text(f"extends: {SMOKE}\ntrain: {{epochs: 2}}\n")
    assert load_error(path) == (f"{path}: no sweep: section; a sweep file extends a config and "
                                "adds one (see configs/sweep.yaml)")


def test_a_bad_set_override_of_a_sweep_key_names_the_flag(tmp_path):
    path = sweep_file(tmp_path, f"  trials: 3\n  space:\n    train.learning_rate: {RANGE}\n")
    assert load_error(path, ["sweep.trials=0"]) == (
        "--set sweep.trials: expected an integer >= 1, got 0")


def test_a_sweep_file_is_not_a_train_config(tmp_path):
    path = sweep_file(tmp_path, f"  space:\n    train.learning_rate: {RANGE}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == (f"{path}: sweep: this is a sweep file; run it with "
                                f"`python -m job sweep --config {path}` "
                                f"(or make sweep CONFIG={path})")


def test_sweep_model_must_be_trained_at_every_point(tmp_path):
    with pytest.raises(ConfigError, match="sweep.model"):
        load_sweep(sweep_file(tmp_path, "  model: cnn-keras\n  space:\n"
                              "    models: {choices: [[cnn-keras], [ffn-keras]]}\n"))


# --- good sweep files ------------------------------------------------------------------

def test_shipped_gpu_sweep_loads_as_written():
    sweep = load_sweep(REPO / "configs" / "sweep.yaml")
    s = sweep.settings
    assert (s.study, s.storage, s.sampler, s.seed, s.trials) == ("cnn", "auto", "tpe", 0, 24)
    assert (s.objective, s.model, s.pruner, s.direction) == (
        "val_accuracy", "cnn-keras", "median", "maximize")
    assert (s.heartbeat_seconds, s.grace_seconds, s.max_retries) == (60, 180, 2)
    assert [d.key for d in sweep.space] == [
        "train.learning_rate", "arch.cnn.filters", "arch.cnn.dropout", "arch.cnn.dense_dropout",
        "train.augment.rotation_degrees", "train.augment.zoom"]
    lr = sweep.space[0]
    assert (lr.low, lr.high, lr.log, lr.step, lr.is_int) == (3.0e-4, 3.0e-3, True, None, False)
    assert sweep.space[1].choices == ([32, 64], [64, 128])
    assert sweep.base.models == ("cnn-keras",)
    assert sweep.base.train.epochs == 30


def test_shipped_smoke_sweep_is_a_full_grid_of_four():
    sweep = load_sweep(REPO / "configs" / "sweep-smoke.yaml")
    assert (sweep.settings.study, sweep.settings.sampler, sweep.settings.trials) == (
        "smoke", "grid", 4)
    assert [(d.key, d.grid_values()) for d in sweep.space] == [
        ("train.learning_rate", (0.001, 0.003)), ("arch.cnn.filters", ([8, 16], [16, 32]))]
    assert sweep.base.models == ("cnn-keras", "cnn-tf")
    assert sweep.base.name == "sweep-smoke"


def test_a_stepped_int_range_grid_visits_every_step(tmp_path):
    # kernel 1..8 by 3: 1, 4, 7 (8 is not on a step); epochs 2..4 by 1: 2, 3, 4 → 9 points.
    path = sweep_file(tmp_path, "  sampler: grid\n  trials: 9\n  space:\n"
                                "    arch.cnn.kernel_size: {low: 1, high: 8, step: 3}\n"
                                "    train.epochs: {low: 2, high: 4, step: 1}\n")
    kernel, epochs = load_sweep(path).space
    assert kernel.grid_values() == (1, 4, 7)
    assert epochs.grid_values() == (2, 3, 4)
    assert all(type(v) is int for v in kernel.grid_values() + epochs.grid_values())
    message = load_error(path, ["sweep.trials=10"])
    assert message == ("--set sweep.trials: 10 trials but the grid has 9 points; set "
                       "sweep.trials to 9 at most")


def test_a_stepped_float_range_grid_has_clean_values(tmp_path):
    path = sweep_file(tmp_path, "  sampler: grid\n  trials: 4\n  space:\n"
                                "    arch.cnn.dropout: {low: 0.1, high: 0.4, step: 0.1}\n")
    assert load_sweep(path).space[0].grid_values() == (0.1, 0.2, 0.3, 0.4)


def test_study_override_names_the_study(tmp_path):
    path = sweep_file(tmp_path, f"  study: first\n  space:\n    train.learning_rate: {RANGE}\n")
    assert load_sweep(path).settings.study == "first"
    assert load_sweep(path, ["sweep.study=cnn-lr.2"]).settings.study == "cnn-lr.2"


def test_checking_a_sweep_loads_neither_tensorflow_nor_optuna():
    code = ("import sys; from job.config.sweep import load_sweep; "
            f"load_sweep({str(REPO / 'configs' / 'sweep.yaml')!r}); "
            "print(sorted(m for m in ('tensorflow', 'keras', 'optuna') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], check=False, cwd=REPO, env=job_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"


# --- through the command line ------------------------------------------------------------

def job_env() -> dict[str, str]:
    """No credentials, no storage or worker settings from this shell; the checkout as cwd."""
    env = clean_env()
    for name in ("PYTHONPATH", "OPTUNA_STORAGE", "TF_CONFIG", "JOB_SWEEP_WORKER"):
        env.pop(name, None)
    return env


def run_sweep_cli(runs: Path, *args: str, command: str = "sweep") -> tuple[
        subprocess.CompletedProcess, float]:
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "job", command, *args,
                             "--set", f"output.runs_dir={runs}"],
                            check=False, cwd=REPO, env=job_env(), capture_output=True, text=True,
                            timeout=120)
    return result, time.monotonic() - start


def assert_one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


CLI_CASES = [
    ("unknown key", f"  space:\n    train.learning_rat: {RANGE}\n", (),
     ("error: {path}: sweep.space.train.learning_rat: unknown config key train.learning_rat "
      "(did you mean train.learning_rate?)")),
    ("cross-key rule at a grid point",
     ("  sampler: grid\n  trials: 2\n  space:\n"
      "    arch.cnn.filters: {choices: [[8, 16], [4, 4, 4, 4, 4]]}\n"), (),
     (f"error: {{path}}: sweep.space: arch.cnn.filters: {POOLING} "
      "(in the sweep point arch.cnn.filters=[4, 4, 4, 4, 4])")),
    ("grid smaller than trials",
     "  sampler: grid\n  trials: 3\n  space:\n    train.learning_rate: {choices: [0.001, 0.003]}\n",
     (), ("error: {path}: sweep.trials: 3 trials but the grid has 2 points; set sweep.trials "
          "to 2 at most")),
    ("--set sweep.trials=0", f"  space:\n    train.learning_rate: {RANGE}\n",
     ("--set", "sweep.trials=0"), "error: --set sweep.trials: expected an integer >= 1, got 0"),
    ("--study with a slash", f"  space:\n    train.learning_rate: {RANGE}\n",
     ("--study", "a/b"), ("error: --set sweep.study: expected a name of letters, digits, . _ - "
                          '(it names the study and its folder), got "a/b"')),
    ("--workers 0", f"  space:\n    train.learning_rate: {RANGE}\n",
     ("--workers", "0"), "error: --workers: expected a positive number, got 0"),
]


@pytest.mark.parametrize("sweep, args, message", [c[1:] for c in CLI_CASES],
                         ids=[c[0] for c in CLI_CASES])
def test_bad_sweep_fails_at_once_on_the_command_line(tmp_path, sweep, args, message):
    path = sweep_file(tmp_path, sweep)
    runs = tmp_path / "runs"
    result, seconds = run_sweep_cli(runs, "--config", str(path), *args)
    assert assert_one_error_line(result) == message.format(path=path)
    assert not runs.exists()
    assert seconds < 15   # no TensorFlow import (~3-8 s) before the check


def test_train_refuses_a_sweep_file_at_once(tmp_path):
    path = sweep_file(tmp_path, f"  space:\n    train.learning_rate: {RANGE}\n")
    runs = tmp_path / "runs"
    result, seconds = run_sweep_cli(runs, "--config", str(path), command="train")
    assert assert_one_error_line(result) == (
        f"error: {path}: sweep: this is a sweep file; run it with "
        f"`python -m job sweep --config {path}` (or make sweep CONFIG={path})")
    assert not runs.exists()
    assert seconds < 15


def test_an_unreachable_storage_is_one_line_without_the_password(tmp_path):
    password = "S3cretPassw0rd"
    runs = tmp_path / "runs"
    result, _ = run_sweep_cli(runs, "--config", str(REPO / "configs" / "sweep-smoke.yaml"),
                              "--storage", f"postgresql://digit:{password}@127.0.0.1:1/sweeps")
    line = assert_one_error_line(result)
    assert line.startswith("error: cannot reach the sweep storage at 127.0.0.1:1 (")
    assert line.endswith("the URL postgresql://digit:***@127.0.0.1:1/sweeps")
    assert password not in result.stdout + result.stderr
    trained = [p for p in runs.rglob("*") if p.is_file()] if runs.exists() else []
    assert trained == []
    assert not any((runs / "sweeps" / "smoke" / "trials").glob("*"))
