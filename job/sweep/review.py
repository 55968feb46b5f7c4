"""Looking at a sweep afterwards: its summary rebuilt (after folders from several machines
were copied together) and optuna-dashboard on its study."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from job.errors import SweepError
from job.sweep import quiet, storage, summary


def load_study(folder: Path, cli_storage: str | None, warn: Callable[[str], None]):
    """The study a sweep folder belongs to (named as the folder) and its storage URL: the
    one given, $OPTUNA_STORAGE, or the folder's own study.db."""
    import optuna
    import sqlalchemy.exc

    folder = Path(folder)
    url = storage.choose_url(cli_storage, "auto", folder)
    storage.check_url(url, warn)
    named = cli_storage or os.environ.get(storage.ENV_URL)
    if not named and not (folder / storage.STUDY_DB).is_file():
        raise SweepError(f"{folder}: no {storage.STUDY_DB} here; name the sweep's storage with "
                         f"--storage URL or ${storage.ENV_URL}")
    quiet.quiet_optuna()
    try:
        return optuna.load_study(study_name=folder.name, storage=url), url
    except KeyError:
        raise SweepError(f"{folder}: the storage {storage.shown(url)} has no study named "
                         f"{folder.name}") from None
    except sqlalchemy.exc.OperationalError as e:
        raise SweepError(storage.unreachable(url, e)) from None


def rebuild(folder: Path, cli_storage: str | None, warn: Callable[[str], None]) -> Path:
    """summary.json, summary.md and `best` from the storage and the trial folders here."""
    study, _ = load_study(folder, cli_storage, warn)
    return summary.write_summary(study, Path(folder))


def serve_dashboard(runs_dir: Path, study_name: str, cli_storage: str | None, port: int,
                    log: Callable[[str], None]) -> None:
    """optuna-dashboard for the study, on 127.0.0.1 only (it has no login)."""
    from optuna_dashboard import run_server

    folder = Path(runs_dir) / "sweeps" / study_name
    study, url = load_study(folder, cli_storage, log)
    log(f"optuna-dashboard for study {study.study_name}: http://127.0.0.1:{port}/ "
        "(Ctrl-C stops it)")
    run_server(url, host="127.0.0.1", port=port)
