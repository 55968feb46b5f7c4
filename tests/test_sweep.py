"""Sweeps end to end, as a user runs them: `python -m job sweep` processes on a real
SQLite file or a real throwaway PostgreSQL server, with real signals."""

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from helpers.sweeps import (ROOT, checkpoint_epochs, job_env, load_trials, run_sweep,
                            start_sweep, tiny_sweep, wait_for)
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

SMOKE_GRID = {"train.learning_rate": [0.001, 0.003], "arch.cnn.filters": ["[8, 16]", "[16, 32]"]}
SMOKE_MODELS = ("cnn-keras", "cnn-tf")
TINY_GRID = {"train.learning_rate": [0.001, 0.003], "arch.ffn.dropout": [0.0, 0.1]}


def grid_points(grid: dict) -> set:
    return {tuple(zip(grid, combo)) for combo in itertools.product(*grid.values())}


def point(params: dict, grid: dict) -> tuple:
    return tuple((key, params[key]) for key in grid)


@pytest.fixture(scope="module")
def smoke_sweep(tmp_path_factory):
    """configs/sweep-smoke.yaml with two local worker processes, once for the checks below."""
    tmp = tmp_path_factory.mktemp("sweep")
    started = time.monotonic()
    result = run_sweep("--config", "configs/sweep-smoke.yaml", "--workers", "2",
                       "--set", f"output.runs_dir={tmp / 'runs'}",
                       "--set", f"data.sample_dir={tmp / 'sample'}", cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    folder = tmp / "runs/sweeps/smoke"
    return folder, result, time.monotonic() - started


def test_smoke_sweep_prints_its_folder_last_and_covers_the_grid(smoke_sweep):
    folder, result, _ = smoke_sweep
    assert Path(result.stdout.strip().splitlines()[-1]) == folder
    assert "worker 0 started" in result.stdout and "worker 1 started" in result.stdout
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["study"] == "smoke" and summary["direction"] == "maximize"
    assert summary["objective"] == "val_accuracy"
    done = [t for t in summary["trials"] if t["state"] == "COMPLETE"]
    assert sorted(point(t["params"], SMOKE_GRID) for t in done) == sorted(grid_points(SMOKE_GRID))
    assert all(t["state"] in ("COMPLETE", "FAIL") for t in summary["trials"])


def test_each_trial_is_a_complete_run_with_its_own_values(smoke_sweep):
    folder, _, _ = smoke_sweep
    summary = json.loads((folder / "summary.json").read_text())
    for trial in (t for t in summary["trials"] if t["state"] == "COMPLETE"):
        run = folder / trial["run"]
        assert json.loads((run / "manifest.json").read_text())["status"] == "complete"
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert config["train"]["learning_rate"] == trial["params"]["train.learning_rate"]
        assert config["arch"]["cnn"]["filters"] == yaml.safe_load(
            trial["params"]["arch.cnn.filters"])
        assert "sweep" not in config
        # The trial's value is its run's best model's val_accuracy, read from the run itself.
        metrics = json.loads((run / "metrics.json").read_text())
        best = next(m for m in metrics["models"] if m["name"] == metrics["best"])
        assert trial["value"] == pytest.approx(best["val_accuracy"])
        assert (run / "submission.csv").is_file()


def test_best_links_the_best_trial_and_summary_md_shows_pictures(smoke_sweep):
    folder, _, _ = smoke_sweep
    summary = json.loads((folder / "summary.json").read_text())
    done = [t for t in summary["trials"] if t["state"] == "COMPLETE"]
    top = max(t["value"] for t in done)
    assert summary["best_trial"] in [t["number"] for t in done if t["value"] == top]
    best = next(t for t in done if t["number"] == summary["best_trial"])
    assert os.readlink(folder / "best") == best["run"]   # relative: the folder can move
    text = (folder / "summary.md").read_text()
    for picture in ("optimization_history", "param_importances", "parallel_coordinate"):
        png = folder / "pictures" / f"{picture}.png"
        assert f"(pictures/{picture}.png)" in text
        assert png.read_bytes().startswith(b"\x89PNG")


def hparams_sessions(logdir: Path) -> dict:
    from tensorboard.plugins.hparams import plugin_data_pb2
    found = {}
    for events in logdir.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events.parent), size_guidance={"tensors": 0})
        accumulator.Reload()
        if "_hparams_/session_start_info" in accumulator.Tags()["tensors"]:
            data = plugin_data_pb2.HParamsPluginData.FromString(accumulator.SummaryMetadata(
                "_hparams_/session_start_info").plugin_data.content).session_start_info
            found[data.group_name] = data.hparams
    return found


def test_tensorboard_has_one_hparams_session_per_trial_and_model(smoke_sweep):
    folder, _, _ = smoke_sweep
    summary = json.loads((folder / "summary.json").read_text())
    sessions = hparams_sessions(folder)
    done = [t for t in summary["trials"] if t["state"] == "COMPLETE"]
    expected = {f"smoke/trial-{Path(t['run']).name}/{m}" for t in done for m in SMOKE_MODELS}
    assert set(sessions) == expected
    for trial in done:
        for model in SMOKE_MODELS:
            hp = sessions[f"smoke/trial-{Path(trial['run']).name}/{model}"]
            assert hp["train.learning_rate"].number_value == trial["params"]["train.learning_rate"]
            assert hp["arch.cnn.filters"].string_value == trial["params"]["arch.cnn.filters"]


