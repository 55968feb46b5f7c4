"""The one place that talks to Kaggle: the official client, bounded retries, and
failures turned into messages a user can act on.

Credential values never reach a message: errors are built from status codes and the
server's own text, and the client's chatter on stdout (which can echo config paths
and help texts) is captured, not shown.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from job.competition import rules_url
from job.data.sources import find_credentials
from job.errors import JobError, KaggleError

TRANSIENT_STATUS = {429, 500, 502, 503, 504}
MAX_BACKOFF_SECONDS = 60.0


@dataclass(frozen=True)
class Retry:
    """How hard to try: `retries` extra attempts, waiting backoff, 2×backoff, …"""

    retries: int = 4
    backoff_seconds: float = 2.0

    def delay(self, attempt: int, error: BaseException) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based); Retry-After wins."""
        hinted = retry_after(error)
        if hinted is not None:
            return min(hinted, MAX_BACKOFF_SECONDS)
        return min(self.backoff_seconds * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)


def require_credentials(warn: Callable[[str], None]) -> str:
    """Where the credentials are; none is an error that says where to put them."""
    found = find_credentials(os.environ)
    if found is None:
        raise KaggleError(
            "no Kaggle credentials: save kaggle.json from https://www.kaggle.com/settings "
            "(API → Create New Token) as ~/.kaggle/kaggle.json with chmod 600, or set "
            "KAGGLE_USERNAME and KAGGLE_KEY (or KAGGLE_API_TOKEN); "
            "data.source: sample trains without them")
    if found.endswith("kaggle.json") and Path(found).stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        warn(f"WARNING: {found} is readable by other users; run: chmod 600 {found}")
    return found


def connect() -> Any:
    """An authenticated KaggleApi (imported here: the package authenticates on import)."""
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        from kaggle.api.kaggle_api_extended import KaggleApi
        api = KaggleApi()
        try:
            api.authenticate()
        except SystemExit:
            raise KaggleError(
                "Kaggle did not accept the credentials found (an expired KAGGLE_API_TOKEN or "
                "access_token?): create a new token at https://www.kaggle.com/settings") from None
    return api


def call(what: str, action: Callable[[], Any], competition: str, retry: Retry,
         sleep: Callable[[float], None] = time.sleep,
         log: Callable[[str], None] = lambda line: None) -> Any:
    """Run `action`, retrying transient failures; anything else becomes a KaggleError."""
    attempts = retry.retries + 1
    for attempt in range(1, attempts + 1):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                return action()
        except JobError:   # already one line for the user (raised by `action` itself)
            raise
        except Exception as error:  # noqa: BLE001 - every client failure is translated
            if not is_transient(error) or attempt == attempts:
                raise translate(error, what, competition, attempt) from None
            delay = retry.delay(attempt, error)
            log(f"kaggle: {describe(error)} while {what}; retry {attempt}/{retry.retries} "
                f"in {delay:g}s")
            sleep(delay)
    raise AssertionError("unreachable")


def status_of(error: BaseException) -> int | None:
    """The HTTP status of a requests error, if it carries a response."""
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def is_transient(error: BaseException) -> bool:
    """Worth another try: throttling, server trouble, a dropped or cut-off connection."""
    import requests
    if status_of(error) in TRANSIENT_STATUS:
        return True
    return isinstance(error, (requests.ConnectionError, requests.Timeout,
                              requests.exceptions.ChunkedEncodingError, ConnectionError))


def retry_after(error: BaseException) -> float | None:
    """The server's Retry-After (seconds form), when it sent one."""
    response = getattr(error, "response", None)
    value = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def describe(error: BaseException) -> str:
    """A short name for a failure, for retry lines and messages."""
    status = status_of(error)
    if status is not None:
        return f"HTTP {status}"
    return type(error).__name__


def translate(error: BaseException, what: str, competition: str, attempts: int) -> KaggleError:
    """The one-line message for a failure that retries did not cure."""
    status = status_of(error)
    tried = f"after {attempts} attempt{'s' if attempts > 1 else ''}"
    if status == 401:
        return KaggleError(f"Kaggle rejected the credentials (401) while {what}: check "
                           "~/.kaggle/kaggle.json or KAGGLE_USERNAME/KAGGLE_KEY (or "
                           "KAGGLE_API_TOKEN)")
    if status == 403:
        return KaggleError(f"Kaggle refused {what} (403): accept the competition rules at "
                           f"{rules_url(competition)}, then rerun")
    if status == 404:
        return KaggleError(f"Kaggle has no competition '{competition}' (404): check "
                           "`competition` in the config")
    if status == 429:
        return KaggleError(f"Kaggle is rate-limiting requests (429) {tried} while {what}; "
                           "nothing was changed: wait a few minutes and rerun")
    if status is not None and status >= 500:
        return KaggleError(f"Kaggle's servers failed (HTTP {status}) {tried} while {what}; "
                           "nothing was changed: try again later")
    if status is not None:
        return KaggleError(f"Kaggle answered HTTP {status} while {what}: "
                           f"{str(error).splitlines()[0][:200] if str(error) else 'no details'}")
    import requests
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return KaggleError(f"transfers from Kaggle kept breaking off {tried} while {what}; "
                           "nothing was changed: check the network and rerun")
    if is_transient(error):
        return KaggleError(f"cannot reach Kaggle ({describe(error)}) {tried} while {what}; "
                           "nothing was changed: check the network and rerun")
    return KaggleError(f"Kaggle client failed while {what}: {type(error).__name__}: "
                       f"{str(error).splitlines()[0][:200] if str(error) else ''}")
