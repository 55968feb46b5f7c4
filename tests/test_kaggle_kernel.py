"""The kernel's names, metadata and status words, as Kaggle and its client read them."""

import json

import pytest
from kaggle.api.kaggle_api_extended import slugify

from job.config import load_config
from job.errors import ConfigError
from job.kaggle import kernel
from job.kaggle.kernel import Accelerator, Target


@pytest.mark.parametrize("config_name, slug", [
    ("smoke", "digit-job-smoke"), ("My_Config.v2", "digit-job-my-config-v2")])
def test_default_slug_and_a_title_the_client_turns_back_into_it(tmp_path, config_name, slug):
    path = tmp_path / f"{config_name}.yaml"
    path.write_text("train:\n  epochs: 1\n")
    target = Target("alice", kernel.default_slug(load_config(path)))
    assert target.slug == slug and slugify(target.title) == slug
    assert (target.kernel, target.dataset) == (f"alice/{slug}", f"alice/{slug}-code")


@pytest.mark.parametrize("bad", ["ab", "Upper-Case", "-dash-first", "x" * 46, "sp ace"])
def test_a_slug_kaggle_would_refuse_fails_before_anything_is_sent(bad):
    with pytest.raises(ConfigError, match="--slug"):
        kernel.check_slug(bad)


def test_follow_takes_owner_slug_and_a_version_number():
    assert kernel.parse_ref(" alice/digit-job-smoke ") == Target("alice", "digit-job-smoke")
    pinned = kernel.parse_ref("alice/digit-job-smoke/12")
    assert pinned == Target("alice", "digit-job-smoke", 12)
    assert pinned.ref == "alice/digit-job-smoke/12" and pinned.kernel == "alice/digit-job-smoke"
    for bad in ("digit-job-smoke", "alice/digit-job-smoke/v3", "alice/digit-job-smoke/0",
                "https://kaggle.com/code/a/b"):
        with pytest.raises(ConfigError, match="OWNER/KERNEL-SLUG"):
            kernel.parse_ref(bad)


@pytest.mark.parametrize("accelerator, shape", [
    (Accelerator.T4X2, "NvidiaTeslaT4"), (Accelerator.P100, "NvidiaTeslaP100"),
    (Accelerator.NONE, None)])
def test_metadata_asks_for_the_accelerator_by_machine_shape(accelerator, shape):
    meta = kernel.metadata(Target("alice", "digit-job-smoke"), accelerator, "digit-recognizer")
    assert meta.get("machine_shape") == shape and meta["enable_gpu"] is (shape is not None)
    assert {k: meta[k] for k in ("id", "code_file", "kernel_type", "language", "is_private",
                                 "enable_internet", "competition_sources", "dataset_sources")} == {
        "id": "alice/digit-job-smoke", "code_file": kernel.SCRIPT, "kernel_type": "script",
        "language": "python", "is_private": True, "enable_internet": True,
        "competition_sources": ["digit-recognizer"],
        "dataset_sources": ["alice/digit-job-smoke-code"]}


def test_write_kernel_leaves_what_kernels_push_reads(tmp_path):
    meta = kernel.write_kernel(tmp_path, Target("alice", "digit-job-smoke"), Accelerator.T4X2,
                               "digit-recognizer", {"kernel": "alice/digit-job-smoke"})
    assert json.loads((tmp_path / kernel.METADATA).read_text()) == meta
    assert "'kernel': 'alice/digit-job-smoke'" in (tmp_path / kernel.SCRIPT).read_text()


def test_a_kaggle_log_becomes_its_lines_and_plain_text_stays_as_it_is():
    entries = [{"stream_name": "stdout", "time": 0.5, "data": "one\n"},
               {"stream_name": "stderr", "time": 0.7, "data": "two\n"}]
    assert kernel.log_text(json.dumps(entries)) == "one\ntwo\n"
    assert kernel.log_text("plain\nlog\n") == "plain\nlog\n"
    assert kernel.log_text("[1, 2]") == "[1, 2]"


@pytest.mark.parametrize("failure, limit", [
    ("Your notebook tried to run longer than the maximum run time of 12 hours", True),
    ("Session timed out", True), ("Kernel exceeded the time limit", True),
    ("Process exited with code 1", False), ("", False)])
def test_a_stop_at_the_time_limit_is_told_apart(failure, limit):
    assert kernel.timed_out(failure) is limit
