"""Measure the job on Kaggle-sized data: CSV ingest, seconds per epoch in every style,
peak memory of a whole run. A measurement, not a test: it prints a table and writes
the numbers to JSON; nothing asserts on them.

Run: make bench   (or: .venv/bin/python scripts/bench.py --epochs 3 --out bench.json)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# What is timed (and what the memory probe's run trains), unless --set models=[...]: the
# FFN and the CNN in every style; the LSTMs stay out (several times slower).
MODELS = ("ffn-tf", "ffn-keras", "ffn-torch", "cnn-tf", "cnn-keras", "cnn-torch")
EPOCHS = {"ffn": 8, "cnn": 3, "lstm": 3}   # per model and round, unless --epochs


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs/default.yaml")
    parser.add_argument("--epochs", type=int,
                        help="epochs per model and round, >= 2 (default: 8 for the FFNs, whose "
                             "~1 s epochs the machine's noise moves most, 3 for the others)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="times every model is trained, in turn (the machine's slow spells "
                             "then fall on every style)")
    parser.add_argument("--rows", type=int, nargs=2, default=(42_000, 28_000),
                        metavar=("TRAIN", "TEST"), help="data size (default: the competition's)")
    parser.add_argument("--out", type=Path, default=Path("bench.json"))
    parser.add_argument("--workdir", type=Path, help="keep the generated data here")
    parser.add_argument("--skip-memory", action="store_true", help="no full-run memory probe")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="config override for the timed models, e.g. train.batch_size=256 "
                             f"or models=[ffn-tf,ffn-torch] (default: {', '.join(MODELS)})")
    args = parser.parse_args()
    if (args.epochs is not None and args.epochs < 2) or args.rounds < 1 or min(args.rows) < 100:
        parser.error("--epochs must be at least 2, --rounds at least 1, --rows at least 100 each")
    return args


def make_kaggle_sized(folder: Path, train_rows: int, test_rows: int, seed: int = 0) -> None:
    """Labelled and unlabelled digits in the Kaggle layout (42,000 and 28,000 in the
    competition): the embedded digits, each randomly shifted by up to 3 pixels and
    lightly noised."""
    from job.data.sample import framed_digits, write_csv
    images, labels = framed_digits()
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(images), train_rows + test_rows)
    shifted = np.empty((len(picks), 28, 28), np.uint8)
    for i, (dy, dx) in enumerate(rng.integers(-3, 4, (len(picks), 2))):
        shifted[i] = np.roll(images[picks[i]].reshape(28, 28), (dy, dx), axis=(0, 1))
    noise = rng.integers(0, 24, shifted.shape) * (rng.random(shifted.shape) < 0.05)
    pixels = np.clip(shifted.astype(np.int16) + noise, 0, 255).astype(np.uint8).reshape(-1, 784)
    header = [f"pixel{i}" for i in range(784)]
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(folder / "train.csv", ["label", *header],
              np.column_stack([labels[picks[:train_rows]], pixels[:train_rows]]))
    write_csv(folder / "test.csv", header, pixels[train_rows:])
    ids = np.arange(1, test_rows + 1)
    write_csv(folder / "sample_submission.csv", ["ImageId", "Label"],
              np.column_stack([ids, np.zeros_like(ids)]))


def best_of(runs: int, fn) -> float:
    """The fastest of a few timings (the least disturbed by the rest of the machine)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure_ingest(folder: Path) -> dict:
    """The job's first parse, pandas' defaults on the same files, the job's cached reload."""
    import shutil

    import pandas as pd

    from job.data import arrays as data

    def first_parse() -> None:
        shutil.rmtree(folder / ".cache", ignore_errors=True)
        data.load_arrays(folder)

    def pandas_read() -> None:
        pd.read_csv(folder / "train.csv")
        pd.read_csv(folder / "test.csv")

    parse = best_of(3, first_parse)
    pandas = best_of(3, pandas_read)
    data.load_arrays(folder)   # leaves the cache in place
    reload = best_of(5, lambda: data.load_arrays(folder))
    return {"first_parse_s": parse, "pandas_read_csv_s": pandas, "cached_reload_s": reload,
            "parse_vs_pandas": parse / pandas, "reload_vs_pandas": reload / pandas}


