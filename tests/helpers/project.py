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


def loaded_after(code: str, names: tuple[str, ...] = ("tensorflow", "keras", "torch")
                 ) -> list[str]:
    """Which of `names` a fresh interpreter holds in sys.modules after running `code` in
    the repository: how the tests see what a process of the job imported."""
    import subprocess
    import sys
    probe = f"{code}\nimport sys\nprint(sorted(n for n in {names!r} if n in sys.modules))\n"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    return eval(out.strip().splitlines()[-1])   # a list of strings, printed by the probe


def script_module(name: str):
    """scripts/<name>.py imported as a module (the bench scripts import the job inside
    their functions, so this loads no framework); scripts/ is on sys.path only meanwhile,
    where a script finds its siblings."""
    import importlib
    import sys
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "scripts"))
