"""Ensembles and bagging: averaged softmax, honest validation, candidates for best."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scipy.special import softmax
from sklearn.metrics import log_loss

from job.config import ConfigError, load_config
from job.candidates import ensemble
from job.train import models
from job.train.results import ModelRow
from job.train.scoring import score
from job.train.task import Split

REPO = Path(__file__).resolve().parent.parent


def test_averaging_takes_the_mean_probability():
    a = np.log(np.array([[0.9, 0.1], [0.2, 0.8]]))
    b = np.log(np.array([[0.5, 0.5], [0.6, 0.4]]))
    mixed = ensemble.averaging([{"val": a, "test": b}, {"val": b, "test": b}])
    np.testing.assert_allclose(np.exp(mixed["val"]), [[0.7, 0.3], [0.4, 0.6]], rtol=1e-6)
    np.testing.assert_allclose(np.exp(mixed["test"]), np.exp(b), rtol=1e-6)   # set by set


def test_an_ensemble_is_scored_on_its_mean_probabilities():
    # Members' probabilities on three images; the mean is [.7 .3], [.4 .6], [.4 .6], so
    # with labels 0, 1, 0 it is right twice (accuracy 2/3) and its loss is
    # -(ln .7 + ln .6 + ln .4) / 3 = (0.356675 + 0.510826 + 0.916291) / 3 = 0.594597.
    a = np.log(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]))
    b = np.log(np.array([[0.5, 0.5], [0.6, 0.4], [0.2, 0.8]]))
    scores = score(ensemble.averaging([{"val": a}, {"val": b}])["val"], np.array([0, 1, 0]))
    assert scores["val_accuracy"] == pytest.approx(2 / 3)
    assert scores["val_loss"] == pytest.approx(0.594597, abs=1e-6)


def test_an_ensemble_row_adds_up_its_members():
    members = [ModelRow("a", "ffn", "tf", 100, 3, 2, 0.4, 0.8, 1.25, 0.4),
               ModelRow("b", "cnn", "tf", 50, 4, 4, 0.6, 0.7, 2.5, 0.6)]
    row = ensemble.ensemble_row("ensemble", members, {"val_loss": 0.5, "val_accuracy": 0.75})
    assert (row.params, row.epochs_run, row.train_seconds) == (150, 7, 3.75)
    assert row.members == ["a", "b"] and row.val_accuracy == 0.75
    # As metrics.json lists it: an average has no epoch of its own, and no unknown extras.
    assert row.to_json() == {
        "name": "ensemble", "arch": "ensemble", "style": "ensemble", "params": 150,
        "epochs_run": 7, "best_epoch": None, "val_loss": 0.5, "val_accuracy": 0.75,
        "train_seconds": 3.75, "seconds_per_epoch": None, "history": [],
        "members": ["a", "b"]}


def test_a_row_from_another_version_of_the_job_is_refused():
    with pytest.raises(ValueError, match=r"m: unknown result fields \['val_acc'\]"):
        ModelRow.from_json({"name": "m", "val_acc": 0.5})


def test_bag_splits_differ_and_never_touch_the_validation_rows(digits):
    images, labels = digits
    outer = Split(images[:1500], labels[:1500], images[1500:], labels[1500:])
    splits = [models.bag_split(outer, copy, 0.1, 42) for copy in (1, 2)]
    for own in splits:
        assert len(own.train_x) + len(own.val_x) == 1500
        seen = {r.tobytes() for r in np.concatenate([own.train_x, own.val_x])}
        assert seen == {r.tobytes() for r in outer.train_x}      # only the training rows
        assert set(np.unique(own.val_y)) == set(range(10))         # stratified
    assert not np.array_equal(splits[0].val_x, splits[1].val_x)


@pytest.mark.parametrize("overrides, message", [
    (["ensemble.members=[ffn-tf, lstm-tf]"], "ensemble.members: lstm-tf not in `models`"),
    (["ensemble.members=[ffn-tf]"], "ensemble.members: expected 2 or more models"),
    (["ensemble.bag_model=cnn-tf"], "set both ensemble.bag_model and ensemble.bag_copies"),
    (["ensemble.bag_model=cnn-tf", "ensemble.bag_copies=1"], "expected 0 or at least 2 copies"),
])
def test_bad_ensemble_settings(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(REPO / "configs/smoke.yaml", overrides)


def test_ensembles_are_candidates_judged_on_the_outer_validation_split(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE")}
    env.update(PYTHONPATH=str(REPO), HOME=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "job", "train", "--config", str(REPO / "configs/smoke.yaml"),
         "--set", "models=[ffn-tf, ffn-keras]", "--set", "output.runs_dir=runs",
         "--set", "ensemble.members=[ffn-tf, ffn-keras]",
         "--set", "ensemble.bag_model=ffn-tf", "--set", "ensemble.bag_copies=2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    run = tmp_path / result.stdout.strip().splitlines()[-1]
    metrics = json.loads((run / "metrics.json").read_text())
    rows = {m["name"]: m for m in metrics["models"]}
    assert set(rows) == {"ffn-tf", "ffn-keras", "ffn-tf-bag1", "ffn-tf-bag2", "ensemble",
                         "bag-ffn-tf"}
    assert rows["bag-ffn-tf"]["members"] == ["ffn-tf-bag1", "ffn-tf-bag2"]
    saved = np.load(run / "validation.npz")
    labels = saved["val_labels"]
    # Rescored from the saved member logits with scipy's softmax and scikit-learn's log loss.
    for name, members in (("ensemble", ["ffn-tf", "ffn-keras"]),
                          ("bag-ffn-tf", ["ffn-tf-bag1", "ffn-tf-bag2"])):
        mean = np.mean([softmax(saved[f"logits/{m}"].astype(np.float64), axis=1)
                        for m in members], axis=0)
        assert rows[name]["val_accuracy"] == pytest.approx(float((mean.argmax(1) == labels).mean()))
        assert rows[name]["val_loss"] == pytest.approx(
            log_loss(labels, mean, labels=list(range(10))), rel=1e-4)
    assert rows[metrics["best"]]["val_accuracy"] == max(r["val_accuracy"] for r in rows.values())
    assert "`bag-ffn-tf` averages" in (run / "report.md").read_text()
