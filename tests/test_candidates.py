"""End to end with the leaderboard options on: the best model fit again on every labelled
row (`train.refit_full`) and test-time augmentation (`predict.tta`), as a user runs them."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
MODELS = ("ffn-tf", "ffn-torch")


def run_job(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE")}
    env["HOME"] = str(cwd)
    return subprocess.run([sys.executable, "-m", "job", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def leaderboard_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("refit")
    (root / "job").symlink_to(REPO / "job")
    result = run_job("train", "--config", str(REPO / "configs/smoke.yaml"),
                     "--set", f"models=[{', '.join(MODELS)}]", "--set", "output.runs_dir=runs",
                     "--set", "train.refit_full=true", "--set", "predict.tta=2",
                     "--set", "train.augment.rotation_degrees=10",
                     "--set", "train.augment.shift=0.1", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, root / result.stdout.strip().splitlines()[-1]


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def submitted(run: Path) -> list[int]:
    return [int(label) for _, label in list(csv.reader((run / "submission.csv").open()))[1:]]


def test_the_best_is_refit_on_every_labelled_row_for_its_chosen_epochs(leaderboard_run):
    _, run = leaderboard_run
    metrics, manifest = read(run / "metrics.json"), read(run / "manifest.json")
    best = next(m for m in metrics["models"] if m["name"] == metrics["best"])
    made = metrics["submission"]
    assert made["model"] == best["name"] and made["weights"] == "refit"
    assert made["fit_rows"] == manifest["data"]["train_rows"] == 1437   # fit + validation
    [fit] = made["refit"]
    assert fit["name"] == f"{best['name']}-full" and fit["refit_of"] == best["name"]
    assert fit["epochs_run"] == best["best_epoch"]
    saved = read(run / "models" / f"{fit['name']}.json")
    assert [h["learning_rate"] for h in saved["history"]] == [
        h["learning_rate"] for h in best["history"][:best["best_epoch"]]]
    assert not any(k.startswith("val_") for h in saved["history"] for k in h)
    # The split rows keep their validation figures; the refit adds no candidate.
    assert [m["name"] for m in metrics["models"]] == list(MODELS)
    assert (run / "tensorboard" / fit["name"] / "train").is_dir()
    assert not (run / "tensorboard" / fit["name"] / "validation").exists()


def test_every_candidate_is_scored_with_and_without_tta(leaderboard_run):
    _, run = leaderboard_run
    for m in read(run / "metrics.json")["models"]:
        assert 0 <= m["tta_val_accuracy"] <= 1 and 0 <= m["tta_test_accuracy"] <= 1
        assert 0 <= m["val_accuracy"] <= 1 and 0 <= m["test_accuracy"] <= 1
    report = (run / "report.md").read_text()
    assert "val accuracy (TTA)" in report and "## The submission" in report
    assert "fit again on all 1,437 labelled rows" in report


def test_the_submission_is_the_refit_models_softmax_averaged_over_the_views(leaderboard_run):
    from job.config import load_config
    from job.data.arrays import read_test_csv, read_test_labels
    from job.data import plan
    from job.styles import ModelId
    from job.train.task import make_task
    from job.workers.child import loop_of

    root, run = leaderboard_run
    metrics, config = read(run / "metrics.json"), load_config(run / "config.yaml")
    refit = ModelId.parse(metrics["best"]).refitted()
    task = make_task(refit, config.arch, config.train, config.data.seed, logdir=run)
    style = loop_of(refit.style)
    predict = style.load_predictor(run / "models", task)
    images = read_test_csv(root / "data/sample/test.csv")
    views = [images] + [style.warp_images(images, plan.view_transforms(
        len(images), config.train.augment, config.predict.seed, k)) for k in (1, 2)]
    probabilities = []
    for view in views:
        logits = predict(view).astype(np.float64)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities.append(e / e.sum(axis=1, keepdims=True))
    expected = np.mean(probabilities, axis=0).argmax(axis=1)
    assert submitted(run) == expected.tolist()
    labels = read_test_labels(root / "data/sample/test_labels.csv")
    assert metrics["submission"]["test_accuracy"] == pytest.approx((expected == labels).mean())
    plain = predict(images).argmax(axis=1)
    assert metrics["submission"]["test_accuracy_without_tta"] == pytest.approx(
        (plain == labels).mean())


def test_a_run_interrupted_in_its_refit_resumes_only_the_refit(leaderboard_run, tmp_path):
    root, run = leaderboard_run
    copy = tmp_path / "runs" / run.name
    shutil.copytree(run, copy)
    (tmp_path / "job").symlink_to(REPO / "job")
    shutil.copytree(root / "data", tmp_path / "data")
    best = read(copy / "metrics.json")["best"]
    for path in [*copy.glob(f"models/{best}-full*"), copy / "metrics.json",
                 copy / "submission.csv"]:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    manifest = read(copy / "manifest.json")
    (copy / "manifest.json").write_text(json.dumps({**manifest, "status": "interrupted"}))
    result = run_job("train", "--resume", str(copy), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in MODELS:
        assert f"{name:<10} already trained in this run; reusing it" in result.stdout
    assert f"{best}-full final fit on all 1,437 labelled rows" in result.stdout
    assert submitted(copy) == submitted(run)


@pytest.mark.slow
def test_the_leaderboard_config_runs_end_to_end_on_a_cpu(tmp_path):
    """configs/leaderboard.yaml as shipped (mixed_float16, XLA, strided-conv net, bag,
    refit), cut to 1 epoch and 2 copies so a CPU gets through it in minutes; TTA on too."""
    (tmp_path / "job").symlink_to(REPO / "job")
    result = run_job("train", "--config", str(REPO / "configs/leaderboard.yaml"),
                     "--set", "train.epochs=1", "--set", "runtime.require_gpu=false",
                     "--set", "ensemble.bag_copies=2", "--set", "output.runs_dir=runs",
                     "--set", "data.source=sample", "--set", "predict.tta=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / result.stdout.strip().splitlines()[-1]
    metrics = read(run / "metrics.json")
    assert [m["name"] for m in metrics["models"]] == [
        "cnn-keras", "cnn-keras-bag1", "cnn-keras-bag2", "bag-cnn-keras"]
    assert {m["params"] for m in metrics["models"][:3]} == {326_826}
    made = metrics["submission"]
    assert made["weights"] == "refit" and made["tta"] == 2 and made["fit_rows"] == 1437
    expected = (["cnn-keras-bag1-full", "cnn-keras-bag2-full"]
                if metrics["best"] == "bag-cnn-keras" else [f"{metrics['best']}-full"])
    assert [r["name"] for r in made["refit"]] == expected
    assert len(submitted(run)) == 360
