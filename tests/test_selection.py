"""The submitted model is the one with the best validation accuracy."""

from job.outputs.submission import select_best


def row(name, acc, loss):
    return {"name": name, "val_accuracy": acc, "val_loss": loss}


def test_highest_accuracy_wins():
    assert select_best([row("a", 0.9, 0.1), row("b", 0.95, 0.5)])["name"] == "b"


def test_tie_goes_to_lower_loss_then_config_order():
    assert select_best([row("a", 0.9, 0.3), row("b", 0.9, 0.2)])["name"] == "b"
    assert select_best([row("a", 0.9, 0.2), row("b", 0.9, 0.2)])["name"] == "a"


def test_a_lower_loss_does_not_beat_a_higher_accuracy():
    assert select_best([row("a", 0.96, 0.9), row("b", 0.95, 0.01)])["name"] == "a"
