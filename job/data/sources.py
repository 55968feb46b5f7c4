"""Which data the job trains on: the competition's (Kaggle or a local copy) or the sample.

The choice is pure: it looks at the config, the environment and the file system and
returns a Source; the pipeline makes that source's files exist. Kaggle credentials
are only looked for here, never read: their values stay out of every message, log
and file the job writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from job.competition import TRAINING_FILES
from job.config import Config


@dataclass(frozen=True)
class Source:
    """Where the CSVs are, and what they are."""

    kind: str        # "kaggle" | "local" | "sample"
    dir: Path
    reason: str      # why this source was chosen, for the log and the manifest


def find_credentials(env: Mapping[str, str] = os.environ,
                     home: Path | None = None) -> str | None:
    """Name the first place the kaggle client would find credentials in, or None."""
    home = Path(home or Path.home())
    if env.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN"
    if env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"):
        return "KAGGLE_USERNAME/KAGGLE_KEY"
    config_dirs = ([Path(env["KAGGLE_CONFIG_DIR"])] if env.get("KAGGLE_CONFIG_DIR") else
                   [home / ".kaggle",
                    Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle"])
    for folder in config_dirs:
        if (folder / "kaggle.json").is_file():
            return str(folder / "kaggle.json")
    for name in ("access_token", "access_token.txt", "credentials.json"):
        if (home / ".kaggle" / name).is_file():
            return str(home / ".kaggle" / name)
    return None


def has_competition_files(folder: Path) -> bool:
    """True when `folder` holds the CSVs the job needs."""
    return all((folder / name).is_file() for name in TRAINING_FILES)


def choose_source(config: Config, env: Mapping[str, str] = os.environ,
                  home: Path | None = None) -> Source:
    """Resolve data.source (auto included) to a concrete source, without side effects."""
    wanted = config.data.source
    data_dir = Path(config.data.dir)
    if wanted == "sample":
        return Source("sample", Path(config.data.sample_dir), "data.source is sample")
    if wanted == "local":
        return Source("local", data_dir, "data.source is local")
    credentials = find_credentials(env, home)
    if wanted == "kaggle" or credentials:
        why = (f"Kaggle credentials found ({credentials})" if credentials
               else "data.source is kaggle")
        return Source("kaggle", data_dir, why)
    if has_competition_files(data_dir):
        return Source("local", data_dir, f"no Kaggle credentials; competition CSVs found in {data_dir}")
    return Source("sample", Path(config.data.sample_dir), "no Kaggle credentials found")
