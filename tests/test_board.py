"""The live display's arithmetic (job.outputs.board) and its words (job.outputs.live): each
expected time is worked out by hand in the comment beside it."""

from __future__ import annotations

import pytest

from job.outputs.board import Board, Entry, Estimate, finish_time, remaining
from job.outputs.live import duration, run_line
from job.styles import ModelId


def progress(epoch, epochs, batch, batches, seconds_per_batch, may_stop_early=True):
    return {"epoch": epoch, "epochs": epochs, "batch": batch, "batches": batches, "loss": 0.5,
            "seconds_per_batch": seconds_per_batch,
            "images_per_second": 64 / seconds_per_batch if seconds_per_batch else None,
            "may_stop_early": may_stop_early}


def running(seconds: list[float], latest: dict) -> Entry:
    return Entry(ModelId.parse("cnn-tf"), latest["epochs"], True, "running", latest, seconds)


@pytest.mark.parametrize("epoch_seconds, latest, expected", [
    # epoch 2 of 5 at batch 10/40: 30 batches x 0.25 s = 7.5, then 3 epochs x 12 s = 36
    ([12.0], progress(2, 5, 10, 40, 0.25), 43.5),
    # the first epoch (20 s, tracing) left out: median(11, 13, 12) = 12; 10 x 0.25 + 3 x 12
    ([20.0, 11.0, 13.0, 12.0], progress(5, 8, 30, 40, 0.25), 38.5),
    # no epoch finished yet: an epoch is 40 batches x 0.25 = 10 s; 32 x 0.25 + 2 x 10
    ([], progress(1, 3, 8, 40, 0.25), 28.0),
    # its epoch's batches all done (validating): only the 2 epochs left, 2 x 9 s
    ([9.0], progress(1, 3, 40, 40, 0.2), 18.0),
])
def test_a_running_models_time_left(epoch_seconds, latest, expected):
    assert remaining(running(epoch_seconds, latest)) == pytest.approx(expected)


def test_a_model_without_a_pace_has_no_time_left_yet():
    assert remaining(running([], progress(1, 3, 1, 40, None))) is None


@pytest.mark.parametrize("running_left, queued, slots, expected", [
    # slots free at 10 and 30: 20 → 10+20=30; 20 → 30+20=50; 5 → 30+5=35; last ends at 50
    ([10.0, 30.0], [20.0, 20.0, 5.0], 2, 50.0),
    # a third slot idle: 20 → 0+20; 20 → 0+20; 5 → 10+5; last ends at 20
    ([10.0], [20.0, 20.0, 5.0], 3, 20.0),
    ([], [3.0, 4.0], 1, 7.0),      # one after the other
    ([8.0], [], 1, 8.0),
    ([], [], 2, 0.0),
])
def test_the_rounds_end_when_each_free_slot_takes_the_next_model(running_left, queued, slots,
                                                                 expected):
    assert finish_time(running_left, queued, slots) == pytest.approx(expected)


def test_queued_models_are_estimated_from_their_family_and_style_measured_in_this_run():
    board = Board(epochs=10, may_stop_early=True)
    board.queue(["cnn-tf", "ffn-torch", "cnn-tf-bag1", "cnn-keras"], slots=2)
    for seconds in (25.0, 21.0):            # cnn-tf's epochs 1 and 2
        board.epoch("cnn-tf", {"seconds": seconds})
    board.progress("cnn-tf", progress(3, 10, 20, 40, 0.5))
    board.progress("ffn-torch", progress(1, 10, 10, 40, 0.1))
    # cnn-tf: pace median(21) = 21; 20 x 0.5 + 7 x 21 = 157
    # ffn-torch: pace 40 x 0.1 = 4; 30 x 0.1 + 9 x 4 = 39
    # cnn-tf-bag1: cnn-tf's 21 s x 10 epochs = 210; cnn-keras: no keras CNN measured yet
    # slots free at 39 and 157: 210 → 39+210 = 249; cnn-keras (0) → 157; the last at 249
    assert board.estimate() == Estimate(pytest.approx(249.0), unmeasured=1, bounded=True)
    assert board.queued() == ["cnn-tf-bag1", "cnn-keras"]
    assert [name for name, *_ in board.running()] == ["cnn-tf", "ffn-torch"]
    board.end(("ffn-torch",))
    # ffn-torch ended: its slot is free now: 210 → 0+210, cnn-keras → 157
    assert board.estimate().seconds == pytest.approx(210.0)
    assert [name for name, *_ in board.running()] == ["cnn-tf"]


def test_without_early_stopping_or_for_a_refit_the_time_is_no_bound():
    board = Board(epochs=4, may_stop_early=False)
    board.queue(["ffn-keras"], slots=1)
    board.progress("ffn-keras", progress(1, 4, 5, 10, 0.5, may_stop_early=False))
    # 5 x 0.5 + 3 x (10 x 0.5) = 17.5
    assert board.estimate() == Estimate(pytest.approx(17.5), unmeasured=0, bounded=False)
    board = Board(epochs=4, may_stop_early=True)
    board.queue(["ffn-keras-full"], slots=1)   # a refit runs its chosen epochs, all of them
    assert board.estimate().bounded is False


@pytest.mark.parametrize("seconds, text", [
    (None, "?"), (0.4, "0s"), (42.0, "42s"), (185.0, "3m05s"), (3725.0, "1h02m")])
def test_durations_read_at_a_glance(seconds, text):
    assert duration(seconds) == text


def test_the_runs_line_says_what_an_eta_cannot_know():
    assert run_line(Estimate(185.0, 2, True), ["cnn-tf", "cnn-keras"]) == (
        "queued: cnn-tf cnn-keras  ·  run ETA ≤ 3m05s + 2 models not measured yet  ·  "
        "≤: early stopping may end it sooner")
    assert run_line(Estimate(42.0, 0, False), []) == "run ETA 42s"
