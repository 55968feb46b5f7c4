"""The doctor's run: every check in order, each line logged as soon as it is found.

This process reads the driver and the files; each framework is looked at in a probe
process of its own (job.doctor.probe), as it trains, so this one imports neither."""

from __future__ import annotations

from typing import Callable

from job.config import Config, to_dict
from job.doctor import checks, libraries, nvidia, probe
from job.doctor.findings import PROBLEM, Finding
from job.doctor.report import Report, Torch


def examine(config: Config, log: Callable[[str], None]) -> list[Finding]:
    """Run every check, logging each line as it is found; return the findings."""
    findings: list[Finding] = []

    def say(*found: Finding | None) -> None:
        for finding in found:
            if finding is not None:
                findings.append(finding)
                log(finding.line())

    rt = config.runtime
    driver, why = nvidia.read_driver()
    say(checks.check_driver(driver, why, rt.require_gpu))
    say(checks.check_cuda_runtime(driver, libraries.installed_version(libraries.RUNTIME_WHEEL),
                                  rt.require_gpu))
    say(*checks.check_gpus(driver))
    request = {"config": to_dict(config), "driver_gpus": len(driver.gpus) if driver else 0,
               "variants": [list(v[:3]) for v in checks.step_variants(config)]}

    tf = probe.run("tensorflow", request)
    say(checks.check_framework(tf, config))
    if usable(tf):
        say(*tensorflow_findings(tf, driver, config))
    if tf.installed:   # a failed probe's too: what it had mapped by then
        say(checks.check_libraries(tf))

    torch = probe.run("torch", request)
    say(checks.check_framework(torch, config))
    if usable(torch):
        wanted = bool(checks.models_of("torch", config.trained_models))
        say(checks.check_torch(Torch.of(torch), driver, len(tf.gpus), wanted))
        say(*(checks.check_step(t, bool(torch.gpus), wanted, config.train.batch_size)
              for t in torch.timings))
    if torch.installed:
        say(checks.check_libraries(torch))

    step = checks.configured_variant(config, tf.timings) if usable(tf) else None
    say(checks.check_bound(tf.pipeline_images_per_s, step))
    return findings


def usable(report: Report) -> bool:
    return report.installed and not report.error


def tensorflow_findings(tf: Report, driver: nvidia.Driver | None,
                        config: Config) -> list[Finding]:
    """TensorFlow's lines: versions, the GPUs it registered, XLA's files, its timed steps."""
    rt = config.runtime
    has_gpu = bool(tf.gpus)
    found = [checks.check_versions(tf, rt.require_gpu),
             checks.check_registered(len(tf.gpus), driver, tf.loaded, tf.search_dirs,
                                     rt.require_gpu),
             checks.check_xla_files(has_gpu, libraries.xla_data_dir(), libraries.nvcc_dir(),
                                    rt.jit_compile)]
    for (_, _, _, wanted), timing in zip(checks.step_variants(config), tf.timings):
        found.append(checks.check_step(timing, has_gpu, wanted, config.train.batch_size))
    return found


def problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status == PROBLEM]
