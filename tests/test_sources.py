"""`data.source: auto` picks Kaggle with credentials, local CSVs, else the sample."""

from pathlib import Path

import pytest

from job.config import Config, DataConfig
from job.data.sources import choose_source, find_credentials


def config(tmp_path: Path, source: str = "auto") -> Config:
    return Config(data=DataConfig(source=source, dir=str(tmp_path / "comp"),
                                  sample_dir=str(tmp_path / "sample")))


@pytest.mark.parametrize("env, files, expected", [
    ({}, [], None),
    ({"KAGGLE_API_TOKEN": "t"}, [], "KAGGLE_API_TOKEN"),
    ({"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "k"}, [], "KAGGLE_USERNAME/KAGGLE_KEY"),
    ({"KAGGLE_USERNAME": "u"}, [], None),
    ({}, [".kaggle/kaggle.json"], ".kaggle/kaggle.json"),
    ({}, [".config/kaggle/kaggle.json"], ".config/kaggle/kaggle.json"),
    ({}, [".kaggle/access_token"], ".kaggle/access_token"),
    ({"KAGGLE_CONFIG_DIR": "{home}/cfg"}, ["cfg/kaggle.json"], "cfg/kaggle.json"),
    ({"KAGGLE_CONFIG_DIR": "{home}/cfg"}, [".kaggle/kaggle.json"], None),
])
def test_find_credentials(tmp_path, env, files, expected):
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    env = {k: v.format(home=tmp_path) for k, v in env.items()}
    found = find_credentials(env, tmp_path)
    assert (found if found is None or not found.startswith(str(tmp_path))
            else found[len(str(tmp_path)) + 1:]) == expected


def test_credential_values_never_appear_in_the_reason(tmp_path):
    source = choose_source(config(tmp_path), {"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "s3cr3t"},
                           tmp_path)
    assert source.kind == "kaggle"
    assert "s3cr3t" not in source.reason


def test_auto_without_credentials_uses_local_csvs_then_sample(tmp_path):
    assert choose_source(config(tmp_path), {}, tmp_path).kind == "sample"
    (tmp_path / "comp").mkdir()
    for name in ("train.csv", "test.csv"):
        (tmp_path / "comp" / name).write_text("x")
    assert choose_source(config(tmp_path), {}, tmp_path).kind == "local"


@pytest.mark.parametrize("source", ["sample", "local", "kaggle"])
def test_explicit_source_wins(tmp_path, source):
    assert choose_source(config(tmp_path, source), {}, tmp_path).kind == source
