"""scripts/gpu_acceptance.sh on this GPU-less machine: it runs end to end, the doctor says
there is no GPU, and the table and JSON hold CPU numbers for every model and variant."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.project import clean_env

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["ffn-tf", "ffn-keras", "cnn-tf", "cnn-keras"]
# configs/gpu.yaml trains with mixed_float16 and XLA: on, each off, both off.
VARIANTS = [("as configured", "mixed_float16", True), ("XLA off", "mixed_float16", False),
            ("mixed precision off", "float32", True), ("both off", "float32", False)]
TINY = ["--rows", "300", "150", "--tta-rows", "300", "150", "--set", "arch.cnn.filters=[4]", "--set", "arch.cnn.dense=[8]",
        "--set", "arch.ffn.hidden=[16]", "--set", "train.batch_size=64"]


def acceptance(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([ROOT / "scripts" / "gpu_acceptance.sh", *args],
                          env=clean_env(PYTHON=sys.executable, HOME=str(tmp_path),
                                        PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin",
                                        **env),
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)


@pytest.mark.slow   # ~100 s: 4 models x 3 variants; its parts are tested on their own
def test_without_docker_it_says_no_gpu_and_still_prints_the_cpu_table(tmp_path):
    result = acceptance(tmp_path, "--no-docker", "--out", "out/acceptance.json", *TINY)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "PROBLEM  GPU: none visible to TensorFlow; NVIDIA driver: not found" in out
    assert "GPU acceptance on none (CPU only: these are CPU numbers)" in out
    assert "doctor: FAILED (exit 1)" in out
    # The table's rows: after its header, before the ratios (the job's own lines, echoed
    # as each variant trains, come before it).
    lines = out.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["model", "variant"])
    table = [ln.split() for ln in lines[start + 1:] if ln.split()[:1]
             and ln.split()[0] in MODELS]
    assert [row[0] for row in table] == MODELS * len(VARIANTS)
    for arch in ("ffn", "cnn"):
        for label, _, _ in VARIANTS:
            assert f"Keras/TF seconds per epoch, {arch}, {label}: " in out
    assert "the doctor found problems" in result.stderr

    figures = json.loads((tmp_path / "out" / "acceptance.json").read_text())
    assert figures["machine"]["gpus"] == [] and figures["rows"] == [300, 150]
    assert [(r["model"], r["variant"], r["mixed_precision"], r["jit_compile"])
            for r in figures["models"]] == [(m, *v) for v in VARIANTS for m in MODELS]
    assert all(r["seconds_per_epoch"] > 0 and r["epochs"] == 2 for r in figures["models"])
    assert figures["doctor"]["exit_code"] == 1
    assert any(ln.startswith("PROBLEM  GPU:") for ln in figures["doctor"]["lines"])
    assert (tmp_path / "out" / "acceptance.doctor.txt").is_file()
    assert figures["on_paper"] == {"A100": [0.2, 0.4], "T4": [0.5, 1.0]}
    # configs/fast.yaml's time to accuracy beside the keras-io example's, on 300 + 150 rows.
    timed = figures["time_to_accuracy"]
    assert [r["recipe"] for r in timed["results"]] == ["keras-io", "fast", "fast-torch"]
    assert all(r["seconds"] > 0 and 0 <= r["accuracy"] <= 1 and not r["error"]
               for r in timed["results"])
    assert "time vs keras-io" in out


def test_with_docker_missing_it_says_how_to_run_without(tmp_path):
    # This machine may have a docker client without an engine: name one that is not there.
    result = acceptance(tmp_path, "--out", "a.json", DOCKER="no-such-docker")
    assert result.returncode == 2
    assert result.stderr == ("gpu_acceptance.sh: docker not found: install Docker, or run with "
                             "--no-docker in this machine's Python\n")
    assert not (tmp_path / "a.json").exists()


def test_the_table_gives_every_style_its_ratio_to_tf_per_variant(capsys):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gpu_acceptance
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    ratio = {"median": 1.25, "rounds_min": 1.25, "rounds_max": 1.25}
    gpu_acceptance.print_table({
        "machine": {"gpus": [], "cpus": 2, "tensorflow": "2.x"}, "rows": [300, 150],
        "config": "configs/gpu.yaml", "pipeline": {"images_per_s": 1000.0}, "models": [],
        "keras_over_tf": {"as configured": {"cnn": {**ratio, "median": 0.5}}},
        "torch_over_tf": {"as configured": {"cnn": ratio}, "XLA off": {"ffn": ratio}}})
    out = capsys.readouterr().out
    assert "Keras/TF seconds per epoch, cnn, as configured: 0.500" in out
    assert "Torch/TF seconds per epoch, cnn, as configured: 1.250" in out
    assert "Torch/TF seconds per epoch, ffn, XLA off: 1.250" in out
