"""job/sweep/summary.py: summary.json, summary.md, the pictures and the `best` link, made
from real Optuna studies (SQLite in tmp_path, or in memory) and real minimal trial folders.
Expected values come from the trials each test puts in, never from the summary code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from job.sweep.summary import summarize, write_summary

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"
SPACE = {"train.learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
         "arch.cnn.filters": CategoricalDistribution(["[32, 64]", "[64, 128]"])}
PICTURES = ("optimization_history", "param_importances", "parallel_coordinate")
SECRET = "s3cr3t-pw"
URL = f"postgresql://sweeper:{SECRET}@db.internal:5432/sweeps"


@pytest.fixture(autouse=True)
def quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def new_study(sweep: Path, direction="maximize", objective="val_accuracy", model=None,
              sqlite=True) -> optuna.Study:
    sweep.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(study_name="digits-sweep", direction=direction,
                                storage=f"sqlite:///{sweep}/study.db" if sqlite else None)
    study.set_user_attr("objective", objective)
    study.set_user_attr("model", model)
    return study


def add(study, value=None, state=TrialState.COMPLETE, params=None, **attrs) -> int:
    """One trial; its run is trials/<number> unless `run` says otherwise (None: no run)."""
    number = len(study.get_trials(deepcopy=False))
    attrs.setdefault("run", f"trials/{number}")
    if params is None:
        params = {"train.learning_rate": 10 ** -(1 + number % 3),
                  "arch.cnn.filters": ("[32, 64]", "[64, 128]")[number % 2]}
    study.add_trial(create_trial(
        params=params, distributions={k: SPACE[k] for k in params}, state=state,
        value=value if state == TrialState.COMPLETE else None,
        user_attrs={k: v for k, v in attrs.items() if v is not None}))
    return number


def make_run(sweep: Path, run: str, status="complete") -> None:
    (sweep / run).mkdir(parents=True)
    (sweep / run / "manifest.json").write_text(json.dumps({"status": status}))


def image_links(md: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A SQLite sweep with every trial state, a retry, two surplus trials, and trials
    whose folders are here, elsewhere or unfinished: (sweep, values, summary.md, json)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import matplotlib
    style = {k: v for k, v in matplotlib.rcParams.items() if not k.startswith("backend")}
    sweep = tmp_path_factory.mktemp("sweep")
    study = new_study(sweep)
    values = {0: 0.9812, 1: 0.9934, 3: 0.9751}
    for number in (0, 1):
        add(study, values[number])
        make_run(sweep, f"trials/{number}")
    add(study, state=TrialState.PRUNED)
    make_run(sweep, "trials/2", "failed")
    add(study, values[3])                     # ran elsewhere: its folder is not here
    add(study, state=TrialState.FAIL, error=f"OperationalError: could not reach {URL}")
    add(study, state=TrialState.FAIL,
        handed_back="SIGTERM received during cnn-keras epoch 3; retried as trial 6")
    make_run(sweep, "trials/5", "interrupted")
    add(study, state=TrialState.RUNNING, run="trials/5")
    add(study, state=TrialState.WAITING, run=None)
    for _ in range(2):
        add(study, state=TrialState.FAIL, params={}, run=None, surplus=True)
    md_path = write_summary(study, sweep)
    import matplotlib.pyplot as plt
    after = {k: v for k, v in matplotlib.rcParams.items() if not k.startswith("backend")}
    return {"sweep": sweep, "values": values, "md_path": md_path, "md": md_path.read_text(),
            "json": json.loads((sweep / "summary.json").read_text()),
            "style_kept": after == style, "open_figures": plt.get_fignums()}


def test_summary_json_lists_the_kept_trials_with_state_value_and_run(mixed):
    s = mixed["json"]
    assert (s["study"], s["direction"], s["objective"], s["model"]) == \
        ("digits-sweep", "maximize", "val_accuracy", "best")
    rows = {r["number"]: r for r in s["trials"]}
    assert list(rows) == [0, 1, 2, 3, 4, 5, 6, 7]      # 8 and 9 were surplus
    assert [r["state"] for r in rows.values()] == [
        "COMPLETE", "COMPLETE", "PRUNED", "COMPLETE", "FAIL", "FAIL", "RUNNING", "WAITING"]
    assert {n: r["value"] for n, r in rows.items() if r["value"] is not None} == mixed["values"]
    assert [r["run"] for r in rows.values()] == [
        "trials/0", "trials/1", "trials/2", "trials/3", "trials/4", "trials/5", "trials/5", None]
    assert [n for n, r in rows.items() if r["here"]] == [0, 1]
    assert rows[0]["params"] == {"train.learning_rate": 0.1, "arch.cnn.filters": "[32, 64]"}
    assert rows[5]["handed_back"].endswith("retried as trial 6")
    assert rows[4]["error"].startswith("OperationalError: could not reach postgresql://")
    assert rows[0]["duration_seconds"] is not None and rows[7]["duration_seconds"] is None
    assert s["counts"] == dict(Counter(r["state"] for r in rows.values()))
    assert s["surplus_skipped"] == 2


def test_best_trial_is_the_highest_value_and_best_links_its_folder(mixed):
    best = max(mixed["values"], key=mixed["values"].get)
    s, sweep = mixed["json"], mixed["sweep"]
    assert (s["best_trial"], s["best_value"], s["best_run"], s["best_here"]) == \
        (best, mixed["values"][best], f"trials/{best}", True)
    assert os.readlink(sweep / "best") == f"trials/{best}"     # relative: the folder can move
    assert (sweep / "best").resolve() == (sweep / f"trials/{best}").resolve()


def test_summary_md_has_a_row_per_kept_trial_and_counts_the_surplus(mixed):
    md, rows = mixed["md"], mixed["json"]["trials"]
    assert mixed["md_path"] == mixed["sweep"] / "summary.md"
    assert md.startswith("# Sweep digits-sweep: maximize val_accuracy\n")
    assert ("| trial | state | val_accuracy | arch.cnn.filters | train.learning_rate "
            "| run | note |") in md
    table = [line for line in md.splitlines() if re.match(r"\| \d", line)]
    assert [int(re.match(r"\| (\d+)", line).group(1)) for line in table] == \
        [r["number"] for r in rows]
    assert table[1].startswith(
        "| 1 **(best)** | COMPLETE | 0.9934 | [64, 128] | 0.01 | `trials/1` |")
    assert table[6].startswith("| 6 | RUNNING | - |")
    assert "`trials/3` (not usable here)" in table[3]
    assert re.search(r"^- 2 surplus trials skipped\b", md, re.MULTILINE)


def test_summary_md_links_each_picture_and_each_is_a_png(mixed):
    links = image_links(mixed["md"])
    assert links == [f"pictures/{name}.png" for name in PICTURES]
    for link in links:
        data = (mixed["sweep"] / link).read_bytes()
        assert len(data) > 1000 and data.startswith(PNG), link
    assert mixed["json"]["pictures"] == {name: f"pictures/{name}.png" for name in PICTURES}


def test_drawing_leaves_no_figure_open_and_pyplot_style_as_it_was(mixed):
    assert mixed["open_figures"] == []
    assert mixed["style_kept"]        # Optuna switches pyplot to ggplot for its charts


def test_no_storage_url_or_password_is_written(mixed):
    sweep = mixed["sweep"]
    written = [p for p in sweep.rglob("*") if p.is_file() and p.name != "study.db"]
    assert {p.name for p in written} >= {"summary.json", "summary.md"}
    for path in written:
        blob = path.read_bytes()
        assert SECRET.encode() not in blob and b"sqlite:" not in blob, path
        assert b"study.db" not in blob, path


@pytest.mark.parametrize("status", [None, "running"], ids=["folder-elsewhere", "unfinished"])
def test_best_is_not_pointed_at_a_worse_trial_when_the_best_folder_is_not_usable(
        tmp_path, status):
    study = new_study(tmp_path, sqlite=False)
    add(study, 0.97)
    make_run(tmp_path, "trials/0")
    write_summary(study, tmp_path)
    assert os.readlink(tmp_path / "best") == "trials/0"
    add(study, 0.99)
    if status:
        make_run(tmp_path, "trials/1", status)
    md = write_summary(study, tmp_path).read_text()
    assert not os.path.lexists(tmp_path / "best")
    s = json.loads((tmp_path / "summary.json").read_text())
    assert (s["best_trial"], s["best_run"], s["best_here"]) == (1, "trials/1", False)
    best_line = next(line for line in md.splitlines() if line.startswith("- best:"))
    assert "trial **1**" in best_line and "`trials/1`" in best_line
    assert f"`python -m job sweep-summary {tmp_path}`" in best_line
    assert ("is not here" if status is None else "its manifest says running") in best_line


def test_best_moves_when_a_better_trial_completes(tmp_path):
    study = new_study(tmp_path, sqlite=False)
    for value in (0.95, 0.97):
        make_run(tmp_path, f"trials/{add(study, value)}")
    write_summary(study, tmp_path)
    assert os.readlink(tmp_path / "best") == "trials/1"
    make_run(tmp_path, f"trials/{add(study, 0.99)}")
    write_summary(study, tmp_path)
    assert os.readlink(tmp_path / "best") == "trials/2"
    assert not list(tmp_path.glob(".best*"))


def test_one_complete_trial_says_in_one_line_why_importances_are_missing(tmp_path):
    study = new_study(tmp_path)
    make_run(tmp_path, f"trials/{add(study, 0.98)}")
    add(study, state=TrialState.PRUNED)
    md = write_summary(study, tmp_path).read_text()
    assert image_links(md) == ["pictures/optimization_history.png"]
    assert (tmp_path / "pictures/optimization_history.png").read_bytes().startswith(PNG)
    assert sorted(p.name for p in (tmp_path / "pictures").iterdir()) == \
        ["optimization_history.png"]
    why = [line for line in md.splitlines() if "importances" in line.lower()]
    assert why == [("_No parameter importances picture: needs at least 2 complete trials, "
                    "there is 1._")]
    missing = json.loads((tmp_path / "summary.json").read_text())["missing_pictures"]
    assert set(missing) == {"param_importances", "parallel_coordinate"}


def test_minimize_val_loss_picks_the_lowest_loss(tmp_path):
    study = new_study(tmp_path, direction="minimize", objective="val_loss", model="cnn-keras")
    losses = {0: 0.0521, 1: 0.0307, 2: 0.0448}
    for loss in losses.values():
        make_run(tmp_path, f"trials/{add(study, loss)}")
    md = write_summary(study, tmp_path).read_text()
    best = min(losses, key=losses.get)
    s = json.loads((tmp_path / "summary.json").read_text())
    assert (s["direction"], s["objective"], s["model"]) == ("minimize", "val_loss", "cnn-keras")
    assert (s["best_trial"], s["best_value"]) == (best, losses[best])
    assert os.readlink(tmp_path / "best") == f"trials/{best}"
    assert md.startswith("# Sweep digits-sweep: minimize val_loss\n")
    assert "`val_loss` of model `cnn-keras`" in md
    assert f"| {best} **(best)** | COMPLETE | {losses[best]:.4f} |" in md


def test_without_a_complete_trial_there_is_no_best_and_no_picture(tmp_path):
    study = new_study(tmp_path, sqlite=False)
    add(study, state=TrialState.FAIL, error="TrainingError: the loss became NaN")
    add(study, state=TrialState.RUNNING)
    make_run(tmp_path, "trials/0", "failed")
    (tmp_path / "best").symlink_to("trials/0")       # left by an earlier, different study
    s = summarize(study, tmp_path)
    assert (s["best_trial"], s["best_value"], s["best_run"]) == (None, None, None)
    md = write_summary(study, tmp_path).read_text()
    assert not os.path.lexists(tmp_path / "best")
    assert "- best: none yet: no trial has completed" in md
    assert image_links(md) == [] and not list((tmp_path / "pictures").iterdir())
    assert "_No optimisation history picture: no trial has completed yet._" in md


def test_importing_the_summary_loads_neither_optuna_nor_matplotlib():
    code = ("import sys, job.sweep.summary; "
            "print([m for m in ('optuna', 'matplotlib', 'numpy') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == "[]"
