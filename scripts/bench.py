"""Measure the job on Kaggle-sized data as users run it: CSV ingest, each style's feeding
alone, the cost of starting a worker per framework, and `python -m job train` itself (each
model in a worker process of its own that loads only its framework) for seconds per epoch,
each style's ratio to TF, and the peak memory of the parent and of every worker. A
measurement, not a test: it prints tables and writes the numbers to JSON; nothing asserts
on them.

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
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
PROBES = REPO / "scripts" / "bench_probe"   # probe.py, and the sitecustomize the job runs with
sys.path.insert(0, str(REPO))

# What is timed, unless --set models=[...]: the FFN and the CNN in every style; the LSTMs
# stay out (several times slower).
MODELS = ("ffn-tf", "ffn-keras", "ffn-torch", "cnn-tf", "cnn-keras", "cnn-torch")
EPOCHS = {"ffn": 8, "cnn": 3, "lstm": 3}   # per model and round, unless --epochs
THREAD_ENV = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
              "TF_NUM_INTEROP_THREADS")
START_STYLES = ("tf", "keras", "torch")     # the worker start timed for each (tf and keras:
                                           # TensorFlow; keras adds the keras package)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs/default.yaml")
    parser.add_argument("--epochs", type=int,
                        help="epochs per model and round, >= 2 (default: 8 for the FFNs, whose "
                             "~1 s epochs the machine's noise moves most, 3 for the others)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="times the job is run on every model (one `python -m job train` "
                             "per round and epoch count; the machine's slow spells then fall "
                             "on every style)")
    parser.add_argument("--starts", type=int, default=3,
                        help="worker starts timed per style (the median is reported)")
    parser.add_argument("--rows", type=int, nargs=2, default=(42_000, 28_000),
                        metavar=("TRAIN", "TEST"), help="data size (default: the competition's)")
    parser.add_argument("--out", type=Path, default=Path("bench.json"))
    parser.add_argument("--workdir", type=Path,
                        help="keep the generated data, the runs and their logs here")
    parser.add_argument("--skip-memory", action="store_true",
                        help="run the job without the memory probe (no peak RSS figures)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="config override for the timed models, e.g. train.batch_size=256 "
                             f"or models=[ffn-tf,ffn-torch] (default: {', '.join(MODELS)})")
    args = parser.parse_args(argv)
    if ((args.epochs is not None and args.epochs < 2) or args.rounds < 1 or args.starts < 1
            or min(args.rows) < 100):
        parser.error("--epochs must be at least 2, --rounds and --starts at least 1, --rows "
                     "at least 100 each")
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


# --- processes: the environment they run in, the probes -----------------------------------

def job_env(peaks: Path | None = None) -> dict[str, str]:
    """The environment of a process the bench starts: the repository importable, no Kaggle
    credentials (the data is local); with `peaks`, the memory probe (bench_probe/
    sitecustomize.py) in it and in every process it starts, writing into that folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE")}
    paths = [str(REPO), *filter(None, [env.get("PYTHONPATH")])]
    if peaks is not None:
        paths.insert(0, str(PROBES))
        env["BENCH_PEAKS_DIR"] = str(peaks)
        env["BENCH_PEAKS_SAMPLE_CHILD_OF"] = str(os.getpid())   # the job's parent samples
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def worker_env() -> dict[str, str]:
    """What the job's parent adds to a worker's environment when it trains one model at a
    time: its GPU, or on a CPU none (CUDA_VISIBLE_DEVICES empty)."""
    from job.system.devices import visible_gpus
    from job.workers.parent import slots_for
    return slots_for(visible_gpus(), 1, whole_machine=False)[0].env


