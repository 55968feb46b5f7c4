"""scripts/bench.py, the tool behind `make bench`: it must run end to end and write the
figures docs/performance.md quotes. A small data size keeps it to seconds;
nothing here asserts on a speed, which this shared machine cannot promise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["ffn-tf", "ffn-keras", "ffn-torch", "cnn-tf", "cnn-keras", "cnn-torch"]


@pytest.fixture(scope="module")
def bench():
    """scripts/bench.py as a module (its imports of the job are inside its functions)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import bench
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return bench


def run_bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    # Relative paths, as a user types them: the memory probe runs in another folder.
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--config",
         os.path.relpath(ROOT / "configs" / "smoke.yaml", tmp_path), "--workdir", "work",
         "--out", "bench.json", *args],
        capture_output=True, text=True, cwd=tmp_path, timeout=600)


@pytest.mark.slow   # ~90 s: 6 models x 2 rounds; `make bench` is a tool, not the job
def test_bench_measures_every_model_in_rounds_and_writes_the_table_and_json(tmp_path):
    result = run_bench(tmp_path, "--rows", "600", "300", "--epochs", "2", "--rounds", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads((tmp_path / "bench.json").read_text())

    assert figures["rows"] == [600, 300]   # generated in the Kaggle layout, then parsed
    header = (tmp_path / "work" / "data" / "train.csv").open().readline()
    assert header.startswith("label,pixel0,") and header.rstrip().endswith("pixel783")
    ingest = figures["ingest"]
    assert ingest["first_parse_s"] > 0 and ingest["pandas_read_csv_s"] > 0
    assert ingest["parse_vs_pandas"] == ingest["first_parse_s"] / ingest["pandas_read_csv_s"]

    pipeline = figures["pipeline"]   # smoke.yaml augments nothing
    assert pipeline["augmented"] is False and pipeline["images_per_s"] > 0
    assert "input pipeline alone (no augmentation): " in result.stdout

    assert [row["model"] for row in figures["models"]] == MODELS
    for row in figures["models"]:
        assert len(row["round_seconds"]) == 2 and len(row["epoch_seconds"]) == 2  # 1 per round
        assert row["epochs"] == 2 and row["seconds_per_epoch"] > 0
        assert 0 <= row["val_accuracy"] <= 1
    by_name = {row["model"]: row for row in figures["models"]}
    for arch in ("ffn", "cnn"):
        for style, label in (("keras", "Keras"), ("torch", "Torch")):
            ratio = figures[f"{style}_over_tf"][arch]
            assert ratio["median"] == (by_name[f"{arch}-{style}"]["seconds_per_epoch"]
                                       / by_name[f"{arch}-tf"]["seconds_per_epoch"])
            assert ratio["rounds_min"] <= ratio["rounds_max"]
            assert f"  {label}/TF {ratio['median']:.3f} (" in result.stdout

    memory = figures["memory"]
    assert memory["exit_code"] == 0 and memory["peak_rss_mb"] > 100   # TF alone is more
    assert 0 < memory["peak_anonymous_mb"] < memory["peak_rss_mb"]


def test_bench_refuses_too_few_epochs(tmp_path):
    """The first epoch traces and compiles, so one epoch leaves nothing to time."""
    result = run_bench(tmp_path, "--epochs", "1")
    assert result.returncode == 2
    assert "--epochs must be at least 2" in result.stderr
    assert not (tmp_path / "bench.json").exists()


def bench_row(model: str, round_seconds: list[float], seconds_per_epoch: float) -> dict:
    return {"model": model, "round_seconds": round_seconds,
            "seconds_per_epoch": seconds_per_epoch}


ROWS = [bench_row("ffn-tf", [1.0, 2.0], 2.0), bench_row("ffn-keras", [2.0, 3.0], 3.0),
        bench_row("ffn-torch", [0.5, 1.5], 1.0), bench_row("cnn-tf", [4.0, 4.0], 4.0),
        bench_row("cnn-torch", [2.0, 6.0], 5.0), bench_row("lstm-keras", [1.0, 1.0], 1.0)]


def test_every_style_is_divided_by_the_tf_loop_of_its_family(bench):
    ratios = bench.over_tf(ROWS)
    assert set(ratios) == {"keras_over_tf", "torch_over_tf"}
    # keras: 3 / 2 = 1.5; rounds 2/1 = 2 and 3/2 = 1.5. No cnn-keras, no lstm-tf.
    assert ratios["keras_over_tf"] == {"ffn": {"median": 1.5, "rounds_min": 1.5,
                                               "rounds_max": 2.0}}
    # torch: ffn 1 / 2 = 0.5, rounds 0.5 and 0.75; cnn 5 / 4 = 1.25, rounds 0.5 and 1.5.
    assert ratios["torch_over_tf"] == {
        "ffn": {"median": 0.5, "rounds_min": 0.5, "rounds_max": 0.75},
        "cnn": {"median": 1.25, "rounds_min": 0.5, "rounds_max": 1.5}}
    assert bench.ratios(ROWS) == ratios["keras_over_tf"]   # the old call still means Keras


def test_the_table_lists_each_family_in_style_order_with_its_ratio_to_tf(bench):
    scored = {"ffn-tf": (0.97, 0.1), "ffn-keras": (0.965, 0.12), "ffn-torch": (0.9712, 0.09),
              "cnn-tf": (0.99, 0.03), "cnn-torch": (0.9875, 0.04), "lstm-keras": (0.9, 0.3)}
    models = [{**r, "epochs": 3, "val_accuracy": scored[r["model"]][0],
               "val_loss": scored[r["model"]][1], "images_per_s": 3600 / r["seconds_per_epoch"]}
              for r in reversed(ROWS)]   # in any order: the table sorts them
    lines = bench.style_table({"models": models, **bench.over_tf(ROWS)})
    assert [line.split() for line in lines[1:]] == [
        # images/s: 3600 / s per epoch; the ratios as in the test above
        ["ffn", "tf", "0.9700", "0.1000", "3", "2.00", "1800", "-"],
        ["ffn", "keras", "0.9650", "0.1200", "3", "3.00", "1200", "Keras/TF", "1.500",
         "(1.500-2.000)"],
        ["ffn", "torch", "0.9712", "0.0900", "3", "1.00", "3600", "Torch/TF", "0.500",
         "(0.500-0.750)"],
        [],
        ["cnn", "tf", "0.9900", "0.0300", "3", "4.00", "900", "-"],
        ["cnn", "torch", "0.9875", "0.0400", "3", "5.00", "720", "Torch/TF", "1.250",
         "(0.500-1.500)"],
        [],
        ["lstm", "keras", "0.9000", "0.3000", "3", "1.00", "3600", "-"]]
    assert lines[0].split()[:7] == ["family", "style", "val_acc", "val_loss", "epochs",
                                    "s/epoch", "images/s"]
