"""The sweep's space in real Optuna studies, and how workers share the budget.

The values a trial gets are the ones the sweep file lists (a grid visits each point once,
a list choice comes back as that list, an int range gives ints); the budget counts points,
so a trial handed back or retried never takes a second place, and trials asked beyond the
budget by workers racing each other are ignored.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from job.config.sweep import load_sweep
from job.errors import RunError
from job.sweep import space
from job.sweep.worker import Surplus, Worker, claim, next_action, objective_of, point_of

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "configs" / "smoke.yaml"

optuna.logging.set_verbosity(optuna.logging.WARNING)


def load(tmp_path: Path, sweep: str, top: str = "models: [cnn-keras]\n"):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {SMOKE}\n{top}sweep:\n{sweep}")
    return load_sweep(path)


def run_trials(study, sweep, count: int) -> list[dict]:
    """`count` trials run as a worker runs them (inside `optimize`: a GridSampler stops the
    study there once the grid is done); their values in order."""
    seen = []

    def objective(trial):
        seen.append(space.suggest(trial, sweep))
        return 0.5
    study.optimize(objective, n_trials=count)
    return seen


# --- suggest ----------------------------------------------------------------------------

GRID = ("  sampler: grid\n  trials: 12\n  space:\n"
        "    train.learning_rate: {choices: [0.001, 0.003]}\n"
        "    arch.cnn.filters: {choices: [[8, 16], [16, 32]]}\n"
        "    arch.cnn.kernel_size: {low: 3, high: 7, step: 2}\n")


def test_grid_visits_every_point_of_the_product_once(tmp_path):
    sweep = load(tmp_path, GRID)
    study = optuna.create_study(sampler=space.make_sampler(sweep, seed=0))
    seen = run_trials(study, sweep, 12)
    # The file's lists, by hand; the kernel range 3..7 by 2 is 3, 5, 7.
    product = set(itertools.product([0.001, 0.003], [(8, 16), (16, 32)], [3, 5, 7]))
    got = [(v["train.learning_rate"], tuple(v["arch.cnn.filters"]), v["arch.cnn.kernel_size"])
           for v in seen]
    assert len(got) == len(product) == 12
    assert set(got) == product
    assert all(type(v["arch.cnn.kernel_size"]) is int for v in seen)
    assert all(v["arch.cnn.filters"] in ([8, 16], [16, 32]) for v in seen)
    # What TensorBoard and the study show: the list as the text of the sweep file.
    assert {t.params["arch.cnn.filters"] for t in study.trials} == {"[8, 16]", "[16, 32]"}


def test_workers_asking_at_once_get_different_grid_points(tmp_path):
    """Four workers each ask a trial (a fresh sampler each, as a worker makes one per trial)
    before any ends: the running trials hold four different points of the 2 x 2 grid."""
    sweep = load(tmp_path, "  sampler: grid\n  trials: 4\n  space:\n"
                 "    train.learning_rate: {choices: [0.001, 0.003]}\n"
                 "    arch.cnn.filters: {choices: [[8, 16], [16, 32]]}\n")
    study = optuna.create_study()
    asked = []
    for worker in range(4):
        study.sampler = space.make_sampler(sweep, space.trial_seed(sweep, len(study.trials),
                                                                   worker))
        values = space.suggest(study.ask(), sweep)
        asked.append((values["train.learning_rate"], tuple(values["arch.cnn.filters"])))
    assert sorted(asked) == sorted(itertools.product([0.001, 0.003], [(8, 16), (16, 32)]))


def test_a_trial_config_holds_the_trial_values(tmp_path):
    sweep = load(tmp_path, GRID)
    study = optuna.create_study(sampler=space.make_sampler(sweep, seed=0))
    values = run_trials(study, sweep, 1)[0]
    config = sweep.trial_config(values, sweep.base.name)
    assert config.train.learning_rate == values["train.learning_rate"]
    assert config.arch.cnn.filters == tuple(values["arch.cnn.filters"])
    assert config.arch.cnn.kernel_size == values["arch.cnn.kernel_size"]


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_sampled_values_are_the_listed_ones_and_stay_in_range(tmp_path, sampler):
    sweep = load(tmp_path, f"  sampler: {sampler}\n  trials: 20\n  space:\n"
                 "    train.learning_rate: {low: 3.0e-4, high: 3.0e-3, log: true}\n"
                 "    arch.cnn.filters: {choices: [[8, 16], [16, 32, 64]]}\n"
                 "    arch.cnn.batch_norm: {choices: [true, false]}\n"
                 "    arch.cnn.kernel_size: {low: 2, high: 6}\n"
                 "    arch.cnn.dropout: {low: 0.1, high: 0.4}\n")
    study = optuna.create_study(sampler=space.make_sampler(sweep, seed=3))
    for v in run_trials(study, sweep, 20):
        assert 3.0e-4 <= v["train.learning_rate"] <= 3.0e-3
        assert v["arch.cnn.filters"] in ([8, 16], [16, 32, 64])
        assert type(v["arch.cnn.batch_norm"]) is bool
        assert type(v["arch.cnn.kernel_size"]) is int and 2 <= v["arch.cnn.kernel_size"] <= 6
        assert isinstance(v["arch.cnn.dropout"], float) and 0.1 <= v["arch.cnn.dropout"] <= 0.4


def test_log_range_samples_fill_the_range(tmp_path):
    """A log range is sampled evenly in log space: as many below the geometric mean as above."""
    sweep = load(tmp_path, "  sampler: random\n  trials: 200\n  space:\n"
                 "    train.learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}\n")
    study = optuna.create_study(sampler=space.make_sampler(sweep, seed=0))
    rates = [v["train.learning_rate"] for v in run_trials(study, sweep, 200)]
    assert all(1.0e-4 <= r <= 1.0e-2 for r in rates)
    below = sum(r < math.sqrt(1.0e-4 * 1.0e-2) for r in rates)     # 1e-3
    assert 70 <= below <= 130          # linear sampling would put ~9% (18) below 1e-3


def test_a_queued_again_trial_gets_its_own_values_back(tmp_path):
    """A trial handed back on SIGTERM is a WAITING copy of its params: the same point."""
    sweep = load(tmp_path, "  sampler: random\n  trials: 3\n  space:\n"
                 "    arch.cnn.filters: {choices: [[8, 16], [16, 32]]}\n"
                 "    train.learning_rate: {low: 3.0e-4, high: 3.0e-3, log: true}\n")
    study = optuna.create_study(sampler=space.make_sampler(sweep, seed=1))
    first = study.ask()
    values = space.suggest(first, sweep)
    frozen = study.get_trials()[0]
    study.tell(first, state=TrialState.FAIL)
    study.add_trial(create_trial(state=TrialState.WAITING, params=frozen.params,
                                 distributions=frozen.distributions, user_attrs={"point": 0}))
    again = study.ask()
    assert again.number == 1
    assert space.suggest(again, sweep) == values


def test_decode_tells_true_from_1_and_lists_from_their_text():
    assert space.decode((1, True), True) is True
    picked = space.decode((1, True), 1)
    assert picked == 1 and type(picked) is int
    assert space.decode(([8, 16], [16, 32]), "[16, 32]") == [16, 32]
    assert space.decode((0.0, 0.1), 0.1) == 0.1


def test_hparams_show_lists_as_their_yaml_text():
    assert space.hparams({"arch.cnn.filters": [8, 16], "train.learning_rate": 0.003,
                          "arch.cnn.pooling": "max"}) == {
        "arch.cnn.filters": "[8, 16]", "train.learning_rate": 0.003, "arch.cnn.pooling": "max"}


def test_grid_space_of_the_smoke_sweep():
    sweep = load_sweep(REPO / "configs" / "sweep-smoke.yaml")
    assert space.grid_space(sweep) == {"train.learning_rate": [0.001, 0.003],
                                       "arch.cnn.filters": ["[8, 16]", "[16, 32]"]}


def test_space_record_survives_json_as_the_study_stores_it(tmp_path):
    sweep = load(tmp_path, "  space:\n"
                 "    arch.cnn.filters: {choices: [[8, 16], [16, 32]]}\n"
                 "    train.learning_rate: {low: 3.0e-4, high: 3.0e-3, log: true}\n"
                 "    arch.cnn.kernel_size: {low: 3, high: 7, step: 2}\n")
    record = space.space_record(sweep.space)
    assert record == {
        "arch.cnn.filters": {"choices": ["[8, 16]", "[16, 32]"]},
        "train.learning_rate": {"low": 3.0e-4, "high": 3.0e-3, "log": True, "step": None},
        "arch.cnn.kernel_size": {"low": 3, "high": 7, "log": False, "step": 2}}
    # Compared with the stored copy on every start: JSON must not change it (tuples).
    assert json.loads(json.dumps(record)) == record


# --- seeds, samplers, pruners -----------------------------------------------------------

def test_trial_seed_differs_by_worker_and_progress_and_repeats(tmp_path):
    sweep = load(tmp_path, "  sampler: tpe\n  seed: 0\n  space:\n"
                 "    train.learning_rate: {low: 3.0e-4, high: 3.0e-3, log: true}\n")
    seeds = {(p, w): space.trial_seed(sweep, p, w) for p in range(5) for w in range(4)}
    assert len(set(seeds.values())) == len(seeds)
    assert space.trial_seed(sweep, 3, 1) == seeds[(3, 1)]
    assert all(isinstance(s, int) and 0 <= s < 2 ** 32 for s in seeds.values())
    other = load(tmp_path, "  sampler: tpe\n  seed: 1\n  space:\n"
                 "    train.learning_rate: {low: 3.0e-4, high: 3.0e-3, log: true}\n")
    assert space.trial_seed(other, 3, 1) != seeds[(3, 1)]


def test_a_grid_is_shuffled_alike_on_every_worker(tmp_path):
    """GridSampler shuffles the grid with its seed: every worker must use sweep.seed."""
    sweep = load(tmp_path, "  sampler: grid\n  seed: 5\n  trials: 2\n  space:\n"
                 "    train.learning_rate: {choices: [0.001, 0.003]}\n")
    assert {space.trial_seed(sweep, p, w) for p in range(3) for w in range(3)} == {5}


def test_trial_seed_is_the_same_in_another_process():
    """A one-worker sweep run again repeats exactly: no per-process hash randomisation."""
    shipped = REPO / "configs" / "sweep.yaml"            # tpe, seed 0
    code = ("from job.config.sweep import load_sweep; from job.sweep.space import trial_seed; "
            f"print(trial_seed(load_sweep({str(shipped)!r}), 4, 2))")
    outs = {subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                           env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
                           check=True).stdout.strip() for seed in ("1", "2")}
    assert outs == {str(space.trial_seed(load_sweep(shipped), 4, 2))}


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_the_same_seed_proposes_the_same_points(tmp_path, sampler):
    sweep = load(tmp_path, f"  sampler: {sampler}\n  trials: 4\n  space:\n"
                 "    train.learning_rate: {low: 3.0e-4, high: 3.0e-3, log: true}\n")

    def proposals(seed):
        study = optuna.create_study(sampler=space.make_sampler(sweep, seed))
        return [v["train.learning_rate"] for v in run_trials(study, sweep, 4)]
    assert proposals(11) == proposals(11)
    assert proposals(11) != proposals(12)


def test_sampler_and_pruner_kinds(tmp_path):
    lr = "  space:\n    train.learning_rate: {choices: [0.001, 0.003]}\n"
    kinds = {
        "grid": optuna.samplers.GridSampler, "random": optuna.samplers.RandomSampler,
        "tpe": optuna.samplers.TPESampler}
    for name, cls in kinds.items():
        sweep = load(tmp_path, f"  sampler: {name}\n  trials: 2\n{lr}")
        assert type(space.make_sampler(sweep, 0)) is cls
    pruners = {"none": optuna.pruners.NopPruner, "median": optuna.pruners.MedianPruner,
               "hyperband": optuna.pruners.HyperbandPruner}
    for name, cls in pruners.items():
        sweep = load(tmp_path, f"  pruner: {name}\n  trials: 2\n{lr}")
        assert type(space.make_pruner(sweep)) is cls


def median_study(tmp_path):
    """A median-pruned study with 3 finished trials at 0.9 val_accuracy after epochs 1 and 2."""
    sweep = load(tmp_path, "  pruner: median\n  trials: 5\n  space:\n"
                 "    train.learning_rate: {choices: [0.001, 0.003]}\n")
    study = optuna.create_study(direction="maximize", pruner=space.make_pruner(sweep))
    for _ in range(3):
        study.add_trial(create_trial(value=0.9, intermediate_values={1: 0.9, 2: 0.9}))
    return study


def test_median_pruner_stops_a_trailing_trial_after_epoch_2(tmp_path):
    trial = median_study(tmp_path).ask()
    trial.report(0.1, step=1)      # epochs are reported 1-based: progress.py's "epoch"
    trial.report(0.1, step=2)
    assert trial.should_prune()


def test_median_pruner_does_not_judge_a_trial_by_its_first_epoch(tmp_path):
    trial = median_study(tmp_path).ask()
    trial.report(0.1, step=1)
    assert not trial.should_prune()


# --- the budget: next_action, claim -----------------------------------------------------

def done(value: float = 0.5, **user_attrs) -> optuna.trial.FrozenTrial:
    return create_trial(state=TrialState.COMPLETE, value=value, user_attrs=user_attrs)


def failed(**user_attrs) -> optuna.trial.FrozenTrial:
    return create_trial(state=TrialState.FAIL, user_attrs=user_attrs)


def study_of(*trials) -> optuna.Study:
    study = optuna.create_study()
    for t in trials:
        study.add_trial(t)
    return study


def test_an_empty_study_is_taken():
    assert next_action(optuna.create_study(), 2) == "take"


def test_below_the_budget_a_new_point_is_taken():
    assert next_action(study_of(done(), failed()), 3) == "take"


def test_budget_reached_with_a_trial_running_waits():
    study = study_of(done())
    study.ask()                      # trial 1, RUNNING on some worker
    assert next_action(study, 2) == "wait"


def test_budget_reached_and_all_ended_is_done():
    # Complete, pruned and failed trials all use up their point.
    study = study_of(done(), create_trial(state=TrialState.PRUNED), failed())
    assert next_action(study, 3) == "done"


def test_a_waiting_trial_is_taken_even_at_the_budget():
    study = study_of(done(), failed(handed_back="SIGTERM"),
                     create_trial(state=TrialState.WAITING, user_attrs={"point": 1}))
    assert next_action(study, 2) == "take"


def test_a_retried_trial_keeps_its_point():
    # Trial 3 retries trial 2's point (as a hand-back records it): points 0, 1, 2.
    study = study_of(done(), done(), failed(), done(point=2))
    assert next_action(study, 4) == "take"
    assert next_action(study, 3) == "done"
    assert [point_of(t) for t in study.get_trials()] == [0, 1, 2, 2]


def test_a_heartbeat_retry_keeps_its_point():
    # Optuna's RetryHeartbeatStaleTrialCallback marks the copy with failed_trial.
    study = study_of(done(), failed(), create_trial(state=TrialState.COMPLETE, value=0.5,
                                                    system_attrs={"failed_trial": 1}))
    assert point_of(study.get_trials()[2]) == 1
    assert next_action(study, 2) == "done"
    assert next_action(study, 3) == "take"


def test_surplus_trials_are_ignored():
    study = study_of(done(), failed(surplus=True), failed(surplus=True))
    assert next_action(study, 2) == "take"
    assert next_action(study, 1) == "done"
    running = study.ask()
    running.set_user_attr("surplus", True)    # a surplus trial not yet ended: nothing to wait for
    assert next_action(study, 1) == "done"


def worker_for(tmp_path: Path, budget: int, study) -> Worker:
    sweep = load(tmp_path, f"  trials: {budget}\n  space:\n"
                 "    train.learning_rate: {choices: [0.001, 0.003]}\n")
    return Worker(sweep, study, tmp_path / "sweep", log=lambda _: None, warn=lambda _: None)


def test_trials_asked_at_once_beyond_the_budget_are_surplus(tmp_path):
    study = optuna.create_study()
    worker = worker_for(tmp_path, 1, study)
    first, second = study.ask(), study.ask()     # two workers asked at the same moment
    with pytest.raises(Surplus, match="trial 1: the budget of 1 is taken"):
        claim(worker, second)
    claim(worker, first)                         # the lower number keeps its place
    trials = {t.number: t for t in study.get_trials()}
    assert trials[0].user_attrs == {"point": 0}
    assert trials[1].user_attrs == {"point": 1, "surplus": True}
    study.tell(first, 0.5)
    study.tell(second, state=TrialState.FAIL)
    assert next_action(study, 1) == "done"


def test_a_queued_again_trial_is_claimed_at_the_budget(tmp_path):
    study = study_of(done(), failed(point=1, handed_back="SIGTERM"),
                     create_trial(state=TrialState.WAITING, user_attrs={"point": 1}))
    worker = worker_for(tmp_path, 2, study)
    trial = study.ask()
    assert trial.number == 2
    claim(worker, trial)                         # no Surplus: it holds point 1 already
    assert point_of(study.get_trials()[2]) == 1


# --- the objective ----------------------------------------------------------------------

def record_of(metrics: dict, path: Path):
    return SimpleNamespace(finished=lambda: metrics, run=SimpleNamespace(path=path))


METRICS = {"best": "cnn-tf", "models": [
    {"name": "cnn-keras", "val_accuracy": 0.91, "val_loss": 0.30},
    {"name": "cnn-tf", "val_accuracy": 0.95, "val_loss": 0.20}]}


@pytest.mark.parametrize("model, objective, expected", [
    ("best", "val_accuracy", 0.95), ("cnn-keras", "val_accuracy", 0.91),
    ("cnn-keras", "val_loss", 0.30)])
def test_objective_is_the_named_models_row(tmp_path, model, objective, expected):
    settings = SimpleNamespace(model=model, objective=objective)
    assert objective_of(record_of(METRICS, tmp_path / "run"), settings) == expected


def test_a_missing_objective_names_the_metrics_file(tmp_path):
    settings = SimpleNamespace(model="ffn-tf", objective="val_accuracy")
    with pytest.raises(RunError) as error:
        objective_of(record_of(METRICS, tmp_path / "run"), settings)
    assert str(error.value) == f"{tmp_path / 'run' / 'metrics.json'}: no val_accuracy for ffn-tf"
