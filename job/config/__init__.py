"""The job's configuration: typed and frozen (schema), read from YAML (loading), checked
field by field (values) and across fields (checks) before any work starts."""

from job.config.loading import load_config, replace_name, to_dict
from job.config.schema import (ACTIVATIONS, MESSAGE_FIELDS, ArchConfig, AugmentConfig,
                               CNNSpec, Config, DataConfig, EarlyStoppingConfig,
                               EnsembleConfig, FFNSpec, KaggleConfig, LSTMSpec, OutputConfig,
                               PredictConfig, RuntimeConfig, ScheduleConfig, TrainConfig)
from job.config.values import known_keys
from job.errors import ConfigError
from job.styles import MODEL_NAMES

__all__ = ["ACTIVATIONS", "MESSAGE_FIELDS", "MODEL_NAMES", "ArchConfig", "AugmentConfig",
           "CNNSpec", "Config", "ConfigError", "DataConfig", "EarlyStoppingConfig",
           "EnsembleConfig", "FFNSpec", "KaggleConfig", "LSTMSpec", "OutputConfig",
           "PredictConfig", "RuntimeConfig", "ScheduleConfig", "TrainConfig", "known_keys", "load_config",
           "replace_name", "to_dict"]
