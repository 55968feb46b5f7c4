"""The training styles, the net families and a model's identity: what every layer reads.

A style is one folder, `job/styles/<style>/`, the only code that imports its framework.
Its `loop` module is the style's face to the worker process that trains one model:
`setup(runtime_config, models)` (the devices, in that framework), `fit(task, split, log,
runtime)`, `load_predictor(folder, task)` and `warp_images(images, transforms)` (TTA
views). The config validates model names against this table and the worker dispatches
through it, so adding a style is one folder and one line here. Modules are named, not
imported: the parent process plans and checks before any framework loads, and never
loads one (tests/test_architecture.py reads these names as import edges).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Style:
    loop: str          # the module with setup, fit, load_predictor and warp_images
    framework: str     # the one framework its worker imports
    description: str   # how the log names the loop


STYLES = {
    "tf": Style("job.styles.tf.loop", "tensorflow", "plain TensorFlow loop"),
    "keras": Style("job.styles.keras.loop", "tensorflow", "Keras fit"),
    "torch": Style("job.styles.torch.loop", "torch", "plain PyTorch loop"),
}

ARCHS = ("ffn", "cnn", "lstm")

# Every model the job can train: <arch>-<style>, e.g. cnn-keras.
MODEL_NAMES = tuple(f"{arch}-{style}" for arch in ARCHS for style in STYLES)

BAG, REFIT = "-bag", "-full"


def split_name(model: str) -> tuple[str, str]:
    """`cnn-keras` → ("cnn", "keras")."""
    arch, _, style = model.partition("-")
    return arch, style


@dataclass(frozen=True, order=True)
class ModelId:
    """One trained model: its family and style, which bag copy (0: not one) and whether
    it is the final fit on every labelled row. Its name is its folder and file name."""

    arch: str
    style: str
    copy: int = 0          # 1-based bag copy; 0 for the configured model itself
    refit: bool = False    # train.refit_full's fit on every labelled row

    @classmethod
    def of(cls, model: str) -> "ModelId":
        """`cnn-keras` (a configured model's name) → its identity."""
        arch, style = split_name(model)
        return cls(arch, style)

    @classmethod
    def parse(cls, name: str) -> "ModelId":
        """The inverse of `name`: cnn-keras-bag3-full → (cnn, keras, 3, refit)."""
        refit = name.endswith(REFIT)
        base, _, copy = name.removesuffix(REFIT).partition(BAG)
        arch, style = split_name(base)
        if arch not in ARCHS or style not in STYLES or (copy and not copy.isdigit()):
            raise ValueError(f"not a model name: {name}")
        return cls(arch, style, int(copy or 0), refit)

    @property
    def model(self) -> str:
        """The configured model's name, e.g. cnn-keras (without copy or refit)."""
        return f"{self.arch}-{self.style}"

    @property
    def name(self) -> str:
        return (self.model + (f"{BAG}{self.copy}" if self.copy else "")
                + (REFIT if self.refit else ""))

    @property
    def framework(self) -> str:
        return STYLES[self.style].framework

    def bag_copy(self, copy: int) -> "ModelId":
        return replace(self, copy=copy)

    def refitted(self) -> "ModelId":
        return replace(self, refit=True)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class AverageId:
    """A candidate averaged from others: the configured `ensemble`, or the bag of one
    model's copies (`bag-cnn-keras`)."""

    bag_of: str | None = None   # the bagged model's name; None for the ensemble

    @property
    def name(self) -> str:
        return f"bag-{self.bag_of}" if self.bag_of else "ensemble"

    def __str__(self) -> str:
        return self.name
