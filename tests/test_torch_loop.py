"""What is the torch loop's own: Keras' Adam and loss scaling in torch, one device,
threads shared with TensorFlow, TensorBoard through torch's writer, autocast and compile."""

import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from job.config import (CNNSpec, EarlyStoppingConfig, FFNSpec, ScheduleConfig, TrainConfig,
                        load_config)
from job.errors import ConfigError, DeviceError, RunError
from job.styles.torch.runtime import local_runtime
from job.system.runtime import Runtime, check_models
from job.styles.tf import loop as tf_loop
from job.styles.torch import loop as torch_loop
from job.train.task import Split, Task
from job.styles import ModelId
from job.styles.torch.optim import Adam, LossScale
from test_adam import STEPS, random_arrays

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def split(digits):
    images, labels = digits
    return Split(images[:512], labels[:512], images[512:640], labels[512:640])


def task(tmp_path, arch="ffn", style="torch", epochs=2, **train) -> Task:
    spec = FFNSpec(hidden=(32,), dropout=0.0) if arch == "ffn" else CNNSpec(
        filters=(4,), convs_per_block=1, dense=(16,), dropout=0.0, dense_dropout=0.0)
    settings = dict(epochs=epochs, batch_size=64, learning_rate=0.003,
                    early_stopping=EarlyStoppingConfig(patience=5))
    settings.update(train)
    return Task(model=ModelId(arch, style), spec=spec,
                train=TrainConfig(**settings),
                order_seed=7, logdir=tmp_path / f"{arch}-{style}")


def losses(trained) -> list[float]:
    return [row["loss"] for row in trained.history]


@pytest.mark.parametrize("change_lr_at", [None, 3])
def test_adam_moves_parameters_as_keras_adam_does(change_lr_at):
    """The same gradients into both for several steps: equal to float32 rounding (1e-6)."""
    rng = np.random.default_rng(0)
    initial = random_arrays(rng)
    gradients = [random_arrays(rng) for _ in range(STEPS)]
    ours = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in initial]
    theirs = [tf.Variable(a) for a in initial]
    adam, keras_adam = Adam(ours, learning_rate=0.01), keras.optimizers.Adam(learning_rate=0.01)
    for i, grads in enumerate(gradients):
        if i == change_lr_at:
            adam.learning_rate, keras_adam.learning_rate = 0.002, 0.002
        for p, g in zip(ours, grads):
            p.grad = torch.from_numpy(g)
        adam.step()
        keras_adam.apply_gradients(zip([tf.constant(g) for g in grads], theirs))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.detach().numpy(), b.numpy(), rtol=1e-6, atol=1e-8)
    assert adam.iterations == int(keras_adam.iterations) == STEPS
    assert not any(np.allclose(p.detach().numpy(), a) for p, a in zip(ours, initial))


def test_torch_optim_adam_is_not_keras_adam():
    """Why the loop does not use torch.optim.Adam: with Keras' epsilon its steps differ
    where the squared gradients are small (epsilon added after the bias correction)."""
    grads = [np.full(3, 1e-6, np.float32), np.full(3, 3e-6, np.float32)]
    ours, reference = (torch.nn.Parameter(torch.zeros(3)) for _ in range(2))
    adam, torch_adam = Adam([ours], 0.01), torch.optim.Adam([reference], 0.01, eps=1e-7)
    for g in grads:
        ours.grad, reference.grad = torch.from_numpy(g), torch.from_numpy(g.copy())
        adam.step()
        torch_adam.step()
    assert not np.allclose(ours.detach().numpy(), reference.detach().numpy(), rtol=1e-3)


def test_adam_state_round_trips_and_refuses_another_model():
    params = [torch.nn.Parameter(torch.ones(2))]
    adam = Adam(params, 0.01)
    params[0].grad = torch.tensor([1.0, -1.0])
    adam.step()
    copy = Adam([torch.nn.Parameter(torch.ones(2))], 0.5)
    copy.load_state([t.numpy() for t in adam.state()])
    assert (copy.iterations, copy.learning_rate) == (1, pytest.approx(0.01))
    assert torch.equal(copy.momentums[0], adam.momentums[0])
    with pytest.raises(ValueError, match="architecture changed"):
        Adam([], 0.01).load_state([t.numpy() for t in adam.state()])


