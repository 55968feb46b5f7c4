"""Time to accuracy: how long each recipe takes from process start to a written
submission.csv, and what held-out accuracy that submission reaches, beside the keras-io
"Simple MNIST convnet" example trained by this script on the same rows.

The rows are real images: Fashion-MNIST (Debian's `dataset-fashion-mnist`, MNIST's own
file format, harder than handwritten digits, so recipes that the embedded digits all score
at ~100% come apart), converted on the fly into the competition's CSV layout: train.csv
from its training images, test.csv from its test images, whose labels stay here to score
each submission. `--data digits` uses Kaggle-sized copies of the embedded digits instead.

A measurement, not a test: it prints a table, writes the numbers to JSON, draws each
model's validation accuracy against wall seconds (a PNG, and scalars for TensorBoard:
`tensorboard --logdir <workdir>/tensorboard`). Nothing asserts on them.

Run: make bench   (or: .venv/bin/python scripts/time_to_accuracy.py --out tta.json)
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
FASHION = Path("/usr/share/datasets/fashion-mnist")
CPU = ("--set", "runtime.require_gpu=false", "--set", "runtime.mixed_precision=float32",
       "--set", "runtime.jit_compile=false")


@dataclass(frozen=True)
class Recipe:
    """One way to a submission: a config and its overrides, or the keras-io example."""

    name: str
    config: str | None                 # None: the keras-io example
    overrides: tuple[str, ...] = ()
    note: str = ""


RECIPES = {
    "keras-io": Recipe("keras-io", None, note="keras.io/examples/vision/mnist_convnet: "
                       "2 convs, 15 epochs, batch 128"),
    "default": Recipe("default", "configs/default.yaml", note="every default model"),
    "fast": Recipe("fast", "configs/fast.yaml"),
    "fast-torch": Recipe("fast-torch", "configs/fast.yaml", ("--set", "models=[cnn-torch]"),
                         note="the same net in torch, whose worker holds the training set on "
                         "the device (on a GPU: no host pipeline, no per-batch copy)"),
    "leaderboard-single": Recipe(
        "leaderboard-single", "configs/leaderboard.yaml",
        ("--set", "ensemble.bag_copies=0", "--set", "ensemble.bag_model=none",
         "--set", "train.refit_full=false") + CPU,
        note="the published net alone, its published schedule (45 epochs, x0.95 a "
        "epoch, no early stopping); no bag, no refit, float32 without XLA on a CPU"),
    "leaderboard-early-stop": Recipe(
        "leaderboard-early-stop", "configs/leaderboard.yaml",
        ("--set", "ensemble.bag_copies=0", "--set", "ensemble.bag_model=none",
         "--set", "train.refit_full=false", "--set", "train.early_stopping.enabled=true",
         "--set", "train.early_stopping.patience=10") + CPU,
        note="the same net stopped early (patience 10 on val_loss), as the config was before"),
}


@dataclass
class Result:
    recipe: str
    mflop: float | None = None         # its CNN's, per training image, forward and backward
    seconds: float | None = None
    accuracy: float | None = None
    error: str = ""
    curves: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("fashion", "digits"), default="fashion")
    parser.add_argument("--fashion-dir", type=Path, default=FASHION,
                        help="Fashion-MNIST's idx files (apt-get install dataset-fashion-mnist)")
    parser.add_argument("--rows", type=int, nargs=2, default=(10_000, 2_000),
                        metavar=("TRAIN", "HELD_OUT"), help="training rows and held-out test "
                        "rows (Fashion-MNIST has 60,000 and 10,000)")
    parser.add_argument("--recipes", default=",".join(r for r in RECIPES if r != "fast-torch"),
                        help=f"comma-separated, of {', '.join(RECIPES)}")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="an override for every config recipe, e.g. train.epochs=3")
    parser.add_argument("--workdir", type=Path, help="keep the data, runs and logs here")
    parser.add_argument("--out", type=Path, default=Path("tta.json"))
    args = parser.parse_args(argv)
    unknown = set(args.recipes.split(",")) - set(RECIPES)
    if unknown:
        parser.error(f"--recipes: unknown {', '.join(sorted(unknown))}")
    return args


def read_idx(path: Path) -> np.ndarray:
    """An MNIST-format idx file (gzipped): uint8 images (N, 784) or labels (N,)."""
    data = gzip.decompress(path.read_bytes())
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    array = np.frombuffer(data, np.uint8, offset=4 + 4 * dims)
    return array.reshape(shape[0], -1) if dims > 1 else array


def fashion(folder: Path, train_rows: int, test_rows: int):
    """The first rows of Fashion-MNIST's training and test sets (each class ~10%)."""
    if not (folder / "train-images-idx3-ubyte.gz").is_file():
        raise SystemExit(f"{folder}: no Fashion-MNIST here: sudo apt-get install "
                         "dataset-fashion-mnist (or --fashion-dir, or --data digits)")
    train = read_idx(folder / "train-images-idx3-ubyte.gz")[:train_rows]
    train_labels = read_idx(folder / "train-labels-idx1-ubyte.gz")[:train_rows]
    test = read_idx(folder / "t10k-images-idx3-ubyte.gz")[:test_rows]
    test_labels = read_idx(folder / "t10k-labels-idx1-ubyte.gz")[:test_rows]
    return train, train_labels, test, test_labels


