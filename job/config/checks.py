"""Rules that tie several keys together, checked once the config is built.

Everything the config alone decides is checked here, so a mistake ends before a run
folder exists or TensorFlow loads, not hours later inside a net builder.
"""

from __future__ import annotations

import dataclasses

from job import competition
from job.config.cnn import Layer, Pool, conv_blocks, parse_block
from job.config.schema import MESSAGE_FIELDS, CNNSpec, Config, EnsembleConfig
from job.config.values import Origin, printable
from job.errors import ConfigError
from job.styles import ModelId

CNN_DEFAULTS = {f.name: f.default for f in dataclasses.fields(CNNSpec)}


def check_config(config: Config, origin: Origin) -> None:
    """Every cross-key rule, in the order a reader meets the keys."""
    check_cnn(config.arch.cnn, origin)
    check_ensemble(config.ensemble, config.models, origin)
    if config.runtime.distribute == "multi_worker":
        check_multi_worker(config.trained_models, origin.where("runtime.distribute"))
    if config.runtime.distribute != "auto":
        problem = torch_across_devices(config.trained_models, config.runtime.distribute)
        if problem:
            raise ConfigError(f"{origin.where('runtime.distribute')}: {problem}")
    check_message(config.kaggle.message, origin)
    check_tta(config, origin)


def check_cnn(spec: CNNSpec, origin: Origin) -> None:
    """`blocks` parse, stand alone, and leave at least one pixel at every layer."""
    for i, text in enumerate(spec.blocks):
        try:
            parse_block(text)
        except ValueError as e:
            raise ConfigError(f"{origin.where(f'arch.cnn.blocks[{i}]')}: {e}") from None
    if spec.blocks:
        for name in ("filters", "convs_per_block", "kernel_size", "pooling"):
            if getattr(spec, name) != CNN_DEFAULTS[name]:
                raise ConfigError(
                    f"{origin.where(f'arch.cnn.{name}')}: has no effect while arch.cnn.blocks "
                    "is set; drop it or set arch.cnn.blocks: []")
    side = competition.IMAGE_SIDE
    for b, block in enumerate(conv_blocks(spec)):
        for n, layer in enumerate(block):
            after = layer.side(side, spec)
            if after < 1:
                raise ConfigError(f"{origin.where(shrink_key(spec, layer, b))}: "
                                  f"{shrink_problem(spec, layer, b, n, side)}")
            side = after


def shrink_key(spec: CNNSpec, layer: Layer, block: int) -> str:
    """The key to name when `layer` leaves nothing: the block entry, or the uniform key."""
    if spec.blocks:
        return f"arch.cnn.blocks[{block}]"
    return "arch.cnn.filters" if isinstance(layer, Pool) else "arch.cnn.kernel_size"


def shrink_problem(spec: CNNSpec, layer: Layer, block: int, n: int, side: int) -> str:
    """Why `layer` (the n-th of its block) cannot take side x side maps, and what to do."""
    image = f"{competition.IMAGE_SIDE}x{competition.IMAGE_SIDE}"
    if spec.blocks:
        at, fewer = f"layer {n + 1} ({layer})", "fewer layers"
    else:
        if isinstance(layer, Pool) and spec.padding == "same":
            # Only the pools shrink the maps: each pooled block halves them.
            return (f"{len(spec.filters)} pooled blocks shrink the {image} image to nothing; "
                    f"use at most {block} blocks or set arch.cnn.pooling: none")
        kind = "the pool" if isinstance(layer, Pool) else f"conv {n + 1}"
        at, fewer = f"{kind} of block {block + 1}", "fewer blocks"
    if isinstance(layer, Pool):
        return (f"{at} meets {side}x{side} feature maps and shrinks them to nothing; "
                f"use {fewer}" + (", smaller kernels or padding: same"
                                  if spec.padding == "valid" else ""))
    return (f"{at} meets {side}x{side} feature maps, smaller than its "
            f"{layer.kernel}x{layer.kernel} kernel under arch.cnn.padding: valid; "
            f"use a smaller kernel, {fewer} or padding: same")


