"""The training styles and the net families: the one registry every layer reads.

A style is one loop module in `job.train` (which builds its nets from one builder
module in `job.nets`). The config validates model names against this table and
`job.train` dispatches through it, so adding a style is its two files and one line
here. Modules are named, not imported: the config is checked before TensorFlow loads.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Style:
    loop: str          # the module with fit(task, split, log, runtime) and load_predictor
    description: str   # how the log names the loop


STYLES = {
    "tf": Style("job.styles.tf.loop", "plain TensorFlow loop"),
    "keras": Style("job.styles.keras.loop", "Keras fit"),
    "torch": Style("job.styles.torch.loop", "plain PyTorch loop"),
}

ARCHS = ("ffn", "cnn", "lstm")

# Every model the job can train: <arch>-<style>, e.g. cnn-keras.
MODEL_NAMES = tuple(f"{arch}-{style}" for arch in ARCHS for style in STYLES)


def split_name(model: str) -> tuple[str, str]:
    """`cnn-keras` → ("cnn", "keras")."""
    arch, _, style = model.partition("-")
    return arch, style
