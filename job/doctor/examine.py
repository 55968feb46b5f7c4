"""The doctor's run: every check in order, each line logged as soon as it is found."""

from __future__ import annotations

from typing import Callable

from job.config import Config
from job.doctor import checks, libraries, nvidia, timing
from job.doctor.findings import PROBLEM, Finding


def examine(config: Config, log: Callable[[str], None]) -> list[Finding]:
    """Run every check, logging each line as it is found; return the findings."""
    from job.system.runtime import load_triton_first
    load_triton_first()   # as a training process does, before TensorFlow
    import tensorflow as tf

    from job.outputs.manifest import versions

    findings: list[Finding] = []

    def say(*found: Finding) -> None:
        for finding in found:
            findings.append(finding)
            log(finding.line())

    rt = config.runtime
    say(checks.check_versions(versions(), dict(tf.sysconfig.get_build_info()), rt.require_gpu))
    driver, why = nvidia.read_driver()
    say(checks.check_driver(driver, why, rt.require_gpu))
    say(checks.check_cuda_runtime(driver, libraries.installed_version(libraries.RUNTIME_WHEEL),
                                  rt.require_gpu))
    say(*checks.check_gpus(driver))
    tf_gpus = len(tf.config.list_physical_devices("GPU"))
    dirs = libraries.search_dirs()
    loaded = libraries.probe(dirs=dirs) if driver and tf_gpus < len(driver.gpus) else []
    say(checks.check_registered(tf_gpus, driver, loaded, dirs, rt.require_gpu))
    say(checks.check_xla_files(tf_gpus > 0, libraries.xla_data_dir(), libraries.nvcc_dir(),
                               rt.jit_compile))
    device = "/GPU:0" if tf_gpus else "/CPU:0"
    steps = 10 if tf_gpus else 3   # a CPU step of the default CNN takes ~0.4 s
    batch = config.train.batch_size
    timings = []
    for name, jit, dtype, wanted in checks.step_variants(config):
        timings.append(timing.time_step(config.arch.cnn, batch, device, name, jit, dtype, steps))
        say(checks.check_step(timings[-1], tf_gpus > 0, wanted, batch))
    wants_torch = any(m.endswith("-torch") for m in config.trained_models)
    torch = libraries.torch_info()
    say(checks.check_torch(torch, driver, tf_gpus, wants_torch))
    if torch is not None:
        step = timing.time_torch_step(config.arch.cnn, batch, bool(torch.gpus), steps)
        say(checks.check_step(step, tf_gpus > 0, wants_torch, batch))
    say(checks.check_bound(timing.time_pipeline(config),
                           checks.configured_variant(config, timings)))
    return findings


def problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status == PROBLEM]
