"""report.md: the side-by-side comparison a user reads after a run, with pictures.

The pictures (learning curves, the best model's confusion matrix and misclassified
validation digits) go to `report/*.png` in the run folder and, the same images, to
TensorBoard under `tensorboard/report`. Everything is made from the run folder's
metrics and `validation.npz`, so `python -m job report RUN` can make it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from job.outputs.folder import Run
from job.outputs.plots import style_label
from job.styles import ARCHS, STYLES, ModelId
from job.system.files import write_atomic

PICTURES_DIR = "report"
TENSORBOARD_DIR = "tensorboard/report"
GRID_SIZE = 36   # misclassified digits shown: a 6x6 grid stays readable
# Columns a run has only sometimes: with TTA, and on data with held-out test labels.
EXTRA_COLUMNS = (("tta_val_accuracy", "val accuracy (TTA)"),
                 ("test_accuracy", "test accuracy"),
                 ("tta_test_accuracy", "test accuracy (TTA)"))


@dataclass(frozen=True)
class Validation:
    """The validation split and one model's logits on it, from validation.npz."""

    images: np.ndarray     # (N, 784) uint8
    labels: np.ndarray     # (N,) uint8
    logits: np.ndarray     # (N, 10)


def save_validation(run: Run, images: np.ndarray, labels: np.ndarray,
                    logits: dict[str, np.ndarray]) -> None:
    """Every model's validation logits beside the images and labels, so a report (and
    an ensemble) can be made again from the run folder alone."""
    saved = {"val_images": images, "val_labels": labels,
             **{f"logits/{name}": values for name, values in logits.items()}}
    write_atomic(run.path / "validation.npz", lambda f: np.savez_compressed(f, **saved))


def confusion_counts(labels: np.ndarray, predicted: np.ndarray, classes: int = 10) -> np.ndarray:
    """counts[true, predicted]; the counts sum to len(labels)."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(labels, int), np.asarray(predicted, int)), 1)
    return counts


def misclassified(labels: np.ndarray, logits: np.ndarray, limit: int = GRID_SIZE) -> np.ndarray:
    """Indices of the wrongly predicted examples, most confident mistakes first."""
    predicted = logits.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = logits[wrong, predicted[wrong]] - logits[wrong, labels[wrong].astype(int)]
    return wrong[np.argsort(-confidence, kind="stable")][:limit]


def load_validation(run_path: Path, model: str) -> tuple[Validation | None, str]:
    """The best model's validation predictions, or None and why there are none."""
    path = run_path / "validation.npz"
    if not path.is_file():
        return None, ("this run has no validation.npz (it was made before runs saved their "
                      "validation predictions); train a new run to get them")
    try:
        with np.load(path) as saved:
            if f"logits/{model}" not in saved.files:
                return None, f"validation.npz holds no logits for {model}"
            return Validation(saved["val_images"], saved["val_labels"],
                              saved[f"logits/{model}"]), ""
    except (OSError, ValueError, KeyError) as e:
        return None, f"validation.npz is unreadable ({e})"


def draw_pictures(metrics: dict, validation: Validation | None) -> dict[str, bytes]:
    """name → PNG bytes for every picture the data allows."""
    from job.outputs import plots
    pictures = {"learning_curves": plots.learning_curves(metrics["models"])}
    if validation is not None:
        best = metrics["best"]
        predicted = validation.logits.argmax(axis=1)
        counts = confusion_counts(validation.labels, predicted)
        accuracy = np.trace(counts) / max(counts.sum(), 1)
        pictures["confusion_matrix"] = plots.confusion_matrix(
            counts, f"{best} on {counts.sum()} validation digits: accuracy {accuracy:.4f}")
        shown = misclassified(validation.labels, validation.logits)
        wrong = int((predicted != validation.labels).sum())
        pictures["misclassified"] = plots.digit_grid(
            validation.images[shown], validation.labels[shown], predicted[shown],
            f"{best}: {len(shown)} of {wrong} misclassified (most confident first), "
            "true → predicted")
    return pictures