def digits(train_rows: int, test_rows: int):
    """Shifted, noised copies of the embedded digits (as scripts/bench.py makes them)."""
    from bench import make_kaggle_sized  # noqa: E402 - a sibling script
    with tempfile.TemporaryDirectory() as tmp:
        make_kaggle_sized(Path(tmp), train_rows + test_rows, 1)
        rows = np.loadtxt(Path(tmp) / "train.csv", delimiter=",", skiprows=1, dtype=np.uint8)
    return rows[:train_rows, 1:], rows[:train_rows, 0], rows[train_rows:, 1:], rows[train_rows:, 0]


def write_competition(folder: Path, train, train_labels, test) -> None:
    """train.csv, test.csv and sample_submission.csv as Kaggle lays them out."""
    from job.competition import PIXELS
    from job.data.sample import write_csv
    folder.mkdir(parents=True, exist_ok=True)
    pixels = [f"pixel{i}" for i in range(PIXELS)]
    write_csv(folder / "train.csv", ["label", *pixels], np.column_stack([train_labels, train]))
    write_csv(folder / "test.csv", pixels, test)
    ids = np.arange(1, len(test) + 1)
    write_csv(folder / "sample_submission.csv", ["ImageId", "Label"],
              np.column_stack([ids, np.zeros_like(ids)]))


def scored(submission: Path, labels: np.ndarray) -> float:
    """The share of held-out rows the submission labels right."""
    rows = np.loadtxt(submission, delimiter=",", skiprows=1, dtype=np.int64)
    assert len(rows) == len(labels) and (rows[:, 0] == np.arange(1, len(labels) + 1)).all()
    return float((rows[:, 1] == labels).mean())


def cnn_macs(spec) -> int:
    """Multiply-adds of one image's forward pass through a CNN spec: each convolution's
    output positions x kernel area x input channels x filters, then the dense layers and
    the logits (batch norm, pooling and activations are a rounding error beside them)."""
    from job.competition import IMAGE_SIDE
    from job.config.cnn import Conv, conv_blocks
    side, channels, macs = IMAGE_SIDE, 1, 0
    for block in conv_blocks(spec):
        for layer in block:
            out = layer.side(side, spec)
            if isinstance(layer, Conv):
                macs += out * out * layer.kernel ** 2 * channels * layer.filters
                channels = layer.filters
            side = out
    width = side * side * channels
    for units in (*spec.dense, 10):
        macs, width = macs + width * units, units
    return macs


def mflop_of(recipe: Recipe, overrides: list[str]) -> float:
    """Training FLOPs per image of the recipe's CNN: 2 per multiply-add, x3 for the
    backward pass (the usual estimate)."""
    from job.config import CNNSpec, load_config
    if recipe.config is None:   # the keras-io example: valid 3x3 convs, 2x2 max pools
        spec = CNNSpec(filters=(32, 64), convs_per_block=1, padding="valid", dense=())
    else:
        sets = [*recipe.overrides[1::2], *overrides]
        spec = load_config(REPO / recipe.config, sets).arch.cnn
    return 6 * cnn_macs(spec) / 1e6