def test_sweep_summary_rebuilds_summary_and_best_from_the_storage(smoke_sweep):
    folder, _, _ = smoke_sweep
    before = json.loads((folder / "summary.json").read_text())
    (folder / "summary.json").unlink()
    (folder / "best").unlink()
    result = subprocess.run([sys.executable, "-m", "job", "sweep-summary", str(folder)],
                            cwd=ROOT, env=job_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip().splitlines()[-1]) == folder / "summary.md"
    after = json.loads((folder / "summary.json").read_text())
    assert after["best_trial"] == before["best_trial"]
    assert [t["params"] for t in after["trials"]] == [t["params"] for t in before["trials"]]
    assert (folder / "best").resolve() == (folder / "trials" / str(
        next(t for t in after["trials"] if t["number"] == after["best_trial"])["run"]
    ).removeprefix("trials/")).resolve()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dashboard_serves_the_study_on_loopback(smoke_sweep):
    folder, _, _ = smoke_sweep
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "job", "dashboard", "--study", "smoke",
                               "--runs-dir", str(folder.parent.parent), "--port", str(port)],
                              cwd=ROOT, env=job_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline, body = time.monotonic() + 60, None
        while body is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies",
                                            timeout=5) as response:
                    body = json.loads(response.read())
            except OSError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(0.3)
        assert body is not None, "optuna-dashboard did not answer"
        names = [s["study_name"] for s in body["study_summaries"]]
        assert names == ["smoke"]
        # Bound to loopback only: no other address of this machine answers.
        with socket.socket() as s:
            s.settimeout(1)
            other = socket.gethostbyname(socket.gethostname())
            if other != "127.0.0.1" and not other.startswith("127."):
                assert s.connect_ex((other, port)) != 0
    finally:
        server.terminate()
        server.wait(timeout=30)


# --- PostgreSQL: many workers, one study ------------------------------------------------------

def test_two_workers_on_postgresql_cover_every_grid_point_once(tmp_path, postgres, postgres_url):
    sweep = tiny_sweep(tmp_path)
    result = run_sweep("--config", str(sweep), "--workers", "2", cwd=ROOT,
                       env=job_env(OPTUNA_STORAGE=postgres_url))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    trials = load_trials(postgres_url, "t")
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert sorted(point(t.params, TINY_GRID) for t in done) == sorted(grid_points(TINY_GRID))
    # Anything else is a surplus ask (two workers asking at once), which did no work.
    assert all(t.user_attrs.get("surplus") for t in trials if t.state.name != "COMPLETE")
    # The password is in no output and in no file the sweep wrote.
    assert postgres.password not in result.stdout + result.stderr
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file():
            assert postgres.password.encode() not in path.read_bytes(), path
    assert "***" in json.loads((tmp_path / "runs/sweeps/t/sweep.json").read_text())["storage"]


