"""SkyPilot for the tests: it lives in .sky-venv (make sky-venv), apart from the job's venv,
so the tests reach it through that venv's interpreter."""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKY_PYTHON = ROOT / ".sky-venv" / "bin" / "python"

# Loads a task file as `sky jobs launch --env K=V --secret K` does, from SkyPilot's own parser,
# and prints what the tests look at, or the error SkyPilot raised.
LOADER = r"""
import json, sys
import sky
from sky.utils import yaml_utils
path, envs, secrets = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
text = open(path, encoding="utf-8").read()
try:
    yaml_utils.check_no_duplicate_keys(text)
    config = yaml_utils.safe_load(text)
    task = sky.Task.from_yaml_config(config, env_overrides=list(envs.items()) or None,
                                     secrets_overrides=list(secrets.items()) or None)
except Exception as e:
    print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
    sys.exit(0)
mount = {path: {"name": s.name, "mode": s.mode.value} for path, s in task.storage_mounts.items()}
print(json.dumps({
    "name": task.name, "envs": task.envs, "secrets": sorted(task.secrets),
    "workdir": task.workdir, "mounts": mount, "setup": task.setup, "run": task.run,
    "resources": [{"accelerators": r.accelerators, "use_spot": r.use_spot, "zone": r.zone,
                   "region": r.region, "instance_type": r.instance_type,
                   "image_id": r.image_id, "disk_size": r.disk_size,
                   "job_recovery": r.job_recovery} for r in task.resources],
}, default=str))
"""


def require_skypilot() -> Path:
    """SkyPilot's interpreter; a skip without it, a failure where CI demands it."""
    if not SKY_PYTHON.exists():
        missing = f"{SKY_PYTHON} not found: make sky-venv installs SkyPilot"
        if os.environ.get("JOB_REQUIRE_SKY") == "1":
            pytest.fail(f"{missing}, but JOB_REQUIRE_SKY=1", pytrace=False)
        pytest.skip(missing)
    return SKY_PYTHON


def load_task(path: Path, envs: dict[str, str] = {}, secrets: dict[str, str] = {}) -> dict:
    """The task as SkyPilot reads it: {"error": ...} when SkyPilot refuses it."""
    return json.loads(loaded(str(path), Path(path).read_text(), json.dumps(envs, sort_keys=True),
                             json.dumps(secrets, sort_keys=True)))


@functools.lru_cache(maxsize=64)
def loaded(path: str, text: str, envs: str, secrets: str) -> str:
    """One SkyPilot process per distinct load (SkyPilot takes a second or two to import);
    the file's text is part of the key, so an edited file is read again."""
    result = subprocess.run([str(require_skypilot()), "-c", LOADER, path, envs, secrets],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]