def run_recipe(recipe: Recipe, data: Path, work: Path, labels: np.ndarray,
               overrides: list[str]) -> Result:
    """Start the process, wait for its submission, time it all, score it."""
    out = work / recipe.name
    out.mkdir(parents=True, exist_ok=True)
    if recipe.config is None:
        argv = [sys.executable, str(REPO / "scripts" / "keras_io_convnet.py"), str(data),
                str(out / "submission.csv")]
    else:
        argv = [sys.executable, "-m", "job", "train", "--config", str(REPO / recipe.config),
                "--set", "data.source=local", "--set", f"data.dir={data}",
                "--set", f"output.runs_dir={out / 'runs'}", *recipe.overrides,
                *[part for o in overrides for part in ("--set", o)]]
    started = time.perf_counter()
    with open(out / "output.log", "w") as log:
        done = subprocess.run(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = (out / "output.log").read_text().strip().splitlines()[-1:]
        return Result(recipe.name, error=f"exit {done.returncode}: {' '.join(tail)[:200]}")
    if recipe.config is None:
        submission, curves = out / "submission.csv", read_keras_io_curve(out)
    else:
        run = next(p for p in sorted((out / "runs").iterdir())
                   if p.is_dir() and not p.is_symlink())
        submission, curves = run / "submission.csv", read_curves(run)
    return Result(recipe.name, mflop_of(recipe, overrides), seconds, scored(submission, labels),
                  curves=curves)


def read_curves(run: Path) -> dict[str, list[tuple[float, float]]]:
    """Per model: (seconds of its own training so far, validation accuracy) per epoch."""
    metrics = json.loads((run / "metrics.json").read_text())
    curves = {}
    for model in metrics["models"]:
        elapsed, points = 0.0, []
        for row in model.get("history", []):
            elapsed += row["seconds"]
            if "val_accuracy" in row:
                points.append((elapsed, row["val_accuracy"]))
        curves[model["name"]] = points
    return curves


def read_keras_io_curve(out: Path) -> dict[str, list[tuple[float, float]]]:
    history = json.loads((out / "history.json").read_text())
    return {"keras-io": [tuple(p) for p in history]}


def machine() -> str:
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores, no GPU used"


def table(results: list[Result], baseline: Result | None) -> list[str]:
    lines = [f"{'recipe':<24} {'MFLOP/img':>9} {'wall s':>8} {'held-out acc':>13} "
             f"{'time vs keras-io':>17}"]
    for r in results:
        if r.error:
            lines.append(f"{r.recipe:<24} failed: {r.error}")
            continue
        ratio = (f"{r.seconds / baseline.seconds:.2f}x" if baseline and baseline.seconds
                 else "-")
        lines.append(f"{r.recipe:<24} {r.mflop:>9.1f} {r.seconds:>8.1f} {r.accuracy:>13.4f} "
                     f"{ratio:>17}")
    return lines


def draw(results: list[Result], path: Path) -> None:
    """Validation accuracy against each model's own training seconds."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5))
    for r in results:
        for model, points in r.curves.items():
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, marker=".", label=f"{r.recipe}: {model}")
    ax.set_xlabel("training seconds (each model's own, excluding start-up)")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_tensorboard(results: list[Result], logdir: Path) -> None:
    """time_to_accuracy/<recipe>/<model>: validation accuracy at step = whole seconds."""
    from tensorboard.compat.proto import summary_pb2

    from job.outputs.events import write_events
    for r in results:
        for model, points in r.curves.items():
            summaries = [(summary_pb2.Summary(value=[summary_pb2.Summary.Value(
                tag="time_to_accuracy/val_accuracy", simple_value=acc)]), round(seconds))
                for seconds, acc in points]
            if summaries:
                write_events(logdir / r.recipe / model, summaries)


def measure(kind: str, rows: tuple[int, int], recipes: list[str], work: Path,
            overrides: list[str], fashion_dir: Path = FASHION) -> dict:
    """Make the data, run each recipe in turn, print the table; the numbers as a dict."""
    train, train_labels, test, test_labels = (
        fashion(fashion_dir, *rows) if kind == "fashion" else digits(*rows))
    data = work / "data"
    write_competition(data, train, train_labels, test)
    print(f"time to accuracy: {kind}, {len(train):,} training rows, {len(test):,} held-out "
          f"rows; machine: {machine()}", flush=True)
    results = []
    for name in recipes:
        result = run_recipe(RECIPES[name], data, work, test_labels, overrides)
        results.append(result)
        print(f"  {name}: " + (result.error or f"{result.seconds:.1f} s, held-out accuracy "
                                               f"{result.accuracy:.4f}"), flush=True)
    baseline = next((r for r in results if r.recipe == "keras-io" and not r.error), None)
    print("\n".join(["", *table(results, baseline)]), flush=True)
    write_tensorboard(results, work / "tensorboard")
    return {"machine": machine(), "data": kind, "rows": [len(train), len(test)],
            "overrides": overrides, "results": [vars(r) for r in results]}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    keep = args.workdir is not None
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="tta-"))).resolve()
    found = measure(args.data, tuple(args.rows), args.recipes.split(","), work, args.overrides,
                    args.fashion_dir)
    draw([Result(**r) for r in found["results"]], args.out.with_suffix(".png"))
    args.out.write_text(json.dumps(found, indent=2) + "\n")
    print(f"\nwrote {args.out}, {args.out.with_suffix('.png')} and TensorBoard scalars in "
          f"{work / 'tensorboard'}" + ("" if keep else " (a temporary folder)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
