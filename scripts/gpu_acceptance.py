"""The first GPU machine's acceptance run: every model of a config for two epochs on
Kaggle-sized data, with XLA and mixed precision as configured and each turned off, in one
table of seconds per epoch, images/s and every style's ratio to TF (Keras/TF, Torch/TF)
beside the README's on-paper estimates; the numbers also go to JSON. A measurement: it
asserts nothing about speed.

Run it through scripts/gpu_acceptance.sh (make gpu-acceptance), which builds the image and
runs the doctor first; on its own: .venv/bin/python scripts/gpu_acceptance.py --out a.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))   # bench.py, beside this file
from bench import REPO, make_kaggle_sized, measure_feeding, model_rows, over_tf, run_job  # noqa: E402

# docs/performance.md's bounds for the default CNN's epoch (37,800 images), worked out from
# its FLOPs and memory traffic, not measured: seconds per epoch, low and high.
ON_PAPER = {"A100": (0.2, 0.4), "T4": (0.5, 1.0)}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs/gpu.yaml")
    parser.add_argument("--rows", type=int, nargs=2, default=(42_000, 28_000),
                        metavar=("TRAIN", "TEST"), help="data size (default: the competition's)")
    parser.add_argument("--epochs", type=int, default=2, help="per model and variant, >= 2")
    parser.add_argument("--out", type=Path, default=Path("acceptance.json"))
    parser.add_argument("--doctor-output", type=Path, help="the doctor's report, kept in the JSON")
    parser.add_argument("--doctor-status", type=int, help="the doctor's exit code")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="config override, e.g. train.batch_size=512")
    parser.add_argument("--tta-rows", type=int, nargs=2, default=(37_800, 4_200),
                        metavar=("TRAIN", "HELD_OUT"), help="time to accuracy of "
                        "configs/fast.yaml beside the keras-io example: rows trained on and "
                        "held out (Fashion-MNIST when installed, else the generated digits)")
    parser.add_argument("--skip-tta", action="store_true", help="no time-to-accuracy runs")
    args = parser.parse_args()
    if args.epochs < 2 or min(args.rows) < 100:
        parser.error("--epochs must be at least 2 (the first traces and compiles), --rows at "
                     "least 100 each")
    return args


def variants(rt) -> list[tuple[str, object]]:
    """(label, runtime settings): as configured, then with XLA and mixed precision each
    turned off and both off; a combination already listed is not timed twice."""
    wanted = [("as configured", rt),
              ("XLA off", replace(rt, jit_compile=False)),
              ("mixed precision off", replace(rt, mixed_precision="float32")),
              ("both off", replace(rt, jit_compile=False, mixed_precision="float32"))]
    seen, unique = set(), []
    for label, runtime in wanted:
        key = (runtime.jit_compile, runtime.mixed_precision)
        if key not in seen:
            seen.add(key)
            unique.append((label, runtime))
    return unique


def describe_gpus() -> list[str]:
    """The GPUs' names as the driver reports them, or none."""
    from job.doctor import nvidia
    driver, _ = nvidia.read_driver()
    return [gpu.name for gpu in driver.gpus] if driver else []


def estimate_for(gpus: list[str]) -> tuple[str, tuple[float, float]] | None:
    """The on-paper estimate for this machine's GPU, if there is one for its kind."""
    for kind, bounds in ON_PAPER.items():
        if any(kind in name for name in gpus):
            return kind, bounds
    return None


def print_table(result: dict) -> None:
    machine = result["machine"]
    gpus = ", ".join(machine["gpus"]) or "none (CPU only: these are CPU numbers)"
    print(f"\nGPU acceptance on {gpus}; {machine['cpus']} CPUs; TensorFlow "
          f"{machine['tensorflow']}; {result['rows'][0]:,} training rows, config "
          f"{result['config']}")
    doctor = result.get("doctor")
    if doctor:
        verdict = "passed" if doctor["exit_code"] == 0 else f"FAILED (exit {doctor['exit_code']})"
        print(f"doctor: {verdict}")
    print(f"input pipeline alone: {result['pipeline']['images_per_s']:,.0f} images/s")
    print(f"\n{'model':<10} {'variant':<20} {'precision':<15} {'XLA':<4} {'s/epoch':>8} "
          f"{'images/s':>9}  on paper (default CNN, s/epoch)")
    paper = "  ".join(f"{kind} {low:g}-{high:g}" for kind, (low, high) in ON_PAPER.items())
    for row in result["models"]:
        note = paper if row["model"].startswith("cnn") else ""
        print(f"{row['model']:<10} {row['variant']:<20} {row['mixed_precision']:<15} "
              f"{'on' if row['jit_compile'] else 'off':<4} {row['seconds_per_epoch']:>8.2f} "
              f"{row['images_per_s']:>9.0f}  {note}")
    from job.outputs.plots import style_label
    from job.styles import STYLES
    for style in (s for s in STYLES if s != "tf"):
        for label, families in result.get(f"{style}_over_tf", {}).items():
            for arch, ratio in families.items():
                print(f"{style_label(style)}/TF seconds per epoch, {arch}, {label}: "
                      f"{ratio['median']:.3f}")
    estimate = result.get("estimate")
    if estimate:
        print(f"on paper for a {estimate['gpu']}: {estimate['low']:g}-{estimate['high']:g} s "
              "per default-CNN epoch")