def test_loss_scale_skips_overflows_and_grows_after_good_steps():
    """Keras' rule, as the TF loop's LossScale has it: halve on overflow, double after
    `growth_steps` finite steps, gradients divided by the scale."""
    scale = LossScale(initial=8.0, growth_steps=2)
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([1.0, float("inf")])
    assert not scale.unscale([p]) and scale.scale == 4.0
    p.grad = torch.tensor([16.0, 8.0])
    assert scale.unscale([p]) and scale.scale == 4.0
    assert torch.equal(p.grad, torch.tensor([4.0, 2.0]))
    p.grad = torch.tensor([1.0, 1.0])
    assert scale.unscale([p]) and scale.scale == 8.0 and scale.good_steps == 0


def test_tensorboard_has_the_tags_and_steps_of_the_other_styles(tmp_path, split):
    for style, fit in (("tf", tf_loop.fit), ("torch", torch_loop.fit)):
        fit(task(tmp_path, style=style, epochs=3), split, lambda line: None)
    for kind, tags in (("train", {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"}),
                       ("validation", {"epoch_loss", "epoch_accuracy"})):
        found = {}
        for style in ("tf", "torch"):
            events = EventAccumulator(str(tmp_path / f"ffn-{style}" / kind),
                                      size_guidance={"tensors": 0, "scalars": 0})
            events.Reload()
            found[style] = {tag: [e.step for e in events.Tensors(tag)]
                            for tag in events.Tags()["tensors"]}
            found[style].update({tag: [e.step for e in events.Scalars(tag)]
                                 for tag in events.Tags()["scalars"]})
        assert set(found["torch"]) == set(found["tf"]) == tags, kind
        assert all(steps == [0, 1, 2] for steps in found["torch"].values())


def test_mixed_bfloat16_trains_with_float32_logits(tmp_path, split):
    trained = torch_loop.fit(task(tmp_path, "cnn", epochs=2), split, lambda line: None,
                             local_runtime("mixed_bfloat16"))
    plain = torch_loop.fit(task(tmp_path / "plain", "cnn", epochs=2), split, lambda line: None)
    assert np.isfinite(losses(trained)).all() and losses(trained)[-1] < losses(trained)[0]
    assert losses(trained) != losses(plain)   # autocast really changed the arithmetic
    logits = trained.predict_logits(split.val_x[:8])
    assert logits.dtype == np.float32


def test_mixed_float16_scales_the_loss_and_learns(tmp_path, split):
    trained = torch_loop.fit(task(tmp_path, "ffn", epochs=3), split, lambda line: None,
                             local_runtime("mixed_float16"))
    assert np.isfinite(losses(trained)).all() and losses(trained)[-1] < losses(trained)[0]


def test_torch_compile_gives_the_same_training(tmp_path, split):
    """runtime.jit_compile → torch.compile (inductor builds C++ kernels on the CPU: ~10 s)."""
    plain = torch_loop.fit(task(tmp_path / "plain", "ffn"), split, lambda line: None)
    compiled = torch_loop.fit(task(tmp_path / "compiled", "ffn"), split, lambda line: None,
                              local_runtime(jit_compile=True))
    np.testing.assert_allclose(losses(compiled), losses(plain), rtol=2e-3)


def test_a_torch_worker_trains_and_writes_tensorboard_without_tensorflow(tmp_path):
    """In a fresh process, as a torch worker does: setup, fit (TensorBoard written), save.
    TensorFlow is installed here, yet never loads: the image's two CUDA stacks never meet."""
    code = ("import sys\n"
            "import numpy as np\n"
            "from pathlib import Path\n"
            "from job.config import FFNSpec, RuntimeConfig, TrainConfig\n"
            "from job.styles import ModelId\n"
            "from job.styles.torch import loop\n"
            "from job.train.task import Split, Task\n"
            "rt = loop.setup(RuntimeConfig())\n"
            "x = np.random.default_rng(0).integers(0, 255, (64, 784), dtype=np.uint8)\n"
            "y = (np.arange(64) % 10).astype(np.uint8)\n"
            "task = Task(ModelId('ffn', 'torch'), FFNSpec(hidden=(8,)), TrainConfig(epochs=2),"
            " 1, Path(sys.argv[1]))\n"
            "loop.fit(task, Split(x[:48], y[:48], x[48:], y[48:]), print, rt)"
            ".save(Path(sys.argv[1]))\n"
            "print(sorted(n for n in ('tensorflow', 'keras', 'torch') if n in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[-2] == "['torch']"
    assert list((tmp_path / "train").glob("events.out.tfevents.*"))
    assert (tmp_path / "ffn-torch.pt").is_file()


def runtime_of(kind: str, replicas: int, devices=()) -> Runtime:
    return Runtime(None, kind, replicas, True, "float32", False, tuple(devices))


def test_more_than_one_device_is_refused_at_every_stage(tmp_path, split):
    with pytest.raises(DeviceError, match="cnn-torch: the torch style trains on one device; "
                                          "set runtime.distribute: none"):
        torch_loop.choose_device("cnn-torch", runtime_of("mirrored", 2))
    with pytest.raises(DeviceError, match="ffn-torch, cnn-torch train on one device"):
        check_models("mirrored", ("ffn-tf", "ffn-torch", "cnn-torch"))
    check_models("mirrored", ("ffn-tf", "cnn-keras"))   # TF styles may
    with pytest.raises(ConfigError, match=r"runtime.distribute: cnn-torch train on one device"):
        load_config("configs/smoke.yaml", ["runtime.distribute=mirrored",
                                           "models=[cnn-tf, cnn-torch]"])


def test_a_gpu_that_torch_cannot_see_is_an_error_not_a_cpu_run():
    """A runtime that names a GPU torch cannot use is an error, never a silent CPU run."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device torch can use")
    with pytest.raises(DeviceError, match="the runtime names a GPU but torch"):
        torch_loop.choose_device("cnn-torch", runtime_of("none", 1, ["GPU:/device:GPU:0"]))
    assert torch_loop.choose_device("cnn-torch", runtime_of("none", 1)).type == "cpu"


def test_torch_uses_as_many_threads_as_tensorflow(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "1")
        torch_loop.share_threads()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_saved_model_for_another_spec_is_refused(tmp_path, split):
    trained = torch_loop.fit(task(tmp_path, epochs=1), split, lambda line: None)
    trained.save(tmp_path)
    other = task(tmp_path, epochs=1)
    other = Task(**{**other.__dict__, "spec": FFNSpec(hidden=(16,), dropout=0.0)})
    with pytest.raises(RunError, match=r"ffn-torch.pt: saved for another ffn spec"):
        torch_loop.load_predictor(tmp_path, other)


def test_plateau_schedule_lowers_the_rate_in_torch_as_in_tf(tmp_path, split):
    schedule = ScheduleConfig(kind="plateau", patience=0, factor=0.5)
    rates = {}
    for style, fit in (("tf", tf_loop.fit), ("torch", torch_loop.fit)):
        trained = fit(task(tmp_path, style=style, epochs=4, lr_schedule=schedule,
                           learning_rate=0.05), split, lambda line: None)
        rates[style] = [row["learning_rate"] for row in trained.history]
    assert rates["torch"] == rates["tf"]


def test_require_gpu_stops_a_torch_worker_that_sees_none():
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device torch can use")
    from job.config import RuntimeConfig
    with pytest.raises(DeviceError, match=r"^runtime.require_gpu is true but torch \S+ sees "
                                          r"no GPU: .*--gpus all"):
        torch_loop.setup(RuntimeConfig(require_gpu=True))
    assert torch_loop.setup(RuntimeConfig()).devices == ("CPU:cpu",)


# --- a driver older than torch's CUDA build (Kaggle's machines may run one) -----------------

def test_gpus_torch_cannot_use_for_an_old_driver_are_named(monkeypatch):
    """This CPU machine plays a GPU machine whose driver torch's CUDA 13 build cannot use:
    the worker was given GPU 0, NVML reports driver 550, torch sees no GPU."""
    from job.config import RuntimeConfig
    from job.styles.torch import runtime
    from job.system import devices
    if not torch.version.cuda or torch.cuda.is_available():
        pytest.skip("needs torch's CUDA build on a machine where it sees no GPU")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setattr(devices, "driver_version", lambda: "550.54.15")
    with pytest.raises(DeviceError) as refused:
        runtime.setup(RuntimeConfig(require_gpu=True))
    line = str(refused.value)
    assert "NVIDIA driver 550.54.15 is older than CUDA" in line and "\n" not in line
    warned = []
    placed = runtime.setup(RuntimeConfig(require_gpu=False), warn=warned.append)
    assert placed.devices == ("CPU:cpu",) and "training on the CPU" in warned[0]
    # Without a driver at all nothing is claimed about one.
    monkeypatch.setattr(devices, "driver_version", lambda: None)
    warned.clear()
    runtime.setup(RuntimeConfig(require_gpu=False), warn=warned.append)
    assert warned == []
