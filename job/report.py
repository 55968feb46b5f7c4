"""report.md: the side-by-side comparison a user reads after a run."""

from __future__ import annotations


def format_table(models: list[dict], best: str) -> str:
    """One markdown row per model, TF and Keras of a family next to each other."""
    lines = ["| model | arch | style | params | epochs run | best epoch | val accuracy "
             "| val loss | s/epoch | train s |",
             "|---|---|---|--:|--:|--:|--:|--:|--:|--:|"]
    for m in sorted(models, key=lambda m: (m["arch"], m["style"] != "tf")):
        mark = " **(best)**" if m["name"] == best else ""
        lines.append(
            f"| {m['name']}{mark} | {m['arch']} | {m['style']} | {m['params']:,} "
            f"| {m['epochs_run']} | {m['best_epoch']} | {m['val_accuracy']:.4f} "
            f"| {m['val_loss']:.4f} | {m['seconds_per_epoch']:.2f} | {m['train_seconds']:.1f} |")
    return "\n".join(lines)


def format_speed(models: list[dict]) -> str:
    """Keras / TF seconds-per-epoch ratio per family, the notebook's headline question."""
    by_name = {m["name"]: m for m in models}
    lines = []
    for arch in ("ffn", "cnn"):
        tf_, keras_ = by_name.get(f"{arch}-tf"), by_name.get(f"{arch}-keras")
        if tf_ and keras_ and tf_["seconds_per_epoch"] > 0:
            ratio = keras_["seconds_per_epoch"] / tf_["seconds_per_epoch"]
            lines.append(f"- {arch}: Keras takes {ratio:.2f}× the TF loop's time per epoch "
                         f"({keras_['seconds_per_epoch']:.2f}s vs {tf_['seconds_per_epoch']:.2f}s)")
    return "\n".join(lines) or "- (train both styles of a family to compare them)"


def format_report(run_id: str, manifest: dict, metrics: dict) -> str:
    """The whole report.md."""
    data = manifest.get("data", {})
    return "\n".join([
        f"# Run {run_id}", "",
        f"- data: **{data.get('source', '?')}** from `{data.get('dir', '?')}` "
        f"({data.get('train_rows', '?')} train rows: {data.get('fit_rows', '?')} fit, "
        f"{data.get('val_rows', '?')} validation; {data.get('test_rows', '?')} test rows)",
        f"- best model: **{metrics['best']}** (highest validation accuracy; ties: lower loss)",
        f"- submission: `submission.csv`", "",
        "## Models", "", format_table(metrics["models"], metrics["best"]), "",
        "## Keras vs plain TensorFlow", "", format_speed(metrics["models"]), "",
        "Validation metrics are recomputed by the same code for every model from its "
        "final (restored-best) weights, so the styles are compared on equal terms.", ""])
