"""Two workers on loopback ports train with MultiWorkerMirroredStrategy; only the chief
writes the run's outputs."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_worker(index: int, ports: list[int], root: Path, *extra: str) -> subprocess.Popen:
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    env = {**os.environ, "PYTHONPATH": str(REPO),
           "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
    return subprocess.Popen(
        [sys.executable, "-m", "job", "train", "--config", str(REPO / "configs/smoke.yaml"),
         "--set", "models=[ffn-tf, cnn-tf]", "--set", "output.runs_dir=runs",
         "--set", f"data.sample_dir=sample-{index}", *extra],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_workers_train_and_only_the_chief_writes(tmp_path):
    ports = [free_port(), free_port()]
    workers = [start_worker(i, ports, tmp_path) for i in (0, 1)]
    outputs = [w.communicate(timeout=600) for w in workers]
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
    chief_out, worker_out = outputs[0][0], outputs[1][0]
    run = tmp_path / chief_out.strip().splitlines()[-1]
    assert (run / "submission.csv").is_file() and (run / "models" / "cnn-tf").is_dir()
    # Every model of a member trained in one worker process, where the cluster formed once.
    for name in ("ffn-tf", "cnn-tf"):
        row = json.loads((run / "models" / f"{name}.json").read_text())
        assert row["runtime"]["strategy"] == "multi_worker" and row["runtime"]["replicas"] == 2
    assert (run / "logs" / "ffn-tf+cnn-tf.log").is_file()
    assert worker_out.strip().splitlines()[-1] == "worker done; the chief wrote the run's outputs"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted([run.name, "latest"])
    # Collectives keep the workers in lockstep: they log the same metrics.
    epochs = [[ln for ln in out.splitlines() if " epoch " in ln] for out, _ in outputs]
    strip_time = [[ln.rsplit("  ", 1)[0] for ln in lines] for lines in epochs]
    assert strip_time[0] == strip_time[1] and len(strip_time[0]) == 6


def test_keras_models_are_refused_across_workers(tmp_path):
    ports = [free_port(), free_port()]
    workers = [start_worker(i, ports, tmp_path, "--set", "models=[ffn-tf, ffn-keras]")
               for i in (0, 1)]
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 2
        assert err.startswith("error: models: ffn-keras cannot train under "
                              "MultiWorkerMirroredStrategy")
    assert not (tmp_path / "runs").exists()