def write_report(run: Run, manifest: dict, metrics: dict) -> Path:
    """Draw the pictures into report/ and TensorBoard, then write report.md."""
    from job.outputs import plots
    validation, missing = load_validation(run.path, metrics["best"])
    pictures = draw_pictures(metrics, validation)
    (run.path / PICTURES_DIR).mkdir(exist_ok=True)
    for name, png in pictures.items():
        write_atomic(run.path / PICTURES_DIR / f"{name}.png", png)
    plots.write_tensorboard_images(run.path / TENSORBOARD_DIR, pictures)
    return run.write_text("report.md", format_report(run.id, manifest, metrics, missing))


def format_table(models: list[dict], best: str) -> str:
    """One markdown row per model, a family's styles next to each other (job.styles' order)."""
    extra = [(key, title) for key, title in EXTRA_COLUMNS if all(key in m for m in models)]
    lines = ["| model | arch | style | params | epochs run | best epoch | val accuracy "
             "| val loss | s/epoch | train s |" + "".join(f" {t} |" for _, t in extra),
             "|---|---|---|--:|--:|--:|--:|--:|--:|--:|" + "--:|" * len(extra)]
    families = {arch: i for i, arch in enumerate((*ARCHS, "ensemble"))}
    styles = {style: i for i, style in enumerate(STYLES)}
    for m in sorted(models, key=lambda m: (families.get(m["arch"], len(families)),
                                           styles.get(m["style"], len(styles)))):
        mark = " **(best)**" if m["name"] == best else ""
        per_epoch = f"{m['seconds_per_epoch']:.2f}" if m["seconds_per_epoch"] else "-"
        lines.append(
            f"| {m['name']}{mark} | {m['arch']} | {m['style']} | {m['params']:,} "
            f"| {m['epochs_run']} | {m['best_epoch'] or '-'} | {m['val_accuracy']:.4f} "
            f"| {m['val_loss']:.4f} | {per_epoch} | {m['train_seconds']:.1f} |"
            + "".join(f" {m[key]:.4f} |" for key, _ in extra))
    notes = [f"- `{m['name']}` averages the softmax of {', '.join(m['members'])}" +
             (": each copy was fit and early-stopped on its own split of the training rows, "
              "so the validation rows are unseen by all of them" if is_bag(m["members"])
              else ": its members were early-stopped on these validation rows, which "
                   "flatters it slightly")
             for m in models if m.get("members")]
    return "\n".join(lines + ([""] + notes if notes else []))


def format_speed(models: list[dict], fit_rows: int | None = None) -> str:
    """Every style of a family side by side, the notebook's headline question: time per
    epoch and images per second (of the `fit_rows` each epoch trains on), epochs run,
    accuracy, and each style's time per epoch over the plain TF loop's."""
    by_name = {m["name"]: m for m in models}
    rows = []
    for arch in ARCHS:
        family = [by_name[f"{arch}-{style}"] for style in STYLES if f"{arch}-{style}" in by_name]
        if len(family) < 2:
            continue
        tf_seconds = by_name.get(f"{arch}-tf", {}).get("seconds_per_epoch")
        for m in family:
            seconds = m["seconds_per_epoch"]
            images = f"{fit_rows / seconds:,.0f}" if fit_rows and seconds else "-"
            ratio = (f"{style_label(m['style'])}/TF {seconds / tf_seconds:.2f}×"
                     if m["style"] != "tf" and seconds and tf_seconds else "-")
            rows.append(f"| {arch} | {m['style']} | {f'{seconds:.2f}' if seconds else '-'} "
                        f"| {images} | {m['epochs_run']} | {m['val_accuracy']:.4f} | {ratio} |")
    if not rows:
        return "- (train two styles of a family to compare them)"
    images_are = (f"the {fit_rows:,} fit rows over s/epoch (an epoch's time includes its "
                  "validation pass)" if fit_rows else
                  "unknown: this run's manifest records no fit rows (data.fit_rows)")
    return "\n".join([
        "| family | style | s/epoch | images/s | epochs run | val accuracy | s/epoch vs TF |",
        "|---|---|--:|--:|--:|--:|--:|", *rows, "",
        "s/epoch is the median epoch after the first (which also traces and compiles); "
        f"images/s is {images_are}; the last column divides a style's s/epoch by its "
        "family's plain TF loop's."])