def test_a_storage_url_on_the_command_line_leaves_its_password_nowhere(tmp_path, postgres,
                                                                        postgres_url):
    """--storage is discouraged for a URL with a password, but must not leak it either:
    not in the output, the manifests' recorded command, sweep.json or the summary."""
    sweep = tiny_sweep(tmp_path, trials=1, epochs=1)
    result = run_sweep("--config", str(sweep), "--storage", postgres_url, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert [t.state.name for t in load_trials(postgres_url, "t")] == ["COMPLETE"]
    assert postgres.password not in result.stdout + result.stderr
    written = [p for p in (tmp_path / "runs").rglob("*") if p.is_file()]
    assert any(p.name == "manifest.json" for p in written)
    for path in written:
        assert postgres.password.encode() not in path.read_bytes(), path
    manifest = json.loads(next(p for p in written if p.name == "manifest.json").read_text())
    assert "postgresql://postgres:***@127.0.0.1" in " ".join(manifest["command"])


def test_workers_starting_together_on_an_empty_database_all_get_the_study(tmp_path,
                                                                          postgres_url):
    """optuna#1092: workers creating Optuna's tables at once on an empty PostgreSQL database
    collide (UniqueViolation); every one of them must still get the study."""
    sweep = tiny_sweep(tmp_path)
    code = ("import sys; from job.config.sweep import load_sweep; from job.sweep import worker; "
            "print(worker.connect(load_sweep(sys.argv[1]), sys.argv[2], print).study_name)")
    starters = [subprocess.Popen([sys.executable, "-c", code, str(sweep), postgres_url],
                                 cwd=ROOT, env=job_env(), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(6)]
    results = [(s.wait(timeout=120), *s.communicate()) for s in starters]
    assert [r[0] for r in results] == [0] * 6, [r[2][-2000:] for r in results]
    assert [r[1].split()[-1] for r in results] == ["t"] * 6
    assert len(load_trials(postgres_url, "t")) == 0


def test_a_sigkilled_workers_trial_is_retried_and_completed(tmp_path, postgres_url):
    # A worker beats every second; one silent for 3 s has its trial retried.
    sweep = tiny_sweep(tmp_path, trials=1, epochs=12, patience=50, heartbeat=1, grace=3)
    env = job_env(OPTUNA_STORAGE=postgres_url)
    first = start_sweep("--config", str(sweep), cwd=ROOT, env=env, log=tmp_path / "a.log")
    run = tmp_path / "runs/sweeps/t/trials/0"
    wait_for(lambda: checkpoint_epochs(run) >= 2, 300, "a checkpoint", first)
    first.kill()
    first.wait()
    assert json.loads((run / "manifest.json").read_text())["status"] == "running"
    second = run_sweep("--config", str(sweep), cwd=ROOT, env=env)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    trials = load_trials(postgres_url, "t")
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    killed, retry = trials
    assert retry.params == killed.params
    assert retry.system_attrs["failed_trial"] == 0
    assert retry.user_attrs["run"] == "trials/0"          # the same run folder, continued
    assert f"resuming {run}" in second.stdout
    history = json.loads((run / "metrics.json").read_text())["models"][0]["history"]
    assert [h["epoch"] for h in history] == list(range(1, len(history) + 1))


def test_sigterm_hands_the_trial_back_and_the_next_worker_resumes_it(tmp_path):
    sweep = tiny_sweep(tmp_path, trials=1, epochs=12, patience=50)
    first = start_sweep("--config", str(sweep), cwd=ROOT, log=tmp_path / "a.log")
    run = tmp_path / "runs/sweeps/t/trials/0"
    wait_for(lambda: checkpoint_epochs(run) >= 2, 300, "a checkpoint", first)
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=120) == 75, (tmp_path / "a.log").read_text()[-3000:]
    done_before = checkpoint_epochs(run)
    url = f"sqlite:///{tmp_path / 'runs/sweeps/t/study.db'}"
    trials = load_trials(url, "t")
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]
    assert "SIGTERM" in trials[0].user_attrs["handed_back"]
    assert trials[1].params == trials[0].params and trials[1].user_attrs["run"] == "trials/0"
    summary = json.loads((run.parent.parent / "summary.json").read_text())
    assert [t["state"] for t in summary["trials"]] == ["FAIL", "WAITING"]

    second = run_sweep("--config", str(sweep), cwd=ROOT)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert [t.state.name for t in load_trials(url, "t")] == ["FAIL", "COMPLETE"]
    epochs = [int(line.split("epoch")[1].split("/")[0]) for line in second.stdout.splitlines()
              if line.startswith("ffn-keras  epoch")]
    assert epochs and epochs[0] == done_before + 1      # no epoch trained twice
    history = json.loads((run / "metrics.json").read_text())["models"][0]["history"]
    assert [h["epoch"] for h in history] == list(range(1, len(history) + 1))
    assert json.loads((run / "manifest.json").read_text())["resumed"]


def test_a_trial_trailing_the_others_is_pruned_and_its_run_says_so(tmp_path):
    """Three finished trials reached val_accuracy 0.99 by every epoch; a new trial that
    trails them at epoch 2 (the first the median pruner judges) is stopped there."""
    import optuna
    from job.config.sweep import load_sweep
    from job.sweep import worker

    path = tiny_sweep(tmp_path, epochs=6, patience=50)
    overrides = ["sweep.pruner=median", "sweep.model=ffn-keras"]
    sweep = load_sweep(path, overrides)
    url = f"sqlite:///{tmp_path / 'runs/sweeps/t/study.db'}"
    (tmp_path / "runs/sweeps/t").mkdir(parents=True)
    study = worker.connect(sweep, url, print)
    for number, lr in enumerate([0.001, 0.003, 0.001]):
        study.add_trial(optuna.trial.create_trial(
            params={"train.learning_rate": lr, "arch.ffn.dropout": 0.0},
            distributions={"train.learning_rate": optuna.distributions.CategoricalDistribution(
                [0.001, 0.003]), "arch.ffn.dropout": optuna.distributions.CategoricalDistribution(
                [0.0, 0.1])},
            value=0.99, intermediate_values={e: 0.99 for e in range(1, 7)},
            user_attrs={"point": number}))
    result = run_sweep("--config", str(path), *[p for o in overrides for p in ("--set", o)],
                       cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    trials = load_trials(url, "t")
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3 + ["PRUNED"]
    pruned = trials[3]
    assert sorted(pruned.intermediate_values) == [1, 2]        # judged at epoch 2, stopped
    run = tmp_path / "runs/sweeps/t" / pruned.user_attrs["run"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "pruned"
    assert manifest["error"].startswith("pruned after ffn-keras epoch 2: val_accuracy ")
    summary = json.loads((tmp_path / "runs/sweeps/t/summary.json").read_text())
    assert [t["state"] for t in summary["trials"]] == ["COMPLETE"] * 3 + ["PRUNED"]
    assert summary["trials"][3]["pruned"] == manifest["error"]
