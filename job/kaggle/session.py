"""The Kaggle client signed in for kaggle-run, with the config's retry policy around every
call; what both launching and following a kernel talk through."""

from __future__ import annotations

import contextlib
import io
from typing import Any, Callable

from job.config import Config
from job.errors import KaggleError
from job.kaggle import client as kaggle_client

Log = Callable[[str], None]


class Session:
    """The client, signed in, with the config's retry policy around every call."""

    def __init__(self, config: Config, log: Log, warn: Log):
        kaggle_client.require_credentials(warn)
        self.api = kaggle_client.connect()
        self.config, self.log = config, log
        self.retry = kaggle_client.Retry(config.kaggle.retries, config.kaggle.backoff_seconds)

    def call(self, what: str, action: Callable[[], Any]) -> Any:
        # The client prints advice (retired accelerators, slugs) on stderr as well.
        with contextlib.redirect_stderr(io.StringIO()):
            return kaggle_client.call(what, action, self.config.competition, self.retry,
                                      log=self.log)

    def owner(self) -> str:
        user = self.api.get_config_value("username")
        if not user:
            raise KaggleError("the Kaggle client signed in without a username: set "
                              "KAGGLE_USERNAME (or use kaggle.json, which names it)")
        return user
