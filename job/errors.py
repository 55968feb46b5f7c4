"""The job's own errors: each is a user mistake or an outside failure with a fix.

The CLI prints `str(error)` as one line and exits with code 2; anything else is a bug
and keeps its traceback.
"""


class JobError(Exception):
    """Base class: a message that tells the user what is wrong and what to do."""


class ConfigError(JobError):
    """The YAML config or a --set override is invalid."""


class DataError(JobError):
    """A data file is missing, malformed or inconsistent."""


class SourceError(JobError):
    """The requested data source cannot be used (no credentials, not available)."""


class TrainingError(JobError):
    """Training cannot go on (e.g. the loss became NaN)."""


class RunError(JobError):
    """A run folder is missing, unreadable or cannot be written."""


class KaggleError(JobError):
    """Kaggle refused or failed a request; the message says what to do about it."""


class SubmissionError(JobError):
    """A submission file or run is not fit to be submitted."""


class DeviceError(JobError):
    """The machine cannot run the configured runtime (no GPU, a bad TF_CONFIG)."""


class Pruned(Exception):
    """Not an error: a sweep's pruner ended this run after an epoch that trailed the other
    trials'. The run folder is marked `pruned`; the sweep records the trial as PRUNED."""


class SweepError(JobError):
    """A sweep cannot start or go on: its storage is unreachable, its study is another's."""
