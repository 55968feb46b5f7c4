"""torch's probe: its version and CUDA build, the GPUs it can use, the torch CNN's step
timed, and the CUDA libraries its process mapped. Run only inside `python -m
job.doctor.probe torch`, a process that imports no other framework; the doctor's own
process never imports this."""

from __future__ import annotations

import time
import warnings

from job.config import CNNSpec, Config
from job.doctor import stacks
from job.doctor.report import Timing, error_text


def probe(config: Config, request: dict) -> dict:
    """The report's fields, from this process (see job.doctor.report.Report)."""
    import torch

    with warnings.catch_warnings():   # no driver: torch warns that CUDA cannot start
        warnings.simplefilter("ignore")
        count = torch.cuda.device_count() if torch.version.cuda else 0
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    found = {"version": torch.__version__,
             "build": {"cuda_version": torch.version.cuda, "cudnn_version": cudnn_text(cudnn),
                       "is_cuda_build": bool(torch.version.cuda)},
             "gpus": [torch.cuda.get_device_name(i) for i in range(count)]}
    if count:
        touch(torch)
    if request.get("timing", True):
        steps = request.get("steps") or (10 if count else 3)
        found["timings"] = [time_step(config.arch.cnn, config.train.batch_size, bool(count),
                                      steps)]
    found["mapped"] = stacks.mapped()
    return found


def cudnn_text(version: int | None) -> str | None:
    """92400 → "9.24.0"; 8902 → "8.9.2"."""
    # cuDNN 9 numbers itself major * 10000 + minor * 100 + patch, cuDNN 8 major * 1000 + ...
    if not version:
        return None
    major = version // 10000 if version >= 90000 else version // 1000
    rest = version - major * (10000 if version >= 90000 else 1000)
    return f"{major}.{rest // 100}.{rest % 100}"


def touch(torch) -> None:
    """A matmul and a convolution on the GPU, so cuBLAS and cuDNN load as training loads them."""
    generator = torch.Generator("cuda").manual_seed(0)
    a = torch.rand(64, 64, device="cuda", generator=generator)
    (a @ a).sum().item()
    images = torch.rand(2, 1, 28, 28, device="cuda", generator=generator)
    kernel = torch.rand(4, 1, 3, 3, device="cuda", generator=generator)
    torch.nn.functional.conv2d(images, kernel, padding=1).sum().item()


def time_step(spec: CNNSpec, batch: int, on_gpu: bool, steps: int = 10) -> Timing:
    """The torch CNN's forward, backward and Adam step on one batch; a failure is returned."""
    try:
        import torch
        import torch.nn.functional as F

        from job.styles.torch import nets
        from job.styles.torch.optim import Adam

        device = "cuda" if on_gpu else "cpu"
        net = nets.build_cnn(spec, 0, device)
        optimizer = Adam(nets.trained_parameters(net), 1e-3)
        generator = torch.Generator(device).manual_seed(1)
        x = torch.rand(batch, 784, device=device, generator=generator)
        y = torch.randint(0, 10, (batch,), device=device, generator=generator)

        def step() -> torch.Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            optimizer.step()
            return loss

        step().item()   # the first step also picks the convolution algorithms
        start = time.perf_counter()
        for _ in range(steps):
            loss = step()
        loss.item()
        seconds = (time.perf_counter() - start) / steps
        return Timing("torch", "GPU:0" if on_gpu else "CPU:0", seconds, batch / seconds)
    except Exception as e:  # noqa: BLE001 - any failure is the finding
        return Timing("torch", "cuda" if on_gpu else "cpu", 0.0, 0.0, error_text(e))