def time_to_accuracy(rows: tuple[int, int]) -> dict:
    """configs/fast.yaml (in the TF loop, and in torch with the training set on the GPU)
    and the keras-io example, from process start to a written submission, and the held-out
    accuracy each reaches (scripts/time_to_accuracy.py): on a GPU the order of the styles
    may not be the CPU's."""
    import time_to_accuracy as tta
    kind = "fashion" if (tta.FASHION / "train-images-idx3-ubyte.gz").is_file() else "digits"
    print(f"\n--- time to accuracy ({kind})", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        return tta.measure(kind, tuple(rows), ["keras-io", "fast", "fast-torch"], Path(tmp), [])


def main() -> None:
    args = parse_args()
    from job.config import load_config
    from job.data import arrays as data
    from job.outputs.manifest import installed
    # Measured on whatever is there: a GPU-less machine still gets its (CPU) table. The
    # real job trains each variant, a worker per model, one model at a time.
    overrides = [*args.overrides, "runtime.require_gpu=false", "runtime.parallel=1"]
    config = load_config(args.config, overrides)
    gpus = describe_gpus()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        folder = workdir / "data"
        print(f"generating {args.rows[0]:,} + {args.rows[1]:,} Kaggle-sized rows", flush=True)
        make_kaggle_sized(folder, *args.rows)
        arrays = data.load_arrays(folder)
        fit_rows = len(data.split_validation(arrays.train_images, arrays.train_labels,
                                             config.data.val_fraction, config.data.seed)[0])
        feeds = measure_feeding(folder, args.config, overrides, 3, config.train.augment.active)
        rows, by_style = [], {}   # keras_over_tf → variant → family → ratio
        for number, (label, variant) in enumerate(variants(config.runtime), start=1):
            print(f"--- {label}: {variant.mixed_precision}, XLA "
                  f"{'on' if variant.jit_compile else 'off'}", flush=True)
            run = run_job(f"variant{number}", folder, args.config,
                          [*overrides, f"runtime.mixed_precision={variant.mixed_precision}",
                           f"runtime.jit_compile={str(variant.jit_compile).lower()}"],
                          list(config.models), args.epochs, workdir, probe_memory=False)
            measured = model_rows([run], config.models, fit_rows)
            for row in measured:
                row.update(variant=label, mixed_precision=variant.mixed_precision,
                           jit_compile=variant.jit_compile)
            rows += measured
            for key, families in over_tf(measured).items():
                by_style.setdefault(key, {})[label] = families
        result = {"machine": {"gpus": gpus, "cpus": os.cpu_count(),
                              "python": platform.python_version(),
                              "tensorflow": installed("tensorflow"), "torch": installed("torch")},
                  "config": str(args.config), "overrides": args.overrides,
                  "rows": [len(arrays.train_images), len(arrays.test_images)],
                  "epochs": args.epochs, "batch_size": config.train.batch_size,
                  "pipeline": {"images_per_s": feeds["tf"]["images_per_s"], "styles": feeds},
                  "models": rows, **by_style,
                  "on_paper": {k: list(v) for k, v in ON_PAPER.items()}}
    estimate = estimate_for(gpus)
    if estimate:
        result["estimate"] = {"gpu": estimate[0], "low": estimate[1][0], "high": estimate[1][1]}
    if args.doctor_status is not None:
        lines = (args.doctor_output.read_text().splitlines()
                 if args.doctor_output and args.doctor_output.is_file() else [])
        result["doctor"] = {"exit_code": args.doctor_status, "lines": lines}
    print_table(result)
    if not args.skip_tta:
        result["time_to_accuracy"] = time_to_accuracy(args.tta_rows)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
