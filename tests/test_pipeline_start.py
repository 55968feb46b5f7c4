"""`train` and `resume` share one start: a non-chief worker never writes the run folder,
and a resumed worker continues from the same checkpoints as the chief."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from job import pipeline
from job.config import load_config
from job.system import interrupt, runtime

REPO = Path(__file__).resolve().parent.parent


def snapshot(folder: Path) -> dict[str, tuple]:
    return {str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in folder.rglob("*")}


class Lines(list):
    """A log that records its lines, and asks for a stop when it sees `stop_at`."""

    def __init__(self, stop_at: str | None = None):
        super().__init__()
        self.stop_at = stop_at

    def __call__(self, line: str) -> None:
        self.append(line)
        if self.stop_at and self.stop_at in line:
            interrupt._requested.append(signal.SIGTERM)


def epoch_lines(lines: list[str], model: str) -> list[str]:
    """The model's epoch lines without their timing."""
    return [ln.rsplit("  ", 1)[0] for ln in lines
            if re.match(rf"{model} +epoch +\d+/", ln)]


@pytest.fixture
def interrupted_run(tmp_path):
    """A smoke run of ffn-tf (finished) and cnn-tf (stopped after epoch 2 of 4)."""
    config = load_config(REPO / "configs/smoke.yaml", [
        "models=[ffn-tf, cnn-tf]", "train.epochs=4", "train.early_stopping.patience=10",
        f"output.runs_dir={tmp_path / 'runs'}", f"data.sample_dir={tmp_path / 'sample'}"])
    try:
        with pytest.raises(interrupt.Interrupted):
            pipeline.train(config, Lines(stop_at="cnn-tf     epoch 2/4"), print)
    finally:
        interrupt._requested.clear()
    [run] = (tmp_path / "runs").iterdir()
    assert (run / "checkpoints" / "cnn-tf" / "state.json").is_file()
    return run


def test_a_resumed_worker_writes_nothing_and_keeps_step_with_the_chief(interrupted_run,
                                                                       monkeypatch):
    before = snapshot(interrupted_run)
    real_is_chief = runtime.is_chief
    monkeypatch.setattr(runtime, "is_chief", lambda spec: False)
    worker = Lines()
    assert pipeline.resume(*pipeline.read_resumable(interrupted_run), worker, print) is None
    assert snapshot(interrupted_run) == before          # the run folder is the chief's
    assert "ffn-tf     already trained in this run; reusing it" in worker
    assert "cnn-tf     resuming after epoch 2" in worker
    assert worker[-1] == "worker done; the chief wrote the run's outputs"

    monkeypatch.setattr(runtime, "is_chief", real_is_chief)
    chief = Lines()
    assert pipeline.resume(*pipeline.read_resumable(interrupted_run), chief,
                           print).path == interrupted_run
    # From the same checkpoint, the same two remaining epochs: the workers stay in step.
    assert epoch_lines(worker, "cnn-tf") == epoch_lines(chief, "cnn-tf")
    assert [ln.split()[2] for ln in epoch_lines(chief, "cnn-tf")] == ["3/4", "4/4"]