def probe(args: list[str], env: dict[str, str]) -> tuple[float, dict]:
    """Runs bench_probe/probe.py ARGS; its spawn time (time.monotonic) and its record."""
    command = [sys.executable, str(PROBES / "probe.py"), *args]
    spawned = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    lines = [line for line in result.stdout.splitlines() if line.startswith("BENCH ")]
    if result.returncode != 0 or not lines:
        raise SystemExit(f"bench probe {' '.join(args[:2])} failed (exit code "
                         f"{result.returncode}):\n{result.stderr[-3000:]}")
    return spawned, json.loads(lines[-1].removeprefix("BENCH "))


def measure_feeding(folder: Path, config_path: Path, overrides: list[str], epochs: int,
                    augmented: bool) -> dict:
    """Each feed alone (gather, cast, augmentation, batching) drained as fast as it goes, in a
    process with its framework only: the TF and Keras styles' tf.data pipeline, the torch
    style's on-device gathers (on the CPU here): how many images per second it can supply."""
    feeds = {"augmented": augmented, "epochs": epochs}
    for style in ("tf", "torch"):
        _, record = probe(["feeding", style, str(folder), str(config_path.resolve()),
                           json.dumps(overrides), str(epochs)], job_env())
        feeds[style] = {k: record[k] for k in ("seconds_per_epoch", "images_per_s",
                                               "epoch_seconds", "frameworks")}
    return feeds


def start_sample(spawned: float, record: dict) -> dict:
    """One worker start, split: the interpreter's own start (spawn to the probe's first
    line), the job's imports, the style's loop module (its framework), its `setup`."""
    return {"interpreter_s": record["main"] - spawned,
            "job_imports_s": record["job_imported"] - record["main"],
            "framework_import_s": record["framework_imported"] - record["job_imported"],
            "setup_s": record["set_up"] - record["framework_imported"],
            "total_s": record["set_up"] - spawned, "frameworks": record["frameworks"]}


START_PARTS = ("interpreter_s", "job_imports_s", "framework_import_s", "setup_s", "total_s")


def start_costs(samples: dict[str, list[dict]]) -> dict[str, dict]:
    """Per style, the median of its starts for each part and for the total (the parts'
    medians need not add up to the total's); every start's total; what it loaded."""
    from job.styles import STYLES
    return {style: {"framework": STYLES[style].framework, "starts": len(runs),
                    **{part: statistics.median(r[part] for r in runs) for part in START_PARTS},
                    "totals_s": [r["total_s"] for r in runs],
                    "frameworks": sorted({f for r in runs for f in r["frameworks"]})}
            for style, runs in samples.items()}


def measure_starts(config_path: Path, overrides: list[str], starts: int) -> dict[str, dict]:
    """Time from spawning a process to its style's framework imported and its devices set
    up, as a worker does before it trains (job.workers.child: the job's imports, the
    loop module, `setup`), `starts` times per style, the styles taking turns."""
    env = {**job_env(), **worker_env()}
    samples: dict[str, list[dict]] = {style: [] for style in START_STYLES}
    for _ in range(starts):
        for style in START_STYLES:
            spawned, record = probe(["start", style, str(config_path.resolve()),
                                     json.dumps(overrides)], env)
            samples[style].append(start_sample(spawned, record))
    return start_costs(samples)


# --- the job itself -----------------------------------------------------------------------

def epoch_groups(models: tuple[str, ...], epochs: int | None) -> list[tuple[int, list[str]]]:
    """The models that train for the same number of epochs, which one job run trains
    together, in the order the first of each comes in `models`."""
    groups: dict[int, list[str]] = {}
    for name in models:
        groups.setdefault(epochs or EPOCHS[name.split("-")[0]], []).append(name)
    return list(groups.items())


