"""How the suite writes a time in what it says (a finding's ``observed``, a cause's evidence):
whole milliseconds. The report's own, finer display of times is ``conformance.report.text.ms``."""
from __future__ import annotations


def ms(seconds: float | None) -> str:
    """``0.0423`` → ``"42 ms"`` (rounded half to even); None → ``"-"``; never ``"-0 ms"``."""
    return "-" if seconds is None else f"{round(seconds * 1000) + 0:d} ms"
