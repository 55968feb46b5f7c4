"""The worker's per-batch progress (job.train.progress): the loops' hook counts batches per
epoch, and reports are throttled so a live display never slows training down."""

from __future__ import annotations

import numpy as np
import pytest

from job.train.progress import BatchReports, counted


class Clock:
    def __init__(self, times):
        self.times = iter(times)

    def __call__(self):
        return next(self.times)


def test_reports_are_throttled_to_one_per_interval_plus_each_epochs_last_batch():
    sent, reads = [], []

    def loss():
        reads.append(1)
        return 0.25
    report = BatchReports(sent.append, epochs=3, batch_size=32, may_stop_early=True, every=0.5,
                          clock=Clock([0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.5, 1.6]))
    for epoch, done in [(0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (0, 6), (1, 1), (1, 2)]:
        report(epoch, done, 6, loss)
    # t=0.0 the first; 0.2 and 0.4 too soon; 0.6 is 0.5 s on; 0.8 too soon; 0.9 ends the
    # epoch; 1.5 is 0.6 s after 0.9; 1.6 too soon
    assert [(r["epoch"], r["batch"]) for r in sent] == [(1, 1), (1, 4), (1, 6), (2, 1)]
    assert len(reads) == len(sent)      # the loss (a device sync) is read only to send it
    # timed from the epoch's first call: 3 batches in 0.6 s, then 5 in 0.9 s
    assert sent[0]["seconds_per_batch"] is None and sent[0]["images_per_second"] is None
    assert sent[1]["seconds_per_batch"] == pytest.approx(0.2)
    assert sent[1]["images_per_second"] == pytest.approx(32 / 0.2)
    assert sent[2]["seconds_per_batch"] == pytest.approx(0.18)
    assert sent[3]["seconds_per_batch"] == pytest.approx(0.18)   # kept until re-measured
    assert sent[0] | {"seconds_per_batch": 0} == {
        "epoch": 1, "epochs": 3, "batch": 1, "batches": 6, "loss": 0.25,
        "seconds_per_batch": 0, "images_per_second": None, "may_stop_early": True}


def test_the_hook_counts_each_epochs_batches_and_reads_the_running_loss_lazily():
    heard = []
    returned = [np.array([2.0, 1.0, 4.0]), np.array([1.0, 2.0, 2.0]),
                np.array([4.0, 0.0, 4.0]), np.array([2.0, 1.0, 4.0])]
    calls = iter(returned)
    step = counted(lambda iterator, n: next(calls),
                   lambda epoch, done, of, loss: heard.append((epoch, done, of, loss())),
                   of=3, first_epoch=2, count=lambda iterator, n: n)
    outs = [step(None, n) for n in (2, 1, 2, 1)]   # compiled calls of 2 and 1 batches
    assert all(out is sums for out, sums in zip(outs, returned))   # the loop's sums, untouched
    # epoch 2 (resumed there): 2/3 (loss 2/4), 3/3 (3/6); epoch 3 starts afresh: 4/4, 6/8
    assert heard == [(2, 2, 3, 0.5), (2, 3, 3, 0.5), (3, 2, 3, 1.0), (3, 3, 3, 0.75)]


def test_one_batch_per_call_by_default():
    heard = []
    step = counted(lambda x, y: np.array([1.0, 1.0, 2.0]),
                   lambda epoch, done, of, loss: heard.append((epoch, done)), of=2, first_epoch=0)
    for _ in range(3):
        step("x", "y")
    assert heard == [(0, 1), (0, 2), (1, 1)]
