"""Running real sweeps from tests: a tiny sweep file, `python -m job sweep` as a process,
and reading back what the study recorded."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def tiny_sweep(folder: Path, *, study: str = "t", trials: int = 4, epochs: int = 2,
               patience: int = 2, heartbeat: int = 60, grace: int = 180) -> Path:
    """A grid of 2x2 points, each a small FFN (Keras) on the embedded sample: seconds each."""
    path = folder / "tiny-sweep.yaml"
    path.write_text(f"""\
extends: {ROOT / 'configs/smoke.yaml'}
models: [ffn-keras]
arch: {{ffn: {{hidden: [16]}}}}
train: {{epochs: {epochs}, early_stopping: {{patience: {patience}}}}}
data: {{sample_dir: {folder / 'sample'}}}
output: {{runs_dir: {folder / 'runs'}}}
sweep:
  study: {study}
  sampler: grid
  trials: {trials}
  heartbeat_seconds: {heartbeat}
  grace_seconds: {grace}
  max_retries: 2
  space:
    train.learning_rate: {{choices: [0.001, 0.003]}}
    arch.ffn.dropout: {{choices: [0.0, 0.1]}}
""")
    return path


def job_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KAGGLE", "OPTUNA", "JOB_SWEEP", "CUDA_VISIBLE"))}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", **extra)
    return env


def start_sweep(*args: str, cwd: Path, env: dict | None = None, log: Path | None = None):
    """`python -m job sweep ...` in the background; its output goes to `log`."""
    out = open(log, "w") if log else subprocess.PIPE
    return subprocess.Popen([sys.executable, "-m", "job", "sweep", *args], cwd=cwd,
                            env=env or job_env(), stdout=out, stderr=subprocess.STDOUT,
                            text=True)


def run_sweep(*args: str, cwd: Path, env: dict | None = None, timeout: float = 600):
    return subprocess.run([sys.executable, "-m", "job", "sweep", *args], cwd=cwd,
                          env=env or job_env(), capture_output=True, text=True, timeout=timeout)


def wait_for(check, timeout: float, what: str, process=None) -> None:
    """Poll until check() is true; fail early if the process it waits on has died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the worker exited ({process.returncode}) before {what}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def checkpoint_epochs(run: Path, model: str = "ffn-keras") -> int:
    """Epochs done in the run's newest epoch-end checkpoint (0 when there is none)."""
    import json
    state = run / "checkpoints" / model / "state.json"
    try:
        return json.loads(state.read_text())["epochs_done"]
    except (OSError, ValueError, KeyError):
        return 0


def load_trials(url: str, study: str):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.load_study(study_name=study, storage=url).get_trials(deepcopy=False)
