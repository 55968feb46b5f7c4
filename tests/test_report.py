"""report.md and its pictures, made from a fake finished run folder by `python -m job report`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from job.outputs import report
from job.outputs.folder import Run, read_run

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
N, WRONG = 60, 7


def history(epochs: int, start: float) -> list[dict]:
    return [{"epoch": e, "loss": start / e, "accuracy": 1 - 0.5 / e, "val_loss": start / e + 0.1,
             "val_accuracy": 1 - 0.6 / e, "seconds": 0.1, "learning_rate": 1e-3}
            for e in range(1, epochs + 1)]


def model_row(name: str, epochs: int, best_epoch: int) -> dict:
    arch, style = name.split("-")
    return {"name": name, "arch": arch, "style": style, "params": 1234, "epochs_run": epochs,
            "best_epoch": best_epoch, "val_loss": 0.1, "val_accuracy": 1 - WRONG / N,
            "train_seconds": 1.0, "seconds_per_epoch": 0.1,
            "history": history(epochs, 2.0 if style == "tf" else 2.5)}


def make_run(folder: Path, digits, with_validation: bool = True) -> Path:
    """A finished run: manifest, metrics with histories, and (optionally) validation.npz
    whose best-model logits get exactly the examples in `wrong_indices()` wrong."""
    folder.mkdir()
    metrics = {"best": "cnn-tf", "models": [model_row("cnn-torch", 4, 2),
                                            model_row("cnn-tf", 6, 4),
                                            model_row("cnn-keras", 5, 3)]}
    manifest = {"status": "complete",
                "data": {"source": "sample", "dir": "data/sample", "fit_rows": 540}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "manifest.json").write_text(json.dumps(manifest))
    if with_validation:
        images, labels = digits[0][:N], digits[1][:N]
        logits = np.eye(10)[labels] * 5
        for k, i in enumerate(wrong_indices()):
            logits[i, (labels[i] + 1) % 10] = 6 + k   # a wrong class wins, by margin 1 + k
        np.savez_compressed(folder / "validation.npz", val_images=images, val_labels=labels,
                            **{"logits/cnn-tf": logits, "logits/cnn-keras": np.eye(10)[labels],
                               "logits/cnn-torch": np.eye(10)[labels]})
    return folder


def wrong_indices() -> list[int]:
    return [3, 11, 17, 25, 40, 52, 59][:WRONG]


def job(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "job", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def made(tmp_path_factory, digits) -> tuple[Path, subprocess.CompletedProcess]:
    """One fake run, its report made by the CLI (TensorFlow loads once for the module)."""
    run = make_run(tmp_path_factory.mktemp("runs") / "20260101T000000Z-fake", digits)
    return run, job("report", str(run))


def test_the_report_command_exits_0_and_prints_the_report(made):
    run, result = made
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(run / "report.md")


def test_report_links_to_pngs_that_exist_and_are_valid(made):
    run, _ = made
    text = (run / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links == ["report/learning_curves.png", "report/confusion_matrix.png",
                     "report/misclassified.png"]
    for link in links:
        png = (run / link).read_bytes()
        assert png.startswith(PNG_SIGNATURE) and len(png) > 1000
    rows = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| cnn-")]
    assert rows == ["| cnn-tf **(best)**", "| cnn-keras", "| cnn-torch"]   # job.styles' order
    assert "| cnn-tf **(best)** | cnn | tf | 1,234 | 6 | 4 |" in text
    # Every model_row takes 0.1 s per epoch: 540 fit rows / 0.1 s = 5,400 images/s.
    assert "## The styles side by side" in text
    assert "| cnn | keras | 0.10 | 5,400 | 5 | 0.8833 | Keras/TF 1.00× |" in text
    assert "| cnn | torch | 0.10 | 5,400 | 4 | 0.8833 | Torch/TF 1.00× |" in text


def test_tensorboard_holds_the_same_images(made):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    run, _ = made
    events = EventAccumulator(str(run / "tensorboard" / "report"),
                              size_guidance={"tensors": 0}).Reload()
    tags = set(events.Tags()["tensors"])
    assert tags == {"learning_curves", "confusion_matrix", "misclassified"}
    stored = events.Tensors("confusion_matrix")[0].tensor_proto.string_val
    assert stored[2].startswith(PNG_SIGNATURE)   # [width, height, png]


def test_a_bad_run_folder_is_one_line_and_exit_2(tmp_path):
    result = job("report", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "no manifest.json" in result.stderr


def test_a_run_without_validation_npz_is_reported_without_its_pictures(tmp_path, digits,
                                                                       monkeypatch):
    from job.outputs import plots
    written = {}
    monkeypatch.setattr(plots, "write_tensorboard_images",
                        lambda logdir, pictures: written.update(pictures))
    run = Run(make_run(tmp_path / "old", digits, with_validation=False))
    record = read_run(run.path)
    report.write_report(run, record.manifest, record.finished())
    text = (run.path / "report.md").read_text()
    assert "no validation.npz" in text and "confusion_matrix.png" not in text
    assert set(written) == {"learning_curves"}
    assert sorted(p.name for p in (run.path / "report").iterdir()) == ["learning_curves.png"]


def test_confusion_counts_sum_to_n_and_put_mistakes_off_the_diagonal():
    labels = np.array([0, 1, 2, 2, 9, 9, 9], np.uint8)
    predicted = np.array([0, 1, 2, 3, 9, 9, 4])
    counts = report.confusion_counts(labels, predicted)
    assert counts.shape == (10, 10) and counts.sum() == len(labels)
    assert np.trace(counts) == 5 and counts[2, 3] == 1 and counts[9, 4] == 1


def test_misclassified_picks_exactly_the_wrong_ones_most_confident_first(digits):
    labels = digits[1][:N]
    logits = np.eye(10)[labels] * 5
    for k, i in enumerate(wrong_indices()):
        logits[i, (labels[i] + 1) % 10] = 6 + k
    chosen = report.misclassified(labels, logits)
    assert list(chosen) == wrong_indices()[::-1]
    assert list(report.misclassified(labels, logits, limit=3)) == wrong_indices()[::-1][:3]
    assert len(report.misclassified(labels, np.eye(10)[labels])) == 0


def speed_row(name: str, seconds: float, epochs: int, accuracy: float) -> dict:
    arch, style = name.split("-")
    return {"name": name, "arch": arch, "style": style, "seconds_per_epoch": seconds,
            "epochs_run": epochs, "val_accuracy": accuracy}


def test_the_speed_section_puts_every_style_of_a_family_beside_the_tf_loop():
    models = [speed_row("ffn-torch", 0.05, 7, 0.95), speed_row("ffn-keras", 0.20, 5, 0.9),
              speed_row("ffn-tf", 0.10, 6, 0.925), speed_row("cnn-tf", 0.5, 3, 0.99),
              speed_row("lstm-keras", 0.40, 4, 0.8), speed_row("lstm-torch", 0.80, 4, 0.85)]
    text = report.format_speed(models, fit_rows=540)
    rows = [line for line in text.splitlines() if line.startswith("| ffn") or
            line.startswith("| cnn") or line.startswith("| lstm")]
    # images/s = 540 / s per epoch: 5,400, 2,700, 10,800; ratios 0.20/0.10 and 0.05/0.10.
    assert rows == ["| ffn | tf | 0.10 | 5,400 | 6 | 0.9250 | - |",
                    "| ffn | keras | 0.20 | 2,700 | 5 | 0.9000 | Keras/TF 2.00× |",
                    "| ffn | torch | 0.05 | 10,800 | 7 | 0.9500 | Torch/TF 0.50× |",
                    # no lstm-tf to divide by; cnn, one style alone, is not compared
                    "| lstm | keras | 0.40 | 1,350 | 4 | 0.8000 | - |",
                    "| lstm | torch | 0.80 | 675 | 4 | 0.8500 | - |"]
    assert "images/s is the 540 fit rows over s/epoch" in text


def test_without_the_fit_rows_images_per_second_is_left_out_and_said_why():
    text = report.format_speed([speed_row("cnn-tf", 0.5, 3, 0.99),
                                speed_row("cnn-torch", 1.5, 3, 0.98)])
    assert "| cnn | torch | 1.50 | - | 3 | 0.9800 | Torch/TF 3.00× |" in text
    assert "manifest records no fit rows" in text


def test_one_style_per_family_has_nothing_to_compare():
    models = [speed_row("ffn-torch", 0.05, 7, 0.95), speed_row("cnn-keras", 0.5, 3, 0.99)]
    assert report.format_speed(models, 540) == "- (train two styles of a family to compare them)"


def test_every_style_has_its_own_dash_and_the_legend_names_the_ones_drawn():
    from job.outputs import plots
    from job.styles import STYLES
    assert plots.STYLE_LINE == {"tf": "-", "keras": "--", "torch": "-."}
    assert set(STYLES) <= set(plots.STYLE_LINE)
    assert plots.legend_title([{"style": "torch"}, {"style": "tf"}, {"style": "tf"}]) == (
        "solid: TF\ndash-dot: Torch")
    assert plots.legend_title([{"style": "keras"}]) == "dashed: Keras"


def table_row(name: str, **extra) -> dict:
    return {"name": name, "arch": "cnn", "style": "keras", "params": 10, "epochs_run": 3,
            "best_epoch": 2, "val_accuracy": 0.99, "val_loss": 0.05,
            "seconds_per_epoch": 1.0, "train_seconds": 3.0, **extra}


def test_tta_columns_appear_only_when_every_row_has_them():
    with_tta = report.format_table([table_row("a", tta_val_accuracy=0.985),
                                    table_row("b", tta_val_accuracy=0.995)], "b")
    assert "| val accuracy (TTA) |" in with_tta.splitlines()[0]
    assert with_tta.splitlines()[3].endswith("| 0.9950 |")
    without = report.format_table([table_row("a", tta_val_accuracy=0.985), table_row("b")], "b")
    assert "TTA" not in without


def test_the_submission_section_says_which_weights_and_how_they_predicted():
    made = {"model": "bag-cnn-keras", "weights": "refit", "tta": 4, "fit_rows": 42000,
            "refit": [{"name": "cnn-keras-bag1-full", "epochs_run": 31, "train_seconds": 40.0,
                       "accuracy": 0.9981}],
            "test_accuracy": 0.9972, "test_accuracy_without_tta": 0.9944}
    text = report.format_submission({"best": "bag-cnn-keras", "submission": made})
    assert "bag-cnn-keras fit again on all 42,000 labelled rows" in text
    assert "`cnn-keras-bag1-full`: 31 epochs" in text
    assert "4 distorted copies" in text
    assert "**0.9972** (without TTA: 0.9944)" in text
    # A run made before these options existed: the best's own weights, no TTA.
    older = report.format_submission({"best": "cnn-tf", "models": []})
    assert "cnn-tf's from its split run" in older and "off (predict.tta: 0)" in older
