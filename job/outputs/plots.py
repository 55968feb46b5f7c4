"""The report's pictures as PNG bytes, and the same pictures for TensorBoard's Images tab.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot), so nothing here
touches a display or matplotlib's global backend, and importing this module loads
neither matplotlib nor TensorFlow.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from job.competition import IMAGE_SIDE
from job.outputs import events
from job.styles import STYLES

# One dash per style (in job.styles' order), one colour per model.
DASHES = {"-": "solid", "--": "dashed", "-.": "dash-dot", ":": "dotted"}
STYLE_LINE = dict(zip(STYLES, DASHES))
OTHER_LINE = ":"   # a style past the dashes above (or none, e.g. an ensemble)


def style_label(style: str) -> str:
    """How the report, its pictures and the bench name a style: TF, Keras, Torch."""
    return "TF" if style == "tf" else style.capitalize()


def legend_title(models: list[dict]) -> str:
    """Which dash is which style, for the styles these models were trained in."""
    shown = {m.get("style") for m in models}
    return "\n".join(f"{DASHES[dash]}: {style_label(style)}"
                     for style, dash in STYLE_LINE.items() if style in shown)


def new_figure(width: float, height: float):
    """A figure bound to the Agg canvas: renders to PNG without a display."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def to_png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def learning_curves(models: list[dict]) -> bytes:
    """Loss and accuracy per epoch, train (thin) and validation (thick), every model
    overlaid; a dot marks the best epoch (the weights kept), an x where training stopped."""
    figure = new_figure(13, 4.8)
    loss_ax, acc_ax = figure.subplots(1, 2)
    for k, m in enumerate(m for m in models if m.get("history")):
        colour = f"C{k % 10}"   # matplotlib's default cycle, the same colour in both panels
        epochs = [h["epoch"] for h in m["history"]]
        dash = STYLE_LINE.get(m.get("style"), OTHER_LINE)
        for ax, key in ((loss_ax, "loss"), (acc_ax, "accuracy")):
            ax.plot(epochs, [h[key] for h in m["history"]], dash, color=colour, lw=1, alpha=0.45)
            val = [h[f"val_{key}"] for h in m["history"]]
            ax.plot(epochs, val, dash, color=colour, lw=2, label=m["name"])
            best = m.get("best_epoch")
            if best in epochs:
                ax.plot(best, val[epochs.index(best)], "o", color=colour, ms=8, mec="black")
            ax.plot(epochs[-1], val[-1], "x", color=colour, ms=8, mew=2)
    loss_ax.set(title="loss (thick: validation, thin: train)", xlabel="epoch",
                ylabel="cross-entropy", yscale="log")
    acc_ax.set(title="accuracy (● best epoch kept, × stopped)", xlabel="epoch",
               ylabel="accuracy", ylim=(accuracy_floor(models), 1.0 + 0.005))
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator
    # Plain numbers (0.3, not 3×10⁻¹) on the log axis, minor ticks included: a loss that
    # only falls from 0.9 to 0.2 would otherwise show no labels at all.
    loss_ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    loss_ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.legend(*acc_ax.get_legend_handles_labels(), loc="outside right upper",
                  title=legend_title([m for m in models if m.get("history")]) or None,
                  fontsize="small")
    return to_png(figure)


def accuracy_floor(models: list[dict]) -> float:
    """Bottom of the accuracy axis: low enough to show every model's best epoch with
    room, high enough that the first epochs do not squash the differences that matter."""
    best = [h["val_accuracy"] for m in models for h in m.get("history") or []
            if h["epoch"] == m.get("best_epoch")]
    if not best:
        return 0.0
    return max(0.0, 1 - 3 * (1 - min(best)) - 0.01)


def confusion_matrix(matrix: np.ndarray, title: str) -> bytes:
    """Counts in every cell; colour is the share of the true class's row, so the
    mistakes stand out even when the diagonal holds nearly everything."""
    figure = new_figure(6.4, 5.6)
    ax = figure.subplots()
    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    image = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                    color="white" if rows[i, j] > 0.5 else ("crimson" if i != j else "black"))
    classes = range(matrix.shape[0])
    ax.set(xticks=classes, yticks=classes, xlabel="predicted", ylabel="true", title=title)
    figure.colorbar(image, ax=ax, label="share of the true class")
    return to_png(figure)


def digit_grid(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray,
               title: str) -> bytes:
    """Up to 36 digits, 6 per row, each titled `true → predicted`."""
    shown = len(images)
    columns = 6
    rows = max(1, -(-shown // columns))
    figure = new_figure(1.3 * columns, 1.45 * rows + 0.5)
    figure.suptitle(title)
    axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    for k, ax in enumerate(axes):
        ax.set_axis_off()
        if k < shown:
            ax.imshow(images[k].reshape(IMAGE_SIDE, IMAGE_SIDE), cmap="gray_r", vmin=0, vmax=255)
            ax.set_title(f"{labels[k]} → {predicted[k]}", fontsize=10, color="crimson")
    return to_png(figure)


def write_tensorboard_images(logdir: Path, pictures: dict[str, bytes]) -> None:
    """Each PNG as an image summary under `logdir`, replacing earlier report events so
    regenerating a report does not stack copies in TensorBoard."""
    for old in logdir.glob("events.out.tfevents.*"):
        old.unlink()
    events.write_images(logdir, pictures)
