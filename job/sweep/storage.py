"""Where a study lives: SQLite in the sweep folder by default, or a shared database URL.

The URL may hold a password: it is shown only through `shown`, which masks it, and no
message built here contains it. Opening is checked (host and port named) before any
trial, and is safe when several workers start on an empty database at once.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from job.errors import SweepError

STUDY_DB = "study.db"
ENV_URL = "OPTUNA_STORAGE"
# File systems where SQLite's locking is unreliable: Optuna's FAQ says SQLite is for one
# machine; on a network share two machines' workers would corrupt the database.
NETWORK_FS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "lustre", "glusterfs", "ceph",
              "fuse.sshfs", "fuse.gcsfuse", "fuse.s3fs", "fuse.rclone", "virtiofs")
# Two workers racing to create Optuna's tables on an empty PostgreSQL database: one gets
# UniqueViolation (optuna#1092). The loser waits and tries again; by then the tables exist.
CREATE_ATTEMPTS = 5


def choose_url(cli: str | None, setting: str, sweep_dir: Path, env: dict = os.environ) -> str:
    """--storage wins, then $OPTUNA_STORAGE, then sweep.storage; auto = SQLite in the folder."""
    url = cli or env.get(ENV_URL) or setting
    if url == "auto":
        return f"sqlite:///{(Path(sweep_dir) / STUDY_DB).resolve()}"
    return url


def shown(url: str) -> str:
    """The URL with its password masked, for every message and record."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<a storage URL that does not parse>"


def check_url(url: str, warn) -> None:
    """A URL this job can open: sqlite or postgresql, well formed; a warning for SQLite on
    a network file system."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SweepError(f"sweep storage {shown(url)}: not a database URL; use auto, "
                         "sqlite:///path/study.db or postgresql://user:password@host:5432/db"
                         ) from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise SweepError(f"sweep storage {shown(url)}: {backend} is not supported; use SQLite "
                         "(one machine) or PostgreSQL (many)")
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        fstype = filesystem_of(Path(parsed.database))
        if fstype in NETWORK_FS:
            warn(f"WARNING: the sweep's SQLite database {parsed.database} is on a network file "
                 f"system ({fstype}); SQLite is for one machine only (Optuna's FAQ): use "
                 "PostgreSQL for workers on several machines")


def filesystem_of(path: Path, mounts: str = "/proc/mounts") -> str | None:
    """The type of the file system holding `path` (the longest matching mount point)."""
    try:
        lines = Path(mounts).read_text().splitlines()
    except OSError:
        return None
    target, best = str(path.resolve()), ("", None)
    for line in lines:
        parts = line.split()
        if len(parts) >= 3:
            point = parts[1].replace("\\040", " ")
            inside = target == point or target.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best[0]):
                best = (point, parts[2])
    return best[1]


def open_storage(url: str, heartbeat_seconds: int, grace_seconds: int, max_retries: int):
    """Optuna's RDBStorage with heartbeats (a silent worker's trial is retried) and a small,
    pinged pool (a shared server drops idle connections; each worker holds few)."""
    import optuna
    import sqlalchemy.exc
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    from job.sweep import quiet
    postgres = url.startswith("postgresql")
    engine = ({"pool_size": 2, "max_overflow": 2, "pool_pre_ping": True,
               "pool_recycle": 600, "connect_args": {"connect_timeout": 10}} if postgres
              # SQLite locks the whole file: several local workers wait their turn.
              else {"connect_args": {"timeout": 60}})
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            with quiet.experimental():
                return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=heartbeat_seconds,
                                  grace_period=grace_seconds,
                                  heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                                      max_retry=max_retries))
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == CREATE_ATTEMPTS:
                raise
            time.sleep(random.uniform(0.2, 1.0) * attempt)
        except sqlalchemy.exc.OperationalError as e:
            raise SweepError(unreachable(url, e)) from None
        except optuna.exceptions.StorageInternalError as e:
            raise SweepError(unreachable(url, e.__cause__ or e)) from None


def unreachable(url: str, error: BaseException) -> str:
    """`cannot reach the sweep storage at db.example:5432 (connection refused)`."""
    from sqlalchemy.engine import make_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        where = parsed.database
    else:
        where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()
    reason = reason[0] if reason else type(error).__name__
    if parsed.password:
        reason = reason.replace(parsed.password, "***")
    return (f"cannot reach the sweep storage at {where} ({reason}); check the server is up, "
            f"the firewall lets this machine in, and the URL {shown(url)}")


def open_study(storage, name: str, direction: str, sampler, pruner, attrs: dict):
    """The study `name`, created if new (safe for concurrent starters); a study of that
    name made by a different sweep (other space, objective or direction) is refused."""
    import optuna
    study = optuna.create_study(storage=storage, study_name=name, direction=direction,
                                sampler=sampler, pruner=pruner, load_if_exists=True)
    if study.direction.name.lower() != direction:
        raise SweepError(f"study {name} in the storage {study.direction.name.lower()}s; this "
                         f"sweep would {direction}: name a new sweep.study")
    for key, value in attrs.items():
        found = study.user_attrs.get(key)
        if found is None:
            study.set_user_attr(key, value)
        elif found != value:
            raise SweepError(f"study {name} in the storage was made by a sweep with another "
                             f"{key} ({found!r}, not {value!r}); name a new sweep.study or "
                             "sweep the same space")
    return study
