"""The CLI turns every job error into one line on stderr and exit code 2."""

import pytest

from job import cli


def test_bad_config_is_one_line_and_exit_2(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(f"train:\n  epoch: 3\noutput: {{runs_dir: {tmp_path / 'runs'}}}\n")
    assert cli.main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {config}: unknown key train.epoch (did you mean train.epochs?)\n"
    assert not (tmp_path / "runs").exists()   # nothing written for a run that never started


def test_bad_override_is_reported_as_such(tmp_path, capsys):
    assert cli.main(["train", "--config", "configs/smoke.yaml", "--set",
                     "train.batch_size=-1"]) == 2
    assert capsys.readouterr().err == (
        "error: --set train.batch_size: expected an integer >= 1, got -1\n")


def test_debug_keeps_the_traceback(tmp_path):
    from job.errors import ConfigError
    with pytest.raises(ConfigError):
        cli.main(["--debug", "train", "--config", str(tmp_path / "missing.yaml")])
    with pytest.raises(ConfigError):
        cli.main(["train", "--config", str(tmp_path / "missing.yaml"), "--debug"])


def test_runs_on_empty_folder(tmp_path, capsys):
    assert cli.main(["runs", "--runs-dir", str(tmp_path)]) == 0
    assert "no runs in" in capsys.readouterr().out