def format_submission(metrics: dict) -> str:
    """Which weights made the submission, how they predicted, and (with held-out labels)
    how well."""
    made = metrics.get("submission") or {"model": metrics["best"], "weights": "split",
                                         "tta": 0, "refit": []}
    if made["weights"] == "refit":
        lines = [f"- weights: **{made['model']} fit again on all {made['fit_rows']:,} labelled "
                 "rows** (train + validation), from its initial weights, for the epochs its "
                 "split run chose, at that run's learning rates; the validation figures above "
                 "are the split run's"]
        lines += [f"  - `{r['name']}`: {r['epochs_run']} epochs, {r['train_seconds']:.1f} s, "
                  f"final training accuracy {r['accuracy']:.4f}" for r in made["refit"]]
    else:
        lines = [f"- weights: {made['model']}'s from its split run (train.refit_full is off)"]
    lines.append(f"- test-time augmentation: the softmax averaged over each test image and "
                 f"{made['tta']} distorted copies (predict.tta)" if made["tta"] else
                 "- test-time augmentation: off (predict.tta: 0)")
    if "test_accuracy" in made:
        without = (f" (without TTA: {made['test_accuracy_without_tta']:.4f})"
                   if "test_accuracy_without_tta" in made else "")
        lines.append(f"- held-out test accuracy of the submitted predictions: "
                     f"**{made['test_accuracy']:.4f}**{without}")
    return "\n".join(lines)


def format_pictures(missing: str) -> str:
    """Links to the PNGs; says why the validation pictures are absent, if they are."""
    lines = ["### Learning curves", "",
             f"![learning curves]({PICTURES_DIR}/learning_curves.png)", ""]
    if missing:
        return "\n".join(lines + [f"_No confusion matrix or misclassified digits: {missing}._"])
    return "\n".join(lines + [
        "### Best model's confusion matrix (validation)", "",
        f"![confusion matrix]({PICTURES_DIR}/confusion_matrix.png)", "",
        "### Misclassified validation digits", "",
        f"![misclassified digits]({PICTURES_DIR}/misclassified.png)", "",
        f"The same images are in TensorBoard's Images tab (`{TENSORBOARD_DIR}`)."])


def format_report(run_id: str, manifest: dict, metrics: dict, missing: str = "") -> str:
    """The whole report.md; `missing` says why there are no validation pictures."""
    data = manifest.get("data", {})
    return "\n".join([
        f"# Run {run_id}", "",
        f"- data: **{data.get('source', '?')}** from `{data.get('dir', '?')}` "
        f"({data.get('train_rows', '?')} train rows: {data.get('fit_rows', '?')} fit, "
        f"{data.get('val_rows', '?')} validation; {data.get('test_rows', '?')} test rows)",
        f"- best model: **{metrics['best']}** (highest validation accuracy; ties: lower loss)",
        "- submission: `submission.csv` (how it was made: below)", "",
        "## Models", "", format_table(metrics["models"], metrics["best"]), "",
        "## The submission", "", format_submission(metrics), "",
        "## The styles side by side", "",
        format_speed(metrics["models"], data.get("fit_rows")), "",
        "Validation metrics are recomputed by the same code for every model from its "
        "final (restored-best) weights, so the styles are compared on equal terms.", "",
        "## Pictures", "", format_pictures(missing), ""])


def is_bag(members: list[str]) -> bool:
    """An average of one model's bag copies (each fit on its own split of the rows)."""
    return all(ModelId.parse(name).copy for name in members)
