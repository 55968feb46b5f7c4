"""GPU-era runtime features exercised on the CPU: precision, XLA, strategies, the GPU check."""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from job.config import CNNSpec, EarlyStoppingConfig, FFNSpec, RuntimeConfig, TrainConfig
from job.errors import DeviceError
from job.styles.tf.runtime import local_runtime, setup
from job.system.runtime import choose_strategy, cluster_spec, is_chief, return_freed_memory
from job.styles.keras import loop as keras_fit
from job.styles.tf import loop as tf_loop
from job.train.task import Split, Task
from job.styles import ModelId
from job.styles.tf.loss_scale import LossScale

FIT = {"tf": tf_loop.fit, "keras": keras_fit.fit}
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def split(digits):
    images, labels = digits
    return Split(images[:512], labels[:512], images[512:640], labels[512:640])


def task(tmp_path, arch: str, style: str, epochs: int = 2) -> Task:
    spec = FFNSpec(hidden=(32,), dropout=0.0) if arch == "ffn" else CNNSpec(
        filters=(4,), convs_per_block=1, dense=(16,), dropout=0.0, dense_dropout=0.0)
    return Task(model=ModelId(arch, style), spec=spec,
                train=TrainConfig(epochs=epochs, batch_size=64, learning_rate=0.003,
                                  early_stopping=EarlyStoppingConfig(patience=5)),
                order_seed=7, logdir=tmp_path / f"{arch}-{style}")


def losses(trained) -> list[float]:
    return [row["loss"] for row in trained.history]


@pytest.mark.parametrize("style", ["tf", "keras"])
@pytest.mark.parametrize("arch", ["ffn", "cnn"])
def test_mixed_bfloat16_trains_with_float32_weights_and_logits(tmp_path, split, arch, style):
    runtime = local_runtime("mixed_bfloat16")
    trained = FIT[style](task(tmp_path, arch, style, epochs=3), split, lambda line: None,
                         runtime)
    assert np.isfinite(losses(trained)).all() and losses(trained)[-1] < losses(trained)[0]
    logits = trained.predict_logits(split.val_x[:8])
    assert logits.dtype == np.float32
    assert (logits.argmax(1) == split.val_y[:8]).mean() >= 0.5


def test_bfloat16_runs_in_bfloat16_in_both_styles(split):
    """The policy really changes the arithmetic: bf16 logits differ from float32 ones."""
    from job.styles.keras import nets as keras_nets
    from job.styles.tf import nets as tf_nets
    import keras
    x = tf.cast(split.val_x[:16], tf.float32) / 255
    full = tf_nets.build_ffn(FFNSpec(hidden=(32,)), 0)(x, training=False)
    half = tf_nets.build_ffn(FFNSpec(hidden=(32,)), 0, "bfloat16")(x, training=False)
    assert half.dtype == tf.float32 and not np.array_equal(full.numpy(), half.numpy())
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = keras_nets.build_ffn(FFNSpec(hidden=(32,)), 0)
        assert model.layers[1].compute_dtype == "bfloat16"
        assert model.get_layer("logits").compute_dtype == "float32"
        np.testing.assert_allclose(model(x).numpy(), half.numpy(), rtol=0.05, atol=0.05)
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("style", ["tf", "keras"])
def test_xla_gives_the_same_training(tmp_path, split, style):
    plain = FIT[style](task(tmp_path / "plain", "cnn", style), split, lambda line: None)
    xla = FIT[style](task(tmp_path / "xla", "cnn", style), split, lambda line: None,
                     local_runtime(jit_compile=True))
    np.testing.assert_allclose(losses(xla), losses(plain), rtol=2e-3)


def test_loss_scale_skips_overflows_and_grows_after_good_steps():
    scale = LossScale(initial=8.0, growth_steps=2)
    assert not bool(scale.update([tf.constant([1.0, np.inf])]))
    assert float(scale.scale) == 4.0
    assert bool(scale.update([tf.constant([1.0])]))
    assert float(scale.scale) == 4.0
    assert bool(scale.update([tf.constant([1.0])]))
    assert float(scale.scale) == 8.0 and int(scale.good_steps) == 0
    np.testing.assert_allclose(scale.unscale([tf.constant([16.0])])[0], [2.0])


