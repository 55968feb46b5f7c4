"""One model, one process (job/workers): a torch-only run needs no TensorFlow at all, a
worker that dies ends the run with one line naming it and its log and `--resume` trains
only what did not finish, and the devices are shared out as the README says."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from job.styles import ModelId
from job.workers.parent import slots_for

REPO = Path(__file__).resolve().parent.parent
SMOKE = str(REPO / "configs/smoke.yaml")


def job(*args: str, cwd: Path, extra_path: str = "") -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE")}
    env.update(PYTHONPATH=os.pathsep.join(p for p in (extra_path, str(REPO)) if p),
               HOME=str(cwd))
    return subprocess.Popen([sys.executable, "-m", "job", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def workers_of(parent: int) -> list[int]:
    """The pids of `parent`'s worker processes, read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == parent and b"job.workers.child" in cmdline:
            found.append(int(stat.parent.name))
    return found


def test_a_torch_only_run_needs_no_tensorflow_installed(tmp_path):
    """TensorFlow and Keras made unimportable for the parent and every worker."""
    blocked = tmp_path / "blocked"
    for name in ("tensorflow", "keras"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(
            f"raise ImportError('{name} is not installed on this machine')\n")
    run = job("train", "--config", SMOKE, "--set", "output.runs_dir=runs",
              "--set", "models=[ffn-torch, cnn-torch]", cwd=tmp_path, extra_path=str(blocked))
    out, err = run.communicate(timeout=600)
    assert run.returncode == 0, err[-3000:]
    folder = tmp_path / out.strip().splitlines()[-1]
    for name in ("ffn-torch", "cnn-torch"):
        row = json.loads((folder / "models" / f"{name}.json").read_text())
        assert row["process"]["frameworks"] == ["torch"]
    assert json.loads((folder / "manifest.json").read_text())["process"]["frameworks"] == []
    assert (folder / "submission.csv").is_file()


def test_a_killed_worker_is_one_line_and_resume_trains_only_the_rest(tmp_path):
    config = ["--config", SMOKE, "--set", "output.runs_dir=runs",
              "--set", "models=[ffn-tf, ffn-torch]", "--set", "train.epochs=40",
              "--set", "train.early_stopping.patience=40", "--set", "train.log_every=1"]
    first = job("train", *config, cwd=tmp_path)
    lines, deadline = [], time.monotonic() + 300
    while time.monotonic() < deadline and "ffn-torch  epoch  3/40" not in "".join(lines):
        lines.append(first.stdout.readline())
    [worker] = workers_of(first.pid)
    os.kill(worker, signal.SIGKILL)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 2
    *warnings, line = err.strip().splitlines()   # the sample's warning, then the error
    assert all(w.startswith("WARNING: training on the embedded SAMPLE") for w in warnings)
    [run] = [p for p in (tmp_path / "runs").iterdir() if p.name != "latest"]
    assert line == (f"error: ffn-torch: its worker process died (killed by SIGKILL); its "
                    f"output is in {Path('runs') / run.name / 'logs/ffn-torch.log'}. The models "
                    f"that finished are kept: resume with `python -m job train --resume "
                    f"{Path('runs') / run.name}` to train only the others")
    assert "ffn-torch  epoch  3/40" in (run / "logs/ffn-torch.log").read_text()
    assert json.loads((run / "manifest.json").read_text())["status"] == "failed"
    assert (run / "models/ffn-tf.json").is_file() and not (run / "models/ffn-torch.json").exists()
    stopped_at = json.loads((run / "checkpoints/ffn-torch/state.json").read_text())["epochs_done"]

    second = job("train", "--resume", str(run), cwd=tmp_path)
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err[-3000:]
    assert "ffn-tf     already trained in this run; reusing it" in out
    assert f"ffn-torch  resuming after epoch {stopped_at}" in out
    row = json.loads((run / "models/ffn-torch.json").read_text())
    assert [h["epoch"] for h in row["history"]] == list(range(1, 41))


def test_k_workers_share_a_cpu_and_train_side_by_side(tmp_path):
    """runtime.parallel: 2 on a CPU: two workers at once, each with half the cores."""
    run = job("train", "--config", SMOKE, "--set", "output.runs_dir=runs",
              "--set", "models=[ffn-tf, ffn-torch]", "--set", "runtime.parallel=2",
              cwd=tmp_path)
    out, err = run.communicate(timeout=600)
    assert run.returncode == 0, err[-3000:]
    assert "ffn-tf     training (plain TensorFlow loop; CPU share 1/2)" in out
    assert "ffn-torch  training (plain PyTorch loop; CPU share 2/2)" in out
    # Side by side: the second started before the first ended.
    assert out.index("ffn-torch  training") < out.index("ffn-tf     done")


def test_slots_give_each_worker_one_gpu_or_a_share_of_the_cores():
    cores = str(max(1, (os.cpu_count() or 1) // 2))
    assert [s.env for s in slots_for(["0", "1", "2", "3"], 0, False)] == [
        {"CUDA_VISIBLE_DEVICES": g} for g in "0123"]
    assert [s.env for s in slots_for(["0", "1"], 1, False)] == [{"CUDA_VISIBLE_DEVICES": "0"}]
    assert [s.env for s in slots_for(["0", "1"], 0, True)] == [{}]   # mirrored: all GPUs
    assert [s.env for s in slots_for([], 0, False)] == [{"CUDA_VISIBLE_DEVICES": ""}]
    assert [s.env for s in slots_for([], 2, False)] == [
        {"CUDA_VISIBLE_DEVICES": "", "TF_NUM_INTRAOP_THREADS": cores,
         "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": cores,
         "OMP_WAIT_POLICY": "PASSIVE"}] * 2


@pytest.mark.parametrize("name, expected", [
    ("cnn-keras", ModelId("cnn", "keras")),
    ("cnn-keras-bag3", ModelId("cnn", "keras", 3)),
    ("ffn-torch-full", ModelId("ffn", "torch", 0, True)),
    ("lstm-tf-bag12-full", ModelId("lstm", "tf", 12, True)),
])
def test_a_model_identity_is_its_name(name, expected):
    assert ModelId.parse(name) == expected and expected.name == name


@pytest.mark.parametrize("name", ["cnn", "cnn-jax", "gru-tf", "cnn-tf-bagx", "ensemble"])
def test_a_name_that_is_no_model_is_refused(name):
    with pytest.raises(ValueError, match="not a model name"):
        ModelId.parse(name)


def test_a_damaged_results_row_is_one_line_naming_it(tmp_path):
    """A finished model's row that another version wrote, or a torn logits file: one
    error line that says what to delete, before anything is built on it."""
    from job.candidates import Trainer
    from job.config import Config
    from job.errors import RunError
    from job.outputs.folder import Run
    from job.workers.parent import Workers

    (tmp_path / "models").mkdir()
    (tmp_path / "models/ffn-tf.json").write_text('{"name": "ffn-tf", "val_acc": 0.5}')
    (tmp_path / "models/ffn-tf.logits.npz").write_bytes(b"not a zip")
    trainer = Trainer(Config(), Run(tmp_path), tmp_path, Workers([], print, tmp_path), print)
    with pytest.raises(RunError, match=r"models/ffn-tf.json: unreadable or damaged .*; delete "
                                       r"it to train ffn-tf again, then resume"):
        trainer.train([ModelId("ffn", "tf")])


def test_a_worker_whose_parent_is_killed_stops_at_a_checkpoint_and_resumes(tmp_path):
    """The parent SIGKILLed (it can pass no stop on): its worker, in a session of its own,
    notices, stops as on SIGTERM with its last epoch checkpointed, and the run resumes."""
    first = job("train", "--config", SMOKE, "--set", "output.runs_dir=runs",
                "--set", "models=[ffn-torch]", "--set", "train.epochs=30",
                "--set", "train.early_stopping.patience=30", "--set", "train.log_every=1",
                cwd=tmp_path)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and "ffn-torch  epoch  3/30" not in first.stdout.readline():
        pass
    [worker] = workers_of(first.pid)
    first.kill()
    first.wait()
    deadline = time.monotonic() + 60
    while Path(f"/proc/{worker}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{worker}").exists(), "the orphaned worker kept training"
    [run] = [p for p in (tmp_path / "runs").iterdir() if p.name != "latest"]
    assert "interrupted: SIGTERM received during ffn-torch epoch" in (
        run / "logs/ffn-torch.log").read_text()
    stopped_at = json.loads((run / "checkpoints/ffn-torch/state.json").read_text())["epochs_done"]
    assert 3 <= stopped_at < 30 and not (run / "models/ffn-torch.json").exists()

    second = job("train", "--resume", str(run), cwd=tmp_path)
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err[-3000:]
    assert f"ffn-torch  resuming after epoch {stopped_at}" in out
    row = json.loads((run / "models/ffn-torch.json").read_text())
    assert [h["epoch"] for h in row["history"]] == list(range(1, 31))