def measure_pipeline(split, config, epochs: int) -> dict:
    """The shared input pipeline alone (gather, cast, augmentation, batching), drained as
    fast as it can be: how many images per second the host can feed a GPU."""
    from job.styles.tf import feeding

    train_x, train_y = split.train_x, split.train_y
    steps = feeding.steps_per_epoch(len(train_x), config.train.batch_size)
    batches = iter(feeding.training_batches(train_x, train_y, config.train.batch_size,
                                           config.data.seed, 0, epochs, config.train.augment))
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        for _ in range(steps):
            next(batches)
        seconds.append(time.perf_counter() - start)
    per_epoch = statistics.median(seconds[1:])
    return {"augmented": config.train.augment.active, "seconds_per_epoch": per_epoch,
            "images_per_s": len(train_x) / per_epoch}


def measure_models(split, config, epochs: int | None, rounds: int, runtime=None) -> list[dict]:
    """Each model for a fixed number of epochs (early stopping off), same data and spec,
    all models in turn, `rounds` times: seconds per epoch is the median over every round
    of the epochs after each round's first (which traces and compiles). `runtime` (a
    job.system.runtime.Runtime) sets device, precision and XLA; None is one plain device."""
    from job import train
    from job.config import EarlyStoppingConfig
    from job.candidates.scoring import score
    from job.train.task import make_task

    def training(arch: str):
        n = epochs or EPOCHS[arch]
        never_stop = EarlyStoppingConfig(patience=n, restore_best_weights=False)
        return replace(config.train, epochs=n, log_every=n, early_stopping=never_stop)

    rows = {name: {"model": name, "epochs": training(name.split("-")[0]).epochs,
                   "round_seconds": [], "epoch_seconds": [], "first_epoch_s": []}
            for name in config.models}
    with tempfile.TemporaryDirectory() as logs:
        for round_ in range(rounds):
            for name in config.models:
                task = make_task(name, config.arch, training(name.split("-")[0]),
                                 config.data.seed, Path(logs) / f"{name}-{round_}")
                trained = train.fit(task, split, lambda line: print(line, flush=True), runtime)
                later = [h["seconds"] for h in trained.history[1:]]
                row = rows[name]
                row["epoch_seconds"] += later
                row["round_seconds"].append(statistics.median(later))
                row["first_epoch_s"].append(trained.history[0]["seconds"])
                # Every round trains from the same seed: the scores are the same each time.
                row.update(score(trained.predict_logits(split.val_x), split.val_y))
    for row in rows.values():
        row["seconds_per_epoch"] = statistics.median(row["epoch_seconds"])
        row["images_per_s"] = len(split.train_x) / row["seconds_per_epoch"]
    return list(rows.values())


# Runs `python -m job ARGS...` and writes, at exit, the process's VmHWM (peak resident
# set) and the peak of its anonymous memory, sampled every 20 ms, to PATH as JSON. Not
# rusage: a child inherits the benchmark's own peak through fork and exec (Linux keeps
# the larger ru_maxrss), and this process has trained many models by then.
PEAK_PROBE = """
import atexit, json, runpy, sys, threading, time
path = sys.argv.pop(1)
peak_anon = 0
def status():
    lines = open("/proc/self/status").read().splitlines()
    return {l.split(":")[0]: int(l.split()[1]) for l in lines if l.endswith(" kB")}
def sample():
    global peak_anon
    while True:
        peak_anon = max(peak_anon, status()["RssAnon"])
        time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()
def write_peak():
    now = status()
    json.dump({"hwm_kb": now["VmHWM"], "peak_anon_kb": max(peak_anon, now["RssAnon"])},
              open(path, "w"))
atexit.register(write_peak)
sys.argv[0] = "job"
runpy.run_module("job", run_name="__main__", alter_sys=True)
"""


