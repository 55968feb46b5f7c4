"""The config's shape: typed, frozen dataclasses, each field with its validation rule.

Every field carries its constraint in `metadata` (see `_f`); `job.config.values`
walks this tree, so adding a key means adding one field here and one commented line
in each YAML file. Rules that tie several keys together live in `job.config.checks`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from job.competition import IMAGE_SIDE, SLUG
from job.styles import MODEL_NAMES

ACTIVATIONS = ("relu", "elu", "gelu", "tanh", "sigmoid")


def _f(default: Any, *, lo: float | None = None, hi: float | None = None,
       lo_open: bool = False, hi_open: bool = False, choices: tuple | None = None,
       min_len: int = 0) -> Any:
    """A field with its validation rule; list defaults are stored as tuples."""
    meta = dict(lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, choices=choices,
                min_len=min_len)
    if dataclasses.is_dataclass(default) and isinstance(default, type):
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class DataConfig:
    source: Literal["auto", "kaggle", "local", "sample"] = "auto"
    dir: str = f"data/{SLUG}"
    sample_dir: str = "data/sample"
    val_fraction: float = _f(0.1, lo=0.0, hi=0.5, lo_open=True)
    seed: int = _f(42, lo=0)


@dataclass(frozen=True)
class FFNSpec:
    hidden: tuple[int, ...] = _f((512, 256), lo=1, min_len=1)
    activation: str = _f("relu", choices=ACTIVATIONS)
    dropout: float = _f(0.2, lo=0.0, hi=1.0, hi_open=True)
    batch_norm: bool = False
    batch_norm_momentum: float = _f(0.9, lo=0.0, hi=1.0, hi_open=True)


@dataclass(frozen=True)
class CNNSpec:
    filters: tuple[int, ...] = _f((32, 64), lo=1, min_len=1)
    convs_per_block: int = _f(2, lo=1)
    kernel_size: int = _f(3, lo=1, hi=IMAGE_SIDE)
    pooling: Literal["max", "avg", "none"] = "max"
    # Deotte's notation, one entry per block ("32C3-32C3-32C5S2"); in place of the four
    # keys above when set. Parsed and checked by job.config.cnn and job.config.checks.
    blocks: tuple[str, ...] = _f(())
    padding: Literal["same", "valid"] = _f("same")
    batch_norm: bool = True
    batch_norm_momentum: float = _f(0.9, lo=0.0, hi=1.0, hi_open=True)
    dropout: float = _f(0.25, lo=0.0, hi=1.0, hi_open=True)
    dense: tuple[int, ...] = _f((256,), lo=1)
    dense_dropout: float = _f(0.4, lo=0.0, hi=1.0, hi_open=True)
    activation: str = _f("relu", choices=ACTIVATIONS)


@dataclass(frozen=True)
class LSTMSpec:
    units: tuple[int, ...] = _f((128,), lo=1, min_len=1)
    dropout: float = _f(0.2, lo=0.0, hi=1.0, hi_open=True)
    dense: tuple[int, ...] = _f((), lo=1)


@dataclass(frozen=True)
class ArchConfig:
    ffn: FFNSpec = _f(FFNSpec)
    cnn: CNNSpec = _f(CNNSpec)
    lstm: LSTMSpec = _f(LSTMSpec)


@dataclass(frozen=True)
class EarlyStoppingConfig:
    monitor: Literal["val_loss", "val_accuracy", "loss", "accuracy"] = "val_loss"
    mode: Literal["auto", "min", "max"] = "auto"
    patience: int = _f(5, lo=0)
    min_delta: float = _f(0.0, lo=0.0)
    restore_best_weights: bool = True
    # False: train every epoch and keep the last one's weights (a published recipe's fixed
    # epoch count); the other keys here then decide nothing.
    enabled: bool = True

    @property
    def resolved_mode(self) -> str:
        """`auto` means min for a loss and max for an accuracy, as in Keras."""
        if self.mode != "auto":
            return self.mode
        return "min" if self.monitor.endswith("loss") else "max"


@dataclass(frozen=True)
class AugmentConfig:
    rotation_degrees: float = _f(0.0, lo=0.0, hi=180.0)
    zoom: float = _f(0.0, lo=0.0, hi=1.0, hi_open=True)
    shift: float = _f(0.0, lo=0.0, hi=0.5)

    @property
    def active(self) -> bool:
        return bool(self.rotation_degrees or self.zoom or self.shift)


@dataclass(frozen=True)
class ScheduleConfig:
    kind: Literal["constant", "exponential", "plateau", "one_cycle"] = "constant"
    decay: float = _f(0.95, lo=0.0, hi=1.0, lo_open=True)
    factor: float = _f(0.5, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    patience: int = _f(3, lo=0)
    min_learning_rate: float = _f(1e-5, lo=0.0)
    # one_cycle, per step, as torch.optim.lr_scheduler.OneCycleLR (cos, two phases): from
    # learning_rate x start_factor up to learning_rate over warmup_fraction of the steps, then
    # down to learning_rate x end_factor. OneCycleLR's div_factor 25 (1/25 = 0.04) and
    # final_div_factor 1e4 (a divisor of the start rate: 0.04 / 1e4 = 4e-6 of the peak; here
    # both factors are of the peak); a quarter of the steps warming up (OneCycleLR: 0.3).
    warmup_fraction: float = _f(0.25, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    start_factor: float = _f(0.04, lo=0.0, hi=1.0, lo_open=True)
    end_factor: float = _f(4e-6, lo=0.0, hi=1.0, lo_open=True)
    # Not a YAML key: one rate per epoch, replayed in place of `kind` (a refit repeats the
    # rates its split run used, whatever rule chose them).
    rates: tuple[float, ...] = field(default=(), metadata={"internal": True})


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = _f(30, lo=1)
    batch_size: int = _f(128, lo=1)
    learning_rate: float = _f(1e-3, lo=0.0, lo_open=True)
    log_every: int = _f(1, lo=1)
    steps_per_execution: int = _f(1, lo=1)
    seed: int = _f(0, lo=0)
    early_stopping: EarlyStoppingConfig = _f(EarlyStoppingConfig)
    augment: AugmentConfig = _f(AugmentConfig)
    lr_schedule: ScheduleConfig = _f(ScheduleConfig)
    # Keras' rule, y*(1-e) + e/10, in every style's training loss; the reported loss and
    # val_loss include it (Keras reports its compiled loss), the job's own scores do not.
    label_smoothing: float = _f(0.0, lo=0.0, hi=1.0, hi_open=True)
    refit_full: bool = False


@dataclass(frozen=True)
class PredictConfig:
    tta: int = _f(0, lo=0, hi=64)
    seed: int = _f(0, lo=0)


@dataclass(frozen=True)
class OutputConfig:
    runs_dir: str = "runs"


@dataclass(frozen=True)
class RuntimeConfig:
    require_gpu: bool = False
    mixed_precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = "float32"
    jit_compile: bool = False
    distribute: Literal["auto", "none", "mirrored", "multi_worker"] = "auto"
    parallel: int = _f(0, lo=0, hi=64)


@dataclass(frozen=True)
class EnsembleConfig:
    members: tuple[str, ...] = _f((), choices=MODEL_NAMES)
    bag_model: str = _f("none", choices=("none",) + MODEL_NAMES)
    bag_copies: int = _f(0, lo=0, hi=50)
    bag_holdout: float = _f(0.1, lo=0.0, hi=0.5, lo_open=True)


@dataclass(frozen=True)
class KaggleConfig:
    retries: int = _f(4, lo=0, hi=20)
    backoff_seconds: float = _f(2.0, lo=0.0)
    poll_seconds: float = _f(15.0, lo=0.0)
    wait_minutes: float = _f(30.0, lo=0.0)
    message: str = "{run_id}: {best} (val accuracy {val_accuracy:.4f})"


MESSAGE_FIELDS = {"run_id": "20261128T210000Z-default", "best": "cnn-keras",
                  "val_accuracy": 0.99, "epochs": 12, "config": "default"}


@dataclass(frozen=True)
class Config:
    competition: str = SLUG
    data: DataConfig = _f(DataConfig)
    # The LSTMs are opt-in (name them in `models`): they train several times slower.
    models: tuple[str, ...] = _f(("ffn-tf", "ffn-keras", "cnn-tf", "cnn-keras"),
                                 choices=MODEL_NAMES, min_len=1)
    arch: ArchConfig = _f(ArchConfig)
    train: TrainConfig = _f(TrainConfig)
    predict: PredictConfig = _f(PredictConfig)
    output: OutputConfig = _f(OutputConfig)
    ensemble: EnsembleConfig = _f(EnsembleConfig)
    runtime: RuntimeConfig = _f(RuntimeConfig)
    kaggle: KaggleConfig = _f(KaggleConfig)
    # Not a YAML key: the config file's stem, used to name run folders.
    name: str = field(default="config", metadata={"internal": True})

    @property
    def trained_models(self) -> tuple[str, ...]:
        """Every model a run trains: `models`, and the bag's model when there is a bag."""
        bag = (self.ensemble.bag_model,) if self.ensemble.bag_copies else ()
        return self.models + tuple(m for m in bag if m not in self.models)