def check_ensemble(ensemble: EnsembleConfig, models: tuple[str, ...], origin: Origin) -> None:
    """Ensemble members must be trained models; a bag needs a model and 2+ copies."""
    missing = [m for m in ensemble.members if m not in models]
    if missing:
        raise ConfigError(f"{origin.where('ensemble.members')}: {', '.join(missing)} not in "
                          "`models`; an ensemble averages models the run trains")
    if len(ensemble.members) == 1:
        raise ConfigError(f"{origin.where('ensemble.members')}: expected 2 or more models "
                          "(or none), got 1")
    if (ensemble.bag_model == "none") != (ensemble.bag_copies == 0):
        raise ConfigError(f"{origin.where('ensemble.bag_copies')}: set both ensemble.bag_model "
                          "and ensemble.bag_copies (2 or more), or neither")
    if ensemble.bag_copies == 1:
        raise ConfigError(f"{origin.where('ensemble.bag_copies')}: expected 0 or at least 2 "
                          "copies, got 1")


def check_multi_worker(models: tuple[str, ...], where: str) -> None:
    """runtime.distribute: multi_worker with a Keras model cannot work; see keras_across_workers."""
    problem = keras_across_workers(models)
    if problem:
        raise ConfigError(f"{where}: {problem}")


def keras_across_workers(models: tuple[str, ...]) -> str | None:
    """Why these models cannot train across workers, or None. Keras 3.15's trainer reduces
    every step's outputs per replica with "auto", along axis 0, which fails across workers
    (keras-team/keras#20585, still open; tensorflow/tensorflow#72388), and
    `distribute_reduction_method` does not change that path. The plain-TF loop reduces
    its own sums and scales across workers today."""
    keras_models = [m for m in models if m.endswith("-keras")]
    if not keras_models:
        return None
    return (f"{', '.join(keras_models)} cannot train under MultiWorkerMirroredStrategy "
            "(Keras 3's fit fails across workers: keras-team/keras#20585, "
            "tensorflow/tensorflow#72388): train only the "
            "-tf models across machines, or unset TF_CONFIG (runtime.distribute: mirrored uses "
            "every GPU of one machine in both TF styles)")


def torch_across_devices(models: tuple[str, ...], kind: str) -> str | None:
    """Why these models cannot train under the `kind` strategy, or None: data parallelism
    is built for the TensorFlow styles only; the torch style trains on one device."""
    torch_models = [m for m in models if ModelId.of(m).framework == "torch"]
    if kind in ("none", "auto") or not torch_models:
        return None
    return (f"{', '.join(torch_models)} train on one device: the torch style has no data "
            f"parallelism ({kind} is for the -tf and -keras models); set runtime.distribute: "
            "none, or train the torch models in a run of their own")


def check_message(template: str, origin: Origin) -> None:
    """The submission message template may only use the placeholders we fill in."""
    try:
        template.format(**MESSAGE_FIELDS)
    except (KeyError, IndexError, ValueError, TypeError, AttributeError) as e:
        raise ConfigError(
            f"{origin.where('kaggle.message')}: invalid template ({type(e).__name__}: "
            f"{printable(str(e))}); "
            f"placeholders: {', '.join('{' + k + '}' for k in MESSAGE_FIELDS)}") from None


def check_tta(config: Config, origin: Origin) -> None:
    """TTA draws its distortions from the training augmentation's ranges: it needs some."""
    if config.predict.tta and not config.train.augment.active:
        raise ConfigError(
            f"{origin.where('predict.tta')}: test-time augmentation draws its distortions from "
            "train.augment's ranges, which are all 0; set rotation_degrees, zoom or shift "
            "there, or predict.tta: 0")
