"""Download the competition's CSVs into data.dir, once, and never half.

The bundle is fetched into a temporary folder beside data.dir, unzipped and parsed
there; only files that passed are moved into place. A download that breaks off
leaves nothing a later run could take for data.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Callable, Iterator, Protocol

from job.competition import FILES, SAMPLE_SUBMISSION_CSV
from job.config import Config
from job.data import arrays as data
from job.errors import DataError, KaggleError
from job.kaggle import client as kaggle_client

Log = Callable[[str], None]
EVERY_SECONDS = 0.5   # how often a terminal's download line is redrawn


class Status(Protocol):
    """A line redrawn in place on a terminal (job.outputs.live.StatusLine)."""

    def show(self, text: str, changed: bool) -> None: ...

    def done(self) -> None: ...


def check_intact(folder: Path) -> None:
    """Raise DataError unless the three files are there, parse, and agree in length."""
    for name in FILES:
        if not (folder / name).is_file():
            raise DataError(f"{folder / name}: file not found")
    arrays = data.load_arrays(folder)
    ids = data.read_sample_submission(folder / SAMPLE_SUBMISSION_CSV)
    if len(ids) != len(arrays.test_images):
        raise DataError(f"{folder}: sample_submission.csv has {len(ids)} rows but test.csv "
                        f"has {len(arrays.test_images)}")


def is_intact(folder: Path) -> tuple[bool, str]:
    """(True, "") for usable data, else (False, why not)."""
    try:
        check_intact(folder)
    except DataError as e:
        return False, str(e)
    return True, ""


def ensure_competition_data(config: Config, log: Log, warn: Log, force: bool = False,
                            status: Status | None = None) -> Path:
    """data.dir with intact competition data, downloading only when needed (or forced)."""
    folder = Path(config.data.dir)
    intact, why = is_intact(folder)
    if intact and not force:
        log(f"data: competition files already in {folder} (use download --force to refresh)")
        return folder
    if not force and any((folder / name).exists() for name in FILES):
        log(f"data: downloading again: {why}")
    kaggle_client.require_credentials(warn)
    api = kaggle_client.connect()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
        fetched = fetch_bundle(api, config, Path(tmp), log, status)
        check_downloaded(fetched, config.competition)
        install(fetched, folder)
    check_intact(folder)   # parses once more into the cache beside the installed files
    log(f"data: downloaded {', '.join(FILES)} into {folder}")
    return folder


def fetch_bundle(api, config: Config, tmp: Path, log: Log, status: Status | None = None) -> Path:
    """Download and unzip the competition bundle into tmp/files."""
    retry = kaggle_client.Retry(config.kaggle.retries, config.kaggle.backoff_seconds)
    bundle_dir = tmp / "bundle"

    def download() -> None:
        # A retried attempt starts clean: no leftover part can be mistaken for the bundle.
        shutil.rmtree(bundle_dir, ignore_errors=True)
        bundle_dir.mkdir()
        api.competition_download_files(config.competition, path=str(bundle_dir), quiet=True)

    log(f"data: downloading {config.competition} from Kaggle")
    with watching(bundle_dir, status, f"data: downloading {config.competition}"):
        kaggle_client.call("downloading the competition data", download, config.competition,
                           retry, log=log)
    files = tmp / "files"
    files.mkdir()
    for item in bundle_dir.iterdir():
        if item.suffix == ".zip":
            unzip(item, files, config.competition)
        elif item.name in FILES:
            item.rename(files / item.name)
    return files


@contextlib.contextmanager
def watching(folder: Path, status: Status | None, what: str) -> Iterator[None]:
    """While the client downloads into `folder` (its own progress bar is silenced), redraw
    the bytes arrived and the rate; with no status (not a terminal) nothing is added."""
    if status is None:
        yield
        return
    stop, started = threading.Event(), time.monotonic()

    def watch() -> None:
        while not stop.wait(EVERY_SECONDS):
            status.show(progress_text(what, arrived(folder), time.monotonic() - started),
                        changed=False)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        status.done()


def arrived(folder: Path) -> int:
    """Bytes in `folder` so far; a file the client renames meanwhile is skipped."""
    total = 0
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            total += path.stat().st_size if path.is_file() else 0
    return total


def progress_text(what: str, size: int, seconds: float) -> str:
    return f"{what}: {size / 1e6:.1f} MB, {size / 1e6 / max(seconds, 1e-3):.1f} MB/s"


def unzip(bundle: Path, into: Path, competition: str) -> None:
    """Extract the bundle's CSVs; a damaged zip is an incomplete download."""
    try:
        with zipfile.ZipFile(bundle) as archive:
            if archive.testzip() is not None:
                raise zipfile.BadZipFile("CRC mismatch")
            for name in archive.namelist():
                if Path(name).name in FILES:
                    (into / Path(name).name).write_bytes(archive.read(name))
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise KaggleError(f"the download of {competition} arrived damaged ({e}); nothing was "
                          "changed: rerun the download") from None


def check_downloaded(files: Path, competition: str) -> None:
    """The bundle must hold the three files, and they must parse."""
    missing = [name for name in FILES if not (files / name).is_file()]
    if missing:
        raise KaggleError(f"the {competition} bundle lacks {', '.join(missing)}; nothing was "
                          "changed: check `competition` in the config")
    try:
        check_intact(files)
    except DataError as e:
        raise KaggleError(f"the downloaded data does not parse ({e}); nothing was changed: "
                          "rerun the download") from None


def install(files: Path, folder: Path) -> None:
    """Move each checked file over its old version, one atomic rename at a time."""
    for name in FILES:
        os.replace(files / name, folder / name)
