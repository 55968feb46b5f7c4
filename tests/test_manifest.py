"""manifest.json says which code made a run: the checkout's commit, -dirty for local edits."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(),
                    reason="needs a git checkout")
def test_git_commit_is_the_head_and_says_when_job_was_edited(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(clone)],
                   check=True)
    head = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()

    def reported() -> str:
        code = "from job.outputs import manifest; print(manifest.git_commit())"
        return subprocess.run([sys.executable, "-c", code], cwd=clone, capture_output=True,
                              text=True, check=True).stdout.strip()

    assert reported() == head
    with (clone / "job" / "errors.py").open("a") as f:
        f.write("# a local edit\n")
    assert reported() == head + "-dirty"


def test_the_command_recorded_in_a_manifest_has_no_password():
    from job.outputs.manifest import masked
    secret = "S3cret:p@ss"   # unescaped @ and : as a careless user may type them
    args = ["sweep", "--storage", f"postgresql://digit:{secret}@db.example:5432/sweeps",
            "--set", "train.epochs=3", "postgresql://digit@db.example/sweeps"]
    shown = masked(args)
    assert shown == ["sweep", "--storage", "postgresql://digit:***@db.example:5432/sweeps",
                     "--set", "train.epochs=3", "postgresql://digit@db.example/sweeps"]
    assert not any(secret in a or "S3cret" in a for a in shown)


def test_library_versions_are_read_without_importing_the_library():
    import numpy

    from job.outputs.manifest import installed
    assert installed("numpy") == numpy.__version__
    assert installed("no-such-distribution-here") is None
    code = ("import sys; from job.outputs.manifest import installed; installed('torch'); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "False"