def test_float16_tf_loop_skips_the_step_on_overflow(tmp_path, split):
    """A non-finite gradient under loss scaling leaves the weights untouched."""
    from job.styles.tf import nets as tf_nets
    from job.styles.tf.adam import Adam
    model = tf_nets.build_ffn(FFNSpec(hidden=(8,), dropout=0.0), 0, "float16")
    optimizer = Adam(0.01)
    optimizer.build(model.trainable_variables)
    scale = LossScale(initial=2.0 ** 60)   # float16 overflows: the step must be skipped
    steps = tf_loop.make_steps(model, optimizer, scale, local_runtime("mixed_float16"))
    before = [v.numpy() for v in model.trainable_variables]
    batch = (tf.cast(split.train_x[:32], tf.float32) / 255, tf.constant(split.train_y[:32], tf.int32))
    steps[0](iter(tf.data.Dataset.from_tensors(batch)), tf.constant(1))
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(before, model.trainable_variables))
    assert float(scale.scale) == 2.0 ** 59 and int(optimizer.iterations) == 0


def test_require_gpu_fails_fast_without_one():
    with pytest.raises(DeviceError, match=r"^runtime.require_gpu is true but TensorFlow sees "
                                          r"no GPU: .*--gpus all"):
        setup(RuntimeConfig(require_gpu=True))


def test_cpu_runtime_is_plain():
    runtime = setup(RuntimeConfig())
    assert (runtime.kind, runtime.replicas, runtime.is_chief) == ("none", 1, True)


def test_require_gpu_fails_before_any_work_when_nvml_shows_none(tmp_path):
    """The parent checks with NVML before the data or any worker: one line, exit 2."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE")}
    env.update(PYTHONPATH=str(REPO), HOME=str(tmp_path), CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, "-m", "job", "train", "--config", str(REPO / "configs/smoke.yaml"),
         "--set", "runtime.require_gpu=true", "--set", "output.runs_dir=runs"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: runtime.require_gpu is true but no GPU is visible (NVML finds none): on a GPU "
        "machine check `nvidia-smi` and that the container runs with --gpus all; to train on "
        "the CPU anyway use a config with runtime.require_gpu: false"]
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()


@pytest.mark.parametrize("tf_config, chief", [
    (None, True),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}, True),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}, False),
    ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}},
     False),
    ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}},
     True),
])
def test_only_the_chief_writes(tf_config, chief):
    env = {"TF_CONFIG": json.dumps(tf_config)} if tf_config else {}
    assert is_chief(cluster_spec(env)) is chief
    assert choose_strategy(RuntimeConfig(), 0, cluster_spec(env)) == (
        "multi_worker" if tf_config else "none")


def test_bad_tf_config_is_one_line():
    with pytest.raises(DeviceError, match="TF_CONFIG: expected JSON"):
        cluster_spec({"TF_CONFIG": "{not json"})


def test_auto_mirrors_only_with_several_gpus():
    assert choose_strategy(RuntimeConfig(), 2, None) == "mirrored"
    assert choose_strategy(RuntimeConfig(), 1, None) == "none"
    assert choose_strategy(RuntimeConfig(distribute="none"), 4, None) == "none"


def test_mirrored_strategy_over_two_cpus_matches_one_device(tmp_path):
    """Both styles on two logical CPUs: per-replica batch 32 x 2 replicas trains like one
    device with batch 64 (no dropout, so the arithmetic is the same up to summation order)."""
    script = REPO / "tests" / "helpers" / "mirrored.py"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, str(script), str(tmp_path)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for style in ("tf", "keras"):
        assert report[style]["replicas"] == 2
        np.testing.assert_allclose(report[style]["mirrored"], report[style]["single"],
                                   rtol=1e-5)
        np.testing.assert_allclose(report[style]["mirrored_rates"],
                                   report[style]["single_rates"], rtol=1e-6)


def resident_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines()
                    if line.startswith("VmRSS:"))) / 1024


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc" or not Path("/proc/self/status").exists(),
                    reason="malloc_trim and /proc are glibc/Linux facts")
def test_freed_memory_goes_back_to_the_os_between_models():
    """Blocks freed in the middle of glibc's heap stay resident until trimmed: what made
    every trained model raise the floor for the next one."""
    blocks = [bytearray(b"x" * 60_000) for _ in range(4000)]   # ~240 MB, below mmap size
    keep = blocks[::50]          # a few survivors pin the heap, as a model's leftovers do
    del blocks
    before = resident_mb()
    return_freed_memory()
    assert resident_mb() < before - 150
    del keep
