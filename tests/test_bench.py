"""scripts/bench.py, the tool behind `make bench`: it must run the real job end to end and
write the figures docs/performance.md quotes. A small data size keeps it to minutes (slow-
marked); the arithmetic of its ratios and tables is checked on hand-made figures. Nothing
here asserts on a speed, which this shared machine cannot promise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.project import script_module

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["ffn-tf", "ffn-keras", "ffn-torch", "cnn-tf", "cnn-keras", "cnn-torch"]


@pytest.fixture(scope="module")
def bench():
    """scripts/bench.py as a module."""
    return script_module("bench")


def run_bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    # Relative paths, as a user types them: the memory probe runs in another folder.
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--config",
         os.path.relpath(ROOT / "configs" / "smoke.yaml", tmp_path), "--workdir", "work",
         "--out", "bench.json", *args],
        capture_output=True, text=True, cwd=tmp_path, timeout=600)


@pytest.mark.slow   # ~3 min: 1 start per style, the job run twice on 6 models
def test_bench_runs_the_job_per_round_and_writes_the_tables_and_json(tmp_path):
    result = run_bench(tmp_path, "--rows", "600", "300", "--epochs", "2", "--rounds", "2",
                       "--starts", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads((tmp_path / "bench.json").read_text())

    assert figures["rows"] == [600, 300]   # generated in the Kaggle layout, then parsed
    assert figures["fit_rows"] == 540      # smoke.yaml holds out 10% for validation
    header = (tmp_path / "work" / "data" / "train.csv").open().readline()
    assert header.startswith("label,pixel0,") and header.rstrip().endswith("pixel783")
    ingest = figures["ingest"]
    assert ingest["first_parse_s"] > 0 and ingest["pandas_read_csv_s"] > 0
    assert ingest["parse_vs_pandas"] == ingest["first_parse_s"] / ingest["pandas_read_csv_s"]

    feeds = figures["pipeline"]   # smoke.yaml augments nothing
    assert feeds["augmented"] is False
    assert "tensorflow" in feeds["tf"]["frameworks"] and "torch" not in feeds["tf"]["frameworks"]
    assert "torch" in feeds["torch"]["frameworks"] and feeds["torch"]["images_per_s"] > 0
    assert "each style's feed alone (no augmentation; " in result.stdout

    starts = figures["worker_start"]
    assert list(starts) == ["tf", "keras", "torch"]
    for style, cost in starts.items():
        assert cost["starts"] == 1 and cost["totals_s"] == [cost["total_s"]]
        parts = sum(cost[p] for p in ("interpreter_s", "job_imports_s", "framework_import_s",
                                      "setup_s"))
        assert cost["total_s"] == pytest.approx(parts) and cost["framework_import_s"] > 0
        assert cost["framework"] in cost["frameworks"]
    assert "torch" not in starts["tf"]["frameworks"] + starts["keras"]["frameworks"]

    # --epochs 2 for every model: one `python -m job train` of all six per round.
    assert [run["label"] for run in figures["runs"]] == ["round1-2ep", "round2-2ep"]
    assert [row["model"] for row in figures["models"]] == MODELS
    for row in figures["models"]:
        assert len(row["round_seconds"]) == 2 and len(row["epoch_seconds"]) == 2  # 1 per round
        assert row["epochs"] == 2 and row["seconds_per_epoch"] > 0
        assert len(row["first_epoch_s"]) == 2 and 0 <= row["val_accuracy"] <= 1
        assert row["peak_rss_mb"] > 100   # a framework alone is more
    for run in figures["runs"]:   # every worker its own process, none the parent
        pids = {w["process"]["pid"] for w in run["workers"].values()}
        assert len(pids) == 6 and run["parent"]["pid"] not in pids
    by_name = {row["model"]: row for row in figures["models"]}
    assert "torch" not in by_name["cnn-tf"]["frameworks"] + by_name["cnn-keras"]["frameworks"]
    assert "torch" in by_name["cnn-torch"]["frameworks"]
    for arch in ("ffn", "cnn"):
        for style, label in (("keras", "Keras"), ("torch", "Torch")):
            ratio = figures[f"{style}_over_tf"][arch]
            assert ratio["median"] == (by_name[f"{arch}-{style}"]["seconds_per_epoch"]
                                       / by_name[f"{arch}-tf"]["seconds_per_epoch"])
            assert ratio["rounds_min"] <= ratio["rounds_max"]
            assert f"  {label}/TF {ratio['median']:.3f} (" in result.stdout

    parent = figures["memory"]["parent"]   # the job's parent loads no framework
    assert parent["frameworks"] == [] and len(parent["runs_peak_rss_mb"]) == 2
    assert 0 < parent["peak_anonymous_mb"] < parent["peak_rss_mb"]
    assert parent["peak_rss_mb"] < min(row["peak_rss_mb"] for row in figures["models"])
    assert "parent process (python -m job train; loaded no framework): peak RSS " in result.stdout


def test_bench_refuses_too_few_epochs(tmp_path):
    """The first epoch traces and compiles, so one epoch leaves nothing to time."""
    result = run_bench(tmp_path, "--epochs", "1")
    assert result.returncode == 2
    assert "--epochs must be at least 2" in result.stderr
    assert not (tmp_path / "work").exists()   # refused before any data is generated
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


def test_models_with_the_same_epochs_share_a_job_run_in_the_order_they_come(bench):
    models = ("ffn-tf", "cnn-tf", "ffn-torch", "lstm-keras", "cnn-torch")
    assert bench.epoch_groups(models, None) == [   # EPOCHS: ffn 8, cnn and lstm 3
        (8, ["ffn-tf", "ffn-torch"]), (3, ["cnn-tf", "lstm-keras", "cnn-torch"])]
    assert bench.epoch_groups(models, 2) == [(2, list(models))]


def worker(seconds: list[float], accuracy: float, peak: float | None = None,
           frameworks: tuple[str, ...] = ()) -> dict:
    return {"epoch_seconds": seconds, "val_accuracy": accuracy, "val_loss": 1 - accuracy,
            "process": {"pid": 7, "frameworks": list(frameworks)},
            **({"peak_rss_mb": peak} if peak is not None else {})}


def test_a_model_row_gathers_its_rounds_epochs_after_the_first(bench):
    runs = [{"workers": {"ffn-tf": worker([9.0, 1.0, 2.0, 6.0], 0.9, 800.0, ("tensorflow",)),
                         "ffn-torch": worker([3.0, 4.0, 4.0, 5.0], 0.8)}},
            {"workers": {"ffn-tf": worker([8.0, 3.0, 3.0, 4.0], 0.9, 900.0, ("keras",)),
                         "ffn-torch": worker([2.0, 1.0, 2.0, 3.0], 0.8)}}]
    rows = bench.model_rows(runs, ("ffn-tf", "ffn-torch"), fit_rows=120)
    assert rows[0] == {
        "model": "ffn-tf", "epochs": 4, "val_accuracy": 0.9, "val_loss": pytest.approx(0.1),
        "epoch_seconds": [1.0, 2.0, 6.0, 3.0, 3.0, 4.0],   # the first epochs left out
        "round_seconds": [2.0, 3.0],                      # each round's median
        "first_epoch_s": [9.0, 8.0],
        "seconds_per_epoch": 3.0,                         # median of 1 2 3 3 4 6
        "images_per_s": 40.0,                             # 120 / 3
        "peak_rss_mb": 900.0,                             # the higher round's
        "frameworks": ["keras", "tensorflow"]}            # what any round loaded
    torch = rows[1]   # medians: round 1 of 4 4 5 = 4, round 2 of 1 2 3 = 2; all 1 2 3 4 4 5
    assert torch["round_seconds"] == [4.0, 2.0] and torch["seconds_per_epoch"] == 3.5
    assert torch["peak_rss_mb"] is None and torch["frameworks"] == []   # no probe


def test_a_worker_start_is_split_at_the_probes_marks_and_reported_as_medians(bench):
    # Spawned at t=100: interpreter up at 100.05, the job imported at 100.5, the framework
    # at 104.5, set up at 104.7.
    sample = bench.start_sample(100.0, {"main": 100.05, "job_imported": 100.5,
                                        "framework_imported": 104.5, "set_up": 104.7,
                                        "frameworks": ["tensorflow"]})
    assert sample.pop("frameworks") == ["tensorflow"]
    assert sample == pytest.approx({"interpreter_s": 0.05, "job_imports_s": 0.45,
                                    "framework_import_s": 4.0, "setup_s": 0.2, "total_s": 4.7})

    def start(total: float, framework: float) -> dict:
        return {"interpreter_s": 0.1, "job_imports_s": 0.5, "framework_import_s": framework,
                "setup_s": total - 0.6 - framework, "total_s": total,
                "frameworks": ["torch"]}

    costs = bench.start_costs({"torch": [start(9.0, 8.0), start(3.0, 2.0), start(4.0, 2.5)]})
    torch = dict(costs["torch"])
    assert (torch.pop("framework"), torch.pop("starts"), torch.pop("frameworks"),
            torch.pop("totals_s")) == ("torch", 3, ["torch"], [9.0, 3.0, 4.0])
    assert torch == pytest.approx({
        "interpreter_s": 0.1, "job_imports_s": 0.5,
        "framework_import_s": 2.5,   # median of 8 2 2.5
        "setup_s": 0.4,              # median of 0.4 0.4 0.9
        "total_s": 4.0})             # median of 9 3 4
    lines = bench.start_table(costs)
    assert lines[0].split() == ["style", "framework", "python", "job", "import", "setup",
                                "total", "loaded"]
    assert lines[1].split() == ["torch", "torch", "0.10", "0.50", "2.50", "0.40", "4.00",
                                "torch"]


def test_the_parents_memory_is_the_highest_of_its_runs_and_the_workers_table_each(bench):
    runs = [{"parent": {"pid": 1, "frameworks": [], "peak_rss_mb": 210.0,
                        "peak_anonymous_mb": 150.0}},
            {"parent": {"pid": 2, "frameworks": [], "peak_rss_mb": 230.0,
                        "peak_anonymous_mb": 140.0}},
            {"parent": {"pid": 3, "frameworks": []}}]   # not probed
    assert bench.parent_memory(runs) == {"peak_rss_mb": 230.0, "peak_anonymous_mb": 150.0,
                                         "runs_peak_rss_mb": [210.0, 230.0, None],
                                         "frameworks": []}
    assert bench.memory_of({"hwm_kb": 2048, "peak_anon_kb": 1024}) == {
        "peak_rss_mb": 2.0, "peak_anonymous_mb": 1.0}
    assert bench.memory_of({"hwm_kb": 3072, "peak_anon_kb": None}) == {"peak_rss_mb": 3.0}
    assert bench.memory_of(None) == {}

    lines = bench.worker_table({"models": [
        {"model": "cnn-torch", "first_epoch_s": [12.345, 11.0], "peak_rss_mb": 1024.4,
         "frameworks": ["torch"]},
        {"model": "cnn-tf", "first_epoch_s": [20.0], "peak_rss_mb": None, "frameworks": []}]})
    assert [line.split() for line in lines[1:]] == [
        ["cnn-torch", "12.35", "11.00", "1024", "torch"], ["cnn-tf", "20.00", "-", "-"]]


def test_the_memory_probe_writes_each_process_peak_and_samples_the_jobs_parent_alone(
        bench, tmp_path):
    """bench_probe/sitecustomize.py, in a process the bench starts (as it starts the job's
    parent) and in one that process starts (as the parent starts a worker)."""
    grandchild = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'pass'])"
    peaks = tmp_path / "peaks"
    subprocess.run([sys.executable, "-c", grandchild], check=True,
                   env=bench.job_env(peaks))
    records = bench.read_peaks(peaks)
    assert len(records) == 2
    child = next(r for r in records.values() if r["ppid"] == os.getpid())
    other = next(r for r in records.values() if r is not child)
    assert other["ppid"] == child["pid"]
    assert child["hwm_kb"] > 0 and 0 < child["peak_anon_kb"] <= child["hwm_kb"]
    assert other["hwm_kb"] > 0 and other["peak_anon_kb"] is None   # a worker: not sampled
    assert child["frameworks"] == [] and child["argv"] == ["-c"]

    quiet = tmp_path / "quiet"   # without the bench's variables the probe does nothing
    env = {k: v for k, v in bench.job_env(quiet).items() if not k.startswith("BENCH_")}
    subprocess.run([sys.executable, "-c", "pass"], check=True, env=env)
    assert not quiet.exists()


def test_the_share_of_the_machine_other_processes_took_during_a_run(bench):
    # 150 CPU-seconds busy in all, 90 of them the job's, over 50 s on 2 CPUs: 60 / 100.
    assert bench.others_share(150.0, 90.0, 50.0, 2) == pytest.approx(0.6)
    assert bench.others_share(80.0, 90.0, 50.0, 2) == 0.0   # clock ticks vs rusage rounding
    assert bench.others_share(None, 90.0, 50.0, 2) is None  # no /proc/stat
    assert bench.machine_busy_s() > 0 and bench.children_cpu_s() >= 0
