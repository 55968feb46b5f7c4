"""Small helpers about this project that several test files use: the TensorFlow pin, an
environment without Kaggle credentials or make's settings, and the fake key they plant."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECRET = "0123456789abcdef-not-a-real-key"


def tensorflow_pin() -> str:
    found = re.search(r"^tensorflow==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert found, "requirements.txt pins tensorflow==<version>"
    return found.group(1)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without Kaggle credentials or make's own settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KAGGLE_", "MAKE")) and k not in ("MFLAGS", "CONFIG")}
    return {**env, **extra}
