"""`make bench`'s memory probe, in every Python process of a benchmarked `python -m job train`.

scripts/bench.py puts this folder first on PYTHONPATH of the job it starts, which passes
its environment on to each worker, so Python imports this file at the start of the parent
and of every worker. Inert unless BENCH_PEAKS_DIR is set. At exit each process writes
`<BENCH_PEAKS_DIR>/<pid>.json`: its VmHWM (peak resident set, exact: the kernel keeps it;
not rusage, whose ru_maxrss a child inherits from its parent through fork and exec) and
which frameworks it loaded. The process whose parent is BENCH_PEAKS_SAMPLE_CHILD_OF (the
job's parent process) also samples its anonymous memory every 20 ms (a worker does not: a
thread waking in a timed loop is what a benchmark must not add).
"""

import os

if os.environ.get("BENCH_PEAKS_DIR"):
    import atexit
    import json
    import sys
    import threading
    import time

    _peak_anon = [0]

    def _status() -> dict:
        with open("/proc/self/status") as f:
            lines = f.read().splitlines()
        return {line.split(":")[0]: int(line.split()[1]) for line in lines
                if line.endswith(" kB")}

    def _sample() -> None:
        while True:
            _peak_anon[0] = max(_peak_anon[0], _status().get("RssAnon", 0))
            time.sleep(0.02)

    _sampling = str(os.getppid()) == os.environ.get("BENCH_PEAKS_SAMPLE_CHILD_OF")
    if _sampling:
        threading.Thread(target=_sample, daemon=True, name="bench-peak-probe").start()

    def _write_peak() -> None:
        now = _status()
        record = {"pid": os.getpid(), "ppid": os.getppid(), "argv": sys.argv,
                  "hwm_kb": now.get("VmHWM"),
                  "peak_anon_kb": max(_peak_anon[0], now.get("RssAnon", 0)) if _sampling
                  else None,
                  "frameworks": sorted(name for name in ("tensorflow", "keras", "torch")
                                       if name in sys.modules)}
        folder = os.environ["BENCH_PEAKS_DIR"]
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{os.getpid()}.json"), "w") as f:
            json.dump(record, f)

    atexit.register(_write_peak)

# This folder shadows any other sitecustomize (a distribution's Python may ship one): run it.
try:
    import importlib.machinery
    import importlib.util
    import sys as _sys

    _here = os.path.dirname(os.path.abspath(__file__))
    _other = importlib.machinery.PathFinder.find_spec(
        "sitecustomize", [p for p in _sys.path if os.path.abspath(p or ".") != _here])
    if _other is not None and _other.loader is not None:
        _other.loader.exec_module(importlib.util.module_from_spec(_other))
except Exception:   # a probe must never stop the job it measures
    pass