def measure_memory(folder: Path, config_path: Path, overrides: list[str], workdir: Path) -> dict:
    """Peak resident memory of a whole `python -m job train` (1 epoch per model): all of
    it, and its anonymous part (the rest is shared libraries mapped from disk, whose
    count depends on the page cache: ~400 MB of TensorFlow after an old install, ~500
    MB right after a fresh one)."""
    peak_file = workdir / "peak_memory.json"
    command = [sys.executable, "-c", PEAK_PROBE, str(peak_file), "train",
               "--config", str(config_path.resolve()),
               *(arg for override in overrides for arg in ("--set", override)),
               "--set", "data.source=local",
               "--set", f"data.dir={folder}", "--set", "train.epochs=1",
               "--set", f"output.runs_dir={workdir / 'runs'}"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env = {k: v for k, v in env.items() if not k.startswith("KAGGLE")}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir)
    if result.returncode != 0:
        print(result.stdout[-2000:], result.stderr[-2000:], sep="\n", file=sys.stderr)
    peak = json.loads(peak_file.read_text()) if peak_file.is_file() else {}
    return {"peak_rss_mb": peak["hwm_kb"] / 1024 if peak else None,
            "peak_anonymous_mb": peak["peak_anon_kb"] / 1024 if peak else None,
            "exit_code": result.returncode}


def ratios(rows: list[dict], style: str = "keras") -> dict:
    """`style` / TF seconds per epoch per family: of the medians, and the lowest and highest
    of the rounds' ratios (how much the machine's noise moves it)."""
    from job.styles import ARCHS
    by_name = {r["model"]: r for r in rows}
    result = {}
    for arch in ARCHS:
        tf_row, other = by_name.get(f"{arch}-tf"), by_name.get(f"{arch}-{style}")
        if tf_row and other:
            per_round = [o / t for o, t in zip(other["round_seconds"], tf_row["round_seconds"])]
            result[arch] = {"median": other["seconds_per_epoch"] / tf_row["seconds_per_epoch"],
                            "rounds_min": min(per_round), "rounds_max": max(per_round)}
    return result


def over_tf(rows: list[dict]) -> dict:
    """Every style but TF over TF, keyed `<style>_over_tf` (keras_over_tf, torch_over_tf),
    each as `ratios` gives it; a style not measured has no families."""
    from job.styles import STYLES
    return {f"{style}_over_tf": ratios(rows, style) for style in STYLES if style != "tf"}


def style_table(result: dict) -> list[str]:
    """The styles side by side: a family's rows in job.styles' order, each with its
    accuracy, epochs, speed and seconds per epoch over the family's TF loop's."""
    from job.outputs.plots import style_label
    from job.styles import ARCHS, STYLES, split_name
    order = [(arch, style) for arch in ARCHS for style in STYLES]
    lines = [f"{'family':<6} {'style':<6} {'val_acc':>8} {'val_loss':>9} {'epochs':>6} "
             f"{'s/epoch':>8} {'images/s':>9}  s/epoch over TF (rounds: lowest-highest)"]
    previous = None
    for r in sorted(result["models"], key=lambda r: order.index(split_name(r["model"]))):
        arch, style = split_name(r["model"])
        ratio = result.get(f"{style}_over_tf", {}).get(arch)
        if previous is not None and arch != previous:
            lines.append("")
        previous = arch
        vs_tf = (f"{style_label(style)}/TF {ratio['median']:.3f} "
                 f"({ratio['rounds_min']:.3f}-{ratio['rounds_max']:.3f})" if ratio else "-")
        lines.append(f"{arch:<6} {style:<6} {r['val_accuracy']:>8.4f} {r['val_loss']:>9.4f} "
                     f"{r['epochs']:>6} {r['seconds_per_epoch']:>8.2f} {r['images_per_s']:>9.0f}"
                     f"  {vs_tf}")
    return lines


