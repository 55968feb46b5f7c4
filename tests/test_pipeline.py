"""End to end: `python -m job train` on the smoke config, as a user runs it."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


SMOKE_MODELS = ("ffn-tf", "ffn-keras", "ffn-torch", "cnn-tf", "cnn-keras",
                "cnn-torch")   # configs/smoke.yaml
METRIC_KEYS = {"name", "arch", "style", "params", "epochs_run", "best_epoch", "val_accuracy",
               "val_loss", "train_seconds", "seconds_per_epoch", "history",
               "test_accuracy",   # the sample keeps its test labels: scored on them too
               "runtime", "process"}   # each worker's devices, and what its process loaded


def run_job(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE")}
    env["HOME"] = str(cwd)   # no real credentials can be found
    return subprocess.run([sys.executable, "-m", "job", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One real smoke run into a temp folder, shared by the checks below."""
    root = tmp_path_factory.mktemp("e2e")
    repo = Path(__file__).resolve().parent.parent
    (root / "job").symlink_to(repo / "job")
    result = run_job("train", "--config", str(repo / "configs/smoke.yaml"),
                     "--set", "output.runs_dir=runs", "--set", "data.sample_dir=data/sample",
                     cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, result


def test_prints_the_run_folder_last_and_warns_about_the_sample(smoke_run):
    root, result = smoke_run
    run = Path(result.stdout.strip().splitlines()[-1])
    assert run.parent == Path("runs") and (root / run).is_dir()
    warnings = [ln for ln in result.stderr.splitlines() if "SAMPLE" in ln]
    assert len(warnings) == 1 and warnings[0].startswith("WARNING: training on the embedded")
    assert (root / "runs/latest").resolve() == (root / run).resolve()


def test_run_folder_contents(smoke_run):
    root, _ = smoke_run
    run = root / "runs/latest"
    names = {p.name for p in run.iterdir()}
    assert {"config.yaml", "manifest.json", "metrics.json", "report.md", "submission.csv",
            "models", "tensorboard"} <= names
    assert not [n for n in names if n.startswith(".")]
    assert {p.name for p in (run / "models").iterdir()} == {
        "ffn-tf", "cnn-tf", "ffn-keras.keras", "cnn-keras.keras", "ffn-torch.pt", "cnn-torch.pt",
        *(f"{name}.json" for name in SMOKE_MODELS),          # each model's results row
        *(f"{name}.logits.npz" for name in SMOKE_MODELS)}    # and the logits its worker saved
    assert not (run / "checkpoints").exists()      # a completed run keeps no checkpoints
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["data"]["source"] == "sample"
    assert set(manifest["data"]["sha256"]) == {"train.csv", "test.csv"}
    assert {"tensorflow", "keras", "torch", "numpy", "python"} <= set(manifest["versions"])
    assert manifest["seeds"] == {"data": 42, "train": 0}
    assert "| cnn-keras" in (run / "report.md").read_text()


def test_metrics_schema(smoke_run):
    root, _ = smoke_run
    metrics = json.loads((root / "runs/latest/metrics.json").read_text())
    assert [m["name"] for m in metrics["models"]] == list(SMOKE_MODELS)
    assert metrics["best"] in SMOKE_MODELS
    for m in metrics["models"]:
        assert set(m) == METRIC_KEYS
        assert 1 <= m["best_epoch"] <= m["epochs_run"] <= 3
        assert 0.0 <= m["val_accuracy"] <= 1.0 and m["val_loss"] > 0
        assert 0.0 <= m["test_accuracy"] <= 1.0
        assert len(m["history"]) == m["epochs_run"]
    params = {m["name"]: m["params"] for m in metrics["models"]}
    assert params["ffn-tf"] == params["ffn-keras"] and params["cnn-tf"] == params["cnn-keras"]
    best = next(m for m in metrics["models"] if m["name"] == metrics["best"])
    assert best["val_accuracy"] == max(m["val_accuracy"] for m in metrics["models"])


def test_submission_holds_the_best_models_predictions(smoke_run):
    """The saved best model, loaded back, predicts exactly the submitted labels."""
    from job.config import load_config
    from job.data.arrays import read_test_csv
    from job.train.task import make_task
    from job.workers.child import loop_of

    root, _ = smoke_run
    run = root / "runs/latest"
    best = json.loads((run / "metrics.json").read_text())["best"]
    config = load_config(run / "config.yaml")
    task = make_task(best, config.arch, config.train, config.data.seed, logdir=run)
    predict = loop_of(task.style).load_predictor(run / "models", task)
    predicted = predict(read_test_csv(root / "data/sample/test.csv"))
    rows = list(csv.reader((run / "submission.csv").open()))[1:]
    assert [int(label) for _, label in rows] == predicted.argmax(axis=1).tolist()


def test_submission_format(smoke_run):
    root, _ = smoke_run
    rows = list(csv.reader((root / "runs/latest/submission.csv").open()))
    sample = list(csv.reader((root / "data/sample/sample_submission.csv").open()))
    assert rows[0] == ["ImageId", "Label"]
    assert [r[0] for r in rows[1:]] == [r[0] for r in sample[1:]]
    assert [r[0] for r in rows[1:]] == [str(i) for i in range(1, len(rows))]
    assert {r[1] for r in rows[1:]} <= set("0123456789")


def scalar_tags(folder: Path) -> set[str]:
    """TF's writers store scalars as tensors, torch's SummaryWriter as simple values;
    TensorBoard draws both as the same scalar charts."""
    accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0, "scalars": 0})
    accumulator.Reload()
    return set(accumulator.Tags()["tensors"]) | set(accumulator.Tags()["scalars"])


