"""What a check found: one line, ok or not, and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass

OK, NOTE, PROBLEM = "ok", "note", "PROBLEM"


@dataclass(frozen=True)
class Finding:
    """One line of `python -m job doctor`. A NOTE is worth knowing but harms nothing the
    config needs; only a PROBLEM makes the doctor exit non-zero."""

    status: str        # OK | NOTE | PROBLEM
    check: str         # what was checked, e.g. "NVIDIA driver"
    text: str          # what was found
    fix: str = ""      # what to do, for a NOTE or a PROBLEM

    def line(self) -> str:
        fix = f" -> {self.fix}" if self.fix else ""
        return f"{self.status:<8} {self.check}: {self.text}{fix}"


def needed(wanted: bool, check: str, text: str, fix: str) -> Finding:
    """A failure that is a PROBLEM when the config needs the thing, else a NOTE."""
    return Finding(PROBLEM if wanted else NOTE, check, text, fix)
