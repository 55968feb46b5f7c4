"""An interrupted run continues where it stopped and ends as if never interrupted."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from job.system import interrupt
from job.config import AugmentConfig, CNNSpec, EarlyStoppingConfig, ScheduleConfig, TrainConfig
from job.styles.keras import loop as keras_fit
from job.styles.tf import loop as tf_loop
from job.styles.torch import loop as torch_loop
from job.train.task import Split, Task
from job.styles import ModelId

FIT = {"tf": tf_loop.fit, "keras": keras_fit.fit, "torch": torch_loop.fit}
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def split(digits):
    images, labels = digits
    return Split(images[:384], labels[:384], images[384:512], labels[384:512])


PLATEAU = ScheduleConfig(kind="plateau", patience=0)
# Per step: a resumed run must continue the cycle from its checkpointed step count.
ONE_CYCLE = ScheduleConfig(kind="one_cycle", warmup_fraction=0.3)


def task(root: Path, style: str, checkpoints: Path, lr_schedule=PLATEAU) -> Task:
    # Dropout on: a resumed run must also continue the dropout generators' streams.
    spec = CNNSpec(filters=(4,), convs_per_block=1, dense=(16,), dropout=0.2, dense_dropout=0.2)
    stopping = EarlyStoppingConfig(monitor="val_accuracy", patience=2)
    # Augmentation and a plateau schedule on too: their state must carry over as well.
    return Task(model=ModelId("cnn", style), spec=spec,
                train=TrainConfig(epochs=5, batch_size=64, learning_rate=0.003,
                                  early_stopping=stopping,
                                  augment=AugmentConfig(rotation_degrees=10, zoom=0.1),
                                  lr_schedule=lr_schedule),
                order_seed=3, logdir=root / "tb", checkpoint_dir=checkpoints)


def stop_after_epoch(n: int):
    """A log function that requests a stop once epoch n is reported, as SIGTERM would."""
    def log(line: str) -> None:
        if f" epoch {n}/" in line:
            interrupt._requested.append(signal.SIGTERM)
    return log


@pytest.mark.parametrize("lr_schedule", [PLATEAU, ONE_CYCLE], ids=["plateau", "one_cycle"])
@pytest.mark.parametrize("style", list(FIT))
def test_resumed_training_equals_uninterrupted_training(tmp_path, split, style, lr_schedule):
    whole = FIT[style](task(tmp_path / "a", style, tmp_path / "a" / "ckpt", lr_schedule),
                       split, print)
    interrupted_task = task(tmp_path / "b", style, tmp_path / "b" / "ckpt", lr_schedule)
    try:
        with pytest.raises(interrupt.Interrupted, match=f"cnn-{style} epoch 3"):
            FIT[style](interrupted_task, split, stop_after_epoch(2))
    finally:
        interrupt._requested.clear()
    saved = json.loads((tmp_path / "b" / "ckpt" / "state.json").read_text())
    assert saved["epochs_done"] == 2
    resumed = FIT[style](interrupted_task, split, print)
    assert [r["epoch"] for r in resumed.history] == [r["epoch"] for r in whole.history]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
        np.testing.assert_allclose([r[key] for r in resumed.history],
                                   [r[key] for r in whole.history], rtol=1e-5, err_msg=key)
    assert resumed.best_epoch == whole.best_epoch
    np.testing.assert_allclose(resumed.predict_logits(split.val_x),
                               whole.predict_logits(split.val_x), rtol=1e-4, atol=1e-5)


def job(*args: str, cwd: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE")}
    env.update(PYTHONPATH=str(REPO), HOME=str(cwd))
    return subprocess.Popen([sys.executable, "-m", "job", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(process: subprocess.Popen, text: str, timeout: float = 300) -> list[str]:
    """Read stdout lines until one contains `text`."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"never saw {text!r}; got {lines[-5:]}")


def event_steps(folder: Path, tag: str) -> list[int]:
    accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    accumulator.Reload()
    return [event.step for event in accumulator.Tensors(tag)]


def test_sigterm_mid_training_then_resume_completes_the_run(tmp_path):
    config = ["--config", str(REPO / "configs/smoke.yaml"), "--set", "output.runs_dir=runs",
              "--set", "models=[ffn-tf, ffn-keras, cnn-tf, cnn-keras]", "--set", "train.epochs=12", "--set", "train.early_stopping.patience=100"]
    first = job("train", *config, cwd=tmp_path)
    wait_for(first, "cnn-keras  epoch  2/12")
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 75, err
    assert err.strip().splitlines()[-1].startswith("interrupted: SIGTERM received during "
                                                   "cnn-keras epoch")
    [run] = [p for p in (tmp_path / "runs").iterdir() if p.name != "latest"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert not (tmp_path / "runs" / "latest").exists()   # latest is for completed runs
    assert not (run / "submission.csv").exists()
    stopped_at = json.loads((run / "checkpoints/cnn-keras/state.json").read_text())["epochs_done"]

    second = job("train", "--resume", cwd=tmp_path)
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    for name in ("ffn-tf", "ffn-keras", "cnn-tf"):
        assert f"{name:<10} already trained in this run; reusing it" in out
    assert f"cnn-keras  resuming after epoch {stopped_at}" in out
    assert out.strip().splitlines()[-1] == str(Path("runs") / run.name)

    metrics = json.loads((run / "metrics.json").read_text())
    keras_row = next(m for m in metrics["models"] if m["name"] == "cnn-keras")
    assert [h["epoch"] for h in keras_row["history"]] == list(range(1, 13))
    assert event_steps(run / "tensorboard/cnn-keras/train", "epoch_loss") == list(range(12))
    assert json.loads((run / "manifest.json").read_text())["status"] == "complete"
    assert len(json.loads((run / "manifest.json").read_text())["resumed"]) == 1
    assert (tmp_path / "runs/latest").resolve() == run.resolve()
    assert not (run / "checkpoints/cnn-keras").exists()   # finished models drop them
    rows = list(csv.reader((run / "submission.csv").open()))
    assert rows[0] == ["ImageId", "Label"] and len(rows) == 361


def test_resume_refuses_a_complete_run_and_a_missing_one(tmp_path):
    run = tmp_path / "runs" / "x"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text('{"status": "complete"}')
    done = job("train", "--resume", str(run), cwd=tmp_path)
    _, err = done.communicate(timeout=120)
    assert done.returncode == 2 and "run is complete; there is nothing to resume" in err
    none = job("train", "--resume", "--runs-dir", str(tmp_path / "empty"), cwd=tmp_path)
    _, err = none.communicate(timeout=120)
    assert none.returncode == 2 and "no unfinished run to resume" in err