@pytest.mark.parametrize("model", SMOKE_MODELS)
def test_tensorboard_tags_match_across_styles(smoke_run, model):
    root, _ = smoke_run
    logdir = root / "runs/latest/tensorboard" / model
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= scalar_tags(logdir / "train")
    assert {"epoch_loss", "epoch_accuracy"} <= scalar_tags(logdir / "validation")
    accumulator = EventAccumulator(str(logdir), size_guidance={"tensors": 0})
    accumulator.Reload()
    assert "_hparams_/session_start_info" in accumulator.Tags()["tensors"]
    # The session is named after the run and the model: TensorBoard merges equal names, so a
    # bare model name would fold every run's cnn-keras into one HParams row.
    from tensorboard.plugins.hparams import plugin_data_pb2
    data = plugin_data_pb2.HParamsPluginData.FromString(
        accumulator.SummaryMetadata("_hparams_/session_start_info").plugin_data.content)
    run_id = (root / "runs/latest").resolve().name
    assert data.session_start_info.group_name == f"{run_id}/{model}"
    assert data.session_start_info.hparams["model"].string_value == model


def test_runs_lists_the_run(smoke_run):
    root, result = smoke_run
    listing = run_job("runs", "--runs-dir", "runs", cwd=root)
    run_id = Path(result.stdout.strip().splitlines()[-1]).name
    line = next(ln for ln in listing.stdout.splitlines() if ln.startswith(run_id))
    assert "complete" in line and "sample" in line


def test_each_model_trained_in_a_process_holding_only_its_framework(smoke_run):
    """One framework per process, from each process's own sys.modules: a TF or Keras
    worker loaded TensorFlow and no torch, a torch worker torch and no TensorFlow, and the
    process the user started neither."""
    root, _ = smoke_run
    run = root / "runs/latest"
    loaded = {name: json.loads((run / "models" / f"{name}.json").read_text())["process"]
              for name in SMOKE_MODELS}
    for name, process in loaded.items():
        expected = ["torch"] if name.endswith("-torch") else ["keras", "tensorflow"]
        assert process["frameworks"] == expected, name
    parent = json.loads((run / "manifest.json").read_text())["process"]
    assert parent["frameworks"] == []
    assert len({p["pid"] for p in loaded.values()} | {parent["pid"]}) == 7   # 7 processes
    for name in SMOKE_MODELS:   # every worker's output is kept
        assert f"{name:<10} done: val accuracy" in (run / "logs" / f"{name}.log").read_text()
