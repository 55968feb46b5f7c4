"""`python -m job train` on a terminal draws the running models live (epoch, batch,
images/s, loss, ETA) under the epoch lines, and ends with the run path; anywhere else its
output is the plain lines alone, as before there was a live display."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHORT = ("--set", "models=[ffn-tf,ffn-torch]", "--set", "train.epochs=2")
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Every kind of line the parent prints for this run, plain (the WARNING goes to stderr);
# a model's name is padded to 10 columns.
NAME = r"(ffn-tf    |ffn-torch )"
PLAIN_KINDS = [
    NAME + r" training \(plain (TensorFlow|PyTorch) loop; CPU\)",
    NAME + r" epoch [12]/2  loss \d\.\d{4}  accuracy \d\.\d{4}  "
    r"val_loss \d\.\d{4}  val_accuracy \d\.\d{4}  \d+\.\ds",
    NAME + r" early stop after epoch \d: .*",
    NAME + r" done: val accuracy \d\.\d{4}, \d epochs, \d+\.\d\ds/epoch",
    r"held-out test labels: best .*", r"best: .* \(val accuracy \d\.\d{4}\)",
    r"submission \(.*\): held-out test accuracy \d\.\d{4}",
]


def train_command(runs: Path) -> list[str]:
    return [sys.executable, "-m", "job", "train", "--config", "configs/smoke.yaml",
            "--set", f"output.runs_dir={runs}", "--set", f"data.sample_dir={runs.parent}/sample",
            *SHORT]


def env_without_credentials(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE")}
    return {**env, "HOME": str(home)}


def only_run(runs: Path) -> Path:
    [run] = [p for p in runs.iterdir() if p.is_dir() and not p.is_symlink()]
    return run


def test_on_a_terminal_the_running_models_are_drawn_live_under_the_epoch_lines(tmp_path):
    # script(1) gives the job a pseudo-terminal (sized: it has none otherwise); its bytes are
    # read as they are, since text mode would turn each \r into a new line.
    command = f"stty cols 120; {shlex.join(train_command(tmp_path / 'runs'))}"
    done = subprocess.run(["script", "-qefc", command, "/dev/null"], cwd=REPO,
                          env=env_without_credentials(tmp_path), capture_output=True,
                          timeout=300)
    raw = done.stdout.decode()
    assert done.returncode == 0, raw[-3000:]
    shown = ESCAPES.sub("", raw)
    for model in ("ffn-tf", "ffn-torch"):
        # a row of the live table: name, epoch e/E, batch b/B, images/s, loss, an ETA
        assert re.search(rf"\n{model} +[12]/2 +\d+/\d+ +[\d,-]+ +\d\.\d{{4}} +(≤ )?(\d+s|\?)",
                         shown), shown[-3000:]
        assert f"{model:<10} epoch 2/2  loss" in shown          # printed above the area
    assert "run ETA" in shown and "\x1b[2K" in raw                # redrawn in place
    # the area is gone at the end: the last line on the screen is the run's path
    last = shown.replace("\r\n", "\n").rstrip("\n").split("\n")[-1].split("\r")[-1]
    assert last == str(only_run(tmp_path / "runs"))


def test_without_a_terminal_the_output_is_the_plain_lines_alone(tmp_path):
    done = subprocess.run(train_command(tmp_path / "runs"), cwd=REPO,
                          env=env_without_credentials(tmp_path), capture_output=True,
                          text=False, timeout=300)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert "\x1b" not in out and "\r" not in out
    *lines, path = out.rstrip("\n").split("\n")
    assert path == str(only_run(tmp_path / "runs"))             # the last line: the run
    for line in lines:
        assert any(re.fullmatch(kind, line) for kind in PLAIN_KINDS), line
    assert sum("epoch 2/2" in line for line in lines) == 2     # nothing else, nothing lost
    assert "\x1b" not in done.stderr.decode()