def run_job(label: str, folder: Path, config_path: Path, overrides: list[str],
            models: list[str], epochs: int, workdir: Path, probe_memory: bool) -> dict:
    """One `python -m job train` of `models` for `epochs` epochs each (early stopping off)
    on the generated data; what its workers wrote (models/<name>.json), its manifest's
    process record and, with the probe, the peak memory of the parent and every worker."""
    runs_dir, peaks = workdir / "runs" / label, workdir / "peaks" / label
    sets = [*overrides, f"models=[{','.join(models)}]", f"train.epochs={epochs}",
            f"train.log_every={epochs}", f"train.early_stopping.patience={epochs}",
            "train.early_stopping.restore_best_weights=false", "data.source=local",
            f"data.dir={folder}", f"output.runs_dir={runs_dir}"]
    command = [sys.executable, "-m", "job", "train", "--config", str(config_path.resolve()),
               *(arg for item in sets for arg in ("--set", item))]
    log = workdir / "logs" / f"{label}.stderr"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"\n{label}: python -m job train ({', '.join(models)}; {epochs} epochs)", flush=True)
    busy, own = machine_busy_s(), children_cpu_s()
    begun = time.perf_counter()
    with open(log, "w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                   env=job_env(peaks if probe_memory else None), cwd=workdir)
        for line in process.stdout:
            print(f"  {line}", end="", flush=True)
        code = process.wait()
    wall = time.perf_counter() - begun
    others = others_share(machine_busy_s() - busy, children_cpu_s() - own, wall,
                          os.cpu_count() or 1)
    if code != 0:
        raise SystemExit(f"{label}: python -m job train failed (exit code {code}); its "
                         f"stderr ({log}) ends:\n{log.read_text()[-3000:]}")
    run = next(p for p in runs_dir.iterdir() if p.is_dir() and not p.is_symlink())
    manifest = json.loads((run / "manifest.json").read_text())
    probed = read_peaks(peaks)
    parent = {**manifest.get("process", {}), "pid": process.pid,
              **memory_of(probed.get(process.pid))}
    workers = {}
    for name in models:
        row = json.loads((run / "models" / f"{name}.json").read_text())
        pid = row.get("process", {}).get("pid")
        workers[name] = {"epoch_seconds": [h["seconds"] for h in row["history"]],
                         "val_accuracy": row["val_accuracy"], "val_loss": row["val_loss"],
                         "process": row.get("process", {}), **memory_of(probed.get(pid))}
    return {"label": label, "epochs": epochs, "wall_s": wall, "others_cpu_share": others,
            "run": str(run), "parent": parent, "workers": workers}


def machine_busy_s() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (all CPUs; steal counts: a
    hypervisor's other guests are other processes too); None where /proc/stat is missing."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    """CPU seconds of this process's ended children and theirs (the job and its workers)."""
    import resource
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def others_share(machine_busy: float | None, own: float, wall: float, cpus: int) -> float | None:
    """The share of the machine's CPU time that processes other than the benchmarked job
    took while it ran (its timings are as clean as this is small); None where unknown."""
    if machine_busy is None or wall <= 0:
        return None
    return max(0.0, machine_busy - own) / (wall * cpus)


def read_peaks(folder: Path) -> dict[int, dict]:
    """The probe's records, by process id."""
    if not folder.is_dir():
        return {}
    records = (json.loads(p.read_text()) for p in folder.glob("*.json"))
    return {r["pid"]: r for r in records}


def memory_of(record: dict | None) -> dict:
    """A probe record as megabytes: peak RSS and, where sampled, peak anonymous memory."""
    if record is None:
        return {}
    anon = record.get("peak_anon_kb")
    return {"peak_rss_mb": record["hwm_kb"] / 1024,
            **({"peak_anonymous_mb": anon / 1024} if anon is not None else {})}


def model_rows(runs: list[dict], models: tuple[str, ...], fit_rows: int) -> list[dict]:
    """Per model, over every run that trained it (one per round): seconds per epoch is the
    median of all rounds' epochs after each round's first (which traces and compiles), a
    round's seconds the median of that round's; its worker's peak RSS the highest."""
    rows = {name: {"model": name, "epochs": 0, "round_seconds": [], "epoch_seconds": [],
                   "first_epoch_s": [], "worker_peak_rss_mb": [], "frameworks": []}
            for name in models}
    for run in runs:
        for name, worker in run["workers"].items():
            row, seconds = rows[name], worker["epoch_seconds"]
            row["epochs"] = len(seconds)
            row["epoch_seconds"] += seconds[1:]
            row["round_seconds"].append(statistics.median(seconds[1:]))
            row["first_epoch_s"].append(seconds[0])
            # Every round trains from the same seed: the scores are the same each time.
            row.update(val_accuracy=worker["val_accuracy"], val_loss=worker["val_loss"])
            if "peak_rss_mb" in worker:
                row["worker_peak_rss_mb"].append(worker["peak_rss_mb"])
            row["frameworks"] = sorted({*row["frameworks"],
                                        *worker["process"].get("frameworks", [])})
    for row in rows.values():
        row["seconds_per_epoch"] = statistics.median(row["epoch_seconds"])
        row["images_per_s"] = fit_rows / row["seconds_per_epoch"]
        peaks = row.pop("worker_peak_rss_mb")
        row["peak_rss_mb"] = max(peaks) if peaks else None
    return list(rows.values())


def parent_memory(runs: list[dict]) -> dict:
    """The job's parent process over every run: the highest peak RSS and anonymous peak,
    and each run's, with what it loaded (one framework per process: nothing)."""
    parents = [run["parent"] for run in runs]
    probed = [p for p in parents if "peak_rss_mb" in p]
    return {"peak_rss_mb": max((p["peak_rss_mb"] for p in probed), default=None),
            "peak_anonymous_mb": max((p["peak_anonymous_mb"] for p in probed
                                      if "peak_anonymous_mb" in p), default=None),
            "runs_peak_rss_mb": [p.get("peak_rss_mb") for p in parents],
            "frameworks": sorted({f for p in parents for f in p.get("frameworks", [])})}


# --- ratios and tables --------------------------------------------------------------------

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


def start_table(costs: dict[str, dict]) -> list[str]:
    """Each style's worker start, median seconds per part, and what the process loaded."""
    lines = [f"{'style':<6} {'framework':<11} {'python':>7} {'job':>6} {'import':>7} "
             f"{'setup':>6} {'total':>7}  loaded"]
    for style, c in costs.items():
        lines.append(f"{style:<6} {c['framework']:<11} {c['interpreter_s']:>7.2f} "
                     f"{c['job_imports_s']:>6.2f} {c['framework_import_s']:>7.2f} "
                     f"{c['setup_s']:>6.2f} {c['total_s']:>7.2f}  "
                     f"{','.join(c['frameworks']) or '-'}")
    return lines


def worker_table(result: dict) -> list[str]:
    """Per model's worker: its first epoch (tracing, compiling) in each round, its peak RSS
    (the highest of the rounds) and the frameworks it loaded."""
    lines = [f"{'model':<10} {'first epoch s (rounds)':<24} {'peak RSS MB':>11}  loaded"]
    for r in result["models"]:
        first = " ".join(f"{s:.2f}" for s in r["first_epoch_s"])
        peak = f"{r['peak_rss_mb']:.0f}" if r.get("peak_rss_mb") is not None else "-"
        lines.append(f"{r['model']:<10} {first:<24} {peak:>11}  "
                     f"{','.join(r['frameworks']) or '-'}")
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
    feeds = result["pipeline"]
    kind = "augmented" if feeds["augmented"] else "no augmentation"
    print(f"\neach style's feed alone ({kind}; median of {feeds['epochs']} epochs but the first)")
    for style in ("tf", "torch"):
        print(f"  {style:<6} {feeds[style]['seconds_per_epoch']:.3f} s/epoch, "
              f"{feeds[style]['images_per_s']:.0f} images/s")
    costs = result["worker_start"]
    starts = next(iter(costs.values()))["starts"] if costs else 0
    print(f"\nstarting a worker: spawn to framework imported and devices set up, seconds "
          f"(median of {starts} starts)")
    print("\n".join(f"  {line}" for line in start_table(costs)))
    print("\nthe styles side by side, each model in its own worker (a fixed number of epochs "
          "each, early stopping off)")
    print("\n".join(style_table(result)))
    print(f"(seconds per epoch: median over {result['rounds']} rounds of each round's epochs "
          f"but the first; the rounds' ratios are each round's medians divided)")
    shares = [run["others_cpu_share"] for run in result["runs"]
              if run.get("others_cpu_share") is not None]
    if shares:
        print(f"(other processes took {min(shares):.0%}-{max(shares):.0%} of the machine's "
              f"{result['machine']['cpus']} CPUs during the job runs: "
              + ", ".join(f"{run['label']} {run['others_cpu_share']:.0%}"
                          for run in result["runs"]) + ")")
    print("\nworkers")
    print("\n".join(f"  {line}" for line in worker_table(result)))
    parent = result.get("memory", {}).get("parent")
    if parent and parent["peak_rss_mb"] is not None:
        anon = (f", of which anonymous at most {parent['peak_anonymous_mb']:.0f} MB"
                if parent["peak_anonymous_mb"] is not None else "")
        print(f"\nparent process (python -m job train; loaded "
              f"{','.join(parent['frameworks']) or 'no framework'}): peak RSS "
              f"{parent['peak_rss_mb']:.0f} MB{anon} (the highest of {len(result['runs'])} runs)")


def main() -> None:
    args = parse_args()
    from job.config import load_config
    from job.data import arrays as data
    # The bench's models and one model at a time first: the user's --set replaces them.
    overrides = [f"models=[{','.join(MODELS)}]", "runtime.parallel=1", *args.overrides]
    config = load_config(args.config, overrides)   # checked before any work
    with tempfile.TemporaryDirectory() as tmp:
        workdir = (args.workdir or Path(tmp)).resolve()   # the job runs in it
        folder = workdir / "data"
        if not (folder / "train.csv").is_file():
            print(f"generating Kaggle-sized data in {folder}", flush=True)
            make_kaggle_sized(folder, *args.rows)
        ingest = measure_ingest(folder)
        arrays = data.load_arrays(folder)   # cached by now
        fit_rows = len(data.split_validation(arrays.train_images, arrays.train_labels,
                                             config.data.val_fraction, config.data.seed)[0])
        result = {"machine": {"cpus": os.cpu_count(), "cpu": cpu_model(),
                              "python": platform.python_version(),
                              # what sets the frameworks' threads, where the user set it
                              "env": {k: os.environ[k] for k in THREAD_ENV if k in os.environ}},
                  "config": str(args.config), "overrides": args.overrides,
                  # as parsed: a kept --workdir may hold another size than --rows
                  "rows": [len(arrays.train_images), len(arrays.test_images)],
                  "fit_rows": fit_rows, "epochs": args.epochs, "rounds": args.rounds,
                  "batch_size": config.train.batch_size,
                  "steps_per_execution": config.train.steps_per_execution,
                  "ingest": ingest}
        print("timing each style's feed alone", flush=True)
        result["pipeline"] = measure_feeding(folder, args.config, overrides, args.epochs or 3,
                                             config.train.augment.active)
        print(f"timing {args.starts} worker starts per style", flush=True)
        result["worker_start"] = measure_starts(args.config, overrides, args.starts)
        runs = [run_job(f"round{round_ + 1}-{epochs}ep", folder, args.config, overrides,
                        models, epochs, workdir, not args.skip_memory)
                for round_ in range(args.rounds)
                for epochs, models in epoch_groups(config.models, args.epochs)]
        result["runs"] = runs
        result["models"] = model_rows(runs, config.models, fit_rows)
        result.update(over_tf(result["models"]))   # keras_over_tf, torch_over_tf
        if not args.skip_memory:
            result["memory"] = {"parent": parent_memory(runs),
                                "workers": {r["model"]: r["peak_rss_mb"]
                                            for r in result["models"]}}
    print_table(result)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")


def cpu_model() -> str | None:
    """The CPU's name as lscpu gives it (Linux), for the record."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


if __name__ == "__main__":
    main()
