"""scripts/bench.py's measurements that need a framework, each in a process of its own with
that framework alone (the bench process loads none), printing one `BENCH {json}` line:

  probe.py start STYLE CONFIG OVERRIDES_JSON
      what a worker (`python -m job.workers.child`) does before it trains: the job's
      imports, its style's loop module (the framework), `setup` (the devices). Times are
      time.monotonic(), the system-wide clock, so the bench subtracts its own spawn time.
  probe.py feeding STYLE DATA_DIR CONFIG OVERRIDES_JSON EPOCHS
      the style's training feed alone (gather, cast, augmentation, batching) drained as
      fast as it goes: seconds per epoch, the median after the first.
"""

from __future__ import annotations

import time

STARTED = time.monotonic()   # the first thing this process runs

import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

FRAMEWORKS = ("tensorflow", "keras", "torch")


def report(record: dict) -> None:
    print("BENCH " + json.dumps(record), flush=True)


def loaded() -> list[str]:
    return sorted(name for name in FRAMEWORKS if name in sys.modules)


def start(style: str, config_path: str, overrides: list[str]) -> None:
    from job.workers import child   # the worker's own imports
    from job.config import load_config
    job_imported = time.monotonic()
    loop = child.loop_of(style)     # its framework, and no other
    framework_imported = time.monotonic()
    loop.setup(load_config(config_path, overrides).runtime)
    set_up = time.monotonic()
    report({"style": style, "main": STARTED, "job_imported": job_imported,
            "framework_imported": framework_imported, "set_up": set_up,
            "frameworks": loaded()})


def feeding(style: str, data_dir: str, config_path: str, overrides: list[str],
            epochs: int) -> None:
    from job.config import load_config
    from job.data import arrays
    config = load_config(config_path, overrides)
    data = arrays.load_arrays(Path(data_dir))
    train_x, train_y, *_ = arrays.split_validation(data.train_images, data.train_labels,
                                                  config.data.val_fraction, config.data.seed)
    batch, seed, augment = config.train.batch_size, config.data.seed, config.train.augment
    seconds = []
    if style == "tf":
        from job.styles.tf import feeding as tf_feeding
        steps = tf_feeding.steps_per_epoch(len(train_x), batch)
        batches = iter(tf_feeding.training_batches(train_x, train_y, batch, seed, 0, epochs,
                                                   augment))
        for _ in range(epochs):
            begun = time.perf_counter()
            for _ in range(steps):
                next(batches)
            seconds.append(time.perf_counter() - begun)
    elif style == "torch":
        import torch

        from job.styles.torch import feeding as torch_feeding
        training = torch_feeding.TrainingSet(train_x, train_y, batch, seed, augment,
                                             torch.device("cpu"))
        for epoch in range(epochs):
            begun = time.perf_counter()
            for _ in training.epoch(epoch):
                pass
            seconds.append(time.perf_counter() - begun)
    else:
        raise SystemExit(f"feeding: no feed for style {style!r} (tf or torch)")
    per_epoch = statistics.median(seconds[1:] if len(seconds) > 1 else seconds)
    report({"style": style, "epoch_seconds": seconds, "seconds_per_epoch": per_epoch,
            "images_per_s": len(train_x) / per_epoch, "frameworks": loaded()})


def main(argv: list[str]) -> None:
    if argv[:1] == ["start"] and len(argv) == 4:
        start(argv[1], argv[2], json.loads(argv[3]))
    elif argv[:1] == ["feeding"] and len(argv) == 6:
        feeding(argv[1], argv[2], argv[3], json.loads(argv[4]), int(argv[5]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