def print_table(result: dict) -> None:
    ingest = result["ingest"]
    train_rows, test_rows = result["rows"]
    print(f"\nCSV ingest (train.csv {train_rows:,} rows + test.csv {test_rows:,} rows)")
    print(f"  job first parse   {ingest['first_parse_s']:.3f} s  "
          f"({ingest['parse_vs_pandas']:.2f}x pandas)")
    print(f"  pandas.read_csv   {ingest['pandas_read_csv_s']:.3f} s")
    print(f"  job cached reload {ingest['cached_reload_s'] * 1000:.1f} ms "
          f"({ingest['reload_vs_pandas'] * 100:.2f}% of pandas)")
    pipeline = result["pipeline"]
    kind = "augmented" if pipeline["augmented"] else "no augmentation"
    print(f"\ninput pipeline alone ({kind}): {pipeline['seconds_per_epoch']:.3f} s/epoch, "
          f"{pipeline['images_per_s']:.0f} images/s")
    if result.get("memory"):
        memory = result["memory"]
        failed = (f" (but the run FAILED, exit code {memory['exit_code']})"
                  if memory["exit_code"] else "")
        if memory["peak_rss_mb"] is None:
            print(f"peak RSS of a full run: unknown{failed}")
        else:
            print(f"peak RSS of a full run: {memory['peak_rss_mb']:.0f} MB, of which anonymous "
                  f"(not mapped from files) at most {memory['peak_anonymous_mb']:.0f} MB{failed}")
    print("\nthe styles side by side (a fixed number of epochs each, early stopping off)")
    print("\n".join(style_table(result)))
    print(f"(seconds per epoch: median over {result['rounds']} rounds of each round's epochs "
          f"but the first; the rounds' ratios are each round's medians divided)")


def main() -> None:
    args = parse_args()
    from job.data import arrays as data
    from job.cli import import_tensorflow_quietly
    from job.config import load_config
    from job.train.task import Split
    import_tensorflow_quietly()
    import tensorflow as tf
    # Every model builds its own tf.functions; from the fifth built by the same line of
    # code TF warns of "retracing", which here only means many models were trained.
    tf.get_logger().setLevel("ERROR")
    # The bench's models first: a --set models=[...] of the user's replaces them.
    overrides = [f"models=[{','.join(MODELS)}]", *args.overrides]
    config = load_config(args.config, overrides)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = (args.workdir or Path(tmp)).resolve()   # the memory probe runs in it
        folder = workdir / "data"
        if not (folder / "train.csv").is_file():
            print(f"generating Kaggle-sized data in {folder}", flush=True)
            make_kaggle_sized(folder, *args.rows)
        ingest = measure_ingest(folder)
        arrays = data.load_arrays(folder)   # cached by now
        split = Split(*data.split_validation(arrays.train_images, arrays.train_labels,
                                             config.data.val_fraction, config.data.seed))
        result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                  "config": str(args.config), "overrides": args.overrides,
                  # as parsed: a kept --workdir may hold another size than --rows
                  "rows": [len(arrays.train_images), len(arrays.test_images)],
                  "epochs": args.epochs, "rounds": args.rounds,
                  "batch_size": config.train.batch_size,
                  "steps_per_execution": config.train.steps_per_execution,
                  "ingest": ingest,
                  "pipeline": measure_pipeline(split, config, args.epochs or 3),
                  "models": measure_models(split, config, args.epochs, args.rounds)}
        result.update(over_tf(result["models"]))   # keras_over_tf, torch_over_tf
        if not args.skip_memory:
            result["memory"] = measure_memory(folder, args.config, overrides, workdir)
    print_table(result)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
