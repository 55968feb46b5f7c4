"""What `kaggle-run` uploads as the private code dataset: the job's source, its configs, the
pinned requirements and the resolved config, zipped, and nothing else.

An allow-list, not a deny-list: only `job/**/*.py`, `configs/*.yaml` and
`requirements.txt` from the project go in, so a kaggle.json, an access token or a `.env`
lying anywhere in the tree can never ride along. A name that looks like a credential is
left out even where the list would allow it, and a file that holds the user's own key or
token (a config with a key pasted in) stops the upload before anything is sent.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from job.config import Config, to_dict
from job.data.sources import find_credentials
from job.errors import ConfigError

ARCHIVE = "digit-job-code.zip"
MARKER = "digit-job-bundle.json"
RUN_CONFIGS = "kaggle-run"     # the resolved config's folder inside the archive
PATTERNS = ("job/**/*.py", "configs/*.yaml", "requirements.txt")
CREDENTIAL_NAMES = ("kaggle.json", "access_token", "access_token.txt", "credentials.json")
FIXED_TIME = (2020, 1, 1, 0, 0, 0)   # the same files zip to the same bytes


@dataclass(frozen=True)
class Bundle:
    """The archive written for one upload, and the id its kernel checks it mounted."""

    archive: Path
    bundle_id: str
    config_path: str          # the resolved config, relative to the unpacked source
    files: tuple[str, ...]    # what the archive holds, for the log and the tests


def project_files(project: Path) -> list[Path]:
    """The allowed files, sorted; a credential-looking name is skipped whatever its folder."""
    found = {p for pattern in PATTERNS for p in project.glob(pattern) if p.is_file()}
    return sorted(p for p in found if p.name not in CREDENTIAL_NAMES
                  and "__pycache__" not in p.parts)


def write_bundle(project: Path, config: Config, into: Path) -> Bundle:
    """Zip the job, the configs and `config` resolved (as kaggle-run/<name>.yaml) into
    `into`/ARCHIVE, with a marker naming this upload."""
    project = Path(project)
    if not (project / "job" / "__init__.py").is_file() or not (project /
                                                               "requirements.txt").is_file():
        raise ConfigError(f"{project}: not the job's project folder (no job/ and "
                          "requirements.txt): run kaggle-run from the repository root")
    bundle_id = uuid.uuid4().hex
    config_path = f"{RUN_CONFIGS}/{config.name}.yaml"
    resolved = yaml.safe_dump(to_dict(config), sort_keys=False)
    members: dict[str, bytes] = {p.relative_to(project).as_posix(): p.read_bytes()
                                 for p in project_files(project)}
    members[config_path] = resolved.encode()
    refuse_secrets(members, secret_values())
    digest = hashlib.sha256()
    for name in sorted(members):
        digest.update(name.encode() + b"\0" + members[name])
    members[MARKER] = json.dumps({"bundle_id": bundle_id, "config": config_path,
                                  "sha256": digest.hexdigest()}, indent=2).encode()
    archive = Path(into) / ARCHIVE
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for name in sorted(members):
            out.writestr(zipfile.ZipInfo(name, date_time=FIXED_TIME), members[name])
    return Bundle(archive, bundle_id, config_path, tuple(sorted(members)))


def secret_values(env: dict | None = None) -> list[bytes]:
    """The user's Kaggle key and token, as the client would find them, to search the
    upload for (read here for that alone: never shown, logged or kept)."""
    env = dict(os.environ if env is None else env)
    values = [env.get("KAGGLE_KEY"), env.get("KAGGLE_API_TOKEN")]
    found = find_credentials(env)
    if found and Path(found).is_file():
        try:
            text = Path(found).read_text(encoding="utf-8").strip()
            values.append(json.loads(text).get("key") if found.endswith(".json") else text)
        except (OSError, ValueError, AttributeError):
            pass
    # Short values would match by chance; Kaggle's keys and tokens are 32+ characters.
    return [v.encode() for v in values if isinstance(v, str) and len(v) >= 8]


def refuse_secrets(members: dict[str, bytes], secrets: list[bytes]) -> None:
    holding = sorted(name for name, data in members.items() if any(s in data for s in secrets))
    if holding:
        raise ConfigError(f"{holding[0]} holds your Kaggle key or token: remove it from the "
                          "file (credentials stay in ~/.kaggle or the environment); nothing "
                          "was uploaded")
