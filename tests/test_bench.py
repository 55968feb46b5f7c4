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
MODELS = ["ffn-tf", "ffn-keras", "cnn-tf", "cnn-keras"]


def run_bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    # Relative paths, as a user types them: the memory probe runs in another folder.
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--config",
         os.path.relpath(ROOT / "configs" / "smoke.yaml", tmp_path), "--workdir", "work",
         "--out", "bench.json", *args],
        capture_output=True, text=True, cwd=tmp_path, timeout=600)


@pytest.mark.slow   # ~45 s: 4 models x 2 sizes x 2 rounds; `make bench` is a tool, not the job
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
        ratio = figures["keras_over_tf"][arch]
        assert ratio["median"] == (by_name[f"{arch}-keras"]["seconds_per_epoch"]
                                   / by_name[f"{arch}-tf"]["seconds_per_epoch"])
        assert ratio["rounds_min"] <= ratio["rounds_max"]
        assert f"Keras/TF seconds per epoch, {arch}: {ratio['median']:.3f}" in result.stdout

    memory = figures["memory"]
    assert memory["exit_code"] == 0 and memory["peak_rss_mb"] > 100   # TF alone is more
    assert 0 < memory["peak_anonymous_mb"] < memory["peak_rss_mb"]


def test_bench_refuses_too_few_epochs(tmp_path):
    """The first epoch traces and compiles, so one epoch leaves nothing to time."""
    result = run_bench(tmp_path, "--epochs", "1")
    assert result.returncode == 2
    assert "--epochs must be at least 2" in result.stderr
    assert not (tmp_path / "bench.json").exists()
